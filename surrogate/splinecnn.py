"""The SplineCNN pressure surrogate: residual blocks of SplineConv layers (after the MeshSDF authors' car model).

Layout (``SplineCNN8Residuals``-style): an input SplineConv to ``width`` channels, ``blocks`` residual blocks of
three SplineConv layers (ELU; the node features are concatenated again before the third layer; with
``global_context`` each block also adds a learned linear function of the area-weighted surface mean of its input,
so every vertex sees the whole car — 25 one-ring layers alone reach only about 1.5 m on a dataset car; with
``coarse_grid`` it also adds what a coarse grid over the car's side view passes back to each vertex's place:
:class:`CoarseGrid`), and a head
predicting the pressure coefficient Cp = p / (½ρU²) per vertex (plus three wall-shear coefficient channels when
``shear_head``). With ``volume_grid`` the node features also carry what a 3D U-Net over the car's volume
(:mod:`surrogate.volume`) reads at each vertex. Everything is differentiable in the vertex positions (through
the graph's pseudo-coordinates and normals, and the volume branch's trilinear weights).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from aero_opt.core.errors import AeroOptError
from aero_opt.core.frame import CAR_BOUNDS
from surrogate.graph import NODE_FEATURES, MeshGraph, build_graph
from surrogate.spline_conv import SplineBasis, SplineConv, grid_corners, spline_basis
from surrogate.volume import VolumeUNet


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
    before it existed load with it off (:data:`LEGACY_DEFAULTS`)."""
    coarse_grid: tuple[int, int] = (0, 0)
    """Nodes along x and z of a coarse grid over the side view of :data:`aero_opt.core.frame.CAR_BOUNDS`
    ((0, 0): off; :class:`CoarseGrid`). Unlike ``global_context``, what it adds to a vertex depends on where the
    vertex is, so the base of the car can read the shape of the roof and rear window ahead of it. Zero at
    initialization, so it can be added to a trained model."""
    coarse_channels: int = 8
    """Channels per coarse-grid node (the mixing layer has (nodes · channels)² weights)."""
    volume_grid: tuple[int, ...] = ()
    """Channels per level of the volume branch (:mod:`surrogate.volume`: the surface splatted onto a 3D grid over
    the car, a 3D U-Net, read back at every vertex), e.g. (16, 32, 48, 64); (): off. Its
    ``volume_features`` outputs join the node features, so every SplineConv layer that reads them (the input
    layer and each block's third) sees the car's shape in 3D around the vertex. Needs ``mirror_canonical``."""
    volume_features: int = 8
    """Per-vertex output channels of the volume branch."""

    def __post_init__(self) -> None:
        g = tuple(self.coarse_grid)
        if len(g) != 2 or min(g) < 0 or min(g) == 0 < max(g):
            raise AeroOptError(f"surrogate.coarse_grid: expected two node counts >= 1 (x, z) or [0, 0] (off), got "
                               f"{list(g)}")
        object.__setattr__(self, "coarse_grid", g)  # a tuple whether it came from YAML, a checkpoint or code
        v = tuple(int(c) for c in self.volume_grid)
        if v and not self.mirror_canonical:
            raise AeroOptError("surrogate.volume_grid: the volume branch needs surrogate.mirror_canonical: true "
                               "(its grid covers the y >= 0 half)")
        if v and self.volume_features < 1:
            raise AeroOptError(f"surrogate.volume_features: expected >= 1, got {self.volume_features}")
        object.__setattr__(self, "volume_grid", v)

    @property
    def node_features(self) -> int:
        """Per-vertex features the SplineConv layers read: the graph's plus the volume branch's."""
        return NODE_FEATURES + (self.volume_features if self.volume_grid else 0)

    @property
    def has_coarse_grid(self) -> bool:
        """Whether the blocks carry a :class:`CoarseGrid`."""
        return min(self.coarse_grid) > 0


