"""average_labels.py: which runs a car still needs, and the noise report over cars with 3- and 6-run labels."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from aero_opt.core.errors import AeroOptError
from aero_opt.geometry.dataset import average_labels, save_car
from aero_opt.geometry.shapes import CarParams, make_car

SUMMARY = {"Cd": 0.30, "Cd_pressure": 0.28, "Cd_viscous": 0.02, "Cl": 0.1, "A_ref": 2.1, "speed": 15.0,
           "rho": 1.18, "convergence": {"cd_band": 0.01}}


def test_missing_shifts(load_script: Callable[[str], ModuleType]) -> None:
    mod = load_script("average_labels.py")
    assert mod._missing_shifts({}, [0.33, 0.67]) == [0.33, 0.67]
    runs = {"label_runs": [{"grid_shift": 0.0}, {"grid_shift": 0.33}, {"grid_shift": 0.67}]}
    assert mod._missing_shifts(runs, [0.33, 0.67]) == []
    assert mod._missing_shifts(runs, [0.17, 0.5, 0.67]) == [0.17, 0.5]
    assert mod._missing_shifts({}, [0.0, 0.5]) == [0.5]


CDS = {"car_0000": [0.30, 0.32, 0.28], "car_0001": [0.20, 0.21, 0.19, 0.20, 0.22, 0.18], "car_0002": [0.25]}
STYLES = {"car_0000": "estate", "car_0001": "fastback", "car_0002": "estate"}


def _averaged_cars(folder: Path) -> None:
    """Three dataset cars in ``folder`` whose labels average the runs of ``CDS`` (car_0002: one run, no average)."""
    car = make_car(CarParams())
    n = len(car.vertices)
    p0 = np.linspace(-200.0, 100.0, n)
    for name, cd in CDS.items():
        path = folder / f"{name}.npz"
        settled = {"converged": True, "convergence": {"cd_band": 0.03}} if name == "car_0002" else {}
        save_car(path, car.vertices, car.faces, p0, np.zeros((n, 3)), {**SUMMARY, "Cd": cd[0], **settled},
                 {"style": STYLES[name]})
        extra = [(s, p0 * (1 + 0.1 * i), np.zeros((n, 3)), {**SUMMARY, "Cd": c})
                 for i, (s, c) in enumerate(zip((0.33, 0.67, 0.17, 0.5, 0.83), cd[1:]), start=1)]
        if extra[:2]:
            average_labels(path, extra[:2])
        if extra[2:]:
            average_labels(path, extra[2:])


def test_report_pools_noise_over_cars_with_different_run_counts(
        tmp_path: Path, load_script: Callable[[str], ModuleType]) -> None:
    mod = load_script("average_labels.py")
    _averaged_cars(tmp_path)
    cds = CDS
    s = mod.report(tmp_path, tmp_path / "label_noise.json", "cmd")
    noise_var = np.mean([np.var(cds["car_0000"], ddof=1), np.var(cds["car_0001"], ddof=1)])
    label_var = np.var([0.30, 0.20, 0.25], ddof=1)
    assert s["cars"] == 2 and np.isclose(s["cd_noise_std_one_run"], noise_var**0.5)
    by_style = s["cd_noise_std_one_run_by_style"]  # car_0002 (estate) has one run: not in the noise
    assert {k: v["cars"] for k, v in by_style.items()} == {"estate": 1, "fastback": 1}
    assert np.isclose(by_style["estate"]["std"], np.std(cds["car_0000"], ddof=1))
    assert np.isclose(by_style["fastback"]["std"], np.std(cds["car_0001"], ddof=1))
    settling = s["stored_run_settling_by_style"]  # every car, averaged or not; only car_0002's run converged
    assert settling["estate"]["cars"] == 2 and settling["estate"]["converged"] == 0.5
    assert np.isclose(settling["estate"]["relative_cd_band_median"], 0.02)
    assert settling["fastback"] == {"cars": 1, "converged": 0.0, "relative_cd_band_median": 0.01,
                                    "relative_cd_band_p90": 0.01}
    var_e, var_f = np.var(cds["car_0000"], ddof=1), np.var(cds["car_0001"], ddof=1)
    dataset_noise = (2 * var_e + var_f) / 3  # two estates, one fastback: each car carries its style's noise
    assert np.isclose(s["r2_ceiling_one_run"], 1 - dataset_noise / label_var)
    # car_0001's runs at shifts 1/2 apart (0 & 0.5, 0.33 & 0.83, 0.67 & 0.17) share their near-body grid
    bg_var = np.mean(np.square([0.20 - 0.22, 0.21 - 0.18, 0.19 - 0.20])) / 2
    h = s["paired_shifts"]
    assert h["pairs"] == 3 and np.isclose(h["cd_noise_std_background"], bg_var**0.5)
    assert np.isclose(h["cd_noise_std_near_body"], (noise_var - bg_var) ** 0.5)
    true_var = label_var - dataset_noise
    near = (noise_var - bg_var) / noise_var  # the pooled near-body share, applied to each style's noise
    for name, k, var in (("car_0000", 3, var_e / 3), ("car_0001", 6, var_f * (near / 3 + (1 - near) / 6))):
        assert s["r2_ceiling_by_runs"][str(k)]["cars"] == 1
        assert np.isclose(s["r2_ceiling_by_runs"][str(k)]["r2_ceiling"], 1 - var / (true_var + var))
        assert np.isclose(s["per_car"][name]["r2_ceiling"], 1 - var / (true_var + var))
    # first three runs' pressure: p0 x (1, 1.1, 1.2), mean 1.1 p0; last three: mean 1.4 p0
    assert h["pressure_rel_l2_between_halves"]["cars"] == 1
    assert np.isclose(h["pressure_rel_l2_between_halves"]["mean"], 0.3 / 1.4, rtol=1e-2)
    # only runs compared with the shift-0 field count: 0.1 and 0.2 relative L2, from both cars' first two extra runs
    assert np.isclose(s["pressure_rel_l2_between_runs"]["max"], 0.2, rtol=1e-2)
    assert np.isclose(s["pressure_rel_l2_between_runs"]["mean"], 0.15, rtol=1e-2)
    assert json.loads((tmp_path / "label_noise.json").read_text())["per_car"]["car_0001"]["Cd"] == cds["car_0001"]


def test_report_only_rebuilds_the_report_without_running_cases(
        tmp_path: Path, load_script: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch) -> None:
    mod = load_script("average_labels.py")
    _averaged_cars(tmp_path)
    out = tmp_path / "noise.json"
    monkeypatch.setattr(mod, "simulate_many", lambda *a, **k: pytest.fail("--report-only must not simulate"))
    monkeypatch.setattr(sys, "argv", ["average_labels.py", "--data", str(tmp_path), "--out", str(out),
                                      "--report-only"])
    assert mod.main() == 0
    s = json.loads(out.read_text())
    assert s["cars"] == 2 and s["command"].endswith("--report-only")


def test_select_filters_splits_styles_and_finished_cars(
        tmp_path: Path, load_script: Callable[[str], ModuleType]) -> None:
    mod = load_script("average_labels.py")
    car = make_car(CarParams())
    n = len(car.vertices)
    styles = {"car_0000": "estate", "car_0001": "fastback", "car_0002": "estate", "car_0003": "estate"}
    for name, style in styles.items():
        save_car(tmp_path / f"{name}.npz", car.vertices, car.faces, np.ones(n), np.zeros((n, 3)), SUMMARY,
                 {"style": style})
    average_labels(tmp_path / "car_0002.npz", [(s, np.ones(n), np.zeros((n, 3)), SUMMARY) for s in (0.33, 0.67)])
    (tmp_path / "split.json").write_text(json.dumps(
        {"train": ["car_0003", "car_0002", "car_0001"], "val": [], "test": ["car_0000"]}))
    shifts = [0.33, 0.67]
    assert mod.select(tmp_path, ["test", "train"], shifts) == {"car_0000": shifts, "car_0003": shifts,
                                                                "car_0001": shifts}
    # car_0002 has both shifts already; --cars counts the chosen style's cars, finished ones included
    assert mod.select(tmp_path, ["train"], shifts, ["estate"]) == {"car_0003": shifts}
    assert mod.select(tmp_path, ["train", "test"], [0.5], ["estate"], cars=2) == {"car_0003": [0.5],
                                                                                 "car_0002": [0.5]}
    with pytest.raises(AeroOptError, match="no car of style wagon"):
        mod.select(tmp_path, ["train"], shifts, ["wagon"])
