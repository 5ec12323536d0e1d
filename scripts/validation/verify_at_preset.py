"""Re-verify a finished comparison or demo with another CFD protocol: do the drag changes OpenFOAM measured hold
at a finer preset, or with repeated runs?

    .venv/bin/python scripts/validation/verify_at_preset.py results/comparison --verify-preset medium \\
        [--verify-runs 1] [--workers 2] --out docs/results/reverify_medium

``aero-opt compare --verify`` and ``aero-opt demo`` simulate every start shape and final shape with the
configured protocol (``cfd`` in each run's ``summary.json``). This re-simulates the same STL files with
``--verify-preset`` and ``--verify-runs`` grid-shifted runs per shape into ``<car>/<key>_initial`` and
``<car>/<param>/<key>_final`` (``key`` = ``cfd_<preset>``, or ``cfd_<preset>_x<runs>`` with several runs;
resumable: finished cases are reused; the comparison's own cases and entries are not touched), adds ``key`` to
each run's summary, and writes to ``--out`` the comparison's tables for this protocol (``results.md``: drag change
per parameterization with its 95% interval over the cars, and each parameterization against MeshSDF with its
interval and significance; where on the car the Cd changed, per surface region; ``results.csv``, the charts) and
``summary.json``: per run, the drag change by the surrogate, by the comparison's own verification and by this
protocol, and the Cd change per region under both (what each fidelity rewarded).

Hours of CPU: the comparison folder is carried across sessions (:mod:`aero_opt.core.carry`, restored from and
saved to ``--carry``, default ``docs/results/work/<folder name>``, every 10 minutes); commit that folder to keep a
partial re-verification.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from aero_opt.app.compare import REBUILT, region_change, result_row, summarize, verify_runs, write_tables
from aero_opt.cfd.verify import check_verification
from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.carry import add_carry_arguments, carried, chosen_mirror
from aero_opt.core.errors import AeroOptError
from aero_opt.core.machine import machine_facts
from aero_opt.geometry.regions import BODY_REGIONS
from parameterizations import NAMES

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("verify_at_preset")


def finished_runs(root: Path) -> list[tuple[str, str, Path]]:
    """(car, parameterization, run folder) of every finished, verified run under a comparison or demo folder
    (``<car>/<param>/summary.json`` with a ``cfd`` entry), sorted."""
    runs = []
    for summary in sorted(root.glob("*/*/summary.json")):
        run_dir = summary.parent
        if run_dir.name in NAMES and "cfd" in json.loads(summary.read_text()):
            runs.append((run_dir.parent.name, run_dir.name, run_dir))
    return runs


def protocol_key(preset: str, runs: int) -> str:
    """The summary entry (and case prefix) of a verification protocol."""
    return f"cfd_{preset}" if runs == 1 else f"cfd_{preset}_x{runs}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="a folder made by aero-opt compare --verify or aero-opt demo")
    ap.add_argument("--verify-preset", "--preset", dest="preset", default="medium")
    ap.add_argument("--verify-runs", dest="runs", type=int, default=1, help="grid-shifted runs per shape")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True, help="output folder of the tables and summary.json")
    add_carry_arguments(ap)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        check_verification(args.preset, args.runs)
    except AeroOptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    carry = chosen_mirror(args, ROOT, args.root)
    try:
        with carried(args.root, carry, skip=REBUILT):
            runs = finished_runs(args.root)
            if not runs:
                raise AeroOptError(f"{args.root}: no finished runs verified by OpenFOAM (<car>/<param>/summary.json "
                                   "with 'cfd')")
            key = protocol_key(args.preset, args.runs)
            verify_runs(runs, args.preset, args.workers, progress=True, key=key, n_runs=args.runs)
            rows = [result_row(car, param, run_dir, key) for car, param, run_dir in runs]  # caches regions.json,
            own_regions = {(car, param): region_change(run_dir) for car, param, run_dir in runs}  # carried too
    except AeroOptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    own = {(car, param): json.loads((run_dir / "summary.json").read_text())["cfd"]["drag_change"]
           for car, param, run_dir in runs}
    params = [p for p in NAMES if any(r["param"] == p and r["cfd_change"] is not None for r in rows)]
    if not params:
        print(f"error: {args.root}: no run has both its start and final shape verified with {key}", file=sys.stderr)
        return 2
    table = summarize([r for r in rows if r["param"] in params], params)
    write_tables([r for r in rows if r["param"] in params], table, args.out)
    write_json_atomic(args.out / "summary.json", {
        "command": " ".join(["python scripts/validation/verify_at_preset.py", *sys.argv[1:]]),
        "machine": machine_facts(), "root": str(args.root), "preset": args.preset, "runs_per_shape": args.runs,
        "key": key, "table": table,
        "per_run": [{"car": r["car"], "param": r["param"], "surrogate": r["surrogate_change"],
                     "own_verification": own[(r["car"], r["param"])], "this_protocol": r["cfd_change"],
                     "this_protocol_ci95": r["cfd_change_ci95"], "Cd_initial": r["cfd_Cd_initial"],
                     "Cd_final": r["cfd_Cd_final"], "runs_used": r["cfd_runs"],
                     "dCd_by_region": {n: r[f"cfd_dCd_{n}"] for n in BODY_REGIONS},
                     "own_dCd_by_region": own_regions[(r["car"], r["param"])]} for r in rows],
        "note": "drag changes are final / initial drag - 1 (fractions); own_verification is the comparison's own "
                "check ('cfd' in each run's summary), this_protocol the same STL files simulated with the preset "
                "and runs above. A shape with no usable run leaves its row out of the table. dCd_by_region: "
                "final minus initial Cd per region of the car's surface under this protocol (own_: under the "
                "comparison's own; None where a case's surface is gone)."})
    for p in params:
        t = table[p]
        log.info("%-9s surrogate %+.1f %%, %s %+.1f %% [%+.1f, %+.1f]", p, 100 * t["surrogate_change_mean"], key,
                 100 * t["cfd_change_mean"], *(100 * c for c in (t["cfd_change_ci95"] or [float("nan")] * 2)))
    log.info("-> %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
