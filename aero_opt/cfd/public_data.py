"""Public car-aerodynamics datasets into the surrogate's dataset format (``aero-opt dataset import``).

Three published layouts are read (``docs/datasets.md`` lists the exact files and fields each reader expects):

- ``drivaerml`` (DrivAerML, Ashton et al. 2024, CC BY-SA): ``run_N/boundary_N.vtp`` (cell data ``pMeanTrim`` and
  ``wallShearStressMeanTrim``, kinematic, m²/s²), ``run_N/force_mom_N.csv`` (``cd``, ``cl``, … with the geometry's
  own reference area from ``run_N/geo_ref_N.csv``) or ``run_N/force_mom_constref_N.csv`` (the constant 2.17 m²);
  free stream 38.889 m/s;
- ``drivaernet`` (DrivAerNet++, Elrefaie et al. 2024, CC BY-NC): ``*.vtk`` surface files with point data ``p``
  (kinematic) and a drag table (CSV with columns ``Design`` and ``Average Cd``); free stream 30 m/s, reference area
  the design's frontal area; no wall shear;
- ``windtunnel`` (Inductiva windtunnel-20k): ``<id>/pressure_field_mesh.vtk`` (point data ``p``, kinematic) and
  ``<id>/simulation_metadata.json`` (``wind_speed``, ``rotate_angle``, ``drag_coefficient``, ``lift_coefficient``);
  the metadata names no reference area (default: the body's frontal area; ``--a-ref`` to give one); only bodies
  facing the flow (``rotate_angle`` 0) are in the car frame; no wall shear.

Every case is checked before it is written: the drag coefficient integrated from the file's own surface fields
(pressure, and wall shear where published) with the dataset's free stream and reference area must match the
dataset's published Cd — within ``cd_tolerance`` when wall shear is published; when it is not, the pressure part
must lie between ``1 - max_friction_share`` and ``1 + cd_tolerance`` times the published Cd (the friction drag it
lacks). A case that fails is refused with the numbers (and the reference area or speed that would reconcile them).

A case that passes becomes the kind of mesh the surrogate is trained on: the surface (in the dataset's axes turned
into the car frame: flow along +x, nose at x = 0, ground at z = 0) is made watertight by the import's voxel repair
(:func:`aero_opt.geometry.mesh_import.watertight_body`), put on the dataset grid by marching cubes
(:func:`aero_opt.geometry.dataset.grid_mesh`), and given the fields of the nearest face of the original surface.
Kinematic fields are multiplied by the air density of the project (coefficients do not change).
"""

from __future__ import annotations

import csv
import json
import locale
import logging
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh

from aero_opt.cfd.results import SurfaceFields, sample_on_mesh
from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.errors import AeroOptError
from aero_opt.core.frame import CAR_BOUNDS, to_normalized
from aero_opt.core.physics import RHO_AIR, drag_coefficient, force_parts, frontal_area

log = logging.getLogger(__name__)

FORMAT_NAMES: tuple[str, ...] = ("drivaerml", "drivaernet", "windtunnel")
"""Dataset layouts :func:`list_cases` reads."""

DRIVAERML_SPEED = 38.889
"""DrivAerML free stream (m/s): 140 km/h."""
DRIVAERML_CONST_AREA = 2.17
"""The constant reference area (m²) of DrivAerML's ``force_mom_constref_N.csv`` (the baseline DrivAer's)."""
DRIVAERNET_SPEED = 30.0
"""DrivAerNet++ free stream (m/s)."""

PRESSURE_NAMES = ("pMeanTrim", "pMean", "p")
"""Pressure arrays tried, in order (cell or point data)."""
SHEAR_NAMES = ("wallShearStressMeanTrim", "wallShearStressMean", "wallShearStress")
"""Wall-shear arrays tried, in order (OpenFOAM's ``wallShearStress``: the stress on the fluid)."""

SIMPLIFY_FACES = 300_000
"""Larger surfaces are simplified to this many faces before the voxel repair (geometry only: the fields are
carried from the full surface)."""


