"""Parametric cars and the Ahmed body: closed solids whose parameters move the shape the right way."""

from __future__ import annotations

import dataclasses
import hashlib
import math

import numpy as np
import pytest
import trimesh

from aero_opt.core.errors import AeroOptError
from aero_opt.geometry import shapes
from aero_opt.geometry.carset import generate_cars


def _top_z(mesh: trimesh.Trimesh, x: float, half_width: float = 0.05) -> float:
    """Highest point of the body near the symmetry plane at station x."""
    v = mesh.vertices
    sel = (np.abs(v[:, 0] - x) < 0.05) & (np.abs(v[:, 1]) < half_width)
    return float(v[sel, 2].max())


@pytest.mark.parametrize("style", shapes.STYLES)
def test_styles_are_watertight_with_positive_volume(style: str) -> None:
    p = shapes.sample_car_params(np.random.default_rng(3), style, wing_fraction=0.0)
    m = shapes.make_car(p)
    assert m.is_watertight and m.is_winding_consistent
    assert m.volume > 0.4 * p.length * p.width * (p.height - p.ground_clearance) * 0.5
    assert m.euler_number == 2
    # The body sits at its ground clearance and is symmetric about y = 0.
    assert m.bounds[0, 2] == pytest.approx(p.ground_clearance, abs=0.01)
    assert m.bounds[0, 1] == pytest.approx(-m.bounds[1, 1], abs=0.01)
    assert m.extents[0] == pytest.approx(p.length, abs=0.01)
    assert m.extents[1] == pytest.approx(p.width, abs=0.02)
    assert m.bounds[1, 2] == pytest.approx(p.height, abs=0.01)


def test_no_slivers() -> None:
    m = shapes.make_car(shapes.CarParams())
    tri = m.triangles
    edges = np.linalg.norm(tri[:, [1, 2, 0]] - tri, axis=2)
    # Ratio of the longest edge squared to twice the area: 1.15 for an equilateral triangle.
    aspect = edges.max(axis=1) ** 2 / (2.0 * m.area_faces)
    assert np.percentile(aspect, 99) < 4.0
    assert aspect.max() < 40.0


def test_wing_changes_genus() -> None:
    p = shapes.CarParams(style="notchback", length=4.6, roof_length=0.2, rear_window_rake=58.0, wing=True)
    m = shapes.make_car(p)
    assert m.is_watertight and m.volume > 0
    assert m.euler_number == 0  # genus 1: the hole under the wing
    no_wing = shapes.make_car(dataclasses.replace(p, wing=False))
    assert no_wing.euler_number == 2
    assert m.volume > no_wing.volume


def test_longer_length_gives_longer_box() -> None:
    base = shapes.CarParams()
    a = shapes.make_car(base)
    b = shapes.make_car(dataclasses.replace(base, length=base.length + 0.4))
    assert b.extents[0] - a.extents[0] == pytest.approx(0.4, abs=0.02)


def test_more_windshield_rake_lowers_roof_front() -> None:
    base = shapes.CarParams(windshield_rake=55.0, roof_length=0.18)
    raked = dataclasses.replace(base, windshield_rake=63.0)
    lay = shapes.car_layout(base)
    x = lay.x_roof_front  # the roof starts here with the smaller rake
    assert _top_z(shapes.make_car(raked), x) < _top_z(shapes.make_car(base), x) - 0.03


def test_invalid_parameters_are_rejected_with_the_parameter_name() -> None:
    with pytest.raises(AeroOptError, match="rear_window_rake"):
        shapes.car_layout(shapes.CarParams(roof_length=0.5, rear_window_rake=80.0))
    with pytest.raises(AeroOptError, match="hood_height"):
        shapes.car_layout(shapes.CarParams(hood_height=0.99))


def test_sampled_cars_respect_ranges() -> None:
    rng = np.random.default_rng(0)
    for style in shapes.STYLES:
        for _ in range(20):
            p = shapes.sample_car_params(rng, style)
            for k, (lo, hi) in shapes.STYLE_RANGES[style].items():
                assert lo - 1e-3 <= getattr(p, k) <= hi + 1e-3, k
            assert p.deck_length > 0


def test_same_seed_same_bytes(tmp_path) -> None:
    generate_cars(tmp_path / "a", n=3, seed=7, wing_fraction=0.5, progress=False)
    generate_cars(tmp_path / "b", n=3, seed=7, wing_fraction=0.5, progress=False)
    for name in ("car_0000.stl", "car_0001.stl", "car_0002.stl", "params.json"):
        ha = hashlib.sha256((tmp_path / "a" / name).read_bytes()).hexdigest()
        hb = hashlib.sha256((tmp_path / "b" / name).read_bytes()).hexdigest()
        assert ha == hb, name
    generate_cars(tmp_path / "c", n=3, seed=8, wing_fraction=0.5, progress=False)
    assert (tmp_path / "a" / "car_0000.stl").read_bytes() != (tmp_path / "c" / "car_0000.stl").read_bytes()


@pytest.mark.parametrize("slant", [0.0, 12.5, 25.0, 35.0])
def test_ahmed_dimensions_and_slant(slant: float) -> None:
    m = shapes.make_ahmed(slant)
    assert m.is_watertight and m.volume > 0
    lo, hi = m.bounds
    assert hi[0] - lo[0] == pytest.approx(1.044, abs=1e-9)
    assert hi[1] - lo[1] == pytest.approx(0.389, abs=1e-9)
    assert lo[2] == pytest.approx(0.050, abs=1e-9)
    assert hi[2] - lo[2] == pytest.approx(0.288, abs=1e-9)
    normals = m.face_normals
    rear = normals[:, 0] > 0.05
    if slant > 0:
        # The slanted faces: outward normal tilted up by the slant angle from +x... i.e. angle from +z = 90 - slant.
        slanted = rear & (normals[:, 2] > 0.05)
        angles = np.degrees(np.arctan2(normals[slanted, 0], normals[slanted, 2]))
        assert angles == pytest.approx(np.full(angles.shape, slant), abs=1e-6)
        area = m.area_faces[slanted].sum()
        assert area == pytest.approx(0.222 * 0.389, rel=1e-6)
    # Flat front face between the quarter spheres: x = 0 plane, and the front radius is 100 mm.
    front = np.abs(m.vertices[:, 0]) < 1e-9
    assert np.ptp(m.vertices[front, 1]) == pytest.approx(0.389 - 0.2, abs=1e-9)
    assert np.ptp(m.vertices[front, 2]) == pytest.approx(0.288 - 0.2, abs=1e-9)


def test_ahmed_stilts_reach_the_ground() -> None:
    m = shapes.make_ahmed(25.0, stilts=True)
    assert m.is_watertight
    assert m.bounds[0, 2] == pytest.approx(0.0, abs=1e-9)
    assert m.volume > shapes.make_ahmed(25.0).volume + 4 * 0.05 * math.pi * 0.015**2 * 0.9
