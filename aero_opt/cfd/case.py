"""Build and run an external-aerodynamics OpenFOAM case around a watertight car mesh.

Set-up (measured to work on this OpenFOAM build; why each choice: ``docs/cfd.md``): a wind-tunnel box from
``blockMesh`` (3 body lengths upstream, 6 downstream, side at W/2 + 5.2 H, top at 7.2 H, base cell L/5);
``snappyHexMesh`` with surface, feature and wake-box refinement; a moving ground at the free-stream speed;
a symmetry plane at y = 0 when the body is mirror-symmetric (half model, forces doubled), full model otherwise;
steady ``simpleFoam`` with k-ω SST and wall functions from a uniform initial field.

Stopping criterion: at least ``min_iter`` iterations, then stop as soon as the last ``window`` values of Cd lie
in a band narrower than ``tol`` × |mean Cd| (default 1% over 100 iterations), or at ``max_iter``.

Guards against OpenFOAM's silent failures: a non-watertight or out-of-frame mesh is refused before meshing, and
after meshing the fluid volume must equal the tunnel volume minus the body's (a body meshed inside fails).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import trimesh

from aero_opt.cfd.env import die_with_parent, log_tail, openfoam_env, run_tool
from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.errors import AeroOptError
from aero_opt.core.physics import RHO_AIR, U_INF, dynamic_pressure, frontal_area
from aero_opt.core.runfolder import run_outputs

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
NU_AIR = 1.5e-5
"""Kinematic viscosity of air (m²/s)."""


@dataclass(frozen=True)
class Preset:
    """Mesh and iteration settings of one accuracy level."""

    surface_level: int
    """snappyHexMesh refinement level on the body surface (cell = base / 2^level)."""
    feature_level: int
    """Refinement level on feature edges."""
    box_levels: tuple[int, ...]
    """Levels of nested wake boxes, coarse to fine."""
    between: int
    """nCellsBetweenLevels."""
    min_iter: int = 200
    """Iterations before the convergence test starts."""
    max_iter: int = 600
    """Iteration cap."""
    window: int = 100
    """Cd values in the convergence band."""
    tol: float = 0.01
    """Band width relative to |mean Cd|."""
    base_cells_per_length: float = 5.0
    """Base (blockMesh) cells per body length."""
    layers: int = 0
    """Prism layers snappyHexMesh grows on the body (``addLayers``); 0: none."""
    near_wake_level: int = 0
    """Level of a box around the body's rear and its near wake (the last 30% of the body to 0.35 body lengths
    behind it, up to 1.1 heights); 0: no such box."""
    turbulence_convection: str = "upwind"
    """Convection scheme of k and ω: ``upwind`` (first order) or ``linearUpwind`` (second order)."""
    average: int = 0
    """Report forces as the mean over the last ``average`` iterations instead of the last one; 0: the last."""


PRESETS: dict[str, Preset] = {
    "tiny": Preset(3, 3, (2,), 2, min_iter=60, max_iter=150, window=40, tol=0.03),
    "coarse": Preset(4, 4, (2, 3), 2),
    "verify": Preset(4, 4, (2, 3), 2, layers=3, average=100, tol=0.005),
    "medium": Preset(5, 5, (2, 3, 4), 3, max_iter=800),
    "fine": Preset(6, 6, (2, 3, 4, 5), 3, max_iter=1500),
}
"""The presets a user chooses from (``--preset``). ``verify`` is the shape-verification preset chosen by the CFD
fidelity study (``docs/validation/fidelity.md``): ``coarse`` with three prism layers on the body, its Cd the mean of
the last 100 iterations, stopped when that mean has settled (its two halves within 0.5%)."""

CANDIDATE_PRESETS: dict[str, Preset] = {
    "coarse-body5": Preset(5, 5, (2, 3), 2),
    "coarse-layers": Preset(4, 4, (2, 3), 2, layers=3),
    "coarse-wake4": Preset(4, 4, (2, 3), 2, near_wake_level=4),
    "coarse-2nd": Preset(4, 4, (2, 3), 2, turbulence_convection="linearUpwind"),
    "coarse-2nd-layers": Preset(4, 4, (2, 3), 2, layers=3, turbulence_convection="linearUpwind"),
}
"""Levers of the CFD fidelity study (``scripts/studies/study_fidelity.py``, ``docs/validation/fidelity.md``):
each changes one thing of ``coarse``; ``coarse-2nd-layers`` combines two of them (averaging the forces over the
last iterations needs no run of its own: the study computes it from every case's force history). Runnable by name
like a preset, not offered by ``--preset``."""


def get_preset(name: str, flag: str = "--preset") -> Preset:
    """The preset or study candidate called ``name``.

    Raises:
        AeroOptError: unknown name (the message names ``flag`` and lists the user presets).
    """
    if name in PRESETS:
        return PRESETS[name]
    if name in CANDIDATE_PRESETS:
        return CANDIDATE_PRESETS[name]
    raise AeroOptError(f"{flag} {name!r}: choose from {', '.join(PRESETS)}")


@dataclass
class CaseGeometry:
    """Body and tunnel dimensions of a case (metres)."""

    length: float
    width: float
    height: float
    a_ref: float
    """Frontal area of the full body (m²)."""
    volume: float
    """Body volume (m³)."""
    area: float
    """Body surface area (m²)."""
    half: bool
    """Half model with a symmetry plane at y = 0."""
    tunnel: list[list[float]] = field(default_factory=list)
    """[[x0, y0, 0], [x1, y1, z1]]."""
    base_cell: float = 0.0


def mirror_deviation(mesh: trimesh.Trimesh) -> float:
    """The largest distance (metres, or the mesh's unit) from a mirrored vertex (x, −y, z) to the surface: 0 for a body
    mirror-symmetric about y = 0."""
    import igl

    mirrored = mesh.vertices * np.array([1.0, -1.0, 1.0])
    d2, _, _ = igl.point_mesh_squared_distance(mirrored, np.asarray(mesh.vertices, np.float64),
                                               np.asarray(mesh.faces, np.int64))
    return float(np.sqrt(d2.max()))


SYMMETRY_TOL = 2e-3
"""A body is run as a half model when its :func:`mirror_deviation` is under this fraction of its length."""


def is_symmetric(mesh: trimesh.Trimesh, tol: float = SYMMETRY_TOL, deviation: float | None = None) -> bool:
    """Whether the body is mirror-symmetric about y = 0 (:func:`mirror_deviation`, or ``deviation`` when already
    measured, under ``tol`` × length)."""
    return bool((mirror_deviation(mesh) if deviation is None else deviation) < tol * mesh.extents[0])


def _box_entries(geo: CaseGeometry, preset: Preset) -> tuple[str, str]:
    """snappyHexMeshDict geometry and refinementRegions entries of the nested wake boxes (and the near-wake box)."""
    L, W, H = geo.length, geo.width, geo.height
    boxes = []
    n = len(preset.box_levels)
    for i, level in enumerate(preset.box_levels):
        t = (i + 1) / n  # 0 -> widest box, 1 -> tightest
        boxes.append((f"wake{level}", level, -(0.5 - 0.3 * t) * L, L + (2.5 - 1.6 * t) * L,
                      0.5 * W + (1.2 - 0.8 * t) * H, H * (2.0 - 0.6 * t)))
    if preset.near_wake_level:
        boxes.append(("nearWake", preset.near_wake_level, 0.7 * L, 1.35 * L, 0.5 * W + 0.1 * H, 1.1 * H))
    geometry, regions = [], []
    for name, level, x0, x1, y1, z1 in boxes:
        y0 = 0.0 if geo.half else -y1
        geometry.append(f"    {name} {{ type searchableBox; min ({x0:.4f} {y0:.4f} -1); max ({x1:.4f} {y1:.4f} "
                        f"{z1:.4f}); }}")
        regions.append(f"        {name} {{ mode inside; levels ((1e15 {level})); }}")
    return "\n".join(geometry), "\n".join(regions)


def _convection(preset: Preset, name: str) -> str:
    """The fvSchemes divergence scheme of the turbulence field ``name`` (k or omega)."""
    if preset.turbulence_convection == "upwind":
        return "bounded Gauss upwind"
    if preset.turbulence_convection == "linearUpwind":
        return f"bounded Gauss linearUpwind grad({name})"
    raise AeroOptError(f"turbulence_convection {preset.turbulence_convection!r}: choose upwind or linearUpwind")


def write_case(mesh: trimesh.Trimesh, case: Path, preset: Preset, speed: float = U_INF, rho: float = RHO_AIR,
               procs: int = 1, half: bool | None = None, grid_shift: float = 0.0,
               grid_scale: float = 1.0) -> CaseGeometry:
    """Write a complete case (dictionaries, initial fields, ``constant/triSurface/body.stl``).

    Args:
        mesh: watertight body in the car frame (metres).
        case: case folder (created; absent, or holding nothing but a run folder's lock and record).
        preset: mesh and iteration settings.
        speed: free-stream speed (m/s).
        rho: air density (kg/m³), used for the forces only (the solver is incompressible).
        procs: MPI ranks for simpleFoam.
        half: force a half (True) or full (False) model; None decides from the body's symmetry.
        grid_shift: move the background grid upstream by this fraction of its cell (0..1). Every refinement level
            is a halving of that grid, so this changes how the cells meet the body without changing the body: a
            probe of the mesh's share in the result (``scripts/pipeline/average_labels.py``). Shifts ½ apart give the
            same cells at every refinement level ≥ 1 (they differ only in the background cells).
        grid_scale: multiply the background cell (and so every refined cell) by this factor (0.8..1.25). Unlike
            ``grid_shift`` it moves how the cells meet the body along y and z too (the ground and the symmetry
            plane pin the grid there), at the price of a slightly different resolution.

    Returns:
        The case geometry (also written to ``case/geometry.json``).
    """
    L, W, H = (float(e) for e in mesh.extents)
    H = float(mesh.bounds[1, 2])  # height above the ground
    half = is_symmetric(mesh) if half is None else half
    base = L / preset.base_cells_per_length * grid_scale
    if not 0.0 <= grid_shift < 1.0:
        raise AeroOptError(f"--grid-shift {grid_shift}: must be in [0, 1) (a fraction of the background cell)")
    if not 0.8 <= grid_scale <= 1.25:
        raise AeroOptError(f"grid_scale {grid_scale}: must be in [0.8, 1.25]")
    x0, x1 = -3.0 * L - grid_shift * base, L + 6.0 * L
    y1 = 0.5 * W + 5.2 * H
    z1 = H + 6.2 * H
    nx, ny, nz = (max(1, math.ceil(d / base)) for d in (x1 - x0, y1 if half else 2 * y1, z1))
    y1 = (ny if half else ny / 2) * base
    x1 = x0 + nx * base
    z1 = nz * base
    y0 = 0.0 if half else -y1
    geo = CaseGeometry(length=L, width=W, height=H, a_ref=frontal_area(mesh.vertices, mesh.faces),
                       volume=float(mesh.volume), area=float(mesh.area), half=half,
                       tunnel=[[x0, y0, 0.0], [x1, y1, z1]], base_cell=base)
    box_geometry, box_regions = _box_entries(geo, preset)
    k = 1.5 * (0.005 * speed) ** 2
    values = {
        "max_iter": preset.max_iter, "rho": rho, "speed": speed, "nu": NU_AIR, "cofr_x": 0.5 * L, "l_ref": L,
        "a_ref_case": geo.a_ref * (0.5 if half else 1.0),
        "x0": x0, "x1": x1, "y0": y0, "y1": y1, "z1": z1, "nx": nx, "ny": ny, "nz": nz,
        "ymin_patch": "symmetry" if half else "sideMinus", "ymin_type": "symmetry" if half else "patch",
        "ymin_field_type": "symmetry" if half else "slip",
        "procs": procs, "surface_level": preset.surface_level, "feature_level": preset.feature_level,
        "between": preset.between, "box_geometry": box_geometry, "box_regions": box_regions,
        "loc_x": x0 + 0.5137 * base, "loc_y": y1 - 0.5129 * base, "loc_z": z1 - 0.5113 * base,
        "k": f"{k:.6g}", "omega": f"{k / (10.0 * NU_AIR):.6g}",
        "add_layers": "true" if preset.layers else "false",
        "layer_entries": f"body {{ nSurfaceLayers {preset.layers}; }}" if preset.layers else "",
        "div_k": _convection(preset, "k"), "div_omega": _convection(preset, "omega"),
    }
    case = Path(case)
    if case.exists() and run_outputs(case):  # a run folder's own lock and record are not case files
        raise AeroOptError(f"{case}: case folder is not empty")
    for src in TEMPLATES.rglob("*"):
        if src.is_file():
            dst = case / src.relative_to(TEMPLATES)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(Template(src.read_text()).substitute(values))
    tri = case / "constant" / "triSurface"
    tri.mkdir(parents=True, exist_ok=True)
    mesh.export(tri / "body.stl")
    # Back-date controlDict so that the run-time stop request (a rewrite) is noticed (fileModificationSkew).
    past = time.time() - 120
    os.utime(case / "system" / "controlDict", (past, past))
    (case / "geometry.json").write_text(json.dumps(asdict(geo), indent=2) + "\n")
    return geo


def _check_mesh(case: Path, geo: CaseGeometry) -> dict[str, Any]:
    """Run checkMesh, parse cells and fluid volume, and fail when the body was meshed inside."""
    run_tool(["checkMesh", "-constant"], case, "checkMesh")
    text = (case / "log.checkMesh").read_text(errors="replace")
    cells = re.search(r"^\s*cells:\s+(\d+)", text, re.M)
    vol = re.search(r"Total volume = ([0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?)", text)
    if not cells or not vol:
        raise AeroOptError(f"checkMesh output not understood in {case}: {log_tail(case / 'log.checkMesh')}")
    (x0, y0, _), (x1, y1, z1) = geo.tunnel
    body = geo.volume * (0.5 if geo.half else 1.0)
    expected = (x1 - x0) * (y1 - y0) * z1 - body
    fluid = float(vol.group(1))
    # A body meshed inside adds its own volume to the fluid: allow a quarter of it for snapping errors.
    if abs(fluid - expected) > 0.25 * body:
        raise AeroOptError(f"mesh check failed in {case}: fluid volume {fluid:.4f} m³ vs expected {expected:.4f} m³ "
                           f"(body {body:.4f} m³): the body was meshed inside or lost")
    return {"cells": int(cells.group(1)), "fluid_volume": fluid, "expected_fluid_volume": expected}


def finished_summary(case: Path) -> dict[str, Any] | None:
    """A case's ``summary.json`` when the case finished and the file is readable; None otherwise (a damaged
    summary is logged, naming the file, and the case counts as unfinished, so it is run again)."""
    path = Path(case) / "summary.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        log.warning("%s: unreadable (%s); the case will be run again", path, exc)
        return None
    if not isinstance(data, dict) or "Cd" not in data and not data.get("mesh_only"):
        log.warning("%s: not a case summary; the case will be run again", path)
        return None
    return data


def layer_report(case: Path) -> dict[str, float] | None:
    """The body's prism layers from ``log.snappyHexMesh``: mean layers per face and the overall thickness reached
    (% of the asked); None when the case asked for none."""
    path = Path(case) / "log.snappyHexMesh"
    text = path.read_text(errors="replace") if path.is_file() else ""
    table = text.rfind("layers   overall thickness")  # the final table (an earlier one lists the asked layers)
    m = re.search(r"^body\s+\d+\s+([0-9.eE+-]+)\s+([0-9.eE+-]+)\s+([0-9.eE+-]+)\s*$", text[table:], re.M) \
        if table >= 0 else None
    if not m:
        return None
    return {"mean_layers": float(m.group(1)), "thickness_m": float(m.group(2)), "thickness_pct": float(m.group(3))}


def read_coefficients(case: Path) -> np.ndarray:
    """Cd history (N,) from ``postProcessing/forceCoeffs/0/coefficient.dat`` (empty if not yet written)."""
    path = case / "postProcessing" / "forceCoeffs" / "0" / "coefficient.dat"
    if not path.is_file():
        return np.zeros(0)
    header, rows = None, []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("#"):
            if "Cd" in line:
                header = line.lstrip("#").split()
            continue
        parts = line.split()
        if header and len(parts) == len(header):
            rows.append(float(parts[header.index("Cd")]))
    return np.asarray(rows)


def _last_coefficients(case: Path) -> dict[str, float]:
    path = case / "postProcessing" / "forceCoeffs" / "0" / "coefficient.dat"
    header, last = None, None
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("#") and "Cd" in line:
            header = line.lstrip("#").split()
        elif line.strip() and not line.startswith("#"):
            last = line.split()
    if header is None or last is None:
        raise AeroOptError(f"{path}: no force coefficients written")
    return {h: float(v) for h, v in zip(header, last) if h != "Time"}


def read_force_history(case: Path) -> np.ndarray:
    """Force history (N, 9) on the case's body patch (half body for half models), one row per iteration: total,
    pressure and viscous force vectors (N), from ``postProcessing/forces/0/force.dat``."""
    path = Path(case) / "postProcessing" / "forces" / "0" / "force.dat"
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        if line.strip() and not line.startswith("#"):
            nums = line.replace("(", " ").replace(")", " ").split()
            if len(nums) >= 10:
                rows.append([float(x) for x in nums[1:10]])
    if not rows:
        raise AeroOptError(f"{path}: no forces written")
    return np.asarray(rows)


def read_forces(case: Path, average: int = 0) -> dict[str, np.ndarray]:
    """Total, pressure and viscous force vectors (3,) N on the case's body patch (half body for half models): the
    last iteration's, or with ``average`` > 0 the mean over the last ``average`` iterations."""
    hist = read_force_history(case)
    row = hist[-average:].mean(axis=0) if average > 0 else hist[-1]
    return {"total": row[0:3], "pressure": row[3:6], "viscous": row[6:9]}


def mean_settled(cd: np.ndarray, window: int, tol: float) -> bool:
    """Whether the mean Cd over the last ``window`` iterations has settled: the means of its two halves differ by
    less than ``tol`` of their mean (a solution that oscillates about a steady mean passes; one that drifts does
    not)."""
    if window < 2 or len(cd) < window:
        return False
    tail = cd[-window:]
    half = window // 2
    return bool(abs(tail[half:].mean() - tail[:half].mean()) < tol * abs(tail.mean()))


def converged(cd: np.ndarray, preset: Preset) -> bool:
    """The stopping criterion: ≥ ``min_iter`` iterations, and then the last ``window`` Cd in a band narrower than
    ``tol`` × |mean| — or, for a preset that reports the mean over the last ``average`` iterations, that mean
    settled (:func:`mean_settled`)."""
    if len(cd) < max(preset.min_iter, preset.window, preset.average):
        return False
    if preset.average:
        return mean_settled(cd, preset.average, preset.tol)
    tail = cd[-preset.window:]
    return bool(np.ptp(tail) < preset.tol * abs(tail.mean()))


def final_verdict(cd: np.ndarray, preset: Preset, stopped_at: int | None) -> bool:
    """Whether a finished run converged: the stopping criterion (:func:`converged`) met by the Cd history (N,) as
    it stood when the run was told to stop (``stopped_at`` iterations; None: it was not told), or by the whole
    history. The solver finishes the iteration it is in before it stops, and on a wake that oscillates about a
    settled mean those one or two extra iterations can move the window off the criterion it met."""
    return bool(stopped_at is not None and converged(cd[:stopped_at], preset)) or converged(cd, preset)


def _request_stop(case: Path) -> None:
    cd = case / "system" / "controlDict"
    text = re.sub(r"^stopAt\s+\w+;", "stopAt          writeNow;", cd.read_text(), count=1, flags=re.M)
    cd.write_text(text)


def _residuals(log_path: Path) -> dict[str, float]:
    res: dict[str, float] = {}
    pat = re.compile(r"Solving for (\w+), Initial residual = ([0-9.eE+-]+)")
    for line in log_path.read_text(errors="replace").splitlines()[-400:]:
        m = pat.search(line)
        if m:
            res[m.group(1)] = float(m.group(2))
    return res


def _mpirun(procs: int, oversubscribe: bool) -> list[str]:
    """The ``mpirun`` prefix of a tool run on ``procs`` ranks (Open MPI refuses more ranks than cores unless
    ``oversubscribe``)."""
    return ["mpirun", "-np", str(procs), *(["--oversubscribe"] if oversubscribe else [])]


def _run_snappy(case: Path, procs: int, oversubscribe: bool) -> float:
    """snappyHexMesh, on ``procs`` MPI ranks when more than one (decomposePar, snappyHexMesh -parallel,
    reconstructParMesh -constant); returns the wall time (s)."""
    if procs <= 1:
        return run_tool(["snappyHexMesh", "-overwrite"], case, "snappyHexMesh")
    t = run_tool(["decomposePar", "-force"], case, "decomposePar.mesh")
    t += run_tool([*_mpirun(procs, oversubscribe), "snappyHexMesh", "-overwrite", "-parallel"], case, "snappyHexMesh")
    t += run_tool(["reconstructParMesh", "-constant"], case, "reconstructParMesh")
    for sub in case.glob("processor*"):
        shutil.rmtree(sub)
    return t


def _run_solver(case: Path, preset: Preset, procs: int, oversubscribe: bool = False
                ) -> tuple[np.ndarray, bool, float]:
    """Run simpleFoam while watching Cd; returns (Cd history, converged, seconds)."""
    env = openfoam_env()
    if procs > 1:
        run_tool(["decomposePar", "-force"], case, "decomposePar")
        cmd = [*_mpirun(procs, oversubscribe), "simpleFoam", "-parallel"]
    else:
        cmd = ["simpleFoam"]
    t0 = time.perf_counter()
    stopped_at: int | None = None
    with open(case / "log.simpleFoam", "w") as logf:
        proc = subprocess.Popen(cmd, cwd=case, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=die_with_parent)
        try:
            while proc.poll() is None:
                time.sleep(1.0)
                cd = read_coefficients(case)
                if len(cd) and not np.isfinite(cd[-1]) or (len(cd) and abs(cd[-1]) > 1e3):
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    raise AeroOptError(f"simpleFoam diverged in {case} (Cd = {cd[-1]:.3g} at iteration {len(cd)})")
                if stopped_at is None and converged(cd, preset):
                    _request_stop(case)
                    stopped_at = len(cd)
        except BaseException:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            raise
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise AeroOptError(f"simpleFoam failed in {case} (exit {proc.returncode}): {log_tail(case / 'log.simpleFoam')}")
    cd = read_coefficients(case)
    return cd, final_verdict(cd, preset, stopped_at), seconds


def plot_convergence(path: Path, cd: np.ndarray, preset: Preset, converged_ok: bool, cd_reported: float) -> None:
    """The Cd history of a case as a PNG: every iteration, the stopping window shaded with the preset's band
    (±tol/2 × |mean Cd| around the window's mean), and the Cd the case reports.

    Args:
        path: the PNG to write.
        cd: (N,) Cd per iteration (:func:`read_force_history`).
        preset: the case's preset (its window, tolerance and averaging).
        converged_ok: whether the case met its criterion (:func:`converged`).
        cd_reported: the Cd of the summary (the last iteration's, or the mean of the last ``average``).
    """
    from aero_opt.geometry.render import plt, save_figure

    it = np.arange(1, len(cd) + 1)
    fig, ax = plt.subplots(figsize=(6, 3.4), layout="constrained")
    ax.plot(it, cd, lw=0.9, label="Cd per iteration")
    w = min(preset.window, len(cd))
    mean = float(cd[-w:].mean())
    half = 0.5 * preset.tol * abs(mean)
    ax.axvspan(it[-w], it[-1], color="0.85", label=f"last {w} iterations")
    ax.fill_between(it[-w:], mean - half, mean + half, color="tab:green", alpha=0.25,
                    label=f"band ±{50 * preset.tol:g}% of the mean")
    ax.axhline(cd_reported, color="k", lw=0.8, ls="--",
               label=f"reported Cd {cd_reported:.4f}" + (f" (mean of last {preset.average})" if preset.average else ""))
    tail = cd[len(cd) // 3:]
    pad = 0.15 * float(np.ptp(tail)) + 0.02 * abs(mean)
    ax.set_ylim(float(tail.min()) - pad, float(tail.max()) + pad)  # the settling, not the first transients
    ax.set_xlabel("iteration")
    ax.set_ylabel("Cd")
    ax.set_title(f"{'converged' if converged_ok else 'NOT converged'} after {len(cd)} iterations "
                 f"(band {100 * float(np.ptp(cd[-w:])) / abs(mean):.2f}% over the last {w}, "
                 f"criterion {100 * preset.tol:g}%)", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
    save_figure(fig, path, dpi=100)


def clean_case(case: Path) -> None:
    """Delete the bulky parts of a finished case (meshes, time and processor folders), keeping the logs,
    ``postProcessing`` (forces, surface fields), ``system``, ``geometry.json`` and ``summary.json``."""
    for p in case.iterdir():
        if p.is_dir() and (p.name.startswith("processor") or re.fullmatch(r"[0-9.eE+-]+", p.name) and p.name != "0"):
            shutil.rmtree(p)
    for sub in ("polyMesh", "extendedFeatureEdgeMesh"):
        shutil.rmtree(case / "constant" / sub, ignore_errors=True)


def run_case(mesh_path: Path, case: Path, preset_name: str = "coarse", speed: float = U_INF, rho: float = RHO_AIR,
             procs: int = 1, half: bool | None = None, keep: bool = False, mesh_only: bool = False,
             oversubscribe: bool = False,
             grid_shift: float = 0.0, grid_scale: float = 1.0) -> dict[str, Any]:
    """Build and run one case; writes and returns ``summary.json``.

    Args:
        mesh_path: watertight body mesh in the car frame (metres).
        case: case folder (absent, or holding nothing but a run folder's lock and record).
        preset_name: tiny, coarse, medium or fine.
        speed: free-stream speed (m/s).
        rho: air density (kg/m³).
        procs: MPI ranks for snappyHexMesh and simpleFoam (1 = serial).
        oversubscribe: let Open MPI start more ranks than the machine has cores (off: it refuses).
        half: force half/full model; None: half when the body is symmetric.
        keep: keep the mesh and time folders (otherwise they are deleted after the run).
        mesh_only: stop after meshing and the mesh checks (cells and meshing times; no forces).
        grid_shift: background-grid shift, a fraction of its cell (see :func:`write_case`).
        grid_scale: background-cell size factor (see :func:`write_case`).

    Returns:
        The summary: Cd, Cd_pressure, Cd_viscous, Cl, A_ref, cells, iterations, converged, residuals, times.

    Raises:
        AeroOptError: bad input, OpenFOAM missing, meshing failure, failed mesh check, divergence.
    """
    from aero_opt.geometry.mesh_import import check_body, load_mesh

    preset = get_preset(preset_name)
    if speed <= 0:
        raise AeroOptError(f"--speed {speed}: must be positive")
    openfoam_env()
    mesh = load_mesh(mesh_path)
    check_body(mesh, str(mesh_path))
    case = Path(case)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    geo = write_case(mesh, case, preset, speed=speed, rho=rho, procs=procs, half=half, grid_shift=grid_shift,
                     grid_scale=grid_scale)
    times["setup"] = time.perf_counter() - t0
    times["blockMesh"] = run_tool(["blockMesh"], case, "blockMesh")
    times["surfaceFeatureExtract"] = run_tool(["surfaceFeatureExtract"], case, "surfaceFeatureExtract")
    times["snappyHexMesh"] = _run_snappy(case, procs, oversubscribe)
    mesh_info = _check_mesh(case, geo)
    if preset.layers:
        mesh_info["layers"] = layer_report(case)
    if mesh_only:
        summary = {"mesh": str(mesh_path), "preset": preset_name, "half_model": geo.half, "A_ref": geo.a_ref,
                   "length": geo.length, "cells": mesh_info["cells"], "fluid_volume_m3": mesh_info["fluid_volume"],
                   "layers": mesh_info.get("layers"), "mesh_only": True,
                   "seconds": {k: round(v, 2) for k, v in times.items()}}
        summary["seconds"]["total"] = round(time.perf_counter() - t0, 2)
        write_json_atomic(case / "summary.json", summary)
        return summary
    cd_hist, ok, times["simpleFoam"] = _run_solver(case, preset, procs, oversubscribe)
    coeffs = _last_coefficients(case)
    forces = read_forces(case, preset.average)
    factor = 2.0 if geo.half else 1.0
    q_a = dynamic_pressure(rho, speed) * geo.a_ref
    summary = {
        "mesh": str(mesh_path), "preset": preset_name, "speed": speed, "rho": rho, "nu": NU_AIR,
        "half_model": geo.half, "A_ref": geo.a_ref, "length": geo.length,
        "Cd": factor * forces["total"][0] / q_a,
        "Cd_pressure": factor * forces["pressure"][0] / q_a,
        "Cd_viscous": factor * forces["viscous"][0] / q_a,
        "Cl": factor * forces["total"][2] / q_a,
        "Cd_forceCoeffs": coeffs.get("Cd"),
        "drag_N": factor * float(forces["total"][0]),
        "cells": mesh_info["cells"], "fluid_volume_m3": mesh_info["fluid_volume"], "layers": mesh_info.get("layers"),
        "iterations": int(len(cd_hist)), "converged": ok,
        "convergence": {"min_iter": preset.min_iter, "window": preset.window, "tol": preset.tol,
                        "max_iter": preset.max_iter, "forces_averaged_over": max(1, preset.average),
                        "cd_band": float(np.ptp(cd_hist[-preset.window:]) / abs(cd_hist[-preset.window:].mean()))},
        "residuals": _residuals(case / "log.simpleFoam"),
        "seconds": {k: round(v, 2) for k, v in times.items()},
        "procs": procs,
    }
    summary["seconds"]["total"] = round(time.perf_counter() - t0, 2)
    plot_convergence(case / "convergence.png", cd_hist, preset, ok, summary["Cd"])
    if not keep:
        clean_case(case)
    write_json_atomic(case / "summary.json", summary)
    return summary

