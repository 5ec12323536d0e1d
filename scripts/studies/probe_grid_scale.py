"""Label noise the x shifts cannot see: re-simulate dataset cars on background grids scaled by a few per cent.

    .venv/bin/python scripts/studies/probe_grid_scale.py [--split test] [--cars 10] [--scales 0.97 0.985 1.015 1.03]
                                                [--workers 2]

``scripts/pipeline/average_labels.py`` moves the background grid along x, so its runs sample how the cells meet the body
along x only (the ground and the symmetry plane pin the grid along z and y). Scaling the background cell (and with
it every refined cell, :func:`aero_opt.cfd.case.write_case` ``grid_scale``) moves that phase along all three axes:
by ±3% the cells at the car's side and roof move by about half a surface cell. It also changes the resolution by
the same few per cent, a systematic effect the report separates out (the mean Cd change per scale over the cars).

The labels are not changed. The report (``docs/validation/grid_scale_probe.json``) gives, over the same cars, the
Cd noise std of one run from the x shifts at distinct near-body grids (0, ⅓, ⅔ of the cell) and from the scaled
grids (the stored run counting as scale 1), the latter with and without the mean effect of each scale, and how far
the mean over the x shifts is from the mean over the scaled grids (what averaging along x leaves in the labels).
Resumable: finished cases in ``--work`` are reused.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from aero_opt.cfd.verify import SimJob, simulate_many
from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.errors import AeroOptError
from aero_opt.core.stats import pooled_std
from aero_opt.geometry.dataset import car_stl, load_car, split_names

ROOT = Path(__file__).resolve().parents[2]
X_PHASES = (0.0, 0.33, 0.67)  # x shifts that give distinct near-body grids (the label runs of every averaged car)
log = logging.getLogger("probe_grid_scale")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dataset")
    ap.add_argument("--split", default="test")
    ap.add_argument("--cars", type=int, default=10, help="the first N cars of the split that have x-shift runs")
    ap.add_argument("--scales", type=float, nargs="+", default=[0.97, 0.985, 1.015, 1.03])
    ap.add_argument("--preset", default="coarse")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", type=Path, default=ROOT / "results" / "grid_scale_probe")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "validation" / "grid_scale_probe.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if 1.0 in args.scales:
        raise SystemExit("--scales: 1.0 is the stored run; give the other scales only")
    try:
        names = split_names(args.data, args.split)
    except AeroOptError as exc:
        raise SystemExit(f"--split: {exc}") from exc
    x_runs: dict[str, dict[float, float]] = {}
    for name in names:
        runs = load_car(args.data / f"{name}.npz").case.get("label_runs") or []
        by_shift = {round(float(r["grid_shift"]), 2): float(r["Cd"]) for r in runs}
        if all(s in by_shift for s in X_PHASES):
            x_runs[name] = by_shift
        if len(x_runs) == args.cars:
            break
    if len(x_runs) < 2:
        raise SystemExit(f"{args.data}: fewer than two {args.split} cars have runs at x shifts {X_PHASES} "
                         "(run scripts/pipeline/average_labels.py first)")
    args.work.mkdir(parents=True, exist_ok=True)
    cd: dict[str, dict[float, float]] = {n: {} for n in x_runs}
    jobs = [((name, s), SimJob(car_stl(args.data, name, args.work), args.work / f"{name}_scale{s:.3f}", args.preset,
                               grid_scale=s))
            for name in x_runs for s in args.scales]
    for (name, s), result in simulate_many(jobs, args.workers, desc="scaled grids"):
        if isinstance(result, AeroOptError):
            log.error("%s at grid scale %.3f failed, the car is left out: %s", name, s, result)
        else:
            cd[name][s] = float(result["Cd"])
    ok = [n for n in x_runs if len(cd[n]) == len(args.scales)]
    if len(ok) < 2:
        raise SystemExit("fewer than two cars finished every scaled grid: no report")
    scales = [1.0, *args.scales]
    scaled = np.array([[x_runs[n][0.0], *(cd[n][s] for s in args.scales)] for n in ok])
    shifted = np.array([[x_runs[n][s] for s in X_PHASES] for n in ok])
    gap = scaled.mean(axis=1) - shifted.mean(axis=1)
    k, m = scaled.shape[1], shifted.shape[1]
    sigma = np.sqrt((pooled_std(scaled) ** 2 + pooled_std(shifted) ** 2) / 2)
    gap_expected = float(sigma * np.sqrt(1 / k + 1 / m - 2 / (k * m)))  # independent runs, the stored one in both
    report = {
        "command": " ".join(["python scripts/studies/probe_grid_scale.py", *sys.argv[1:]]),
        "cars": len(ok), "split": args.split, "scales": scales, "x_shifts": list(X_PHASES),
        "cd_noise_std_x_shifts": pooled_std(shifted),
        "cd_noise_std_scaled": pooled_std(scaled),
        "cd_noise_std_scaled_without_scale_effect": pooled_std(scaled, remove_column_means=True),
        "mean_cd_change_by_scale": {f"{s:g}": float(v) for s, v in zip(scales, scaled.mean(0) - scaled.mean())},
        "mean_over_scales_minus_mean_over_x_shifts": {"mean": float(gap.mean()), "std": float(gap.std(ddof=1)),
                                                      "std_expected_if_runs_independent": gap_expected},
        "note": "One run = one coarse simulation. cd_noise_std_*: pooled within-car std of one run's Cd over the "
                "grids (x shifts at three distinct near-body grids; scaled grids with the stored run as scale 1). "
                "'without_scale_effect' also removes the mean Cd change of each scale over the cars (the "
                "resolution's systematic part). mean_over_scales_minus_mean_over_x_shifts: per car, the mean of the "
                "scaled runs less the mean of the x-shift runs; if every run's mesh noise were independent of the "
                "others' (so that averaging along x averages it away) its std would be the pooled one-run noise "
                "times sqrt(1/K + 1/M - 2/(K M)) for K scaled and M shifted runs (the stored run is in both means): "
                "std_expected_if_runs_independent. A larger std would mean noise the x shifts share and do not "
                "average away.",
        "per_car": {n: {"scaled": dict(zip([f"{s:g}" for s in scales], row.tolist())),
                        "x_shifts": dict(zip([f"{s:g}" for s in X_PHASES], xs.tolist()))}
                    for n, row, xs in zip(ok, scaled, shifted)},
    }
    write_json_atomic(args.out, report)
    log.info("%d cars: one run's Cd noise %.4f over x shifts, %.4f over scaled grids (%.4f without the scale "
             "effect); mean over scales - mean over x shifts: std %.4f (%.4f if the runs were independent)", len(ok),
             report["cd_noise_std_x_shifts"], report["cd_noise_std_scaled"],
             report["cd_noise_std_scaled_without_scale_effect"],
             report["mean_over_scales_minus_mean_over_x_shifts"]["std"], gap_expected)
    return 0


if __name__ == "__main__":
    sys.exit(main())
