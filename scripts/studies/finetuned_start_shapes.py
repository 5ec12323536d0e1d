"""Does a fine-tuned decoder give the optimizer better start shapes? OpenFOAM's Cd of each car against the Cd of its
reconstruction by the shipped decoder and by a fine-tuned one.

    .venv/bin/python scripts/studies/finetuned_start_shapes.py --decoder results/finetune_meshsdf/meshsdf_lr1e-05 \\
        [--cars car_0042 ...] [--workers 2] [--work results/finetuned_start] [--out docs/results/finetuned_start] \\
        [--carry DIR | --no-carry]

Every optimization starts from the decoder's reconstruction of the car, not from the car: a reconstruction whose
drag is far from the car's makes part of any drag "gain" the undoing of the reconstruction's error. Per car (a
held-out dataset car: its code is fitted to each decoder as ``aero-opt optimize`` does), this simulates three
shapes with the verification protocol (``optimize.verify_preset`` × ``optimize.verify_runs`` grid-shifted runs):
the car itself, the shipped decoder's start shape and the fine-tuned decoder's start shape, and reports each
shape's Cd (mean and 95% interval), each start shape's Cd error against the car, and its Chamfer-L2 distance to the
car (m², 30k points each way). Resumable (finished shapes and cases are kept in ``--work``, which is carried across
sessions in ``docs/results/work/<name>``, :mod:`aero_opt.core.carry`); writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from aero_opt.app.config import load_config
from aero_opt.app.optimize import Models, start_shape
from aero_opt.cfd.verify import check_shapes
from aero_opt.core.atomic import write_json_atomic, write_text_atomic
from aero_opt.core.carry import add_carry_arguments, carried, chosen_mirror
from aero_opt.core.errors import AeroOptError
from aero_opt.core.machine import machine_facts
from aero_opt.core.runfolder import run_folder
from aero_opt.geometry.dataset import car_stl
from aero_opt.geometry.mesh_import import export_mesh, load_mesh
from aero_opt.geometry.sdf import chamfer_l2

ROOT = Path(__file__).resolve().parents[2]
SHAPES = ("car", "shipped", "tuned")
log = logging.getLogger("finetuned_start_shapes")


def surface_chamfer(a: trimesh.Trimesh, b: trimesh.Trimesh, n: int = 30_000, seed: int = 0) -> float:
    """Chamfer-L2 (m²) between ``n`` points drawn on each mesh's surface (seeded)."""
    pa, _ = trimesh.sample.sample_surface(a, n, seed=seed)
    pb, _ = trimesh.sample.sample_surface(b, n, seed=seed + 1)
    return chamfer_l2(np.asarray(pa), np.asarray(pb))


def start_meshes(car: str, decoders: dict[str, Path], folder: Path, data: Path, cfg: Any) -> dict[str, Path]:
    """The car's STL and each decoder's start shape of it as ``folder/<kind>.stl`` (made once)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {"car": car_stl(data, car, folder)}
    for kind, dec_dir in decoders.items():
        path = folder / f"{kind}.stl"
        if not path.is_file():
            models = Models.load(ROOT / "data" / "models" / "surrogate", dec_dir, symmetric=cfg.optimize.symmetric)
            s = start_shape(car, models, cfg.optimize.resolution, data, cfg.fit)
            export_mesh(trimesh.Trimesh(s.verts, s.faces, process=False), path)
        out[kind] = path
    return out


def report(cars: list[str], meshes: dict[str, dict[str, Path]], verdicts: dict[tuple[str, str], Any],
           command: str, decoder: Path, cfg: Any) -> dict[str, Any]:
    """Per car: each shape's Cd (mean, 95% interval, runs used), each start shape's Cd error against the car and
    its Chamfer-L2 to the car; and over the cars, the mean absolute Cd error of each decoder's start shapes."""
    per_car: dict[str, Any] = {}
    for car in cars:
        row: dict[str, Any] = {}
        target = load_mesh(meshes[car]["car"])
        for kind in SHAPES:
            v = verdicts.get((car, kind))
            if v is None or isinstance(v, AeroOptError):
                row[kind] = {"error": str(v) if v is not None else "not run"}
                continue
            st = v["Cd_stats"]
            row[kind] = {"Cd": v["Cd"], "Cd_ci95": st.get("ci95"), "runs_used": st["n"], "runs_asked": v["runs_asked"]}
            if kind != "car":
                row[kind]["chamfer_m2"] = surface_chamfer(load_mesh(meshes[car][kind]), target)
                if "Cd" in row["car"]:
                    row[kind]["Cd_error"] = v["Cd"] - row["car"]["Cd"]
        per_car[car] = row
    mean_abs = {kind: float(np.mean([abs(r[kind]["Cd_error"]) for r in per_car.values() if "Cd_error" in r[kind]]))
                if any("Cd_error" in r[kind] for r in per_car.values()) else None for kind in SHAPES[1:]}
    return {"command": command, "machine": machine_facts(), "decoder": str(decoder),
            "protocol": {"preset": cfg.optimize.verify_preset, "runs": cfg.optimize.verify_runs},
            "per_car": per_car, "mean_abs_Cd_error": mean_abs,
            "note": "Cd_error: the start shape's Cd minus the car's, both by the protocol above; chamfer_m2: "
                    "Chamfer-L2 between 30k points on the start shape and on the car (m^2)."}


