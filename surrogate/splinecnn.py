"""The SplineCNN pressure surrogate: residual blocks of SplineConv layers (after the MeshSDF authors' car model).

Layout (``SplineCNN8Residuals``-style): an input SplineConv to ``width`` channels, ``blocks`` residual blocks of
three SplineConv layers (ELU; the node features are concatenated again before the third layer; with
``global_context`` each block also adds a learned linear function of the area-weighted surface mean of its input,
so every vertex sees the whole car — 25 one-ring layers alone reach only about 1.5 m on a dataset car), and a head
predicting the pressure coefficient Cp = p / (½ρU²) per vertex (plus three wall-shear coefficient channels when
``shear_head``). Everything is differentiable in the vertex positions (through the graph's pseudo-coordinates
and normals).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from surrogate.graph import NODE_FEATURES, MeshGraph, build_graph
from surrogate.spline_conv import SplineBasis, SplineConv, spline_basis


@dataclass(frozen=True)
class SurrogateConfig:
    """Size of the SplineCNN (YAML section ``surrogate``)."""

    width: int = 32
    """Channels of the residual blocks (32 keeps forward + backward near 1 s on a 12k-vertex car on 2 CPU
    cores; the MeshSDF authors' blocks ranged from 4 to 128 channels; configs/paper.yaml uses 64)."""
    blocks: int = 8
    """Residual blocks of 3 SplineConv layers."""
    kernel_size: int = 3
    """B-spline knots per dimension."""
    shear_head: bool = True
    """Also predict the three wall-shear-stress coefficients."""
    global_context: bool = True
    """Each residual block adds W·(area-weighted mean of its input) to every vertex (zero-initialized). The base
    pressure behind the car, which sets much of its drag, depends on the shape far upstream."""
    mirror_canonical: bool = True
    """Mirror-canonical node features and pseudo-coordinates (:func:`surrogate.graph.build_graph`): the model's
    prediction on a mesh's mirror image in y = 0 is exactly its prediction on the mesh, mirrored. Models saved
    before it existed (run 5) load with it off (:data:`LEGACY_DEFAULTS`); run 5 predicts a mirrored test car's
    Cd 0.046 lower on average."""


LEGACY_DEFAULTS = {"mirror_canonical": False}
"""Values of :class:`SurrogateConfig` fields for stored models whose configuration predates the field."""


class ResidualBlock(nn.Module):
    """Three SplineConv layers with ELU and the node features re-injected before the third."""

    def __init__(self, width: int, feat: int, k: int, global_context: bool) -> None:
        super().__init__()
        self.c1 = SplineConv(width, width, 3, k)
        self.c2 = SplineConv(width, width, 3, k)
        self.c3 = SplineConv(width + feat, width, 3, k)
        self.glob = nn.Linear(width, width) if global_context else None
        if self.glob is not None:
            nn.init.zeros_(self.glob.weight)
            nn.init.zeros_(self.glob.bias)
        self.act = nn.ELU()

    def forward(self, h: torch.Tensor, x: torch.Tensor, basis: SplineBasis, weight: torch.Tensor) -> torch.Tensor:
        """h (V, width), node features x (V, NODE_FEATURES), vertex area weights (V,) -> (V, width)."""
        y = self.act(self.c1.apply_basis(h, basis))
        y = self.act(self.c2.apply_basis(y, basis))
        y = self.c3.apply_basis(torch.cat([y, x], dim=1), basis)
        if self.glob is not None:
            y = y + self.glob((weight.to(h.dtype) @ h).unsqueeze(0))
        return self.act(h + y)


class PressureSplineCNN(nn.Module):
    """Graph (V vertices) -> per-vertex coefficients (V, 1 or 4): Cp and optionally the wall-shear coefficients."""

    def __init__(self, cfg: SurrogateConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.inp = SplineConv(NODE_FEATURES, cfg.width, 3, cfg.kernel_size)
        self.blocks = nn.ModuleList(ResidualBlock(cfg.width, NODE_FEATURES, cfg.kernel_size, cfg.global_context)
                                    for _ in range(cfg.blocks))
        self.head = nn.Linear(cfg.width, 4 if cfg.shear_head else 1)
        self.act = nn.ELU()

    def graph(self, verts: torch.Tensor, faces: torch.Tensor, max_value: float) -> MeshGraph:
        """The graph of a mesh (verts (V, 3) m, faces (F, 3)) as this model reads it (fixed Cartesian scale
        ``max_value`` in m; mirror-canonical when configured)."""
        return build_graph(verts, faces, max_value, self.cfg.mirror_canonical)

    def basis(self, g: MeshGraph) -> SplineBasis:
        """The graph's B-spline basis for this model's kernel size (what :meth:`forward` builds when not given)."""
        return spline_basis(g.edge_index, g.pseudo, g.x.shape[0], self.cfg.kernel_size)

    def forward(self, g: MeshGraph, basis: SplineBasis | None = None) -> torch.Tensor:
        """Per-vertex coefficients (V, 4) = (Cp, Cτx, Cτy, Cτz) or (V, 1) = Cp.

        ``basis`` (from :meth:`basis`) may be passed to reuse it across calls on a fixed mesh (training).
        """
        return self.forward_with_embedding(g, basis)[0]

    def forward_with_embedding(self, g: MeshGraph, basis: SplineBasis | None = None
                               ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward`'s coefficients (V, 4 or 1) and the car's embedding (blocks · width,): the area-weighted
        surface mean of each residual block's output, which :mod:`surrogate.domain` compares with the training
        cars'. Independent of the vertex order."""
        if basis is None:
            basis = self.basis(g)
        h = self.act(self.inp.apply_basis(g.x, basis))
        means = []
        for block in self.blocks:
            h = block(h, g.x, basis, g.area_weight)
            means.append(g.area_weight.to(h.dtype) @ h)
        out = self.head(h)
        if g.side is not None and out.shape[1] == 4:  # the y wall-shear component back to the vertex's side
            out = torch.cat([out[:, :2], out[:, 2:3] * g.side.to(out.dtype).unsqueeze(1), out[:, 3:]], dim=1)
        return out, torch.cat(means)


def config_dict(cfg: SurrogateConfig) -> dict[str, object]:
    """JSON-ready surrogate configuration (stored in checkpoints)."""
    return asdict(cfg)
