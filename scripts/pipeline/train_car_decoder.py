"""Train the shipped car DeepSDF decoder from scratch (one command, resumable).

1. The cars of the train split of the CFD dataset (same generator, seed and split as scripts/pipeline/make_dataset.py)
   are generated and sampled (``--samples`` SDF samples each, car frame) into results/car_sdf/samples/.
2. A decoder (configs/default.yaml: decoder, train_sdf) is trained into results/car_sdf/run/ (resumable).
3. Held-out check: latents are fitted to the first ``--n-test`` test-split cars and Chamfer-L2 is measured.
4. The checkpoint and a report are copied to data/models/car_decoder/.

    .venv/bin/python scripts/pipeline/train_car_decoder.py
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from aero_opt.app.config import load_config
from aero_opt.core.atomic import write_json_atomic
from aero_opt.geometry.carset import family_samples
from aero_opt.geometry.dataset import make_split
from aero_opt.meshsdf.fit import fit_mesh
from aero_opt.meshsdf.train import train

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="size of the car family (as in make_dataset.py)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--wing-fraction", type=float, default=0.25)
    ap.add_argument("--samples", type=int, default=50_000, help="SDF samples per car")
    ap.add_argument("--n-test", type=int, default=8, help="held-out cars to fit for the Chamfer report")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml")
    ap.add_argument("--work", type=Path, default=ROOT / "results" / "car_sdf")
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "models" / "car_decoder")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = load_config(args.config)
    split = make_split([f"car_{i:04d}" for i in range(args.n)], seed=args.seed)
    mesh_dir, sample_dir, test_dir = args.work / "meshes", args.work / "samples", args.work / "test_samples"
    train_ids = [int(n.split("_")[1]) for n in split["train"]]
    test_ids = [int(n.split("_")[1]) for n in split["test"]][: args.n_test]
    t0 = time.perf_counter()
    family_samples(train_ids, mesh_dir, sample_dir, args.seed, args.wing_fraction, args.samples, args.workers)
    family_samples(test_ids, mesh_dir, test_dir, args.seed, args.wing_fraction, args.samples, args.workers)
    t_samples = time.perf_counter() - t0
    run = args.work / "run"
    resume = (run / "checkpoint.pt").is_file()
    rep = train(sample_dir, run, cfg.decoder, cfg.train_sdf, resume=resume)
    held_out = []
    for i in test_ids:
        name = f"car_{i:04d}"
        s = fit_mesh(mesh_dir / f"{name}.stl", run, args.work / "fits" / name)
        held_out.append({"car": name, "chamfer": s["chamfer"], "chamfer_m2": s["chamfer_m2"]})
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copy(run / "checkpoint.pt", args.out / "checkpoint.pt")
    shutil.copy(run / "loss.png", args.out / "loss.png")
    ch = [h["chamfer"] for h in held_out]
    report = {
        "command": "python scripts/pipeline/train_car_decoder.py " + " ".join(sys.argv[1:]),
        "train_cars": len(train_ids), "samples_per_car": args.samples, "seconds_samples": round(t_samples, 1),
        "seconds_training": rep["train_seconds"], "final_l1": rep["final_l1"],
        "decoder": cfg.decoder.__dict__, "train_sdf": cfg.train_sdf.__dict__,
        "train_reconstruction": rep["reconstruction"], "held_out": held_out,
        "held_out_chamfer": {"mean": float(np.mean(ch)), "median": float(np.median(ch)),
                             "mean_m2": float(np.mean([h["chamfer_m2"] for h in held_out]))} if ch else None,
        "chamfer_definition": "mean squared NN distance both ways, 30k points, normalized frame (x 2.75^2 for m^2)",
    }
    write_json_atomic(args.out / "report.json", report)
    if ch:
        logging.info("held-out Chamfer-L2: mean %.3e, median %.3e (normalized)", np.mean(ch), np.median(ch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
