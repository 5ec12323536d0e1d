"""The topology demonstration's optimization loop on an analytic latent family: a blend of a sphere (genus 0) and
a torus (genus 1) whose weight is the latent. Fitting the torus's silhouettes must open the hole (Euler
characteristic 2 -> 0) and lower the loss, with gradients flowing through the iso-surface and the rasterizer."""

from __future__ import annotations

from dataclasses import replace

import torch

from aero_opt.geometry.isosurface import extract
from aero_opt.geometry.raster import silhouette
from aero_opt.meshsdf.config import TopologyConfig
from aero_opt.meshsdf.topology import CUBE, cameras, euler_characteristic, run_trajectory


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
    assert rows[0]["euler"] == 2
    assert rows[-1]["euler"] == 0
    assert rows[-1]["loss"] < 0.5 * rows[0]["loss"]
    assert all(r["queries"] > 0 for r in rows)
