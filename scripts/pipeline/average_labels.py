"""Cleaner CFD labels: re-simulate dataset cars with the background grid shifted, average, measure the noise.

    .venv/bin/python scripts/pipeline/average_labels.py [--splits test val train] [--styles estate] [--cars N]
                                              [--shifts 0.33 0.67] [--workers 2] [--report-only]

A shift moves every level of the snappyHexMesh grid relative to the car (the levels are nested halvings of the
background cell) without changing the shape, so the spread over shifts is the label noise of the coarse preset.
Each car of the chosen splits (in that order; only the chosen body ``--styles``; the first ``--cars`` of them) is
simulated at each shift it does not have yet, its fields are sampled onto the dataset mesh as the dataset was made
(at the mesh's vertices plus the few millimetres :func:`aero_opt.cfd.verify.simulate` may have moved the body by to
put its nose at x = 0), and its
``.npz`` labels (pressure, shear, Cd, Cd_pressure, Cd_viscous, Cl) are replaced by the mean over the stored run
and the shifted runs (:func:`aero_opt.geometry.dataset.average_labels`, which records every run in the car's case
summary, ``label_runs``). Averaging k runs divides the noise variance by k. Other shifts add runs to an existing
average: ``--splits test --shifts 0.17 0.5 0.83`` makes the test labels six-run means — but shifts ½ apart give the
same cells at every refinement level ≥ 1, so those six are three near-body grids twice (the report's
``paired_shifts`` uses such pairs to split the noise into a near-body and a background share).

Resumable: a car that has a run at every requested shift is skipped, finished cases are reused (``--work``). The
report ``docs/validation/label_noise.json`` is rebuilt from every averaged car of the dataset: the pooled noise std of
one run's Cd, the best R² any model can reach against one-run labels and against the averaged labels
(1 − noise variance / label variance; per number of runs in ``r2_ceiling_by_runs``), and how far two runs'
pressure fields are apart in the surrogate's metric (relative L2 over the vertices).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from aero_opt.cfd.results import case_fields
from aero_opt.cfd.verify import SimJob, cfd_shift, simulate_many
from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.errors import AeroOptError
from aero_opt.geometry.dataset import average_labels, car_stl, load_car, split_names
from aero_opt.geometry.mesh_import import load_mesh

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("average_labels")


def _case(work: Path, name: str, shift: float) -> Path:
    return work / f"{name}_shift{shift:.2f}"


def _phase(shift: float) -> float:
    """The near-body grid a background shift (fraction of the cell) gives: shifts ½ apart give the same cells."""
    return round(float(shift) % 0.5, 2)


def _missing_shifts(case: dict[str, object], shifts: list[float]) -> list[float]:
    """The requested grid shifts a car's labels do not include yet (plain labels are the run at shift 0)."""
    have = {round(float(r["grid_shift"]), 4) for r in case.get("label_runs") or [{"grid_shift": 0.0}]}
    return [s for s in shifts if round(s, 4) not in have]


def select(data: Path, splits: list[str], shifts: list[float], styles: list[str] | None = None,
           cars: int | None = None) -> dict[str, list[float]]:
    """The cars of ``splits`` (in that order) of body style in ``styles`` (all if None), the first ``cars`` of them,
    mapped to the grid shifts each still lacks (cars that lack none are left out).

    Raises :class:`AeroOptError` naming the split or style when one does not exist in ``data``."""
    names = [n for s in splits for n in split_names(data, s)]
    loaded = {n: load_car(data / f"{n}.npz") for n in names}
    if styles is not None:
        known = {str(c.params.get("style", "unknown")) for c in loaded.values()}
        if unknown := sorted(set(styles) - known):
            raise AeroOptError(f"{data}: no car of style {', '.join(unknown)} in splits {', '.join(splits)} "
                               f"(styles there: {', '.join(sorted(known))})")
        names = [n for n in names if loaded[n].params.get("style") in styles]
    missing = {n: _missing_shifts(loaded[n].case, shifts) for n in names[:cars]}
    return {n: m for n, m in missing.items() if m}


