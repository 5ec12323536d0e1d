"""Scaling: three factors (Cx, Cy, Cz) applied to the initial mesh, about the point (centre of the length,
centre line, lowest point) so the car stays on its wheels' plane and symmetric."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from parameterizations.base import MeshDeformation


class Scaling(MeshDeformation):
    """V = c + (V0 − c) ⊙ s with s = (Cx, Cy, Cz), initially (1, 1, 1)."""

    name = "scaling"

    def __init__(self, verts: np.ndarray | torch.Tensor, faces: np.ndarray | torch.Tensor) -> None:
        super().__init__(verts, faces)
        self.factors = nn.Parameter(torch.ones(3))
        centre = torch.stack([(self.lo[0] + self.hi[0]) / 2, torch.zeros(()), self.lo[2]])
        self.register_buffer("centre", centre)

    def displacement(self) -> torch.Tensor:
        """(V, 3) metres: (V0 − c) ⊙ (s − 1)."""
        return (self.verts0 - self.centre) * (self.factors - 1.0)