@dataclass
class ImportSettings:
    """How :func:`import_case` checks and converts a case."""

    cd_tolerance: float = 0.02
    """Largest relative difference between the integrated and the published Cd (with wall shear)."""
    max_friction_share: float = 0.25
    """For pressure-only data: the largest share of the published Cd the missing friction drag may explain."""
    speed: float | None = None
    """Free stream (m/s) instead of the dataset's."""
    a_ref: float | None = None
    """Reference area (m²) instead of the dataset's (or the frontal area)."""
    kinematic: bool | None = None
    """Fields are kinematic (m²/s²; True) or in Pa (False); None: as the dataset publishes them."""
    rho: float = RHO_AIR
    """Density (kg/m³): multiplies kinematic fields into Pa; for fields in Pa, the dataset's density."""
    forward: str = "-x"
    """Axis in the files pointing from tail to nose."""
    up: str = "+z"
    """Axis in the files pointing up."""
    clearance: float = 0.0
    """Height (m) of the body's lowest point above the ground (0: wheels on the ground)."""


@dataclass
class PublicCase:
    """One simulated body of a public dataset, as its files describe it."""

    name: str
    """Output name (``<name>.npz``)."""
    surface: Path
    """The surface file with the fields."""
    speed: float
    """Free stream (m/s)."""
    cd: float
    """The dataset's published drag coefficient."""
    cl: float | None
    """The dataset's published lift coefficient, when it has one."""
    a_ref: float | None
    """Reference area (m²) of ``cd``; None: the body's frontal area."""
    kinematic: bool
    """The fields are divided by the density (m²/s²)."""
    sources: list[str] = field(default_factory=list)
    """The files the case was read from."""
    skip: str | None = None
    """Why the case is not imported (it is listed, not converted), or None."""


def _csv_row(path: Path) -> dict[str, str]:
    """The first data row of a one-row CSV as {lower-case header (no '#', no spaces): value}."""
    try:
        rows = [r for r in csv.reader(path.read_text(errors="replace").splitlines()) if any(c.strip() for c in r)]
    except OSError as exc:
        raise AeroOptError(f"{path}: unreadable ({exc})") from exc
    if len(rows) < 2:
        raise AeroOptError(f"{path}: expected a header row and a value row")
    header = [re.sub(r"[\s#]", "", c).lower() for c in rows[0]]
    return dict(zip(header, (c.strip() for c in rows[1])))


def _number(row: dict[str, str], keys: tuple[str, ...], path: Path) -> float | None:
    """The first of ``keys`` present in ``row`` as a finite number (None when none is present)."""
    for k in keys:
        if k in row:
            try:
                v = float(row[k])
            except ValueError:
                raise AeroOptError(f"{path}: {k} = {row[k]!r} is not a number") from None
            if not math.isfinite(v):
                raise AeroOptError(f"{path}: {k} = {row[k]} is not finite")
            return v
    return None


def _drivaerml_cases(src: Path) -> list[PublicCase]:
    runs = [src] if re.fullmatch(r"run_\d+", src.name) else sorted(
        (p for p in src.iterdir() if p.is_dir() and re.fullmatch(r"run_\d+", p.name)),
        key=lambda p: int(p.name[4:]))
    if not runs:
        raise AeroOptError(f"{src}: no run_N folders (DrivAerML layout: run_N/boundary_N.vtp, force_mom_N.csv)")
    out = []
    for run in runs:
        n = run.name[4:]
        name = f"drivaerml_{int(n):04d}"
        vtp = run / f"boundary_{n}.vtp"
        force, const, geo = (run / f"force_mom_{n}.csv", run / f"force_mom_constref_{n}.csv",
                             run / f"geo_ref_{n}.csv")
        case = PublicCase(name, vtp, DRIVAERML_SPEED, math.nan, None, None, True, [str(vtp)])
        if not vtp.is_file():
            case.skip = f"no {vtp.name}"
            out.append(case)
            continue
        area = None
        if geo.is_file() and force.is_file():
            area = _number(_csv_row(geo), ("aref", "a_ref", "area", "frontalarea"), geo)
        if area is not None:
            row, used = _csv_row(force), force
            case.sources += [str(force), str(geo)]
        elif const.is_file():
            row, used, area = _csv_row(const), const, DRIVAERML_CONST_AREA
            case.sources.append(str(const))
        else:
            case.skip = (f"no reference area: neither {geo.name} (with an aRef column) beside {force.name}, nor "
                         f"{const.name}")
            out.append(case)
            continue
        cd = _number(row, ("cd",), used)
        if cd is None:
            raise AeroOptError(f"{used}: no cd column (columns: {', '.join(row)})")
        case.cd, case.cl, case.a_ref = cd, _number(row, ("cl",), used), area
        out.append(case)
    return out


