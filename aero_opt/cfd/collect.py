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

from aero_opt.cfd.results import SurfaceFields, latest_surface, read_vtk_surface
from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.errors import AeroOptError
from aero_opt.core.physics import RHO_AIR, U_INF, drag_coefficient, force_parts, frontal_area
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


def collect_case(case: Path, patch: str, out_path: Path, rho: float = RHO_AIR, speed: float = U_INF,
                 time: str | None = None, half: bool = False) -> dict[str, Any]:
    """Convert one case into a dataset ``.npz``; returns its summary.

    Cd is integrated by the project's force function over the patch (doubled for a half model) with the
    frontal area of the patch; both are recorded.
    """
    surface, source = read_case_surface(case, patch, rho, time)
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
               "rho": rho, "half_model": half, "A_ref": a_ref, "Cd": cd_p + cd_v, "Cd_pressure": cd_p,
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
