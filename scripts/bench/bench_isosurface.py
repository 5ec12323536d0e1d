"""Benchmark the differentiable iso-surface: full grid vs fast (coarse-to-fine + narrow band), per iteration.

On the shipped car decoder, an optimization trajectory (Adam on the latent code of training car 0, driving its
enclosed volume to car 1's through Theorem 1) is run for ``--iters`` iterations per mode and resolution; each
iteration is one extraction plus the backward pass to z. Reported per configuration: decoder queries on the grid,
wall time (median over iterations after the first), the first extraction's time (the extraction alone) and
queries, and the peak
resident memory of the process that ran it. Run on an otherwise idle machine:

    .venv/bin/python scripts/bench/bench_isosurface.py --resolutions 64 128

Writes benchmarks/isosurface.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.frame import CAR_BOUNDS
from aero_opt.core.machine import machine_facts
from aero_opt.geometry.isosurface import FastOptions, extract, mesh_volume
from aero_opt.meshsdf.decoder import load_model

ROOT = Path(__file__).resolve().parents[2]


def run_config(model: str, resolution: int, fast: bool, iters: int, lr: float, queue: mp.Queue) -> None:
    """One configuration in its own process (so peak memory is its own)."""
    torch.set_num_threads(os.cpu_count() or 1)
    dec, latents, _ = load_model(Path(model))
    for p in dec.parameters():
        p.requires_grad_(False)
    with torch.no_grad():  # the trajectory: Adam on car 0's code to reach car 1's volume (shapes stay cars)
        v1, f1, _ = extract(dec, latents[1], resolution, bounds=CAR_BOUNDS)
        target = float(mesh_volume(v1, f1))
    z = latents[0].clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    state = None
    times, queries, first = [], [], {}
    for it in range(iters):
        t0 = time.perf_counter()
        v, f, state = extract(dec, z, resolution, bounds=CAR_BOUNDS, state=state, fast=fast,
                              options=FastOptions(refresh_every=10))
        t_extract = time.perf_counter() - t0
        loss = (mesh_volume(v, f) - target).square()
        opt.zero_grad()
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if it == 0:
            first = {"seconds": t_extract, "iteration_seconds": dt, "queries": state.queries,
                     "vertices": int(len(v))}
        else:
            times.append(dt)
            queries.append(state.queries)
    queue.put({"resolution": resolution, "mode": "fast" if fast else "full", "iters": iters,
               "first_extraction": first, "median_seconds_per_iter": statistics.median(times),
               "median_queries_per_iter": statistics.median(queries), "grid_points": resolution**3,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0})


def agreement(model: str, resolution: int, codes: int) -> dict[str, object]:
    """How often the fast first extraction gives the full grid's mesh, over the first ``codes`` training codes
    (faces equal, vertices within 1e-5: the decoder's values differ in the last bits between batchings)."""
    dec, latents, _ = load_model(Path(model))
    dec.requires_grad_(False)
    differing = []
    n = min(codes, len(latents))
    with torch.no_grad():
        for k in range(n):
            v_full, f_full, _ = extract(dec, latents[k], resolution, bounds=CAR_BOUNDS)
            v, f, _ = extract(dec, latents[k], resolution, bounds=CAR_BOUNDS, fast=True)
            if not (torch.equal(f, f_full) and torch.allclose(v, v_full, atol=1e-5)):
                differing.append({"code": k, "faces_full": int(len(f_full)), "faces_fast": int(len(f))})
    return {"resolution": resolution, "codes": n, "equal": n - len(differing), "differing": differing}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "data" / "models" / "car_decoder"))
    ap.add_argument("--resolutions", nargs="+", type=int, default=[64, 128])
    ap.add_argument("--iters", type=int, default=12)
    ap.add_argument("--lr", type=float, default=0.005)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "isosurface.json")
    ap.add_argument("--agreement-codes", type=int, default=250,
                    help="training codes on which the fast first extraction is compared with the full grid's mesh")
    ap.add_argument("--agreement-resolution", type=int, default=64)
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    rows = []
    for res in args.resolutions:
        for fast in (False, True):
            q = ctx.Queue()
            p = ctx.Process(target=run_config, args=(args.model, res, fast, args.iters, args.lr, q))
            p.start()
            p.join()
            if p.exitcode != 0 or q.empty():
                print(f"error: resolution {res} {'fast' if fast else 'full'} failed (see above)", file=sys.stderr)
                return 1
            rows.append(q.get())
            r = rows[-1]
            print(f"{res:4d} {r['mode']:5s} first {r['first_extraction']['seconds']:.2f}s "
                  f"({r['first_extraction']['queries']} q)  per-iter {r['median_seconds_per_iter']:.3f}s "
                  f"({r['median_queries_per_iter']:.0f} q)  peak {r['peak_rss_mb']:.0f} MB", flush=True)
    ratios = {}
    for res in args.resolutions:
        full = next(r for r in rows if r["resolution"] == res and r["mode"] == "full")
        fast = next(r for r in rows if r["resolution"] == res and r["mode"] == "fast")
        ratios[str(res)] = {
            "query_fraction_per_iter": fast["median_queries_per_iter"] / full["median_queries_per_iter"],
            "speedup_per_iter": full["median_seconds_per_iter"] / fast["median_seconds_per_iter"],
            "first_extraction_speedup": full["first_extraction"]["seconds"] / fast["first_extraction"]["seconds"],
        }
    out = {"command": "python scripts/bench/bench_isosurface.py " + " ".join(sys.argv[1:]), "model": args.model,
           "bounds": CAR_BOUNDS, "rows": rows, "ratios": ratios,
           "targets": {"query_fraction_per_iter_128": "<= 0.1", "speedup_per_iter_128": ">= 5",
                       "first_extraction_speedup_128": ">= 4"},
           "first_extraction_agreement": agreement(args.model, args.agreement_resolution, args.agreement_codes)
           if args.agreement_codes > 0 else None,
           **machine_facts()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, out)
    print(json.dumps(ratios, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
