"""Run many CFD cases: resumable, side by side on the CFD executor (:mod:`aero_opt.cfd.executor`), failures
recorded not fatal, one batch per folder.

Per mesh ``<stem>`` the batch folder holds ``<stem>/`` (the case). A case with ``summary.json`` is finished and
skipped; a case with ``failed.json`` failed before (reason and log tail inside) and is skipped unless
``retry_failed``; any other existing case folder was interrupted half-way and is deleted and redone, by the
worker that takes it (so also after that worker's predecessor died mid-case). The folder is locked while the batch
runs (:func:`aero_opt.core.atomic.folder_lock`). Independent 1-core cases side by side beat one MPI case on the
same cores (``docs/cfd.md``), hence one core per case by default.
"""

from __future__ import annotations

import json
import logging
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aero_opt.cfd.case import finished_summary
from aero_opt.cfd.env import log_tail
from aero_opt.cfd.executor import CaseExecutor, ClusterConfig
from aero_opt.core.atomic import folder_lock, write_json_atomic
from aero_opt.core.errors import AeroOptError
from aero_opt.core.physics import RHO_AIR, U_INF

log = logging.getLogger(__name__)

Runner = Callable[..., dict[str, Any]]
"""``runner(mesh_path, case_dir, preset_name=, speed=, rho=, procs=, oversubscribe=) -> summary`` (raises on
failure)."""


def case_status(case: Path) -> str:
    """``done``, ``failed``, ``partial`` (interrupted) or ``new``."""
    if finished_summary(case) is not None:
        return "done"
    if (case / "failed.json").is_file():
        return "failed"
    return "partial" if case.exists() else "new"


@dataclass(frozen=True)
class BatchCase:
    """One case of a batch, as data a worker receives."""

    runner: Runner
    mesh: Path
    case: Path
    preset: str
    speed: float
    rho: float
    procs: int = 1
    oversubscribe: bool = False


def run_one(job: BatchCase) -> tuple[str, dict[str, Any]]:
    """Run one case on a worker; never raises: a failure is written to ``failed.json`` and returned.

    The case folder is cleared first: it holds a half-written case, an earlier failure being retried, or the
    attempt of a worker that died (whose OpenFOAM processes died with it).
    """
    case = job.case
    if case.exists():
        shutil.rmtree(case)
    try:
        return "done", job.runner(job.mesh, case, preset_name=job.preset, speed=job.speed, rho=job.rho,
                                  procs=job.procs, oversubscribe=job.oversubscribe)
    except Exception as exc:  # any failure of one case must not stop the batch
        return "failed", _record_failure(job, exc, None if isinstance(exc, AeroOptError) else
                                         traceback.format_exc(limit=5))


def _record_failure(job: BatchCase, exc: Exception, trace: str | None) -> dict[str, Any]:
    case = job.case
    logs = sorted(case.glob("log.*"), key=lambda p: p.stat().st_mtime) if case.exists() else []
    info = {"mesh": str(job.mesh), "reason": str(exc) if isinstance(exc, AeroOptError) else
            f"{type(exc).__name__}: {exc}", "log": logs[-1].name if logs else None,
            "log_tail": log_tail(logs[-1], 20) if logs else None, "traceback": trace}
    case.mkdir(parents=True, exist_ok=True)
    write_json_atomic(case / "failed.json", info)
    return info


def run_batch(mesh_dir: Path, out_dir: Path, preset: str = "coarse", speed: float = U_INF, rho: float = RHO_AIR,
              workers: int | None = None, runner: Runner | None = None, retry_failed: bool = False,
              pattern: str = "*.stl", progress: bool = True, procs: int = 1, oversubscribe: bool = False,
              cluster: ClusterConfig | None = None) -> dict[str, Any]:
    """Run a case for every mesh in ``mesh_dir`` into ``out_dir/<stem>``; resumable; one job per folder.

    Args:
        mesh_dir: folder of watertight meshes in the car frame.
        out_dir: batch folder (locked while the batch runs: a second batch on it is refused).
        preset: CFD preset name.
        speed: free-stream speed (m/s); rho: air density (kg/m³).
        workers: cases side by side on this machine (None: as many as fit the cores).
        runner: the case runner (default :func:`aero_opt.cfd.case.run_case`; tests pass a stand-in).
        retry_failed: redo cases that failed before.
        pattern: glob of the meshes.
        progress: show a progress bar.
        procs: cores (MPI ranks) per case; oversubscribe: let Open MPI exceed a node's cores.
        cluster: where the cases run (:class:`aero_opt.cfd.executor.ClusterConfig`; None: a local Dask cluster).

    Returns:
        The batch summary (also ``out_dir/batch_summary.json``): counts and one row per case.
    """
    if runner is None:
        from aero_opt.cfd.case import run_case

        runner = run_case
    mesh_dir, out_dir = Path(mesh_dir), Path(out_dir)
    meshes = sorted(mesh_dir.glob(pattern))
    if not meshes:
        raise AeroOptError(f"{mesh_dir}: no meshes matching {pattern}")
    with folder_lock(out_dir):
        todo = []
        for mesh in meshes:
            case = out_dir / mesh.stem
            status = case_status(case)
            if status == "done" or (status == "failed" and not retry_failed):
                continue
            todo.append((mesh.stem, BatchCase(runner, mesh, case, preset, speed, rho, procs, oversubscribe)))
        log.info("batch: %d meshes, %d already finished or failed, %d to run", len(meshes),
                 len(meshes) - len(todo), len(todo))
        if todo:
            with CaseExecutor(cluster, workers, procs) as ex:
                ex.check_shared_folder(out_dir)
                jobs = dict(todo)
                for name, result in ex.map(run_one, todo, desc=f"cfd {preset}", progress=progress):
                    if isinstance(result, AeroOptError):  # every worker that took it died
                        _record_failure(jobs[name], result, None)
        return summarize_batch(out_dir, [m.stem for m in meshes])


def summarize_batch(out_dir: Path, names: list[str]) -> dict[str, Any]:
    """Collect every case's summary or failure into ``out_dir/batch_summary.json``."""
    rows = []
    for name in names:
        case = out_dir / name
        status = case_status(case)
        row: dict[str, Any] = {"id": name, "status": status}
        if status == "done":
            s = finished_summary(case) or {}
            row.update({k: s.get(k) for k in ("Cd", "Cd_pressure", "Cd_viscous", "Cl", "cells", "iterations",
                                              "converged")})
            row["seconds"] = s.get("seconds", {}).get("total")
        elif status == "failed":
            row["reason"] = json.loads((case / "failed.json").read_text())["reason"]
        rows.append(row)
    summary = {"n": len(rows), "done": sum(r["status"] == "done" for r in rows),
               "failed": sum(r["status"] == "failed" for r in rows), "cases": rows}
    write_json_atomic(out_dir / "batch_summary.json", summary)
    return summary
