"""Make the shipped CFD dataset: generated cars -> marching-cubes meshes -> OpenFOAM (coarse) -> data/dataset/.

Resumable: rerun the same command after an interruption; finished cars are kept, interrupted cases redone,
failed cases recorded (with their reason) and not retried. Works in chunks so progress can be committed.

    .venv/bin/python scripts/pipeline/make_dataset.py --n 300 --workers 2

Outputs: data/dataset/car_XXXX.npz (format: aero_opt/geometry/dataset.py), data/dataset/split.json,
data/dataset/summary.json (settings, the command, per-car Cd and time, failures and why).
Work files (meshes, cases) go to results/dataset_work/ (not committed).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import trimesh

from aero_opt.cfd.batch import case_status, run_batch
from aero_opt.cfd.executor import CaseExecutor, ClusterConfig
from aero_opt.cfd.results import case_to_dataset
from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.frame import CAR_BOUNDS
from aero_opt.geometry.carset import car_style
from aero_opt.geometry.dataset import DATASET_RESOLUTION, grid_mesh, make_split
from aero_opt.geometry.mesh_import import export_mesh
from aero_opt.geometry.shapes import make_car, sample_car_params

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("make_dataset")


def prepare_mesh(i: int, seed: int, wing_fraction: float, mesh_dir: Path) -> str:
    """Generate car i, compute its exact SDF on the dataset grid, and write the marching-cubes mesh as STL."""
    name = f"car_{i:04d}"
    stl = mesh_dir / f"{name}.stl"
    if stl.is_file() and (mesh_dir / f"{name}.json").is_file():
        return name
    params = sample_car_params(np.random.default_rng([seed, i]), car_style(i, "all"), wing_fraction=wing_fraction)
    car = make_car(params)
    mc = trimesh.Trimesh(*grid_mesh(car.vertices, car.faces), process=False)
    export_mesh(mc, stl)
    write_json_atomic(mesh_dir / f"{name}.json", params.to_dict())
    return name


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--wing-fraction", type=float, default=0.25)
    ap.add_argument("--preset", default="coarse")
    ap.add_argument("--speed", type=float, default=15.0)
    ap.add_argument("--workers", type=int, default=None, help="cases side by side here (default: as many as fit)")
    ap.add_argument("--scheduler", default=None, help="a running Dask scheduler, tcp://HOST:PORT (default: local)")
    ap.add_argument("--chunk", type=int, default=20, help="cars per round (prepare, simulate, collect)")
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "dataset")
    ap.add_argument("--work", type=Path, default=ROOT / "results" / "dataset_work")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    mesh_dir, case_root = args.work / "meshes", args.work / "cases"
    for d in (mesh_dir, case_root, args.out):
        d.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    cluster = ClusterConfig(address=args.scheduler)
    for start in range(0, args.n, args.chunk):
        ids = [i for i in range(start, min(args.n, start + args.chunk))
               if not (args.out / f"car_{i:04d}.npz").is_file()]
        if not ids:
            continue
        prepare = functools.partial(prepare_mesh, seed=args.seed, wing_fraction=args.wing_fraction, mesh_dir=mesh_dir)
        with CaseExecutor(cluster, args.workers) as ex:
            ex.check_shared_folder(mesh_dir)
            prepared = dict(ex.map(prepare, [(i, i) for i in ids], desc="meshes"))
        for i in ids:
            if not isinstance(prepared[i], str):
                log.error("car_%04d: mesh not made, left out: %s", i, prepared[i])
        names = [prepared[i] for i in ids if isinstance(prepared[i], str)]
        chunk_meshes = args.work / "chunk"
        if chunk_meshes.exists():
            for p in chunk_meshes.iterdir():
                p.unlink()
        chunk_meshes.mkdir(exist_ok=True)
        for n in names:
            os.symlink((mesh_dir / f"{n}.stl").resolve(), chunk_meshes / f"{n}.stl")
        run_batch(chunk_meshes, case_root, preset=args.preset, speed=args.speed, workers=args.workers, cluster=cluster)
        for n in names:
            if case_status(case_root / n) == "done":
                params = json.loads((mesh_dir / f"{n}.json").read_text())
                case_to_dataset(case_root / n, mesh_dir / f"{n}.stl", args.out / f"{n}.npz", params)
        write_summary(args, case_root)
        log.info("chunk %d-%d done (%.0f s so far)", ids[0], ids[-1], time.time() - t_start)
    write_summary(args, case_root)
    return 0


def spread(values: list[float]) -> dict[str, float | None]:
    """Min, 10th percentile, median, 90th percentile, max and mean of ``values`` (all None when empty)."""
    keys = ("min", "p10", "median", "p90", "max", "mean")
    if not values:
        return dict.fromkeys(keys)
    v = np.asarray(values, dtype=float)
    stats = (v.min(), *np.percentile(v, [10, 50, 90]), v.max(), v.mean())
    return {k: round(float(x), 5) for k, x in zip(keys, stats)}


def write_summary(args: argparse.Namespace, case_root: Path) -> None:
    """split.json, failures.json and summary.json over everything finished so far.

    Rows come from the committed ``.npz`` files (each carries its case summary) and failures from
    ``failures.json`` (kept across sessions), so the summary survives the loss of the work folder.
    """
    from aero_opt.geometry.dataset import load_car

    names = sorted(p.stem for p in args.out.glob("car_*.npz"))
    split = make_split(names, seed=args.seed)
    write_json_atomic(args.out / "split.json", split)
    fail_path = args.out / "failures.json"
    failures = {f["id"]: f for f in (json.loads(fail_path.read_text()) if fail_path.is_file() else [])}
    for i in range(args.n):
        case = case_root / f"car_{i:04d}"
        if (case / "failed.json").is_file():
            failures[case.name] = {"id": case.name, "reason": json.loads((case / "failed.json").read_text())["reason"]}
    for name in names:
        failures.pop(name, None)
    fail_list = [failures[k] for k in sorted(failures)]
    write_json_atomic(fail_path, fail_list)
    rows = []
    for name in names:
        s = load_car(args.out / f"{name}.npz").case
        rows.append({"id": name, "Cd": round(s["Cd"], 5), "Cd_pressure": round(s["Cd_pressure"], 5),
                     "Cd_viscous": round(s["Cd_viscous"], 5), "cells": s["cells"], "iterations": s["iterations"],
                     "converged": s["converged"], "seconds": s["seconds"]["total"]})
    secs = [float(r["seconds"]) for r in rows]
    cds = [float(r["Cd"]) for r in rows]
    summary = {
        "command": f"python scripts/pipeline/make_dataset.py --n {args.n} --workers {args.workers}",
        "n_requested": args.n, "n_done": len(rows), "n_failed": len(fail_list), "seed": args.seed,
        "wing_fraction": args.wing_fraction, "preset": args.preset, "speed": args.speed, "rho": 1.18,
        "grid": {"resolution": DATASET_RESOLUTION, "bounds": CAR_BOUNDS},
        "split_sizes": {k: len(v) for k, v in split.items()},
        "seconds_per_case": {**spread(secs),
                             "note": "wall time of one case while two 1-core cases ran side by side"},
        "cd": spread(cds),
        "cells": spread([r["cells"] for r in rows]),
        "iterations": spread([r["iterations"] for r in rows]),
        "not_converged": [r["id"] for r in rows if not r["converged"]],
        "failures": fail_list, "cases": rows,
    }
    write_json_atomic(args.out / "summary.json", summary)


if __name__ == "__main__":
    sys.exit(main())
