"""Train a DeepSDF auto-decoder on SDF samples, fit latent codes to new shapes, and measure Chamfer distances.

Training (``aero-opt train-sdf``): per step, ``shapes_per_batch`` shapes with ``points_per_shape`` random samples
each; loss = mean |clamp(f(z_i, x), δ) − clamp(s, δ)| + code_reg · mean ‖z_i‖²; Adam on the decoder and on the
latent embedding, learning rates halved every ``lr_halve_every`` epochs. A checkpoint (decoder, latents,
optimizer states, history) is written atomically every ``checkpoint_every`` epochs and at the end; ``--resume``
continues from it.

Chamfer-L2 (DeepSDF's definition): mean squared nearest-neighbour distance from A to B plus from B to A, on
30k surface points each, in the normalized frame (multiply by 2.75² for m²).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree
from tqdm import tqdm

from aero_opt.atomic import save_torch_atomic, write_json_atomic
from aero_opt.errors import AeroOptError
from aero_opt.frame import CAR_BOUNDS, CAR_SCALE
from aero_opt.isosurface import EmptySurfaceError, extract
from aero_opt.sdf import CHAMFER_POINTS, surface_points
from aero_opt.sdf_model import DecoderConfig, SDFDecoder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSDFConfig:
    """DeepSDF training settings (YAML section ``train_sdf``)."""

    epochs: int = 200
    """Passes over all shapes."""
    shapes_per_batch: int = 16
    """Shapes per optimization step."""
    points_per_shape: int = 2048
    """Samples per shape per step."""
    lr_decoder: float = 5e-4
    """Adam learning rate of the decoder."""
    lr_latent: float = 1e-3
    """Adam learning rate of the latent codes."""
    lr_halve_every: int = 80
    """Halve both learning rates every this many epochs."""
    clamp: float = 0.1
    """δ: distances are clamped to [-δ, δ] in the loss (normalized units)."""
    code_reg: float = 1e-4
    """Weight of the latent-code regularization."""
    init_std: float = 0.01
    """Std of the initial latent codes."""
    checkpoint_every: int = 10
    """Epochs between checkpoints."""
    seed: int = 0
    """Seed of initialization and sampling."""
    fit_steps: int = 800
    """Adam steps when fitting a latent to a new shape (frozen decoder)."""
    fit_lr: float = 5e-3
    """Learning rate of the latent fit."""
    eval_resolution: int = 64
    """Grid points per axis for the reconstruction report."""


@dataclass
class ShapeSamples:
    """SDF samples of one shape (normalized frame)."""

    name: str
    points: torch.Tensor
    """(N, 3) float32."""
    sdf: torch.Tensor
    """(N,) float32."""
    surface: np.ndarray
    """(S, 3) float32 surface points."""
    car_frame: bool


def load_samples(data_dir: Path) -> list[ShapeSamples]:
    """All ``*.npz`` sample files of a folder (from ``aero-opt sdf-samples``), sorted by name."""
    files = sorted(Path(data_dir).glob("*.npz"))
    if not files:
        raise AeroOptError(f"{data_dir}: no SDF sample files (*.npz); make them with `aero-opt sdf-samples`")
    out = []
    for f in files:
        with np.load(f) as z:
            if "points" not in z.files or "sdf" not in z.files:
                raise AeroOptError(f"{f}: not an SDF sample file (needs points and sdf)")
            out.append(ShapeSamples(f.stem, torch.from_numpy(z["points"].astype(np.float32)),
                                    torch.from_numpy(z["sdf"].astype(np.float32)),
                                    z["surface"] if "surface" in z.files else np.zeros((0, 3), np.float32),
                                    bool(abs(float(z["frame_scale"]) - CAR_SCALE) < 1e-9)))
    return out


def grid_bounds(car_frame: bool) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Extraction bounds: the car box for cars, the cube [-1, 1]³ otherwise."""
    return CAR_BOUNDS if car_frame else ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))


def chamfer_l2(a: np.ndarray, b: np.ndarray) -> float:
    """DeepSDF Chamfer-L2: mean squared NN distance a->b plus b->a (units² of the points)."""
    da, _ = cKDTree(b).query(a)
    db, _ = cKDTree(a).query(b)
    return float(np.mean(da**2) + np.mean(db**2))


