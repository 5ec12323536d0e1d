"""Surrogate training settings (YAML section ``train_surrogate``), apart from the trainer so a config can be read
without importing training code. Why each default is what it is: ``docs/surrogate_training.md``."""

from __future__ import annotations

from dataclasses import dataclass

from aero_opt.core.settings import at_least


@dataclass(frozen=True)
class TrainSurrogateConfig:
    """Surrogate training settings (YAML section ``train_surrogate``)."""

    epochs: int = at_least(1, 40)
    """Maximum epochs (one epoch = one pass over the training cars)."""
    lr: float = at_least(0.0, 2e-3)
    """Adam learning rate (cosine-decayed to lr/20)."""
    weight_decay: float = 0.0
    """Decoupled weight decay (AdamW: each step shrinks the weights by ``lr * weight_decay``) on the SplineConv,
    root and linear weight matrices, not on the biases. 0: plain Adam."""
    shear_weight: float = 0.5
    """Weight of the wall-shear loss relative to the Cp loss."""
    drag_weight: float = 1.0
    """Weight of the squared Cd error (integrated predicted vs CFD fields). Drag is a small difference of large
    front and rear pressure forces: a per-vertex loss alone fits the big stagnation and suction regions and leaves
    the base pressure behind the car, which decides the ranking of cars, nearly unconstrained."""
    ema_decay: float = 0.998
    """Decay per step of the weight average that is validated and shipped (0: the raw weights); 0.998 averages
    over ~500 steps."""
    patience: int = 10
    """Early stopping: epochs without a better validation loss."""
    seed: int = 0
    """Shuffling and initialization seed."""
    bf16: bool | None = None
    """Mixed precision: the dense matmuls in bfloat16 (the sparse products, the loss and the weights stay
    float32). ``None``: only where the CPU runs bfloat16 natively (:func:`~surrogate.spline_conv.resolve_bf16`)."""
    drag_loss: str = "parts"
    """What the drag term compares: ``parts`` — the pressure and viscous parts of the predicted Cd each against
    the CFD's, so the shear head cannot correct the pressure integral; ``total`` — the Cd of the predicted
    pressure and shear together."""
    cars_per_step: int | None = None
    """Cars whose gradients are averaged in one Adam step; None: one per training process (1 without torchrun).
    Under ``torchrun`` with K processes it must be a multiple of K: each process takes its share of every step."""
    mirror_augment: bool = False
    """Each step trains on the car or, with probability 1/2, on its mirror image in y = 0
    (:func:`surrogate.samples.mirror_sample`): the same symmetric body with its tessellation oriented the other
    way, which marching cubes does not do by itself. A ``mirror_canonical`` model (the default) predicts mirror
    images exactly, so this changes nothing for it."""
