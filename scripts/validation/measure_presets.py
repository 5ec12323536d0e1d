"""Measure the cost of each CFD preset on this machine: cells and wall time per stage for one dataset car.

    .venv/bin/python scripts/validation/measure_presets.py [--car 0] [--procs 1] [--fine-mesh-only]

coarse and medium run the full case; fine is meshed only by default (its solve is for bigger machines).
Writes docs/validation/presets.json (with the command and whether other work shared the CPU, which the caller
states with --note).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import trimesh

from aero_opt.cfd.case import run_case
from aero_opt.core.atomic import write_json_atomic
from aero_opt.geometry.dataset import load_car

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--car", type=int, default=0, help="dataset car index")
    ap.add_argument("--procs", type=int, default=1, help="MPI ranks of simpleFoam")
    ap.add_argument("--presets", nargs="+", default=["coarse", "medium", "fine"])
    ap.add_argument("--solve-fine", action="store_true", help="also solve the fine case (hours on 2 cores)")
    ap.add_argument("--note", default="", help="conditions of the measurement (e.g. other work on the CPU)")
    ap.add_argument("--work", type=Path, default=ROOT / "results" / "presets")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "validation" / "presets.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    car = load_car(ROOT / "data" / "dataset" / f"car_{args.car:04d}.npz")
    args.work.mkdir(parents=True, exist_ok=True)
    stl = args.work / f"car_{args.car:04d}.stl"
    trimesh.Trimesh(car.verts.astype(np.float64), car.faces, process=False).export(stl)
    rows = json.loads(args.out.read_text())["presets"] if args.out.is_file() else {}
    for name in args.presets:
        case = args.work / name
        if case.exists():
            shutil.rmtree(case)
        mesh_only = name == "fine" and not args.solve_fine
        s = run_case(stl, case, preset_name=name, procs=args.procs, mesh_only=mesh_only)
        rows[name] = {k: s.get(k) for k in ("cells", "Cd", "Cd_pressure", "Cd_viscous", "iterations", "converged",
                                              "seconds", "mesh_only")}
        rows[name]["procs"] = args.procs
        logging.info("%s: %s", name, rows[name])
        command = "python scripts/validation/measure_presets.py " + " ".join(sys.argv[1:])
        write_json_atomic(args.out, {"command": command,
                                     "car": f"car_{args.car:04d}", "dataset_cd": car.cd, "vertices": len(car.verts),
                                     "cpu_count": os.cpu_count(), "note": args.note, "presets": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
