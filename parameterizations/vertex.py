"""Per-vertex parameterization: every vertex offset is free (3V parameters).

The paper's warning case: with this much freedom the optimizer finds shapes that fool the surrogate (noisy,
adversarial surfaces whose predicted drag is low but whose real drag is not); the comparison verifies it with
OpenFOAM. An optional Laplacian smoothness penalty (``smooth`` weight, 0 by default as in the paper) is available.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from parameterizations.base import MeshDeformation, SettingsLike


class VertexOffsets(MeshDeformation):
    """V = V0 + D with D (V, 3) free, initially 0."""

    name = "vertex"

    @classmethod
    def options(cls, settings: SettingsLike) -> dict[str, float | int]:
        """``vertex_smooth`` Laplacian weight."""
        return {"smooth": settings.vertex_smooth}

    def __init__(self, verts: np.ndarray | torch.Tensor, faces: np.ndarray | torch.Tensor,
                 smooth: float = 0.0) -> None:
        """Args: initial mesh; smooth: weight of Σ‖D_i − mean of D over the neighbours of i‖² (per m²)."""
        super().__init__(verts, faces)
        self.offsets = nn.Parameter(torch.zeros_like(self.verts0))
        self.smooth = smooth
        f = self.faces
        e = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        e = torch.cat([e, e.flip(1)])
        self.register_buffer("edges", e.t().contiguous())
        deg = torch.zeros(len(self.verts0)).index_add_(0, e[:, 0], torch.ones(len(e)))
        self.register_buffer("deg", deg.clamp_min(1.0))

    def displacement(self) -> torch.Tensor:
        """(V, 3) metres: the offsets."""
        return self.offsets

    def regularization(self) -> torch.Tensor:
        """smooth · Σ‖umbrella Laplacian of the offsets‖² (0 when ``smooth`` is 0)."""
        if self.smooth == 0.0:
            return torch.zeros(())
        src, dst = self.edges
        mean = torch.zeros_like(self.offsets).index_add_(0, src, self.offsets[dst]) / self.deg.unsqueeze(1)
        return self.smooth * (self.offsets - mean).square().sum()
