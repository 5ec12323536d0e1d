"""Benchmark: fitting a latent code to held-out cars, the DeepSDF fit (mean code, 800 steps) against the default fit
(target: at most 60 s per car on 2 cores with a mean Chamfer no worse than the DeepSDF fit's).

Run on an otherwise idle machine:  .venv/bin/python scripts/bench/bench_fit.py [--cars 8]
Writes benchmarks/fit.json: per car and per arm the wall time of the fit (sampling excluded, the nearest-code search
included) and the Chamfer-L2 of the extracted mesh against the car's surface (normalized frame, the decoder's
evaluation grid), side by side in one run, with the machine. Arms: ``deepsdf`` (mean code, the decoder's 800
steps: the fit before), ``default`` (the config's fit: mean code, 200 steps) and ``nearest`` (the default's steps
from the nearest training code).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.frame import CAR_FRAME
from aero_opt.core.machine import machine_facts
from aero_opt.geometry.dataset import load_car, split_names
from aero_opt.geometry.isosurface import extract
from aero_opt.geometry.sdf import CHAMFER_POINTS, SampleSpec, chamfer_l2, sample_sdf, surface_points
from aero_opt.meshsdf.config import FitConfig, TrainSDFConfig
from aero_opt.meshsdf.decoder import grid_bounds, load_model
from aero_opt.meshsdf.fit import fit_latent, nearest_code
from aero_opt.meshsdf.samples import ShapeSamples

ROOT = Path(__file__).resolve().parents[2]
TARGET_S = 60.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cars", type=int, default=8, help="the first N cars of the test split")
    ap.add_argument("--model", type=Path, default=ROOT / "data" / "models" / "car_decoder")
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dataset")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "fit.json")
    args = ap.parse_args()
    dec, latents, ck = load_model(args.model)
    tcfg = replace(TrainSDFConfig(), **ck["train_config"])
    new = FitConfig()
    arms = {"deepsdf": FitConfig(init="mean", steps=None), "default": new, "nearest": replace(new, init="nearest")}
    rows = []
    for name in split_names(args.data, "test")[: args.cars]:
        car = load_car(args.data / f"{name}.npz")
        rng = np.random.default_rng(0)
        pts, sdf = sample_sdf(car.verts, car.faces, CAR_FRAME, SampleSpec(n_samples=new.samples), rng)
        surf = surface_points(CAR_FRAME.forward(car.verts), car.faces, CHAMFER_POINTS, rng)
        shape = ShapeSamples(name, torch.from_numpy(pts), torch.from_numpy(sdf), surf, True)
        row = {"car": name}
        for arm, fit in arms.items():
            cfg = fit.applied_to(tcfg)
            t0 = time.perf_counter()
            init = latents[nearest_code(dec, shape, latents, cfg, fit.probes)] if fit.init == "nearest" \
                else latents.mean(dim=0)
            z = fit_latent(dec, shape, cfg, latents.shape[1], init=init, progress=False)
            seconds = time.perf_counter() - t0
            v, f, _ = extract(dec, z, tcfg.eval_resolution, bounds=grid_bounds(True))
            ch = chamfer_l2(surface_points(v.detach().numpy(), f.numpy(), CHAMFER_POINTS, np.random.default_rng(1)),
                            surf)
            row[arm] = {"seconds": round(seconds, 2), "steps": cfg.fit_steps, "chamfer": ch}
        print(json.dumps(row), flush=True)
        rows.append(row)
    summary = {}
    for arm in arms:
        ratio = [r[arm]["chamfer"] / r["deepsdf"]["chamfer"] for r in rows]
        summary[arm] = {"seconds_mean": round(statistics.mean(r[arm]["seconds"] for r in rows), 2),
                        "seconds_max": max(r[arm]["seconds"] for r in rows),
                        "chamfer_mean": statistics.mean(r[arm]["chamfer"] for r in rows),
                        "chamfer_median": statistics.median(r[arm]["chamfer"] for r in rows),
                        "chamfer_ratio_to_deepsdf_mean": round(statistics.mean(ratio), 4),
                        "chamfer_ratio_to_deepsdf_max": round(max(ratio), 4)}
    s = summary["default"]
    meets = s["seconds_max"] <= TARGET_S and s["chamfer_mean"] <= summary["deepsdf"]["chamfer_mean"]
    result = {"command": "python scripts/bench/bench_fit.py" + (f" --cars {args.cars}" if args.cars != 8 else ""),
              "machine": machine_facts(), "threads": torch.get_num_threads(), "model": str(args.model.name),
              "arms": {k: {"init": v.init, "steps": v.applied_to(tcfg).fit_steps, "probes": v.probes,
                           "samples": v.samples} for k, v in arms.items()},
              "target": {"seconds": TARGET_S, "chamfer": "mean no worse than deepsdf's"},
              "meets_target": bool(meets),
              "speed_up": round(summary["deepsdf"]["seconds_mean"] / s["seconds_mean"], 2),
              "summary": summary, "cars": rows}
    write_json_atomic(args.out, result)
    print(json.dumps({k: result[k] for k in ("meets_target", "speed_up", "summary")}, indent=2))


if __name__ == "__main__":
    main()
