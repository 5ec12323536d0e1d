"""The campaign's headline experiment: OpenFOAM in the loop against the CFD-only optimizer at equal cost, and
against today's one-shot pipeline, on held-out cars.

    .venv/bin/python scripts/pipeline/reproduce_campaign.py --cars 4 --params meshsdf --workers 2 \\
        [--rounds 4 --per-round 3] [--room package] [--work results/campaign] [--out docs/results/campaign]

Cars: the dataset's test split after the comparison's first 8 (and never the demo's car_0260). Per car and
parameterization, in this order, each resumable (kill and rerun the same command):

1. ``aero-opt campaign`` (surrogate method) → ``<work>/<car>/<param>/surrogate``;
2. ``aero-opt campaign --method cma --budget-cases N`` with N the cases step 1 used → ``…/cma``;
3. the one-shot pipeline: ``aero-opt optimize --verify`` with the same verification protocol → ``…/oneshot``.

The work folder is carried across sessions (:mod:`aero_opt.core.carry`; ``--carry``, default
``docs/results/work/<work name>``), without the fine-tuned surrogates a resumed campaign no longer reads
(:func:`aero_opt.app.campaign.superseded_surrogate`): commit that folder to keep a partial headline.

Writes ``<out>/campaign.json`` (per method and round: the verified drag change against the start, mean over the
cars with a 95% bootstrap interval that carries each car's run-to-run noise; CMA-ES at the same case count as
each round; per car: best verified Cd against the lowest Cd of the training cars; the surrogate's error on the
campaign's shapes per round; CFD cases and CPU hours), ``campaign.md`` and ``campaign.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from aero_opt.app.campaign import run_campaign, superseded_surrogate
from aero_opt.app.compare import REBUILT
from aero_opt.app.config import CampaignConfig, Config, load_config
from aero_opt.app.optimize import Models, data_cd_floor, run_start, start_shape
from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.carry import add_carry_arguments, carried, chosen_mirror
from aero_opt.core.errors import AeroOptError
from aero_opt.core.machine import machine_facts
from aero_opt.core.stats import bootstrap_mean
from aero_opt.geometry.dataset import split_cd, split_names

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("reproduce_campaign")


def cpu_hours(folder: Path) -> float:
    """CPU hours of the CFD cases under ``folder``: the wall seconds each case's ``summary.json`` records (one core
    per case)."""
    total = 0.0
    for f in folder.rglob("summary.json"):
        try:
            s = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(s.get("seconds"), dict) and "preset" in s:
            total += sum(float(v) for v in s["seconds"].values())
    return total / 3600.0


def change_at(steps: list[dict[str, Any]], cases: int) -> dict[str, Any] | None:
    """The best verified drag change (and its interval half width) among the steps that had used at most
    ``cases`` CFD cases (None: no step yet)."""
    done = [s for s in steps if s["cases_used"] <= cases]
    if not done:
        return None
    return {"drag_change": done[-1]["drag_change"], "ci95": done[-1]["drag_change_ci95"],
            "Cd": done[-1]["best_Cd"]}


def pooled(values: list[tuple[float, float | None]]) -> dict[str, Any] | None:
    """Mean over cars of (change, half width) with the bootstrap interval (:func:`bootstrap_mean`; a car's
    standard error is its half width / 1.96)."""
    if not values:
        return None
    b = bootstrap_mean([v for v, _ in values], [None if h is None else h / 1.96 for _, h in values])
    return b.as_dict()


def fmt(b: dict[str, Any] | None) -> str:
    """A pooled change as ``-12.3% [-20.1, -4.5]`` (or – when there is none)."""
    return "–" if b is None else f"{100 * b['mean']:+.1f}% [{100 * b['ci95_low']:+.1f}, {100 * b['ci95_high']:+.1f}]"


def plot(table: dict[str, Any], path: Path) -> None:
    """Per parameterization: the mean verified drag change after each round (surrogate campaign, CMA-ES at the
    same cases) with the 95% intervals, and the one-shot pipeline's as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(table), figsize=(6 * len(table), 4), squeeze=False)
    for ax, (param, t) in zip(axes[0], table.items()):
        for key, label in (("surrogate", "surrogate campaign"), ("cma_same_cases", "CMA-ES, same CFD cases")):
            rows = [r for r in t["rounds"] if r[key] is not None]
            x = [r["round"] + 1 for r in rows]
            m = np.array([100 * r[key]["mean"] for r in rows])
            lo = np.array([100 * r[key]["ci95_low"] for r in rows])
            hi = np.array([100 * r[key]["ci95_high"] for r in rows])
            ax.errorbar(x, m, yerr=[m - lo, hi - m], marker="o", capsize=3, label=label)
        if t["oneshot"] is not None:
            o = t["oneshot"]
            ax.axhspan(100 * o["ci95_low"], 100 * o["ci95_high"], color="0.85", label="one-shot (95%)")
            ax.axhline(100 * o["mean"], color="0.5")
        ax.set_xlabel("round")
        ax.set_ylabel("verified drag change against the start (%)")
        ax.set_title(param)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_all(args: argparse.Namespace, cfg: Config, ccfg: CampaignConfig, cars: list[str], sur_dir: Path, dec_dir: Path,
            data: Path) -> dict[str, dict[str, Any]]:
    """Every car's surrogate campaign, CMA-ES campaign and one-shot run (each resumed where it stopped)."""
    results: dict[str, dict[str, Any]] = {}
    models = Models.load(sur_dir, dec_dir, symmetric=cfg.optimize.symmetric)
    for param in args.params:
        for car in cars:
            base = args.work / car / param
            sur = run_campaign(car, param, base / "surrogate", cfg.optimize, ccfg, "surrogate", sur_dir,
                               dec_dir, data, flow=cfg.flow, workers=args.workers, fit=cfg.fit, models=models)
            cma = run_campaign(car, param, base / "cma", cfg.optimize,
                               replace(ccfg, budget_cases=sur["cases_used"]), "cma", sur_dir, dec_dir, data,
                               flow=cfg.flow, workers=args.workers, fit=cfg.fit, models=models)
            one_dir = base / "oneshot"
            if (one_dir / "summary.json").is_file() and "cfd" in json.loads((one_dir / "summary.json").read_text()):
                one = json.loads((one_dir / "summary.json").read_text())
            else:
                start = start_shape(car, models, cfg.optimize.resolution, data, cfg.fit)
                one = run_start(param, start, models, cfg.optimize, one_dir, do_verify=True, flow=cfg.flow,
                                cd_floor=data_cd_floor(cfg.optimize, data, models.surrogate),
                                workers=args.workers)
            results[f"{car}/{param}"] = {"car": car, "param": param, "surrogate": sur, "cma": cma,
                                         "oneshot": one["cfd"], "cpu_hours": cpu_hours(base)}
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cars", type=int, default=4)
    ap.add_argument("--params", nargs="+", default=["meshsdf"])
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--per-round", type=int, default=None)
    ap.add_argument("--room", choices=("package", "relative"), default="package",
                    help="room constraint (optimize.room): the headline's two occupants, engine bay and wheels in "
                         "metres, or boxes relative to the start shape")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=ROOT / "results" / "campaign")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "campaign")
    add_carry_arguments(ap)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data = ROOT / "data" / "dataset"
    cfg = load_config(args.config)
    cfg = replace(cfg, optimize=replace(cfg.optimize, room=args.room))
    ccfg = replace(cfg.campaign, **{k: v for k, v in (("rounds", args.rounds), ("per_round", args.per_round))
                                   if v is not None})
    cars = [c for c in split_names(data, "test")[8:] if c != "car_0260"][: args.cars]
    sur_dir, dec_dir = ROOT / "data" / "models" / "surrogate", ROOT / "data" / "models" / "car_decoder"
    t0 = time.perf_counter()
    carry = chosen_mirror(args, ROOT, args.work)
    try:
        with carried(args.work, carry, skip=REBUILT, exclude=superseded_surrogate):
            results = run_all(args, cfg, ccfg, cars, sur_dir, dec_dir, data)
    except AeroOptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    train_min = float(split_cd(data, "train").min())
    table: dict[str, Any] = {}
    for param in args.params:
        rs = [r for r in results.values() if r["param"] == param]
        rounds = max(len(r["surrogate"]["steps"]) for r in rs)
        per_round = []
        for k in range(rounds):
            s_vals, c_vals = [], []
            for r in rs:
                steps = r["surrogate"]["steps"]
                if k < len(steps):
                    s_vals.append((steps[k]["drag_change"], steps[k]["drag_change_ci95"]))
                    c = change_at(r["cma"]["steps"], steps[k]["cases_used"])
                    c_vals.append((0.0, None) if c is None else (c["drag_change"], c["ci95"]))
            per_round.append({"round": k, "surrogate": pooled(s_vals), "cma_same_cases": pooled(c_vals),
                              "surrogate_error_before": [r["surrogate"]["steps"][k]["surrogate_error_before"]
                                                         for r in rs if k < len(r["surrogate"]["steps"])]})
        one = pooled([(r["oneshot"]["drag_change"], r["oneshot"].get("drag_change_ci95")) for r in rs])
        table[param] = {"rounds": per_round, "oneshot": one,
                        "below_training_min": {r["car"]: r["surrogate"]["best"]["Cd"] < train_min for r in rs},
                        "cases": {r["car"]: r["surrogate"]["cases_used"] for r in rs},
                        "cpu_hours": {r["car"]: r["cpu_hours"] for r in rs}}
    report = {"command": shlex.join(["python", "scripts/pipeline/reproduce_campaign.py", *sys.argv[1:]]),
              "machine": machine_facts(), "cars": cars, "training_min_Cd": train_min,
              "verify": {"preset": cfg.optimize.verify_preset, "runs": cfg.optimize.verify_runs},
              "table": table, "per_car": results, "seconds_this_invocation": time.perf_counter() - t0,
              "note": "drag changes are fractions against each car's verified start shape; intervals are 95% "
                      "bootstrap intervals over the cars carrying each car's own run-to-run noise. cma_same_cases: "
                      "the CMA-ES run's best verified shape within the CFD cases the surrogate campaign had used by "
                      "that round. Training Cd are the coarse preset's labels, verified Cd the verify preset's "
                      "(both read ~35% above medium: docs/cfd.md)."}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "campaign.json", report)
    lines = ["# Campaign headline", "", f"`{report['command']}` ({report['machine']['cpu_model']})", ""]
    for param, t in table.items():
        lines += [f"## {param}", "", "| round | surrogate campaign | CMA-ES, same cases | one-shot |",
                  "|---|---|---|---|"]
        for row in t["rounds"]:
            lines.append(f"| {row['round']} | {fmt(row['surrogate'])} | {fmt(row['cma_same_cases'])} | "
                         f"{fmt(t['oneshot'])} |")
        lines.append("")
    (args.out / "campaign.md").write_text("\n".join(lines) + "\n")
    plot(table, args.out / "campaign.png")
    log.info("%s", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
