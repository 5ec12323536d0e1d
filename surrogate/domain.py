"""Is a mesh inside the surrogate's training data? A nearest-neighbour score in the model's own feature space.

Each car is summarized by the model's embedding (:meth:`surrogate.splinecnn.PressureSplineCNN.forward_with_embedding`:
the area-weighted surface mean of every residual block's output, ``blocks · width`` numbers). The training cars'
embeddings, standardized per feature, are kept with the model; a new car's **domain score** is the distance from its
standardized embedding to its k-th nearest training car, divided by the median of that distance among the training
cars themselves (each left out of its own neighbours). A score near 1 is a typical training car; the threshold is
the 99th percentile of the training cars' own scores. On the shipped model the 49 held-out test cars all score
below it and the three real cars, which it predicts poorly, two to three times above (``domain_score`` in
``data/models/surrogate/metrics_*.json``): a car outside gets a warning that its pressure and Cd are an
extrapolation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aero_opt.core.errors import AeroOptError


def _kth_distance(query: np.ndarray, points: np.ndarray, k: int, leave_out_self: bool = False) -> np.ndarray:
    """Distance (M,) from each query row (M, D) to its k-th nearest row of ``points`` (N, D)."""
    d2 = (query**2).sum(1)[:, None] + (points**2).sum(1)[None] - 2.0 * query @ points.T
    d = np.sqrt(np.maximum(d2, 0.0))
    if leave_out_self:
        np.fill_diagonal(d, np.inf)
    return np.partition(d, k - 1, axis=1)[:, k - 1]


@dataclass(frozen=True)
class TrainingDomain:
    """The training cars' standardized embeddings and the scale of their nearest-neighbour distances."""

    mean: np.ndarray
    """(D,) mean embedding of the training cars."""
    std: np.ndarray
    """(D,) their per-feature standard deviation (floored at 1e-3 of the median, so a dead feature cannot
    dominate)."""
    points: np.ndarray
    """(N, D) standardized training embeddings."""
    k: int
    """Which nearest neighbour's distance is the score."""
    scale: float
    """Median k-th-neighbour distance among the training cars (each left out of its own neighbours)."""
    threshold: float
    """Score above which a car counts as outside: the given quantile of the training cars' own scores."""

    @classmethod
    def fit(cls, embeddings: np.ndarray, k: int = 5, quantile: float = 0.99) -> TrainingDomain:
        """Domain of training embeddings (N, D), N ≥ 2; with N ≤ k the (N − 1)-th neighbour is used."""
        x = np.asarray(embeddings, np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise AeroOptError(f"a training domain needs at least 2 embeddings, got shape {x.shape}")
        k = min(k, len(x) - 1)
        if not np.isfinite(x).all():
            raise AeroOptError("training embeddings contain NaN or inf")
        mean, std = x.mean(0), x.std(0)
        std = np.maximum(std, 1e-3 * max(float(np.median(std)), 1e-12))
        points = (x - mean) / std
        own = _kth_distance(points, points, k, leave_out_self=True)
        scale = float(np.median(own))
        return cls(mean, std, points, k, scale, float(np.quantile(own / scale, quantile)))

    def score(self, embedding: np.ndarray) -> np.ndarray:
        """Domain scores (M,) of embeddings (M, D) or () of one embedding (D,): k-th-neighbour distance to the
        training cars over :attr:`scale`."""
        e = np.asarray(embedding, np.float64)
        if e.shape[-1] != self.points.shape[1]:
            raise AeroOptError(f"embedding has {e.shape[-1]} features, the training domain {self.points.shape[1]}")
        q = (np.atleast_2d(e) - self.mean) / self.std
        s = _kth_distance(q, self.points, self.k) / self.scale
        return s if e.ndim == 2 else s[0]

    def to_dict(self) -> dict[str, Any]:
        """Plain arrays and numbers for a checkpoint (float32 points)."""
        return {"mean": self.mean, "std": self.std, "points": self.points.astype(np.float32), "k": self.k,
                "scale": self.scale, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingDomain:
        """Inverse of :meth:`to_dict`."""
        return cls(np.asarray(d["mean"], np.float64), np.asarray(d["std"], np.float64),
                   np.asarray(d["points"], np.float64), int(d["k"]), float(d["scale"]), float(d["threshold"]))
