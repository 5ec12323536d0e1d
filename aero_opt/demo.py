"""The main job behind ``make demo``.

For now (foundation stage): generate a small reproducible set of parametric cars, import the three real car
meshes shipped in ``data/real_cars/``, draw all of them into one PNG and write a summary. Later stages replace
this with the optimization demo (same entry point).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import trimesh

from aero_opt.carset import generate_cars
from aero_opt.config import load_config
from aero_opt.frame import CAR_FRAME
from aero_opt.mesh_import import export_mesh, import_mesh
from aero_opt.render import draw_mesh
from aero_opt.sdf import SampleSpec, sample_sdf, write_json_atomic

log = logging.getLogger(__name__)

REAL_CARS: dict[str, dict[str, Any]] = {
    "drivaer_fastback_body.obj.gz": {"forward": "-x", "up": "+z", "clearance": 0.15},
    "ferrari_roma_lowpoly_kulonee.glb": {"forward": "+z", "up": "+y", "clearance": 0.0},
    "carconcept_khronos.ply": {"forward": "+z", "up": "+y", "clearance": 0.0},
}
"""Orientation of the shipped real cars (see data/README.md); the DrivAer shell has no wheels, so it is lifted
to a 15 cm ride height."""


def run_demo(out: Path, config: Path | None = None, n_cars: int = 6, seed: int = 0,
             data_dir: Path | None = None) -> dict[str, Any]:
    """Generate cars, import the real cars, sample one SDF, draw everything; returns the summary.

    Writes ``out/cars/`` (meshes, params.json), ``out/real_cars/`` (imported STL + import reports),
    ``out/cars.png`` and ``out/summary.json``.
    """
    cfg = load_config(config)
    data_dir = data_dir or Path(__file__).resolve().parent.parent / "data"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cars = generate_cars(out / "cars", n=n_cars, seed=seed, style="all", wing_fraction=0.5, edge=cfg.cars.edge)
    t_cars = time.perf_counter() - t0
    meshes: list[tuple[str, trimesh.Trimesh]] = []
    for i in range(n_cars):
        meshes.append((f"car_{i:04d}", trimesh.load(out / "cars" / f"car_{i:04d}.stl", process=False)))
    reports = {}
    (out / "real_cars").mkdir(exist_ok=True)
    for name, orient in REAL_CARS.items():
        src = data_dir / "real_cars" / name
        t1 = time.perf_counter()
        mesh, rep = import_mesh(src, opts=cfg.mesh_import, **orient)
        stem = name.split(".")[0]
        export_mesh(mesh, out / "real_cars" / f"{stem}.stl")
        rep["seconds"] = round(time.perf_counter() - t1, 2)
        write_json_atomic(out / "real_cars" / f"{stem}_import.json", rep)
        reports[stem] = {"repair": rep["repair"]["method"], "input": rep["input"], "faces": rep["output"]["faces"],
                         "bbox_relative_change": rep["bbox_relative_change"], "seconds": rep["seconds"],
                         "length_m": round(float(mesh.extents[0]), 3)}
        meshes.append((stem, mesh))
        log.info("imported %s: %s (%.1f s)", name, rep["repair"]["method"], rep["seconds"])
    v, f = meshes[0][1].vertices, meshes[0][1].faces
    t2 = time.perf_counter()
    pts, sdf = sample_sdf(v, f, CAR_FRAME, SampleSpec(n_samples=cfg.sdf.n_samples), np.random.default_rng(seed))
    t_sdf = time.perf_counter() - t2
    _picture(meshes, out / "cars.png")
    summary = {
        "cars": cars, "seconds_cars": round(t_cars, 2), "real_cars": reports,
        "sdf_samples": {"mesh": meshes[0][0], "faces": int(len(f)), "n": int(len(sdf)),
                        "seconds": round(t_sdf, 2), "inside_fraction": round(float((sdf < 0).mean()), 4)},
        "picture": str(out / "cars.png"),
    }
    write_json_atomic(out / "summary.json", summary)
    log.info("%-32s %8s %8s %s", "car", "length", "faces", "note")
    for name, mesh in meshes:
        note = reports.get(name, {}).get("repair", "generated")
        log.info("%-32s %7.2fm %8d %s", name, mesh.extents[0], len(mesh.faces), note)
    log.info("SDF samples: %d points in %.2f s; picture: %s", len(sdf), t_sdf, out / "cars.png")
    return summary


def _picture(meshes: list[tuple[str, trimesh.Trimesh]], path: Path) -> None:
    """Three-quarter views of all meshes in a grid, titled with name and length."""
    cols = 3
    rows = int(np.ceil(len(meshes) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 2.8 * rows))
    for ax, (name, mesh) in zip(np.ravel(axes), meshes):
        draw_mesh(ax, mesh.vertices, mesh.faces, "three_quarter")
        ax.set_title(f"{name}  ({mesh.extents[0]:.2f} m, {len(mesh.faces)} faces)", fontsize=9)
    for ax in np.ravel(axes)[len(meshes):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
