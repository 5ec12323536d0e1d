"""Does fine-tuning the car decoder through the iso-surface (MeshSDF supplementary Table 1) lower the Chamfer
distance, and is the gain due to differentiating through marching cubes? An experiment with a control arm.

    .venv/bin/python scripts/studies/finetune_experiment.py [--lrs 1e-5 1e-6] [--epochs 4] [--n-test 12]
        [--eval-train 16] [--grids 64 128] [--arms meshsdf deepsdf] [--work results/finetune_experiment]
        [--out docs/results/finetune]

Arms, each from the shipped decoder (``--model``) with the same shapes in the same seeded order, the same number
of steps and the same learning rates (decoder ``lr``, training codes ``10 lr``):

- ``meshsdf``: Chamfer-L2 of points on the mesh extracted at ``--resolution`` (fast mode), backpropagated through
  the iso-surface to the decoder weights and the training codes (:func:`aero_opt.meshsdf.finetune.finetune_steps`);
- ``deepsdf`` (control): DeepSDF's clamped-L1 loss on the same shapes' SDF samples, so "more training" alone is
  measured too.

Every decoder (the shipped one and each arm's) is scored on ``--eval-train`` training cars with their codes and on
the first ``--n-test`` cars of the test split (the comparison's cars come first) with codes refitted to that
decoder as ``aero-opt fit`` does, at every grid of ``--grids``. The report gives, per grid and split, the mean and
median Chamfer-L2 and paired per-car relative differences (arm / shipped − 1 and meshsdf / control − 1) with
bootstrap 95% intervals, into ``<out>.json``, ``<out>.md`` and ``<out>.png``.

Resumable: the family's meshes and SDF samples, every arm's fine-tuned checkpoint and every decoder's scores are
kept in ``--work`` as they finish, an arm interrupted mid-way continues from its last finished epoch, and the
report is rewritten after each decoder from what has finished.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shlex
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from aero_opt.core.atomic import save_torch_atomic, write_json_atomic, write_text_atomic  # noqa: E402
from aero_opt.core.checkpoint import load_torch  # noqa: E402
from aero_opt.core.errors import AeroOptError  # noqa: E402
from aero_opt.core.frame import CAR_FRAME  # noqa: E402
from aero_opt.core.machine import machine_facts  # noqa: E402
from aero_opt.core.runfolder import run_folder  # noqa: E402
from aero_opt.core.stats import bootstrap_mean  # noqa: E402
from aero_opt.geometry.carset import family_samples  # noqa: E402
from aero_opt.geometry.dataset import make_split  # noqa: E402
from aero_opt.geometry.mesh_import import load_mesh  # noqa: E402
from aero_opt.geometry.sdf import chamfer_l2, surface_points  # noqa: E402
from aero_opt.meshsdf.config import FinetuneConfig, TrainSDFConfig  # noqa: E402
from aero_opt.meshsdf.decoder import grid_bounds, load_model  # noqa: E402
from aero_opt.meshsdf.finetune import finetune_steps, report  # noqa: E402
from aero_opt.meshsdf.samples import load_samples  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ARMS = ("meshsdf", "deepsdf")
PAPER = "train -8 to -9 %, test -20 to -36 % (cars and chairs), MeshSDF supplementary Table 1"
log = logging.getLogger("finetune_experiment")


def arm_name(arm: str, lr: float) -> str:
    """Folder and key of one arm, e.g. ``meshsdf_lr1e-05``."""
    return f"{arm}_lr{lr:g}"


def finetune_arm(model: Path, folder: Path, cfg: FinetuneConfig, shapes: list, tcfg: TrainSDFConfig,
                 bounds: Any) -> dict[str, Any]:
    """Fine-tune a fresh copy of the shipped decoder with ``cfg`` into ``folder/checkpoint.pt`` (kept when it is
    already there; an interrupted arm resumes from ``folder/partial.pt``, written after every epoch); returns the
    steps taken and their seconds."""
    ck_path, partial = folder / "checkpoint.pt", folder / "partial.pt"
    if ck_path.is_file():
        return json.loads((folder / "steps.json").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    dec, latents, ck = load_model(model)
    codes = torch.nn.Parameter(latents.clone())
    resume = load_torch(partial, ("step", "decoder", "codes", "optimizer", "rng", "rows")) if partial.is_file() \
        else None
    rows = finetune_steps(dec, codes, shapes, cfg, tcfg, bounds, progress=sys.stderr.isatty(), resume=resume,
                          save=lambda state: save_torch_atomic(state, partial))
    info = {"steps": len(rows), "seconds": rows[-1]["seconds"] if rows else 0.0, "config": asdict(cfg),
            "loss_first_epoch": float(np.mean([r["loss"] for r in rows[:len(shapes)]])),
            "loss_last_epoch": float(np.mean([r["loss"] for r in rows[-len(shapes):]]))}
    write_json_atomic(folder / "steps.json", info)
    save_torch_atomic({**{k: v for k, v in ck.items() if k != "optimizer"}, "decoder": dec.state_dict(),
                       "latents": codes.detach().clone(), "finetuned_from": str(model), "finetune": asdict(cfg)},
                      ck_path)
    partial.unlink(missing_ok=True)
    return info


def score(model: Path, folder: Path, shapes: list, eval_idx: list[int], test: list, tcfg: TrainSDFConfig,
          grids: list[int], bounds: Any) -> dict[str, Any]:
    """Chamfer-L2 of decoder ``model`` on the evaluation cars at every grid, kept in ``folder/scores.json``."""
    path = folder / "scores.json"
    if path.is_file():
        return json.loads(path.read_text())
    dec, codes, _ = load_model(model)
    t0 = time.perf_counter()
    out = {"chamfer": report(dec, codes, shapes, eval_idx, test, tcfg, grids, bounds, progress=False),
           "seconds": time.perf_counter() - t0}
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, out)
    return out


def sampling_floor(mesh_dir: Path, names: list[str], points: int, seed: int) -> dict[str, Any]:
    """Chamfer-L2 (normalized units²) between two independent ``points``-point draws on each car's own mesh: what
    a fine-tuning step's loss reads for a perfect reconstruction, i.e. the noise its gradient carries."""
    rng = np.random.default_rng(seed)
    vals = []
    for name in names:
        mesh = load_mesh(mesh_dir / f"{name}.stl")
        v = CAR_FRAME.forward(mesh.vertices)
        vals.append(chamfer_l2(surface_points(v, mesh.faces, points, rng), surface_points(v, mesh.faces, points, rng)))
    return {"points": points, "cars": len(names), "mean": float(np.mean(vals)), "per_car": vals}


