"""MeshSDF: the car is the latent code z of the DeepSDF decoder; its surface is the differentiable iso-surface.

``mesh()`` extracts the zero level set of ``decoder(z, ·)`` on the optimization grid (``resolution`` points per
axis over :data:`aero_opt.frame.CAR_BOUNDS`, the grid the CFD dataset was meshed on), in fast mode by default
(narrow-band updates between iterations), and maps it to metres. The vertices carry Theorem 1's gradient to z.
The decoder is frozen. ``regularization()`` is the kNN latent prior when one is given.
"""

from __future__ import annotations

import torch
from torch import nn

from aero_opt.dataset import DATASET_RESOLUTION
from aero_opt.frame import CAR_BOUNDS, CAR_OFFSET, CAR_SCALE
from aero_opt.isosurface import FastOptions, IsoState, extract
from constraints.latent_prior import KNNLatentPrior
from parameterizations.base import Parameterization


class MeshSDF(Parameterization):
    """Latent code z (D,) -> marching-cubes mesh in metres, differentiable in z."""

    name = "meshsdf"

    def __init__(self, decoder: nn.Module, latent: torch.Tensor, resolution: int = DATASET_RESOLUTION,
                 fast: bool = True, prior: KNNLatentPrior | None = None, options: FastOptions | None = None) -> None:
        """Args: a trained decoder ``decoder(z (D,), x (N, 3) normalized) -> (N,)``; the initial latent (D,);
        grid points per axis; fast mode; the kNN prior (or None); fast-mode tuning."""
        super().__init__()
        self.decoder = decoder.eval().requires_grad_(False)
        self.z = nn.Parameter(latent.detach().clone().float().reshape(-1))
        self.resolution, self.fast, self.prior, self.options = resolution, fast, prior, options
        self.state: IsoState | None = None
        self.register_buffer("offset", torch.as_tensor(CAR_OFFSET, dtype=torch.float32))

    def mesh(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Vertices (V, 3) metres differentiable in z, outward faces (F, 3)."""
        verts, faces, self.state = extract(self.decoder, self.z, self.resolution, CAR_BOUNDS, self.state,
                                           self.fast, self.options)
        return verts * CAR_SCALE + self.offset, faces

    def regularization(self) -> torch.Tensor:
        """The kNN latent prior α · mean_k ‖z − z_k‖² (0 without a prior)."""
        return self.prior(self.z) if self.prior is not None else torch.zeros(())
