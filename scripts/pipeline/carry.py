"""Save or restore the carry of a long job's work folder (:mod:`aero_opt.core.carry`), to commit partial results
of a job that outlives the session and resume it elsewhere.

    .venv/bin/python scripts/pipeline/carry.py save results/comparison_verify [--mirror DIR] [--skip '*.npz']
    .venv/bin/python scripts/pipeline/carry.py restore results/comparison_verify [--mirror DIR]
    .venv/bin/python scripts/pipeline/carry.py forget results/comparison_verify car_0018/meshsdf/cfd_final

``forget`` drops folders of the work folder from the carry (and deletes them in the work folder), so the job
redoes them.

The mirror defaults to ``docs/results/work/<name of the work folder>``. ``save`` can run while the job runs (it
reads only finished files); the long scripts (``reproduce_comparison.py``, ``verify_at_preset.py``) restore and
save their carry themselves with ``--carry``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from aero_opt.app.compare import REBUILT
from aero_opt.core.atomic import folder_lock
from aero_opt.core.carry import default_mirror, forget, restore, save
from aero_opt.core.errors import AeroOptError

ROOT = Path(__file__).resolve().parents[2]

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("save", "restore", "forget"))
    ap.add_argument("work", type=Path, help="the job's work folder")
    ap.add_argument("folders", nargs="*", default=[], help="forget: folders of the work folder to redo")
    ap.add_argument("--mirror", type=Path, default=None, help="the carry folder (default: docs/results/work/NAME)")
    ap.add_argument("--skip", nargs="+", default=[], metavar="PATTERN",
                    help="file-name patterns the job rebuilds itself, besides report.html (e.g. '*.npz' for "
                         "samples it makes again from a seed)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    mirror = args.mirror or default_mirror(ROOT, args.work)
    try:
        if args.action == "save" and not args.work.is_dir():
            raise AeroOptError(f"{args.work}: no such work folder")
        if args.action in ("restore", "forget") and not mirror.is_dir():
            raise AeroOptError(f"{mirror}: no such carry")
        if (args.action == "forget") != bool(args.folders):
            raise AeroOptError("folders: give them with forget, and only with forget")
        with folder_lock(mirror):
            if args.action == "save":
                logging.info("%d files saved to %s", save(args.work, mirror, (*REBUILT, *args.skip)), mirror)
            elif args.action == "forget":
                for folder in args.folders:
                    shutil.rmtree(args.work / folder, ignore_errors=True)
                logging.info("%d files dropped from %s", forget(mirror, args.folders), mirror)
            else:
                logging.info("%d files restored to %s", restore(mirror, args.work), args.work)
    except (AeroOptError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
