"""Batch runs resume: finished cases are skipped, interrupted ones redone, failures recorded (fake runner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aero_opt.cfd.batch import run_batch
from aero_opt.core.errors import AeroOptError


def fake_runner(mesh: Path, case: Path, **kw) -> dict:
    """Writes a summary like run_case; fails for meshes whose name contains 'bad'."""
    case.mkdir(parents=True, exist_ok=False)  # the batch must have cleared half-written cases
    (case / "log.simpleFoam").write_text("iteration 1\nFOAM FATAL ERROR: diverged\n")
    (case / "ran").write_text("1")
    if "bad" in mesh.name:
        raise AeroOptError(f"simpleFoam diverged in {case}")
    s = {"Cd": 0.3, "Cd_pressure": 0.28, "Cd_viscous": 0.02, "Cl": 0.1, "cells": 10, "iterations": 5,
         "converged": True, "seconds": {"total": 1.0}}
    (case / "summary.json").write_text(json.dumps(s))
    return s


@pytest.mark.parametrize("workers", [1, 2])
def test_resume_skips_done_redoes_partial_records_failures(tmp_path: Path, workers: int) -> None:
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    for name in ("a", "b", "c", "bad"):
        (meshes / f"{name}.stl").write_text("solid\nendsolid\n")
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / "summary.json").write_text(json.dumps({"Cd": 0.25, "converged": True}))  # finished before
    (out / "b").mkdir()
    (out / "b" / "log.blockMesh").write_text("interrupted")  # half-written
    s = run_batch(meshes, out, preset="tiny", workers=workers, runner=fake_runner, progress=False)
    assert not (out / "a" / "ran").exists()
    assert (out / "b" / "ran").exists() and not (out / "b" / "log.blockMesh").exists()
    assert (out / "c" / "ran").exists()
    failed = json.loads((out / "bad" / "failed.json").read_text())
    assert "diverged" in failed["reason"] and "FATAL" in failed["log_tail"]
    assert s["done"] == 3 and s["failed"] == 1
    rows = {r["id"]: r for r in s["cases"]}
    assert rows["a"]["Cd"] == 0.25 and rows["bad"]["status"] == "failed"
    # A second run does nothing; with retry_failed it redoes only the failure.
    (out / "c" / "ran").unlink()
    run_batch(meshes, out, workers=workers, runner=fake_runner, progress=False)
    assert not (out / "c" / "ran").exists()
    run_batch(meshes, out, workers=workers, runner=fake_runner, progress=False, retry_failed=True)
    assert (out / "bad" / "ran").exists() and not (out / "c" / "ran").exists()
