"""Import a user's car mesh: load any common format, orient it to the car frame, scale it to metres and repair it
into one watertight manifold.

Car frame: flow along +x (the nose at x = 0 points upstream, towards -x), up +z, wheels/ground at z = 0,
symmetry plane y = 0.

Repair strategy (robust to holes, part soups and inconsistent winding, unlike hole filling):
a mesh that is already one closed, consistently wound component is kept as is. Anything else is rebuilt from a
voxel solid: the triangles are rasterized into a shell of voxels (dilated by ``close_voxels`` to bridge holes and
gaps), the outside is flood-filled from the grid boundary, everything not reached is the solid, which is then
eroded back by the same amount; a smoothed signed distance of that solid goes through marching cubes, the largest
component is kept and simplified (quadric edge collapse, topology preserved). Holes wider than the dilation let the
flood fill in: then the solid is taken from the generalized winding number instead (inside where |w| > 0.5, robust
to holes of any size on a consistently wound surface). The report says what was found and what was done.

Faithfulness: a repair must keep the input's shape. Its bounding box (per axis) and its volume against the volume
the input encloses (winding-number estimate, which fills holes the way a reader of the mesh would) must agree
within ``ImportOptions.max_bbox_change`` (or two voxels) and ``max_volume_change``; otherwise the import is
refused with the measured changes rather than handing on a different body.
"""

from __future__ import annotations

import gzip
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import igl
import numpy as np
import pymeshlab
import trimesh
from scipy import ndimage
from skimage import measure

from aero_opt.core.atomic import atomic_open
from aero_opt.core.errors import AeroOptError
from aero_opt.core.settings import at_least, positive

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("obj", "stl", "ply", "off", "glb", "gltf")
"""Mesh formats read by :func:`load_mesh` (each also as ``.gz``)."""

_AXES = {"x": 0, "y": 1, "z": 2}


@dataclass(frozen=True)
class ImportOptions:
    """Options of the import step (YAML section ``import``)."""

    resolution: int = at_least(16, 384)
    """Voxels along the longest axis for the voxel repair (1.2 cm for a 4.6 m car)."""
    close_voxels: int = at_least(0, 2)
    """Dilation (voxels) used to bridge holes and gaps before flood fill; holes up to ~2x this close."""
    target_faces: int = at_least(100, 60_000)
    """Face count after simplification of a repaired mesh."""
    force_remesh: bool = False
    """Rebuild through the voxel solid even when the input is already a clean closed mesh."""
    max_bbox_change: float = positive(0.02)
    """Largest relative change of the bounding box (per axis) a repair may make (the shipped real cars: < 0.4%)."""
    max_volume_change: float = positive(0.05)
    """Largest relative change of the enclosed volume a repair may make (the shipped real cars: < 2%)."""


