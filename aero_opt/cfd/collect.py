"""Turn existing OpenFOAM cases (made by anyone) into the dataset format the surrogate trains on.

Sources, tried in this order for the requested body patch:

1. ``postProcessing/surfaces/<time>/<patch>.vtk`` (legacy VTK from the ``surfaces`` function object);
2. a time directory (latest or given) with ``p`` (and ``wallShearStress`` when present), ascii or binary, plus
   ``constant/polyMesh`` — read with foamlib. Patch values come from the boundary field's ``value`` or, for
   ``zeroGradient`` patches (p on walls), from the owner cells.

Kinematic fields (dimensions m²/s²) are multiplied by ρ. Face values become vertex values by area-weighted
averaging; the surface is fan-triangulated and its faces turned outward (OpenFOAM winds boundary faces out of
the fluid, i.e. into the body).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aero_opt.cfd.case import finished_summary
from aero_opt.cfd.results import SurfaceFields, latest_surface, read_vtk_surface
from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.errors import AeroOptError
from aero_opt.core.physics import RHO_AIR, drag_coefficient, force_parts, frontal_area
from aero_opt.geometry.dataset import save_car

log = logging.getLogger(__name__)


def _time_dirs(case: Path) -> list[Path]:
    out = []
    for p in case.iterdir():
        if p.is_dir():
            try:
                float(p.name)
            except ValueError:
                continue
            out.append(p)
    return sorted(out, key=lambda p: float(p.name))


def _faces_list(raw: Any) -> list[np.ndarray]:
    """foamlib's faces (a compact (offsets, indices) pair for binary files, or a list of faces)."""
    if isinstance(raw, tuple) and len(raw) == 2:
        offsets, idx = np.asarray(raw[0]), np.asarray(raw[1])
        return [idx[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
    return [np.asarray(f) for f in raw]


def _is_ascii(path: Path) -> bool:
    head = path.read_bytes()[:2000].decode("latin-1")
    return re.search(r"format\s+ascii\s*;", head) is not None


def _ascii_body(path: Path) -> str:
    """The text of an ascii OpenFOAM list file after its header (from the element count on)."""
    text = path.read_text(errors="replace")
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    end = text.find("}", text.find("FoamFile"))
    return text[end + 1:]


def read_mesh_file(path: Path) -> Any:
    """points (P, 3), faces (list of index arrays) or owner (N,) of a polyMesh; fast for ascii, foamlib otherwise.

    foamlib parses large ascii face lists slowly (minutes), so ascii files use a regex/NumPy reader.
    """
    if not _is_ascii(path):
        from foamlib import FoamFile

        return FoamFile(path)[None]
    body = _ascii_body(path)
    if path.name == "points":
        nums = re.findall(r"\(([^()]*)\)", body)
        return np.array([[float(x) for x in n.split()] for n in nums], np.float64)
    if path.name == "faces":
        return [np.array(m.split(), np.int64) for m in re.findall(r"\d+\(([^()]*)\)", body)]
    start = body.find("(")
    return np.array(body[start + 1:body.rfind(")")].split(), np.int64)


def _patch_values(field_file: Any, patch: str, owner: np.ndarray, start: int, n: int, comps: int) -> np.ndarray:
    bf = field_file["boundaryField"]
    entry = None
    for key in bf:
        if key == patch or (key.startswith('"') and patch in key):
            entry = bf[key]
    if entry is None:
        raise AeroOptError(f"patch {patch!r} not in the boundaryField of {field_file.path}")
    if "value" in entry:
        val = np.asarray(entry["value"], np.float64)
    else:
        internal = np.asarray(field_file["internalField"], np.float64)
        val = internal[owner[start:start + n]] if internal.ndim and internal.shape[0] > comps else internal
    val = np.broadcast_to(val, (n, comps) if comps > 1 else (n,)).copy()
    return val.reshape(n, comps)


def read_time_dir(case: Path, patch: str, rho: float, time: str | None = None) -> SurfaceFields:
    """Read a patch's geometry (constant/polyMesh) and p / wallShearStress from a time directory."""
    from foamlib import FoamFile

    times = [t for t in _time_dirs(case) if (t / "p").is_file() and float(t.name) > 0]
    if time is not None:
        times = [t for t in times if t.name == time]
    if not times:
        raise AeroOptError(f"{case}: no time directory with p" + (f" at time {time}" if time else ""))
    tdir = times[-1]
    pm = case / "constant" / "polyMesh"
    if not (pm / "boundary").is_file():
        raise AeroOptError(f"{case}: no constant/polyMesh/boundary")
    boundary = FoamFile(pm / "boundary")[None]
    entry = dict(boundary).get(patch) if isinstance(boundary, list) else None
    if entry is None:
        names = [b[0] for b in boundary] if isinstance(boundary, list) else []
        raise AeroOptError(f"{case}: no patch {patch!r} (patches: {', '.join(names)})")
    start, n = int(entry["startFace"]), int(entry["nFaces"])
    points = np.asarray(read_mesh_file(pm / "points"), np.float64)
    faces = _faces_list(read_mesh_file(pm / "faces"))[start:start + n]
    owner = np.asarray(read_mesh_file(pm / "owner"), np.int64)
    pf = FoamFile(tdir / "p")
    kinematic = tuple(pf["dimensions"])[:2] == (0, 2)
    p = _patch_values(pf, patch, owner, start, n, 1)[:, 0] * (rho if kinematic else 1.0)
    tau = None
    if (tdir / "wallShearStress").is_file():
        wf = FoamFile(tdir / "wallShearStress")
        kin_t = tuple(wf["dimensions"])[:2] == (0, 2)
        tau = -_patch_values(wf, patch, owner, start, n, 3) * (rho if kin_t else 1.0)
    tris, own = [], []
    for i, f in enumerate(faces):
        ids = f[::-1]
        for j in range(1, len(ids) - 1):
            tris.append((ids[0], ids[j], ids[j + 1]))
            own.append(i)
    own_a = np.asarray(own)
    tri = np.asarray(tris, np.int64)
    used = np.unique(tri)
    remap = np.full(len(points), -1, np.int64)
    remap[used] = np.arange(len(used))
    return SurfaceFields(points=points[used], triangles=remap[tri], pressure=p[own_a],
                         shear=None if tau is None else tau[own_a])


def read_case_surface(case: Path, patch: str, rho: float, time: str | None = None) -> tuple[SurfaceFields, str]:
    """The patch surface with fields from the best available source; returns it and a note on the source."""
    case = Path(case)
    if not case.is_dir():
        raise AeroOptError(f"{case}: no such case folder")
    try:
        return read_vtk_surface(latest_surface(case, patch, time), rho), "postProcessing/surfaces (VTK)"
    except AeroOptError:
        pass
    return read_time_dir(case, patch, rho, time), "time directory"


def vertex_values(surface: SurfaceFields) -> tuple[np.ndarray, np.ndarray | None]:
    """Area-weighted averages of the per-triangle fields at the surface's points: (P,) and (P, 3)."""
    v, t = surface.points, surface.triangles
    area = 0.5 * np.linalg.norm(np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]]), axis=1)
    w = np.zeros(len(v))
    np.add.at(w, t.ravel(), np.repeat(area, 3))
    w = np.maximum(w, 1e-300)
    p = np.zeros(len(v))
    np.add.at(p, t.ravel(), np.repeat(area * surface.pressure, 3))
    tau = None
    if surface.shear is not None:
        tau = np.zeros((len(v), 3))
        np.add.at(tau, t.ravel(), np.repeat(area[:, None] * surface.shear, 3, axis=0))
        tau /= w[:, None]
    return p / w, tau


