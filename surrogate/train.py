"""Train the SplineCNN surrogate on the CFD dataset (the trained model is used through :mod:`surrogate.model`).

Targets are normalized coefficients: Cp = p / (½ρU²) and Cτ = τ / (½ρU²) per vertex; the loss is the mean
squared error of Cp (plus ``shear_weight`` × that of Cτ) plus ``drag_weight`` × the squared error of the car's Cd
integrated from the predicted fields (against the same integral of the CFD fields, same mesh and force function).
The Cartesian scale of the pseudo-coordinates is fixed from the training set and stored with the model.
Validation, the best checkpoint and the shipped weights use an exponential moving average of the weights
(``ema_decay``). Training keeps the best checkpoint by validation loss, stops early after ``patience`` epochs
without improvement, checkpoints atomically every epoch and resumes.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aero_opt.core.atomic import save_torch_atomic, write_json_atomic
from aero_opt.core.checkpoint import load_torch, load_weights
from aero_opt.core.device import autocast
from aero_opt.core.distributed import barrier, init_from_env, local_device, sum_gradients, sum_over_ranks, world
from aero_opt.core.errors import AeroOptError
from aero_opt.core.progress import progress_bar
from surrogate.config import TrainSurrogateConfig
from surrogate.graph import MeshGraph, max_edge_component
from surrogate.model import Surrogate
from surrogate.samples import Sample, coefficient_cd, load_split, mirror_sample, samples_on
from surrogate.spline_conv import resolve_bf16
from surrogate.splinecnn import PressureSplineCNN, SurrogateConfig, extend_state, widen_state

log = logging.getLogger(__name__)


class WeightEMA:
    """Exponential moving average of a model's weights, with the usual warm-up ``min(decay, (1+t)/(10+t))``."""

    def __init__(self, model: PressureSplineCNN, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.updates = 0

    def update(self, model: PressureSplineCNN) -> None:
        """Move the average towards ``model``'s current weights (call after each optimizer step)."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            for avg, p in zip(self.model.parameters(), model.parameters()):
                avg.lerp_(p, 1.0 - d)

    def state_dict(self) -> dict[str, Any]:
        """Averaged weights and the update count (for checkpoints)."""
        return {"state": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.model.load_state_dict(state["state"])
        self.updates = int(state["updates"])


def _loss(model: PressureSplineCNN, s: Sample, max_value: float, tcfg: TrainSurrogateConfig,
          cache: dict[str, MeshGraph]) -> tuple[torch.Tensor, float]:
    """Loss on one car and its absolute Cd error. The car's graph is built once and kept in ``cache``; its spline
    basis is rebuilt at every step: keeping the bases too costs more memory than it saves time
    (``docs/surrogate_training.md``, run 13)."""
    with torch.no_grad():
        if s.name not in cache:
            cache[s.name] = model.graph(s.verts, s.faces, max_value)
        g = cache[s.name]
        basis = model.basis(g)
    with autocast(s.verts.device, resolve_bf16(tcfg.bf16, s.verts.device)):
        pred = model(g, basis)
    pred = pred.float()
    loss = (pred[:, 0] - s.target[:, 0]).square().mean()
    if pred.shape[1] == 4 and s.has_shear:
        loss = loss + tcfg.shear_weight * (pred[:, 1:] - s.target[:, 1:]).square().mean()
    cd_err = coefficient_cd(s.verts, s.faces, pred, s.car.a_ref) - s.cd_target
    if not s.has_shear:  # pressure-only data: only the pressure part of the drag is known on the mesh
        p_err = coefficient_cd(s.verts, s.faces, pred[:, :1], s.car.a_ref) - s.cd_pressure_target
        return loss + tcfg.drag_weight * p_err.square(), abs(float(p_err.detach()))
    if tcfg.drag_loss == "parts":
        p_err = coefficient_cd(s.verts, s.faces, pred[:, :1], s.car.a_ref) - s.cd_pressure_target
        drag = p_err.square() + (cd_err - p_err).square()  # pressure part, viscous part
    else:
        drag = cd_err.square()
    return loss + tcfg.drag_weight * drag, abs(float(cd_err.detach()))


def validation_scores(model: PressureSplineCNN, samples: list[Sample], max_value: float,
                      tcfg: TrainSurrogateConfig, cache: dict[str, MeshGraph] | None = None
                      ) -> tuple[float, float]:
    """Mean training loss (as ``tcfg`` weighs it) and mean absolute total-Cd error of ``model`` over ``samples``
    (the validation cars), without gradients: the figures ``history.json`` records per epoch. ``cache``: graphs
    by car name, filled as needed. Under torchrun each process scores its share of the cars and the means are
    over all of them."""
    cache = {} if cache is None else cache
    rank, size = world()
    mine = samples[rank::size]
    with torch.no_grad():
        scores = [(float(lo), e) for lo, e in (_loss(model, s, max_value, tcfg, cache) for s in mine)]
    if size == 1:
        losses, cd_err = zip(*scores)
        return float(np.mean(losses)), float(np.mean(cd_err))
    total = sum_over_ranks(torch.tensor([sum(lo for lo, _ in scores), sum(e for _, e in scores), len(scores)],
                                        dtype=torch.float64))
    return float(total[0] / total[2]), float(total[1] / total[2])


def train_surrogate(data_dir: Path, run_dir: Path, cfg: SurrogateConfig, tcfg: TrainSurrogateConfig,
                    resume: bool = False, progress: bool = True, init: Path | None = None,
                    device: torch.device | str = "cpu") -> dict[str, Any]:
    """Train (or resume) the surrogate; writes ``model.pt`` (best, with the training cars' domain recorded at the
    end), ``checkpoint.pt``, ``history.json``, ``loss.png`` in ``run_dir`` and returns the history summary. The
    checkpoint, history and loss curves are rewritten after every epoch, so a long run can be watched (and resumed).

    ``init``: a trained model (file or run folder) to start from instead of random weights — fine-tuning on new
    cars or with other loss settings; its configuration must be ``cfg``, except that ``cfg`` may be wider (the
    model is widened by :func:`~surrogate.splinecnn.widen_state`) and may add a coarse grid or a volume branch
    (:func:`~surrogate.splinecnn.extend_state`), so training starts from the given model's function; its
    pseudo-coordinate scale is kept. ``device``: where the model trains (the cars are moved there once).
    """
    if tcfg.drag_loss not in ("total", "parts"):
        raise AeroOptError(f"train_surrogate.drag_loss: {tcfg.drag_loss!r} is not one of total, parts")
    device = local_device(torch.device(device))
    rank, size = init_from_env(device)
    per_step = tcfg.cars_per_step or size
    if per_step < 1 or per_step % size:
        raise AeroOptError(f"train_surrogate.cars_per_step {per_step} must be a positive multiple of the {size} "
                           "training processes")
    train_set, val_set = load_split(data_dir, "train"), load_split(data_dir, "val")
    if not train_set or not val_set:
        raise AeroOptError(f"{data_dir}: the train and val splits must both be non-empty")
    train_set, val_set = samples_on(train_set, device), samples_on(val_set, device)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ck_path = run_dir / "checkpoint.pt"
    if ck_path.is_file() and not resume:
        raise AeroOptError(f"{run_dir}: already holds a checkpoint; pass --resume or choose a new --out")
    torch.manual_seed(tcfg.seed)
    max_value = max(max_edge_component(s.verts, s.faces) for s in train_set)
    model = PressureSplineCNN(cfg)
    if init is not None and not resume:
        start_from = Surrogate.load(init)
        old, state = start_from.model.cfg, start_from.model.state_dict()
        if old.width < cfg.width:  # widened: the same function in more channels (splinecnn.widen_state)
            state, old = widen_state(state, old, cfg.width, seed=tcfg.seed), replace(old, width=cfg.width)
        try:  # an added coarse grid or volume branch: the same function again (splinecnn.extend_state)
            state = extend_state(state, old, cfg, seed=tcfg.seed)
        except AeroOptError as err:
            raise AeroOptError(f"{init}: {err}") from None
        model.load_state_dict(state)
        max_value = start_from.max_value
    model.to(device)
    opt = make_optimizer(model, tcfg)
    ema = WeightEMA(model, tcfg.ema_decay)
    start, history, best, since_best = 0, [], math.inf, 0
    gen = torch.Generator().manual_seed(tcfg.seed)
    if resume:
        if not ck_path.is_file():
            raise AeroOptError(f"{run_dir}: --resume given but there is no checkpoint.pt")
        ck = load_torch(ck_path, ("state", "optimizer", "ema", "epoch", "history", "best", "since_best",
                                  "max_value", "rng"))
        load_weights(model, ck["state"], ck_path)
        opt.load_state_dict(ck["optimizer"])
        ema.load_state_dict(ck["ema"])
        start, history, best, since_best = ck["epoch"], ck["history"], ck["best"], ck["since_best"]
        max_value = ck["max_value"]
        gen.set_state(ck["rng"])
    cds = [s.car.cd for s in train_set]
    surrogate = Surrogate(ema.model, max_value, (min(cds), max(cds)))
    cache: dict[str, MeshGraph] = {}
    t0 = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)  # seconds count across resumes
    bar = progress_bar(range(start, tcfg.epochs), desc="train-surrogate", unit="epoch", initial=start,
                       total=tcfg.epochs, enabled=progress and rank == 0)
    for epoch in bar:
        lr = tcfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * epoch / tcfg.epochs)))
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        picked = [(i, tcfg.mirror_augment and float(torch.rand((), generator=gen)) < 0.5)
                  for i in torch.randperm(len(train_set), generator=gen).tolist()]  # the same on every rank
        loss_sum, loss_count = 0.0, 0
        for first in range(0, len(picked), per_step):
            cars = picked[first:first + per_step]
            opt.zero_grad(set_to_none=True)
            for i, flip in cars[rank::size]:
                sample = mirror_sample(train_set[i]) if flip else train_set[i]
                loss, _ = _loss(model, sample, max_value, tcfg, cache)
                (loss / len(cars)).backward()
                loss_sum, loss_count = loss_sum + loss.item(), loss_count + 1
            sum_gradients(list(model.parameters()))
            opt.step()
            ema.update(model)
        if size > 1:
            loss_sum, loss_count = sum_over_ranks(torch.tensor([loss_sum, loss_count], dtype=torch.float64)).tolist()
        val, val_cd_mae = validation_scores(ema.model, val_set, max_value, tcfg, cache)
        if not math.isfinite(val):
            raise AeroOptError(f"training diverged at epoch {epoch + 1} (validation loss NaN); lower the lr")
        history.append({"epoch": epoch + 1, "train": loss_sum / loss_count, "val": val,
                        "val_cd_mae": val_cd_mae, "lr": lr, "seconds": time.perf_counter() - t0})
        if val < best:
            best, since_best = val, 0
            if rank == 0:
                surrogate.save(run_dir / "model.pt", {"epoch": epoch + 1, "val": val})
        else:
            since_best += 1
        if rank == 0:
            _save_checkpoint(ck_path, model, opt, ema, epoch + 1, history, best, since_best, max_value, gen)
            write_json_atomic(run_dir / "history.json", history)
            _plot(history, run_dir / "loss.png")
        bar.set_postfix(train=f"{history[-1]['train']:.4f}", val=f"{val:.4f}", best=f"{best:.4f}",
                        cd_mae=f"{history[-1]['val_cd_mae']:.4f}")
        if since_best >= tcfg.patience:
            log.info("early stop at epoch %d (no improvement for %d epochs)", epoch + 1, tcfg.patience)
            break
    bar.close()
    if rank == 0:
        best_model = Surrogate.load(run_dir / "model.pt")
        if best_model.domain is None:
            best_model.fit_domain(train_set, run_dir / "model.pt", progress=progress)
    barrier()
    return {"epochs_run": len(history), "best_val": best, "max_value": max_value,
            "train_cars": len(train_set), "val_cars": len(val_set), "processes": size,
            "weights": ema.model.state_dict()}



def finetune(surrogate: Surrogate, new: list[Sample], replay: list[Sample], steps: int, lr: float,
             tcfg: TrainSurrogateConfig, replay_fraction: float = 0.5, seed: int = 0,
             progress: bool = False) -> tuple[Surrogate, dict[str, Any]]:
    """Fine-tune a trained surrogate from its current weights on new cars mixed with a replay of old ones: a fixed
    number of Adam steps of one car each, the car drawn from ``replay`` with probability ``replay_fraction`` and
    from ``new`` otherwise (uniformly within each); the loss is the training loss (:func:`_loss`).

    The given surrogate is not changed; its Cartesian scale, training Cd range (widened to the new cars' Cd) and
    recorded domain are carried over.

    Args:
        surrogate: the model to start from; new: the new cars (at least one); replay: old training cars (may be
            empty when ``replay_fraction`` is 0); steps: Adam steps (≥ 1); lr: learning rate.
        tcfg: loss weights and bf16 setting (``train_surrogate`` section); replay_fraction in [0, 1]; seed: the
            draws'.

    Returns:
        The fine-tuned surrogate and ``{"steps", "seconds", "loss_new_first", "loss_new_last"}`` (mean loss on the
        new cars before and after, without gradients).

    Raises:
        AeroOptError: bad arguments, or a loss that became NaN or infinite (the fine-tune diverged).
    """
    if not new or steps < 1 or not (0.0 <= replay_fraction <= 1.0) or (replay_fraction > 0 and not replay):
        raise AeroOptError(f"fine-tune: need new cars ({len(new)}), steps >= 1 ({steps}), replay_fraction in "
                           f"[0, 1] ({replay_fraction}) and replay cars when it is above 0 ({len(replay)})")
    if not (lr > 0 and math.isfinite(lr)):
        raise AeroOptError(f"fine-tune: lr {lr} must be a positive number")
    model = copy.deepcopy(surrogate.model).requires_grad_(True).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    cache: dict[str, MeshGraph] = {}
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()

    def new_loss() -> float:
        with torch.no_grad():
            return float(np.mean([float(_loss(model, s, surrogate.max_value, tcfg, cache)[0]) for s in new]))

    first = new_loss()
    for _ in progress_bar(range(steps), desc="fine-tune", unit="step", enabled=progress):
        pool = replay if float(torch.rand((), generator=gen)) < replay_fraction else new
        sample = pool[int(torch.randint(len(pool), (), generator=gen))]
        opt.zero_grad(set_to_none=True)
        loss, _ = _loss(model, sample, surrogate.max_value, tcfg, cache)
        if not torch.isfinite(loss):
            raise AeroOptError(f"fine-tune diverged: the loss on {sample.name} became {float(loss.detach())}")
        loss.backward()
        opt.step()
    last = new_loss()
    if not math.isfinite(last):
        raise AeroOptError(f"fine-tune diverged: the loss on the new cars became {last}")
    cds = [s.car.cd for s in new] + list(surrogate.train_cd or ())
    tuned = Surrogate(model, surrogate.max_value, (min(cds), max(cds)), surrogate.domain, surrogate.device)
    return tuned, {"steps": steps, "seconds": time.perf_counter() - t0, "loss_new_first": first,
                   "loss_new_last": last}


def make_optimizer(model: PressureSplineCNN, tcfg: TrainSurrogateConfig) -> torch.optim.Adam:
    """Adam over ``model``'s parameters; with ``tcfg.weight_decay`` > 0 decoupled weight decay (AdamW) on the
    weight matrices and tensors (``ndim >= 2``) and none on the biases (two parameter groups, in that order)."""
    if tcfg.weight_decay < 0:
        raise AeroOptError(f"train_surrogate.weight_decay: {tcfg.weight_decay} is negative")
    if tcfg.weight_decay == 0:
        return torch.optim.Adam(model.parameters(), lr=tcfg.lr)
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": tcfg.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.Adam(groups, lr=tcfg.lr, decoupled_weight_decay=True)


def _save_checkpoint(path: Path, model: PressureSplineCNN, opt: torch.optim.Optimizer, ema: WeightEMA, epoch: int,
                     history: list[dict[str, float]], best: float, since_best: int, max_value: float,
                     gen: torch.Generator) -> None:
    save_torch_atomic({"state": model.state_dict(), "config": asdict(model.cfg), "optimizer": opt.state_dict(),
                       "ema": ema.state_dict(), "epoch": epoch, "history": history, "best": best,
                       "since_best": since_best, "max_value": max_value, "rng": gen.get_state()}, path)


def _plot(history: list[dict[str, float]], path: Path) -> None:
    from aero_opt.geometry.render import plot_curves

    plot_curves(path, [h["epoch"] for h in history], {"train": [h["train"] for h in history],
                                                      "validation": [h["val"] for h in history]},
                "epoch", "loss: MSE(Cp) + 0.5 MSE(Cτ) + w (Cd error)²")
