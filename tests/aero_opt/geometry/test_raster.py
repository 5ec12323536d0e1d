"""Soft silhouettes: a cube seen along an axis covers its face's area; gradients match finite differences."""

from __future__ import annotations

import math

import pytest
import torch
import trimesh

from aero_opt.core.errors import AeroOptError
from aero_opt.geometry.raster import Camera, silhouette


def _cube(side: float) -> tuple[torch.Tensor, torch.Tensor]:
    m = trimesh.creation.box(extents=(side, side, side))
    return torch.as_tensor(m.vertices, dtype=torch.float64), torch.as_tensor(m.faces)


@pytest.mark.parametrize("azimuth,elevation", [(0.0, 0.0), (90.0, 0.0), (0.0, 90.0)])
def test_cube_silhouette_area(azimuth: float, elevation: float) -> None:
    v, f = _cube(1.0)
    cam = Camera(azimuth, elevation, half_extent=1.0, size=64)
    sigma = 0.3
    s = silhouette(v, f, cam, sigma=sigma)
    # a 32 x 32-pixel square covered by two layers (front and back face): the soft union of two logistic edges
    # adds exactly σ per pixel of perimeter (outside: 2σ ln2 − σ(ln2 − ½), inside deficit: σ(ln2 − ½))
    expected = 32 * 32 + 4 * 32 * sigma
    assert float(s.sum()) == pytest.approx(expected, rel=2e-3)
    assert float(s[24, 40]) > 0.999 and float(s[2, 2]) < 1e-3  # (24, 40): inside, off the face diagonals


def test_cube_at_45_degrees_is_wider() -> None:
    v, f = _cube(1.0)
    sigma, size = 0.5, 256
    s = silhouette(v, f, Camera(45.0, 0.0, half_extent=1.0, size=size), sigma=sigma)
    side = size / 2  # pixels per unit length
    expected = math.sqrt(2.0) * side**2 + 2 * (math.sqrt(2.0) + 1) * side * sigma  # area + two-layer edge bias
    assert float(s.sum()) == pytest.approx(expected, rel=3e-3)


def test_gradient_matches_finite_differences() -> None:
    torch.manual_seed(0)
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.6)
    v = torch.as_tensor(sphere.vertices, dtype=torch.float64)
    f = torch.as_tensor(sphere.faces)
    cam = Camera(30.0, 20.0, half_extent=1.0, size=32)
    weights = torch.rand(32, 32, dtype=torch.float64)

    def loss(x: torch.Tensor) -> torch.Tensor:
        return (silhouette(x, f, cam, sigma=1.0) * weights).sum()

    x = v.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(x), x)
    direction = torch.randn_like(v)
    h = 1e-5
    fd = (loss(v + h * direction) - loss(v - h * direction)) / (2 * h)
    assert float((g * direction).sum()) == pytest.approx(float(fd), rel=1e-4)
    assert g.abs().sum() > 0


def test_errors() -> None:
    v, f = _cube(1.0)
    with pytest.raises(AeroOptError, match="without faces"):
        silhouette(v, f[:0], Camera())
    v[0, 0] = float("nan")
    with pytest.raises(AeroOptError, match="NaN"):
        silhouette(v, f, Camera())
