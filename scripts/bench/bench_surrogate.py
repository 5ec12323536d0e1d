"""Benchmark the surrogate on CPU: forward + backward (to the vertices) of the shipped SplineCNN on a ~10k-vertex car
mesh, forward alone, one SplineConv layer (32 -> 32 and 64 -> 64) with the project's implementation and with PyG's
compiled ``torch_spline_conv`` kernel side by side in one run (the whole model with PyG's kernel takes minutes), and the
OpenFOAM coarse-case time from the dataset for the speed-up over CFD. ``--widths`` also times the shipped
architecture at other widths (random weights; what a wider model would cost against the 1 s target). The shipped
model's forward + backward is also timed with trainable weights (what freezing them in ``Surrogate`` saves), side by
side in the same run. The model is timed in float32 and in bfloat16; the headline figures use the precision the
optimizer picks on this CPU (``bf16: null``, :func:`surrogate.spline_conv.resolve_bf16`), which the JSON records
with the CPU's model and vector capability (bfloat16 is fast only where oneDNN runs it natively). With ``--cfd`` the
bench also runs the same car through OpenFOAM's coarse preset on this machine (1 core, as the dataset was made;
~1-3 min), so the speed-up over CFD is a ratio of two times measured in one run; without it the ratio uses the
dataset's median case time, measured on the machine that made the dataset.

Run on an otherwise idle machine:  .venv/bin/python scripts/bench/bench_surrogate.py
Writes benchmarks/surrogate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import trimesh
from torch_geometric.nn import SplineConv as PygSplineConv

from aero_opt.cfd.case import run_case
from aero_opt.core.atomic import recorded_path, write_json_atomic
from aero_opt.core.machine import cpu_model
from aero_opt.geometry.dataset import load_car
from aero_opt.geometry.mesh_import import export_mesh
from surrogate.graph import build_graph
from surrogate.model import Surrogate
from surrogate.spline_conv import SplineConv, resolve_bf16
from surrogate.splinecnn import PressureSplineCNN

ROOT = Path(__file__).resolve().parents[2]


def _time_layer(conv: torch.nn.Module, x: torch.Tensor, ei: torch.Tensor, pseudo: torch.Tensor,
                repeats: int) -> float:
    times = []
    for _ in range(repeats):
        xx = x.clone().requires_grad_(True)
        t0 = time.perf_counter()
        conv(xx, ei, pseudo).square().sum().backward()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _time(sur: Surrogate, verts: torch.Tensor, faces: torch.Tensor, repeats: int, backward: bool,
          bf16: bool) -> float:
    times = []
    for _ in range(repeats + 1):  # the first call warms up
        v = verts.clone().requires_grad_(backward)
        t0 = time.perf_counter()
        with torch.set_grad_enabled(backward):
            out = sur.coefficients(v, faces, bf16=bf16)[:, 0].sum()
            if backward:
                out.backward()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def _time_cfd(verts: np.ndarray, faces: np.ndarray) -> dict[str, float | int | bool]:
    """Run the car through OpenFOAM's coarse preset (1 core) in a temporary folder; wall time and run facts."""
    with tempfile.TemporaryDirectory(prefix="bench_cfd_") as tmp:
        stl = Path(tmp) / "car.stl"
        export_mesh(trimesh.Trimesh(verts, faces, process=False), stl)
        t0 = time.perf_counter()
        s = run_case(stl, Path(tmp) / "case", preset_name="coarse", procs=1)
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "cells": int(s["cells"]), "iterations": int(s["iterations"]),
            "converged": bool(s["converged"]), "cd": float(s["Cd"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--car", type=Path, default=None, help="dataset car (default: the first in data/dataset)")
    ap.add_argument("--model", type=Path, default=ROOT / "data" / "models" / "surrogate",
                    help="surrogate folder whose model is timed (default: the shipped one)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--widths", type=int, nargs="*", default=[],
                    help="also time forward + backward of the shipped architecture at these widths")
    ap.add_argument("--cfd", action="store_true",
                    help="also time OpenFOAM's coarse preset on the same car here (needs OpenFOAM; 1-3 min)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "surrogate.json")
    ap.add_argument("--note", default=None,
                    help="free text stored as note_machine (e.g. which machine, whether it was idle)")
    args = ap.parse_args()
    car_path = args.car or sorted((ROOT / "data" / "dataset").glob("car_*.npz"))[0]
    car = load_car(car_path)
    verts = torch.as_tensor(car.verts, dtype=torch.float32)
    faces = torch.as_tensor(car.faces)
    sur = Surrogate.load(args.model)  # the shipped model: its architecture is what users run
    cfg = sur.model.cfg
    model_times = {f"{'bf16' if bf16 else 'fp32'}_{'forward_backward_to_vertices' if bwd else 'forward'}":
                   _time(sur, verts, faces, args.repeats, bwd, bf16) for bf16 in (False, True) for bwd in (True, False)}
    bf16 = resolve_bf16(None)  # what the optimizer and training use here by default
    precision = "bf16" if bf16 else "fp32"
    t_model = model_times[f"{precision}_forward_backward_to_vertices"]
    sur.model.requires_grad_(True)  # as a training model: the backward pass also computes every weight gradient
    t_trainable = _time(sur, verts, faces, args.repeats, True, bf16)
    sur.model.requires_grad_(False)
    by_width = {str(w): _time(Surrogate(PressureSplineCNN(replace(cfg, width=w)), sur.max_value), verts, faces,
                              args.repeats, True, bf16) for w in args.widths}  # random weights
    g = build_graph(verts, faces, sur.max_value)
    layers = {}
    torch.manual_seed(0)
    for width in (cfg.width, 64):
        x = torch.randn(len(verts), width)
        ours = SplineConv(width, width)
        ref = PygSplineConv(width, width, dim=3, kernel_size=3)
        t_ours = _time_layer(ours, x, g.edge_index, g.pseudo, args.repeats)
        t_pyg = _time_layer(ref, x, g.edge_index, g.pseudo, 1)
        layers[f"{width}x{width}"] = {"project_splineconv": t_ours, "pyg_torch_spline_conv": t_pyg,
                                      "speedup": t_pyg / t_ours}
    summary = json.loads((ROOT / "data" / "dataset" / "summary.json").read_text())
    cfd_dataset = summary["seconds_per_case"]["median"]
    cfd_here = _time_cfd(car.verts, car.faces) if args.cfd else None
    cfd = cfd_here["seconds"] if cfd_here else cfd_dataset
    out = {"command": "python scripts/bench/bench_surrogate.py " + shlex.join(sys.argv[1:]),
           **({"note_machine": args.note} if args.note else {}), "car": car_path.name,
           "vertices": int(len(verts)), "edges": int(g.edge_index.shape[1]), "model": cfg.__dict__,
           "model_dir": recorded_path(args.model, ROOT),
           "model_seconds": model_times, "target_seconds": 1.0, "default_precision": precision,
           "forward_backward_seconds": t_model, "forward_backward_trainable_weights_seconds": t_trainable,
           "note_frozen": "model_seconds use frozen weights (Surrogate freezes them: the optimizer needs only the "
                          "vertex gradient); the trainable-weights figure also computes the weight gradients",
           **({"forward_backward_seconds_by_width": by_width} if by_width else {}),
           "note_precision": "bf16: dense matmuls in bfloat16 under torch.autocast; fp32: everything in float32; "
                             "default_precision: what bf16: null picks on this CPU (the headline figures)",
           "layer_forward_backward_seconds": layers,
           "openfoam_coarse_seconds_per_case": cfd_dataset,
           "note_openfoam": "openfoam_coarse_seconds_per_case: the dataset's median case (data/dataset/summary.json, "
                            "two 1-core cases side by side on the machine that made it); openfoam_coarse_this_run: "
                            "the bench car at the coarse preset on this machine, alone, 1 core (--cfd); the "
                            "speed-ups use the latter when it was measured",
           **({"openfoam_coarse_this_run": cfd_here} if cfd_here else {}),
           "speedup_vs_cfd_forward_backward": cfd / t_model,
           "speedup_vs_cfd_forward": cfd / model_times[f"{precision}_forward"],
           "cpu_count": os.cpu_count(), "machine": platform.machine(), "cpu_model": cpu_model(),
           "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch_threads": torch.get_num_threads(),
           "note": "one layer with PyG's compiled kernel is timed once (it takes tens of seconds); the whole model "
                   "with it would take minutes"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, out)
    print(json.dumps(out, indent=2))
    return 0 if np.isfinite(t_model) else 1


if __name__ == "__main__":
    sys.exit(main())
