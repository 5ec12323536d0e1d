"""Mesh import: every shipped real mesh becomes one watertight manifold of the right size; bad input fails clearly."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import trimesh

from aero_opt.core.errors import AeroOptError
from aero_opt.geometry.dataset import load_car
from aero_opt.geometry.mesh_import import (
    REAL_CARS,
    ImportOptions,
    enclosed_volume,
    import_mesh,
    load_mesh,
    parse_axis,
    rotation_to_car_frame,
)

OUTER_SHELL_TOL = 0.02  # the 2% bounding-box criterion


@pytest.mark.parametrize("name", sorted(REAL_CARS))
def test_real_cars_import_watertight(data_dir: Path, name: str) -> None:
    mesh, rep = import_mesh(data_dir / "real_cars" / name, **REAL_CARS[name])
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    assert len(mesh.split(only_watertight=False)) == 1
    assert max(rep["bbox_relative_change"]) < OUTER_SHELL_TOL
    # Car frame: nose at x = 0, symmetric about y = 0, the lowest point at the requested clearance, and a car
    # is longer than wide than tall.
    assert mesh.bounds[0, 0] == pytest.approx(0.0, abs=1e-9)
    assert mesh.bounds[0, 1] == pytest.approx(-mesh.bounds[1, 1], abs=1e-9)
    assert mesh.bounds[0, 2] == pytest.approx(REAL_CARS[name]["clearance"], abs=1e-9)
    assert mesh.extents[0] > mesh.extents[1] > mesh.extents[2]
    assert 4.2 < mesh.extents[0] < 4.7
    assert rep["mean_distance_to_input_m"] < 0.02


@pytest.mark.parametrize("name", ["bob_tri.obj", "spot.obj"])
def test_bob_spot_import_unchanged(data_dir: Path, name: str) -> None:
    src = load_mesh(data_dir / "bob_spot" / name)
    mesh, rep = import_mesh(data_dir / "bob_spot" / name, forward="-x", up="+y")
    assert mesh.is_watertight and mesh.volume > 0
    assert rep["repair"]["method"].startswith("none")
    assert mesh.volume == pytest.approx(abs(src.volume), rel=1e-9)
    genus = (2 - mesh.euler_number) // 2
    assert genus == (1 if name.startswith("bob") else 0)
    assert max(rep["bbox_relative_change"]) < 1e-9


def test_gzipped_and_plain_load_the_same(tmp_path: Path, data_dir: Path) -> None:
    src = data_dir / "bob_spot" / "spot.obj"
    gz = tmp_path / "spot.obj.gz"
    with open(src, "rb") as fi, gzip.open(gz, "wb") as fo:
        shutil.copyfileobj(fi, fo)
    a, b = load_mesh(src), load_mesh(gz)
    assert np.array_equal(a.faces, b.faces) and np.allclose(a.vertices, b.vertices)


def test_hole_and_flipped_faces_are_repaired(tmp_path: Path) -> None:
    # Holes up to about 2 x close_voxels voxels are bridged (here 2 x 2 x 2.5 cm).
    box = trimesh.creation.box(extents=(4.0, 1.8, 1.4)).subdivide_to_size(0.04)
    faces = box.faces.copy()
    faces[3:200:7] = faces[3:200:7, ::-1]  # inconsistent winding
    broken = trimesh.Trimesh(box.vertices, np.delete(faces, [0, 1, 2], axis=0), process=False)  # and a hole
    path = tmp_path / "broken.stl"
    broken.export(path)
    mesh, rep = import_mesh(path, forward="-x", up="+z", opts=ImportOptions(resolution=160, target_faces=4000))
    assert not rep["input"]["watertight"]
    assert mesh.is_watertight and mesh.volume > 0
    assert mesh.volume == pytest.approx(4.0 * 1.8 * 1.4, rel=0.01)
    assert mesh.extents == pytest.approx([4.0, 1.8, 1.4], abs=0.01)


def test_orientation_maps_forward_to_minus_x_and_up_to_z() -> None:
    rot = rotation_to_car_frame(parse_axis("+z"), parse_axis("+y"))
    assert np.allclose(rot @ np.array([0.0, 0.0, 1.0]), [-1.0, 0.0, 0.0])
    assert np.allclose(rot @ np.array([0.0, 1.0, 0.0]), [0.0, 0.0, 1.0])
    assert np.linalg.det(rot) == pytest.approx(1.0)  # a rotation, never a mirror


def test_millimetres_are_detected(tmp_path: Path) -> None:
    box = trimesh.creation.box(extents=(4500.0, 1800.0, 1400.0))
    path = tmp_path / "mm.stl"
    box.export(path)
    mesh, rep = import_mesh(path)
    assert mesh.extents[0] == pytest.approx(4.5)
    assert "millimetres" in rep["units"]


@pytest.mark.parametrize("content,suffix,match", [
    (None, ".obj", "no such file"),
    (b"", ".obj", "no triangles"),
    (b"solid x\nendsolid x\n", ".xyz", "unknown mesh extension"),
    (b"v 0 0 0\nv 1 0 0\nv nan 1 0\nf 1 2 3\n", ".obj", "NaN"),
])
def test_bad_inputs_fail_with_the_file_name(tmp_path: Path, content: bytes | None, suffix: str, match: str) -> None:
    path = tmp_path / f"bad{suffix}"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AeroOptError, match=match) as err:
        import_mesh(path)
    assert str(path) in str(err.value)


def test_open_sheet_cannot_be_repaired(tmp_path: Path) -> None:
    sheet = trimesh.Trimesh([[0, 0, 0], [4, 0, 0], [4, 2, 0], [0, 2, 0]], [[0, 1, 2], [0, 2, 3]], process=False)
    path = tmp_path / "sheet.obj"
    sheet.export(path)
    with pytest.raises(AeroOptError, match="sheet.obj"):
        import_mesh(path, forward="-x", up="+z", opts=ImportOptions(resolution=64))


def _car_with_holes(data_dir: Path, path: Path) -> trimesh.Trimesh:
    """A shipped dataset car with its first 200 faces removed (holes about half a metre across), written to
    ``path``; returns the intact car."""
    car = load_car(data_dir / "dataset" / "car_0018.npz")
    intact = trimesh.Trimesh(car.verts, car.faces, process=False)
    trimesh.Trimesh(car.verts, car.faces[200:], process=False).export(path)
    return intact


def test_large_holes_are_closed_by_winding_number(tmp_path: Path, data_dir: Path) -> None:
    # The flood fill leaks through half-metre holes: what it leaves is nothing, or a small sealed pocket (a blob
    # the import once handed on as the car); the winding-number solid keeps the car.
    intact = _car_with_holes(data_dir, tmp_path / "holes.stl")
    mesh, rep = import_mesh(tmp_path / "holes.stl", opts=ImportOptions(resolution=128, target_faces=5000))
    assert "winding number" in rep["repair"]["method"]
    assert rep["repair"]["rejected"][0].startswith("flood fill: ")
    assert mesh.volume == pytest.approx(intact.volume, rel=0.03)
    assert mesh.extents == pytest.approx(intact.extents, rel=0.03)
    assert abs(rep["repair"]["volume_relative_change"]) < 0.03


def test_large_holes_and_flipped_faces_are_closed_after_reorienting(tmp_path: Path, data_dir: Path) -> None:
    intact = _car_with_holes(data_dir, tmp_path / "holes.stl")
    soup = load_mesh(tmp_path / "holes.stl")
    faces = soup.faces.copy()
    flip = np.random.default_rng(0).random(len(faces)) < 0.5
    faces[flip] = faces[flip][:, ::-1]
    trimesh.Trimesh(soup.vertices, faces, process=False).export(tmp_path / "flipped.stl")
    mesh, rep = import_mesh(tmp_path / "flipped.stl", opts=ImportOptions(resolution=128, target_faces=5000))
    assert "winding number, parts re-oriented" in rep["repair"]["method"]
    assert mesh.volume == pytest.approx(intact.volume, rel=0.03)


def test_enclosed_volume_of_a_soup_with_holes(tmp_path: Path, data_dir: Path) -> None:
    intact = _car_with_holes(data_dir, tmp_path / "holes.stl")
    assert enclosed_volume(intact) == pytest.approx(intact.volume, rel=0.01)
    assert enclosed_volume(load_mesh(tmp_path / "holes.stl")) == pytest.approx(intact.volume, rel=0.01)


def test_an_unfaithful_repair_is_refused_with_the_measured_change(tmp_path: Path) -> None:
    # The box's repair changes its volume by about 0.1% (test_hole_and_flipped_faces_are_repaired): a tolerance
    # below that must refuse it, naming the file and both attempts' changes.
    box = trimesh.creation.box(extents=(4.0, 1.8, 1.4)).subdivide_to_size(0.1)
    trimesh.Trimesh(box.vertices, box.faces[3:], process=False).export(tmp_path / "box.stl")
    with pytest.raises(AeroOptError) as err:
        import_mesh(tmp_path / "box.stl", forward="-x", up="+z",
                    opts=ImportOptions(resolution=96, target_faces=2000, max_volume_change=1e-6))
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'box.stl'}: cannot repair it faithfully (allowed: bounding box 2% or two "
                          "voxels per axis, volume 0.0001%): flood fill: bounding box changed by ")
    assert "; winding number: bounding box changed by " in msg
