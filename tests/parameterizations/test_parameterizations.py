"""Parameterizations: identity at the initial parameters, gradients reach the parameters, and each one's defining
property (scaling about the ground point, FreeForm's mirror symmetry, PolyCube's bounded lattice interpolation,
MeshSDF's Theorem-1 gradient in metres)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from aero_opt.core.frame import CAR_SCALE
from aero_opt.geometry.dataset import load_car
from aero_opt.geometry.isosurface import mesh_volume
from parameterizations import REGISTRY, FreeForm, MeshDeformation, MeshSDF, PolyCube, Scaling, VertexOffsets


@pytest.fixture(scope="module")
def car(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    c = load_car(sorted((data_dir / "dataset").glob("car_*.npz"))[0])
    return c.verts.astype(np.float32), c.faces


@pytest.mark.parametrize("name", sorted(n for n, c in REGISTRY.items() if issubclass(c, MeshDeformation)))
def test_identity_and_gradients(name: str, car: tuple[np.ndarray, np.ndarray]) -> None:
    p = REGISTRY[name](*car)
    v, f = p.mesh()
    assert torch.equal(v, torch.as_tensor(car[0])) and torch.equal(f, torch.as_tensor(car[1]).long())
    torch.manual_seed(0)
    w = torch.randn_like(v)
    (v * w).sum().backward()
    grads = [q.grad for q in p.parameters()]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_scaling_about_centre_and_ground(car: tuple[np.ndarray, np.ndarray]) -> None:
    p = Scaling(*car)
    with torch.no_grad():
        p.factors.copy_(torch.tensor([1.1, 0.9, 0.8]))
    v = p.mesh()[0]
    v0 = torch.as_tensor(car[0])
    assert torch.allclose(v[:, 0].max() - v[:, 0].min(), 1.1 * (v0[:, 0].max() - v0[:, 0].min()))
    assert torch.allclose(v[:, 2].min(), v0[:, 2].min())  # still on its lowest point
    assert torch.allclose((v[:, 0].max() + v[:, 0].min()) / 2, (v0[:, 0].max() + v0[:, 0].min()) / 2)


def test_freeform_keeps_mirror_symmetry() -> None:
    pts = np.array([[0.3, 0.4, 0.5], [0.3, -0.4, 0.5], [1.0, 0.1, 0.2], [1.0, -0.1, 0.2], [0, -1, 0], [2, 1, 1]],
                   np.float32)
    p = FreeForm(pts, np.array([[0, 1, 2]]), n=3)
    torch.manual_seed(1)
    with torch.no_grad():
        p.coeffs.normal_(0, 0.05)
    d = p.displacement()
    mirror = torch.tensor([1.0, -1.0, 1.0])
    assert torch.allclose(d[1], d[0] * mirror, atol=1e-7) and torch.allclose(d[3], d[2] * mirror, atol=1e-7)
    assert d[:4].abs().max() > 1e-3
    assert torch.isclose(p.regularization(), p.l2 * p.coeffs.square().sum())


def test_polycube_interpolates_the_smoothed_lattice() -> None:
    # vertices exactly at lattice nodes: corners of the unpadded box and one interior node
    box = np.array([[0, 0, 0], [7, 7, 7], [0, 7, 0]], np.float32)
    p = PolyCube(box, np.array([[0, 1, 2]]), lattice=8, pad=0.0)
    torch.manual_seed(2)
    with torch.no_grad():
        p.raw.normal_(0, 3.0)
    ctrl = p.control_displacements()  # (3, 8, 8, 8)
    d = p.displacement()
    assert torch.allclose(d[0], ctrl[:, 0, 0, 0], atol=1e-6)
    assert torch.allclose(d[1], ctrl[:, 7, 7, 7], atol=1e-6)
    assert torch.allclose(d[2], ctrl[:, 0, 7, 0], atol=1e-6)  # catches a swapped axis order
    assert (ctrl.abs() <= p.cell.view(3, 1, 1, 1) + 1e-6).all()  # at most one cell


def test_vertex_laplacian_ignores_translation(car: tuple[np.ndarray, np.ndarray]) -> None:
    p = VertexOffsets(*car, smooth=1.0)
    with torch.no_grad():
        p.offsets.copy_(torch.tensor([0.1, -0.2, 0.3]).expand_as(p.offsets))
    assert p.regularization().item() < 1e-9
    with torch.no_grad():
        p.offsets[0] += 0.1
    assert p.regularization().item() > 1e-3


def test_meshsdf_volume_gradient_in_metres() -> None:
    """A sphere of radius z (normalized units) inside CAR_BOUNDS: V = 4/3 π (z·s)³ m³, dV/dz = 4π z² s³."""

    class Sphere(torch.nn.Module):
        def forward(self, latent: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return (x - torch.tensor([0.0, 0.0, -0.55])).norm(dim=1) - latent[0]

    z = torch.tensor([0.3])
    p = MeshSDF(Sphere(), z, resolution=96, fast=False)
    v, f = p.mesh()
    vol = mesh_volume(v, f)
    vol.backward()
    exact_vol = 4 / 3 * math.pi * (0.3 * CAR_SCALE) ** 3
    exact_grad = 4 * math.pi * 0.3**2 * CAR_SCALE**3
    assert abs(float(vol.detach()) - exact_vol) / exact_vol < 0.01
    assert abs(float(p.z.grad[0]) - exact_grad) / exact_grad < 0.02
    assert p.regularization().item() == 0.0
