"""How much of the dataset's Cd is the shape, and how much the coarse mesh? Re-simulate dataset cars with the
background grid shifted along x by fractions of its cell and compare with the stored Cd.

    .venv/bin/python scripts/cfd_label_noise.py [--cars 4] [--shifts 0.33 0.67] [--workers 1]

A shift moves every level of the snappyHexMesh grid relative to the car (the levels are nested halvings of the
background cell) without changing the shape, so the spread of Cd over shifts is the label noise of the coarse
preset. From it: the best R² any model can reach against these labels, 1 − noise variance / Cd variance of the
dataset. The same for the pressure field: each shifted case's surface pressure is sampled onto the dataset mesh
(as the dataset was made) and compared with the stored field by the surrogate's metric, the relative L2 error
over the vertices. Resumable (finished cases are reused). Writes docs/validation/label_noise.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import trimesh

from aero_opt.atomic import write_json_atomic
from aero_opt.cfd.results import case_summary, latest_surface, read_vtk_surface, sample_on_mesh
from aero_opt.dataset import CarSample, load_car
from aero_opt.mesh_import import export_mesh
from aero_opt.optimize import simulate

ROOT = Path(__file__).resolve().parent.parent


def _run(job: tuple[Path, Path, str, float]) -> dict[str, object]:
    stl, case, preset, shift = job
    return simulate(stl, case, preset, grid_shift=shift)


def pressure_rel_l2(car: CarSample, case: Path) -> float:
    """Relative L2 difference (over the vertices) between the car's stored pressure and the pressure of ``case``
    (a re-simulation of the same mesh) sampled onto its vertices the way the dataset was made."""
    summary = case_summary(case)
    p, _ = sample_on_mesh(read_vtk_surface(latest_surface(case), summary["rho"]), car.verts, summary["half_model"])
    ref = car.pressure.astype(np.float64)
    return float(np.linalg.norm(p - ref) / np.linalg.norm(ref))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dataset")
    ap.add_argument("--cars", type=int, default=4, help="the first N cars of the test split")
    ap.add_argument("--shifts", type=float, nargs="+", default=[0.33, 0.67], help="fractions of the background cell")
    ap.add_argument("--preset", default="coarse")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--work", type=Path, default=ROOT / "results" / "label_noise")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "validation" / "label_noise.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    split = json.loads((args.data / "split.json").read_text())
    names = split["test"][: args.cars]
    all_cd = np.array([load_car(p).cd for p in sorted(args.data.glob("car_*.npz"))])
    jobs, meta = [], []
    for name in names:
        car = load_car(args.data / f"{name}.npz")
        stl = args.work / f"{name}.stl"
        if not stl.is_file():
            export_mesh(trimesh.Trimesh(car.verts.astype(np.float64), car.faces, process=False), stl)
        for s in args.shifts:
            jobs.append((stl, args.work / f"{name}_shift{s:.2f}", args.preset, s))
            meta.append((name, s, car.cd))
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(_run, jobs))
    cars: dict[str, dict[str, object]] = {}
    for (name, s, cd0), r, job in zip(meta, results, jobs):
        row = cars.setdefault(name, {"cd_dataset": cd0, "shifted": {}})
        rel = pressure_rel_l2(load_car(args.data / f"{name}.npz"), job[1])
        row["shifted"][f"{s:.2f}"] = {"Cd": r["Cd"], "converged": r["converged"], "cells": r["cells"],
                                      "pressure_rel_l2_vs_dataset": rel}
    within = []
    for row in cars.values():
        cds = np.array([row["cd_dataset"]] + [v["Cd"] for v in row["shifted"].values()])
        row["std"] = float(cds.std(ddof=1))
        row["range"] = float(np.ptp(cds))
        within.append(cds.var(ddof=1))
    noise_var = float(np.mean(within))
    rels = [v["pressure_rel_l2_vs_dataset"] for row in cars.values() for v in row["shifted"].values()]
    summary = {
        "command": "python scripts/cfd_label_noise.py " + " ".join(sys.argv[1:]), "preset": args.preset,
        "shifts_of_background_cell": args.shifts, "cars": cars,
        "noise_std": noise_var**0.5, "dataset_cd_std": float(all_cd.std(ddof=1)),
        "r2_ceiling": 1.0 - noise_var / float(all_cd.var(ddof=1)),
        "pressure_rel_l2_between_labels": {"mean": float(np.mean(rels)), "max": float(np.max(rels))},
        "note": "r2_ceiling: the best R2 a perfect shape-to-Cd model can reach against labels with this noise. "
                "pressure_rel_l2_between_labels: two coarse-preset simulations of the same mesh differ by this "
                "much in the surrogate's field metric (a model that predicts the noise-free field is off by about "
                "1/sqrt(2) of it against one label).",
    }
    write_json_atomic(args.out, summary)
    logging.info("noise std %.4f, dataset Cd std %.4f, R2 ceiling %.3f; pressure rel. L2 between labels %.3f",
                 summary["noise_std"], summary["dataset_cd_std"], summary["r2_ceiling"], float(np.mean(rels)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
