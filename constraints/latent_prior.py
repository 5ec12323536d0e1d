"""The kNN latent prior (MeshSDF supplementary, eq. 15): keep the latent code near the codes of real training cars.

    prior(z) = α · mean over the k nearest training latents z' of ‖z − z'‖²

The neighbours are found with scipy's cKDTree and recomputed at every call (they change as z moves); the
gradient flows through the distances to the current neighbours.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

from aero_opt.core.errors import AeroOptError


class KNNLatentPrior:
    """α · mean_k ‖z − z_k‖² over the k nearest of a set of training latent codes."""

    def __init__(self, train_latents: torch.Tensor | np.ndarray, k: int = 10, alpha: float = 0.2) -> None:
        """Args: train_latents (N, D) codes of the training shapes; k neighbours (clipped to N); alpha weight."""
        codes = np.asarray(torch.as_tensor(train_latents).detach().cpu(), dtype=np.float64)
        if codes.ndim != 2 or len(codes) == 0:
            raise AeroOptError(f"kNN latent prior needs (N, D) training latents, got shape {codes.shape}")
        if k < 1:
            raise AeroOptError(f"kNN latent prior: k must be at least 1, got {k}")
        self.codes = torch.as_tensor(codes, dtype=torch.float32)
        self.tree = cKDTree(codes)
        self.k = min(k, len(codes))
        self.alpha = alpha

    def neighbours(self, z: torch.Tensor) -> np.ndarray:
        """Indices (k,) of the k nearest training codes to z (D,)."""
        _, idx = self.tree.query(z.detach().cpu().double().numpy(), k=self.k)
        return np.atleast_1d(idx)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """The prior (scalar tensor, differentiable in z) for a latent z (D,)."""
        near = self.codes[torch.as_tensor(self.neighbours(z))].to(z)
        return self.alpha * (z.unsqueeze(0) - near).square().sum(dim=1).mean()
