"""A volume view of the car for the SplineCNN: the surface splatted onto a 3D grid, a small 3D U-Net, read back.

The SplineCNN's one-ring layers see about 1.5 m of surface; what sets the base pressure behind the car (and so much
of its drag) is the shape of the roof, rear window and sides ahead of it, across the air between them. This branch
gives every vertex that view, as geometry-informed neural operators do (Li et al. 2023, GINO):

1. **Splat.** Each vertex adds its surface area (m², over the grid cell's face area δ² so the values are about 1)
   and its area-weighted unit normal to the 8 nodes of its grid cell with trilinear weights: per node a smoothed
   surface density and an oriented normal field (4 channels), plus the node's own position (3 channels, the
   ground is not translation invariant).
2. **U-Net.** ``len(channels)`` levels of two 3×3×3 convolutions (ELU), each level half the resolution of the one
   above (stride-2 convolutions down, stride-2 transposed convolutions up, skip connections), then a 1×1×1
   convolution to ``out`` channels. At four levels the coarsest cell is 1.1 m and its convolutions span the car.
3. **Read back.** The output grid is interpolated to every vertex with the same trilinear weights.

The grid covers the y ≥ 0 half of the car frame's box (:data:`GRID_LO`, :data:`GRID_NODES`, spacing
:data:`SPACING` in normalized units = 0.1375 m) and is fed the mirror-canonical positions and normals of
:func:`surrogate.graph.build_graph`, so both halves of a car land on the same nodes and the branch is exactly
mirror-symmetric (the CFD itself is a half model). Its y = 0 face is the symmetry plane: the convolutions pad it
by reflection, the other faces with zeros. Everything is continuous and differentiable in the vertex positions
(trilinear weights, areas and normals); positions outside the box take the nearest boundary cell's weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from aero_opt.core.errors import AeroOptError
from aero_opt.core.frame import CAR_SCALE
from surrogate.spline_conv import grid_corners

SPACING = 0.05
"""Node spacing of the finest level in the normalized car frame (0.1375 m)."""
GRID_LO = (-1.0, 0.0, -0.91)
"""Normalized position of node (0, 0, 0): the nose end, the symmetry plane and just below the ground (z_n −0.9)."""
GRID_NODES = (41, 9, 17)
"""Nodes along x, y, z: x_n ∈ [−1, 1] (the longest car, 5.2 m, spans ±0.945), y_n ∈ [0, 0.4] (half-widths up to
1.1 m), z_n ∈ [−0.91, −0.11] (heights up to 2.17 m). Each count is 8m + 1, so up to four levels halve it exactly."""
MAX_LEVELS = 4
SPLAT_CHANNELS = 7
"""Input channels per node: surface density, area-weighted normal (3), node position (3)."""


def trilinear(p: torch.Tensor, lo: tuple[float, float, float] = GRID_LO, spacing: float = SPACING,
              nodes: tuple[int, int, int] = GRID_NODES) -> tuple[torch.Tensor, torch.Tensor]:
    """Trilinear interpolation weights of points to a regular grid.

    Args:
        p: (V, 3) points in the grid's frame (normalized car frame; differentiable).
        lo: position of node (0, 0, 0).
        spacing: node spacing.
        nodes: node counts (nx, ny, nz), each ≥ 1.

    Returns:
        Flat node indices (V, 8) long (node (i, j, k) is ``(i * ny + j) * nz + k``) and weights (V, 8), each row
        ≥ 0 and summing to 1; points outside the grid take the weights of the nearest boundary point.
    """
    lo_t = torch.as_tensor(lo, dtype=p.dtype, device=p.device)
    return grid_corners((p - lo_t) / spacing, nodes)  # the B-spline basis's corner weights, the same hat functions


def splat(values: torch.Tensor, idx: torch.Tensor, w: torch.Tensor, n_nodes: int) -> torch.Tensor:
    """Scatter per-point values (V, C) to grid nodes with weights ``w`` (V, 8) at ``idx`` (V, 8) -> (n_nodes, C).
    The grid's total equals the points' total (the weights sum to 1). Differentiable in values and weights."""
    contrib = (w.unsqueeze(2) * values.unsqueeze(1)).reshape(-1, values.shape[1])
    return values.new_zeros((n_nodes, values.shape[1])).index_add_(0, idx.reshape(-1), contrib)


def gather(grid: torch.Tensor, idx: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Interpolate node values (n_nodes, C) at points with weights ``w`` (V, 8) at ``idx`` (V, 8) -> (V, C)."""
    return (grid.to(w.dtype)[idx] * w.unsqueeze(2)).sum(dim=1)


