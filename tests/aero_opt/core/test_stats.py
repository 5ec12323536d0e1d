"""aero_opt/core/stats.py: mean and interval of K runs, pooled noise, relative change, bootstrap over cars."""

from __future__ import annotations

import numpy as np
import pytest

from aero_opt.core.errors import AeroOptError
from aero_opt.core.stats import bootstrap_mean, pooled_std, relative_change, run_stats


def test_run_stats_of_known_values() -> None:
    r = run_stats([0.203, 0.182, 0.168])
    assert r.n == 3 and r.mean == pytest.approx(0.184333, abs=1e-6)
    assert r.std == pytest.approx(0.0176163, abs=1e-6)  # sample std, ddof 1
    assert r.half_width == pytest.approx(4.302653 * 0.0176163 / np.sqrt(3), rel=1e-5)  # t(0.975, 2) = 4.3027
    assert r.as_dict() == {"mean": r.mean, "std": r.std, "ci95": r.half_width, "n": 3}


def test_run_stats_leaves_out_failed_runs_and_refuses_none() -> None:
    r = run_stats([0.3, float("nan"), None, 0.32])
    assert r.n == 2 and r.mean == pytest.approx(0.31)
    one = run_stats([0.25])
    assert (one.n, one.mean, one.std, one.half_width) == (1, 0.25, None, None)
    with pytest.raises(AeroOptError, match="no successful run"):
        run_stats([float("nan")])


def test_pooled_std_recovers_the_noise_and_separates_a_grid_effect() -> None:
    rng = np.random.default_rng(0)
    cars = rng.uniform(0.2, 0.35, size=(400, 1))  # true Cd per car: not noise
    effect = np.array([0.0, -0.01, -0.005, 0.005, 0.01])  # a systematic change per grid setting
    table = cars + effect + rng.normal(0.0, 0.02, size=(400, 5))
    assert pooled_std(table, remove_column_means=True) == pytest.approx(0.02, rel=0.05)
    with_effect = pooled_std(table)  # the grid effect counts as noise here: sqrt(0.02² + var(effect) * 5/4)
    assert with_effect == pytest.approx(np.sqrt(0.02**2 + np.var(effect) * 5 / 4), rel=0.05)
    assert pooled_std(np.repeat(cars, 3, axis=1)) == pytest.approx(0.0, abs=1e-12)


def test_pooled_std_skips_missing_runs() -> None:
    table = np.array([[1.0, 3.0, np.nan], [5.0, np.nan, np.nan], [2.0, 2.0, 5.0]])
    # row 0: ss 2, dof 1; row 1 adds nothing; row 2: mean 3, ss 1+1+4 = 6, dof 2 -> sqrt(8 / 3)
    assert pooled_std(table) == pytest.approx(np.sqrt(8 / 3))
    assert pooled_std(np.array([[1.0, np.nan]])) is None
    with pytest.raises(AeroOptError, match="without missing runs"):
        pooled_std(table, remove_column_means=True)


def test_relative_change_and_its_interval() -> None:
    change, ci = relative_change({"mean": 100.0, "ci95": 3.0}, {"mean": 80.0, "ci95": 4.0})
    assert change == pytest.approx(-0.2)
    assert ci == pytest.approx(0.8 * np.hypot(0.05, 0.03))
    assert relative_change({"mean": 100.0}, {"mean": 90.0, "ci95": 1.0}) == (pytest.approx(-0.1), None)


def test_bootstrap_interval_covers_the_spread_over_units_and_their_own_noise() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(0.05, 0.02, size=40)
    b = bootstrap_mean(values)
    se = values.std(ddof=1) / np.sqrt(40)
    assert b.mean == pytest.approx(values.mean())
    assert (b.high - b.low) == pytest.approx(2 * 1.96 * se, rel=0.1) and b.significant
    noisy = bootstrap_mean(values, [0.05] * 40)  # each unit's own error widens the interval
    assert (noisy.high - noisy.low) == pytest.approx(2 * 1.96 * np.hypot(se, 0.05 / np.sqrt(40)), rel=0.1)
    one = bootstrap_mean([0.01], [0.02])  # one unit: only its own noise
    assert one.low == pytest.approx(0.01 - 1.96 * 0.02, abs=2e-3) and not one.significant
    assert bootstrap_mean(values).as_dict() == b.as_dict()  # fixed seed: reproducible
    with pytest.raises(AeroOptError, match="bootstrap of no value"):
        bootstrap_mean([])
