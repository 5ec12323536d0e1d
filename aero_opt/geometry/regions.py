"""The parts of a car's surface that drag is split over, in the car frame (x along the flow from the nose, z up):
one vocabulary for where OpenFOAM's drag changed (:func:`aero_opt.cfd.results.case_regions`) and where the
surrogate's drag error is (``surrogate.evaluate.cd_error_by_region``)."""

from __future__ import annotations

import numpy as np

BODY_REGIONS = ("nose", "roof_sides", "rear_upper", "base", "underbody")
"""The regions :func:`region_of_faces` assigns."""


def region_of_faces(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Region index (T,) into :data:`BODY_REGIONS` of each outward triangle of a car's surface (points (P, 3) m in
    the car frame, triangles (T, 3)); positions are fractions of the body's length from its nose (smallest x).

    nose: the first 15% of the length; base: rear-facing faces (n_x > 0.5) in the last 30%; rear upper: the
    other upward-facing faces (n_z > 0.3) of the last 40%; underbody: downward faces (n_z < -0.5); the rest: roof
    and sides.
    """
    points = np.asarray(points, np.float64)
    triangles = np.asarray(triangles)
    a, b, c = (points[triangles[:, i]] for i in range(3))
    n = np.cross(b - a, c - a)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
    nose, length = float(points[:, 0].min()), max(float(np.ptp(points[:, 0])), 1e-12)
    x = ((a[:, 0] + b[:, 0] + c[:, 0]) / 3.0 - nose) / length
    region = np.full(len(triangles), BODY_REGIONS.index("roof_sides"))
    region[n[:, 2] < -0.5] = BODY_REGIONS.index("underbody")
    region[(x > 0.6) & (n[:, 2] > 0.3)] = BODY_REGIONS.index("rear_upper")
    region[(x > 0.7) & (n[:, 0] > 0.5)] = BODY_REGIONS.index("base")
    region[x < 0.15] = BODY_REGIONS.index("nose")
    return region
