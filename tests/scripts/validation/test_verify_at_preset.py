"""verify_at_preset.py: re-simulating a comparison's shapes at another preset keeps the coarse verification."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import trimesh

from aero_opt.cfd import executor, verify
from aero_opt.cfd.executor import ClusterConfig


def _run(root: Path, param: str, verts_initial: int, verts_final: int, coarse_change: float) -> Path:
    """A finished, coarse-verified run folder ``root/car_0001/<param>`` whose start and final STL have the given
    vertex counts (icospheres; the fake CFD's drag is the vertex count of the loaded STL: 3 per face, 320 faces for
    162 vertices)."""
    run = root / "car_0001" / param
    run.mkdir(parents=True)
    sub = {42: 2, 162: 3, 642: 4}
    trimesh.creation.icosphere(subdivisions=sub[verts_initial]).export(run / "initial.stl")
    trimesh.creation.icosphere(subdivisions=sub[verts_final]).export(run / "final.stl")
    cfd = {"preset": "coarse", "initial": {"Cd": 0.3}, "final": {"Cd": 0.25}, "drag_change": coarse_change}
    (run / "summary.json").write_text(json.dumps({"drag_change": -0.4, "cfd": cfd}))
    return run


def test_finer_preset_goes_beside_the_coarse_verification(
        tmp_path: Path, load_script: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch) -> None:
    mod = load_script("verify_at_preset.py")
    root = tmp_path / "demo"
    _run(root, "scaling", 162, 42, -0.2)
    _run(root, "meshsdf", 162, 642, -0.3)
    (root / "car_0001" / "cfd_initial").mkdir()  # the coarse case of the start shape: not a run, left alone
    (root / "car_0001" / "cfd_initial" / "summary.json").write_text("{}")
    cases: list[str] = []

    def fake_simulate(job: verify.SimJob) -> dict:
        mesh, case, preset = job.mesh, job.case, job.preset
        assert preset == "medium"
        cases.append(f"{case.parent.name}/{case.name}")
        case.mkdir(parents=True, exist_ok=True)
        (case / "summary.json").write_text("{}")
        n = len(trimesh.load(mesh, process=False).vertices)
        return {"Cd": n / 1000, "A_ref": 2.0, "drag_N": float(n), "converged": True, "cells": 1}

    monkeypatch.setattr(verify, "run_job", fake_simulate)
    monkeypatch.setattr(executor, "default_cluster", lambda: ClusterConfig(kind="threads"))
    out = tmp_path / "verify.json"
    monkeypatch.setattr(sys, "argv", ["verify", str(root), "--preset", "medium", "--out", str(out)])
    assert mod.main() == 0
    assert sorted(cases) == ["car_0001/cfd_medium_initial", "meshsdf/cfd_medium_final", "scaling/cfd_medium_final"]
    s = json.loads((root / "car_0001" / "scaling" / "summary.json").read_text())
    assert s["cfd"]["drag_change"] == -0.2 and s["cfd"]["preset"] == "coarse"  # untouched
    assert s["cfd_medium"]["drag_change"] == pytest.approx(80 / 320 - 1)
    r = json.loads(out.read_text())
    assert r["runs"] == 2 and list(r["mean_drag_change_by_param"]) == ["meshsdf", "scaling"]  # NAMES order
    assert r["mean_drag_change_by_param"]["meshsdf"] == pytest.approx(
        {"surrogate": -0.4, "coarse": -0.3, "finer": 1280 / 320 - 1})
    assert "| scaling | 1 | -40.0 % | -20.0 % | -75.0 % |" in out.with_suffix(".md").read_text()
    monkeypatch.setattr(sys, "argv", ["verify", str(tmp_path / "empty"), "--out", str(out)])
    with pytest.raises(SystemExit, match="no finished runs"):
        mod.main()
