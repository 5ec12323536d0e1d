"""Signed distances and DeepSDF training samples.

Sign convention: negative inside, positive outside (DeepSDF). Distances are exact point-to-triangle distances
(libigl's AABB tree); the sign comes from the fast generalized winding number (libigl), which stays right on
meshes with small defects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import igl
import numpy as np
from scipy.spatial import cKDTree

from aero_opt.core.atomic import savez_atomic
from aero_opt.core.errors import AeroOptError
from aero_opt.core.frame import CAR_FRAME, Similarity, unit_sphere_transform
from aero_opt.core.settings import at_least
from aero_opt.geometry.mesh_import import load_mesh

log = logging.getLogger(__name__)

CHAMFER_POINTS = 30_000
"""Surface points per shape for Chamfer distances (DeepSDF's evaluation uses 30k)."""


def signed_distance(points: np.ndarray, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Signed distance from points to a closed triangle mesh (negative inside).

    Args:
        points: (N, 3) query points, same units as ``verts``.
        verts: (V, 3) mesh vertices.
        faces: (F, 3) triangle indices.

    Returns:
        (N,) float64 signed distances in the units of ``verts``.
    """
    if len(faces) == 0:
        raise AeroOptError("signed distance to a mesh without faces")
    p = np.ascontiguousarray(points, np.float64)
    v = np.ascontiguousarray(verts, np.float64)
    f = np.ascontiguousarray(faces, np.int64)
    # libigl's signed_distance with the fast-winding-number sign returns approximate magnitudes (errors ~3e-4
    # measured on a box), so the magnitude comes from the exact AABB query and only the sign from the FWN.
    d2, _, _ = igl.point_mesh_squared_distance(p, v, f)
    inside = igl.fast_winding_number(v, f, p) > 0.5
    return np.where(inside, -1.0, 1.0) * np.sqrt(d2)


@dataclass(frozen=True)
class SampleSpec:
    """How many DeepSDF samples to draw and where."""

    n_samples: int = at_least(1, 250_000)
    """Total number of samples per mesh."""
    sigma_coarse: float = 0.05
    """Std of the coarse surface jitter, in normalized units."""
    sigma_fine: float = 0.008
    """Std of the fine surface jitter, in normalized units."""
    fraction_uniform: float = 0.1
    """Fraction of samples drawn uniformly in the bounding cube [-1, 1]³; the rest are split evenly between the
    two jitter scales."""


def surface_points(verts: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform (area-weighted) random points (n, 3) on a triangle mesh, in the units of ``verts``."""
    v = np.asarray(verts, np.float64)
    tri = v[np.asarray(faces)]
    areas = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    idx = rng.choice(len(areas), size=n, p=areas / areas.sum())
    uv = rng.random((n, 2))
    flip = uv.sum(axis=1) > 1.0
    uv[flip] = 1.0 - uv[flip]
    t = tri[idx]
    return t[:, 0] + uv[:, :1] * (t[:, 1] - t[:, 0]) + uv[:, 1:] * (t[:, 2] - t[:, 0])


def sample_sdf(verts: np.ndarray, faces: np.ndarray, transform: Similarity, spec: SampleSpec,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw DeepSDF samples for one mesh in the normalized frame.

    Points near the surface (area-weighted surface points plus Gaussian jitter at two scales) and uniform points
    in the cube [-1, 1]³, with exact signed distances.

    Args:
        verts: (V, 3) vertices in the mesh's own frame (metres for cars).
        faces: (F, 3) triangles.
        transform: maps the mesh frame to the normalized frame (:data:`aero_opt.core.frame.CAR_FRAME` for cars).
        spec: sample counts and jitter scales.
        rng: the only source of randomness.

    Returns:
        points (N, 3) float32 in the normalized frame and sdf (N,) float32 in normalized units.
    """
    v_n = transform.forward(verts)
    n_uni = int(round(spec.n_samples * spec.fraction_uniform))
    n_near = spec.n_samples - n_uni
    n_coarse = n_near // 2
    n_fine = n_near - n_coarse
    surf = surface_points(v_n, faces, n_near, rng)
    sigma = np.concatenate([np.full(n_coarse, spec.sigma_coarse), np.full(n_fine, spec.sigma_fine)])
    near = surf + rng.normal(size=(n_near, 3)) * sigma[:, None]
    uni = rng.uniform(-1.0, 1.0, size=(n_uni, 3))
    pts = np.concatenate([near, uni])
    sdf = signed_distance(pts, v_n, faces)
    return pts.astype(np.float32), sdf.astype(np.float32)


def save_samples(path: Path, points: np.ndarray, sdf: np.ndarray, transform: Similarity, source: str,
                 surface: np.ndarray) -> None:
    """Write samples to a compressed ``.npz`` atomically (a temporary file renamed into place).

    The file holds ``points`` (N, 3) float32, ``sdf`` (N,) float32, ``surface`` (S, 3) float32 points on the
    surface (for Chamfer distances), ``frame_offset`` (3,), ``frame_scale`` () and ``source`` (mesh file name),
    all in the normalized frame.
    """
    savez_atomic(path, points=points, sdf=sdf, surface=np.asarray(surface, np.float32),
                 frame_offset=np.asarray(transform.offset), frame_scale=np.asarray(transform.scale),
                 source=np.asarray(source))


def samples_for_mesh_file(mesh_path: Path, out_path: Path, spec: SampleSpec, seed: int,
                          normalization: str = "car") -> dict[str, object]:
    """Sample one mesh file into ``out_path`` (``.npz``) and return a small report.

    Args:
        mesh_path: a watertight mesh file (metres, car frame for ``normalization="car"``).
        out_path: the ``.npz`` file to write.
        spec: sample counts and jitter scales.
        seed: random seed (same seed, same samples).
        normalization: ``"car"`` (the fixed car transform) or ``"unit_sphere"`` (per mesh, for bob/spot).
    """
    mesh = load_mesh(mesh_path)
    if not mesh.is_watertight:
        raise AeroOptError(f"{mesh_path}: mesh is not watertight; run `aero-opt import` on it first")
    if normalization == "car":
        transform = CAR_FRAME
    elif normalization == "unit_sphere":
        transform = unit_sphere_transform(mesh.vertices)
    else:
        raise AeroOptError(f"unknown normalization {normalization!r} (car or unit_sphere)")
    rng = np.random.default_rng(seed)
    pts, sdf = sample_sdf(mesh.vertices, mesh.faces, transform, spec, rng)
    surf = surface_points(transform.forward(mesh.vertices), mesh.faces, CHAMFER_POINTS, rng)
    save_samples(out_path, pts, sdf, transform, Path(mesh_path).name, surf)
    return {"mesh": str(mesh_path), "samples": str(out_path), "n": int(len(sdf)),
            "inside_fraction": float((sdf < 0).mean()), "frame": transform.to_dict()}


def chamfer_l2(a: np.ndarray, b: np.ndarray) -> float:
    """DeepSDF Chamfer-L2: mean squared NN distance a->b plus b->a (units² of the points)."""
    da, _ = cKDTree(b).query(a)
    db, _ = cKDTree(a).query(b)
    return float(np.mean(da**2) + np.mean(db**2))
