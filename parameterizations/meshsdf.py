"""MeshSDF: the car is the latent code z of the DeepSDF decoder; its surface is the differentiable iso-surface.

``mesh()`` extracts the zero level set of ``decoder(z, ·)`` on the optimization grid (``resolution`` points per
axis over :data:`aero_opt.core.frame.CAR_BOUNDS`, the grid the CFD dataset was meshed on), in fast mode by default
(narrow-band updates between iterations), and maps it to metres. The vertices carry Theorem 1's gradient to z.
The decoder is frozen. ``regularization()`` is the kNN latent prior when one is given.
"""

from __future__ import annotations

import torch
from torch import nn

from aero_opt.core.frame import CAR_BOUNDS, CAR_OFFSET, CAR_SCALE
from aero_opt.geometry.dataset import DATASET_RESOLUTION
from aero_opt.geometry.isosurface import FastOptions, IsoState, extract
from constraints.latent_prior import KNNLatentPrior
from constraints.regions import RoomConstraint
from parameterizations.base import Parameterization, SettingsLike, ShapeModelLike, StartLike


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

    @classmethod
    def build(cls, start: StartLike, model: ShapeModelLike, settings: SettingsLike) -> MeshSDF:
        """The start shape's latent code on the model's decoder, with the kNN prior over the training codes
        (``knn_k``, ``knn_alpha``; none when ``knn_alpha`` is 0), ``resolution`` and ``fast`` from the settings."""
        prior = KNNLatentPrior(model.latents, k=settings.knn_k, alpha=settings.knn_alpha) \
            if settings.knn_alpha > 0 else None
        return cls(model.decoder, start.latent, settings.resolution, settings.fast, prior)

    def room_penalty(self, room: RoomConstraint, verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """The room penalty from the decoder's SDF at the room points (exact and smooth in z; the mesh is not
        used): :meth:`constraints.regions.RoomConstraint.penalty_sdf`."""
        return room.penalty_sdf(self.decoder, self.z)

    def mesh(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Vertices (V, 3) metres differentiable in z, outward faces (F, 3)."""
        verts, faces, self.state = extract(self.decoder, self.z, self.resolution, CAR_BOUNDS, self.state,
                                           self.fast, self.options)
        return verts * CAR_SCALE + self.offset, faces

    def regularization(self) -> torch.Tensor:
        """The kNN latent prior α · mean_k ‖z − z_k‖² (0 without a prior)."""
        return self.prior(self.z) if self.prior is not None else torch.zeros(())
