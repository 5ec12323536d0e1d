"""How many cars have room for the package in metres, and a picture of it in one car.

    .venv/bin/python scripts/validation/package_fit.py [--every 8] [--show car_0000] \\
        [--out docs/validation/package_fit]

Places :class:`constraints.packaging.PackageSpec` (the shipped sizes, or ``--config``'s ``optimize.package``) in
every ``--every``-th dataset car and writes ``<out>.json`` (per car: where each part went and its clearance, or
why it was refused; counts per body style and per refused part; seconds per car) and ``<out>.png`` (side, plan and
front views of ``--show`` with the parts).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

from aero_opt.app.config import load_config  # noqa: E402
from aero_opt.core.atomic import write_json_atomic  # noqa: E402
from aero_opt.core.errors import AeroOptError  # noqa: E402
from aero_opt.core.machine import machine_facts  # noqa: E402
from aero_opt.core.progress import progress_bar  # noqa: E402
from aero_opt.geometry.dataset import load_car  # noqa: E402
from constraints.packaging import PlacedPackage, place_package  # noqa: E402

log = logging.getLogger("package_fit")

COLOURS = {"hips": "tab:blue", "shoulders": "tab:cyan", "heads": "tab:purple", "legs": "tab:green",
           "engine": "tab:red", "front_wheels": "black", "rear_wheels": "black"}


def refused_part(message: str) -> str:
    """The part a refusal names (occupants, engine bay, front or rear wheels)."""
    for part in ("engine bay", "front occupants", "front wheels", "rear wheels"):
        if part in message:
            return part
    return "other"


def draw(verts: np.ndarray, faces: np.ndarray, placed: PlacedPackage, title: str, path: Path) -> None:
    """Side (x-z), plan (x-y) and front (y-z) views of the car's silhouette with the parts' sample points."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2), gridspec_kw={"width_ratios": [2.4, 2.4, 1.1]})
    for ax, (i, j), name in zip(axes, ((0, 2), (0, 1), (1, 2)), ("side", "plan", "front")):
        tri = verts[faces][:, :, [i, j]]
        ax.add_collection(PolyCollection(tri, facecolor="0.88", edgecolor="none"))
        for part, pts in placed.parts.items():
            ax.scatter(pts[:, i], pts[:, j], s=2, c=COLOURS.get(part, "tab:orange"), label=part.replace("_", " "))
        ax.set_aspect("equal")
        ax.autoscale()
        ax.set_title(name)
        ax.set_xlabel("xyz"[i] + " (m)")
        ax.set_ylabel("xyz"[j] + " (m)")
    handles, labels = axes[0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    fig.legend(seen.values(), seen.keys(), loc="lower center", ncol=len(seen), markerscale=5, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/dataset"))
    ap.add_argument("--every", type=int, default=8, help="take every N-th dataset car")
    ap.add_argument("--show", default="car_0000", help="the car of the picture")
    ap.add_argument("--config", type=Path, default=None, help="a config whose optimize.package to place")
    ap.add_argument("--out", type=Path, default=Path("docs/validation/package_fit"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        spec = load_config(args.config).optimize.package
        files = sorted(args.data.glob("car_*.npz"))
        if not files:
            raise AeroOptError(f"{args.data}: no car_*.npz files")
        if args.every < 1:
            raise AeroOptError(f"--every {args.every}: must be at least 1")
    except AeroOptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    chosen = files[::args.every]
    if args.show not in {f.stem for f in chosen} and (args.data / f"{args.show}.npz").is_file():
        chosen.append(args.data / f"{args.show}.npz")
    cars, seconds, styles = {}, [], Counter()
    fit_by_style, refused = Counter(), Counter()
    for f in progress_bar(chosen, desc="package", unit="car"):
        car = load_car(f)
        style = str(car.params.get("style", "imported"))
        styles[style] += 1
        t0 = time.perf_counter()
        try:
            placed = place_package(car.verts, car.faces, spec, name=f.stem)
        except AeroOptError as exc:
            cars[f.stem] = {"style": style, "refused": str(exc)}
            refused[refused_part(str(exc))] += 1
            continue
        finally:
            seconds.append(time.perf_counter() - t0)
        d = placed.describe()
        d.pop("spec")
        cars[f.stem] = {"style": style, **d}
        fit_by_style[style] += 1
        if f.stem == args.show:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            draw(np.asarray(car.verts), np.asarray(car.faces), placed,
                 f"{f.stem} ({style}): two front occupants (SAE J1100 sizes of a mid-size sedan), engine bay, "
                 f"{spec.tyre} wheels", args.out.with_suffix(".png"))
    report = {
        "command": shlex.join(["python", "scripts/validation/package_fit.py", *sys.argv[1:]]),
        "machine": machine_facts(), "spec": asdict(spec),
        "cars": len(chosen), "fit": sum(fit_by_style.values()),
        "fit_by_style": {s: f"{fit_by_style[s]}/{n}" for s, n in sorted(styles.items())},
        "refused_by_part": dict(refused), "seconds_per_car_mean": float(np.mean(seconds)),
        "seconds_per_car_max": float(np.max(seconds)), "per_car": cars,
    }
    write_json_atomic(args.out.with_suffix(".json"), report)
    log.info("%d of %d cars have room for the package (%s); refused by part: %s; %.1f s per car", report["fit"],
             report["cars"], report["fit_by_style"], dict(refused), report["seconds_per_car_mean"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