LEGACY_DEFAULTS = {"mirror_canonical": False}
"""Values of :class:`SurrogateConfig` fields for stored models whose configuration predates the field."""


def hat_weights(x_n: torch.Tensor, nodes: tuple[int, int]) -> torch.Tensor:
    """Bilinear interpolation weights of points to a grid over the x-z extent of ``CAR_BOUNDS``.

    Args:
        x_n: (V, ≥3) positions in the normalized car frame (columns 0 and 2 are used; differentiable).
        nodes: grid nodes along x and z (≥ 1 each), spread evenly over the bounds (a single node: the middle).

    Returns:
        (V, nx · nz) weights, each row ≥ 0 and summing to 1 (points outside the bounds take the nearest edge's);
        node (i, k) is column i · nz + k.
    """
    lo = x_n.new_tensor([CAR_BOUNDS[0][0], CAR_BOUNDS[0][2]])
    hi = x_n.new_tensor([CAR_BOUNDS[1][0], CAR_BOUNDS[1][2]])
    flat, w = grid_corners((x_n[:, [0, 2]] - lo) / (hi - lo) * (x_n.new_tensor(nodes) - 1), nodes)
    return x_n.new_zeros((x_n.shape[0], nodes[0] * nodes[1])).scatter_add(1, flat, w)  # (V, 4) -> (V, nx · nz)


