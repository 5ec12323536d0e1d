"""The one mapping between metres (CFD frame) and the normalized frame of the SDF model.

Car frame (metres): flow along +x, nose at x = 0, symmetry plane y = 0, ground z = 0.
Normalized frame: ``n = (x_m - CAR_OFFSET) / CAR_SCALE``; every car shares this fixed transform, so sizes survive
in SDF space (drag depends on size). With CAR_SCALE = 2.75 m the longest car of the family (5.2 m, nose at 0)
spans x_n in [-0.945, 0.945], and the ground maps to z_n = -0.9 so the grid is not wasted below the ground.

Non-car meshes (bob, spot) use :func:`unit_sphere_transform` instead: centre on the bounding-box centre and
scale so that the farthest vertex lies at radius 1/1.03 (DeepSDF's margin).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CAR_SCALE = 2.75
"""Metres per normalized unit."""
CAR_OFFSET = np.array([2.6, 0.0, 0.9 * 2.75])
"""Point in metres (x, y, z) that maps to the normalized origin; the ground (z = 0) maps to z_n = -0.9."""
CAR_BOUNDS: tuple[tuple[float, float, float], tuple[float, float, float]] = ((-1.0, -0.42, -0.95),
                                                                              (1.0, 0.42, -0.14))
"""A car-shaped box in the normalized frame holding every car of the family (lengths <= 5.2 m, width <= 2.2 m,
height <= 2.1 m) with a margin: use it as marching-cubes bounds to get voxels twice as fine as over [-1, 1]³."""


@dataclass(frozen=True)
class Similarity:
    """x_n = (x - offset) / scale, a uniform scale plus translation between two frames."""

    offset: tuple[float, float, float]
    scale: float

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Map points (N, 3) from the source frame to the normalized frame."""
        return (np.asarray(x, np.float64) - np.asarray(self.offset)) / self.scale

    def inverse(self, x_n: np.ndarray) -> np.ndarray:
        """Map points (N, 3) from the normalized frame back to the source frame."""
        return np.asarray(x_n, np.float64) * self.scale + np.asarray(self.offset)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready description (stored next to SDF samples)."""
        return {"offset": list(self.offset), "scale": self.scale}


CAR_FRAME = Similarity(offset=tuple(float(c) for c in CAR_OFFSET), scale=CAR_SCALE)
"""The fixed transform shared by all cars."""


def to_normalized(x_m: np.ndarray) -> np.ndarray:
    """Metres (N, 3) in the car frame -> normalized frame (N, 3). Distances scale by 1 / CAR_SCALE."""
    return CAR_FRAME.forward(x_m)


def to_metres(x_n: np.ndarray) -> np.ndarray:
    """Normalized frame (N, 3) -> metres (N, 3) in the car frame; the inverse of :func:`to_normalized`."""
    return CAR_FRAME.inverse(x_n)


def unit_sphere_transform(verts: np.ndarray, margin: float = 1.03) -> Similarity:
    """Per-mesh normalization for non-car meshes: bounding-box centre to the origin, max radius 1 / margin.

    Args:
        verts: (V, 3) vertices.
        margin: the farthest vertex ends at radius 1 / margin.

    Returns:
        The :class:`Similarity` mapping ``verts`` into the unit sphere.
    """
    v = np.asarray(verts, np.float64)
    centre = 0.5 * (v.min(axis=0) + v.max(axis=0))
    radius = float(np.linalg.norm(v - centre, axis=1).max())
    return Similarity(offset=tuple(float(c) for c in centre), scale=radius * margin)
