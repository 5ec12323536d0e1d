"""scripts/studies/finetuned_start_shapes.py: each start shape's Cd error and distance against its car."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import trimesh

from aero_opt.app.config import load_config
from aero_opt.core.errors import AeroOptError


def _verdict(cd: float, n: int = 3) -> dict:
    return {"Cd": cd, "Cd_stats": {"mean": cd, "ci95": 0.01, "n": n}, "runs_asked": 3}


def test_report_gives_each_start_shapes_error_against_its_car(load_script: Callable[[str], ModuleType],
                                                             tmp_path: Path) -> None:
    mod = load_script("finetuned_start_shapes.py")
    meshes = {}
    for car, radius in (("a", 1.0), ("b", 1.0)):
        m = {}
        for kind, scale in (("car", 1.0), ("shipped", 1.1), ("tuned", 1.0)):
            path = tmp_path / f"{car}_{kind}.stl"
            trimesh.creation.icosphere(subdivisions=3, radius=radius * scale).export(path)
            m[kind] = path
        meshes[car] = m
    verdicts = {("a", "car"): _verdict(0.30), ("a", "shipped"): _verdict(0.50), ("a", "tuned"): _verdict(0.35, 2),
                ("b", "car"): _verdict(0.25), ("b", "shipped"): _verdict(0.20),
                ("b", "tuned"): AeroOptError("b/cfd_tuned: no usable CFD run of 3")}
    r = mod.report(["a", "b"], meshes, verdicts, "cmd", Path("dec"), load_config(None))
    a, b = r["per_car"]["a"], r["per_car"]["b"]
    assert a["shipped"]["Cd_error"] == pytest.approx(0.20) and a["tuned"]["Cd_error"] == pytest.approx(0.05)
    assert a["tuned"]["chamfer_m2"] < 1e-3 < a["shipped"]["chamfer_m2"]  # the same sphere vs one 10% larger
    assert "no usable CFD run" in b["tuned"]["error"]
    assert r["mean_abs_Cd_error"] == {"shipped": pytest.approx(0.125), "tuned": pytest.approx(0.05)}
    md = mod.markdown(r)
    assert "| a | 0.300 ± 0.010 (3/3) | 0.500 ± 0.010 (3/3) | +0.200 |" in md and "0.350 ± 0.010 (2/3)" in md
    assert "shipped 0.125, fine-tuned 0.050" in md