def paired(a: list[float], b: list[float]) -> dict[str, Any]:
    """Per-car relative difference a / b − 1: mean with its bootstrap 95% interval, median, cars lower."""
    r = np.asarray(a) / np.asarray(b) - 1.0
    return {**bootstrap_mean(r.tolist()).as_dict(), "median": float(np.median(r)), "lower": int((r < 0).sum())}


def summarize(scores: dict[str, dict[str, Any]], lrs: list[float], grids: list[int]) -> dict[str, Any]:
    """Per grid and split: each decoder's mean and median, and the paired differences against the shipped
    decoder and (for ``meshsdf``) against the control at the same learning rate."""
    base = scores["shipped"]["chamfer"]
    out: dict[str, Any] = {}
    for g in map(str, grids):
        out[g] = {}
        for split in ("train", "test"):
            rows: dict[str, Any] = {"shipped": {k: base[g][split][k] for k in ("mean", "median")}}
            for lr in lrs:
                for arm in ARMS:
                    key = arm_name(arm, lr)
                    if key not in scores:
                        continue
                    c = scores[key]["chamfer"][g][split]
                    rows[key] = {"mean": c["mean"], "median": c["median"],
                                 "vs_shipped": paired(c["per_shape"], base[g][split]["per_shape"])}
                ms, ctl = arm_name("meshsdf", lr), arm_name("deepsdf", lr)
                if ms in scores and ctl in scores:
                    rows[ms]["vs_control"] = paired(scores[ms]["chamfer"][g][split]["per_shape"],
                                                    scores[ctl]["chamfer"][g][split]["per_shape"])
            out[g][split] = rows
    return out