SPEED_TOLERANCE = 0.01
"""A given ``speed`` may differ from the one the case states by this fraction, and the stated flow may lean off
the x axis by this fraction of its speed; more is refused."""

HALF_TOLERANCE = 0.01
"""A body surface "touches y = 0" when its nearer side is within this fraction of its width of the plane."""


def case_free_stream(case: Path) -> tuple[np.ndarray, str] | None:
    """The free-stream velocity (3,) m/s a case states, and where: the uniform value of an inlet patch in ``0/U``
    (or ``0.orig/U``; ``$internalField`` resolved), else a uniform non-zero ``internalField`` there, else the
    ``speed`` of an aero-opt case's ``summary.json`` (along +x); None when the case states none."""
    from foamlib import FoamFieldFile

    for folder in ("0", "0.orig"):
        path = Path(case) / folder / "U"
        if not path.is_file():
            continue
        try:
            field = FoamFieldFile(path)
            internal = np.asarray(field.internal_field, float)
            boundary = {str(k): dict(v or {}) for k, v in (field.boundary_field or {}).items()}
        except Exception as exc:  # a file foamlib cannot parse states nothing we can use
            log.warning("%s: not readable as a velocity field (%s)", path, exc)
            continue
        uniform = internal if internal.shape == (3,) and np.linalg.norm(internal) > 0 else None
        for name, entries in sorted(boundary.items()):
            if "inlet" not in name.lower() or "fixedValue" not in str(entries.get("type", "")):
                continue
            value = entries.get("value")
            value = uniform if isinstance(value, str) and value.strip() == "$internalField" else value
            value = np.asarray(value, float) if value is not None and not isinstance(value, str) else None
            if value is not None and value.shape == (3,) and np.linalg.norm(value) > 0:
                return value, f"{folder}/U inlet patch '{name}'"
        if uniform is not None:
            return uniform, f"{folder}/U internalField"
    speed = (finished_summary(case) or {}).get("speed")
    if isinstance(speed, (int, float)) and speed > 0:
        return np.array([float(speed), 0.0, 0.0]), "summary.json"
    return None


def touches_symmetry_plane(points: np.ndarray) -> bool:
    """Whether a body surface (points (P, 3), m) lies on one side of y = 0 and reaches it, as a half model's body
    does (so does a body standing on a floor at y = 0 in a y-up frame)."""
    lo, hi = float(points[:, 1].min()), float(points[:, 1].max())
    tol = HALF_TOLERANCE * (hi - lo)
    return abs(lo) <= tol or abs(hi) <= tol


