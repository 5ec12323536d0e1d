"""Check a finished comparison or demo at a finer CFD preset: do the drag changes OpenFOAM measured hold there?

    .venv/bin/python scripts/validation/verify_at_preset.py results/demo_run11 --preset medium --workers 2 \\
        --out docs/results/demo/verify_medium.json

``aero-opt compare --verify`` and ``aero-opt demo`` simulate every start shape and final shape with the coarse
preset (``cfd`` in each run's ``summary.json``). This re-simulates the same STL files at ``--preset`` into
``<car>/cfd_<preset>_initial`` and ``<car>/<param>/cfd_<preset>_final`` (resumable: finished cases are reused; the
coarse cases and entries are not touched), adds ``cfd_<preset>`` to each run's summary, and writes a report with
each run's drag change by the surrogate, by the coarse preset and by the finer one, and per parameterization the
mean of each.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from aero_opt.app.compare import verify_runs
from aero_opt.cfd.case import PRESETS
from aero_opt.core.atomic import write_json_atomic, write_text_atomic
from parameterizations import NAMES

log = logging.getLogger("verify_at_preset")


def finished_runs(root: Path) -> list[tuple[str, str, Path]]:
    """(car, parameterization, run folder) of every finished, coarse-verified run under a comparison or demo
    folder (``<car>/<param>/summary.json`` with a ``cfd`` entry), sorted."""
    runs = []
    for summary in sorted(root.glob("*/*/summary.json")):
        run_dir = summary.parent
        if run_dir.name in NAMES and "cfd" in json.loads(summary.read_text()):
            runs.append((run_dir.parent.name, run_dir.name, run_dir))
    return runs


def report_rows(runs: list[tuple[str, str, Path]], key: str) -> list[dict[str, object]]:
    """One row per run with both verifications: the drag change (fraction) by the surrogate, the coarse preset
    (``cfd``) and the finer one (``key``), and the finer preset's Cd of the start and final shapes."""
    rows = []
    for car, param, run_dir in runs:
        s = json.loads((run_dir / "summary.json").read_text())
        if key not in s:
            continue
        rows.append({"car": car, "param": param, "surrogate": s["drag_change"], "coarse": s["cfd"]["drag_change"],
                     "finer": s[key]["drag_change"], "coarse_Cd_initial": s["cfd"]["initial"]["Cd"],
                     "coarse_Cd_final": s["cfd"]["final"]["Cd"], "finer_Cd_initial": s[key]["initial"]["Cd"],
                     "finer_Cd_final": s[key]["final"]["Cd"], "finer_converged_final": s[key]["final"]["converged"]})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="a folder made by aero-opt compare --verify or aero-opt demo")
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True, help="report JSON (a Markdown table is written beside it)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.preset not in PRESETS:
        raise SystemExit(f"--preset: {args.preset!r} is not one of {', '.join(PRESETS)}")
    runs = finished_runs(args.root)
    if not runs:
        raise SystemExit(f"{args.root}: no finished runs verified by OpenFOAM (<car>/<param>/summary.json with 'cfd')")
    key = f"cfd_{args.preset}"
    verify_runs(runs, args.preset, args.workers, progress=True, key=key)
    rows = report_rows(runs, key)
    if not rows:
        raise SystemExit(f"{args.root}: no run has both its start and final shape simulated at {args.preset}")
    params = [p for p in NAMES if any(r["param"] == p for r in rows)]
    mean = {p: {k: float(np.mean([r[k] for r in rows if r["param"] == p])) for k in ("surrogate", "coarse", "finer")}
            for p in params}
    report = {"command": " ".join(["python scripts/validation/verify_at_preset.py", *sys.argv[1:]]),
              "root": str(args.root),
              "preset": args.preset, "runs": len(rows), "mean_drag_change_by_param": mean, "per_run": rows,
              "note": "drag changes are final / initial drag - 1 (fractions); 'coarse' is the comparison's own "
                      "verification, 'finer' the same STL files simulated at the preset above."}
    write_json_atomic(args.out, report)
    lines = [f"| parameterization | runs | drag change: surrogate | coarse OpenFOAM | {args.preset} OpenFOAM |",
             "|---|---|---|---|---|"]
    lines += [f"| {p} | {sum(r['param'] == p for r in rows)} | {100 * m['surrogate']:+.1f} % | "
              f"{100 * m['coarse']:+.1f} % | {100 * m['finer']:+.1f} % |" for p, m in mean.items()]
    write_text_atomic(args.out.with_suffix(".md"), f"`{report['command']}`\n\n" + "\n".join(lines) + "\n")
    for p, m in mean.items():
        log.info("%-9s surrogate %+.1f %%, coarse %+.1f %%, %s %+.1f %%", p, 100 * m["surrogate"],
                 100 * m["coarse"], args.preset, 100 * m["finer"])
    log.info("-> %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