def markdown(result: dict[str, Any]) -> str:
    """The report as a Markdown table per grid."""
    lines = ["# Fine-tuning through the iso-surface, against a control", "",
             f"`{result['command']}` — {result['machine']['cpu_model']}, {result['machine']['cpu_count']} cores.",
             f"{result['train_cars_scored']} training cars (their codes), {result['test_cars']} held-out cars "
             "(codes refitted to each decoder). Chamfer-L2 in normalized units² (× 2.75² for m²). Paired: per-car "
             "relative difference, mean [95% bootstrap interval], cars lower / all.", "",
             f"Paper: {PAPER}.", ""]
    for g, splits in result["summary"].items():
        lines += [f"## Grid {g}³", "", "| decoder | split | mean | median | vs shipped | vs control |",
                  "|---|---|---|---|---|---|"]
        for split, rows in splits.items():
            for key, r in rows.items():
                def fmt(p: dict[str, Any] | None) -> str:
                    if p is None:
                        return ""
                    return (f"{100 * p['mean']:+.1f}% [{100 * p['ci95_low']:+.1f}, {100 * p['ci95_high']:+.1f}] "
                            f"{p['lower']}/{p['n']}")
                lines.append(f"| {key} | {split} | {r['mean']:.3e} | {r['median']:.3e} | {fmt(r.get('vs_shipped'))} "
                             f"| {fmt(r.get('vs_control'))} |")
        lines.append("")
    f = result.get("step_loss_sampling_floor")
    lines += ["## Arms", ""]
    if f:
        lines += [f"A meshsdf step's loss (Chamfer-L2 of {f['points']} points each way) reads {f['mean']:.3e} for a "
                  f"perfect reconstruction (two independent draws on the car's own mesh, mean of {f['cars']} cars): "
                  "the part of it no decoder can remove.", ""]
    lines += ["| arm | steps | fine-tune s | loss, first → last epoch |", "|---|---|---|---|"]
    for key, a in result["arms"].items():
        lines.append(f"| {key} | {a['steps']} | {a['seconds']:.0f} | {a['loss_first_epoch']:.3e} → "
                     f"{a['loss_last_epoch']:.3e} |")
    return "\n".join(lines) + "\n"


