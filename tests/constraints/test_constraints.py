"""Room constraint: zero for the initial car, positive (with a gradient) when the surface cuts the boxes; SDF form
agrees in sign; the kNN latent prior equals a brute-force computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aero_opt.core.errors import AeroOptError
from aero_opt.core.frame import CAR_OFFSET, CAR_SCALE
from aero_opt.geometry.dataset import load_car
from constraints.latent_prior import KNNLatentPrior
from constraints.regions import RoomConstraint


@pytest.fixture(scope="module")
def car(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    c = load_car(sorted((data_dir / "dataset").glob("car_*.npz"))[0])
    return c.verts.astype(np.float64), c.faces


def test_room_penalty_zero_then_positive(car: tuple[np.ndarray, np.ndarray]) -> None:
    v0, f = car
    room = RoomConstraint(v0, f)
    assert len(room.points) > 100 and room.fraction_kept > 0.5
    v = torch.as_tensor(v0, dtype=torch.float32)
    faces = torch.as_tensor(f)
    assert float(room.penalty_mesh(v, faces)) == 0.0
    # squash the car to 60% of its height about its lowest point: the cabin no longer fits
    low = v[:, 2].min()
    squashed = v.clone()
    squashed[:, 2] = low + 0.6 * (v[:, 2] - low)
    squashed.requires_grad_(True)
    pen = room.penalty_mesh(squashed, faces)
    assert pen.item() > 1e-4
    pen.backward()
    # pushing the surface back up (moving the top vertices up) lowers the penalty
    assert squashed.grad[:, 2][squashed[:, 2] > low + 0.4].sum() < 0


def test_room_penalty_matches_brute_force_distance() -> None:
    """A unit cube [0, 1]³ shrunk in x to [0, 0.5]: a point (0.8, y, z) is 0.3 outside."""
    import trimesh

    box = trimesh.creation.box(extents=(1, 1, 1))
    v0 = box.vertices + 0.5
    v0[:, 1] -= 0.5  # centre line at y = 0
    room = RoomConstraint(v0, box.faces)
    v = torch.as_tensor(v0, dtype=torch.float64)
    v_cut = v.clone()
    v_cut[:, 0] = v_cut[:, 0] * 0.5
    pen = float(room.penalty_mesh(v_cut, torch.as_tensor(box.faces)))
    d = np.clip(room.points[:, 0] - 0.5, 0, None)
    assert pen == pytest.approx(float((d**2).mean()), rel=1e-6)


def test_room_penalty_sdf() -> None:
    import trimesh

    box = trimesh.creation.box(extents=(4.0, 1.8, 1.4))
    v0 = box.vertices + np.array([2.0, 0.0, 0.9])
    room = RoomConstraint(v0, box.faces)

    def sphere(r: float):
        c = torch.as_tensor((np.array([2.0, 0.0, 0.9]) - CAR_OFFSET) / CAR_SCALE, dtype=torch.float32)
        return lambda z, x: (x - c).norm(dim=1) - z[0] * r

    z = torch.tensor([1.0], requires_grad=True)
    assert room.penalty_sdf(sphere(5.0 / CAR_SCALE), z).item() == 0.0  # 5 m sphere holds every point
    pen = room.penalty_sdf(sphere(0.5 / CAR_SCALE), z)  # 0.5 m sphere does not
    pen.backward()
    assert pen.item() > 0.01 and float(z.grad[0]) < 0  # growing the sphere helps


def test_room_rejects_inside_out_mesh() -> None:
    import trimesh

    box = trimesh.creation.box(extents=(4.0, 1.8, 1.4))
    with pytest.raises(AeroOptError, match="no point"):
        RoomConstraint(box.vertices, box.faces[:, ::-1])  # inward faces: every box point reads as outside


def test_knn_prior_brute_force() -> None:
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(50, 8))
    prior = KNNLatentPrior(codes, k=10, alpha=0.2)
    z = torch.tensor(rng.normal(size=8), requires_grad=True)
    d2 = ((codes - z.detach().numpy()) ** 2).sum(axis=1)
    expected = 0.2 * np.sort(d2)[:10].mean()
    val = prior(z.float())
    assert val.item() == pytest.approx(expected, rel=1e-5)
    val.backward()
    near = codes[np.argsort(d2)[:10]]
    assert np.allclose(z.grad.numpy(), 0.2 * 2 * (z.detach().numpy() - near).mean(axis=0), rtol=1e-4)
