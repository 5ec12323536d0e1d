"""How predictable is the dataset's Cd from the shape? Baselines on the exact design parameters of each car.

    .venv/bin/python scripts/studies/cd_from_design_params.py

Every dataset car stores the parameters of the parametric family that made it (21 numbers and its body style). Ridge
regression (penalty chosen on the validation split) and a Gaussian process (one RBF length scale per parameter,
fitted by maximum marginal likelihood) fitted on the training and validation cars predict the test cars' solver Cd.
This bounds what the training cars can teach about Cd: a mesh model has to discover these parameters itself. The
learning curve refits the GP with the first n training cars, to show how the attainable accuracy grows with the
dataset; the noise probe adds label noise of the measured size (docs/validation/label_noise.json) to the training
Cd, and the averaging probe fits the training cars whose labels average three CFD runs
(scripts/pipeline/average_labels.py) once on a single run's Cd and once on the mean. With the shipped surrogate's
test metrics (``--surrogate-metrics``) it also reports how the GP's and the surrogate's per-car Cd errors correlate
over the test cars: if models this different miss the same cars, what they miss is in the labels or in the flow, not
in either model. Writes docs/validation/cd_baselines.json and docs/validation/cd_learning_curve.png.

``--error-trend TRAIN_METRICS TEST_METRICS`` instead fits a surrogate's total Cd errors on its training cars
linearly on the standardized design parameters and style, subtracts the fit from its test cars' errors and writes
docs/validation/error_trend.json (``--out``): if the test error barely moves, the missed Cd is not a smooth trend in
the shape parameters that a global input could supply.

    .venv/bin/python scripts/studies/cd_from_design_params.py --error-trend \
        docs/validation/run10_metrics_train_654cars.json docs/validation/run10_metrics_test_79cars.json \
        --out docs/validation/error_trend.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from aero_opt.core.atomic import recorded_path, write_json_atomic
from aero_opt.core.errors import AeroOptError
from aero_opt.core.progress import progress_bar
from aero_opt.geometry.dataset import load_car, split_names
from surrogate.evaluate import r2_score, score_cd

ROOT = Path(__file__).resolve().parents[2]


def _design(data: Path, splits: list[list[str]]
            ) -> tuple[list[str], list[tuple[np.ndarray, np.ndarray, list[list[float]]]]]:
    """Design parameters and solver Cd of dataset cars, per list of names.

    Returns:
        The feature names (numbers and flags as they are, the body style one-hot) and per list of names its
        ((N, P) features, (N,) Cd as stored, per car the Cd of each CFD run its label averages: one value for a
        car with plain one-run labels).
    """
    cars = [[load_car(data / f"{name}.npz") for name in names] for names in splits]
    every = [c.params for group in cars for c in group]
    numeric = sorted(k for k, v in every[0].items() if isinstance(v, (int, float)))
    styles = sorted({p["style"] for p in every})
    keys = numeric + [f"style={s}" for s in styles]
    out = [(np.array([[float(c.params[k]) for k in numeric] + [float(c.params["style"] == s) for s in styles]
                      for c in group]), np.array([c.cd for c in group]),
            [[float(r["Cd"]) for r in c.case.get("label_runs") or [{"Cd": c.cd}]] for c in group])
           for group in cars]
    return keys, out


def averaging_probe(x: np.ndarray, runs: list[list[float]], xt: np.ndarray, yt: np.ndarray, k: int = 3
                    ) -> dict[str, object] | None:
    """What averaging the training labels over k CFD runs is worth, measured on the cars that have k runs.

    The GP is fitted on the same cars twice over: once per single run (each run's Cd as the label; the scores
    are the mean over the k runs) and once on the k-run mean, and both predict the test cars.

    Args:
        x: (N, P) standardized parameters of the training cars; runs: per car the Cd of each of its runs;
        xt: (M, P) test parameters; yt: (M,) test Cd.

    Returns:
        ``cars``, ``one_run`` and ``averaged`` test scores (R², Spearman, MAE), or None with fewer than 20 cars
        that have k runs.
    """
    have = [i for i, r in enumerate(runs) if len(r) == k]
    if len(have) < 20:
        return None
    xs, cd = x[have], np.array([runs[i] for i in have])
    single = [score_cd(yt, ard_gp(xs, cd[:, j], xt)[1]) for j in range(k)]
    return {"cars": len(have),
            "one_run": {m: float(np.mean([s[m] for s in single])) for m in single[0]},
            "averaged": score_cd(yt, ard_gp(xs, cd.mean(1), xt)[1]),
            "note": f"GP fitted on the train + val cars whose labels average {k} grid-shifted runs, once on each "
                    "single run's Cd (scores: mean over the runs) and once on their mean; the gain is what "
                    "averaging the training labels is worth on real labels, at this number of cars"}


def ridge(x: np.ndarray, y: np.ndarray, xt: np.ndarray, lam: float) -> np.ndarray:
    """Ridge regression (unpenalized intercept) fitted on (x, y), predicted at xt."""
    mean = y.mean()
    w = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ (y - mean))
    return xt @ w + mean


def ard_gp(x: np.ndarray, y: np.ndarray, xt: np.ndarray, steps: int = 200) -> tuple[dict[str, object], np.ndarray]:
    """GP with one RBF length scale per parameter (ARD), fitted by maximizing the log marginal likelihood.

    Signal variance, noise variance and the P length scales start at (var y, var y / 10, 3) and are optimized in
    log space with L-BFGS (float64), each standard deviation kept within 1e-3 to 1e3 times the label std and each
    length scale within e^±7; the constant mean is the training mean.

    Args:
        x: (N, P) standardized training parameters; y: (N,) Cd; xt: (M, P) points to predict.
        steps: L-BFGS iterations.

    Returns:
        The fitted hyper-parameters (``length_scales`` per parameter, ``signal_std``, ``noise_std``, both in Cd
        units) and the posterior mean (M,) at ``xt``.
    """
    import torch

    xs, ys, xq = (torch.as_tensor(a, dtype=torch.float64) for a in (x, y, xt))
    mean = ys.mean()
    r = ys - mean
    var = float(r.var())
    log_len = torch.full((x.shape[1],), float(np.log(3.0)), dtype=torch.float64, requires_grad=True)
    log_sig = torch.tensor(0.5 * np.log(var), dtype=torch.float64, requires_grad=True)
    log_noise = torch.tensor(0.5 * np.log(var / 10), dtype=torch.float64, requires_grad=True)
    params = [log_len, log_sig, log_noise]
    lo = 0.5 * np.log(var) - 7.0  # stds kept within 1e-3 to 1e3 times the label std: finite line searches

    def hyper() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return log_len.clamp(-7.0, 7.0).exp(), log_sig.clamp(lo, lo + 14.0).exp(), log_noise.clamp(lo, lo + 14.0).exp()

    def kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        length, sig, _ = hyper()
        return sig**2 * torch.exp(-0.5 * (((a[:, None] - b[None]) / length) ** 2).sum(-1))

    def covariance() -> torch.Tensor:
        return kernel(xs, xs) + (hyper()[2] ** 2 + 1e-10) * torch.eye(len(xs), dtype=torch.float64)

    opt = torch.optim.LBFGS(params, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        chol = torch.linalg.cholesky(covariance())
        alpha = torch.cholesky_solve(r[:, None], chol)[:, 0]
        nll = 0.5 * (r @ alpha) + torch.log(torch.diagonal(chol)).sum()
        nll.backward()
        return nll

    opt.step(closure)
    with torch.no_grad():
        chol = torch.linalg.cholesky(covariance())
        pred = mean + kernel(xq, xs) @ torch.cholesky_solve(r[:, None], chol)[:, 0]
        length, sig, noise = hyper()
    return ({"length_scales": length.tolist(), "signal_std": float(sig), "noise_std": float(noise)}, pred.numpy())


def surrogate_comparison(names: list[str], yt: np.ndarray, gp_pred: np.ndarray, metrics: dict[str, Any]
                         ) -> dict[str, object]:
    """How the GP's test Cd errors relate to a surrogate's (its ``eval-surrogate`` metrics with ``per_car`` rows).

    Args:
        names: the M test cars; yt: (M,) their solver Cd (the GP's labels); gp_pred: (M,) the GP's Cd;
        metrics: the surrogate's metrics dict.

    Returns:
        ``cars`` (the test cars both evaluated), ``error_correlation`` (Pearson r of the GP's error against the
        solver Cd and the surrogate's total Cd error against the Cd of the CFD fields on the mesh), the scores of
        ``gp`` and ``surrogate`` over those cars and of ``mean_of_both`` (the two predictions averaged, against the
        solver Cd).

    Raises:
        AeroOptError: the metrics have no ``per_car`` rows or no car in common with ``names``.
    """
    rows = {r["car"]: r for r in metrics.get("per_car") or []}
    keep = [i for i, n in enumerate(names) if n in rows]
    if not keep:
        raise AeroOptError("--surrogate-metrics: no per_car row for any test car")
    y, g = yt[keep], gp_pred[keep]
    s_pred = np.array([rows[names[i]]["cd_total_pred"] for i in keep])
    s_cfd = np.array([rows[names[i]]["cd_total_cfd"] for i in keep])
    return {"cars": len(keep), "error_correlation": float(np.corrcoef(g - y, s_pred - s_cfd)[0, 1]),
            "gp": score_cd(y, g), "surrogate": score_cd(s_cfd, s_pred), "mean_of_both": score_cd(y, (g + s_pred) / 2),
            "note": "error_correlation: Pearson r between the GP's Cd error (against the solver Cd it is fitted to) "
                    "and the surrogate's total Cd error (against the Cd of the CFD fields integrated on the mesh, as "
                    "eval-surrogate scores it); mean_of_both averages the two predictions (the GP needs the design "
                    "parameters, so this is a diagnostic, not a model for new meshes)"}


def _plot_curve(curve: list[dict[str, float]], ceiling: float | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [c["train_cars"] for c in curve]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(n, [c["r2"] for c in curve], "o-", label="GP (ARD) on design parameters: test R²")
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


def error_trend(data: Path, train_metrics: Path, test_metrics: Path) -> dict[str, Any]:
    """How much of a surrogate's Cd error is a linear trend in the design parameters (see the module docstring).

    Args:
        data: the dataset folder; train_metrics, test_metrics: ``eval-surrogate`` metrics with ``per_car`` rows on
            the training and test split.

    Returns:
        The error std on both splits, the in-sample share of the training error variance the fit explains, the
        test error std after subtracting the fit, and the coefficients (Cd per standard deviation).
    """
    rows = [json.loads(m.read_text())["per_car"] for m in (train_metrics, test_metrics)]
    keys, groups = _design(data, [[r["car"] for r in rs] for rs in rows])
    errs = [np.array([r["cd_total_pred"] - r["cd_total_cfd"] for r in rs]) for rs in rows]
    mu, sd = groups[0][0].mean(0), groups[0][0].std(0) + 1e-12
    a_tr, a_te = (np.c_[(g[0] - mu) / sd, np.ones(len(g[0]))] for g in groups)
    w, *_ = np.linalg.lstsq(a_tr, errs[0], rcond=None)
    return {"train_cars": len(errs[0]), "test_cars": len(errs[1]), "train_error_std": float(errs[0].std()),
            "train_variance_explained": float(1 - ((errs[0] - a_tr @ w) ** 2).mean() / errs[0].var()),
            "test_error_std": float(errs[1].std()), "test_error_std_after_trend": float((errs[1] - a_te @ w).std()),
            "coefficients": dict(zip(keys, map(float, w[:-1])))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dataset")
    ap.add_argument("--out", type=Path, default=None,
                    help="default docs/validation/cd_baselines.json (error_trend.json with --error-trend)")
    ap.add_argument("--noise-report", type=Path, default=ROOT / "docs" / "validation" / "label_noise.json",
                    help="label-noise report of scripts/pipeline/average_labels.py (R2 ceiling, noise probe)")
    ap.add_argument("--surrogate-metrics", type=Path,
                    default=ROOT / "data" / "models" / "surrogate" / "metrics_test.json",
                    help="eval-surrogate metrics.json whose per-car Cd errors to compare with the GP's "
                         "(skipped if absent)")
    ap.add_argument("--error-trend", type=Path, nargs=2, metavar=("TRAIN_METRICS", "TEST_METRICS"), default=None,
                    help="only fit a surrogate's training-car Cd errors on the design parameters (module docstring)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.out is None:
        args.out = ROOT / "docs" / "validation" / ("error_trend.json" if args.error_trend else "cd_baselines.json")
    if args.error_trend is not None:
        rep = {"command": "python scripts/studies/cd_from_design_params.py " + " ".join(sys.argv[1:]),
               **error_trend(args.data, *args.error_trend)}
        write_json_atomic(args.out, rep)
        logging.info("trend explains %.1f%% of the training error variance; test error std %.4f -> %.4f",
                     100 * rep["train_variance_explained"], rep["test_error_std"], rep["test_error_std_after_trend"])
        return 0
    test_names = split_names(args.data, "test")
    keys, ((x, y, runs), (xv, yv, runs_v), (xt, yt, _)) = _design(args.data, [split_names(args.data, s)
                                                             for s in ("train", "val")] + [test_names])
    mu, sd = x.mean(0), x.std(0) + 1e-12
    x, xv, xt = (x - mu) / sd, (xv - mu) / sd, (xt - mu) / sd
    lam = max((10.0**e for e in range(-2, 4)), key=lambda c: r2_score(yv, ridge(x, y, xv, c)))
    xa, ya = np.concatenate([x, xv]), np.concatenate([y, yv])  # final fits on train + val
    hyper, gp_pred = ard_gp(xa, ya, xt)
    sizes = sorted({n for n in (50, 100, 200, 300, 400, 600, 800) if n < len(y)} | {len(y)})
    curve = [{"train_cars": n, **score_cd(yt, ard_gp(np.concatenate([x[:n], xv]), np.concatenate([y[:n], yv]),
                                                   xt)[1])}
                 for n in progress_bar(sizes, desc="learning curve")]
    ceiling, probe = None, None
    if args.noise_report.is_file():
        report = json.loads(args.noise_report.read_text())
        sigma = report["cd_noise_std_one_run"]
        per_car = [report["per_car"][n]["r2_ceiling"] for n in test_names if n in report["per_car"]]
        ceiling = float(np.mean(per_car)) if len(per_car) == len(test_names) else None  # only if every car has one
        rng = np.random.default_rng(0)
        probe = {"added_noise_std": {f"{m:g} x one-run noise": float(np.mean(
            [score_cd(yt, ard_gp(xa, ya + rng.normal(0.0, m * sigma, len(ya)), xt)[1])["r2"]
             for _ in range(3)])) for m in progress_bar((1.0, 1.41), desc="noise probe")},
            "note": "GP test R2 (mean of 3 draws) after adding Gaussian noise to the training Cd: 1 x doubles the "
                    "one-run noise variance, 1.41 x triples it; how much training-label noise costs"}
    averaged = averaging_probe(np.concatenate([x, xv]), runs + runs_v, xt, yt)
    compared = None
    if args.surrogate_metrics.is_file():
        try:
            compared = surrogate_comparison(test_names, yt, gp_pred, json.loads(args.surrogate_metrics.read_text()))
        except AeroOptError as e:
            raise SystemExit(f"{args.surrogate_metrics}: {e}") from e
        compared = {"metrics": recorded_path(args.surrogate_metrics, ROOT), **compared}
    order = np.argsort(hyper["length_scales"])
    out = {
        "command": "python scripts/studies/cd_from_design_params.py " + " ".join(sys.argv[1:]),
        "parameters": keys, "train_cars": len(y), "val_cars": len(yv), "test_cars": len(yt),
        "test_cd_std": float(yt.std()),
        "mean_predictor": {"r2": r2_score(yt, np.full_like(yt, ya.mean())),
                           "mae": float(np.abs(yt - ya.mean()).mean())},
        "ridge": {"lambda": lam, **score_cd(yt, ridge(xa, ya, xt, lam))},
        "gaussian_process": {**score_cd(yt, gp_pred), "signal_std": hyper["signal_std"],
                             "noise_std": hyper["noise_std"],
                             "length_scales": {keys[i]: hyper["length_scales"][i] for i in order},
                             "note": "ARD RBF kernel fitted on train + val by maximum marginal likelihood; noise_std "
                                     "is the model's estimate of the training labels' Cd noise; a short length "
                                     "scale (standardized units) marks a parameter Cd depends on strongly"},
        "gp_learning_curve": curve,
        "gp_training_label_noise_probe": probe,
        "gp_averaged_training_labels_probe": averaged,
        "surrogate_comparison": compared,
        "gp_per_car": [{"car": n, "cd_cfd": float(c), "cd_gp": float(p)} for n, c, p in zip(test_names, yt, gp_pred)],
        "note": "test labels: as stored (averaged where scripts/pipeline/average_labels.py has run); the learning "
                "curve fits the first n training cars (in split order) plus every validation car",
    }
    write_json_atomic(args.out, out)
    _plot_curve(curve, ceiling, args.out.with_name("cd_learning_curve.png"))
    logging.info("test Cd from design parameters: ridge R2 %.3f / Spearman %.3f, GP R2 %.3f / Spearman %.3f",
                 out["ridge"]["r2"], out["ridge"]["spearman"], out["gaussian_process"]["r2"],
                 out["gaussian_process"]["spearman"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
