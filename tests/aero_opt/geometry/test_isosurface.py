"""Theorem 1 checked on shape quantities whose exact derivatives are known, and fast vs full extraction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aero_opt.core.errors import AeroOptError
from aero_opt.geometry.isosurface import EmptySurfaceError, FastOptions, extract, mesh_area, mesh_centroid, mesh_volume

pytestmark = pytest.mark.usefixtures("float64")


def sphere(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Signed distance of a sphere of radius z[0] (‖∇f‖ = 1)."""
    return x.norm(dim=1) - z[0]


def ellipsoid(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """‖x / a‖² − 1: not a distance (‖∇f‖ ≠ 1), catches a missing 1/‖∇f‖ factor."""
    return (x / a).square().sum(dim=1) - 1.0


def moved_sphere(c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sphere of radius 0.5 centred at the latent c (3,)."""
    return (x - c).norm(dim=1) - 0.5


def test_sphere_volume_gradient_is_4_pi_r2() -> None:
    r = torch.tensor([0.6], requires_grad=True)
    v, f, _ = extract(sphere, r, 64)
    vol = mesh_volume(v, f)
    (g,) = torch.autograd.grad(vol, r)
    assert vol.item() == pytest.approx(4 / 3 * math.pi * 0.6**3, rel=0.01)
    assert g.item() == pytest.approx(4 * math.pi * 0.6**2, rel=0.01)


def test_ellipsoid_volume_gradient_has_the_exact_normalization() -> None:
    a = torch.tensor([0.7, 0.45, 0.3], requires_grad=True)
    v, f, _ = extract(ellipsoid, a, 72)
    vol = mesh_volume(v, f)
    (g,) = torch.autograd.grad(vol, a)
    exact_v = 4 / 3 * math.pi * 0.7 * 0.45 * 0.3
    assert vol.item() == pytest.approx(exact_v, rel=0.01)
    assert g.numpy() == pytest.approx((exact_v / a.detach()).numpy(), rel=0.02)
    # With 1/‖∇f‖ instead of 1/‖∇f‖² the gradient would be off by ‖∇f‖ = 2/a on the surface: far outside 2%.


def test_translation_moves_centroid_and_keeps_volume() -> None:
    c = torch.tensor([0.1, -0.05, 0.02], requires_grad=True)
    v, f, _ = extract(moved_sphere, c, 64)
    cen = mesh_centroid(v, f)
    jac = torch.stack([torch.autograd.grad(cen[i], c, retain_graph=True)[0] for i in range(3)])
    assert jac.numpy() == pytest.approx(np.eye(3), abs=0.01)
    (gv,) = torch.autograd.grad(mesh_volume(v, f), c)
    assert gv.abs().max().item() < 1e-2 * (4 / 3 * math.pi * 0.125)


def test_area_gradient_of_sphere() -> None:
    r = torch.tensor([0.5], requires_grad=True)
    v, f, _ = extract(sphere, r, 64)
    (g,) = torch.autograd.grad(mesh_area(v, f), r)
    assert g.item() == pytest.approx(8 * math.pi * 0.5, rel=0.03)


def test_gradients_reach_decoder_parameters() -> None:
    net = torch.nn.Linear(3, 1)
    torch.nn.init.zeros_(net.weight)
    torch.nn.init.zeros_(net.bias)

    def dec(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x.norm(dim=1) - z[0] + 0.05 * net(x).squeeze(1)

    v, f, _ = extract(dec, torch.tensor([0.5]), 32)
    mesh_volume(v, f).backward()
    assert net.weight.grad is not None and net.bias.grad.abs().item() > 0
    # d vol / d bias: raising f by 0.05 db everywhere moves the surface inward by 0.05 db / ‖∇f‖ (= 1 here).
    assert net.bias.grad.item() == pytest.approx(-0.05 * mesh_area(v, f).item(), rel=1e-2)


def box_sdf(h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Exact signed distance of an axis-aligned box with half-sizes h (Lipschitz 1; flat faces, sharp edges)."""
    q = x.abs() - h
    return q.clamp_min(0).norm(dim=1) + q.max(dim=1).values.clamp_max(0)


@pytest.mark.parametrize("field,latent", [(box_sdf, [0.7, 0.45, 0.3]), (moved_sphere, [0.1, -0.2, 0.05])])
def test_fast_first_extraction_equals_full(field, latent: list[float]) -> None:  # noqa: ANN001
    z = torch.tensor(latent)
    v_full, f_full, s_full = extract(field, z, 64, bounds=((-1, -1, -1), (1.01, 1.02, 1.03)))
    v_fast, f_fast, s_fast = extract(field, z, 64, bounds=((-1, -1, -1), (1.01, 1.02, 1.03)), fast=True)
    assert torch.equal(f_full, f_fast) and torch.allclose(v_full, v_fast, atol=0, rtol=0)
    assert s_fast.queries < 0.5 * s_full.queries


def test_fast_narrow_band_follows_small_steps() -> None:
    c = torch.zeros(3)
    _, _, state = extract(moved_sphere, c, 48, fast=True)
    _, _, state = extract(moved_sphere, c, 48, fast=True, state=state)  # unchanged latent
    v_full, f_full, full = extract(moved_sphere, c, 48)
    for step in range(6):
        c = c + torch.tensor([0.03, 0.01, -0.02])
        v, f, state = extract(moved_sphere, c, 48, fast=True, state=state, options=FastOptions(refresh_every=0))
        v_full, f_full, full = extract(moved_sphere, c, 48)
        assert torch.equal(f, f_full) and torch.allclose(v, v_full, atol=1e-12), step
        assert state.queries < 0.35 * full.queries


def test_new_component_far_away_is_found_by_refresh() -> None:
    def two(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        a = (x - torch.tensor([-0.5, 0.0, 0.0])).norm(dim=1) - 0.3
        b = (x - torch.tensor([0.5, 0.0, 0.0])).norm(dim=1) - z[0]
        return torch.minimum(a, b)

    opts = FastOptions(refresh_every=3)
    _, f0, st = extract(two, torch.tensor([-0.1]), 40, fast=True, options=opts)  # second sphere absent
    sizes = []
    for _ in range(3):
        _, f, st = extract(two, torch.tensor([0.25]), 40, fast=True, state=st, options=opts)
        sizes.append(len(f))
    assert sizes[0] == len(f0)  # the narrow band cannot see the new sphere...
    assert sizes[-1] > 1.5 * len(f0)  # ...the periodic refresh does


def test_edge_cases() -> None:
    with pytest.raises(EmptySurfaceError):
        extract(sphere, torch.tensor([3.0]), 16)  # the shape fills the box
    with pytest.raises(EmptySurfaceError):
        extract(sphere, torch.tensor([-0.5]), 16)  # empty
    with pytest.raises(AeroOptError, match="NaN"):
        extract(lambda z, x: x.norm(dim=1) - z[0] + torch.nan, torch.tensor([0.5]), 16)
    v, f, _ = extract(sphere, torch.tensor([1.1]), 24)  # touches the boundary: closed along the bounds
    assert torch.isfinite(v).all() and mesh_volume(v, f).item() > 0


def sphere_to_torus(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Blend of a sphere (t = 0, genus 0) and a torus (t = 1, genus 1) signed distances."""
    sph = x.norm(dim=1) - 0.6
    q = torch.stack([torch.linalg.norm(x[:, :2], dim=1) - 0.5, x[:, 2]], dim=1)
    tor = q.norm(dim=1) - 0.2
    return (1 - t[0]) * sph + t[0] * tor


def test_topology_change_along_a_latent_path() -> None:
    import trimesh

    genus = []
    for t in np.linspace(0.0, 1.0, 11):
        z = torch.tensor([t], requires_grad=True)
        v, f, _ = extract(sphere_to_torus, z, 40)
        m = trimesh.Trimesh(v.detach().numpy(), f.numpy(), process=False)
        assert m.is_watertight and m.volume > 0
        genus.append((2 - m.euler_number) // 2)
        (g,) = torch.autograd.grad(mesh_volume(v, f), z)
        assert torch.isfinite(g).all()
    assert genus[0] == 0 and genus[-1] == 1 and sorted(genus) == genus  # changes once, from 0 to 1


def test_frozen_decoder_path_gives_the_same_latent_gradient() -> None:
    """With the decoder's parameters frozen, the vertices carry ∂f/∂z from one backward pass at the vertices
    (no second decoder pass in the loss's backward); the gradient equals the general path's."""
    from aero_opt.meshsdf.decoder import DecoderConfig, SDFDecoder

    torch.manual_seed(0)
    dec = SDFDecoder(DecoderConfig(latent_size=4, hidden=16, layers=3, inject_at=2, weight_norm=False)).double()
    with torch.no_grad():
        dec.out.bias.fill_(-0.1)  # a closed surface inside the box

    def shifted(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # a sphere perturbed by the network
        return x.norm(dim=1) - 0.5 + 0.2 * dec(z, x)

    class Field(torch.nn.Module):
        accepts_point_latents = True

        def __init__(self) -> None:
            super().__init__()
            self.dec = dec

        def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return shifted(z, x)

    z = torch.tensor([0.3, -0.2, 0.1, 0.4], requires_grad=True)
    field = Field()
    grads = []
    for frozen in (False, True):
        field.requires_grad_(not frozen)
        v, f, _ = extract(field, z, 40)
        (g,) = torch.autograd.grad(mesh_volume(v, f) + mesh_centroid(v, f).sum(), z)
        grads.append(g)
    assert grads[0].abs().max() > 1e-3
    assert torch.allclose(grads[0], grads[1], rtol=1e-9, atol=1e-12)


def test_narrow_band_follows_a_jump_of_several_cells() -> None:
    """The band is only the points next to the old surface; a move of 3 grid cells is followed to the same mesh."""
    c = torch.zeros(3)
    _, _, state = extract(moved_sphere, c, 48, fast=True)
    c2 = torch.tensor([0.13, 0.0, 0.0])  # 3 cells at 48 points over [-1, 1]
    v, f, state = extract(moved_sphere, c2, 48, fast=True, state=state, options=FastOptions(refresh_every=0))
    v_full, f_full, full = extract(moved_sphere, c2, 48)
    assert torch.equal(f, f_full) and torch.allclose(v, v_full, atol=1e-12)
    assert state.stats["growth_steps"] >= 2 and state.queries < 0.2 * full.queries


def sphere_with_fin(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A sphere of radius 0.4 with a thin plate (0.02 thick, far thinner than the coarse grid's spacing) joined to
    it, reaching out to x = 0.85; ``z[0]`` = 1 adds a separate plate 0.04 thick around the 10th of 64 grid planes in
    z (holding only that plane: the coarse grid, every other plane, misses it)."""
    sph = x.norm(dim=1) - 0.4
    q = (x - torch.tensor([0.45, 0.0, 0.0])).abs() - torch.tensor([0.4, 0.3, 0.01])
    fin = q.clamp_min(0).norm(dim=1) + q.max(dim=1).values.clamp_max(0)
    q2 = (x - torch.tensor([0.0, 0.0, -1 + 9 * 2 / 63])).abs() - torch.tensor([0.3, 0.3, 0.02])
    apart = q2.clamp_min(0).norm(dim=1) + q2.max(dim=1).values.clamp_max(0) + 1.0 - z[0]
    return torch.minimum(torch.minimum(sph, fin), apart)


def test_fast_first_extraction_follows_thin_parts_and_refresh_finds_a_separate_one() -> None:
    z = torch.tensor([0.0])  # no separate plate
    v_full, f_full, full = extract(sphere_with_fin, z, 64)
    v, f, st = extract(sphere_with_fin, z, 64, fast=True)
    assert torch.equal(f, f_full) and torch.allclose(v, v_full, atol=1e-12)  # the fin is followed from the sphere
    assert st.queries < 0.4 * full.queries
    z = torch.tensor([1.0])  # a separate thin plate: between the coarse points
    _, f_full, _ = extract(sphere_with_fin, z, 64)
    opts = FastOptions(refresh_every=2)
    _, f0, st = extract(sphere_with_fin, z, 64, fast=True, options=opts)
    _, f1, st = extract(sphere_with_fin, z, 64, fast=True, state=st, options=opts)
    _, f2, st = extract(sphere_with_fin, z, 64, fast=True, state=st, options=opts)
    assert len(f0) == len(f1) < len(f_full)  # missed by the coarse grid and by the band...
    assert len(f2) == len(f_full)  # ...found by the refresh
