"""The DeepSDF auto-decoder (Park et al. 2019): f(z, x) -> signed distance, with per-shape latent codes.

Architecture: an MLP on [z, γ(x)] with weight normalization, ReLU, optional dropout, the input [z, γ(x)]
re-injected (concatenated) at a middle layer, and a tanh output (distances are clamped at δ in the loss).
γ(x) = x, optionally followed by Fourier features sin/cos(2^k π x), k < fourier_degree.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from aero_opt.core.checkpoint import load_torch, load_weights
from aero_opt.core.errors import AeroOptError
from aero_opt.core.frame import CAR_BOUNDS


@dataclass(frozen=True)
class DecoderConfig:
    """Size of the decoder. Defaults are sized for a 2-core CPU (configs/paper.yaml has the paper's 8x512)."""

    latent_size: int = 32
    """Dimension D of the latent code z."""
    hidden: int = 192
    """Width of the hidden layers."""
    layers: int = 6
    """Number of hidden layers."""
    inject_at: int = 3
    """Index of the hidden layer whose input is concatenated with [z, γ(x)] again."""
    fourier_degree: int = 0
    """Fourier feature octaves of x (0: off)."""
    dropout: float = 0.0
    """Dropout probability after each hidden layer (DeepSDF: 0.2)."""
    weight_norm: bool = True
    """Weight normalization of every linear layer."""


class SDFDecoder(nn.Module):
    """f(z, x): latent (D,) or (N, D) and points (N, 3) -> signed distances (N,) in normalized units."""

    accepts_point_latents = True
    """Takes a latent per point ((N, D)): the iso-surface uses it for one-pass vertex gradients."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        in_x = 3 * (1 + 2 * cfg.fourier_degree)
        self.in_dim = cfg.latent_size + in_x
        dims = [self.in_dim] + [cfg.hidden] * cfg.layers
        self.hidden = nn.ModuleList()
        for i in range(cfg.layers):
            fan_in = dims[i] + (self.in_dim if i == cfg.inject_at and i > 0 else 0)
            lin = nn.Linear(fan_in, dims[i + 1])
            self.hidden.append(weight_norm(lin) if cfg.weight_norm else lin)
        self.out = nn.Linear(cfg.hidden, 1)
        self.drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        freqs = (2.0 ** torch.arange(cfg.fourier_degree, dtype=torch.float32)) * math.pi
        self.register_buffer("freqs", freqs, persistent=False)

    def encode_points(self, x: torch.Tensor) -> torch.Tensor:
        """γ(x): (N, 3) -> (N, 3 (1 + 2 degree))."""
        if self.cfg.fourier_degree == 0:
            return x
        xf = x.unsqueeze(-1) * self.freqs.to(x.dtype)
        return torch.cat([x, torch.sin(xf).flatten(1), torch.cos(xf).flatten(1)], dim=1)

    def forward(self, latent: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Signed distances (N,) at points x (N, 3) for latent (D,) (shared) or (N, D) (per point)."""
        if latent.dim() == 1:
            latent = latent.unsqueeze(0).expand(x.shape[0], -1)
        inp = torch.cat([latent.to(x.dtype), self.encode_points(x)], dim=1)
        h = inp
        for i, layer in enumerate(self.hidden):
            if i == self.cfg.inject_at and i > 0:
                h = torch.cat([h, inp], dim=1)
            h = self.drop(torch.relu(layer(h)))
        return torch.tanh(self.out(h)).squeeze(1)

    def flops_per_query(self) -> int:
        """Multiply-adds per point of one forward pass (for cost estimates)."""
        return sum(m.in_features * m.out_features for m in self.modules() if isinstance(m, nn.Linear))


class MirrorSymmetric(nn.Module):
    """A field made exactly mirror-symmetric about the plane y = 0: ``f(z, (x, |y|, z))``.

    Cars are symmetric, and so are the training cars, but a decoder learns the symmetry only approximately: the
    shipped car decoder's two sides differ by 1.7 cm at the 99th percentile of its surface points
    (``docs/validation/decoder_symmetry.json``). Evaluating only the y ≥ 0 half makes every shape exactly
    symmetric, so OpenFOAM checks it as a half model like the dataset's cars (:func:`aero_opt.cfd.case.is_symmetric`),
    at half the cells. Where the surface crosses y = 0 it bends by twice the angle between ∇f and the plane (the
    same file: 0.7° at the median, 1.8° at the 90th percentile). The car frame maps the plane y = 0 of metres to
    y = 0 (:mod:`aero_opt.core.frame`); a model in another frame must do the same.
    """

    accepts_point_latents = True
    """Takes a latent per point, like :class:`SDFDecoder` (the iso-surface's one-pass vertex gradients)."""

    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, latent: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Signed distances (N,) at points x (N, 3) for latent (D,) or (N, D): the wrapped decoder at (x, |y|, z)."""
        return self.decoder(latent, torch.cat([x[:, :1], x[:, 1:2].abs(), x[:, 2:]], dim=1))


def config_dict(cfg: DecoderConfig) -> dict[str, object]:
    """JSON-ready decoder configuration (stored in checkpoints)."""
    return asdict(cfg)


def clamped_l1(pred: torch.Tensor, target: torch.Tensor, clamp: float) -> torch.Tensor:
    """DeepSDF's reconstruction loss: mean |clamp(pred, δ) − clamp(target, δ)| over (N,) signed distances
    (normalized units), δ = ``clamp``; a scalar tensor."""
    return (pred.clamp(-clamp, clamp) - target.clamp(-clamp, clamp)).abs().mean()


def load_model(run_dir: Path) -> tuple[SDFDecoder, torch.Tensor, dict[str, Any]]:
    """Decoder (eval mode), latent codes (K, D) and the checkpoint dict of a training run."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.is_file():
        raise AeroOptError(f"{run_dir}: no checkpoint.pt (train one with `aero-opt train-sdf`)")
    ck = load_torch(path, ("decoder_config", "decoder", "latents"))
    dec = SDFDecoder(DecoderConfig(**ck["decoder_config"]))
    load_weights(dec, ck["decoder"], path)
    dec.eval()
    return dec, ck["latents"].detach(), ck


def grid_bounds(car_frame: bool) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Extraction bounds: the car box for cars, the cube [-1, 1]³ otherwise."""
    return CAR_BOUNDS if car_frame else ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))
