"""Read OpenFOAM surface results and bring them onto the user's mesh.

The ``surfaces`` function object writes the body patch as legacy ASCII VTK (``postProcessing/surfaces/<it>/
body.vtk``): points, polygons (mostly quads) wound into the body (OpenFOAM's outward-from-fluid convention), and
per-face ``p`` and ``wallShearStress``, both kinematic (divided by ρ). ``wallShearStress`` is the stress on the
fluid; the shear on the body is its negative (checked against the ``forces`` viscous part in the tests).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import igl
import numpy as np
import torch

from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.errors import AeroOptError
from aero_opt.core.physics import dynamic_pressure, surface_force
from aero_opt.geometry.regions import BODY_REGIONS, region_of_faces


@dataclass
class SurfaceFields:
    """A body surface with per-face fields in SI units, faces wound outward (out of the body)."""

    points: np.ndarray
    """(P, 3) float64 point coordinates (m)."""
    triangles: np.ndarray
    """(T, 3) int64 triangles (polygons fan-triangulated), outward."""
    pressure: np.ndarray
    """(T,) pressure relative to the free stream (Pa) of each triangle's polygon."""
    shear: np.ndarray | None
    """(T, 3) wall shear stress on the body (Pa), or None when not written."""


def _tokens_after(lines: list[str], start: int, count: int) -> tuple[list[str], int]:
    """Read ``count`` whitespace-separated tokens starting at line ``start``; return them and the next line."""
    out: list[str] = []
    i = start
    while len(out) < count:
        out.extend(lines[i].split())
        i += 1
    return out[:count], i


def read_vtk_surface(path: Path, rho: float) -> SurfaceFields:
    """Parse a legacy ASCII VTK polydata surface written by OpenFOAM's ``surfaces`` function object.

    Args:
        path: the ``.vtk`` file.
        rho: density (kg/m³) to turn kinematic p and wall shear into Pa.

    Returns:
        The surface with outward triangles and SI fields.
    """
    lines = Path(path).read_text(errors="replace").splitlines()
    points = polys = None
    fields: dict[str, np.ndarray] = {}
    n_cells = 0
    i = 0
    while i < len(lines):
        head = lines[i].split()
        if not head:
            i += 1
            continue
        if head[0] == "POINTS":
            n = int(head[1])
            tok, i = _tokens_after(lines, i + 1, 3 * n)
            points = np.asarray(tok, np.float64).reshape(n, 3)
            continue
        if head[0] == "POLYGONS":
            tok, i = _tokens_after(lines, i + 1, int(head[2]))
            polys = np.asarray(tok, np.int64)
            n_cells = int(head[1])
            continue
        if len(head) == 4 and re.fullmatch(r"[A-Za-z_]\w*", head[0]) and head[3] in ("float", "double") \
                and head[1].isdigit() and int(head[2]) == n_cells and n_cells > 0:
            comps, n = int(head[1]), int(head[2])
            tok, i = _tokens_after(lines, i + 1, comps * n)
            fields[head[0]] = np.asarray(tok, np.float64).reshape(n, comps)
            continue
        i += 1
    if points is None or polys is None or "p" not in fields:
        raise AeroOptError(f"{path}: not an OpenFOAM VTK surface with POINTS, POLYGONS and p")
    tris, owner = [], []
    k, face = 0, 0
    while k < len(polys):
        n = int(polys[k])
        ids = polys[k + 1:k + 1 + n][::-1]  # reverse: OpenFOAM winds into the body
        for j in range(1, n - 1):
            tris.append((ids[0], ids[j], ids[j + 1]))
            owner.append(face)
        k += n + 1
        face += 1
    owner_a = np.asarray(owner)
    shear = -rho * fields["wallShearStress"][owner_a] if "wallShearStress" in fields else None
    return SurfaceFields(points=points, triangles=np.asarray(tris, np.int64),
                         pressure=rho * fields["p"][owner_a, 0], shear=shear)


def latest_surface(case: Path, patch: str = "body", time: str | None = None) -> Path:
    """The body surface file of the latest (or a given) written iteration of a case."""
    root = Path(case) / "postProcessing" / "surfaces"
    if not root.is_dir():
        raise AeroOptError(f"{case}: no postProcessing/surfaces output")
    times = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: float(p.name))
    if time is not None:
        times = [p for p in times if p.name == time]
    for t in reversed(times):
        f = t / f"{patch}.vtk"
        if f.is_file():
            return f
    raise AeroOptError(f"{case}: no {patch}.vtk surface written" + (f" at time {time}" if time else ""))