def figure(result: dict[str, Any], path: Path) -> None:
    """Paired relative change against the shipped decoder, per arm, grid and split, with 95% intervals."""
    grids = list(result["summary"])
    fig, axes = plt.subplots(1, len(grids), figsize=(5.5 * len(grids), 3.8), squeeze=False, sharey=True)
    for ax, g in zip(axes[0], grids):
        for j, split in enumerate(("train", "test")):
            rows = [(k, r["vs_shipped"]) for k, r in result["summary"][g][split].items() if "vs_shipped" in r]
            for i, (_, p) in enumerate(rows):
                x = i + 0.2 * (2 * j - 1)
                ax.errorbar(x, 100 * p["mean"], yerr=[[100 * (p["mean"] - p["ci95_low"])],
                                                      [100 * (p["ci95_high"] - p["mean"])]],
                            fmt="o" if split == "train" else "s", color="C0" if split == "train" else "C1",
                            label=("training cars" if split == "train" else "held-out cars") if i == 0 else None)
            ax.set_xticks(range(len(rows)), [k.replace("_lr", "\nlr ") for k, _ in rows], fontsize=8)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_title(f"grid {g}³")
        ax.set_ylabel("Chamfer-L2 vs shipped decoder, %")
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize=8)
    fig.suptitle("Paired per-car change, mean and 95% bootstrap interval (below 0: better)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "data" / "models" / "car_decoder")
    ap.add_argument("--lrs", type=float, nargs="+", default=[1e-5, 1e-6], help="decoder learning rates")
    ap.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS),
                    help="arms to run (a subset only makes a decoder to use elsewhere: give it its own --out)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--resolution", type=int, default=64, help="grid of the meshsdf arm's extractions")
    ap.add_argument("--points", type=int, default=5000, help="points (or SDF samples) per step")
    ap.add_argument("--n-test", type=int, default=12, help="held-out cars: the first of the test split")
    ap.add_argument("--eval-train", type=int, default=16, help="training cars scored")
    ap.add_argument("--grids", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--family", type=int, default=300, help="size of the car family the decoder was trained on")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="processes making SDF samples")
    ap.add_argument("--work", type=Path, default=ROOT / "results" / "finetune_experiment")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "finetune")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        return run(args)
    except AeroOptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    """The experiment (see the module docstring); returns the exit code."""
    command = "python scripts/studies/finetune_experiment.py " + " ".join(map(shlex.quote, sys.argv[1:]))
    ck_file = args.model / "checkpoint.pt"
    if not ck_file.is_file():
        raise AeroOptError(f"{args.model}: no checkpoint.pt")
    identity = {"model_sha256": hashlib.sha256(ck_file.read_bytes()).hexdigest(), "lrs": args.lrs,
                "epochs": args.epochs, "resolution": args.resolution, "points": args.points, "n_test": args.n_test,
                "eval_train": args.eval_train, "grids": args.grids, "family": args.family, "seed": args.seed,
                **({} if tuple(args.arms) == ARMS else {"arms": args.arms})}
    with run_folder(args.work, {"command": "finetune_experiment", "identity": identity}):
        _, latents, ck = load_model(args.model)
        split = make_split([f"car_{i:04d}" for i in range(args.family)], seed=args.seed)
        if list(ck["names"]) != split["train"]:
            raise AeroOptError(f"{args.model}: not trained on the train split of a {args.family}-car family "
                               f"(seed {args.seed})")
        ids = [int(n.split("_")[1]) for n in split["train"]]
        test_ids = [int(n.split("_")[1]) for n in split["test"]][:args.n_test]
        log.info("SDF samples of %d training and %d held-out cars", len(ids), len(test_ids))
        family_samples(ids, args.work / "meshes", args.work / "samples", args.seed, n_samples=50_000,
                       workers=args.workers)
        family_samples(test_ids, args.work / "meshes", args.work / "test_samples", args.seed, n_samples=50_000,
                       workers=args.workers)
        shapes, test = load_samples(args.work / "samples"), load_samples(args.work / "test_samples")
        tcfg = replace(TrainSDFConfig(), **ck["train_config"])
        bounds = grid_bounds(bool(ck["car_frame"]))
        rng = np.random.default_rng(args.seed)
        eval_idx = sorted(rng.choice(len(shapes), size=min(args.eval_train, len(shapes)), replace=False).tolist())
        scores, arms = {}, {}
        floor = sampling_floor(args.work / "meshes", [shapes[i].name for i in eval_idx], args.points, args.seed)

        def write() -> dict[str, Any]:
            result = {"command": command, "machine": machine_facts(), "model": str(args.model.relative_to(ROOT))
                      if args.model.is_relative_to(ROOT) else str(args.model), **identity,
                      "train_cars_scored": len(eval_idx), "test_cars": len(test),
                      "test_names": [s.name for s in test], "train_names_scored": [shapes[i].name for i in eval_idx],
                      "fit": "aero-opt fit defaults (mean code start, 200 Adam steps)", "paper_table1": PAPER,
                      "chamfer_definition": "mean squared NN distance both ways, 30k points on the mesh, "
                                            "normalized frame (x 2.75^2 for m^2)",
                      "step_loss_sampling_floor": floor, "arms": arms, "scores": scores,
                      "summary": summarize(scores, args.lrs, args.grids)}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(args.out.with_suffix(".json"), result)
            write_text_atomic(args.out.with_suffix(".md"), markdown(result))
            figure(result, args.out.with_suffix(".png"))
            return result

        log.info("scoring the shipped decoder")
        scores["shipped"] = score(args.model, args.work / "shipped", shapes, eval_idx, test, tcfg, args.grids,
                                  bounds)
        write()
        for lr in args.lrs:
            for arm in args.arms:
                key = arm_name(arm, lr)
                cfg = FinetuneConfig(arm=arm, epochs=args.epochs, lr_decoder=lr, lr_latent=10 * lr,
                                     points=args.points, resolution=args.resolution, seed=args.seed)
                log.info("arm %s: fine-tuning", key)
                arms[key] = finetune_arm(args.model, args.work / key, cfg, shapes, tcfg, bounds)
                log.info("arm %s: %d steps in %.0f s; scoring", key, arms[key]["steps"], arms[key]["seconds"])
                scores[key] = score(args.work / key, args.work / key, shapes, eval_idx, test, tcfg, args.grids,
                                    bounds)
                write()
    log.info("wrote %s.{json,md,png}", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
