"""The campaign headline's bookkeeping: CMA-ES read at the surrogate campaign's case counts, the pooled interval,
the CPU hours of the CFD cases, and the plot."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


def test_cma_is_read_at_equal_cases_and_cpu_hours_count_cfd_cases_only(
        load_script: Callable[[str], ModuleType], tmp_path: Path) -> None:
    mod = load_script("reproduce_campaign.py")
    steps = [{"cases_used": 7, "drag_change": -0.05, "drag_change_ci95": 0.02, "best_Cd": 0.3},
             {"cases_used": 15, "drag_change": -0.12, "drag_change_ci95": 0.03, "best_Cd": 0.27}]
    assert mod.change_at(steps, 6) is None
    assert mod.change_at(steps, 14) == {"drag_change": -0.05, "ci95": 0.02, "Cd": 0.3}
    assert mod.change_at(steps, 15)["drag_change"] == -0.12
    b = mod.pooled([(-0.1, None), (-0.2, None), (-0.3, None)])
    assert b["mean"] == pytest.approx(-0.2) and b["ci95_low"] < -0.2 < b["ci95_high"] and b["n"] == 3
    for i, secs in enumerate(({"snappyHexMesh": 30.0, "simpleFoam": 3570.0}, {"simpleFoam": 1800.0})):
        (tmp_path / f"c{i}").mkdir()
        (tmp_path / f"c{i}" / "summary.json").write_text(json.dumps({"preset": "verify", "seconds": secs}))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.json").write_text(json.dumps({"seconds": 99.0}))  # an optimization, not a case
    assert mod.cpu_hours(tmp_path) == pytest.approx(1.5)
    table = {"meshsdf": {"rounds": [{"round": 0, "surrogate": b, "cma_same_cases": None}], "oneshot": b}}
    mod.plot(table, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000
    assert mod.fmt(None) == "–" and mod.fmt(b).startswith("-20.0% [")


def test_the_headline_uses_the_metre_boxes_unless_told(load_script: Callable[[str], ModuleType], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from aero_opt.core.errors import AeroOptError

    mod = load_script("reproduce_campaign.py")
    rooms = []

    def stop(args, cfg, *rest):  # noqa: ANN001, ANN002, ANN202
        rooms.append(cfg.optimize.room)
        raise AeroOptError("stopped here")

    monkeypatch.setattr(mod, "run_all", stop)
    for extra in ([], ["--room", "relative"]):
        monkeypatch.setattr(sys, "argv", ["reproduce_campaign.py", "--work", str(tmp_path / "w"), "--no-carry",
                                          *extra])
        assert mod.main() == 2
    assert rooms == ["package", "relative"]
