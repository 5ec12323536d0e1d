"""Simulate a shape: the one entry point from a mesh file to its OpenFOAM drag, a fan-out over many shapes, and
the verification of shapes by repeated runs.

:func:`simulate` moves the body into the car frame when an optimizer has shifted it, reuses a finished case and
redoes a half-written or damaged one; :func:`simulate_many` runs many of them side by side, yielding each result as
it finishes (label averaging and the CFD probes use it); :func:`check_shapes` verifies shapes with K runs each on
distinct near-body grids (:func:`grid_shifts`) and gives each its mean, spread and 95% interval (``optimize
--verify``, ``compare --verify``, ``demo``). Where the cases run is :mod:`aero_opt.cfd.executor`'s business.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import trimesh

from aero_opt.cfd.case import finished_summary, get_preset, run_case
from aero_opt.cfd.executor import CaseExecutor, ClusterConfig
from aero_opt.core.errors import AeroOptError
from aero_opt.core.physics import RHO_AIR, U_INF, dynamic_pressure
from aero_opt.core.stats import relative_change, run_stats
from aero_opt.geometry.mesh_import import export_mesh, frame_shift, load_mesh

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def cfd_shift(body: trimesh.Trimesh) -> np.ndarray:
    """The translation (3,) m that :func:`simulate` applies to ``body`` before its CFD case: zero when the body
    is in the car frame (within 1 µm), else :func:`aero_opt.geometry.mesh_import.frame_shift`. Fields of the case
    sit at the body's vertices plus this."""
    shift = frame_shift(body.bounds)
    return np.zeros(3) if np.abs(shift).max() < 1e-6 else shift


def in_car_frame(mesh: Path, moved: Path) -> Path:
    """``mesh`` itself, or a copy at ``moved`` translated so the nose is at x = 0 and the body centred on y = 0.

    An optimized shape may have grown forward or sideways (PolyCube, per-vertex); drag does not depend on where the
    body sits in x and y, while the CFD case needs the car frame. Heights are kept: ground clearance is physics.
    """
    body = load_mesh(mesh)
    shift = cfd_shift(body)
    if not shift.any():
        return mesh
    log.info("%s: moved by (%.3f, %.3f) m in x, y into the car frame for CFD", mesh, shift[0], shift[1])
    body.apply_translation(shift)
    export_mesh(body, moved)
    return moved


def simulate(mesh: Path, case: Path, preset: str, speed: float = U_INF, rho: float = RHO_AIR,
             grid_shift: float = 0.0, grid_scale: float = 1.0, procs: int = 1,
             oversubscribe: bool = False) -> dict[str, Any]:
    """CFD of one shape, resumable: a finished case (its ``summary.json``) is reused, a half-written one redone.

    Args:
        mesh: closed surface mesh file in metres (moved into the car frame first when needed: :func:`in_car_frame`).
        case: the case folder; the moved copy, if any, is written beside it as ``<case>_input.stl``.
        preset: CFD preset name (:data:`aero_opt.cfd.case.PRESETS`).
        speed: free-stream speed (m/s); rho: air density (kg/m³).
        grid_shift, grid_scale: see :func:`aero_opt.cfd.case.write_case`.
        procs: MPI ranks of the solver; oversubscribe: let Open MPI exceed the cores.

    Returns:
        Cd, A_ref (m²), drag force (N), converged, cells.
    """
    case = Path(case)
    s = finished_summary(case)
    if s is None:
        if case.exists():
            shutil.rmtree(case)
        s = run_case(in_car_frame(Path(mesh), case.with_name(case.name + "_input.stl")), case, preset_name=preset,
                     speed=speed, rho=rho, grid_shift=grid_shift, grid_scale=grid_scale, procs=procs,
                     oversubscribe=oversubscribe)
    return {"Cd": s["Cd"], "A_ref": s["A_ref"], "drag_N": s["Cd"] * dynamic_pressure(rho, speed) * s["A_ref"],
            "converged": s.get("converged"), "cells": s.get("cells")}


