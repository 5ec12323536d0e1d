"""scripts/surrogate_table.py: one Markdown row per metrics file, old files without the newer fields, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from aero_opt.errors import AeroOptError

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
    script = Path(__file__).resolve().parents[2] / "scripts" / "surrogate_table.py"
    r = subprocess.run([sys.executable, str(script), str(tmp_path / "run" / "metrics.json"), "--out", str(out)],
                       capture_output=True, text=True, check=True)
    text = out.read_text()
    assert text.startswith("<!-- made by: python scripts/surrogate_table.py") and "| run | 49 |" in text
    assert r.stdout in text
    bad = subprocess.run([sys.executable, str(script), str(tmp_path / "missing.json")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "missing.json" in bad.stderr
