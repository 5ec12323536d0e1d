"""The latent fit's start: the training code whose decoded SDF matches the shape best."""

from __future__ import annotations

import numpy as np
import torch

from aero_opt.meshsdf.config import TrainSDFConfig
from aero_opt.meshsdf.decoder import DecoderConfig, SDFDecoder
from aero_opt.meshsdf.fit import nearest_code
from aero_opt.meshsdf.samples import ShapeSamples


def test_a_training_shapes_own_samples_choose_its_own_code() -> None:
    torch.manual_seed(0)
    dec = SDFDecoder(DecoderConfig(latent_size=8, hidden=32, layers=4, inject_at=2)).eval()
    latents = 0.5 * torch.randn(150, 8)  # more codes than one chunk of nearest_code
    pts = 0.8 * (2.0 * torch.rand(5000, 3) - 1.0)
    for k in (0, 63, 64, 149):
        with torch.no_grad():
            sdf = dec(latents[k], pts)
        shape = ShapeSamples(f"shape{k}", pts, sdf, np.zeros((1, 3), np.float32), car_frame=False)
        assert nearest_code(dec, shape, latents, TrainSDFConfig(clamp=1.0), probes=512) == k
