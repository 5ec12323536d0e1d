"""Stand-in models for the application tests: an analytic ellipsoid 'decoder' whose latent holds the semi-axes, a
small random SplineCNN, and the start shape they give."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aero_opt.app.optimize import Models, StartShape
from aero_opt.core.frame import CAR_BOUNDS, CAR_OFFSET, CAR_SCALE
from aero_opt.geometry.isosurface import extract
from aero_opt.meshsdf.config import TrainSDFConfig
from surrogate.model import Surrogate
from surrogate.splinecnn import PressureSplineCNN, SurrogateConfig

CENTRE = torch.as_tensor((np.array([2.3, 0.0, 0.75]) - CAR_OFFSET) / CAR_SCALE, dtype=torch.float32)


class Ellipsoid(torch.nn.Module):
    """f(z, x) = ‖(x − c) / z‖ − 1 (normalized frame): a car-sized ellipsoid with semi-axes z."""

    def forward(self, latent: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return ((x - CENTRE) / latent.to(x)).norm(dim=1) - 1.0


@pytest.fixture(scope="module")
def models() -> Models:
    torch.manual_seed(0)
    sur = Surrogate(PressureSplineCNN(SurrogateConfig(width=8, blocks=1)), max_value=0.15)
    codes = torch.tensor([[0.8, 0.33, 0.27], [0.75, 0.3, 0.25], [0.85, 0.34, 0.28]])
    return Models(sur, Ellipsoid(), codes, ["a", "b", "c"], TrainSDFConfig())


@pytest.fixture(scope="module")
def start(models: Models) -> StartShape:
    z = torch.tensor([0.8, 0.33, 0.27])
    v, f, _ = extract(models.decoder, z, 40, CAR_BOUNDS)
    verts = (v.detach() * CAR_SCALE + torch.as_tensor(CAR_OFFSET, dtype=torch.float32)).double().numpy()
    return StartShape("ellipsoid", z, verts, f.numpy(), "training code")


