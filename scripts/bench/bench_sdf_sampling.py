"""Benchmark: DeepSDF sample generation speed (target: 250k samples of a 50k-face mesh in under 10 s).

Run on an otherwise idle machine:  .venv/bin/python scripts/bench/bench_sdf_sampling.py
Writes benchmarks/sdf_sampling.json (median of --repeats runs, with the machine's core count).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.frame import CAR_FRAME
from aero_opt.geometry.sdf import SampleSpec, sample_sdf
from aero_opt.geometry.shapes import CarParams, make_car

TARGET_S = 10.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--samples", type=int, default=250_000)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "benchmarks"
                    / "sdf_sampling.json")
    args = ap.parse_args()
    mesh = make_car(CarParams(), edge=0.033)  # ~53k faces
    spec = SampleSpec(n_samples=args.samples)
    times = []
    for i in range(args.repeats):
        t0 = time.perf_counter()
        sample_sdf(mesh.vertices, mesh.faces, CAR_FRAME, spec, np.random.default_rng(i))
        times.append(time.perf_counter() - t0)
    result = {
        "command": "python scripts/bench/bench_sdf_sampling.py",
        "mesh": "default CarParams car, edge 0.033 m", "faces": int(len(mesh.faces)),
        "samples": args.samples, "repeats": args.repeats,
        "seconds_median": round(statistics.median(times), 3), "seconds_all": [round(t, 3) for t in times],
        "samples_per_second": round(args.samples / statistics.median(times)),
        "target_seconds": TARGET_S, "meets_target": statistics.median(times) < TARGET_S,
        "cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
