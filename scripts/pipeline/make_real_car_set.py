"""Simulate the three shipped real cars as a separate real-car test set for the surrogate.

Each car is imported (orientation and ride height as in aero_opt/app/demo.py: REAL_CARS), turned into the same kind of
mesh the surrogate sees (exact SDF on the dataset grid, marching cubes, back to metres), simulated at the coarse
preset, and stored in the dataset format as data/real_cars_cfd/<name>.npz with summary.json.

    .venv/bin/python scripts/pipeline/make_real_car_set.py
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import trimesh

from aero_opt.cfd.case import run_case
from aero_opt.cfd.results import case_to_dataset
from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.errors import AeroOptError
from aero_opt.geometry.dataset import grid_mesh
from aero_opt.geometry.mesh_import import REAL_CARS, import_mesh

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="coarse")
    ap.add_argument("--speed", type=float, default=15.0)
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--work", type=Path, default=ROOT / "results" / "real_cars_cfd")
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "real_cars_cfd")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for file, orient in REAL_CARS.items():
        name = file.split(".")[0]
        stl = args.work / f"{name}_mc.stl"
        if not stl.is_file():
            mesh, _ = import_mesh(ROOT / "data" / "real_cars" / file, **orient)
            trimesh.Trimesh(*grid_mesh(mesh.vertices, mesh.faces), process=False).export(stl)
        case = args.work / name
        try:
            if (case / "summary.json").is_file():
                s = json.loads((case / "summary.json").read_text())
            else:
                s = run_case(stl, case, preset_name=args.preset, speed=args.speed, procs=args.procs)
        except AeroOptError as exc:
            logging.error("%s failed: %s", name, exc)
            rows[name] = {"failed": str(exc)}
            continue
        case_to_dataset(case, stl, args.out / f"{name}.npz", {"source": file, **orient})
        rows[name] = {k: s[k] for k in ("Cd", "Cd_pressure", "Cd_viscous", "Cl", "A_ref", "cells", "iterations",
                                        "converged", "half_model")}
        rows[name]["seconds"] = s["seconds"]["total"]
        logging.info("%s: Cd %.3f, %d cells, %.0f s", name, s["Cd"], s["cells"], s["seconds"]["total"])
    write_json_atomic(args.out / "summary.json", {"command": "python scripts/pipeline/make_real_car_set.py "
                                                  + " ".join(sys.argv[1:]), "preset": args.preset,
                                                  "speed": args.speed, "cars": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