def load_model(run_dir: Path) -> tuple[SDFDecoder, torch.Tensor, dict[str, Any]]:
    """Decoder (eval mode), latent codes (K, D) and the checkpoint dict of a training run."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.is_file():
        raise AeroOptError(f"{run_dir}: no checkpoint.pt (train one with `aero-opt train-sdf`)")
    ck = torch.load(path, map_location="cpu", weights_only=False)
    dec = SDFDecoder(DecoderConfig(**ck["decoder_config"]))
    dec.load_state_dict(ck["decoder"])
    dec.eval()
    return dec, ck["latents"].detach(), ck


def train(data_dir: Path, run_dir: Path, dec_cfg: DecoderConfig, cfg: TrainSDFConfig, resume: bool = False,
          progress: bool = True) -> dict[str, Any]:
    """Train (or resume) a DeepSDF auto-decoder; returns the final report (also ``run_dir/report.json``)."""
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
    opt = torch.optim.Adam([{"params": dec.parameters(), "lr": cfg.lr_decoder},
                            {"params": latents.parameters(), "lr": cfg.lr_latent}])
    start, history = 0, []
    if resume:
        if not ck_path.is_file():
            raise AeroOptError(f"{run_dir}: --resume given but there is no checkpoint.pt")
        ck = torch.load(ck_path, map_location="cpu", weights_only=False)
        if ck["names"] != [s.name for s in shapes] or ck["decoder_config"] != asdict(dec_cfg):
            raise AeroOptError(f"{run_dir}: the checkpoint was trained on other data or another decoder config")
        dec.load_state_dict(ck["decoder"])
        latents.weight.data.copy_(ck["latents"])
        opt.load_state_dict(ck["optimizer"])
        start, history = ck["epoch"], ck["history"]
        gen.set_state(ck["rng"])
    meta = {"names": [s.name for s in shapes], "decoder_config": asdict(dec_cfg), "train_config": asdict(cfg),
            "car_frame": all(s.car_frame for s in shapes), "data": str(data_dir)}
    write_json_atomic(run_dir / "config.json", meta)

    def checkpoint(epoch: int) -> None:
        save_torch_atomic({**meta, "decoder": dec.state_dict(), "latents": latents.weight.detach().clone(),
                      "optimizer": opt.state_dict(), "epoch": epoch, "history": history,
                      "rng": gen.get_state()}, ck_path)

    n = len(shapes)
    t0 = time.perf_counter()
    bar = tqdm(range(start, cfg.epochs), desc="train-sdf", unit="epoch", disable=not progress,
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
            for i in idx.tolist():
                s = shapes[i]
                sel = torch.randint(0, len(s.sdf), (cfg.points_per_shape,), generator=gen)
                pts.append(s.points[sel])
                tgt.append(s.sdf[sel])
                who.append(torch.full((cfg.points_per_shape,), i, dtype=torch.long))
            x, y, w = torch.cat(pts), torch.cat(tgt), torch.cat(who)
            z = latents(w)
            pred = dec(z, x)
            loss_l1 = (pred.clamp(-cfg.clamp, cfg.clamp) - y.clamp(-cfg.clamp, cfg.clamp)).abs().mean()
            loss = loss_l1 + cfg.code_reg * latents(idx).square().sum(dim=1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss_l1.item())
        history.append({"epoch": epoch + 1, "l1": float(np.mean(losses)), "seconds": time.perf_counter() - t0})
        bar.set_postfix(l1=f"{history[-1]['l1']:.5f}")
        if not math.isfinite(history[-1]["l1"]):
            raise AeroOptError(f"training diverged at epoch {epoch + 1} (loss NaN); lower the learning rates")
        if (epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == cfg.epochs:
            checkpoint(epoch + 1)
    bar.close()
    if start >= cfg.epochs:
        checkpoint(cfg.epochs)
    _loss_plot(history, run_dir / "loss.png")
    dec.eval()
    recon = reconstruction_report(dec, latents.weight.detach(), shapes[: min(5, n)], cfg)
    report = {"epochs": cfg.epochs, "final_l1": history[-1]["l1"] if history else None,
              "train_seconds": history[-1]["seconds"] if history else None, "shapes": n,
              "decoder_flops_per_query": dec.flops_per_query(), "reconstruction": recon}
    write_json_atomic(run_dir / "report.json", report)
    return report


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


def fit_latent(dec: SDFDecoder, s: ShapeSamples, cfg: TrainSDFConfig, latent_size: int,
               init: torch.Tensor | None = None, progress: bool = True) -> torch.Tensor:
    """Fit a latent code (D,) to one shape's samples with the decoder frozen (DeepSDF reconstruction)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    z = (init.clone() if init is not None else torch.zeros(latent_size)).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=cfg.fit_lr)
    for p in dec.parameters():
        p.requires_grad_(False)
    for step in tqdm(range(cfg.fit_steps), desc="fit", unit="step", disable=not progress):
        if step == cfg.fit_steps // 2:
            opt.param_groups[0]["lr"] = cfg.fit_lr / 10
        sel = torch.randint(0, len(s.sdf), (8192,), generator=gen)
        pred = dec(z, s.points[sel])
        loss = (pred.clamp(-cfg.clamp, cfg.clamp) - s.sdf[sel].clamp(-cfg.clamp, cfg.clamp)).abs().mean() \
            + cfg.code_reg * z.square().sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for p in dec.parameters():
        p.requires_grad_(True)
    return z.detach()


def _loss_plot(history: list[dict[str, float]], path: Path) -> None:
    from aero_opt.render import plot_curves

    if history:
        plot_curves(path, [h["epoch"] for h in history], {"train": [h["l1"] for h in history]}, "epoch",
                    "clamped L1 loss")
