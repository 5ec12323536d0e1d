"""The topology demonstration's optimization loop on an analytic latent family: a blend of a sphere (genus 0) and
a torus (genus 1) whose weight is the latent. Fitting the torus's silhouettes must open the hole (Euler
characteristic 2 -> 0) and lower the loss, with gradients flowing through the iso-surface and the rasterizer."""

from __future__ import annotations

from dataclasses import replace

import torch
import trimesh

from aero_opt.geometry.isosurface import extract
from aero_opt.geometry.raster import silhouette
from aero_opt.meshsdf.config import TopologyConfig
from aero_opt.meshsdf.topology import (
    CUBE,
    cameras,
    euler_characteristic,
    genus_changed_at,
    run_trajectory,
    topology,
    topology_label,
)


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
