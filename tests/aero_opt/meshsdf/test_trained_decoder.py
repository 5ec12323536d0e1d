"""Theorem 1 on the shipped, trained car decoder: the gradient of shape quantities with respect to the latent code
matches central finite differences with re-extraction on a fine grid (relative error under 5%).

The quantities are volume integrals (enclosed volume, volume centroid), which depend on the normal motion of the
surface only, as Theorem 1 does. (The area of a marching-cubes mesh is not one: its triangle-scale roughness
makes the discrete area and its derivative deviate from the smooth surface's by ~10%.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from aero_opt.core.frame import CAR_BOUNDS
from aero_opt.geometry.isosurface import extract, mesh_centroid, mesh_volume
from aero_opt.meshsdf.decoder import load_model

RESOLUTION = 128


def centroid_x(v: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """x of the volume centroid (normalized units)."""
    return mesh_centroid(v, f)[0]


def centroid_z(v: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """z of the volume centroid (normalized units)."""
    return mesh_centroid(v, f)[2]


def assert_theorem1_matches_finite_differences(field: torch.nn.Module, latents: torch.Tensor,
                                              quantity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """d quantity / dz at training code 3 by Theorem 1 against central differences with re-extraction, along the
    gradient (the direction of largest change: finite differences well above marching-cubes noise)."""
    z = latents[3].clone().requires_grad_(True)
    v, f, _ = extract(field, z, RESOLUTION, CAR_BOUNDS, fast=True)
    (grad,) = torch.autograd.grad(quantity(v, f), z)
    direction = grad / grad.norm()
    analytic = float(grad @ direction)
    h = 0.02 * float(latents.norm(dim=1).mean())
    values = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            vv, ff, _ = extract(field, z.detach() + sign * h * direction, RESOLUTION, CAR_BOUNDS, fast=True)
        values.append(float(quantity(vv, ff)))
    fd = (values[0] - values[1]) / (2 * h)
    assert abs(fd - analytic) / abs(fd) < 0.05, (analytic, fd)


@pytest.mark.parametrize("quantity", [mesh_volume, centroid_x, centroid_z])
def test_latent_gradient_matches_finite_differences(data_dir: Path, quantity) -> None:  # noqa: ANN001
    dec, latents, _ = load_model(data_dir / "models" / "car_decoder")
    dec.requires_grad_(False)
    assert_theorem1_matches_finite_differences(dec, latents, quantity)


def test_fast_extraction_equals_full_on_the_trained_decoder(data_dir: Path) -> None:
    """Coarse-to-fine (default Lipschitz bound 1.5) and the full grid give the same mesh for training codes."""
    dec, latents, _ = load_model(data_dir / "models" / "car_decoder")
    for z in latents[:3]:
        with torch.no_grad():
            v_full, f_full, full = extract(dec, z, 96, CAR_BOUNDS)
            v_fast, f_fast, fast = extract(dec, z, 96, CAR_BOUNDS, fast=True)
        assert torch.equal(f_full, f_fast) and torch.equal(v_full, v_fast)
        assert fast.queries < 0.6 * full.queries


def test_mirror_symmetric_decoder_gives_half_model_shapes_and_exact_gradients(data_dir: Path) -> None:
    """The shipped decoder's shapes are not symmetric enough for a half model; through MirrorSymmetric they are
    exactly symmetric, and Theorem 1 still matches finite differences through |y|."""
    import numpy as np
    import trimesh

    from aero_opt.cfd.case import is_symmetric
    from aero_opt.core.frame import to_metres
    from aero_opt.meshsdf.decoder import MirrorSymmetric

    dec, latents, _ = load_model(data_dir / "models" / "car_decoder")
    dec.requires_grad_(False)
    mirrored = MirrorSymmetric(dec)
    meshes = {}
    for name, field in (("plain", dec), ("mirrored", mirrored)):
        with torch.no_grad():
            v, f, _ = extract(field, latents[3], 64, CAR_BOUNDS)
        meshes[name] = trimesh.Trimesh(to_metres(v.numpy()), f.numpy(), process=False)
    assert not is_symmetric(meshes["plain"]) and is_symmetric(meshes["mirrored"])
    v = meshes["mirrored"].vertices
    flipped = v * np.array([1.0, -1.0, 1.0])
    assert np.allclose(np.sort(v, axis=0), np.sort(flipped, axis=0), atol=1e-9)  # the vertex set is its own mirror
    assert_theorem1_matches_finite_differences(mirrored, latents, mesh_volume)
