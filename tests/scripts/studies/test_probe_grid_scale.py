"""scripts/studies/probe_grid_scale.py: the pooled noise std of a (cars, grids) table of Cd."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest


def test_pooled_std_recovers_the_noise_and_separates_a_grid_effect(load_script: Callable[[str], ModuleType]) -> None:
    mod = load_script("probe_grid_scale.py")
    rng = np.random.default_rng(0)
    cars = rng.uniform(0.2, 0.35, size=(400, 1))  # true Cd per car: not noise
    effect = np.array([0.0, -0.01, -0.005, 0.005, 0.01])  # a systematic change per grid setting
    table = cars + effect + rng.normal(0.0, 0.02, size=(400, 5))
    assert mod.pooled_std(table, remove_column_means=True) == pytest.approx(0.02, rel=0.05)
    with_effect = mod.pooled_std(table)  # the grid effect counts as noise here: sqrt(0.02² + var(effect) * 5/4)
    assert with_effect == pytest.approx(np.sqrt(0.02**2 + np.var(effect) * 5 / 4), rel=0.05)
    assert with_effect > 0.0205
    assert mod.pooled_std(np.repeat(cars, 3, axis=1)) == pytest.approx(0.0, abs=1e-12)
