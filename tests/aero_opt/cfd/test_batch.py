"""Batch runs resume: finished cases are skipped, interrupted ones redone, failures recorded (stand-in solver), on
the Dask executor and on a plain process pool; a worker that dies mid-case; one batch per folder."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cloudpickle
import pytest

from aero_opt.cfd.batch import run_batch
from aero_opt.cfd.executor import ClusterConfig
from aero_opt.core.errors import AeroOptError

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the stand-in solvers reach the worker processes

EXECUTORS = {"dask": ClusterConfig(), "pool": ClusterConfig(kind="pool")}


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


@pytest.mark.parametrize("executor", sorted(EXECUTORS))
@pytest.mark.parametrize("workers", [1, 2])
def test_resume_skips_done_redoes_partial_records_failures(tmp_path: Path, workers: int, executor: str) -> None:
    cluster = EXECUTORS[executor]
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    for name in ("a", "b", "c", "bad"):
        (meshes / f"{name}.stl").write_text("solid\nendsolid\n")
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / "summary.json").write_text(json.dumps({"Cd": 0.25, "converged": True}))  # finished before
    (out / "b").mkdir()
    (out / "b" / "log.blockMesh").write_text("interrupted")  # half-written
    s = run_batch(meshes, out, preset="tiny", workers=workers, runner=fake_runner, progress=False, cluster=cluster)
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
    run_batch(meshes, out, workers=workers, runner=fake_runner, progress=False, cluster=cluster)
    assert not (out / "c" / "ran").exists()
    run_batch(meshes, out, workers=workers, runner=fake_runner, progress=False, retry_failed=True, cluster=cluster)
    assert (out / "bad" / "ran").exists() and not (out / "c" / "ran").exists()


def dying_runner(mesh: Path, case: Path, **kw) -> dict:
    """Kills its worker process on the first attempt at each case (after writing part of the case)."""
    marker = case.parent / f".attempted_{case.name}"
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        case.mkdir(parents=True)
        (case / "log.blockMesh").write_text("half-written by a worker that died")
        os._exit(1)
    return fake_runner(mesh, case, **kw)


def test_a_worker_that_dies_mid_case_is_replaced_and_the_case_redone(tmp_path: Path) -> None:
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    for name in ("a", "b", "c"):
        (meshes / f"{name}.stl").write_text("solid\nendsolid\n")
    out = tmp_path / "out"
    s = run_batch(meshes, out, workers=2, runner=dying_runner, progress=False)
    assert s["done"] == 3 and s["failed"] == 0
    for name in ("a", "b", "c"):  # each case ran once to the end, on a clean folder
        assert (out / name / "ran").read_text() == "1" and not (out / name / "log.blockMesh").exists()


def test_a_second_batch_on_the_same_folder_is_refused(tmp_path: Path, locked_elsewhere) -> None:
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    (meshes / "a.stl").write_text("solid\nendsolid\n")
    out = tmp_path / "out"
    with locked_elsewhere(out) as pid:  # the first batch, still running
        with pytest.raises(AeroOptError, match=f"{out}: another aero-opt job \\(pid {pid}\\) is writing"):
            run_batch(meshes, out, runner=fake_runner, progress=False, cluster=EXECUTORS["pool"])
    assert not (out / "a").exists()
    assert run_batch(meshes, out, runner=fake_runner, progress=False, cluster=EXECUTORS["pool"])["done"] == 1
