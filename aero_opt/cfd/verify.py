"""Simulate a shape: the one entry point from a mesh file to its OpenFOAM drag, and a fan-out over many shapes.

:func:`simulate` moves the body into the car frame when an optimizer has shifted it, reuses a finished case and
redoes a half-written one; :func:`simulate_many` runs many of them side by side, yielding each result as it
finishes. The optimizer's verification (``aero-opt compare``), label averaging and the CFD probes all go through
these two; where the cases run is :mod:`aero_opt.cfd.executor`'s business.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import trimesh

from aero_opt.cfd.case import get_preset, run_case
from aero_opt.cfd.executor import CaseExecutor, ClusterConfig
from aero_opt.core.errors import AeroOptError
from aero_opt.core.physics import RHO_AIR, U_INF, dynamic_pressure
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
    done = case / "summary.json"
    if done.is_file():
        s = json.loads(done.read_text())
    else:
        if case.exists():
            shutil.rmtree(case)
        s = run_case(in_car_frame(Path(mesh), case.with_name(case.name + "_input.stl")), case, preset_name=preset,
                     speed=speed, rho=rho, grid_shift=grid_shift, grid_scale=grid_scale, procs=procs,
                     oversubscribe=oversubscribe)
    return {"Cd": s["Cd"], "A_ref": s["A_ref"], "drag_N": s["Cd"] * dynamic_pressure(rho, speed) * s["A_ref"],
            "converged": s.get("converged"), "cells": s.get("cells")}


@dataclass(frozen=True)
class RunStats:
    """Mean, spread and 95% interval of K repeated runs of one quantity (e.g. Cd over grid shifts)."""

    mean: float
    std: float | None
    """Sample standard deviation of one run (ddof 1); None with fewer than two runs."""
    half_width: float | None
    """Half width of the 95% confidence interval of the mean (Student t, K - 1 degrees of freedom); None with
    fewer than two runs."""
    n: int
    """Runs that entered the mean."""

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready fields."""
        return {"mean": self.mean, "std": self.std, "ci95": self.half_width, "n": self.n}


def run_stats(values: Iterable[float]) -> RunStats:
    """:class:`RunStats` of the finite ``values`` (a run that failed is passed as NaN and left out).

    Raises:
        AeroOptError: no finite value.
    """
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
    if len(v) == 0:
        raise AeroOptError("no successful run to average")
    if len(v) == 1:
        return RunStats(float(v[0]), None, None, 1)
    std = float(v.std(ddof=1))
    return RunStats(float(v.mean()), std, float(stats.t.ppf(0.975, len(v) - 1) * std / np.sqrt(len(v))), len(v))


def pooled_std(table: np.ndarray, remove_column_means: bool = False) -> float | None:
    """One run's noise std from repeated runs: the pooled within-row std of a (shapes, runs) table.

    Args:
        table: (N, K) values (e.g. Cd), one row per shape, one column per run; NaN marks a missing run (rows
            with fewer than two runs add nothing).
        remove_column_means: also remove each column's mean offset from the grand mean (a two-way layout: the
            systematic effect of a run setting, e.g. a resolution change, is not counted as noise); needs a
            table without NaN.

    Returns:
        sqrt(residual sum of squares / degrees of freedom), or None when no row has two runs.
    """
    t = np.asarray(table, np.float64)
    if remove_column_means:
        if not np.isfinite(t).all():
            raise AeroOptError("pooled_std: remove_column_means needs a table without missing runs")
        resid = t - t.mean(axis=1, keepdims=True)
        resid = resid - resid.mean(axis=0, keepdims=True)
        dof = (t.shape[0] - 1) * (t.shape[1] - 1)
        return float(np.sqrt(np.sum(resid**2) / dof)) if dof > 0 else None
    ss, dof = 0.0, 0
    for row in t:
        v = row[np.isfinite(row)]
        if len(v) >= 2:
            ss += float(((v - v.mean()) ** 2).sum())
            dof += len(v) - 1
    return float(np.sqrt(ss / dof)) if dof else None


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
