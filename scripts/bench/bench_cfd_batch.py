"""Benchmark the CFD executor: the same coarse batch through Dask's LocalCluster and through a plain process pool.

    .venv/bin/python scripts/bench/bench_cfd_batch.py [--cases 8] [--preset coarse] [--note "idle, ..."]

Part 1 runs ``--cases`` Ahmed bodies (slants spread over 20-40 degrees, so the cases differ) at ``--preset`` through
``aero-opt cfd batch``'s code path twice, once per executor, in one run on an otherwise idle machine, and reports
the throughput of each and their ratio (the Dask executor must not lose more than 5%). Part 2 measures the
scheduling overhead per case: ``--overhead-cases`` cases of a stand-in solver that returns at once, through each
executor (target: under 50 ms per case). Writes ``benchmarks/cfd_batch.json`` (``--out``) with the CPU model.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

from aero_opt.cfd.batch import run_batch
from aero_opt.cfd.executor import ClusterConfig, local_slots
from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.machine import machine_facts
from aero_opt.geometry.shapes import make_ahmed

ROOT = Path(__file__).resolve().parents[2]
EXECUTORS = {"dask": ClusterConfig(kind="local"), "pool": ClusterConfig(kind="pool")}
MAX_LOSS = 0.05
OVERHEAD_TARGET_S = 0.05


def instant_runner(mesh: Path, case: Path, **kw: object) -> dict:
    """A stand-in solver: writes a finished case at once (scheduling overhead only)."""
    case.mkdir(parents=True, exist_ok=True)
    s = {"Cd": 0.3, "cells": 1, "iterations": 1, "converged": True, "seconds": {"total": 0.0}}
    (case / "summary.json").write_text(json.dumps(s))
    return s


def _meshes(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        slant = 20.0 + 20.0 * i / max(1, n - 1)
        make_ahmed(slant).export(folder / f"ahmed_{i:02d}_{slant:.1f}.stl")
    return folder


def _timed_batch(meshes: Path, out: Path, cluster: ClusterConfig, workers: int, **kw: object) -> tuple[float, dict]:
    t0 = time.perf_counter()
    s = run_batch(meshes, out, workers=workers, cluster=cluster, progress=False, **kw)
    return time.perf_counter() - t0, s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--preset", default="coarse")
    ap.add_argument("--overhead-cases", type=int, default=200)
    ap.add_argument("--note", default="", help="the machine's state, e.g. 'idle'")
    ap.add_argument("--pool-first", action="store_true",
                    help="run the plain pool before Dask (alternate between runs: the first one warms the caches)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "cfd_batch.json")
    args = ap.parse_args()
    workers = local_slots(None, 1)
    with tempfile.TemporaryDirectory() as tmp:
        meshes = _meshes(Path(tmp) / "meshes", args.cases)
        cfd = {}
        order = ["pool", "dask"] if args.pool_first else ["dask", "pool"]
        for name in order:
            seconds, s = _timed_batch(meshes, Path(tmp) / f"cfd_{name}", EXECUTORS[name], workers, preset=args.preset)
            cfd[name] = {"seconds": round(seconds, 1), "cases_per_hour": round(3600 * args.cases / seconds, 1),
                         "done": s["done"], "failed": s["failed"]}
            print(name, cfd[name], flush=True)
        overhead = {}
        small = _meshes(Path(tmp) / "small", args.overhead_cases)
        for name, cluster in EXECUTORS.items():
            seconds, s = _timed_batch(small, Path(tmp) / f"overhead_{name}", cluster, workers,
                                      runner=instant_runner)
            per_case = 1000 * seconds / args.overhead_cases
            overhead[name] = {"seconds": round(seconds, 2), "ms_per_case": round(per_case, 1), "done": s["done"]}
            print(name, overhead[name], flush=True)
    ratio = cfd["dask"]["cases_per_hour"] / cfd["pool"]["cases_per_hour"]
    result = {
        "command": "python scripts/bench/bench_cfd_batch.py " + shlex.join(sys.argv[1:]),
        "cases": args.cases, "preset": args.preset, "workers": workers, "order": order,
        "cfd": cfd, "dask_over_pool_throughput": round(ratio, 3), "max_loss": MAX_LOSS,
        "meets_throughput_target": ratio >= 1.0 - MAX_LOSS,
        "overhead": overhead, "overhead_target_ms": 1000 * OVERHEAD_TARGET_S,
        "meets_overhead_target": overhead["dask"]["ms_per_case"] <= 1000 * OVERHEAD_TARGET_S,
        "note": args.note + ("; " if args.note else "") + "overhead: wall time of a batch of instant stand-in cases "
                "(start-up of the executor included) over the case count",
        **machine_facts(),
    }
    write_json_atomic(args.out, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