def grid_shifts(k: int, preset: str) -> list[float]:
    """``k`` background-grid shifts (fractions of the background cell) that give ``k`` evenly spaced, distinct
    near-body grids at ``preset``.

    The grid near the body repeats when the background grid moves by one cell of the coarsest refinement box
    (2^-level of a background cell: shifts 0 and ¼ give the same near-body cells at box level 2, measured in
    ``docs/validation/fidelity.md``), so the shifts are spread over that period.
    """
    period = 2.0 ** -min(get_preset(preset).box_levels)
    return [round(period * i / k, 6) for i in range(k)]


@dataclass(frozen=True)
class SimJob:
    """One :func:`simulate` call, as data (so it can be sent to a worker process)."""

    mesh: Path
    case: Path
    preset: str
    speed: float = U_INF
    rho: float = RHO_AIR
    grid_shift: float = 0.0
    grid_scale: float = 1.0
    procs: int = 1
    oversubscribe: bool = False


def run_job(job: SimJob) -> dict[str, Any]:
    """:func:`simulate` of a :class:`SimJob`."""
    return simulate(job.mesh, job.case, job.preset, job.speed, job.rho, job.grid_shift, job.grid_scale, job.procs,
                    job.oversubscribe)


def simulate_many(jobs: Iterable[tuple[K, SimJob]], workers: int | None = None, desc: str = "cfd",
                  progress: bool = True, run: Callable[[SimJob], T] | None = None,
                  cluster: ClusterConfig | None = None, procs: int = 1) -> Iterator[tuple[K, T | AeroOptError]]:
    """Run CFD jobs side by side on the CFD executor (:class:`aero_opt.cfd.executor.CaseExecutor`), yielding as
    each finishes.

    Args:
        jobs: (key, job) pairs; keys identify the results.
        workers: cases at once on this machine (None: as many as fit the cores).
        desc: the progress bar's label.
        progress: show a progress bar.
        run: what a worker does with a job (a module-level function: it is sent to the workers); None:
            :func:`run_job`.
        cluster: where the cases run (None: a local Dask cluster).
        procs: cores each case reserves on a worker (give the jobs the same ``procs`` for their MPI ranks).

    Yields:
        (key, result) in order of completion; a case that failed with an :class:`AeroOptError` yields that error
        as its result (other exceptions propagate).
    """
    pairs = list(jobs)
    if not pairs:
        return
    with CaseExecutor(cluster, workers, procs) as ex:
        ex.check_shared_folder(Path(pairs[0][1].case).parent)
        yield from ex.map(run or run_job, pairs, desc=desc, progress=progress)


def check_verification(preset: str, runs: int) -> None:
    """Refuse a verification setting before any work starts: an unknown preset or fewer than one run.

    Raises:
        AeroOptError: naming ``--verify-preset`` or ``--verify-runs``.
    """
    get_preset(preset, "--verify-preset")
    if not isinstance(runs, int) or runs < 1:
        raise AeroOptError(f"--verify-runs {runs}: must be a whole number of at least 1")


def run_cases(case: Path, preset: str, runs: int) -> list[tuple[float, Path]]:
    """The (grid shift, case folder) of each of ``runs`` repeated runs of one shape: the first (shift 0) is
    ``case`` itself, so a single-run verification's case is reused; the others are ``<case>_s<shift>``."""
    check_verification(preset, runs)
    return [(g, case if g == 0 else case.with_name(f"{case.name}_s{g:.4f}")) for g in grid_shifts(runs, preset)]


