"""The topology demonstration's optimization loop on an analytic latent family: a blend of a sphere (genus 0) and
a torus (genus 1) whose weight is the latent. Fitting the torus's silhouettes must open the hole (Euler
characteristic 2 -> 0) and lower the loss, with gradients flowing through the iso-surface and the rasterizer."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from aero_opt.core.errors import AeroOptError
from aero_opt.geometry.isosurface import extract
from aero_opt.geometry.raster import silhouette
from aero_opt.geometry.sdf import SampleSpec, samples_for_mesh_file
from aero_opt.meshsdf.config import TopologyConfig
from aero_opt.meshsdf.topology import (
    CUBE,
    BlendLoss,
    blend_topology,
    cameras,
    ensure_model,
    euler_characteristic,
    genus_changed_at,
    line_topology,
    run_trajectory,
    topology,
    topology_label,
)
from aero_opt.meshsdf.train import train

DATA = Path(__file__).resolve().parents[3] / "data"


class SphereTorus(torch.nn.Module):
    """f = (1 − t) · sphere + t · torus (ring in the x-z plane, hole along y), t = latent[0]."""

    def forward(self, latent: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        sphere = x.norm(dim=1) - 0.6
        ring = torch.sqrt(x[:, 0] ** 2 + x[:, 2] ** 2 + 1e-12) - 0.5
        torus = torch.sqrt(ring**2 + x[:, 1] ** 2 + 1e-12) - 0.22
        t = latent[0]
        return (1 - t) * sphere + t * torus


def test_silhouette_loss_opens_the_hole() -> None:
    cfg = replace(TopologyConfig(), resolution=32, image_size=40, iters=15, lr=0.1, sigma=0.7)
    dec = SphereTorus()
    v, f, _ = extract(dec, torch.tensor([1.0]), cfg.resolution, CUBE)
    assert euler_characteristic(v.detach().numpy(), f.numpy()) == 0
    with torch.no_grad():
        target = torch.stack([silhouette(v, f, c, cfg.sigma) for c in cameras(cfg.image_size)])
    rows = run_trajectory(dec, torch.tensor([0.1]), target, cfg, fast=True, iters=cfg.iters, progress=False)
    assert rows[0]["euler"] == 2 and rows[0]["components"] == 1 and rows[0]["genus_largest"] == 0
    assert rows[-1]["euler"] == 0 and rows[-1]["components"] == 1 and rows[-1]["genus"] == [1]
    changed = genus_changed_at(rows)
    assert changed is not None and all(r["genus_largest"] == 0 for r in rows[:changed])
    assert rows[-1]["loss"] < 0.5 * rows[0]["loss"]
    assert all(r["queries"] > 0 for r in rows)


def _sphere(radius: float, x: float) -> trimesh.Trimesh:
    s = trimesh.creation.icosphere(subdivisions=3, radius=radius)
    s.apply_translation([x, 0.0, 0.0])
    return s


def test_components_and_genus_are_counted_per_component() -> None:
    two = trimesh.util.concatenate([_sphere(1.0, 0.0), _sphere(0.5, 3.0)])
    t = topology(two.vertices, two.faces)
    assert t["components"] == 2 and t["genus"] == [0, 0] and t["euler"] == 4
    assert t["areas"][0] > t["areas"][1]  # largest first
    torus = trimesh.creation.torus(1.0, 0.3)
    assert topology(torus.vertices, torus.faces)["genus"] == [1]
    both = trimesh.util.concatenate([torus, _sphere(0.4, 4.0)])
    t = topology(both.vertices, both.faces)
    assert t["components"] == 2 and t["genus"] == [1, 0] and t["genus_largest"] == 1 and t["euler"] == 2
    # (2 - χ)/2 of the whole mesh would call this genus 0: the floating sphere hides the handle.
    disc = trimesh.Trimesh(torus.vertices, torus.faces[:-1], process=False)  # one hole: χ = -1, one boundary loop
    assert topology(disc.vertices, disc.faces)["genus"] == [1]


def test_floaters_are_not_a_genus_change() -> None:
    rows = [{"iteration": 0, "components": 1, "genus_largest": 0, "areas": [1.0]},
            {"iteration": 1, "components": 3, "genus_largest": 1, "areas": [1.0, 0.05, 0.05]},
            {"iteration": 2, "components": 1, "genus_largest": 1, "areas": [1.0]}]
    assert genus_changed_at(rows) == 2
    assert topology_label(rows[1]) == "it 1: genus 1, +2 floating components (9.1% of the area)"
    assert topology_label(rows[2]) == "it 2: genus 1"


class TwoSpheres(torch.nn.Module):
    """f = z[:, 0] · (|x| − 0.8) + (1 − z[:, 0]) · (|x| − 0.4): codes (N, 1), one per point."""

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        r = x.norm(dim=1)
        return z[:, 0] * (r - 0.8) + (1 - z[:, 0]) * (r - 0.4)


def test_the_blend_loss_is_zero_on_the_blend_and_the_clamped_l1_off_it() -> None:
    gen = torch.Generator().manual_seed(0)
    pts = torch.rand(500, 3, generator=gen) * 2 - 1
    r = pts.norm(dim=1)
    loss = BlendLoss(pts, r - 0.8, r - 0.4, weight=2.0, t_range=(-0.2, 1.3), clamp=0.1, batch=256)
    codes = torch.nn.Embedding(2, 1)  # rows: bob, spot
    codes.weight.data = torch.tensor([[1.0], [0.0]])
    assert float(loss(TwoSpheres(), codes, torch.Generator().manual_seed(1)).detach()) == pytest.approx(0.0, abs=1e-6)
    codes.weight.data = torch.tensor([[2.0], [0.0]])  # z_t = 2t: the decoder's shape is the blend at 2t, not t
    g = torch.Generator().manual_seed(1)
    sel = torch.randint(0, 500, (256,), generator=g)
    t = -0.2 + 1.5 * torch.rand(256, generator=g)
    pred = (2 * t) * (r[sel] - 0.8) + (1 - 2 * t) * (r[sel] - 0.4)
    want = (1 - t) * (r[sel] - 0.4) + t * (r[sel] - 0.8)
    expected = 2.0 * float((pred.clamp(-0.1, 0.1) - want.clamp(-0.1, 0.1)).abs().mean())
    got = float(loss(TwoSpheres(), codes, torch.Generator().manual_seed(1)).detach())
    assert got == pytest.approx(expected, rel=1e-5)
    assert expected > 0.01


def test_segment_topology_of_a_decoder_and_of_the_exact_blend() -> None:
    rows = line_topology(SphereTorus(), torch.tensor([0.0]), torch.tensor([1.0]), 32, np.array([0.0, 1.0]))
    assert [(r["components"], r["genus"]) for r in rows] == [(1, [0]), (1, [1])]
    blend = blend_topology(DATA / "bob_spot", 32, np.array([0.0, 1.0]))  # Spot genus 0, Bob genus 1
    assert [r["genus"][0] for r in blend] == [0, 1] and blend[0]["t"] == 0.0


def test_a_decoder_trained_with_another_blend_setting_is_refused(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    for i, r in enumerate((0.4, 0.7)):
        m = trimesh.creation.icosphere(subdivisions=2, radius=r)
        m.export(tmp_path / f"{i}.stl")
        samples_for_mesh_file(tmp_path / f"{i}.stl", tmp_path / "s" / f"{'bob' if i else 'spot'}.npz",
                              SampleSpec(n_samples=2000), seed=i, normalization="unit_sphere")
    cfg = replace(TopologyConfig(), train=replace(TopologyConfig().train, epochs=1, eval_resolution=16),
                  decoder=replace(TopologyConfig().decoder, hidden=16, layers=4, inject_at=2))
    train(tmp_path / "s", tmp_path / "m", cfg.decoder, cfg.train, progress=False)
    assert ensure_model(tmp_path / "m", DATA / "bob_spot", replace(cfg, blend_weight=0.0), tmp_path) == tmp_path / "m"
    with pytest.raises(AeroOptError, match=r"trained with latent blend None, the config asks for \{'name': "
                                           r"'latent_blend', 'weight': 1.0"):
        ensure_model(tmp_path / "m", DATA / "bob_spot", cfg, tmp_path)
