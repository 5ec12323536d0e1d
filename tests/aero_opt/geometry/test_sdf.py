"""Signed distances and DeepSDF samples against analytic shapes; the car normalization and its inverse."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from aero_opt.core import frame
from aero_opt.core.errors import AeroOptError
from aero_opt.geometry import shapes
from aero_opt.geometry.sdf import SampleSpec, sample_sdf, samples_for_mesh_file, signed_distance


def test_sphere_distances_match_analytic() -> None:
    m = trimesh.creation.icosphere(subdivisions=6, radius=0.5)
    pts = np.random.default_rng(0).uniform(-1, 1, (5000, 3))
    d = signed_distance(pts, m.vertices, m.faces)
    exact = np.linalg.norm(pts, axis=1) - 0.5
    assert np.abs(d - exact).max() < 1e-3  # the facet approximation of the sphere (r (1 - cos) ~ 6e-4)
    assert np.array_equal(np.sign(d[np.abs(exact) > 3e-3]), np.sign(exact[np.abs(exact) > 3e-3]))


def test_box_distances_match_analytic() -> None:
    half = np.array([0.6, 0.3, 0.2])
    m = trimesh.creation.box(extents=2 * half)
    pts = np.random.default_rng(1).uniform(-1, 1, (5000, 3))
    q = np.abs(pts) - half
    exact = np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)
    d = signed_distance(pts, m.vertices, m.faces)
    assert np.allclose(d, exact, atol=1e-9)


def test_samples_sign_inside_and_outside_a_car() -> None:
    car = shapes.make_car(shapes.CarParams())
    pts, sdf = sample_sdf(car.vertices, car.faces, frame.CAR_FRAME, SampleSpec(n_samples=20_000),
                          np.random.default_rng(0))
    assert pts.shape == (20_000, 3) and sdf.shape == (20_000,) and pts.dtype == np.float32
    inside = car.contains(frame.to_metres(pts[:4000]))
    clear = np.abs(sdf[:4000]) > 1e-3
    assert np.array_equal(inside[clear], sdf[:4000][clear] < 0)
    # Known points: the cabin centre is inside, a point above the roof outside (distances in normalized units).
    centre = frame.to_normalized(np.array([[2.2, 0.0, 0.8]]))
    above = frame.to_normalized(np.array([[2.2, 0.0, 1.42 + 0.55]]))
    d = signed_distance(np.concatenate([centre, above]), frame.to_normalized(car.vertices), car.faces)
    assert d[0] < 0 and d[1] == pytest.approx(0.55 / frame.CAR_SCALE, abs=0.01)


def test_car_frame_roundtrip_and_fit() -> None:
    x = np.random.default_rng(2).uniform([0, -1, 0], [5.2, 1, 2], (100, 3))
    assert np.allclose(frame.to_metres(frame.to_normalized(x)), x)
    n = frame.to_normalized(np.array([[0.0, 0.0, 0.0], [5.2, 1.05, 2.05]]))
    lo, hi = frame.CAR_BOUNDS
    assert np.all(n >= np.array(lo) - 1e-9) and np.all(n <= np.array(hi) + 1e-9)
    assert n[0, 2] == pytest.approx(-0.9)


def test_unit_sphere_transform() -> None:
    v = np.random.default_rng(3).normal(size=(200, 3)) * [3, 1, 2] + 5
    t = frame.unit_sphere_transform(v)
    r = np.linalg.norm(t.forward(v), axis=1)
    assert r.max() == pytest.approx(1 / 1.03)


def test_samples_refuse_open_mesh(tmp_path) -> None:
    box = trimesh.creation.box()
    open_box = trimesh.Trimesh(box.vertices, box.faces[1:], process=False)
    path = tmp_path / "open.stl"
    open_box.export(path)
    with pytest.raises(AeroOptError, match="not watertight"):
        samples_for_mesh_file(path, tmp_path / "o.npz", SampleSpec(n_samples=100), seed=0)