def _file_type(path: Path) -> tuple[str, bool]:
    """The mesh format of ``path`` and whether it is gzipped; raises for an unknown extension."""
    suffixes = [s.lower().lstrip(".") for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == "gz"
    if gz:
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext not in FORMATS:
        raise AeroOptError(f"{path}: unknown mesh extension {'.'.join(path.suffixes) or '(none)'!r}; "
                           f"supported: {', '.join(FORMATS)} (optionally .gz)")
    return ext, gz


def _check_binary_stl_length(path: Path) -> None:
    """Refuse a binary STL shorter than its header's triangle count says (a cut-off download or copy)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        start = fh.read(4096)
    head = start[:84]
    if len(head) < 84 or head[:5].lower() == b"solid" and b"facet" in start:
        return  # too short to be binary (trimesh decides), or ASCII
    count = int.from_bytes(head[80:84], "little")
    expected = 84 + 50 * count
    if size < expected:
        raise AeroOptError(f"{path}: binary STL cut off: its header announces {count} triangles "
                           f"({expected} bytes), the file has {size} bytes")


def load_mesh(path: str | Path) -> trimesh.Trimesh:
    """Read a mesh file (OBJ, STL, PLY, OFF, GLB/GLTF or any of them gzipped) as one triangle soup.

    Scenes (glTF) are flattened with their node transforms applied. Vertices are merged across UV and normal
    seams (and STL's per-triangle copies) so that watertightness can be judged.

    Args:
        path: the mesh file.

    Returns:
        A trimesh with float64 vertices (V, 3) and int faces (F, 3), in the file's own units and axes.

    Raises:
        AeroOptError: missing file, unknown extension, unreadable or empty mesh (the message names the file).
    """
    path = Path(path)
    if path.is_dir():
        raise AeroOptError(f"{path}: is a folder, not a mesh file")
    if not path.is_file():
        raise AeroOptError(f"{path}: no such file")
    ext, gz = _file_type(path)
    if ext == "stl" and not gz:
        _check_binary_stl_length(path)
    try:
        if gz:
            with gzip.open(path, "rb") as fh:
                data = fh.read()
            mesh = trimesh.load(io.BytesIO(data), file_type=ext, force="mesh", process=False)
        else:
            mesh = trimesh.load(path, file_type=ext, force="mesh", process=False)
    except Exception as exc:  # trimesh raises many types for corrupt files
        raise AeroOptError(f"{path}: cannot read {ext.upper()} mesh ({type(exc).__name__}: {exc})") from exc
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0 or len(mesh.vertices) < 3:
        raise AeroOptError(f"{path}: the file holds no triangles (empty, or cut off before its first one)")
    if not np.isfinite(mesh.vertices).all():
        raise AeroOptError(f"{path}: vertices contain NaN or infinite coordinates")
    mesh.merge_vertices(merge_tex=True, merge_norm=True)
    # Drop only faces that repeat a vertex; zero-area faces with three distinct vertices (marching cubes makes
    # them) are part of a closed surface and removing them would open it.
    f = mesh.faces
    mesh.update_faces((f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2]))
    mesh.remove_unreferenced_vertices()
    if len(mesh.faces) == 0:
        raise AeroOptError(f"{path}: every triangle is degenerate")
    return mesh


def parse_axis(spec: str) -> np.ndarray:
    """Parse an axis such as ``+x``, ``-z`` or ``y`` into a unit vector (3,)."""
    s = spec.strip().lower()
    sign = -1.0 if s.startswith("-") else 1.0
    s = s.lstrip("+-")
    if s not in _AXES:
        raise AeroOptError(f"axis {spec!r}: expected one of +x, -x, +y, -y, +z, -z")
    v = np.zeros(3)
    v[_AXES[s]] = sign
    return v


def guess_orientation(mesh: trimesh.Trimesh, file_type: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Guess the forward (tail-to-nose) and up axes of a car mesh.

    glTF files follow the glTF convention (+y up, the front faces +z). Otherwise the longest extent is the
    length and the shortest the height; the up sign puts the larger share of surface area in the lower half (a
    car's body is wider than its greenhouse); a mesh whose length lies along x is taken to be in the CFD frame
    already (nose at min x), one along z in the glTF convention (nose at +z).

    Returns:
        forward (3,), up (3,) unit vectors in the file's axes, and a one-line note on how they were chosen.
    """
    if file_type in ("glb", "gltf"):
        return np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0]), "glTF convention: front +z, up +y"
    ext = mesh.extents
    order = np.argsort(ext)
    up_i, len_i = int(order[0]), int(order[2])
    centres = mesh.triangles_center[:, up_i]
    mid = 0.5 * (mesh.bounds[0, up_i] + mesh.bounds[1, up_i])
    lower = mesh.area_faces[centres < mid].sum()
    upper = mesh.area_faces[centres >= mid].sum()
    up = np.zeros(3)
    up[up_i] = 1.0 if lower >= upper else -1.0
    fwd = np.zeros(3)
    fwd[len_i] = -1.0 if len_i == 0 else 1.0
    note = (f"guessed: length along {'xyz'[len_i]} ({'nose at min x, CFD frame' if len_i == 0 else 'nose at +'}"
            f"{'' if len_i == 0 else 'xyz'[len_i]}), up {'+' if up[up_i] > 0 else '-'}{'xyz'[up_i]} "
            "(more surface in the lower half); pass --forward/--up if wrong")
    return fwd, up, note


