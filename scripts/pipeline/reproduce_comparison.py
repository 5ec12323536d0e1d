"""The headline experiment (MeshSDF Table 3, and beyond): every parameterization on held-out cars, every initial
and final shape checked by OpenFOAM.

    .venv/bin/python scripts/pipeline/reproduce_comparison.py --cars 8 --workers 2

Runs ``aero-opt compare`` on the first ``--cars`` cars of the dataset's test split (resumable; work in
results/comparison/) and copies the table (CSV and Markdown), the charts, each car's MeshSDF before/after
picture and a JSON summary with the command to docs/results/.

The work folder is carried across sessions (:mod:`aero_opt.core.carry`): its finished optimizations and OpenFOAM
verdicts are restored from ``--carry`` (default ``docs/results/work/<work folder name>``) before the run and saved
there every 10 minutes and at the end; commit that folder to keep a partial run.
"""

from __future__ import annotations

import argparse
import csv
import logging
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from aero_opt.app.compare import REBUILT, recorded_models, run_compare
from aero_opt.app.config import load_config
from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.carry import add_carry_arguments, carried, chosen_mirror
from aero_opt.geometry.dataset import split_names

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cars", type=int, default=8, help="test-split cars to use")
    ap.add_argument("--iters", type=int, default=None, help="override optimize.iters")
    ap.add_argument("--workers", type=int, default=2, help="OpenFOAM cases side by side")
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=ROOT / "results" / "comparison")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    add_carry_arguments(ap)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data = ROOT / "data"
    cars = split_names(data / "dataset", "test")[: args.cars]
    cfg = load_config(args.config).optimize
    if args.iters is not None:
        cfg = replace(cfg, iters=args.iters)
    t0 = time.perf_counter()
    surrogate_dir, decoder_dir = data / "models" / "surrogate", data / "models" / "car_decoder"
    carry = chosen_mirror(args, ROOT, args.work)
    with carried(args.work, carry, skip=REBUILT):
        table = run_compare(cars, ["all"], args.work, cfg, surrogate_dir, decoder_dir, data / "dataset",
                            do_verify=True, workers=args.workers)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.work / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for name in ("results.csv", "results.md"):
        shutil.copy(args.work / name, args.out / f"comparison_{name}")
    for name in ("comparison.png", "surrogate_vs_cfd.png"):
        shutil.copy(args.work / name, args.out / name)
    shapes = args.out / "comparison_shapes"
    shapes.mkdir(exist_ok=True)
    for car in cars:
        shutil.copy(args.work / car / "meshsdf" / "before_after.png", shapes / f"{car}_meshsdf.png")
    write_json_atomic(args.out / "comparison.json", {
        "command": "python scripts/pipeline/reproduce_comparison.py " + " ".join(sys.argv[1:]), "cars": cars,
        "iterations": cfg.iters, "verify_preset": cfg.verify_preset,
        "models_sha256": recorded_models(args.work), "table": table,
        "optimization_seconds": round(sum(float(r["seconds"]) for r in rows), 1),
        "seconds_this_invocation": round(time.perf_counter() - t0, 1),
        "note": "optimization_seconds: the optimizations' own time, summed; seconds_this_invocation: the wall time "
                "of the command that wrote this file (finished runs and OpenFOAM cases are reused, so a resumed "
                "invocation can take seconds)"})
    logging.info("%s", (args.work / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