def check_shapes(shapes: Iterable[tuple[K, Path, Path]], preset: str, runs: int = 1, speed: float = U_INF,
                 rho: float = RHO_AIR, workers: int | None = None, cluster: ClusterConfig | None = None,
                 procs: int = 1, progress: bool = True, desc: str | None = None
                 ) -> dict[K, dict[str, Any] | AeroOptError]:
    """Verify shapes by repeated CFD: each is simulated ``runs`` times on distinct near-body grids
    (:func:`grid_shifts`), all cases side by side on the executor, and its Cd and drag averaged over the runs.

    A run that failed or did not meet the preset's convergence criterion is left out of the means and counted; a
    shape with no usable run gets an :class:`AeroOptError` naming its case. Finished cases are reused.

    Args:
        shapes: (key, mesh file, case folder) triples; run j of a shape is :func:`run_cases`' j-th folder.
        preset: CFD preset; runs: runs per shape (K).
        speed, rho: free stream (m/s, kg/m³).
        workers, cluster, procs, progress: as :func:`simulate_many`; desc: the progress bar's label.

    Returns:
        key -> verdict: ``Cd`` and ``drag_N`` (the means), ``A_ref`` (m²), ``Cd_stats`` and ``drag_stats``
        (:meth:`RunStats.as_dict`: mean, std, ci95, n), ``runs_asked``, ``not_converged``, ``failed``, ``preset``
        and ``runs`` (per run: grid_shift, case, and Cd, drag_N, converged, cells or error) — or the error.
    """
    triples = list(shapes)
    plan = {key: run_cases(Path(case), preset, runs) for key, _, case in triples}
    jobs = [((key, j), SimJob(Path(mesh), c, preset, speed, rho, grid_shift=g, procs=procs))
            for key, mesh, _ in triples for j, (g, c) in enumerate(plan[key])]
    got: dict[tuple[K, int], dict[str, Any] | AeroOptError] = {}
    for (key, j), result in simulate_many(jobs, workers, desc=desc or f"cfd {preset} x{runs}", progress=progress,
                                          cluster=cluster, procs=procs):
        got[(key, j)] = result
    out: dict[K, dict[str, Any] | AeroOptError] = {}
    for key, _, case in triples:
        records, usable = [], []
        for j, (g, c) in enumerate(plan[key]):
            r = got.get((key, j), AeroOptError(f"{c}: not run"))
            if isinstance(r, AeroOptError):
                records.append({"grid_shift": g, "case": str(c), "error": str(r)})
                continue
            records.append({"grid_shift": g, "case": str(c), **r})
            if r.get("converged") is not False:
                usable.append(r)
        failed = sum("error" in x for x in records)
        not_conv = len(records) - failed - len(usable)
        if not usable:
            out[key] = AeroOptError(f"{case}: no usable CFD run of {runs} ({failed} failed, {not_conv} did not "
                                    f"converge): " + "; ".join(x.get("error", "not converged") for x in records))
            continue
        if len(usable) < runs:
            log.warning("%s: %d of %d runs usable (%d failed, %d did not converge)", case, len(usable), runs, failed,
                        not_conv)
        cd, drag = run_stats([u["Cd"] for u in usable]), run_stats([u["drag_N"] for u in usable])
        out[key] = {"Cd": cd.mean, "drag_N": drag.mean, "A_ref": usable[0]["A_ref"], "Cd_stats": cd.as_dict(),
                    "drag_stats": drag.as_dict(), "preset": preset, "runs_asked": runs, "not_converged": not_conv,
                    "failed": failed, "converged": True, "runs": records}
    return out


def drag_change(initial: dict[str, Any], final: dict[str, Any]) -> dict[str, float | None]:
    """Relative drag change of a final shape against its initial one from two :func:`check_shapes` verdicts:
    ``drag_change`` (ratio of the mean drags − 1), ``drag_change_ci95`` (:func:`relative_change`) and
    ``drag_change_se``, its standard error from both shapes' run-to-run spread (both None when either shape has
    fewer than two runs)."""
    fs = final.get("drag_stats") or {"mean": final["drag_N"]}
    is_ = initial.get("drag_stats") or {"mean": initial["drag_N"]}
    change, ci = relative_change(is_, fs)
    se = None
    if fs.get("std") is not None and is_.get("std") is not None:
        se = float((1.0 + change) * np.hypot(fs["std"] / fs["mean"] / np.sqrt(fs["n"]),
                                             is_["std"] / is_["mean"] / np.sqrt(is_["n"])))
    return {"drag_change": change, "drag_change_ci95": ci, "drag_change_se": se}