def rotation_to_car_frame(forward: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) that maps ``forward`` to -x (the nose points upstream) and ``up`` to +z."""
    f = np.asarray(forward, float) / np.linalg.norm(forward)
    u = np.asarray(up, float) / np.linalg.norm(up)
    if abs(float(f @ u)) > 1e-6:
        raise AeroOptError("--forward and --up must be different, perpendicular axes")
    new_x = -f
    new_z = u
    new_y = np.cross(new_z, new_x)
    return np.stack([new_x, new_y, new_z])  # rows: the old-frame directions of the new axes


def _unit_scale(length: float, target: float | None) -> tuple[float, str]:
    """Scale factor to metres from the mesh length along the driving direction."""
    if target is not None:
        if target <= 0:
            raise AeroOptError(f"--length {target}: must be positive")
        return target / length, f"scaled to the requested length {target} m"
    if 2.0 <= length <= 8.0:
        return 1.0, "units taken as metres"
    if 2000.0 <= length <= 8000.0:
        return 1e-3, "units taken as millimetres"
    if 200.0 <= length <= 800.0:
        return 1e-2, "units taken as centimetres"
    return 1.0, f"length {length:.3g} is not a car's in m/cm/mm: units kept (pass --length to scale)"


def diagnose(mesh: trimesh.Trimesh) -> dict[str, Any]:
    """Defects of a triangle mesh that matter for CFD and SDF sampling."""
    edges = mesh.edges_sorted
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return {
        "vertices": int(len(mesh.vertices)),
        "faces": int(len(mesh.faces)),
        "components": int(len(mesh.split(only_watertight=False))) if len(mesh.faces) < 400_000 else None,
        "watertight": bool(mesh.is_watertight),
        "winding_consistent": bool(mesh.is_winding_consistent),
        "boundary_edges": int((counts == 1).sum()),
        "non_manifold_edges": int((counts > 2).sum()),
    }


def _voxel_grid(mesh: trimesh.Trimesh, opts: ImportOptions) -> tuple[np.ndarray, np.ndarray, float]:
    """The repair's voxel grid around ``mesh``: its shape (3,) int, origin (3,) and pitch (units of the mesh)."""
    h = float(mesh.extents.max()) / opts.resolution
    pad = opts.close_voxels + 3
    origin = mesh.bounds[0] - pad * h
    shape = np.ceil(mesh.extents / h).astype(int) + 2 * pad + 1
    return shape, origin, h