def markdown(r: dict[str, Any]) -> str:
    """The report as a table."""
    def cd(x: dict[str, Any]) -> str:
        if "Cd" not in x:
            return "—"
        ci = f" ± {x['Cd_ci95']:.3f}" if x.get("Cd_ci95") is not None else ""
        return f"{x['Cd']:.3f}{ci} ({x['runs_used']}/{x['runs_asked']})"

    lines = ["# Start shapes from a fine-tuned decoder", "",
             f"`{r['command']}` — {r['machine']['cpu_model']}. Protocol: `{r['protocol']['preset']}` × "
             f"{r['protocol']['runs']} runs; Cd ± 95% half width (runs used / asked). Decoder: `{r['decoder']}`.", "",
             "| car | car Cd | shipped start Cd | error | Chamfer (m²) | fine-tuned start Cd | error | Chamfer (m²) |",
             "|---|---|---|---|---|---|---|---|"]
    for car, row in r["per_car"].items():
        cells = [car, cd(row["car"])]
        for kind in ("shipped", "tuned"):
            x = row[kind]
            cells += [cd(x), f"{x['Cd_error']:+.3f}" if "Cd_error" in x else "—",
                      f"{x['chamfer_m2']:.2e}" if "chamfer_m2" in x else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    m = r["mean_abs_Cd_error"]
    lines += ["", "Mean |Cd error| of the start shapes: shipped "
              + ("—" if m["shipped"] is None else f"{m['shipped']:.3f}") + ", fine-tuned "
              + ("—" if m["tuned"] is None else f"{m['tuned']:.3f}") + "."]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decoder", type=Path, required=True, help="the fine-tuned decoder's folder (checkpoint.pt)")
    ap.add_argument("--cars", nargs="+", default=["car_0042"], help="held-out dataset cars")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=ROOT / "results" / "finetuned_start")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "finetuned_start")
    add_carry_arguments(ap)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command = shlex.join(["python", "scripts/studies/finetuned_start_shapes.py", *sys.argv[1:]])
    data = ROOT / "data" / "dataset"
    try:
        cfg = load_config(args.config)
        decoders = {"shipped": ROOT / "data" / "models" / "car_decoder", "tuned": args.decoder}
        with carried(args.work, chosen_mirror(args, ROOT, args.work)), \
                run_folder(args.work, {"command": "finetuned_start_shapes", "decoder": str(args.decoder),
                                       "protocol": [cfg.optimize.verify_preset, cfg.optimize.verify_runs],
                                       "fit": str(cfg.fit), "resolution": cfg.optimize.resolution}):
            meshes = {car: start_meshes(car, decoders, args.work / car, data, cfg) for car in args.cars}
            verdicts = check_shapes([((car, kind), meshes[car][kind], args.work / car / f"cfd_{kind}")
                                     for car in args.cars for kind in SHAPES], cfg.optimize.verify_preset,
                                    cfg.optimize.verify_runs, cfg.flow.speed, cfg.flow.rho, args.workers)
            result = report(args.cars, meshes, verdicts, command, args.decoder, cfg)
    except AeroOptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_json_atomic(args.out.with_suffix(".json"), result)
    write_text_atomic(args.out.with_suffix(".md"), markdown(result))
    log.info("%s", markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
