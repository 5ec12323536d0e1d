"""How predictable is the dataset's Cd from the shape? Baselines on the exact design parameters of each car.

    .venv/bin/python scripts/cd_from_design_params.py

Every dataset car stores the parameters of the parametric family that made it (21 numbers and its body style).
Ridge regression and a Gaussian process (RBF kernel, length scale and noise chosen on the validation split) fitted
on the training cars predict the test cars' solver Cd. This bounds what the training cars can teach about Cd: a
mesh model has to discover these parameters itself. The learning curve repeats the GP (settings re-chosen on the
validation split) with the first n training cars, to show how the attainable accuracy grows with the dataset; the
noise probe adds label noise of the measured size (docs/validation/label_noise.json) to the training Cd. Writes
docs/validation/cd_baselines.json and docs/validation/cd_learning_curve.png.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from aero_opt.atomic import write_json_atomic
from aero_opt.dataset import load_car, split_names
from surrogate.evaluate import r2_score

ROOT = Path(__file__).resolve().parent.parent


def _design(data: Path, splits: list[list[str]]) -> tuple[list[str], list[tuple[np.ndarray, np.ndarray]]]:
    """Design parameters and solver Cd of dataset cars, per list of names.

    Returns:
        The feature names (numbers and flags as they are, the body style one-hot) and per list of names its
        ((N, P) features, (N,) Cd).
    """
    cars = [[load_car(data / f"{name}.npz") for name in names] for names in splits]
    every = [c.params for group in cars for c in group]
    numeric = sorted(k for k, v in every[0].items() if isinstance(v, (int, float)))
    styles = sorted({p["style"] for p in every})
    keys = numeric + [f"style={s}" for s in styles]
    out = [(np.array([[float(c.params[k]) for k in numeric] + [float(c.params["style"] == s) for s in styles]
                      for c in group]), np.array([c.cd for c in group])) for group in cars]
    return keys, out


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


def tuned_gp(x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, xt: np.ndarray
             ) -> tuple[tuple[float, float], np.ndarray]:
    """GP whose (length scale, noise) maximize the validation R², refitted on train + validation.

    Args:
        x, y: training parameters (N, P) (standardized) and Cd (N,); xv, yv: validation; xt: (M, P) to predict.

    Returns:
        The chosen (length scale, noise) and the predicted Cd (M,) at ``xt``.
    """
    length, noise = max(((ell, s) for ell in (1, 2, 3, 4, 6, 8) for s in (1e-3, 1e-2, 0.05, 0.1, 0.3)),
                        key=lambda c: r2_score(yv, gp(x, y, xv, *c)))
    return (length, noise), gp(np.concatenate([x, xv]), np.concatenate([y, yv]), xt, length, noise)


def _plot_curve(curve: list[dict[str, float]], ceiling: float | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [c["train_cars"] for c in curve]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(n, [c["r2"] for c in curve], "o-", label="GP on design parameters: test R²")
    ax.plot(n, [c["spearman"] for c in curve], "s--", label="… test Spearman")
    ax.axhline(0.95, color="k", lw=0.8, ls=":", label="issue target 0.95")
    if ceiling is not None:
        ax.axhline(ceiling, color="r", lw=0.8, label=f"R² ceiling of the test labels' noise ({ceiling:.2f})")
    ax.set_xlabel("training cars (plus the validation cars)")
    ax.set_ylabel("score on the test split")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _scores(y: np.ndarray, yh: np.ndarray) -> dict[str, float]:
    return {"r2": r2_score(y, yh), "spearman": float(spearmanr(y, yh).statistic), "mae": float(np.abs(y - yh).mean())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dataset")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "validation" / "cd_baselines.json")
    ap.add_argument("--noise-report", type=Path, default=ROOT / "docs" / "validation" / "label_noise.json",
                    help="label-noise report of scripts/average_labels.py (R2 ceiling, noise probe)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    keys, ((x, y), (xv, yv), (xt, yt)) = _design(args.data, [split_names(args.data, s)
                                                             for s in ("train", "val", "test")])
    mu, sd = x.mean(0), x.std(0) + 1e-12
    x, xv, xt = (x - mu) / sd, (xv - mu) / sd, (xt - mu) / sd
    lam = max((10.0**e for e in range(-2, 4)), key=lambda c: r2_score(yv, ridge(x, y, xv, c)))
    (length, noise), gp_pred = tuned_gp(x, y, xv, yv, xt)
    xa, ya = np.concatenate([x, xv]), np.concatenate([y, yv])  # refit on train + val with the chosen settings
    sizes = sorted({n for n in (50, 100, 150, 200, 300, 400, 600, 800) if n < len(y)} | {len(y)})
    curve = [{"train_cars": n, **_scores(yt, tuned_gp(x[:n], y[:n], xv, yv, xt)[1])} for n in sizes]
    ceiling, probe = None, None
    if args.noise_report.is_file():
        noise = json.loads(args.noise_report.read_text())
        ceiling, sigma = noise["r2_ceiling_averaged"], noise["cd_noise_std_one_run"]
        rng = np.random.default_rng(0)
        probe = {"added_noise_std": {f"{m:g} x one-run noise": float(np.mean(
            [_scores(yt, tuned_gp(x, y + rng.normal(0.0, m * sigma, len(y)), xv, yv, xt)[1])["r2"]
             for _ in range(5)])) for m in (1.0, 1.41)},
            "note": "GP test R2 (mean of 5 draws) after adding Gaussian noise to the training Cd: 1 x doubles the "
                    "one-run noise variance, 1.41 x triples it; how much training-label noise costs"}
    out = {
        "command": "python scripts/cd_from_design_params.py " + " ".join(sys.argv[1:]),
        "parameters": keys, "train_cars": len(y), "val_cars": len(yv), "test_cars": len(yt),
        "test_cd_std": float(yt.std()),
        "mean_predictor": {"r2": r2_score(yt, np.full_like(yt, ya.mean())),
                           "mae": float(np.abs(yt - ya.mean()).mean())},
        "ridge": {"lambda": lam, **_scores(yt, ridge(xa, ya, xt, lam))},
        "gaussian_process": {"length_scale": length, "noise": noise, **_scores(yt, gp_pred)},
        "gp_learning_curve": curve,
        "gp_training_label_noise_probe": probe,
        "note": "test labels: the averaged ones where label_noise.json says so; the learning curve uses the first n "
                "training cars (in split order) and every validation car for the choice of settings and the refit",
    }
    write_json_atomic(args.out, out)
    _plot_curve(curve, ceiling, args.out.with_name("cd_learning_curve.png"))
    logging.info("test Cd from design parameters: ridge R2 %.3f / Spearman %.3f, GP R2 %.3f / Spearman %.3f",
                 out["ridge"]["r2"], out["ridge"]["spearman"], out["gaussian_process"]["r2"],
                 out["gaussian_process"]["spearman"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