def report(data: Path, out: Path, command: str) -> dict[str, object]:
    """Label-noise statistics over every averaged car of ``data`` (see the module docstring); written to ``out``."""
    cars, single, band, style = {}, [], [], {}
    settled: dict[str, list[tuple[bool, float]]] = {}
    for path in sorted(data.glob("car_*.npz")):
        car = load_car(path)
        case = car.case
        runs = case.get("label_runs")
        style[path.stem] = str(car.params.get("style", "unknown"))
        single.append(runs[0]["Cd"] if runs else case["Cd"])
        settled.setdefault(style[path.stem], []).append((bool(case.get("converged")), case["convergence"]["cd_band"]))
        if runs:
            cars[path.stem] = runs
            band.append(case["convergence"]["cd_band"] * abs(runs[0]["Cd"]))
    if not cars:
        raise AeroOptError(f"{data}: no car has averaged labels yet")
    within = [np.var([r["Cd"] for r in runs], ddof=1) for runs in cars.values()]
    rel = [r["pressure_rel_l2"] for runs in cars.values() for r in runs[1:] if r["pressure_rel_l2"] is not None]
    counts = [len(r) for r in cars.values()]
    k = max(sorted(set(counts)), key=counts.count)  # the most common number of runs per car
    noise_var, label_var = float(np.mean(within)), float(np.var(single, ddof=1))

    # shifts s and s + 1/2 give the same cells at every refinement level >= 1 (each level halves the cell): such
    # runs differ only in the background cells, so the noise splits into a near-body and a background share
    pair_diffs = [a["Cd"] - b["Cd"] for runs in cars.values() for i, a in enumerate(runs) for b in runs[i + 1:]
                  if _phase(a["grid_shift"]) == _phase(b["grid_shift"])]
    bg_var = float(np.mean(np.square(pair_diffs)) / 2) if pair_diffs else 0.0
    near_share = (noise_var - bg_var) / noise_var

    by_style: dict[str, list[float]] = {}
    for name, v in zip(cars, within):
        by_style.setdefault(style[name], []).append(v)
    # one run's noise variance per style (the pooled one for a style without averaged cars); the dataset's labels
    # carry the mean of it over all its cars, which is what the label variance holds beyond the true variance
    style_var = {k: float(np.mean(v)) for k, v in by_style.items()}
    dataset_noise_var = float(np.mean([style_var.get(style[n], noise_var) for n in style]))
    true_var = label_var - dataset_noise_var

    def ceiling(name: str, runs: list[dict[str, Any]]) -> float:
        v = style_var[style[name]]  # every averaged car's style has a noise
        var = v * near_share / len({_phase(r["grid_shift"]) for r in runs}) + v * (1 - near_share) / len(runs)
        return 1.0 - var / (true_var + var)

    car_ceiling = {name: ceiling(name, runs) for name, runs in cars.items()}
    by_runs: dict[str, list[float]] = {}
    for name, runs in cars.items():
        by_runs.setdefault(str(len(runs)), []).append(car_ceiling[name])
    halves = [runs[3]["batch_rel_l2"] for runs in cars.values() if len(runs) >= 6 and runs[3].get("batch_rel_l2")]
    paired = None if not pair_diffs else {
        "pairs": len(pair_diffs), "cd_noise_std_background": bg_var**0.5,
        "cd_noise_std_near_body": (noise_var - bg_var) ** 0.5,
        "pressure_rel_l2_between_halves": None if not halves else {
            "cars": len(halves), "mean": float(np.mean(halves)), "median": float(np.median(halves)),
            "max": float(np.max(halves))},
    }

    summary = {
        "command": command, "cars": len(cars), "runs_per_car": k,
        "cd_noise_std_one_run": noise_var**0.5, "dataset_cd_std_one_run": label_var**0.5,
        "r2_ceiling_one_run": 1.0 - dataset_noise_var / label_var,
        "r2_ceiling_averaged": float(np.mean(by_runs[str(k)])),
        "r2_ceiling_by_runs": {n: {"cars": len(v), "r2_ceiling": float(np.mean(v))}
                               for n, v in sorted(by_runs.items())},
        "paired_shifts": paired,
        "cd_noise_std_one_run_by_style": {k: {"cars": len(v), "std": float(np.mean(v)) ** 0.5}
                                          for k, v in sorted(by_style.items())},
        "pressure_rel_l2_between_runs": {"mean": float(np.mean(rel)), "median": float(np.median(rel)),
                                         "max": float(np.max(rel))},
        "cd_band_last_window": {"median": float(np.median(band)), "max": float(np.max(band))},
        "stored_run_settling_by_style": {k: {"cars": len(v), "converged": float(np.mean([c for c, _ in v])),
                                             "relative_cd_band_median": float(np.median([b for _, b in v])),
                                             "relative_cd_band_p90": float(np.percentile([b for _, b in v], 90))}
                                         for k, v in sorted(settled.items())},
        "note": "One run = one coarse simulation (the dataset before averaging). r2_ceiling: the best R2 a perfect "
                "shape-to-Cd model can reach against labels with this noise (1 - noise variance / label "
                "variance; the variance of k-run means is the one-run variance less (1 - 1/k) of the noise "
                "variance). pressure_rel_l2_between_runs: a shifted run's field against the stored run's on the "
                "same mesh (runs added to an existing average have none); a model that predicts the noise-free "
                "field is about 1/sqrt(2) of it from one run's field, 1/sqrt(2k) from the average. "
                "cd_band_last_window: the stored run's Cd range (max - min) over the last iterations of its "
                "convergence window: how settled one run is, against the spread between grid shifts. The shift moves "
                "the background grid along x; shifts s and s + 1/2 of its cell give the same cells at every "
                "refinement level >= 1, so the six shifts 0, 1/6, ..., 5/6 are three near-body grids, each with "
                "two background grids. paired_shifts: the Cd noise of one run split into the background cells' "
                "share (from such pairs) and the near-body share (the rest), and the pressure relative L2 between "
                "the mean of the runs at 0, 1/3, 2/3 and that at 1/2, 5/6, 1/6 (the same near-body grids: the "
                "background's share of a three-run mean's pressure noise). r2_ceiling_by_runs: 1 - the noise "
                "variance of a car's label mean (near-body variance / distinct near-body grids + background "
                "variance / runs, with its body style's one-run noise split in the pooled near-body / background "
                "proportion) / the label variance; r2_ceiling_one_run and the true variance use the dataset's "
                "one-run noise: the per-style noise averaged over all its cars; runs at distinct near-body grids "
                "are taken as independent, which is not measured (the shift samples the grid phase along x only). "
                "cd_noise_std_one_run_by_style: cd_noise_std_one_run pooled over the averaged cars of each body "
                "style. per_car r2_ceiling: the ceiling of a set of cars whose labels all carry this car's noise "
                "(average it over a split for the split's). "
                "stored_run_settling_by_style: over every car of the dataset, the fraction whose stored run met "
                "the stopping criterion (its last window of Cd within the preset's band; the others ran to the "
                "preset's maximum iterations) and the median and 90th percentile of that window's Cd range over "
                "its mean.",
        "per_car": {name: {"Cd": [r["Cd"] for r in runs], "grid_shift": [r["grid_shift"] for r in runs],
                           "pressure_rel_l2": [r["pressure_rel_l2"] for r in runs[1:]],
                           "r2_ceiling": car_ceiling[name]}
                    for name, runs in cars.items()},
    }
    write_json_atomic(out, summary)
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dataset")
    ap.add_argument("--splits", nargs="+", default=["test", "val", "train"], help="splits, in this order")
    ap.add_argument("--styles", nargs="+", default=None, help="only cars of these body styles (e.g. estate)")
    ap.add_argument("--cars", type=int, default=None, help="only the first N (chosen) cars of the splits")
    ap.add_argument("--shifts", type=float, nargs="+", default=[0.33, 0.67], help="fractions of the background cell")
    ap.add_argument("--preset", default="coarse")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", type=Path, default=ROOT / "results" / "label_noise")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "validation" / "label_noise.json")
    ap.add_argument("--report-only", action="store_true",
                    help="only rebuild the report from the averaged cars (e.g. after stopping a batch midway)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command = "python scripts/pipeline/average_labels.py " + " ".join(sys.argv[1:])
    if args.report_only:
        return _log_report(report(args.data, args.out, command))
    try:
        missing = select(args.data, args.splits, args.shifts, args.styles, args.cars)
    except AeroOptError as exc:
        raise SystemExit(f"--splits/--styles: {exc}") from exc
    todo = list(missing)
    log.info("%d cars to average (%d runs at most each)", len(todo), len(args.shifts))
    args.work.mkdir(parents=True, exist_ok=True)
    pending = {n: set(missing[n]) for n in todo}
    jobs = [((name, s), SimJob(car_stl(args.data, name, args.work), _case(args.work, name, s), args.preset,
                               grid_shift=s))
            for name in todo for s in missing[name]]
    for (name, s), result in simulate_many(jobs, args.workers, desc="label runs"):
        if isinstance(result, AeroOptError):
            log.error("%s at grid shift %.2f failed, its labels stay one run: %s", name, s, result)
            pending.pop(name, None)
            continue
        if name not in pending:
            continue
        pending[name].discard(s)
        if not pending[name]:
            del pending[name]
            npz = args.data / f"{name}.npz"
            car = load_car(npz)
            at = car.verts + cfd_shift(load_mesh(args.work / f"{name}.stl"))  # where the case had them
            average_labels(npz, [(t, *case_fields(_case(args.work, name, t), at)) for t in missing[name]])
    return _log_report(report(args.data, args.out, command))


def _log_report(s: dict[str, Any]) -> int:
    """Log the main figures of a report (see :func:`report`); returns 0, the exit status."""
    log.info("%d averaged cars: Cd noise std %.4f (one run), R2 ceiling %.3f one run; pressure rel. L2 between "
             "runs %.3f", s["cars"], s["cd_noise_std_one_run"], s["r2_ceiling_one_run"],
             s["pressure_rel_l2_between_runs"]["mean"])
    if s["paired_shifts"]:
        h = s["paired_shifts"]
        log.info("one run's Cd noise: %.4f near the body, %.4f from the background cells (%d pairs of runs on the "
                 "same near-body grid); R2 ceiling by runs per car: %s", h["cd_noise_std_near_body"],
                 h["cd_noise_std_background"], h["pairs"],
                 ", ".join(f"{n}: {v['r2_ceiling']:.3f}" for n, v in s["r2_ceiling_by_runs"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
