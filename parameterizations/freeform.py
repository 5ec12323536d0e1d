"""FreeForm deformation in the spirit of Baqué et al. (ICML 2018): a smooth displacement field written as a sum
of products of sine terms over the normalized coordinates of the car's padded bounding box.

With t = (x − lo) / (hi − lo) ∈ [0, 1] per axis (box padded by ``pad`` of its size on each side),

    d_c(x) = Σ_{i,j,k=1..n} a_c,ijk · sin(π i t_x) · sin²(π j t_y) · sin(π k t_z) · g_c(y)

with g = 1 for the x and z components and g(y) = y / half-width for the y component. The y terms are squared
sines of the centred box (even in y), so the x and z displacements are mirror-symmetric and the y displacement is
antisymmetric: a symmetric car stays symmetric. Every term vanishes on the padded box faces. The coefficients
start at 0 (identity); the regularization is ``l2 · Σ a²``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from parameterizations.base import MeshDeformation, SettingsLike


class FreeForm(MeshDeformation):
    """Sine-product displacement field with 3·n³ coefficients (metres)."""

    name = "freeform"

    @classmethod
    def options(cls, settings: SettingsLike) -> dict[str, float | int]:
        """``freeform_terms`` sine terms per axis, ``freeform_l2`` coefficient weight."""
        return {"n": settings.freeform_terms, "l2": settings.freeform_l2}

    def __init__(self, verts: np.ndarray | torch.Tensor, faces: np.ndarray | torch.Tensor, n: int = 3,
                 pad: float = 0.1, l2: float = 10.0) -> None:
        """Args: initial mesh; n sine terms per axis; pad fraction of the box size; l2 weight (per m²)."""
        super().__init__(verts, faces)
        self.n, self.l2 = n, l2
        self.coeffs = nn.Parameter(torch.zeros(3, n, n, n))
        size = self.hi - self.lo
        lo = self.lo - pad * size
        hi = self.hi + pad * size
        half_w = torch.maximum(hi[1].abs(), lo[1].abs())
        lo = torch.stack([lo[0], -half_w, lo[2]])
        hi = torch.stack([hi[0], half_w, hi[2]])
        t = (self.verts0 - lo) / (hi - lo)
        freq = torch.arange(1, n + 1, dtype=torch.float32) * math.pi
        sx = torch.sin(t[:, 0:1] * freq)  # (V, n)
        sy = torch.sin(t[:, 1:2] * freq).square()
        sz = torch.sin(t[:, 2:3] * freq)
        basis = (sx[:, :, None, None] * sy[:, None, :, None] * sz[:, None, None, :]).reshape(len(t), -1)
        self.register_buffer("basis", basis)  # (V, n³)
        self.register_buffer("odd_y", self.verts0[:, 1] / half_w)

    def displacement(self) -> torch.Tensor:
        """(V, 3) metres."""
        d = self.basis @ self.coeffs.reshape(3, -1).t()  # (V, 3)
        return d * torch.stack([torch.ones_like(self.odd_y), self.odd_y, torch.ones_like(self.odd_y)], dim=1)

    def regularization(self) -> torch.Tensor:
        """l2 · Σ a²."""
        return self.l2 * self.coeffs.square().sum()
