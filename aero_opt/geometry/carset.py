"""Write a reproducible set of parametric cars to a folder: meshes, every parameter, and a summary; or the SDF
samples of chosen cars of the family (the car decoder's training and held-out data)."""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.errors import AeroOptError
from aero_opt.core.progress import progress_bar
from aero_opt.geometry.mesh_import import export_mesh
from aero_opt.geometry.sdf import SampleSpec, samples_for_mesh_file
from aero_opt.geometry.shapes import STYLES, make_car, sample_car_params

log = logging.getLogger(__name__)


def car_style(i: int, style: str) -> str:
    """Style of car ``i``: the given one, or fastback/notchback/estate in turn for ``style="all"``."""
    if style == "all":
        return STYLES[i % len(STYLES)]
    if style not in STYLES:
        raise AeroOptError(f"--style {style!r}: choose from {', '.join(STYLES)} or all")
    return style


def generate_cars(out_dir: Path, n: int, seed: int, style: str = "all", wing_fraction: float = 0.25,
                  edge: float = 0.045, progress: bool = True) -> dict[str, Any]:
    """Generate ``n`` cars into ``out_dir`` as ``car_0000.stl``... plus ``params.json`` and ``summary.json``.

    Car ``i`` depends only on ``(seed, i, style)``: the first cars of a larger set are the same cars, and
    the same arguments give the same bytes. Existing files are overwritten atomically.

    Args:
        out_dir: output folder (created).
        n: number of cars (>= 1).
        seed: random seed.
        style: fastback, notchback, estate or all.
        wing_fraction: probability of a rear wing for fastbacks and notchbacks.
        edge: target triangle edge length (m).
        progress: show a progress bar.

    Returns:
        The summary dict that is also written to ``summary.json``.
    """
    if n < 1:
        raise AeroOptError(f"--n {n}: must be at least 1")
    if not 0.0 <= wing_fraction <= 1.0:
        raise AeroOptError(f"wing_fraction {wing_fraction}: must be in [0, 1]")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for i in progress_bar(range(n), desc="cars", unit="car", enabled=progress):
        st = car_style(i, style)
        rng = np.random.default_rng([seed, i])
        params = sample_car_params(rng, st, wing_fraction=wing_fraction)
        mesh = make_car(params, edge=edge)
        name = f"car_{i:04d}"
        export_mesh(mesh, out_dir / f"{name}.stl")
        records.append({"id": name, "file": f"{name}.stl", "params": params.to_dict(),
                        "faces": int(len(mesh.faces)), "volume_m3": round(float(mesh.volume), 6),
                        "area_m2": round(float(mesh.area), 6), "genus": int((2 - mesh.euler_number) // 2),
                        "bounds_m": np.round(mesh.bounds, 6).tolist()})
    write_json_atomic(out_dir / "params.json", {"seed": seed, "style": style, "wing_fraction": wing_fraction,
                                                "edge_m": edge, "cars": records})
    lengths = np.array([r["params"]["length"] for r in records])
    summary = {
        "n": n, "seed": seed, "style": style,
        "styles": {s: sum(r["params"]["style"] == s for r in records) for s in STYLES},
        "with_wing": sum(bool(r["params"]["wing"]) for r in records),
        "length_m": {"min": float(lengths.min()), "max": float(lengths.max()), "mean": float(lengths.mean())},
        "faces_mean": float(np.mean([r["faces"] for r in records])),
        "genus_counts": {str(g): sum(r["genus"] == g for r in records) for g in sorted({r["genus"] for r in records})},
        "out": str(out_dir),
    }
    write_json_atomic(out_dir / "summary.json", summary)
    return summary


def _car_samples(i: int, seed: int, wing_fraction: float, n: int, mesh_dir: Path, sample_dir: Path) -> str:
    name = f"car_{i:04d}"
    out = sample_dir / f"{name}.npz"
    stl = mesh_dir / f"{name}.stl"
    if not stl.is_file():
        params = sample_car_params(np.random.default_rng([seed, i]), car_style(i, "all"), wing_fraction)
        export_mesh(make_car(params), stl)
    if not out.is_file():
        samples_for_mesh_file(stl, out, SampleSpec(n_samples=n), seed=i)
    return name


def family_samples(ids: list[int], mesh_dir: Path, sample_dir: Path, seed: int = 0, wing_fraction: float = 0.25,
                   n_samples: int = 50_000, workers: int = 2) -> list[str]:
    """SDF samples of cars ``ids`` of the family (all styles in turn, as ``aero-opt cars --style all``).

    Car ``i`` is written once as ``mesh_dir/car_{i:04d}.stl`` (default edge) and sampled once into
    ``sample_dir/car_{i:04d}.npz`` (``n_samples`` samples, car frame, seed ``i``); files already present are kept,
    so an interrupted call resumes.

    Returns:
        The car names, in the order of ``ids``.
    """
    for d in (mesh_dir, sample_dir):
        Path(d).mkdir(parents=True, exist_ok=True)
    k = len(ids)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_car_samples, ids, [seed] * k, [wing_fraction] * k, [n_samples] * k,
                             [Path(mesh_dir)] * k, [Path(sample_dir)] * k))