def _free_stream_speed(case: Path, speed: float | None) -> tuple[float, str]:
    """The speed (m/s) to scale a case's forces by and where it came from: ``speed`` checked against the case's
    own, or the case's own."""
    stated = case_free_stream(case)
    if stated is not None:
        u, where = stated
        magnitude = float(np.linalg.norm(u))
        if u[0] <= 0 or float(np.hypot(u[1], u[2])) > SPEED_TOLERANCE * magnitude:
            raise AeroOptError(f"{case}: the flow in {where} is along ({u[0]:g}, {u[1]:g}, {u[2]:g}); drag is read "
                               "along +x: give the case in a frame with the flow along +x")
        if speed is None:
            return magnitude, where
        if abs(speed - magnitude) > SPEED_TOLERANCE * magnitude:
            raise AeroOptError(f"{case}: --speed {speed:g} m/s, but the case's {where} says {magnitude:g} m/s "
                               "(leave --speed out to use the case's)")
        return speed, "given"
    if speed is None:
        raise AeroOptError(f"{case}: states no free-stream speed (no uniform inlet velocity in 0/U); give it with "
                           "--speed")
    return speed, "given"


def _half_model(case: Path, points: np.ndarray, half: bool | None) -> bool:
    """Whether the case is a half model: as given, as an aero-opt case records it, else refused when the body
    touches y = 0 from one side (a half model, or a body on a floor in a y-up frame: only the user knows)."""
    if half is not None:
        return half
    recorded = (finished_summary(case) or {}).get("half_model")
    if isinstance(recorded, bool):
        return recorded
    if touches_symmetry_plane(points):
        raise AeroOptError(f"{case}: the body lies on one side of y = 0 and touches it: a half model (forces to "
                           "be doubled) or a body on a floor at y = 0? Say --half or --no-half")
    return False


def collect_case(case: Path, patch: str, out_path: Path, rho: float = RHO_AIR, speed: float | None = None,
                 time: str | None = None, half: bool | None = None) -> dict[str, Any]:
    """Convert one case into a dataset ``.npz``; returns its summary.

    Cd is integrated by the project's force function over the patch (doubled for a half model) with the
    frontal area of the patch; both are recorded.

    Args:
        case: the OpenFOAM case folder; patch: the body patch's name.
        out_path: the ``.npz`` written.
        rho: density (kg/m³) that kinematic pressure and shear are multiplied by.
        speed: free-stream speed (m/s); None: the one the case states (:func:`case_free_stream`). Given, it is
            checked against the case's own (within :data:`SPEED_TOLERANCE`).
        time: time folder to read (None: the latest).
        half: whether the case is a half model (forces doubled); None: as an aero-opt case records it, else a
            full model unless the body touches y = 0 from one side (then refused: ambiguous).

    Raises:
        AeroOptError: the case states no speed and none is given, states another one than ``speed``, or a flow
            off the +x axis; an ambiguous half model; no readable surface for ``patch``.
    """
    speed, speed_from = _free_stream_speed(case, speed)
    surface, source = read_case_surface(case, patch, rho, time)
    half = _half_model(case, surface.points, half)
    p_v, tau_v = vertex_values(surface)
    v = torch.as_tensor(surface.points)
    t = torch.as_tensor(surface.triangles)
    fp, fv = force_parts(v, t, torch.as_tensor(surface.pressure),
                         None if surface.shear is None else torch.as_tensor(surface.shear))
    factor = 2.0 if half else 1.0
    a_ref = frontal_area(surface.points, surface.triangles) * factor
    cd_p = drag_coefficient(factor * float(fp[0]), a_ref, rho, speed)
    cd_v = drag_coefficient(factor * float(fv[0]), a_ref, rho, speed)
    summary = {"case": str(case), "patch": patch, "source": source, "time": time or "latest", "speed": speed,
               "speed_from": speed_from, "rho": rho, "half_model": half, "A_ref": a_ref, "Cd": cd_p + cd_v,
               "Cd_pressure": cd_p,
               "Cd_viscous": cd_v, "Cl": drag_coefficient(factor * float(fp[2] + fv[2]), a_ref, rho, speed),
               "vertices": int(len(surface.points)), "triangles": int(len(surface.triangles)),
               "has_shear": surface.shear is not None}
    tau = tau_v if tau_v is not None else np.zeros((len(p_v), 3))
    save_car(out_path, surface.points, surface.triangles, p_v, tau, summary, {"source_case": str(case)})
    return summary


def collect_cases(cases: list[Path], patch: str, out_dir: Path, **kw: Any) -> dict[str, Any]:
    """Collect several cases into ``out_dir`` (``<case name>.npz`` and ``summary.json``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = {}
    for case in cases:
        case = Path(case)
        rows[case.name] = collect_case(case, patch, out_dir / f"{case.name}.npz", **kw)
        log.info("%s: %s, Cd %.4f (p %.4f + v %.4f)", case.name, rows[case.name]["source"], rows[case.name]["Cd"],
                 rows[case.name]["Cd_pressure"], rows[case.name]["Cd_viscous"])
    write_json_atomic(out_dir / "summary.json", {"patch": patch, "cases": rows})
    return rows
