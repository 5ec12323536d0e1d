"""Packaging in metres: the J1100 geometry of the occupant envelope, tyre codes, placement inside a car with room,
refusals that name the part that does not fit, and a penalty that does not shrink with the car."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from aero_opt.core.errors import AeroOptError
from aero_opt.geometry.dataset import load_car
from aero_opt.geometry.sdf import signed_distance
from constraints.packaging import OccupantSpec, PackageSpec, occupant_boxes, place_package, tyre_size
from constraints.regions import RoomConstraint


def box_car(length: float = 4.6, width: float = 1.8, height: float = 1.45, clearance: float = 0.15) -> trimesh.Trimesh:
    """A box-shaped car in the car frame: nose at x = 0, centred on y = 0, underbody at ``clearance``."""
    box = trimesh.creation.box(extents=(length, width, height - clearance))
    box.apply_translation([length / 2, 0.0, clearance + (height - clearance) / 2])
    return box


def test_tyre_codes() -> None:
    d, w = tyre_size("215/55R17")
    assert (d, w) == pytest.approx((17 * 0.0254 + 2 * 0.215 * 0.55, 0.215))
    assert tyre_size("245/40 ZR19")[0] == pytest.approx(19 * 0.0254 + 2 * 0.245 * 0.40)
    with pytest.raises(AeroOptError, match=r"optimize.package.tyre: '17 inch' is not a tyre code like 215/55R17"):
        tyre_size("17 inch")


def test_occupant_envelope_follows_the_j1100_definitions() -> None:
    """Head room H61 is measured 8° rearward of vertical from the SgRP to the headlining, plus 102 mm; leg room
    L34 is the ankle pivot to the H-point plus 254 mm, the ankle pivot ~100 mm above the heel, H30 below the SgRP."""
    spec = OccupantSpec(head_room=1.0, leg_room=1.2, seat_height=0.3, shoulder_room=1.5, hip_room=1.4)
    boxes = occupant_boxes(spec)
    reach = 1.0 - 0.102
    for lo, hi in boxes["heads"]:
        assert hi[2] == pytest.approx(reach * math.cos(math.radians(8)))
        assert (lo[0] + hi[0]) / 2 == pytest.approx(reach * math.sin(math.radians(8)))  # leans rearward (+x)
        assert abs((lo[1] + hi[1]) / 2) == pytest.approx(1.5 / 4)
    for lo, _ in boxes["legs"]:
        assert lo[2] == pytest.approx(-0.3)
        assert -lo[0] == pytest.approx(math.sqrt((1.2 - 0.254) ** 2 - 0.2**2) + 0.10)  # forward is -x
    assert boxes["shoulders"][0][1][1] - boxes["shoulders"][0][0][1] == pytest.approx(1.5)
    assert boxes["hips"][0][1][1] - boxes["hips"][0][0][1] == pytest.approx(1.4)


def test_package_placed_inside_a_car_with_room() -> None:
    car = box_car(width=1.9)
    placed = place_package(car.vertices, car.faces)
    sd = signed_distance(placed.points, car.vertices, car.faces)
    assert (sd < 0).all()
    d = placed.describe()
    assert d["front_track_m"] == d["rear_track_m"] == pytest.approx(1.58)  # the asked track fits a 1.9 m car
    assert d["engine_box_m"][1][0] < d["SgRP_m"][0] - 0.8  # the engine is ahead of the feet (nose at x = 0)
    assert d["front_axle_x_m"] < d["SgRP_m"][0] < d["rear_axle_x_m"]
    assert set(d["points"]) == {"hips", "shoulders", "heads", "legs", "engine", "front_wheels", "rear_wheels"}
    # the occupants sit as low as the floor allows or higher, with their heads under the roof
    heads = placed.parts["heads"]
    assert heads[:, 2].max() < 1.45 and placed.parts["legs"][:, 2].min() > 0.15


def test_a_car_too_low_or_too_narrow_is_refused_naming_the_part() -> None:
    low = box_car(height=1.2)
    with pytest.raises(AeroOptError, match=r"^low car: the two front occupants do not fit inside the car anywhere "
                                           r"\(shoulder room W3 1.466 m.*head room H61 0.973 m"):
        place_package(low.vertices, low.faces, name="low car")
    narrow = box_car(width=1.45)
    slim = OccupantSpec(shoulder_room=1.3, hip_room=1.3)
    with pytest.raises(AeroOptError, match=r"the front wheels \(215/55R17: 0.668 m tyres, 0.05 m travel\) fit under "
                                           r"the body at no track of at least 1.30 m"):
        place_package(narrow.vertices, narrow.faces, PackageSpec(occupants=slim))
    narrow_ok = place_package(narrow.vertices, narrow.faces, PackageSpec(occupants=slim, min_track=1.2,
                                                                         tyre="185/65R15"))
    assert 1.2 <= narrow_ok.describe()["front_track_m"] <= 1.45 - 0.185 + 1e-9


def test_package_penalty_does_not_shrink_with_the_car() -> None:
    """A car made 25% narrower keeps its relative boxes (they were ±22% of the initial width), but two occupants
    with 1.47 m of shoulder room no longer fit: only the package penalizes it."""
    car = box_car()
    placed = place_package(car.vertices, car.faces)
    package = RoomConstraint.from_points(placed.points)
    relative = RoomConstraint(car.vertices, car.faces)
    faces = torch.as_tensor(car.faces)
    v = torch.as_tensor(car.vertices, dtype=torch.float64)
    assert float(package.penalty_mesh(v, faces)) == 0.0 == float(relative.penalty_mesh(v, faces))
    narrower = v * torch.tensor([1.0, 0.75, 1.0], dtype=torch.float64)
    assert float(relative.penalty_mesh(narrower, faces)) == 0.0
    pen = float(package.penalty_mesh(narrower, faces))
    outside = np.clip(np.abs(placed.points[:, 1]) - 0.75 * 0.9, 0, None)  # a box: the distance is the side's
    assert pen == pytest.approx(float((outside**2).mean()), rel=1e-6) and pen > 0


def test_package_fits_a_dataset_car(data_dir: Path) -> None:
    car = load_car(sorted((data_dir / "dataset").glob("car_*.npz"))[0])
    placed = place_package(car.verts, car.faces)
    assert (signed_distance(placed.points, car.verts, car.faces) < 0).all()
    assert placed.describe()["occupants_clearance_m"] > 0
