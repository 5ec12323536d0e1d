"""scripts/studies/probe_medium_preset.py: the report's arithmetic, with the CFD replaced by known Cd per car."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from aero_opt.cfd import executor, verify
from aero_opt.cfd.executor import ClusterConfig
from aero_opt.geometry.dataset import split_names


def test_report_correlates_the_error_with_the_preset_difference(
        tmp_path: Path, load_script: Callable[[str], ModuleType], mini_dataset: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    mod = load_script("probe_medium_preset.py")
    data = mini_dataset(tmp_path, 1, 0, 5)
    names = split_names(data, "test")
    label = dict(zip(names, [0.30, 0.25, 0.35, 0.28, 0.32]))
    delta = dict(zip(names, [-0.04, 0.01, -0.08, 0.0, 0.03]))  # medium - coarse per car
    wiggle = dict(zip(names, [0.002, -0.003, 0.001, 0.0, -0.001]))
    pred = {n: label[n] + 0.5 * delta[n] + wiggle[n] for n in names}  # the surrogate half-way to the medium Cd
    metrics = tmp_path / "metrics_test.json"
    metrics.write_text(json.dumps({"per_car": [
        {"car": n, "cd_total_cfd_solver": label[n], "cd_total_cfd": label[n], "cd_total_pred": pred[n]}
        for n in names]}))
    cases: list[str] = []

    def medium(case: Path) -> float:  # a run at grid shift 0.33 lands 0.01 higher
        name = case.name.split("_shift")[0]
        return label[name] + delta[name] + (0.01 if case.name.endswith("_shift0.33") else 0.0)

    def fake_simulate(job: verify.SimJob) -> dict:
        stl, case, preset, grid_shift = job.mesh, job.case, job.preset, job.grid_shift
        assert preset == "medium" and stl.is_file() and grid_shift in (0.0, 0.33)
        cases.append(case.name)
        return {"Cd": medium(case) + 0.05, "converged": False, "cells": 1000}

    def fake_history(case: Path) -> np.ndarray:  # the last 100 iterations average to the medium Cd
        return np.r_[np.full(50, 1.0), np.full(100, medium(case))]

    monkeypatch.setattr(mod, "run_job", fake_simulate)
    monkeypatch.setattr(mod, "read_coefficients", fake_history)
    monkeypatch.setattr(executor, "default_cluster", lambda: ClusterConfig(kind="threads"))
    sample = [names[i] for i in np.random.default_rng(0).permutation(5)[:4]]
    extra = next(n for n in names if n not in sample)
    out = tmp_path / "probe.json"
    argv = ["--data", str(data), "--cars", "4", "--noise-cars", "2", "--extra", extra, "--metrics", str(metrics),
            "--work", str(tmp_path / "work"), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", ["probe", *argv])
    assert mod.main() == 0
    assert sorted(cases) == sorted([*names, *(f"{n}_shift0.33" for n in sample[:2])])
    s = json.loads(out.read_text())
    assert s["random_cars"] == 4 and s["extra_cars"] == [extra]
    assert not s["per_car"][extra]["random_sample"] and s["per_car"][sample[0]]["random_sample"]
    d = np.array([delta[n] for n in sample])
    assert s["medium_minus_coarse"]["mean"] == pytest.approx(d.mean())  # the window mean, not the last value
    assert s["medium_minus_coarse"]["std"] == pytest.approx(d.std(ddof=1))
    err = np.array([pred[n] - label[n] for n in sample])
    assert s["surrogate_error_vs_medium_minus_coarse_pearson"]["r"] == pytest.approx(np.corrcoef(err, d)[0, 1])
    assert s["surrogate_error_vs_medium_minus_coarse_pearson"]["r"] > 0.95
    assert s["surrogate_error_vs_medium_minus_coarse_partial_r_given_coarse_label"] > 0.9
    assert s["surrogate_error_std_after_removing_fit_to_medium_minus_coarse"] < 0.2 * s["surrogate_error_std"]
    assert s["medium_noise"]["cars"] == 2 and s["medium_noise"]["one_run_std"] == pytest.approx(0.01 / np.sqrt(2))
    runs = [np.array(s["per_car"][n]["coarse_runs"]) for n in sample]
    assert s["coarse_label_noise_std"] == pytest.approx(np.sqrt(np.mean([r.var(ddof=1) for r in runs]) / 3))
    assert s["medium_minus_coarse_std_expected_from_noise_alone"] == pytest.approx(
        np.hypot(0.01 / np.sqrt(2), s["coarse_label_noise_std"]))
    assert s["per_car"][extra]["medium"] == pytest.approx(label[extra] + delta[extra] + 0.05)
    monkeypatch.setattr(sys, "argv", ["probe", "--data", str(data), "--extra", "car_9999", "--metrics", str(metrics)])
    with pytest.raises(SystemExit, match="car_9999"):
        mod.main()
