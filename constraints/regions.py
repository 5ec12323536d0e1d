"""Room for the driver and the engine: soft constraints that penalize the car's surface cutting into two boxes.

The boxes are placed relative to the initial car's bounding box (fractions of its length, width and height
measured from the nose, the centre line and the lowest point; defaults in :data:`CABIN_BOX` and
:data:`ENGINE_BOX`), filled with a regular grid of sample points, and only the points that lie inside the initial
car are kept. The constraint therefore reads "what was inside must stay inside": its penalty is exactly zero for
the initial car, and becomes positive as soon as the optimized surface leaves any of those points outside.

Penalty (m²): mean over the sample points of d², where d is how far a point lies outside the car (0 inside).
- Mesh parameterizations: d is the distance from the point to the closest point of the mesh (found with libigl
  without gradient, then written as a barycentric combination of the closest face's vertices, so it is
  differentiable in the vertices); inside/outside from the fast winding number.
- MeshSDF: d = relu(f(z, p)) · CAR_SCALE, the decoder's signed distance at the point (normalized units to metres),
  differentiable in z.
"""

from __future__ import annotations

from dataclasses import dataclass

import igl
import numpy as np
import torch

from aero_opt.core.errors import AeroOptError
from aero_opt.core.frame import CAR_OFFSET, CAR_SCALE
from aero_opt.core.physics import face_corners

Box = tuple[tuple[float, float, float], tuple[float, float, float]]

CABIN_BOX: Box = ((0.42, -0.22, 0.25), (0.66, 0.22, 0.62))
"""Driver and passenger: fractions of (length from the nose, half-width about the centre line, height from the
lowest point) of the initial car — seats from 42% to 66% of the length, ±22% of the width, 25% to 62% of the
height (a 4.6 m × 1.85 m × 1.45 m car: 1.1 m long, 0.8 m wide, 0.54 m tall)."""

ENGINE_BOX: Box = ((0.07, -0.25, 0.22), (0.25, 0.25, 0.5))
"""Engine bay: 7% to 25% of the length from the nose, ±25% of the width, 22% to 50% of the height."""


@dataclass(frozen=True)
class RegionSpec:
    """The boxes and the sample density."""

    boxes: tuple[Box, ...] = (CABIN_BOX, ENGINE_BOX)
    """Boxes as fractions of the initial car's bounding box (see :data:`CABIN_BOX`)."""
    points_per_axis: int = 6
    """Sample points per box axis (6³ = 216 per box)."""


def box_points(verts: np.ndarray, box: Box, n: int) -> np.ndarray:
    """Sample points (n³, 3) in metres of a box given as fractions of the bounding box of ``verts`` (V, 3)."""
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    size = hi - lo
    f0, f1 = np.asarray(box[0]), np.asarray(box[1])
    start = np.array([lo[0] + f0[0] * size[0], f0[1] * size[1], lo[2] + f0[2] * size[2]])
    stop = np.array([lo[0] + f1[0] * size[0], f1[1] * size[1], lo[2] + f1[2] * size[2]])
    axes = [np.linspace(a, b, n) for a, b in zip(start, stop)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def _barycentric(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (N, 3) of points p (N, 3) in triangles (a, b, c) (each (N, 3))."""
    v0, v1, v2 = b - a, c - a, p - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    den = np.where(np.abs(d00 * d11 - d01 * d01) > 1e-30, d00 * d11 - d01 * d01, 1e-30)
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    return np.stack([1.0 - v - w, v, w], axis=1)


class RoomConstraint:
    """Sample points that must stay inside the car, with penalties for meshes and for SDF decoders."""

    def __init__(self, init_verts: np.ndarray, init_faces: np.ndarray, spec: RegionSpec = RegionSpec()) -> None:
        """Args: the initial car (V, 3) metres and (F, 3) outward faces; spec: boxes and density.

        Raises:
            AeroOptError: no sample point of any box lies inside the initial car.
        """
        v = np.asarray(init_verts, np.float64)
        f = np.asarray(init_faces, np.int64)
        pts = np.concatenate([box_points(v, b, spec.points_per_axis) for b in spec.boxes])
        inside = igl.fast_winding_number(v, f, pts) > 0.5
        if not inside.any():
            raise AeroOptError("room constraint: no point of the cabin or engine boxes lies inside the initial car "
                               "(is the mesh closed, outward and in the car frame: x from the nose, z up?)")
        self.points = pts[inside]
        """(P, 3) metres: the sample points that must stay inside the car."""
        self.fraction_kept = float(inside.mean())

    @classmethod
    def from_points(cls, points: np.ndarray) -> RoomConstraint:
        """A constraint on given sample points (P, 3) in metres, car frame, every one of which must stay inside
        the car (e.g. :func:`constraints.packaging.place_package`'s)."""
        room = cls.__new__(cls)
        room.points = np.asarray(points, np.float64)
        room.fraction_kept = 1.0
        return room

    def penalty_mesh(self, verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """Mean squared distance (m²) by which the sample points lie outside the mesh; differentiable in verts.

        Args:
            verts: (V, 3) metres; faces: (F, 3) outward.
        """
        v = verts.detach().cpu().double().numpy()
        f = faces.detach().cpu().numpy().astype(np.int64)
        outside = igl.fast_winding_number(v, f, self.points) < 0.5
        if not outside.any():
            return verts.sum() * 0.0
        p = self.points[outside]
        _, fid, closest = igl.point_mesh_squared_distance(p, v, f)
        tri = f[fid]
        bary = torch.as_tensor(_barycentric(closest, *face_corners(v, tri)), dtype=verts.dtype)
        tri_t = torch.as_tensor(tri, device=verts.device)
        on_mesh = (bary.unsqueeze(2) * verts[tri_t]).sum(dim=1)
        d2 = (torch.as_tensor(p, dtype=verts.dtype) - on_mesh).square().sum(dim=1)
        return d2.sum() / len(self.points)

    def penalty_sdf(self, decoder: torch.nn.Module, latent: torch.Tensor) -> torch.Tensor:
        """Mean squared positive signed distance (m²) of the sample points under ``decoder(latent, x_normalized)``;
        differentiable in the latent (D,)."""
        x = torch.as_tensor((self.points - CAR_OFFSET) / CAR_SCALE, dtype=latent.dtype)
        d = decoder(latent, x).reshape(-1)
        return (torch.relu(d) * CAR_SCALE).square().mean()
