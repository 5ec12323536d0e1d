"""scripts/studies/cd_from_design_params.py: the ARD Gaussian process and the averaged-training-labels probe."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest

from aero_opt.core.errors import AeroOptError


def test_ard_gp_fits_the_function_finds_the_noise_and_ignores_the_irrelevant_parameter(
        load_script: Callable[[str], ModuleType]) -> None:
    mod = load_script("cd_from_design_params.py")
    rng = np.random.default_rng(0)
    x, xt = rng.uniform(-2, 2, (150, 2)), rng.uniform(-2, 2, (100, 2))
    y = np.sin(x[:, 0]) + rng.normal(0.0, 0.05, len(x))
    hyper, pred = mod.ard_gp(x, y, xt)
    assert np.sqrt(np.mean((pred - np.sin(xt[:, 0])) ** 2)) < 0.03
    assert 0.03 < hyper["noise_std"] < 0.07
    assert hyper["length_scales"][1] > 5 * hyper["length_scales"][0]


def test_ard_gp_stays_finite_on_noise_free_labels(load_script: Callable[[str], ModuleType]) -> None:
    mod = load_script("cd_from_design_params.py")
    x = np.linspace(-1, 1, 40)[:, None]
    hyper, pred = mod.ard_gp(x, x[:, 0] ** 2, x)
    assert np.isfinite(pred).all() and np.abs(pred - x[:, 0] ** 2).max() < 1e-2
    assert hyper["noise_std"] > 0


def test_averaging_probe_scores_the_mean_of_noisy_runs_above_one_run(
        load_script: Callable[[str], ModuleType]) -> None:
    mod = load_script("cd_from_design_params.py")
    rng = np.random.default_rng(1)
    x, xt = rng.uniform(-2, 2, (80, 3)), rng.uniform(-2, 2, (60, 3))

    def f(a: np.ndarray) -> np.ndarray:
        return np.sin(a[:, 0]) + np.cos(a[:, 1]) + 0.5 * a[:, 2]

    runs = [list(f(x)[i] + rng.normal(0.0, 0.6, 3)) for i in range(len(x))]
    runs[0] = [0.5]  # a car with plain labels is left out
    out = mod.averaging_probe(x, runs, xt, f(xt))
    assert out["cars"] == 79
    assert out["averaged"]["r2"] > out["one_run"]["r2"] + 0.02
    assert out["averaged"]["mae"] < out["one_run"]["mae"]
    assert mod.averaging_probe(x[:19], runs[1:20], xt, f(xt)) is None


def test_surrogate_comparison_correlates_errors_over_the_common_cars(
        load_script: Callable[[str], ModuleType]) -> None:
    mod = load_script("cd_from_design_params.py")
    names = ["car_0000", "car_0001", "car_0002", "car_0003", "car_0004"]
    yt = np.array([0.30, 0.25, 0.35, 0.28, 0.40])
    gp = yt + np.array([0.01, -0.01, 0.02, 0.0, 0.05])  # car_0004: not evaluated by the surrogate
    s_err = np.array([0.02, -0.02, 0.01, 0.01])
    s_cfd = yt[:4] + 0.001  # the mesh-integrated CFD Cd differs a little from the solver's
    metrics = {"per_car": [{"car": n, "cd_total_pred": float(c + e), "cd_total_cfd": float(c)}
                           for n, c, e in zip(names, s_cfd, s_err)]}
    out = mod.surrogate_comparison(names, yt, gp, metrics)
    assert out["cars"] == 4
    assert np.isclose(out["error_correlation"], np.corrcoef(gp[:4] - yt[:4], s_err)[0, 1])
    assert np.isclose(out["surrogate"]["mae"], np.abs(s_err).mean())
    assert np.isclose(out["mean_of_both"]["mae"], np.abs((gp[:4] + s_cfd + s_err) / 2 - yt[:4]).mean())
    with pytest.raises(AeroOptError, match="no per_car row"):
        mod.surrogate_comparison(names, yt, gp, {"per_car": [{"car": "car_9999"}]})
