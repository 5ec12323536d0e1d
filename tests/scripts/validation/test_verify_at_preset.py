"""verify_at_preset.py: re-simulating a comparison's shapes at another preset keeps the coarse verification."""

from __future__ import annotations

import json
import shutil
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
    cfd = {"preset": "coarse", "initial": {"Cd": 0.3, "drag_N": 10.0}, "final": {"Cd": 0.25, "drag_N": 8.0},
           "drag_change": coarse_change}
    shape = {"drag_N": 50.0, "Cd": 0.3, "room_penalty_m2": 0.0}
    (run / "summary.json").write_text(json.dumps({"drag_change": -0.4, "cfd": cfd, "initial": shape, "final": shape,
                                                  "feasible": True, "seconds": 1.0}))
    return run


def fake_simulate(job: verify.SimJob) -> dict:
    """Stand-in for OpenFOAM: drag = the vertex count of the STL × (1 + grid shift); the preset must be medium."""
    assert job.preset == "medium"
    job.case.mkdir(parents=True, exist_ok=True)
    (job.case / "summary.json").write_text("{}")
    n = len(trimesh.load(job.mesh, process=False).vertices) * (1.0 + job.grid_shift)
    return {"Cd": n / 1000, "A_ref": 2.0, "drag_N": float(n), "converged": True, "cells": 1}


def test_finer_preset_goes_beside_the_own_verification(
        tmp_path: Path, load_script: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    mod = load_script("verify_at_preset.py")
    root = tmp_path / "demo"
    _run(root, "scaling", 162, 42, -0.2)
    _run(root, "meshsdf", 162, 642, -0.3)
    (root / "car_0001" / "cfd_initial").mkdir()  # the coarse case of the start shape: not a run, left alone
    (root / "car_0001" / "cfd_initial" / "summary.json").write_text("{}")
    cases: list[str] = []
    had_verdict: list[bool] = []

    def recording(job: verify.SimJob) -> dict:
        cases.append(f"{job.case.parent.name}/{job.case.name}")
        had_verdict.append((job.case / "summary.json").is_file())
        return fake_simulate(job)

    monkeypatch.setattr(verify, "run_job", recording)
    monkeypatch.setattr(executor, "default_cluster", lambda: ClusterConfig(kind="threads"))
    out, carry = tmp_path / "reverify", tmp_path / "carry"
    monkeypatch.setattr(sys, "argv", ["verify", str(root), "--verify-preset", "medium", "--out", str(out),
                                      "--carry", str(carry)])
    assert mod.main() == 0
    assert sorted(cases) == ["car_0001/cfd_medium_initial", "meshsdf/cfd_medium_final", "scaling/cfd_medium_final"]
    first = (out / "summary.json").read_text()

    shutil.rmtree(root)  # another session: the carry brings back the runs and the finished cases' verdicts
    had_verdict.clear()
    assert mod.main() == 0
    assert had_verdict == [True] * 3
    assert json.loads((out / "summary.json").read_text())["table"] == json.loads(first)["table"]
    s = json.loads((root / "car_0001" / "scaling" / "summary.json").read_text())
    assert s["cfd"]["drag_change"] == -0.2 and s["cfd"]["preset"] == "coarse"  # untouched
    assert s["cfd_medium"]["drag_change"] == pytest.approx(240 / 960 - 1)  # 80 and 320 faces, 3 vertices each
    r = json.loads((out / "summary.json").read_text())
    assert [x["param"] for x in r["per_run"]] == ["meshsdf", "scaling"]
    assert r["table"]["meshsdf"]["cfd_change_mean"] == pytest.approx(3840 / 960 - 1)
    assert r["per_run"][1]["own_verification"] == -0.2 and r["per_run"][1]["surrogate"] == -0.4
    md = (out / "results.md").read_text()
    assert "| scaling | 1 |" in md and "OpenFOAM drag change minus meshsdf's" in md

    cases.clear()  # three grid-shifted runs per shape: two more cases each, the single run's case reused
    monkeypatch.setattr(sys, "argv", ["verify", str(root), "--verify-preset", "medium", "--verify-runs", "3",
                                      "--out", str(out), "--no-carry"])
    assert mod.main() == 0
    assert "car_0001/cfd_medium_x3_initial" in cases and "scaling/cfd_medium_x3_final_s0.1667" in cases
    s = json.loads((root / "car_0001" / "scaling" / "summary.json").read_text())
    assert s["cfd_medium_x3"]["initial"]["Cd_stats"]["n"] == 3 and s["cfd_medium_x3"]["drag_change_ci95"] is not None

    monkeypatch.setattr(sys, "argv", ["verify", str(tmp_path / "empty"), "--out", str(out), "--no-carry"])
    assert mod.main() == 2
    assert "no finished runs" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["verify", str(root), "--verify-runs", "0", "--out", str(out)])
    assert mod.main() == 2
    assert "error: --verify-runs 0: must be a whole number of at least 1" in capsys.readouterr().err
