"""How predictable is the dataset's Cd from the shape? Baselines on the exact design parameters of each car.

    .venv/bin/python scripts/cd_from_design_params.py

Every dataset car stores the parameters of the parametric family that made it (21 numbers). Ridge regression and a
Gaussian process (RBF kernel, length scale and noise chosen on the validation split) fitted on the training cars
predict the test cars' solver Cd. This bounds what 250 cars can teach about Cd: a mesh model has to discover these
parameters itself. Writes docs/validation/cd_baselines.json.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from aero_opt.atomic import write_json_atomic
from aero_opt.dataset import load_car, split_names
from surrogate.evaluate import r2_score

ROOT = Path(__file__).resolve().parent.parent


def _design(data: Path, names: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(parameter names, (N, P) parameters, (N,) solver Cd) of dataset cars."""
    rows, cds, keys = [], [], None
    for name in names:
        car = load_car(data / f"{name}.npz")
        p = car.params
        keys = keys or sorted(k for k, v in p.items() if isinstance(v, (int, float)))
        rows.append([float(p[k]) for k in keys])
        cds.append(car.cd)
    return keys or [], np.array(rows), np.array(cds)


def ridge(x: np.ndarray, y: np.ndarray, xt: np.ndarray, lam: float) -> np.ndarray:
    """Ridge regression (unpenalized intercept) fitted on (x, y), predicted at xt."""
    mean = y.mean()
    w = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ (y - mean))
    return xt @ w + mean


def gp(x: np.ndarray, y: np.ndarray, xt: np.ndarray, length: float, noise: float) -> np.ndarray:
    """Posterior mean of a GP with an RBF kernel (unit variance, constant mean) and white noise (in units of the
    kernel variance)."""
    k = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / (2 * length**2)) + noise * np.eye(len(x))
    kt = np.exp(-((xt[:, None] - x[None]) ** 2).sum(-1) / (2 * length**2))
    mean = y.mean()
    return mean + kt @ np.linalg.solve(k, y - mean)


def _scores(y: np.ndarray, yh: np.ndarray) -> dict[str, float]:
    return {"r2": r2_score(y, yh), "spearman": float(spearmanr(y, yh).statistic), "mae": float(np.abs(y - yh).mean())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dataset")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "validation" / "cd_baselines.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    keys, x, y = _design(args.data, split_names(args.data, "train"))
    _, xv, yv = _design(args.data, split_names(args.data, "val"))
    _, xt, yt = _design(args.data, split_names(args.data, "test"))
    mu, sd = x.mean(0), x.std(0) + 1e-12
    x, xv, xt = (x - mu) / sd, (xv - mu) / sd, (xt - mu) / sd
    lam = max((10.0**e for e in range(-2, 4)), key=lambda c: r2_score(yv, ridge(x, y, xv, c)))
    length, noise = max(((ell, s) for ell in (1, 2, 3, 4, 6, 8) for s in (1e-3, 1e-2, 0.05, 0.1, 0.3)),
                        key=lambda c: r2_score(yv, gp(x, y, xv, *c)))
    xa, ya = np.concatenate([x, xv]), np.concatenate([y, yv])  # refit on train + val with the chosen settings
    out = {
        "command": "python scripts/cd_from_design_params.py " + " ".join(sys.argv[1:]),
        "parameters": keys, "train_cars": len(y), "val_cars": len(yv), "test_cars": len(yt),
        "test_cd_std": float(yt.std()),
        "mean_predictor": {"r2": r2_score(yt, np.full_like(yt, ya.mean())),
                           "mae": float(np.abs(yt - ya.mean()).mean())},
        "ridge": {"lambda": lam, **_scores(yt, ridge(xa, ya, xt, lam))},
        "gaussian_process": {"length_scale": length, "noise": noise, **_scores(yt, gp(xa, ya, xt, length, noise))},
    }
    write_json_atomic(args.out, out)
    logging.info("test Cd from design parameters: ridge R2 %.3f / Spearman %.3f, GP R2 %.3f / Spearman %.3f",
                 out["ridge"]["r2"], out["ridge"]["spearman"], out["gaussian_process"]["r2"],
                 out["gaussian_process"]["spearman"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
