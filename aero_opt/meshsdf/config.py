"""Settings of the implicit shape model's training-side commands, apart from the trainers so a config can be read
without importing training code: DeepSDF training and latent fitting (YAML section ``train_sdf``), fine-tuning
through the iso-surface (``finetune``) and the topology demonstration (``topology``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from aero_opt.core.settings import at_least, positive
from aero_opt.meshsdf.decoder import DecoderConfig


@dataclass(frozen=True)
class TrainSDFConfig:
    """DeepSDF training settings (YAML section ``train_sdf``)."""

    epochs: int = at_least(1, 200)
    """Passes over all shapes."""
    shapes_per_batch: int = 16
    """Shapes per optimization step."""
    points_per_shape: int = 2048
    """Samples per shape per step."""
    lr_decoder: float = 5e-4
    """Adam learning rate of the decoder."""
    lr_latent: float = 1e-3
    """Adam learning rate of the latent codes."""
    lr_halve_every: int = 80
    """Halve both learning rates every this many epochs."""
    clamp: float = 0.1
    """δ: distances are clamped to [-δ, δ] in the loss (normalized units)."""
    code_reg: float = 1e-4
    """Weight of the latent-code regularization."""
    init_std: float = 0.01
    """Std of the initial latent codes."""
    checkpoint_every: int = 10
    """Epochs between checkpoints."""
    seed: int = 0
    """Seed of initialization and sampling."""
    fit_steps: int = at_least(1, 800)
    """Adam steps when fitting a latent to a new shape (frozen decoder)."""
    fit_lr: float = positive(5e-3)
    """Learning rate of the latent fit."""
    eval_resolution: int = 64
    """Grid points per axis for the reconstruction report."""


@dataclass(frozen=True)
class FitConfig:
    """Fitting a trained decoder's latent code to a mesh, ``aero-opt fit`` (YAML section ``fit``)."""

    samples: int = at_least(1, 100_000)
    """SDF samples drawn around the mesh."""
    init: str = field(default="mean", metadata={"choices": ("mean", "nearest")})
    """Start code: the mean training code (DeepSDF's start) or the training code that matches the mesh's samples
    best (:func:`aero_opt.meshsdf.fit.nearest_code`; measured no better from 200 steps on: ``benchmarks/fit.json``)."""
    probes: int = at_least(16, 512)
    """Samples on which every training code is scored to find the nearest one."""
    steps: int | None = at_least(1, 200)
    """Adam steps; None: the decoder's own ``train_sdf.fit_steps`` (recorded in its checkpoint; 800 for the shipped
    decoder, which 200 match: ``benchmarks/fit.json``)."""
    lr: float | None = positive(None)
    """Learning rate; None: the decoder's own ``train_sdf.fit_lr``."""

    def applied_to(self, tcfg: TrainSDFConfig) -> TrainSDFConfig:
        """The decoder's training settings with this fit's steps and learning rate where they are set."""
        return replace(tcfg, fit_steps=tcfg.fit_steps if self.steps is None else self.steps,
                       fit_lr=tcfg.fit_lr if self.lr is None else self.lr)


@dataclass(frozen=True)
class FinetuneConfig:
    """Settings of the fine-tuning (YAML section ``finetune``)."""

    arm: str = field(default="meshsdf", metadata={"choices": ("meshsdf", "deepsdf")})
    """``meshsdf``: Chamfer-L2 of points on the extracted mesh, through the iso-surface; ``deepsdf``: the control,
    DeepSDF's own clamped L1 on the shape's SDF samples (same shapes in the same order, same step count and learning
    rates), so a gain can be attributed to differentiating through marching cubes rather than to more training."""
    epochs: int = at_least(1, 2)
    """Passes over the training shapes (one shape per step)."""
    lr_decoder: float = 1e-5
    """Adam learning rate of the decoder weights."""
    lr_latent: float = 1e-4
    """Adam learning rate of the training codes."""
    points: int = 5000
    """Points drawn on the extracted mesh per step and ground-truth points used per step (``meshsdf``), or SDF
    samples per step (``deepsdf``)."""
    resolution: int = 64
    """Grid points per axis of the extraction."""
    eval_train: int = 16
    """Training shapes in the before/after report."""
    seed: int = 0


@dataclass(frozen=True)
class TopologyConfig:
    """Settings of the topology demonstration (YAML section ``topology``)."""

    resolution: int = 64
    """Grid points per axis over [-1, 1]³ (the paper: 64)."""
    image_size: int = 128
    """Silhouette size in pixels (the paper: 512² on a GPU)."""
    sigma: float = 0.7
    """Silhouette edge softness (pixels)."""
    iters: int = at_least(1, 100)
    """Adam steps on the latent (the paper: 100)."""
    lr: float = positive(0.05)
    """Adam learning rate (the paper: 5e-2)."""
    decoder: DecoderConfig = field(default_factory=lambda: DecoderConfig(
        latent_size=2, hidden=128, layers=8, inject_at=4, fourier_degree=5, dropout=0.0, weight_norm=True))
    train: TrainSDFConfig = field(default_factory=lambda: TrainSDFConfig(
        epochs=1500, shapes_per_batch=2, points_per_shape=8192, lr_halve_every=500, checkpoint_every=100,
        eval_resolution=64))
    samples: int = 200_000
    """SDF samples per shape."""
    fraction_uniform: float = 0.4
    """Share of samples drawn uniformly in the cube: with two very different shapes, space far from one shape's
    surface (where the other one lives) must be constrained too, or the decoder leaves floating blobs there."""
    blend_weight: float = 1.0
    """Weight of the latent-blend term (:class:`aero_opt.meshsdf.topology.BlendLoss`): codes on the line through
    Spot's and Bob's are trained to give the blend of their signed distances, so the latent segment the
    optimization travels holds one smooth morph. 0: the paper's decoder (no such term), whose segment holds
    floating components and handles between the two codes."""
    blend_range: tuple[float, float] = (-0.2, 1.3)
    """Blend parameters t drawn uniformly from this range (0: Spot, 1: Bob; beyond: the overshoot of Adam)."""
