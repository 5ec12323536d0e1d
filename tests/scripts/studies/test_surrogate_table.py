"""surrogate_table.py: one Markdown row per metrics file, old files without the newer fields, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from aero_opt.core.errors import AeroOptError
from surrogate.evaluate import summarize

METRICS = {"cars": 49, "pressure_rel_l2": {"mean": 0.1857}, "cd_total": {"r2": 0.8413, "spearman": 0.9328,
                                                                          "mae": 0.0162},
           "cd_pressure": {"r2": 0.5913, "spearman": 0.7659, "mae": 0.0286},
           "cd_viscous": {"pred_std": 0.0263, "cfd_std": 0.0011, "pred_negative": 17},
           "mirror": {"cd_total_change": {"mae": 0.046, "mean": -0.046}},
           "cd_pressure_error_by_region": {"front": {"mean": 0.0, "std": 0.010}, "rear": {"mean": -0.007,
                                                                                           "std": 0.031}}}


def test_rows_show_the_numbers_and_dashes_for_missing_fields(load_script: Callable[[str], ModuleType]) -> None:
    mod = load_script("surrogate_table.py")
    old = {k: METRICS[k] for k in ("cars", "pressure_rel_l2", "cd_total", "cd_pressure")}
    text = mod.table([("run 5", METRICS), ("old", old)])
    lines = text.splitlines()
    assert len(lines) == 4 and lines[0].count("|") == len(mod.COLUMNS) + 1
    assert lines[2] == ("| run 5 | 49 | 0.186 | 0.84 / 0.93 / 0.016 | 0.59 / 0.77 | 0.026 (0.001), 17 | -0.046 "
                        "| rear (0.031) |")
    assert lines[3].endswith("| — | — | — |")


def test_bad_files_give_one_line_errors(tmp_path: Path, load_script: Callable[[str], ModuleType]) -> None:
    mod = load_script("surrogate_table.py")
    with pytest.raises(AeroOptError, match="no such metrics file"):
        mod._entry(f"x={tmp_path / 'none.json'}")
    (tmp_path / "bad.json").write_text(json.dumps({"cars": 3}))
    with pytest.raises(AeroOptError, match="no pressure_rel_l2, cd_total, cd_pressure"):
        mod._entry(str(tmp_path / "bad.json"))


def test_command_writes_the_table_with_its_command(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text(json.dumps(METRICS))
    out = tmp_path / "table.md"
    script = Path(__file__).resolve().parents[3] / "scripts" / "studies" / "surrogate_table.py"
    r = subprocess.run([sys.executable, str(script), str(tmp_path / "run" / "metrics.json"), "--out", str(out)],
                       capture_output=True, text=True, check=True)
    text = out.read_text()
    assert text.startswith("<!-- made by: python scripts/studies/surrogate_table.py") and "| run | 49 |" in text
    assert r.stdout in text
    bad = subprocess.run([sys.executable, str(script), str(tmp_path / "missing.json")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "missing.json" in bad.stderr


def _rows(cds: dict[str, float], offset: float) -> list[dict]:
    """Full per-car rows (as eval-surrogate writes them) with predicted Cd = CFD Cd + offset · (car index + 1)."""
    rows = []
    for i, (car, cd) in enumerate(cds.items()):
        pred = cd + offset * (i + 1)
        rows.append({"car": car, "rel_l2_pressure": 0.1 + 0.01 * i, "cd_pressure_pred": pred - 0.012,
                     "cd_pressure_cfd": cd - 0.013, "cd_viscous_pred": 0.012, "cd_viscous_cfd": 0.013,
                     "cd_total_pred": pred, "cd_total_cfd": cd, "cd_total_pred_mirror": pred,
                     "cd_pressure_error_by_region": {k: 0.0 for k in ("front", "rear", "top", "bottom", "side")},
                     "label_runs": 1, "style": "estate" if i % 2 else "fastback"})
    return rows


def test_common_recomputes_over_the_shared_cars_and_says_when_labels_differ(
        load_script: Callable[[str], ModuleType]) -> None:
    mod = load_script("surrogate_table.py")
    cds = {"car_0001": 0.20, "car_0002": 0.25, "car_0003": 0.31, "car_0004": 0.27}
    grown = {**METRICS, "cars": 4, "per_car": _rows(cds, 0.01)}
    before = {**METRICS, "cars": 3, "per_car": _rows(dict(list(cds.items())[:3]), 0.02)}
    entries, note = mod.common_cars([("grown", grown), ("before", before)])
    (_, a), (_, b) = entries
    assert a["cars"] == b["cars"] == 3
    assert a["cd_total"]["mae"] == pytest.approx((0.01 + 0.02 + 0.03) / 3)  # car_0004 left out
    assert b["cd_total"]["mae"] == pytest.approx((0.02 + 0.04 + 0.06) / 3)
    assert a["pressure_rel_l2"]["mean"] == pytest.approx(0.11) and a["by_style"]["estate"]["cars"] == 1
    assert "the same CFD labels" in note
    assert "averaged" not in a["by_label_runs"]  # every car one run
    rows = _rows(cds, 0.01)
    rows[0]["label_runs"] = rows[1]["label_runs"] = 6
    groups = summarize(rows)["by_label_runs"]
    assert groups["averaged"]["cars"] == 2 and groups["6"]["cars"] == 2 and groups["1"]["cars"] == 2
    assert groups["averaged"]["cd_total"]["mae"] == pytest.approx(0.015)  # offsets 0.01 and 0.02
    before["per_car"][1]["cd_total_cfd"] += 0.005  # car_0002 re-labelled (averaged over more runs)
    old = {k: METRICS[k] for k in ("cars", "pressure_rel_l2", "cd_total", "cd_pressure")}
    old["per_car"] = [{k: r[k] for k in ("car", "rel_l2_pressure", "cd_total_pred", "cd_total_cfd",
                                          "cd_pressure_pred", "cd_pressure_cfd", "style")} for r in _rows(cds, 0.01)]
    old["by_label_runs"] = {"1": {"cars": 49}}  # over the old file's cars: must not survive the cut
    entries, note = mod.common_cars([("grown", grown), ("before", before), ("old", old)])
    assert "differ between the files on 1 cars" in note
    assert entries[2][1]["cd_total"]["mae"] == pytest.approx(0.02) and "cd_viscous" not in entries[2][1]
    assert "by_label_runs" not in entries[2][1] and entries[2][1]["by_style"]["fastback"]["cars"] == 2
    assert mod.row("old", entries[2][1])[5] == "—"
    with pytest.raises(AeroOptError, match="no per_car rows"):
        mod.common_cars([("grown", grown), ("x", METRICS)])


def _per_car(preds: list[float], cfd: list[float]) -> dict[str, Any]:
    return {"per_car": [{"car": f"car_{i:04d}", "cd_total_pred": p, "cd_total_cfd": c}
                        for i, (p, c) in enumerate(zip(preds, cfd))]}


def test_error_agreement_correlates_errors_and_scores_the_mean_prediction(
        load_script: Callable[[str], ModuleType]) -> None:
    mod = load_script("surrogate_table.py")
    cfd = [0.30, 0.25, 0.35, 0.28]
    a, b = [0.31, 0.24, 0.37, 0.28], [0.32, 0.23, 0.36, 0.29]  # errors +.01 -.01 +.02 0 and +.02 -.02 +.01 +.01
    text = mod.error_agreement([("a", _per_car(a, cfd)), ("b", _per_car(b, cfd))])
    ea, eb = np.subtract(a, cfd), np.subtract(b, cfd)
    r = np.sum((ea - ea.mean()) * (eb - eb.mean())) / np.sqrt(np.sum((ea - ea.mean())**2) * np.sum((eb - eb.mean())**2))
    def r2(pred: np.ndarray) -> float:
        return 1 - np.sum((pred - cfd) ** 2) / np.sum((np.array(cfd) - np.mean(cfd)) ** 2)

    assert f"| a vs b | 4 | {r:.2f} | {r2(np.array(b)) - r2(np.array(a)):+.3f} [" in text
    mean = (np.array(a) + np.array(b)) / 2
    last = f"| mean prediction: Cd R² / Spearman / MAE | 4 | {r2(mean):.3f} / 1.000 / 0.0125 | |"
    assert text.splitlines()[-1] == last


def test_paired_r2_difference_interval() -> None:
    """Zero for a model against itself; excludes 0 when one model is better on every car (beyond the draw)."""
    from surrogate.evaluate import paired_r2_difference_ci

    rng = np.random.default_rng(0)
    y = rng.normal(0.3, 0.05, 60)
    noise = rng.normal(0, 0.02, 60)
    assert paired_r2_difference_ci(y, y + noise, y + noise) == [0.0, 0.0]
    lo, hi = paired_r2_difference_ci(y, y + noise, y + 0.5 * noise)  # every error halved: R² rises by 3/4 of its gap
    gap = np.sum(noise**2) / np.sum((y - y.mean()) ** 2)
    assert 0 < lo < 0.75 * gap < hi


def test_error_agreement_refuses_different_labels_and_single_files(load_script: Callable[[str], ModuleType]) -> None:
    mod = load_script("surrogate_table.py")
    with pytest.raises(AeroOptError, match="two metrics files"):
        mod.error_agreement([("a", _per_car([0.3, 0.2], [0.3, 0.2]))])
    with pytest.raises(AeroOptError, match="labels differ"):
        mod.error_agreement([("a", _per_car([0.3, 0.2], [0.3, 0.2])), ("b", _per_car([0.3, 0.2], [0.3, 0.21]))])


def test_recalibration_fits_the_line_and_bounds_the_gain(load_script: Callable[[str], ModuleType]) -> None:
    """Predictions shrunk and offset by a known line come back to R² 1 after it; exact ones keep slope 1."""
    mod = load_script("surrogate_table.py")
    cfd = np.array([0.30, 0.25, 0.35, 0.28, 0.22])
    shrunk = 0.02 + 0.8 * cfd  # so CFD = -0.025 + 1.25 · predicted
    text = mod.recalibration([("shrunk", _per_car(list(shrunk), list(cfd))), ("exact", _per_car(list(cfd), list(cfd)))])
    r2 = 1 - np.sum((shrunk - cfd) ** 2) / np.sum((cfd - cfd.mean()) ** 2)
    lines = text.splitlines()
    assert lines[2] == f"| shrunk | 5 | -0.0250 / 1.250 | {r2:.4f} → 1.0000 |" and r2 < 0.9
    assert lines[3].startswith("| exact | 5 | ") and lines[3].endswith("0.0000 / 1.000 | 1.0000 → 1.0000 |")
    with pytest.raises(AeroOptError, match="fewer than 3 per_car rows"):
        mod.recalibration([("a", _per_car([0.3, 0.2], [0.3, 0.2]))])