def _flood_solid(mesh: trimesh.Trimesh, opts: ImportOptions) -> tuple[np.ndarray, np.ndarray, float]:
    """Occupancy (nx, ny, nz) bool of the closed solid bounded by a triangle soup (dilated shell, flood fill from
    outside, eroded back), its grid origin and pitch."""
    shape, origin, h = _voxel_grid(mesh, opts)
    # Rasterize the surface: area-proportional samples spaced well under a voxel.
    n_pts = int(min(4e7, max(1e5, 6.0 * mesh.area / (h * h))))
    pts, _ = trimesh.sample.sample_surface(mesh, n_pts, seed=0)
    pts = np.concatenate([pts, mesh.vertices])
    idx = np.clip(np.floor((pts - origin) / h + 0.5).astype(int), 0, shape - 1)
    shell = np.zeros(shape, bool)
    shell[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    ball = ndimage.generate_binary_structure(3, 1)
    shell = ndimage.binary_dilation(shell, ball, iterations=opts.close_voxels)
    free, _ = ndimage.label(~shell)
    outside_labels = np.unique(np.concatenate([free[0].ravel(), free[-1].ravel(), free[:, 0].ravel(),
                                               free[:, -1].ravel(), free[:, :, 0].ravel(), free[:, :, -1].ravel()]))
    outside = np.isin(free, outside_labels[outside_labels > 0])
    if not (~outside & ~shell).any():
        raise AeroOptError("the surface encloses no volume (an open sheet, or holes wider than "
                           f"~{2 * opts.close_voxels * h:.3g} units let the outside in)")
    solid = ndimage.binary_erosion(~outside, ball, iterations=opts.close_voxels, border_value=0)
    return solid, origin, h


def winding_numbers(mesh: trimesh.Trimesh, points: np.ndarray, chunk: int = 2_000_000) -> np.ndarray:
    """Generalized winding number (N,) of a triangle soup at ``points`` (N, 3): about 1 inside a closed outward
    surface, 0 outside, and a smooth blend across holes (libigl's fast winding number)."""
    v = np.asarray(mesh.vertices, np.float64)
    f = np.asarray(mesh.faces, np.int64)
    return np.concatenate([igl.fast_winding_number(v, f, np.ascontiguousarray(points[i:i + chunk], np.float64))
                           for i in range(0, len(points), chunk)])


def _winding_solid(mesh: trimesh.Trimesh, opts: ImportOptions) -> tuple[np.ndarray, np.ndarray, float]:
    """Occupancy (nx, ny, nz) bool of the voxel centres where the soup's |winding number| exceeds 0.5, its grid
    origin and pitch."""
    shape, origin, h = _voxel_grid(mesh, opts)
    axes = [origin[i] + h * np.arange(shape[i]) for i in range(3)]
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    solid = (np.abs(winding_numbers(mesh, centres)) > 0.5).reshape(tuple(shape))
    if not solid.any():
        raise AeroOptError("the surface encloses no volume (its winding number is below 1/2 everywhere: an open "
                           "sheet)")
    return solid, origin, h


def enclosed_volume(mesh: trimesh.Trimesh, samples: int = 100_000) -> float:
    """Volume (units³) a triangle soup encloses, holes bridged: the share of ``samples`` uniform points in its
    bounding box whose |winding number| exceeds 0.5 (seeded; relative error about 0.3% for a car)."""
    lo, hi = mesh.bounds
    q = lo + np.random.default_rng(0).random((samples, 3)) * (hi - lo)
    return float(np.prod(hi - lo) * np.mean(np.abs(winding_numbers(mesh, q)) > 0.5))


# The flood-filled shell lies on average about 3/4 voxel outside the true surface: extracting the level -0.75
# (voxel units) puts the surface back (measured on a box: volume within 0.05%, see the tests). The winding-number
# solid is sampled at voxel centres, so its surface lies half-way between inside and outside centres: level 0.
_SURFACE_LEVEL = {"flood fill": -0.75, "winding number": 0.0}


def voxel_remesh(mesh: trimesh.Trimesh, opts: ImportOptions,
                 occupancy: str = "flood fill") -> tuple[trimesh.Trimesh, dict[str, Any]]:
    """Rebuild a triangle soup as one watertight manifold through a voxel solid (see the module docstring).

    Args:
        mesh: the soup (any units).
        opts: resolution, dilation and face count of the repair.
        occupancy: how the solid is found: "flood fill" (dilated shell; bridges holes up to about
            2 × close_voxels voxels, robust to inconsistent winding) or "winding number" (holes of any size, needs
            mostly consistent winding).

    Returns:
        The new mesh (same units and frame) and a report of the steps (voxel size, dropped components...).
    """
    solid, origin, h = (_flood_solid if occupancy == "flood fill" else _winding_solid)(mesh, opts)
    inside = ndimage.distance_transform_edt(solid)
    outside = ndimage.distance_transform_edt(~solid)
    field = ndimage.gaussian_filter(outside - inside, sigma=0.7)
    verts, faces, _, _ = measure.marching_cubes(field, level=_SURFACE_LEVEL[occupancy], spacing=(h, h, h))
    remeshed = trimesh.Trimesh(verts + origin, faces, process=False)
    parts = remeshed.split(only_watertight=False)
    volumes = sorted((abs(float(p.volume)) for p in parts), reverse=True)
    keep = max(parts, key=lambda p: abs(float(p.volume)))
    ms = pymeshlab.MeshSet()
    ms.add_mesh(pymeshlab.Mesh(vertex_matrix=keep.vertices, face_matrix=keep.faces.astype(np.int32)))
    if len(keep.faces) > opts.target_faces:
        ms.meshing_decimation_quadric_edge_collapse(targetfacenum=opts.target_faces, preservetopology=True,
                                                    preservenormal=True, qualitythr=0.4, optimalplacement=True)
    out = ms.current_mesh()
    result = trimesh.Trimesh(out.vertex_matrix(), out.face_matrix(), process=False)
    report = {"method": f"voxel solid ({occupancy}) + marching cubes + quadric simplification", "voxel_m": h,
              "grid": list(solid.shape), "components_after_marching_cubes": len(parts),
              "dropped_component_volumes": volumes[1:6], "faces_before_simplify": int(len(keep.faces))}
    return result, report


def _shape_change(out: trimesh.Trimesh, soup: trimesh.Trimesh, soup_volume: float) -> dict[str, Any]:
    """Relative bounding-box change per axis (3,) and relative volume change of a repair against its input."""
    return {"bbox_relative_change": (np.abs(out.extents - soup.extents) / soup.extents).round(5).tolist(),
            "input_enclosed_volume": soup_volume,
            "volume_relative_change": round(abs(float(out.volume)) / soup_volume - 1.0, 5) if soup_volume > 0
            else None}


def _faithful(change: dict[str, Any], soup: trimesh.Trimesh, opts: ImportOptions) -> bool:
    """Whether a repair's :func:`_shape_change` is within the options' tolerances: the volume within
    ``max_volume_change``, each bounding-box extent within ``max_bbox_change`` or two voxels, whichever is more
    (the repair cannot place a surface finer than its voxels)."""
    vol = change["volume_relative_change"]
    allowed = np.maximum(opts.max_bbox_change, 2.0 * change["voxel_m"] / soup.extents)
    return bool((np.asarray(change["bbox_relative_change"]) <= allowed).all() and vol is not None
                and abs(vol) <= opts.max_volume_change)


def _describe(occupancy: str, rep: dict[str, Any], out: trimesh.Trimesh) -> str:
    """One repair attempt's measured change, for a refusal message."""
    bbox = ", ".join(f"{100 * c:.1f}%" for c in rep["bbox_relative_change"])
    vol = rep["volume_relative_change"]
    return (f"{occupancy}: bounding box changed by {bbox} (x, y, z), volume by "
            f"{'n/a' if vol is None else f'{100 * vol:+.1f}%'} ({rep['input_enclosed_volume']:.4g} enclosed by the "
            f"input, {abs(float(out.volume)):.4g} after the repair)")


def _repair(soup: trimesh.Trimesh, opts: ImportOptions, path: Path | str) -> tuple[trimesh.Trimesh, dict[str, Any]]:
    """The first faithful voxel repair of ``soup``, with its report: flood fill, then the winding number; for a
    soup with inconsistent winding, last the winding number after orienting each connected part consistently
    (which also corrects the input's volume estimate; it is slow on large soups, so only done when needed).

    Raises:
        AeroOptError: when no attempt keeps the input's bounding box and volume within tolerance (the message
            gives each attempt's measured changes) or none finds an enclosed volume.
    """
    volume = enclosed_volume(soup)
    made: list[tuple[str, trimesh.Trimesh, dict[str, Any]]] = []
    failed: list[str] = []
    attempts: list[tuple[str, trimesh.Trimesh | None]] = [("flood fill", soup), ("winding number", soup)]
    if not soup.is_winding_consistent:
        attempts.append(("winding number", None))
    for occupancy, mesh in attempts:
        if mesh is None:
            mesh = soup.copy()
            trimesh.repair.fix_winding(mesh)
            volume = enclosed_volume(mesh)
            occupancy = "winding number, parts re-oriented"
        try:
            out, rep = voxel_remesh(mesh, opts, occupancy.split(",")[0])
        except AeroOptError as exc:
            failed.append(f"{occupancy}: {exc}")
            continue
        made.append((occupancy, out, rep))
        for occ, o, r in made:  # against the latest volume estimate (it improves once the parts are re-oriented)
            r.update(_shape_change(o, soup, volume))
            if _faithful(r, soup, opts):
                rejected = failed + [_describe(oc, rr, oo) for oc, oo, rr in made if oc != occ]
                if rejected:
                    r["rejected"] = rejected
                r["method"] = f"voxel solid ({occ}) + marching cubes + quadric simplification"
                return o, r
    tried = failed + [_describe(occ, r, o) for occ, o, r in made]
    raise AeroOptError(f"{path}: cannot repair it faithfully (allowed: bounding box "
                       f"{100 * opts.max_bbox_change:g}% or two voxels per axis, volume "
                       f"{100 * opts.max_volume_change:g}%): " + "; ".join(tried)
                       + ". Close its holes in a mesh editor, or raise import.resolution")


def watertight_body(soup: trimesh.Trimesh, opts: ImportOptions, name: str,
                    defects: dict[str, Any] | None = None) -> tuple[trimesh.Trimesh, dict[str, Any]]:
    """The soup as one closed, outward manifold: itself when it already is one (unless ``opts.force_remesh``),
    else the first faithful voxel repair (flood fill, then the winding number; see the module docstring).

    Args:
        soup: the triangles (metres, any frame).
        opts: repair options.
        name: what names the input in an error (its file).
        defects: :func:`diagnose` of the soup when already computed.

    Returns:
        The body and the repair's report (``method``; for a repair its measured bounding-box and volume change).

    Raises:
        AeroOptError: the repair cannot keep the input's bounding box and volume within tolerance.
    """
    defects = defects or diagnose(soup)
    clean = defects["watertight"] and defects["winding_consistent"] and defects["components"] == 1
    if clean and not opts.force_remesh:
        out, report = soup.copy(), {"method": "none needed (one closed, consistently wound component)"}
    else:
        out, report = _repair(soup, opts, name)
    if out.volume < 0:
        out.invert()
        report["inverted"] = True
    return out, report


def import_mesh(path: str | Path, forward: str | None = None, up: str | None = None,
                length: float | None = None, clearance: float = 0.0,
                opts: ImportOptions | None = None) -> tuple[trimesh.Trimesh, dict]:
    """Load, orient, scale and repair a car mesh into the car frame (metres, nose at x = 0, ground at z = 0).

    Args:
        path: mesh file (see :data:`FORMATS`).
        forward: axis in the file pointing from tail to nose (``+z``...); guessed when None.
        up: axis in the file pointing up; guessed when None.
        length: target overall length in metres; guessed units when None.
        clearance: height (m) of the mesh's lowest point above the ground: 0 for a car with wheels, the ride
            height for a body without wheels (e.g. the DrivAer body shell).
        opts: repair options.

    Returns:
        The watertight mesh and a JSON-ready report: input defects, orientation, scale, what was fixed (with the
        repair's bounding-box and volume change against the input), the output's defects and the relative
        bounding-box change per axis.

    Raises:
        AeroOptError: when the file cannot be read, or cannot be repaired faithfully (see the module docstring;
            the message names the file and the measured changes).
    """
    opts = opts or ImportOptions()
    path = Path(path)
    mesh = load_mesh(path)
    ext, _ = _file_type(path)
    g_fwd, g_up, note = guess_orientation(mesh, ext)
    fwd = parse_axis(forward) if forward else g_fwd
    upv = parse_axis(up) if up else g_up
    if forward or up:
        note = f"given: forward {forward or '(guessed)'}, up {up or '(guessed)'}"
    rot = rotation_to_car_frame(fwd, upv)
    v = mesh.vertices @ rot.T
    src_len = float(np.ptp(v[:, 0]))
    scale, unit_note = _unit_scale(src_len, length)
    v = v * scale
    soup = trimesh.Trimesh(v, mesh.faces, process=False)
    before = diagnose(soup)
    report: dict[str, Any] = {"file": str(path), "format": ext, "orientation": note, "units": unit_note,
                              "scale": scale, "input": before}
    out, report["repair"] = watertight_body(soup, opts, str(path), before)
    if clearance < 0:
        raise AeroOptError(f"--clearance {clearance}: must be >= 0")
    shift = frame_shift(out.bounds, clearance)
    out.apply_translation(shift)
    soup.apply_translation(shift)
    after = diagnose(out)
    if not (after["watertight"] and after["winding_consistent"] and after["components"] == 1 and out.volume > 0):
        raise AeroOptError(f"{path}: repair failed: result is not one closed manifold ({after})")
    report["output"] = after
    report["volume_m3"] = float(out.volume)
    report["area_m2"] = float(out.area)
    report["bounds_m"] = out.bounds.tolist()
    report["bbox_relative_change"] = (np.abs(out.extents - soup.extents) / soup.extents).round(5).tolist()
    report["mean_distance_to_input_m"] = _mean_distance(out, soup)
    return out, report


MAX_LENGTH_M = 30.0
"""Longest body the CFD case and the surrogate accept, in metres (a longer one is a mesh in other units)."""


def check_body(mesh: trimesh.Trimesh, name: str) -> None:
    """Refuse a body that CFD or the surrogate would treat wrongly without an error: no faces, NaN vertices, not
    watertight (snappyHexMesh would mesh its inside), inward faces, longer than :data:`MAX_LENGTH_M`, or not in the
    car frame (nose at x = 0, centred on y = 0, above the ground z = 0, metres).

    Args:
        mesh: the body.
        name: what names it in the message (its file).

    Raises:
        AeroOptError: ``"<name>: ..."``, saying what is wrong and that ``aero-opt import`` fixes it.
    """
    if len(mesh.faces) == 0:
        raise AeroOptError(f"{name}: mesh has no faces")
    if not np.isfinite(mesh.vertices).all():
        raise AeroOptError(f"{name}: mesh has NaN or infinite vertices")
    if not mesh.is_watertight:
        raise AeroOptError(f"{name}: mesh is not watertight (snappyHexMesh would silently mesh the inside); "
                           "repair it with `aero-opt import`")
    if mesh.volume <= 0:
        raise AeroOptError(f"{name}: mesh has non-positive volume (inward faces?)")
    lo, hi = mesh.bounds
    ext = hi - lo
    if ext[0] > MAX_LENGTH_M:
        raise AeroOptError(f"{name}: the body is {ext[0]:.4g} long along x, over the {MAX_LENGTH_M:g} m a car in "
                           "metres can be (millimetres?); `aero-opt import` detects units and scales to metres")
    if lo[2] < -1e-3 or abs(lo[0]) > 0.05 * ext[0] or abs(lo[1] + hi[1]) > 0.05 * ext[1]:
        raise AeroOptError(f"{name}: mesh is not in the car frame (nose at x = 0, centred on y = 0, above the "
                           f"ground z = 0, metres; bounds {lo.round(3).tolist()}..{hi.round(3).tolist()}); "
                           "run `aero-opt import` on it")


def frame_shift(bounds: np.ndarray, clearance: float | None = None) -> np.ndarray:
    """Translation (3,) in metres that puts a body with ``bounds`` (2, 3) into the car frame: nose at x = 0, centred
    on y = 0, and its lowest point at z = ``clearance`` (None: heights kept)."""
    lo, hi = np.asarray(bounds, dtype=np.float64)
    return np.array([-lo[0], -0.5 * (lo[1] + hi[1]), 0.0 if clearance is None else clearance - lo[2]])


def _mean_distance(a: trimesh.Trimesh, b: trimesh.Trimesh, n: int = 20_000) -> float:
    """Mean distance (units of the meshes) from points sampled on ``a`` to the surface of ``b``."""
    pts, _ = trimesh.sample.sample_surface(a, n, seed=1)
    d2, _, _ = igl.point_mesh_squared_distance(pts, np.asarray(b.vertices, np.float64),
                                               np.asarray(b.faces, np.int64))
    return float(np.sqrt(d2).mean())


def export_mesh(mesh: trimesh.Trimesh, path: str | Path) -> None:
    """Write a mesh; the format follows the extension (STL binary by default for CFD)."""
    path = Path(path)
    ext = path.suffix.lower().lstrip(".")
    if ext not in ("stl", "obj", "ply", "off", "glb"):
        raise AeroOptError(f"{path}: cannot write extension {path.suffix!r} (stl, obj, ply, off, glb)")
    with atomic_open(path, "wb") as fh:
        mesh.export(file_obj=fh, file_type=ext)


REAL_CARS: dict[str, dict[str, Any]] = {
    "drivaer_fastback_body.obj.gz": {"forward": "-x", "up": "+z", "clearance": 0.15},
    "ferrari_roma_lowpoly_kulonee.glb": {"forward": "+z", "up": "+y", "clearance": 0.0},
    "carconcept_khronos.ply": {"forward": "+z", "up": "+y", "clearance": 0.0},
}
"""Orientation of the real cars shipped in ``data/real_cars/`` (see data/README.md); the DrivAer shell has no
wheels, so it is lifted to a 15 cm ride height."""
