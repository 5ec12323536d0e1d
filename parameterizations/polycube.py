"""PolyCube-style lattice deformation (Umetani & Bickel 2018 style).

An ``lattice``³ grid of control points spans the car's bounding box padded by ``pad`` (20%) of its size on each
axis. Each control point's displacement is ``tanh(p) · cell`` (at most one lattice cell per axis), the
displacement field is smoothed with a Gaussian (σ = 1 cell, kernel 3, separable, zero padding) and interpolated
trilinearly to the vertices. Parameters start at 0 (identity).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from parameterizations.base import MeshDeformation, SettingsLike


def _gaussian_kernel3(sigma: float) -> torch.Tensor:
    """Normalized 3-tap Gaussian (3,)."""
    k = torch.exp(-torch.tensor([1.0, 0.0, 1.0]) / (2 * sigma**2))
    return k / k.sum()


class PolyCube(MeshDeformation):
    """Control-lattice deformation with tanh-bounded, Gaussian-smoothed displacements."""

    name = "polycube"

    @classmethod
    def options(cls, settings: SettingsLike) -> dict[str, float | int]:
        """``polycube_lattice`` control points per axis."""
        return {"lattice": settings.polycube_lattice}

    def __init__(self, verts: np.ndarray | torch.Tensor, faces: np.ndarray | torch.Tensor, lattice: int = 8,
                 pad: float = 0.2, sigma: float = 1.0) -> None:
        """Args: initial mesh; lattice control points per axis; pad fraction of the box; smoothing σ (cells)."""
        super().__init__(verts, faces)
        self.lattice = lattice
        self.raw = nn.Parameter(torch.zeros(3, lattice, lattice, lattice))
        size = self.hi - self.lo
        lo, hi = self.lo - pad * size, self.hi + pad * size
        self.register_buffer("cell", (hi - lo) / (lattice - 1))
        t = (self.verts0 - lo) / (hi - lo) * 2.0 - 1.0  # in [-1, 1] for grid_sample
        # grid_sample's last coordinate indexes the innermost (W) axis: pass (z, y, x) for a (D=x, H=y, W=z) volume
        self.register_buffer("grid", t.flip(1).reshape(1, 1, 1, -1, 3))
        self.register_buffer("kernel", _gaussian_kernel3(sigma))

    def control_displacements(self) -> torch.Tensor:
        """(3, L, L, L) smoothed control-point displacements (m); component-first, lattice indexed (x, y, z)."""
        d = torch.tanh(self.raw) * self.cell.view(3, 1, 1, 1)
        d = d.unsqueeze(1)  # (3, 1, L, L, L) as a batch of 3 one-channel volumes
        k = self.kernel
        d = F.conv3d(d, k.view(1, 1, 3, 1, 1), padding=(1, 0, 0))
        d = F.conv3d(d, k.view(1, 1, 1, 3, 1), padding=(0, 1, 0))
        d = F.conv3d(d, k.view(1, 1, 1, 1, 3), padding=(0, 0, 1))
        return d.squeeze(1)

    def displacement(self) -> torch.Tensor:
        """(V, 3) metres: trilinear interpolation of the smoothed lattice."""
        d = self.control_displacements().unsqueeze(0)  # (1, 3, L, L, L)
        out = F.grid_sample(d, self.grid, mode="bilinear", align_corners=True)  # (1, 3, 1, 1, V)
        return out.reshape(3, -1).t()
