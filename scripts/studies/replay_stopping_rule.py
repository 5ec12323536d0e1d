"""Replay a window-mean stopping rule on the fidelity study's force histories: where would each case have stopped,
and how far is its window mean then from the one at the end of the run?

    .venv/bin/python scripts/studies/replay_stopping_rule.py [--work results/fidelity] \\
        [--presets coarse coarse-layers] [--tols 0.01 0.005] [--out docs/validation/stopping_rule.json]

Reads every finished study case (``<work>/<preset>/<case>/summary.json`` and its force history), rebuilds the Cd
history from the drag force (Cd ∝ Fx), and for each tolerance finds the first iteration ≥ 200 at which the mean
of the last 100 Cd has settled (:func:`aero_opt.cfd.case.mean_settled`). Writes per preset and tolerance: cases
settled, mean and largest stopping iteration, the iterations the runs actually took, and the mean and largest
relative difference between the window mean at the stop and at the end of the run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from aero_opt.cfd.case import mean_settled, read_force_history
from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.machine import machine_facts


def replay(case: Path, window: int, tol: float, min_iter: int = 200) -> tuple[int | None, int, float]:
    """(stopping iteration or None, iterations run, window mean at the end / at the stop − 1) of one case."""
    s = json.loads((case / "summary.json").read_text())
    fx = read_force_history(case)[:, 0]
    cd = fx * s["Cd"] / fx[-1]
    stop = next((i for i in range(min_iter, len(cd) + 1) if mean_settled(cd[:i], window, tol)), None)
    at = stop or len(cd)
    return stop, len(cd), float(cd[-window:].mean() / cd[at - window:at].mean() - 1.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("results/fidelity"))
    ap.add_argument("--presets", nargs="+", default=["coarse", "coarse-layers"])
    ap.add_argument("--tols", nargs="+", type=float, default=[0.01, 0.005])
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path("docs/validation/stopping_rule.json"))
    args = ap.parse_args()
    out: dict[str, dict[str, object]] = {}
    for preset in args.presets:
        cases = sorted(p.parent for p in (args.work / preset).glob("*/summary.json"))
        if not cases:
            print(f"error: {args.work / preset}: no finished study cases", file=sys.stderr)
            return 2
        for tol in args.tols:
            rows = [replay(c, args.window, tol) for c in cases]
            stops = [s or n for s, n, _ in rows]
            diff = np.abs([d for _, _, d in rows])
            out[f"{preset}@{tol}"] = {
                "cases": len(rows), "settled": sum(s is not None for s, _, _ in rows),
                "stop_iteration_mean": float(np.mean(stops)), "stop_iteration_max": int(max(stops)),
                "iterations_run_mean": float(np.mean([n for _, n, _ in rows])),
                "end_vs_stop_mean": float(diff.mean()), "end_vs_stop_max": float(diff.max())}
    write_json_atomic(args.out, {"command": shlex.join(["python", "scripts/studies/replay_stopping_rule.py",
                                                        *sys.argv[1:]]),
                                 "machine": machine_facts(), "window": args.window, "results": out})
    for k, v in out.items():
        print(k, v)
    return 0


if __name__ == "__main__":
    sys.exit(main())