def sample_on_mesh(surface: SurfaceFields, verts: np.ndarray, half: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-vertex pressure (V,) Pa and wall shear (V, 3) Pa at the user's vertices (closest surface face).

    Args:
        surface: the OpenFOAM body surface.
        verts: (V, 3) vertices (m) of the user's mesh, same frame as the case.
        half: the case was a half model (y >= 0): vertices with y < 0 take the mirrored values.
    """
    q = np.asarray(verts, np.float64).copy()
    neg = q[:, 1] < 0
    if half:
        q[neg, 1] *= -1.0
    _, tri, _ = igl.point_mesh_squared_distance(q, surface.points, surface.triangles)
    p = surface.pressure[tri]
    tau = None
    if surface.shear is not None:
        tau = surface.shear[tri].copy()
        if half:
            tau[neg, 1] *= -1.0
    return p, tau


def case_summary(case: Path) -> dict:
    """The ``summary.json`` of a case made by :func:`aero_opt.cfd.case.run_case`."""
    path = Path(case) / "summary.json"
    if not path.is_file():
        raise AeroOptError(f"{case}: no summary.json (the case did not finish)")
    return json.loads(path.read_text())


def case_regions(case: Path) -> dict[str, float]:
    """Each region's Cd (pressure and shear; :data:`aero_opt.geometry.regions.BODY_REGIONS`) from a finished case's
    body surface, summing to the case's Cd up to the surface's discretisation; cached in ``<case>/regions.json``
    (reading the surface is the slow part, and the cache outlives the surface: it is what a carried case keeps,
    :mod:`aero_opt.core.carry`).

    Raises:
        AeroOptError: the case has no summary or no surface output (and no cache).
    """
    cached = Path(case) / "regions.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    s = case_summary(case)
    surface = latest_surface(case)
    try:
        factor = 2.0 if s["half_model"] else 1.0
        qa = dynamic_pressure(s["rho"], s["speed"]) * s["A_ref"]
        rho = s["rho"]
    except KeyError as exc:
        raise AeroOptError(f"{Path(case) / 'summary.json'}: not a finished case's summary (no {exc})") from None
    surf = read_vtk_surface(surface, rho)
    region = region_of_faces(surf.points, surf.triangles)
    pts, tris = torch.as_tensor(surf.points), torch.as_tensor(surf.triangles)
    p = torch.as_tensor(surf.pressure)
    tau = torch.as_tensor(surf.shear) if surf.shear is not None else None
    regions = {}
    for i, name in enumerate(BODY_REGIONS):
        m = torch.as_tensor(region == i)
        f = surface_force(pts, tris[m], p[m], tau[m] if tau is not None else None) if m.any() else torch.zeros(3)
        regions[name] = factor * float(f[0]) / qa
    write_json_atomic(cached, regions)
    return regions


def case_fields(case: Path, verts: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """A finished case's surface fields at the vertices (V, 3) (m) of the mesh it simulated, as the dataset
    stores them: pressure (V,) Pa, wall shear (V, 3) Pa (or None) and the case's ``summary.json``."""
    summary = case_summary(case)
    p, tau = sample_on_mesh(read_vtk_surface(latest_surface(case), summary["rho"]), verts, summary["half_model"])
    return p, tau, summary


def fields_on_mesh(case: Path, verts: np.ndarray, faces: np.ndarray, rho: float, half: bool) -> dict[str, object]:
    """Per-vertex p and τ on the user's mesh plus integrated forces (N, full body) from the case's surface.

    Returns:
        dict with ``pressure`` (V,), ``shear`` (V, 3) or None, ``force_pressure`` (3,) and ``force_viscous``
        (3,) integrated over the user's mesh, and ``force_pressure_openfoam_surface`` (3,) integrated over the
        OpenFOAM surface itself (doubled for half models).
    """
    surface = read_vtk_surface(latest_surface(case), rho)
    p, tau = sample_on_mesh(surface, verts, half)
    v = torch.as_tensor(verts, dtype=torch.float64)
    f = torch.as_tensor(np.asarray(faces), dtype=torch.long)
    fp = surface_force(v, f, torch.as_tensor(p))
    fv = surface_force(v, f, torch.zeros(len(verts), dtype=torch.float64), torch.as_tensor(tau)) \
        if tau is not None else torch.zeros(3, dtype=torch.float64)
    sp = torch.as_tensor(surface.points)
    st = torch.as_tensor(surface.triangles)
    f_of = surface_force(sp, st, torch.as_tensor(surface.pressure)) * (2.0 if half else 1.0)
    if half:  # the symmetric half contributes no side force; mirror doubles x and z only
        f_of[1] = 0.0
    return {"pressure": p, "shear": tau, "force_pressure": fp.numpy(), "force_viscous": fv.numpy(),
            "force_pressure_openfoam_surface": f_of.numpy()}


def case_to_dataset(case: Path, mesh_path: Path, out_path: Path, params: dict) -> None:
    """Store a finished project case in the dataset format, with its fields sampled onto the simulated mesh.

    Args:
        case: a case folder made by :func:`aero_opt.cfd.case.run_case` (with summary.json).
        mesh_path: the mesh the case was run on (its vertices get the fields).
        out_path: the ``.npz`` to write (format: :mod:`aero_opt.geometry.dataset`).
        params: JSON-ready description of the body (car parameters or source file).
    """
    from aero_opt.geometry.dataset import save_car
    from aero_opt.geometry.mesh_import import load_mesh

    mesh = load_mesh(mesh_path)
    p, tau, summary = case_fields(case, mesh.vertices)
    save_car(out_path, mesh.vertices, mesh.faces, p, tau, summary, params)