def _drivaernet_cases(src: Path, table: Path | None) -> list[PublicCase]:
    files = sorted(src.glob("*.vtk")) if src.is_dir() else [src]
    if not files:
        raise AeroOptError(f"{src}: no .vtk pressure files (DrivAerNet++ layout)")
    tables = [table] if table is not None else sorted((src if src.is_dir() else src.parent).glob("*.csv"))
    cds: dict[str, float] = {}
    for t in tables:
        try:
            rows = list(csv.DictReader(t.read_text(errors="replace").splitlines()))
        except OSError as exc:
            raise AeroOptError(f"{t}: unreadable ({exc})") from exc
        if not rows or "Design" not in rows[0] or "Average Cd" not in rows[0]:
            if table is not None:
                raise AeroOptError(f"{t}: not a DrivAerNet++ drag table (columns Design and Average Cd)")
            continue
        for r in rows:
            try:
                cds[r["Design"].strip()] = float(r["Average Cd"])
            except (TypeError, ValueError):
                raise AeroOptError(f"{t}: design {r.get('Design')!r}: Average Cd {r.get('Average Cd')!r} is not "
                                   "a number") from None
    if not cds:
        raise AeroOptError(f"{src}: no drag table (a CSV with columns Design and Average Cd); give it with --table")
    out = []
    for f in files:
        design = next((d for d in (f.stem, *sorted(cds, key=len, reverse=True)) if d in cds and
                       (d == f.stem or f.stem.endswith(d))), None)
        case = PublicCase(f.stem, f, DRIVAERNET_SPEED, math.nan, None, None, True, [str(f)])
        if design is None:
            case.skip = "not in the drag table"
        else:
            case.cd = cds[design]
            case.sources.append(str(table or tables[0]))
        out.append(case)
    return out


