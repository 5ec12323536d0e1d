"""Benchmark the main job: the wall time of ``aero-opt demo`` (what ``make demo`` runs) from a set-up checkout.

Runs the demo into a fresh temporary folder (the shipped data and models, the default config, the OpenFOAM check
included unless ``--no-verify``), then records the total wall time, the time of each part the demo's own summary
reports (and of each OpenFOAM case: iterations, convergence, seconds per stage), and the machine. Run on an
otherwise idle machine:

    .venv/bin/python scripts/bench/bench_demo.py

Writes benchmarks/demo.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.machine import machine_facts

ROOT = Path(__file__).resolve().parents[2]
TARGET_SECONDS = 600.0
"""The main job's target: ten minutes on the project's 2-core machine."""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-verify", action="store_true", help="leave out the OpenFOAM check")
    ap.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "demo.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "aero_opt.app", "--quiet", "demo", "--out", str(Path(tmp) / "demo")]
        if args.no_verify:
            cmd.append("--no-verify")
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=ROOT)
        seconds = time.perf_counter() - t0
        if r.returncode != 0:
            print(f"error: the demo failed (exit {r.returncode})", file=sys.stderr)
            return 1
        parts, cases = {}, {}
        for summary in sorted((Path(tmp) / "demo").rglob("summary.json")):
            try:
                s = json.loads(summary.read_text())
            except ValueError:
                continue
            name = str(summary.parent.relative_to(Path(tmp) / "demo"))
            if "preset" in s and isinstance(s.get("seconds"), dict):  # an OpenFOAM case
                cases[name] = {"iterations": s.get("iterations"), "converged": s.get("converged"),
                               "cells": s.get("cells"), "seconds": s["seconds"]}
                continue
            for key in ("fit_seconds", "optimize_seconds", "seconds", "verify_seconds"):
                if isinstance(s.get(key), (int, float)):
                    parts[f"{name}/{key}"] = s[key]
    out = {"command": "python scripts/bench/bench_demo.py " + " ".join(sys.argv[1:]), "demo_command": cmd[1:4] +
           ["demo", "--out", "<temporary folder>"] + (["--no-verify"] if args.no_verify else []),
           "seconds": seconds, "minutes": seconds / 60.0, "target_seconds": TARGET_SECONDS,
           "meets_target": seconds <= TARGET_SECONDS, "parts": parts, "cfd_cases": cases,
           "load": args.note, **machine_facts()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, out)
    print(f"demo: {seconds / 60:.1f} min (target {TARGET_SECONDS / 60:.0f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
