"""Statistics of repeated measurements: the mean and interval of K runs, one run's pooled noise, a relative change
with its interval, and a bootstrap over cars that carries each car's own measurement noise."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from aero_opt.core.errors import AeroOptError


@dataclass(frozen=True)
class RunStats:
    """Mean, spread and 95% interval of K repeated runs of one quantity (e.g. Cd over grid shifts)."""

    mean: float
    std: float | None
    """Sample standard deviation of one run (ddof 1); None with fewer than two runs."""
    half_width: float | None
    """Half width of the 95% confidence interval of the mean (Student t, K - 1 degrees of freedom); None with
    fewer than two runs."""
    n: int
    """Runs that entered the mean."""

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready fields."""
        return {"mean": self.mean, "std": self.std, "ci95": self.half_width, "n": self.n}


def run_stats(values: Iterable[float]) -> RunStats:
    """:class:`RunStats` of the finite ``values`` (a run that failed is passed as NaN and left out).

    Raises:
        AeroOptError: no finite value.
    """
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
    if len(v) == 0:
        raise AeroOptError("no successful run to average")
    if len(v) == 1:
        return RunStats(float(v[0]), None, None, 1)
    std = float(v.std(ddof=1))
    return RunStats(float(v.mean()), std, float(stats.t.ppf(0.975, len(v) - 1) * std / np.sqrt(len(v))), len(v))


def pooled_std(table: np.ndarray, remove_column_means: bool = False) -> float | None:
    """One run's noise std from repeated runs: the pooled within-row std of a (shapes, runs) table.

    Args:
        table: (N, K) values (e.g. Cd), one row per shape, one column per run; NaN marks a missing run (rows
            with fewer than two runs add nothing).
        remove_column_means: also remove each column's mean offset from the grand mean (a two-way layout: the
            systematic effect of a run setting, e.g. a resolution change, is not counted as noise); needs a
            table without NaN.

    Returns:
        sqrt(residual sum of squares / degrees of freedom), or None when no row has two runs.
    """
    t = np.asarray(table, np.float64)
    if remove_column_means:
        if not np.isfinite(t).all():
            raise AeroOptError("pooled_std: remove_column_means needs a table without missing runs")
        resid = t - t.mean(axis=1, keepdims=True)
        resid = resid - resid.mean(axis=0, keepdims=True)
        dof = (t.shape[0] - 1) * (t.shape[1] - 1)
        return float(np.sqrt(np.sum(resid**2) / dof)) if dof > 0 else None
    ss, dof = 0.0, 0
    for row in t:
        v = row[np.isfinite(row)]
        if len(v) >= 2:
            ss += float(((v - v.mean()) ** 2).sum())
            dof += len(v) - 1
    return float(np.sqrt(ss / dof)) if dof else None


def relative_change(initial: dict[str, Any], final: dict[str, Any]) -> tuple[float, float | None]:
    """``final`` / ``initial`` − 1 of two :meth:`RunStats.as_dict` means, and the half width of its 95% interval
    from both intervals (first-order propagation; None when either has none)."""
    change = final["mean"] / initial["mean"] - 1.0
    if final.get("ci95") is None or initial.get("ci95") is None:
        return change, None
    return change, float((1.0 + change) * np.hypot(final["ci95"] / final["mean"], initial["ci95"] / initial["mean"]))


@dataclass(frozen=True)
class BootstrapResult:
    """A mean over units (e.g. cars) with its bootstrap 95% interval."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def significant(self) -> bool:
        """Whether the 95% interval excludes zero."""
        return self.low > 0.0 or self.high < 0.0

    def as_dict(self) -> dict[str, float | int | bool]:
        """JSON-ready fields."""
        return {"mean": self.mean, "ci95_low": self.low, "ci95_high": self.high, "n": self.n,
                "significant": self.significant}


def bootstrap_mean(values: Iterable[float], errors: Iterable[float | None] | None = None, n_boot: int = 20000,
                   seed: int = 0) -> BootstrapResult:
    """Mean of per-unit values with a 95% percentile-bootstrap interval over the units, each resampled value also
    redrawn within its own measurement error.

    Args:
        values: (N,) one value per unit (e.g. a car's drag change, or a paired difference between two methods on
            that car).
        errors: (N,) standard error of each value (e.g. from its repeated runs); None entries or None: no
            measurement noise for that unit.
        n_boot: bootstrap replicates; seed: random seed (the result is reproducible).

    Raises:
        AeroOptError: no value.
    """
    v = np.asarray(list(values), np.float64)
    if len(v) == 0:
        raise AeroOptError("bootstrap of no value")
    se = np.zeros_like(v) if errors is None else np.asarray([0.0 if e is None else e for e in errors], np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v), size=(n_boot, len(v)))
    draws = v[idx] + rng.standard_normal(idx.shape) * se[idx]
    means = draws.mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return BootstrapResult(float(v.mean()), float(low), float(high), len(v))
