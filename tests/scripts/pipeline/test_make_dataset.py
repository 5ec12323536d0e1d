"""make_dataset.py: the dataset summary (spreads of time, Cd, cells, iterations; failures kept across runs)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

from aero_opt.geometry.dataset import save_car
from aero_opt.geometry.shapes import CarParams, make_car


def test_spread_matches_numpy_and_handles_empty(load_script: Callable[[str], ModuleType]) -> None:
    mod = load_script("make_dataset.py")
    v = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0]
    s = mod.spread(v)
    assert s["min"] == 1.0 and s["max"] == 9.0 and s["median"] == 4.0
    assert np.isclose(s["p10"], np.percentile(v, 10)) and np.isclose(s["p90"], np.percentile(v, 90))
    assert np.isclose(s["mean"], np.mean(v), atol=1e-5)
    assert mod.spread([]) == {k: None for k in ("min", "p10", "median", "p90", "max", "mean")}


def test_summary_over_finished_cars_and_recorded_failures(
        tmp_path: Path, load_script: Callable[[str], ModuleType]) -> None:
    mod = load_script("make_dataset.py")
    out, cases = tmp_path / "data", tmp_path / "cases"
    out.mkdir()
    car = make_car(CarParams())
    n = len(car.vertices)
    secs, cds = [40.0, 60.0, 200.0], [0.25, 0.30, 0.35]
    for i, (sec, cd) in enumerate(zip(secs, cds)):
        summary = {"Cd": cd, "Cd_pressure": cd - 0.02, "Cd_viscous": 0.02, "cells": 30000 + 1000 * i,
                   "iterations": 200 + 100 * i, "converged": i != 2, "seconds": {"total": sec}, "Cl": 0.1, "A_ref": 2.1,
                   "speed": 15.0, "rho": 1.18}
        save_car(out / f"car_{i:04d}.npz", car.vertices, car.faces, np.zeros(n), np.zeros((n, 3)), summary, {})
    (out / "failures.json").write_text(json.dumps([{"id": "car_0009", "reason": "snappy failed"}]))
    (cases / "car_0003").mkdir(parents=True)
    (cases / "car_0003" / "failed.json").write_text(json.dumps({"reason": "diverged"}))
    args = argparse.Namespace(out=out, n=10, workers=2, seed=0, wing_fraction=0.25, preset="coarse", speed=15.0)
    mod.write_summary(args, cases)
    s = json.loads((out / "summary.json").read_text())
    assert s["n_done"] == 3 and s["n_failed"] == 2
    assert [f["id"] for f in s["failures"]] == ["car_0003", "car_0009"]
    assert s["seconds_per_case"]["median"] == 60.0 and s["seconds_per_case"]["p90"] == np.percentile(secs, 90)
    assert s["cd"]["min"] == 0.25 and s["cells"]["median"] == 31000 and s["iterations"]["max"] == 400
    assert s["not_converged"] == ["car_0002"]
    assert sum(s["split_sizes"].values()) == 3
