"""Train a DeepSDF auto-decoder on SDF samples and report its reconstructions' Chamfer distances.

Training (``aero-opt train-sdf``): per step, ``shapes_per_batch`` shapes with ``points_per_shape`` random samples
each; loss = mean |clamp(f(z_i, x), δ) − clamp(s, δ)| + code_reg · mean ‖z_i‖²; Adam on the decoder and on the
latent embedding, learning rates halved every ``lr_halve_every`` epochs. A checkpoint (decoder, latents,
optimizer states, history) is written atomically every ``checkpoint_every`` epochs and at the end; ``--resume``
continues from it. The trained decoder is loaded with :func:`aero_opt.meshsdf.decoder.load_model`; latents of new
shapes are fitted by :mod:`aero_opt.meshsdf.fit`.

Chamfer-L2 (:func:`aero_opt.geometry.sdf.chamfer_l2`, DeepSDF's definition) is measured on 30k surface points each,
in the normalized frame (multiply by 2.75² for m²).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from aero_opt.core.atomic import save_torch_atomic, write_json_atomic
from aero_opt.core.checkpoint import load_torch
from aero_opt.core.distributed import barrier, init_from_env, local_device, sum_gradients, sum_over_ranks
from aero_opt.core.errors import AeroOptError
from aero_opt.core.frame import CAR_SCALE
from aero_opt.core.progress import progress_bar
from aero_opt.geometry.isosurface import EmptySurfaceError, extract
from aero_opt.geometry.sdf import CHAMFER_POINTS, chamfer_l2, surface_points
from aero_opt.meshsdf.config import TrainSDFConfig
from aero_opt.meshsdf.decoder import DecoderConfig, SDFDecoder, clamped_l1, grid_bounds
from aero_opt.meshsdf.samples import ShapeSamples, load_samples

log = logging.getLogger(__name__)


class ExtraLoss(Protocol):
    """A term added to every training step's loss (e.g. :class:`aero_opt.meshsdf.topology.BlendLoss`)."""

    record: dict[str, Any]
    """What the term is and its settings, kept in the checkpoint (a resume with another term is refused)."""

    def __call__(self, dec: SDFDecoder, latents: torch.nn.Embedding, gen: torch.Generator) -> torch.Tensor:
        """The term (a scalar tensor carrying gradients to the decoder and the codes), drawing from ``gen``."""
        ...