def _windtunnel_cases(src: Path) -> list[PublicCase]:
    metas = sorted(src.rglob("simulation_metadata.json")) if src.is_dir() else []
    if not metas:
        raise AeroOptError(f"{src}: no <id>/simulation_metadata.json (windtunnel-20k layout)")
    out = []
    for m in metas:
        try:
            meta = json.loads(m.read_text())
            speed, angle, cd = float(meta["wind_speed"]), float(meta["rotate_angle"]), float(meta["drag_coefficient"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AeroOptError(f"{m}: not a windtunnel-20k metadata file ({type(exc).__name__}: {exc})") from None
        vtk_file = m.parent / "pressure_field_mesh.vtk"
        cl = meta.get("lift_coefficient")
        case = PublicCase(str(meta.get("id", m.parent.name)), vtk_file, speed, cd,
                          None if cl is None else float(cl), None, True, [str(vtk_file), str(m)])
        if angle % 360 != 0:
            case.skip = f"rotated by {angle:g} degrees (yawed: only bodies facing the flow are in the car frame)"
        elif not vtk_file.is_file():
            case.skip = "no pressure_field_mesh.vtk"
        out.append(case)
    return out


def list_cases(fmt: str, src: Path, table: Path | None = None) -> list[PublicCase]:
    """The cases of a downloaded copy of a public dataset.

    Args:
        fmt: one of :data:`FORMAT_NAMES`.
        src: the dataset folder (or, for DrivAerML, one ``run_N`` folder; for DrivAerNet++, one ``.vtk`` file).
        table: the DrivAerNet++ drag table (default: the CSV beside the files with columns Design, Average Cd).

    Returns:
        Every case found, in a stable order; cases that cannot be imported carry the reason in ``skip``.

    Raises:
        AeroOptError: ``src`` is not in the format's layout, or a metadata file is unreadable (the message names
            the file).
    """
    src = Path(src)
    if not src.exists():
        raise AeroOptError(f"{src}: no such file or folder")
    if fmt == "drivaerml":
        return _drivaerml_cases(src)
    if fmt == "drivaernet":
        return _drivaernet_cases(src, table)
    if fmt == "windtunnel":
        return _windtunnel_cases(src)
    raise AeroOptError(f"--format {fmt}: one of {', '.join(FORMAT_NAMES)}")


@contextmanager
def locale_kept() -> Iterator[None]:
    """Run VTK's legacy readers and writers inside this: they switch the process's C locale to "C" and leave it
    there, after which Python opens text files as ASCII; the locale is put back on exit."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def _array(data: Any, names: tuple[str, ...]) -> tuple[str, np.ndarray] | None:
    from vtkmodules.util.numpy_support import vtk_to_numpy

    for n in names:
        a = data.GetArray(n)
        if a is not None:
            return n, vtk_to_numpy(a).astype(np.float64)
    return None


def read_surface(path: Path, rho: float, kinematic: bool) -> tuple[SurfaceFields, dict[str, str]]:
    """A VTK surface with pressure and (optional) wall shear, as outward triangles with per-triangle fields in Pa.

    Reads XML PolyData (``.vtp``) or legacy VTK (``.vtk``, ASCII or binary, polydata or an unstructured grid of
    surface cells), through VTK. Polygons are triangulated (a polygon's cell values go to each of its triangles;
    point values are averaged over each triangle's corners). The winding is made outward by the sign of the
    enclosed volume (OpenFOAM winds boundary faces into the body). Wall shear is OpenFOAM's (the stress on the
    fluid): the shear on the body is its negative.

    Args:
        path: the file.
        rho: density (kg/m³) multiplying kinematic fields.
        kinematic: the fields are divided by the density.

    Returns:
        The surface (points in the file's units and axes) and which arrays were used (``pressure``, ``shear``:
        name and "cell"/"point").

    Raises:
        AeroOptError: unreadable, no surface cells, no pressure array, or NaN values (the message names the file).
    """
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkCommonCore import vtkObject
    from vtkmodules.vtkFiltersCore import vtkTriangleFilter
    from vtkmodules.vtkFiltersGeometry import vtkDataSetSurfaceFilter
    from vtkmodules.vtkIOLegacy import vtkDataSetReader
    from vtkmodules.vtkIOXML import vtkXMLPolyDataReader

    vtkObject.GlobalWarningDisplayOff()  # failures are detected below and reported as one line
    path = Path(path)
    if not path.is_file():
        raise AeroOptError(f"{path}: no such file")
    reader = vtkXMLPolyDataReader() if path.suffix.lower() == ".vtp" else vtkDataSetReader()
    reader.SetFileName(str(path))
    if isinstance(reader, vtkDataSetReader):
        reader.ReadAllScalarsOn()
        reader.ReadAllVectorsOn()
        reader.ReadAllFieldsOn()
    surf = vtkDataSetSurfaceFilter()
    surf.SetInputConnection(reader.GetOutputPort())
    tri = vtkTriangleFilter()
    tri.SetInputConnection(surf.GetOutputPort())
    tri.PassVertsOff()
    tri.PassLinesOff()
    with locale_kept():
        tri.Update()
    out = tri.GetOutput()
    if reader.GetErrorCode() != 0 or out is None or out.GetNumberOfPoints() == 0 or out.GetNumberOfPolys() == 0:
        raise AeroOptError(f"{path}: cannot read a surface from it (not VTK polydata or a surface grid, or cut "
                           "off)")
    points = vtk_to_numpy(out.GetPoints().GetData()).astype(np.float64)
    tris = vtk_to_numpy(out.GetPolys().GetConnectivityArray()).astype(np.int64).reshape(-1, 3)
    used: dict[str, str] = {}

    def per_triangle(names: tuple[str, ...], what: str) -> np.ndarray | None:
        for data, where in ((out.GetCellData(), "cell"), (out.GetPointData(), "point")):
            got = _array(data, names)
            if got is not None:
                name, a = got
                a = a.reshape(len(a), -1)
                vals = a if where == "cell" else a[tris].mean(axis=1)
                if not np.isfinite(vals).all():
                    raise AeroOptError(f"{path}: {where} array {name} holds NaN or infinite values")
                used[what] = f"{name} ({where} data)"
                return vals
        return None

    p = per_triangle(PRESSURE_NAMES, "pressure")
    if p is None:
        raise AeroOptError(f"{path}: no pressure array (looked for {', '.join(PRESSURE_NAMES)} in cell and point "
                           "data)")
    tau = per_triangle(SHEAR_NAMES, "shear")
    if tau is not None and tau.shape[1] != 3:
        raise AeroOptError(f"{path}: {used['shear']} has {tau.shape[1]} components, not 3")
    if not np.isfinite(points).all():
        raise AeroOptError(f"{path}: NaN or infinite point coordinates")
    scale = rho if kinematic else 1.0
    v0, v1, v2 = points[tris[:, 0]], points[tris[:, 1]], points[tris[:, 2]]
    if np.einsum("ij,ij->i", v0, np.cross(v1, v2)).sum() < 0:
        tris = tris[:, ::-1].copy()
    return SurfaceFields(points=points, triangles=tris, pressure=scale * p[:, 0],
                         shear=None if tau is None else -scale * tau), used


def surface_coefficients(surface: SurfaceFields, a_ref: float | None, rho: float, speed: float
                         ) -> dict[str, float]:
    """Drag and lift coefficients of a surface's fields: Cd (pressure + friction), its parts, Cl, and the reference
    area used (``a_ref``, or the surface's frontal area when None)."""
    v = torch.as_tensor(surface.points)
    t = torch.as_tensor(surface.triangles)
    fp, fv = force_parts(v, t, torch.as_tensor(surface.pressure),
                         None if surface.shear is None else torch.as_tensor(surface.shear))
    area = a_ref if a_ref is not None else frontal_area(surface.points, surface.triangles, outward=False)
    cd_p = drag_coefficient(float(fp[0]), area, rho, speed)
    cd_v = drag_coefficient(float(fv[0]), area, rho, speed)
    return {"Cd": cd_p + cd_v, "Cd_pressure": cd_p, "Cd_viscous": cd_v,
            "Cl": drag_coefficient(float(fp[2] + fv[2]), area, rho, speed), "A_ref": area}


def check_coefficients(case: PublicCase, got: dict[str, float], has_shear: bool, settings: ImportSettings,
                       speed: float) -> None:
    """Refuse a case whose integrated fields do not give the dataset's Cd (see the module docstring).

    Raises:
        AeroOptError: ``"<surface file>: integrated Cd … differs from the dataset's …"`` with the reference area
            and speed that would reconcile the two.
    """
    if not (math.isfinite(case.cd) and case.cd > 0):
        raise AeroOptError(f"{case.surface}: the dataset's Cd for it is {case.cd:g}, not a drag coefficient the "
                           "fields can be checked against")
    ratio = (got["Cd"] if has_shear else got["Cd_pressure"]) / case.cd
    lo = 1 - settings.cd_tolerance if has_shear else 1 - settings.max_friction_share
    if lo <= ratio <= 1 + settings.cd_tolerance:
        return
    what = (f"integrated Cd {got['Cd']:.4f} (pressure {got['Cd_pressure']:.4f} + friction {got['Cd_viscous']:.4f})"
            if has_shear else f"integrated pressure Cd {got['Cd_pressure']:.4f} (no wall shear in the file)")
    allowed = (f"{100 * settings.cd_tolerance:g}%" if has_shear else
               f"-{100 * settings.max_friction_share:g}% (missing friction) to +{100 * settings.cd_tolerance:g}%")
    raise AeroOptError(
        f"{case.surface}: {what} at {speed:g} m/s with A_ref {got['A_ref']:.4g} m2 differs from the dataset's Cd "
        f"{case.cd:.4f} by {100 * (ratio - 1):+.1f}% (allowed {allowed}); the published Cd would follow with A_ref "
        f"{got['A_ref'] * ratio:.4g} m2 or {speed * math.sqrt(ratio):.4g} m/s: give the dataset's own with --a-ref "
        "or --speed, or --fields if its fields are not kinematic")


def _in_car_box(bounds: np.ndarray) -> bool:
    lo, hi = to_normalized(np.asarray(bounds))
    return bool((lo >= np.asarray(CAR_BOUNDS[0])).all() and (hi <= np.asarray(CAR_BOUNDS[1])).all())


def import_case(case: PublicCase, out_path: Path, settings: ImportSettings, source: str,
                repair: Any = None) -> dict[str, Any]:
    """Check one public case and write it in the dataset format (:mod:`aero_opt.geometry.dataset`).

    Args:
        case: from :func:`list_cases` (not skipped).
        out_path: the ``.npz`` to write (atomically).
        settings: checks and overrides.
        source: the dataset format name (recorded).
        repair: :class:`aero_opt.geometry.mesh_import.ImportOptions` of the voxel repair (default options).

    Returns:
        The summary stored in the file's ``case`` entry: the published and the integrated coefficients, the flow,
        the arrays used, the repair, and the Cd integrated on the written mesh (``Cd_on_dataset_mesh``).

    Raises:
        AeroOptError: unreadable file, a Cd that does not match (:func:`check_coefficients`), a body the repair
            cannot close faithfully, or one larger than the surrogate's grid.
    """
    from aero_opt.geometry.dataset import grid_mesh, save_car
    from aero_opt.geometry.mesh_import import (
        ImportOptions,
        check_body,
        frame_shift,
        parse_axis,
        rotation_to_car_frame,
        watertight_body,
    )

    kinematic = case.kinematic if settings.kinematic is None else settings.kinematic
    speed = settings.speed or case.speed
    rho = settings.rho
    surface, arrays = read_surface(case.surface, rho, kinematic)
    rot = rotation_to_car_frame(parse_axis(settings.forward), parse_axis(settings.up))
    surface = SurfaceFields(surface.points @ rot.T, surface.triangles, surface.pressure,
                            None if surface.shear is None else surface.shear @ rot.T)
    has_shear = surface.shear is not None
    got = surface_coefficients(surface, settings.a_ref or case.a_ref, rho, speed)
    check_coefficients(case, got, has_shear, settings, speed)
    soup = trimesh.Trimesh(surface.points, surface.triangles, process=False)
    if len(soup.faces) > SIMPLIFY_FACES:
        import pymeshlab

        ms = pymeshlab.MeshSet()
        ms.add_mesh(pymeshlab.Mesh(vertex_matrix=soup.vertices, face_matrix=soup.faces.astype(np.int32)))
        ms.meshing_decimation_quadric_edge_collapse(targetfacenum=SIMPLIFY_FACES, preservenormal=True)
        m = ms.current_mesh()
        soup = trimesh.Trimesh(m.vertex_matrix(), m.face_matrix(), process=False)
    body, repaired = watertight_body(soup, repair or ImportOptions(), str(case.surface))
    shift = frame_shift(body.bounds, settings.clearance)
    body.apply_translation(shift)
    surface = SurfaceFields(surface.points + shift, surface.triangles, surface.pressure, surface.shear)
    check_body(body, str(case.surface))
    if not _in_car_box(body.bounds):
        ext = body.extents
        raise AeroOptError(f"{case.surface}: the body ({ext[0]:.2f} x {ext[1]:.2f} x {ext[2]:.2f} m) does not fit "
                           "the surrogate's grid (up to 5.2 m long, 2.2 m wide, 2.1 m high, nose at x = 0)")
    verts, faces = grid_mesh(body.vertices, body.faces)
    p, tau = sample_on_mesh(surface, verts, half=False)
    a_ref = got["A_ref"]
    v, f = torch.as_tensor(verts), torch.as_tensor(faces)
    fp, fv = force_parts(v, f, torch.as_tensor(p), None if tau is None else torch.as_tensor(tau))
    on_mesh = drag_coefficient(float(fp[0] + fv[0]), a_ref, rho, speed)
    summary = {"source": source, "surface": str(case.surface), "files": case.sources, "arrays": arrays,
               "kinematic_fields": kinematic, "speed": speed, "rho": rho, "A_ref": a_ref, "half_model": False,
               "Cd": case.cd,
               "Cd_pressure": got["Cd_pressure"], "Cd_viscous": got["Cd_viscous"] if has_shear else
               case.cd - got["Cd_pressure"],
               "Cl": case.cl if case.cl is not None else got["Cl"], "Cd_integrated": got["Cd"],
               "has_shear": has_shear, "Cd_on_dataset_mesh": on_mesh, "repair": repaired.get("method"),
               "vertices": int(len(verts))}
    save_car(out_path, verts, faces, p, tau if tau is not None else np.zeros((len(verts), 3)), summary,
             {"source": source, "case": case.name})
    return summary


def import_dataset(fmt: str, src: Path, out_dir: Path, settings: ImportSettings, table: Path | None = None,
                   limit: int | None = None, repair: Any = None) -> dict[str, Any]:
    """Import every case of a public dataset into ``out_dir`` (resumable: written cases are kept).

    Writes ``<name>.npz`` per imported case, ``split.json`` (train/val/test by name,
    :func:`aero_opt.geometry.dataset.make_split`) and ``import_summary.json`` (per case: imported with its
    coefficients, refused with the reason, or skipped).

    Args:
        fmt, src, table: as :func:`list_cases`.
        out_dir: the dataset folder.
        settings: checks and overrides.
        limit: import at most this many cases (the first ones; None: all).
        repair: voxel-repair options (:class:`aero_opt.geometry.mesh_import.ImportOptions`).

    Returns:
        The summary (also written): counts and per-case rows.
    """
    from aero_opt.core.progress import progress_bar
    from aero_opt.geometry.dataset import load_car, make_split

    cases = list_cases(fmt, src, table)
    todo = [c for c in cases if c.skip is None][:limit]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, Any]] = {c.name: {"status": "skipped", "reason": c.skip} for c in cases if c.skip}
    summary: dict[str, Any] = {"format": fmt, "source": str(src), "settings": vars(settings).copy(), "cases": rows}

    def write() -> None:
        done = sorted(n for n, r in rows.items() if r["status"] == "imported")
        summary.update(imported=len(done), refused=sum(r["status"] == "refused" for r in rows.values()),
                       skipped=sum(r["status"] == "skipped" for r in rows.values()))
        write_json_atomic(out_dir / "split.json", make_split(done))
        write_json_atomic(out_dir / "import_summary.json", summary)

    for case in progress_bar(todo, desc="import", unit="case"):
        path = out_dir / f"{case.name}.npz"
        try:
            if path.is_file():
                got = load_car(path).case
            else:
                got = import_case(case, path, settings, fmt, repair)
            rows[case.name] = {"status": "imported", "Cd": got["Cd"], "Cd_integrated": got["Cd_integrated"],
                               "Cd_on_dataset_mesh": got["Cd_on_dataset_mesh"], "has_shear": got["has_shear"]}
            log.info("%s: Cd %.4f (integrated %.4f, on the dataset mesh %.4f)", case.name, got["Cd"],
                     got["Cd_integrated"], got["Cd_on_dataset_mesh"])
        except AeroOptError as exc:
            rows[case.name] = {"status": "refused", "reason": str(exc)}
            log.warning("%s refused: %s", case.name, exc)
        write()
    write()
    return summary