def _pad(h: torch.Tensor) -> torch.Tensor:
    """Pad a (1, C, X, Y, Z) grid by one node on every face: by reflection on y = 0 (the symmetry plane), zeros
    elsewhere."""
    return F.pad(F.pad(h, (0, 0, 1, 0, 0, 0), mode="reflect"), (1, 1, 0, 1, 1, 1))


class _Conv(nn.Module):
    """3×3×3 convolution (stride 1 or 2) with the symmetry-plane padding of :func:`_pad`."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv3d(c_in, c_out, 3, stride=stride)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """(1, c_in, X, Y, Z) -> (1, c_out, X', Y', Z'); stride 2 keeps every second node (2m + 1 -> m + 1)."""
        return self.conv(_pad(h))


class VolumeUNet(nn.Module):
    """Vertices -> per-vertex volume features (V, ``out``) through the grid (module docstring)."""

    def __init__(self, channels: tuple[int, ...], out: int) -> None:
        super().__init__()
        if not 1 <= len(channels) <= MAX_LEVELS or min(channels) < 1:
            raise AeroOptError(f"surrogate.volume_grid: expected 1 to {MAX_LEVELS} channel counts >= 1 (one per "
                               f"level), got {list(channels)}")
        self.channels = tuple(channels)
        c = self.channels
        self.enc = nn.ModuleList(nn.ModuleList([_Conv(SPLAT_CHANNELS if lv == 0 else c[lv], c[lv]),
                                                _Conv(c[lv], c[lv])]) for lv in range(len(c)))
        self.down = nn.ModuleList(_Conv(c[lv], c[lv + 1], stride=2) for lv in range(len(c) - 1))
        self.up = nn.ModuleList(nn.ConvTranspose3d(c[lv + 1], c[lv], 3, stride=2, padding=1)
                                for lv in range(len(c) - 1))
        self.dec = nn.ModuleList(nn.ModuleList([_Conv(2 * c[lv], c[lv]), _Conv(c[lv], c[lv])])
                                 for lv in range(len(c) - 1))
        self.head = nn.Conv3d(c[0], out, 1)
        self.act = nn.ELU()
        axes = [GRID_LO[a] + SPACING * torch.arange(GRID_NODES[a], dtype=torch.float32) for a in range(3)]
        self.register_buffer("node_pos", torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=0), persistent=False)

    def grid_input(self, pos_n: torch.Tensor, normals: torch.Tensor, area: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The splatted input grid (1, SPLAT_CHANNELS, *GRID_NODES) and the vertices' trilinear indices and
        weights (V, 8) each, from mirror-canonical normalized positions (V, 3), unit normals (V, 3) and vertex
        areas (V,) in m²."""
        idx, w = trilinear(pos_n)
        dens = (area / (SPACING * CAR_SCALE) ** 2).unsqueeze(1)
        nodes = GRID_NODES[0] * GRID_NODES[1] * GRID_NODES[2]
        g = splat(torch.cat([dens, dens * normals], dim=1), idx, w, nodes)  # (nodes, 4)
        g = g.t().reshape(1, 4, *GRID_NODES)
        return torch.cat([g, self.node_pos.to(g.dtype).unsqueeze(0)], dim=1), idx, w

    def forward(self, pos_n: torch.Tensor, normals: torch.Tensor, area: torch.Tensor) -> torch.Tensor:
        """Mirror-canonical normalized positions (V, 3), unit normals (V, 3), vertex areas (V,) m² -> per-vertex
        features (V, out)."""
        h, idx, w = self.grid_input(pos_n, normals, area)
        skips = []
        for lv, (a, b) in enumerate(self.enc):
            h = self.act(b(self.act(a(h))))
            if lv < len(self.down):
                skips.append(h)
                h = self.act(self.down[lv](h))
        for lv in reversed(range(len(self.up))):
            a, b = self.dec[lv]
            h = torch.cat([self.act(self.up[lv](h)), skips[lv]], dim=1)
            h = self.act(b(self.act(a(h))))
        out = self.head(h)[0]  # (out, X, Y, Z)
        return gather(out.reshape(out.shape[0], -1).t(), idx, w)