def train(data_dir: Path, run_dir: Path, dec_cfg: DecoderConfig, cfg: TrainSDFConfig, resume: bool = False,
          progress: bool = True, device: torch.device | str = "cpu",
          extra_loss: ExtraLoss | None = None) -> dict[str, Any]:
    """Train (or resume) a DeepSDF auto-decoder on ``device`` (the report's extractions run on the CPU); returns
    the final report (also ``run_dir/report.json``). Under ``torchrun`` the processes split every batch's shapes,
    sum their gradients (so K processes take the steps one process would) and only rank 0 writes.
    ``extra_loss`` (one process only) is added to every step's loss."""
    device = local_device(torch.device(device))
    rank, size = init_from_env(device)
    if extra_loss is not None and size > 1:
        raise AeroOptError("an extra training loss runs in one process only (not under torchrun)")
    shapes = load_samples(data_dir)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ck_path = run_dir / "checkpoint.pt"
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    if ck_path.is_file() and not resume:
        raise AeroOptError(f"{run_dir}: already holds a checkpoint; pass --resume to continue or choose a new --out")
    dec = SDFDecoder(dec_cfg)
    latents = torch.nn.Embedding(len(shapes), dec_cfg.latent_size)
    torch.nn.init.normal_(latents.weight, 0.0, cfg.init_std)
    dec.to(device)
    latents.to(device)
    opt = torch.optim.Adam([{"params": dec.parameters(), "lr": cfg.lr_decoder},
                            {"params": latents.parameters(), "lr": cfg.lr_latent}])
    start, history = 0, []
    if resume:
        if not ck_path.is_file():
            raise AeroOptError(f"{run_dir}: --resume given but there is no checkpoint.pt")
        ck = load_torch(ck_path, ("names", "decoder_config", "decoder", "latents", "optimizer", "epoch", "history",
                                  "rng"))
        if ck["names"] != [s.name for s in shapes] or ck["decoder_config"] != asdict(dec_cfg):
            raise AeroOptError(f"{run_dir}: the checkpoint was trained on other data or another decoder config")
        if ck.get("extra_loss") != (extra_loss.record if extra_loss is not None else None):
            raise AeroOptError(f"{run_dir}: the checkpoint was trained with another extra loss "
                               f"({ck.get('extra_loss')}); choose a new --out")
        dec.load_state_dict(ck["decoder"])
        latents.weight.data.copy_(ck["latents"])
        opt.load_state_dict(ck["optimizer"])
        start, history = ck["epoch"], ck["history"]
        gen.set_state(ck["rng"])
    meta = {"names": [s.name for s in shapes], "decoder_config": asdict(dec_cfg), "train_config": asdict(cfg),
            "car_frame": all(s.car_frame for s in shapes), "data": str(data_dir),
            "extra_loss": extra_loss.record if extra_loss is not None else None}
    if rank == 0:
        write_json_atomic(run_dir / "config.json", meta)

    def checkpoint(epoch: int) -> None:
        save_torch_atomic({**meta, "decoder": dec.state_dict(), "latents": latents.weight.detach().clone(),
                      "optimizer": opt.state_dict(), "epoch": epoch, "history": history,
                      "rng": gen.get_state()}, ck_path)

    n = len(shapes)
    t0 = time.perf_counter()
    bar = progress_bar(range(start, cfg.epochs), desc="train-sdf", unit="epoch", enabled=progress and rank == 0,
                       initial=start, total=cfg.epochs)
    dec.train()
    for epoch in bar:
        factor = 0.5 ** (epoch // cfg.lr_halve_every)
        opt.param_groups[0]["lr"] = cfg.lr_decoder * factor
        opt.param_groups[1]["lr"] = cfg.lr_latent * factor
        order = torch.randperm(n, generator=gen)
        losses = []
        for b in range(0, n, cfg.shapes_per_batch):
            idx = order[b:b + cfg.shapes_per_batch]
            pts, tgt, who = [], [], []
            for j, i in enumerate(idx.tolist()):
                s = shapes[i]
                sel = torch.randint(0, len(s.sdf), (cfg.points_per_shape,), generator=gen)  # every rank draws all
                if j % size == rank:
                    pts.append(s.points[sel])
                    tgt.append(s.sdf[sel])
                    who.append(torch.full((cfg.points_per_shape,), i, dtype=torch.long))
            opt.zero_grad(set_to_none=True)
            if size == 1:
                x, y, w = torch.cat(pts).to(device), torch.cat(tgt).to(device), torch.cat(who).to(device)
                pred = dec(latents(w), x)
                loss_l1 = clamped_l1(pred, y, cfg.clamp)
                loss = loss_l1 + cfg.code_reg * latents(idx.to(device)).square().sum(dim=1).mean()
                if extra_loss is not None:
                    loss = loss + extra_loss(dec, latents, gen)
                loss.backward()
                losses.append(loss_l1.item())
            else:
                losses.append(_shard_backward(dec, latents, pts, tgt, who, idx[rank::size], len(idx), cfg, device))
            opt.step()
        history.append({"epoch": epoch + 1, "l1": float(np.mean(losses)), "seconds": time.perf_counter() - t0})
        bar.set_postfix(l1=f"{history[-1]['l1']:.5f}")
        if not math.isfinite(history[-1]["l1"]):
            raise AeroOptError(f"training diverged at epoch {epoch + 1} (loss NaN); lower the learning rates")
        if rank == 0 and ((epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == cfg.epochs):
            checkpoint(epoch + 1)
    bar.close()
    if rank != 0:
        barrier()
        return {"epochs": cfg.epochs, "final_l1": history[-1]["l1"] if history else None, "rank": rank}
    if start >= cfg.epochs:
        checkpoint(cfg.epochs)
    _loss_plot(history, run_dir / "loss.png")
    dec.cpu().eval()
    latents.cpu()
    recon = reconstruction_report(dec, latents.weight.detach(), shapes[: min(5, n)], cfg)
    report = {"epochs": cfg.epochs, "final_l1": history[-1]["l1"] if history else None,
              "train_seconds": history[-1]["seconds"] if history else None, "shapes": n,
              "decoder_flops_per_query": dec.flops_per_query(), "reconstruction": recon}
    write_json_atomic(run_dir / "report.json", report)
    barrier()
    return report


def _shard_backward(dec: SDFDecoder, latents: torch.nn.Embedding, pts: list[torch.Tensor], tgt: list[torch.Tensor],
                    who: list[torch.Tensor], mine: torch.Tensor, batch: int, cfg: TrainSDFConfig,
                    device: torch.device) -> float:
    """This rank's part of one batch: backward of its shapes' share of the batch loss, gradients summed over the
    ranks (the batch gradient); returns the batch's clamped L1 (all ranks)."""
    points = batch * cfg.points_per_shape
    l1_sum = torch.zeros((), dtype=torch.float64)
    if pts:
        x, y, w = torch.cat(pts).to(device), torch.cat(tgt).to(device), torch.cat(who).to(device)
        pred = dec(latents(w), x)
        l1 = (pred.clamp(-cfg.clamp, cfg.clamp) - y.clamp(-cfg.clamp, cfg.clamp)).abs().sum()
        (l1 / points + cfg.code_reg * latents(mine.to(device)).square().sum() / batch).backward()
        l1_sum += float(l1.detach())
    sum_gradients([*dec.parameters(), *latents.parameters()])
    return float(sum_over_ranks(l1_sum)) / points


def reconstruction_report(dec: SDFDecoder, latents: torch.Tensor, shapes: list[ShapeSamples],
                          cfg: TrainSDFConfig) -> list[dict[str, Any]]:
    """Chamfer-L2 of extracted meshes against each shape's surface points (normalized units and m²).

    ``latents[i]`` belongs to ``shapes[i]``.
    """
    return [_chamfer_row(dec, latents[i], s, cfg) for i, s in enumerate(shapes)]


def _chamfer_row(dec: SDFDecoder, z: torch.Tensor, s: ShapeSamples, cfg: TrainSDFConfig) -> dict[str, Any]:
    try:
        v, f, _ = extract(dec, z, cfg.eval_resolution, bounds=grid_bounds(s.car_frame))
    except EmptySurfaceError:
        return {"name": s.name, "chamfer": None, "note": "empty surface"}
    pts = surface_points(v.detach().numpy(), f.numpy(), CHAMFER_POINTS, np.random.default_rng(0))
    ch = chamfer_l2(pts, s.surface)
    return {"name": s.name, "chamfer": ch, "chamfer_m2": ch * CAR_SCALE**2 if s.car_frame else None,
            "vertices": int(len(v))}


def _loss_plot(history: list[dict[str, float]], path: Path) -> None:
    from aero_opt.geometry.render import plot_curves

    if history:
        plot_curves(path, [h["epoch"] for h in history], {"train": [h["l1"] for h in history]}, "epoch",
                    "clamped L1 loss")
