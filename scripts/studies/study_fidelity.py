"""CFD fidelity study: how noisy, how biased and how costly each preset and lever is, on dataset cars and on the
demo's optimized shapes.

    .venv/bin/python scripts/studies/study_fidelity.py [--presets coarse coarse-layers ... medium]
        [--reference medium] [--cars car_0018 car_0026 car_0028 car_0042]
        [--shapes data/studies/fidelity_shapes] [--runs 3] [--window 100] [--workers 2] [--work results/fidelity]
        [--out docs/validation/fidelity] [--report-only] [--export-demo results/demo/car_0260]

Every shape is simulated ``--runs`` times per preset, with the background grid shifted to that many distinct
near-body grids (:func:`aero_opt.cfd.verify.grid_shifts`), through the project's CFD executor. Per preset the
report gives: one run's Cd noise (pooled within-shape std over the shifts), cells, wall time per case on one core,
iterations and convergence, and agreement with the reference (the ``--reference`` preset averaged over its shifts):
Spearman rank correlation (of one run, and of the mean of the runs), mean relative bias and mean absolute error.
Averaging the forces over the last ``--window`` iterations needs no run of its own: it is computed from every
case's force history and reported beside the last iteration's value.

Where the noise lives: each case's body surface is split into regions (nose, roof and sides, rear upper surface,
base, underbody) and each region's share of the drag computed; the report gives each region's one-run std over
the shifts and its share of the total Cd variance (cov(region, total) / var(total), summing to 1).

The demo's shapes (``--shapes``: the start shape and each parameterization's final shape of ``aero-opt demo``,
copied into the repository once with ``--export-demo``) are the hard cases: the report also gives each
parameterization's Cd change at every preset, mean ± 95% interval.

Resumable across sessions and machines: every finished case's analysis is kept in ``<out>_cases.json`` (committed
with the report), so a case recorded there is not run again even when ``--work`` is gone; finished cases in
``--work`` are reused too. The report (``<out>.json``, ``<out>.md``, ``<out>.png``) is rewritten from whatever has
finished, every ``--report-every`` cases and at the end; ``--report-only`` writes it without running anything.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from aero_opt.cfd.case import get_preset, mean_settled, read_force_history
from aero_opt.cfd.results import case_regions
from aero_opt.cfd.verify import SimJob, grid_shifts, simulate_many
from aero_opt.core.atomic import atomic_open, write_json_atomic, write_text_atomic
from aero_opt.core.errors import AeroOptError
from aero_opt.core.machine import machine_facts
from aero_opt.core.physics import dynamic_pressure
from aero_opt.core.stats import pooled_std, relative_change, run_stats
from aero_opt.geometry.dataset import car_stl
from aero_opt.geometry.regions import BODY_REGIONS as REGIONS

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ("meshsdf", "scaling", "freeform", "polycube", "vertex")
log = logging.getLogger("study_fidelity")


def analyse_case(case: Path, window: int) -> dict[str, Any]:
    """Cd of the last iteration and of the mean over the last ``window`` iterations (and whether that mean settled,
    :func:`aero_opt.cfd.case.mean_settled`), each region's Cd (:func:`aero_opt.cfd.results.case_regions`), cells,
    iterations, convergence and wall time of a finished case."""
    s = json.loads((case / "summary.json").read_text())
    factor = 2.0 if s["half_model"] else 1.0
    cd_hist = factor * read_force_history(case)[:, 0] / (dynamic_pressure(s["rho"], s["speed"]) * s["A_ref"])
    regions = case_regions(case)
    return {"window": window, "Cd_last": float(cd_hist[-1]), "Cd_window": float(cd_hist[-window:].mean()),
            "Cd_window_drift": float(cd_hist[-window // 2:].mean() - cd_hist[-window:-window // 2].mean()),
            "window_settled": mean_settled(cd_hist, window, get_preset(s["preset"]).tol),
            "Cd_summary": s["Cd"], "regions": regions, "Cd_surface_sum": float(sum(regions.values())),
            "cells": s["cells"], "iterations": s["iterations"], "converged": bool(s["converged"]),
            "seconds": s["seconds"]["total"], "layers": s.get("layers"),
            "cd_tail": [round(float(x), 6) for x in cd_hist[-2 * window:]]}


def export_demo_shapes(demo: Path, shapes_dir: Path) -> list[Path]:
    """Copy a demo run's start shape and five final shapes (``<demo>/meshsdf/initial.stl``,
    ``<demo>/<param>/final.stl``) into ``shapes_dir`` as ``demo_start.ply.gz``, ``demo_<param>.ply.gz`` (merged
    vertices, gzipped: about 150 kB each), so the study's shapes travel with the repository.

    Raises:
        AeroOptError: a shape is missing (the demo has not run).
    """
    import gzip

    from aero_opt.geometry.mesh_import import load_mesh

    sources = {"demo_start": demo / "meshsdf" / "initial.stl", **{f"demo_{p}": demo / p / "final.stl" for p in PARAMS}}
    missing = [str(src) for src in sources.values() if not src.is_file()]
    if missing:
        raise AeroOptError(f"{missing[0]}: no such shape (run `aero-opt demo --out {demo.parent} --no-verify` first)")
    shapes_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for name, src in sources.items():
        data = load_mesh(src).export(file_type="ply")
        dst = shapes_dir / f"{name}.ply.gz"
        with atomic_open(dst, "wb") as fh:
            fh.write(gzip.compress(data, mtime=0))
        out.append(dst)
    return out


def shape_meshes(args: argparse.Namespace) -> dict[str, Path]:
    """The study's shapes: name -> closed mesh file (m): the dataset cars, then every ``*.ply.gz`` in
    ``--shapes`` (named by file stem)."""
    shapes: dict[str, Path] = {}
    stl_dir = args.work / "shapes"
    stl_dir.mkdir(parents=True, exist_ok=True)
    for car in args.cars:
        shapes[car] = car_stl(args.data, car, stl_dir)
    if args.shapes is not None:
        files = sorted(args.shapes.glob("*.ply.gz"), key=lambda f: (f.name != "demo_start.ply.gz", f.name))
        if not files:
            raise AeroOptError(f"{args.shapes}: no *.ply.gz shapes (make them with --export-demo)")
        for f in files:
            shapes[f.name.removesuffix(".ply.gz")] = f
    return shapes


def load_records(path: Path) -> dict[str, dict[str, Any]]:
    """The committed analyses of finished cases (``<preset>/<shape>_run<j>`` -> :func:`analyse_case`'s record)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(stats.spearmanr(a[ok], b[ok])[0]) if ok.sum() >= 3 else None


def accepted(r: dict[str, Any], key: str) -> bool:
    """Whether a case's ``key`` enters the means: the last iteration's Cd only when the case met its preset's
    convergence criterion; the window mean also when that mean settled (:func:`aero_opt.cfd.case.mean_settled`: a
    case that oscillates about a steady mean); anything else always."""
    if key == "Cd_last":
        return bool(r["converged"])
    if key == "Cd_window":
        return bool(r["converged"]) or bool(r["window_settled"])
    return True


def summarize(results: dict[tuple[str, str, int], dict[str, Any]], presets: list[str], shapes: list[str],
              runs: int, reference: str) -> dict[str, Any]:
    """The report's numbers from the finished cases' analyses, keyed (preset, shape, run index)."""

    def table(preset: str, key: str) -> np.ndarray:
        return np.array([[results[(preset, s, j)][key] if (preset, s, j) in results
                          and accepted(results[(preset, s, j)], key) else np.nan
                          for j in range(runs)] for s in shapes])

    ref = {}
    if reference in presets:
        ref_tab = table(reference, "Cd_window")
        ref = {s: float(np.nanmean(r)) for s, r in zip(shapes, ref_tab) if np.isfinite(r).any()}
    ref_vec = np.array([ref.get(s, np.nan) for s in shapes])
    coarse_seconds = None
    out: dict[str, Any] = {}
    for preset in presets:
        done = [(s, j) for s in shapes for j in range(runs) if (preset, s, j) in results]
        if not done:
            continue
        rows = [results[(preset, s, j)] for s, j in done]
        entry: dict[str, Any] = {
            "definition": asdict(get_preset(preset)), "cases": len(done), "cases_planned": len(shapes) * runs,
            "converged": sum(r["converged"] for r in rows),
            "cells_mean": float(np.mean([r["cells"] for r in rows])),
            "seconds_per_case_mean": float(np.mean([r["seconds"] for r in rows])),
            "iterations_mean": float(np.mean([r["iterations"] for r in rows])),
        }
        if any(r.get("layers") for r in rows):
            entry["layers_mean"] = float(np.mean([r["layers"]["mean_layers"] for r in rows if r.get("layers")]))
        if preset == "coarse":
            coarse_seconds = entry["seconds_per_case_mean"]
        for key, label in (("Cd_last", "last_iteration"), ("Cd_window", "window_mean")):
            tab = table(preset, key)
            means = np.array([np.nanmean(r) if np.isfinite(r).any() else np.nan for r in tab])
            block: dict[str, Any] = {"noise_std": pooled_std(tab), "excluded_not_converged":
                                     int(sum((preset, s, j) in results and not np.isfinite(tab[i, j])
                                             for i, s in enumerate(shapes) for j in range(runs)))}
            if ref and preset != reference:
                ok = np.isfinite(means) & np.isfinite(ref_vec)
                one_run = [_spearman(tab[:, j], ref_vec) for j in range(runs)]
                one_run = [x for x in one_run if x is not None]
                block["vs_reference"] = {
                    "shapes": int(ok.sum()),
                    "spearman_one_run": float(np.mean(one_run)) if one_run else None,
                    "spearman_mean_of_runs": _spearman(means, ref_vec),
                    "bias_relative_mean": float(np.mean(means[ok] / ref_vec[ok] - 1)) if ok.any() else None,
                    "mae": float(np.mean(np.abs(means[ok] - ref_vec[ok]))) if ok.any() else None,
                }
            entry[label] = block
        regions = {}
        total = table(preset, "Cd_surface_sum")
        for name in REGIONS:
            reg = np.array([[results[(preset, s, j)]["regions"][name] if (preset, s, j) in results else np.nan
                             for j in range(runs)] for s in shapes])
            dr = reg - np.nanmean(reg, axis=1, keepdims=True)
            dt = total - np.nanmean(total, axis=1, keepdims=True)
            ok = np.isfinite(dr) & np.isfinite(dt)
            regions[name] = {"cd_mean": float(np.nanmean(reg)), "noise_std": pooled_std(reg),
                             "variance_share": float((dr[ok] * dt[ok]).sum() / max((dt[ok] ** 2).sum(), 1e-30))}
        entry["regions"] = regions
        entry["demo_drag_change"] = _demo_changes(results, preset, runs)
        entry["per_shape"] = {s: {"Cd_last": [None if not np.isfinite(x) else float(x) for x in tl],
                                  "Cd_window": [None if not np.isfinite(x) else float(x) for x in tw]}
                              for s, tl, tw in zip(shapes, table(preset, "Cd_last"), table(preset, "Cd_window"))}
        out[preset] = entry
    if coarse_seconds:
        for entry in out.values():
            entry["cost_vs_coarse"] = entry["seconds_per_case_mean"] / coarse_seconds
    return {"reference_cd": ref, "presets": out}


def _demo_changes(results: dict[tuple[str, str, int], dict[str, Any]], preset: str, runs: int) -> dict[str, Any]:
    """Each demo parameterization's Cd change against the demo start at ``preset``: mean of the runs, with a 95%
    interval from both shapes' run-to-run spread (their frontal areas are fixed per shape, so Cd and drag change
    differ by the area ratio only)."""
    start = [results[(preset, "demo_start", j)]["Cd_window"] for j in range(runs) if (preset, "demo_start", j)
             in results]
    out = {}
    for param in PARAMS:
        fin = [results[(preset, f"demo_{param}", j)]["Cd_window"] for j in range(runs)
               if (preset, f"demo_{param}", j) in results]
        if not start or not fin:
            continue
        s, f = run_stats(start), run_stats(fin)
        change, ci = relative_change(s.as_dict(), f.as_dict())
        out[param] = {"cd_change": change, "ci95": ci, "runs": [s.n, f.n]}
    return out


def write_markdown(report: dict[str, Any], path: Path) -> None:
    """The short table of the report."""
    lines = [f"# CFD fidelity study ({report['machine']['cpu_model']}, {report['machine']['cpu_count']} cores)", "",
             f"`{report['command']}`", "",
             f"{len(report['shapes'])} shapes × {report['runs']} grid shifts per preset; reference: "
             f"`{report['reference']}` averaged over its shifts (Cd of each run: mean of the last "
             f"{report['window']} iterations). Noise = one run's Cd std over the shifts (pooled over shapes). "
             f"Times: one case per core, two side by side{'; ' + report['load'] if report.get('load') else ''}.", "",
             "| preset | cases | converged | cells | s/case (1 core) | cost × coarse | noise (last it.) | "
             "noise (window mean) | Spearman 1 run | Spearman mean | bias | MAE |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def f(x: Any, fmt: str = ".3f") -> str:
        return "–" if x is None else format(x, fmt)

    for name, e in report["presets"].items():
        vr = e["window_mean"].get("vs_reference", {})
        lines.append(f"| {name} | {e['cases']}/{e['cases_planned']} | {e['converged']} | {e['cells_mean']:.0f} | "
                     f"{e['seconds_per_case_mean']:.0f} | {f(e.get('cost_vs_coarse'), '.2f')} | "
                     f"{f(e['last_iteration']['noise_std'], '.4f')} | {f(e['window_mean']['noise_std'], '.4f')} | "
                     f"{f(vr.get('spearman_one_run'), '.2f')} | {f(vr.get('spearman_mean_of_runs'), '.2f')} | "
                     f"{f(vr.get('bias_relative_mean') and 100 * vr['bias_relative_mean'], '+.1f')}"
                     f"{'%' if vr.get('bias_relative_mean') is not None else ''} | {f(vr.get('mae'), '.4f')} |")
    lines += ["", "Where the noise lives (window-mean Cd; std of one run over the shifts, share of the total "
              "Cd variance):", "", "| preset | " + " | ".join(REGIONS) + " |", "|---|" + "---|" * len(REGIONS)]
    for name, e in report["presets"].items():
        cells = [f"{f(e['regions'][r]['noise_std'], '.4f')} ({100 * e['regions'][r]['variance_share']:.0f}%)"
                 for r in REGIONS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if any(e["demo_drag_change"] for e in report["presets"].values()):
        lines += ["", "Demo shapes: Cd change of each parameterization's final shape against the start shape "
                  "(mean of the runs ± 95% interval):", "", "| preset | " + " | ".join(PARAMS) + " |",
                  "|---|" + "---|" * len(PARAMS)]
        for name, e in report["presets"].items():
            d = e["demo_drag_change"]
            lines.append(f"| {name} | " + " | ".join(
                (f"{100 * d[p]['cd_change']:+.1f}%" + (f" ± {100 * d[p]['ci95']:.1f}" if d[p]["ci95"] is not None
                                                        else "")) if p in d else "–" for p in PARAMS) + " |")
    write_text_atomic(path, "\n".join(lines) + "\n")


def plot(report: dict[str, Any], path: Path) -> None:
    """One panel per preset: each shape's Cd (mean ± std over the runs) against the reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = report["reference_cd"]
    names = [n for n in report["presets"] if n != report["reference"]]
    if not ref or not names:
        return
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.4), squeeze=False, sharey=True)
    for ax, name in zip(axes[0], names):
        e = report["presets"][name]
        for shape, runs in e["per_shape"].items():
            v = [x for x in runs["Cd_window"] if x is not None]
            if shape in ref and v:
                ax.errorbar(ref[shape], np.mean(v), yerr=np.std(v, ddof=1) if len(v) > 1 else None, fmt="o",
                            ms=4, color="C1" if shape.startswith("demo") else "C0", capsize=2)
        lo, hi = min(ref.values()) * 0.9, max(ref.values()) * 1.25
        ax.plot([lo, hi], [lo, hi], "k:", lw=0.8)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(f"Cd, {report['reference']} (mean of runs)", fontsize=8)
    axes[0][0].set_ylabel("Cd (mean ± std of one run)", fontsize=8)
    fig.suptitle(f"CFD presets against the reference: blue dataset cars, orange demo shapes "
                 f"({report['machine']['cpu_model']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["coarse", "coarse-layers", "coarse-2nd", "medium", "coarse-wake4",
                                                      "coarse-body5"],
                    help="presets in the order their cases start (the reference early: it is what every other "
                         "preset is judged by)")
    ap.add_argument("--reference", default="medium")
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dataset")
    ap.add_argument("--cars", nargs="*", default=["car_0018", "car_0026", "car_0028", "car_0042"],
                    help="dataset cars (the first four test cars: all three styles)")
    ap.add_argument("--shapes", type=Path, default=ROOT / "data" / "studies" / "fidelity_shapes",
                    help="folder of further shapes (*.ply.gz): the demo's start and optimized shapes; 'none' to leave "
                         "out")
    ap.add_argument("--export-demo", type=Path, default=None, metavar="DEMO_CAR_DIR",
                    help="first copy a demo run's shapes (e.g. results/demo/car_0260) into --shapes, then stop")
    ap.add_argument("--runs", type=int, default=3, help="grid shifts per shape and preset")
    ap.add_argument("--window", type=int, default=100, help="iterations of the averaged Cd")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", type=Path, default=ROOT / "results" / "fidelity")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "validation" / "fidelity")
    ap.add_argument("--report-every", type=int, default=6, help="rewrite the report after this many new cases")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--note", default="", help="what else ran on the machine meanwhile (recorded in the report)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if str(args.shapes).lower() == "none":
        args.shapes = None
    records_path = args.out.parent / f"{args.out.name}_cases.json"
    try:
        if args.export_demo is not None:
            for f in export_demo_shapes(args.export_demo, args.shapes):
                log.info("wrote %s", f)
            return 0
        for name in args.presets:
            get_preset(name)
        if args.runs < 2:
            raise AeroOptError(f"--runs {args.runs}: at least 2 (the noise is the spread over the runs)")
        shapes = shape_meshes(args)
    except AeroOptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    records = load_records(records_path)
    results: dict[tuple[str, str, int], dict[str, Any]] = {}
    jobs = []
    for preset in args.presets:
        for j, shift in enumerate(grid_shifts(args.runs, preset)):
            for name, mesh in shapes.items():
                case = args.work / preset / f"{name}_run{j}"
                key = f"{preset}/{name}_run{j}"
                if (case / "summary.json").is_file():
                    results[(preset, name, j)] = records[key] = analyse_case(case, args.window)
                elif key in records and records[key].get("window") == args.window:
                    results[(preset, name, j)] = records[key]
                elif not args.report_only:
                    jobs.append(((preset, name, j), SimJob(mesh, case, preset, grid_shift=shift)))
    command = shlex.join(["python", "scripts/studies/study_fidelity.py", *sys.argv[1:]])

    def report() -> None:
        rep = {"command": command, "machine": machine_facts(), "load": args.note, "shapes": list(shapes),
               "runs": args.runs,
               "grid_shifts": {p: grid_shifts(args.runs, p) for p in args.presets}, "window": args.window,
               "reference": args.reference, **summarize(results, args.presets, list(shapes), args.runs,
                                                         args.reference),
               "note": "Cd_window: mean Cd over the last `window` iterations; last_iteration rows leave out cases "
                       "that did not meet the convergence band (counted in excluded_not_converged). Noise: pooled "
                       "within-shape std of one run over the grid shifts. vs_reference: each shape's mean over its "
                       "runs (or one run, averaged over the run index) against the reference preset's mean. "
                       "seconds_per_case: wall time of one case on one core with two cases running side by side."}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(records_path, dict(sorted(records.items())))
        write_json_atomic(args.out.with_suffix(".json"), rep)
        write_markdown(rep, args.out.with_suffix(".md"))
        plot(rep, args.out.with_suffix(".png"))

    log.info("%d cases finished, %d to run", len(results), len(jobs))
    new = 0
    for key, result in simulate_many(jobs, args.workers, desc="fidelity") if jobs else ():
        if isinstance(result, AeroOptError):
            log.error("%s %s run %d failed: %s", *key, result)
            continue
        case = jobs[[k for k, _ in jobs].index(key)][1].case
        results[key] = records[f"{key[0]}/{case.name}"] = analyse_case(case, args.window)
        new += 1
        if new % args.report_every == 0:
            report()
    report()
    log.info("report: %s.{json,md,png}", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