class CoarseGrid(nn.Module):
    """A coarse grid over the car's side view, one per residual block: pool, mix every node with every node, spread.

    The block's input is pooled onto the nodes (area-weighted sums with the bilinear :func:`hat_weights`, times
    the node count so a node's value is of the order of a vertex's), projected to ``channels`` per node, mixed by
    one linear layer over all nodes (so each node sees the whole car, in place), ELU, projected back to ``width``
    and interpolated back to the vertices with the same weights. The last projection is zero at initialization.
    Uses only x and z: a mirror image pools to the same nodes.
    """

    def __init__(self, width: int, nodes: tuple[int, int], channels: int) -> None:
        super().__init__()
        self.n = nodes[0] * nodes[1]
        self.down = nn.Linear(width, channels)
        self.mix = nn.Linear(self.n * channels, self.n * channels)
        self.up = nn.Linear(channels, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.act = nn.ELU()

    def forward(self, h: torch.Tensor, hat: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """h (V, width), hat weights (V, nodes), vertex area weights (V,) -> (V, width)."""
        hat = hat.to(h.dtype)
        pooled = hat.t() @ (weight.to(h.dtype).unsqueeze(1) * h) * self.n  # (nodes, width)
        q = self.down(pooled)
        q = self.act(self.mix(q.reshape(1, -1))).reshape(self.n, -1)
        return hat @ self.up(q)


class ResidualBlock(nn.Module):
    """Three SplineConv layers with ELU and the node features re-injected before the third."""

    def __init__(self, width: int, feat: int, k: int, global_context: bool, coarse_grid: tuple[int, int] = (0, 0),
                 coarse_channels: int = 8) -> None:
        super().__init__()
        self.c1 = SplineConv(width, width, 3, k)
        self.c2 = SplineConv(width, width, 3, k)
        self.c3 = SplineConv(width + feat, width, 3, k)
        self.glob = nn.Linear(width, width) if global_context else None
        if self.glob is not None:
            nn.init.zeros_(self.glob.weight)
            nn.init.zeros_(self.glob.bias)
        self.coarse = CoarseGrid(width, coarse_grid, coarse_channels) if min(coarse_grid) > 0 else None
        self.act = nn.ELU()

    def forward(self, h: torch.Tensor, x: torch.Tensor, basis: SplineBasis, weight: torch.Tensor,
                hat: torch.Tensor | None = None) -> torch.Tensor:
        """h (V, width), node features x (V, NODE_FEATURES), vertex area weights (V,), coarse-grid
        :func:`hat_weights` (V, nodes) when the block has a grid -> (V, width)."""
        y = self.act(self.c1.apply_basis(h, basis))
        y = self.act(self.c2.apply_basis(y, basis))
        y = self.c3.apply_basis(torch.cat([y, x], dim=1), basis)
        if self.glob is not None:
            y = y + self.glob((weight.to(h.dtype) @ h).unsqueeze(0))
        if self.coarse is not None:
            y = y + self.coarse(h, hat, weight)
        return self.act(h + y)


class PressureSplineCNN(nn.Module):
    """Graph (V vertices) -> per-vertex coefficients (V, 1 or 4): Cp and optionally the wall-shear coefficients."""

    def __init__(self, cfg: SurrogateConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.volume = VolumeUNet(cfg.volume_grid, cfg.volume_features) if cfg.volume_grid else None
        self.inp = SplineConv(cfg.node_features, cfg.width, 3, cfg.kernel_size)
        self.blocks = nn.ModuleList(ResidualBlock(cfg.width, cfg.node_features, cfg.kernel_size, cfg.global_context,
                                                  cfg.coarse_grid, cfg.coarse_channels)
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
        x = g.x
        if self.volume is not None:
            x = torch.cat([x, self.volume(g.x[:, :3], g.x[:, 3:6], g.area).to(x.dtype)], dim=1)
        h = self.act(self.inp.apply_basis(x, basis))
        hat = hat_weights(g.x, self.cfg.coarse_grid) if self.cfg.has_coarse_grid else None
        means = []
        for block in self.blocks:
            h = block(h, x, basis, g.area_weight, hat)
            means.append(g.area_weight.to(h.dtype) @ h)
        out = self.head(h)
        if g.side is not None and out.shape[1] == 4:  # the y wall-shear component back to the vertex's side
            out = torch.cat([out[:, :2], out[:, 2:3] * g.side.to(out.dtype).unsqueeze(1), out[:, 3:]], dim=1)
        return out, torch.cat(means)


def widen_state(state: dict[str, torch.Tensor], cfg: SurrogateConfig, width: int, noise: float = 0.01,
                seed: int = 0) -> dict[str, torch.Tensor]:
    """A trained model's weights widened to ``width`` channels, computing the same function (Net2WiderNet, Chen et
    al. 2016): new channel c of the residual stream copies old channel c mod ``cfg.width``, so every layer writes
    the same values into a channel and its copies, and every layer reading the stream divides an old channel's
    weights among its copies. Every hidden width of the model (the residual stream, the blocks' inner layers) is
    the same ``width``, so one map serves all of them.

    Args:
        state: ``PressureSplineCNN(cfg).state_dict()``.
        cfg: the configuration the state belongs to.
        width: the new width (≥ ``cfg.width``).
        noise: standard deviation, relative to each tensor's, of Gaussian noise added to the weights writing the
            new channels, so that copies do not stay identical in training (0: exactly the same function).
        seed: seed of that noise.

    Returns:
        The state dict of ``PressureSplineCNN(replace(cfg, width=width))``.
    """
    if width < cfg.width:
        raise AeroOptError(f"surrogate.width: cannot widen a {cfg.width}-channel model to {width} channels")
    old = cfg.width
    src = torch.arange(width) % old  # the old channel each new channel copies
    share = torch.bincount(src, minlength=old).to(torch.float32)[src]  # how many channels share its old one
    gen = torch.Generator().manual_seed(seed)

    def write(t: torch.Tensor, dim: int) -> torch.Tensor:  # t's dimension ``dim`` writes the stream
        out = t.index_select(dim, src).clone()
        if noise > 0 and width > old:
            new = out.narrow(dim, old, width - old)
            new.add_(torch.randn(new.shape, generator=gen, dtype=t.dtype) * noise * float(t.std()))
        return out

    def read(t: torch.Tensor, dim: int, count: int | None = None) -> torch.Tensor:
        # t's dimension ``dim`` reads the stream in its first ``count`` entries (all when None)
        count = old if count is None else count
        head = t.narrow(dim, 0, count).index_select(dim, src)
        shape = [1] * t.dim()
        shape[dim] = width
        return torch.cat([head / share.to(t.dtype).reshape(shape), t.narrow(dim, count, t.shape[dim] - count)], dim)

    out = {}
    for key, t in state.items():
        name = key.split(".")
        layer, param = ".".join(name[:-1]), name[-1]
        if layer == "inp":  # weight (K, F, W), root (F, W), bias (W)
            t = write(t, t.dim() - 1)
        elif layer == "head":  # Linear(W, 4 or 1)
            t = read(t, 1) if param == "weight" else t
        elif name[0] == "blocks" and name[2] in ("c1", "c2", "c3"):  # weight (K, C_in, W), root (C_in, W)
            if param != "bias":
                t = read(t, t.dim() - 2)
            t = write(t, t.dim() - 1)
        elif name[0] == "blocks" and name[2] == "glob":  # Linear(W, W): weight (out, in)
            t = write(read(t, 1), 0) if param == "weight" else write(t, 0)
        elif name[0] == "blocks" and layer.endswith("coarse.down"):  # Linear(W, channels)
            t = read(t, 1) if param == "weight" else t
        elif name[0] == "blocks" and layer.endswith("coarse.up"):  # Linear(channels, W)
            t = write(t, 0)
        elif not (name[0] == "blocks" and layer.endswith("coarse.mix")) and name[0] != "volume":
            raise AeroOptError(f"widen_state: unexpected weight {key}")
        out[key] = t
    return out


def extend_state(state: dict[str, torch.Tensor], old: SurrogateConfig, cfg: SurrogateConfig,
                 seed: int = 0) -> dict[str, torch.Tensor]:
    """A trained model's weights for ``cfg``, which may add a coarse grid and/or a volume branch to ``old``: the
    extended model computes the same function. A coarse grid starts at zero (:class:`CoarseGrid`); the volume
    branch starts from random weights (seeded), and the layers reading the node features (the input layer and
    each block's third) get zero weights for its outputs, which are appended after the graph's features.

    Args:
        state: ``PressureSplineCNN(old).state_dict()``.
        old: the configuration the state belongs to (no coarse grid or the same; no volume branch or the same).
        cfg: the target configuration; equal to ``old`` but for the added parts.
        seed: seed of the volume branch's initial weights.

    Returns:
        The state dict of ``PressureSplineCNN(cfg)``.

    Raises:
        AeroOptError: ``cfg`` differs from ``old`` in anything else, or would remove a part.
    """
    grid_ok = old.coarse_grid == cfg.coarse_grid and old.coarse_channels == cfg.coarse_channels
    volume_ok = old.volume_grid == cfg.volume_grid and old.volume_features == cfg.volume_features
    same_rest = replace(old, coarse_grid=cfg.coarse_grid, coarse_channels=cfg.coarse_channels,
                        volume_grid=cfg.volume_grid, volume_features=cfg.volume_features) == cfg
    if not same_rest or (not grid_ok and old.has_coarse_grid) or (not volume_ok and old.volume_grid):
        raise AeroOptError(f"surrogate configuration {asdict(old)} cannot be extended to {asdict(cfg)} (only a "
                           "wider width, an added coarse grid or an added volume branch can differ)")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        fresh = PressureSplineCNN(cfg).state_dict()
    out = {}
    for key, t in fresh.items():
        if key not in state:  # an added part: the coarse grid (zero-started) or the volume branch
            out[key] = t
            continue
        old_t = state[key]
        if old_t.shape != t.shape:  # a layer reading the node features: zero weights for the volume's channels
            pad = old_t.new_zeros(t.shape)
            pad[tuple(slice(0, n) for n in old_t.shape)] = old_t
            old_t = pad
        out[key] = old_t
    return out


def config_dict(cfg: SurrogateConfig) -> dict[str, object]:
    """JSON-ready surrogate configuration (stored in checkpoints)."""
    return asdict(cfg)
