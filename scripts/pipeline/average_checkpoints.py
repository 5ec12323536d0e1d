"""Average the weight-averaged (EMA) weights of several training checkpoints of one run into one model.

A training checkpoint (``checkpoint.pt``, rewritten at the end of every epoch) carries the run's exponential
weight average, which spans ~500 steps (under one epoch). Copies of it taken at the ends of the last epochs
(``results/surrogate/<run>/epochs/``) averaged uniformly give an average over several epochs of the
low-learning-rate tail (stochastic weight averaging): what the validation Cd noise between epochs suggests may
generalize better. The averaged model is scored on the validation split so that the choice of how many epochs to
average does not look at the test cars.

    .venv/bin/python scripts/pipeline/average_checkpoints.py results/surrogate/run12/epochs/*.pt --last 4 \
        --out results/surrogate/run12/swa4

Writes ``model.pt`` (with the training cars' domain) and ``report.json`` (epochs averaged, validation loss and Cd
MAE of the average and of the last checkpoint alone) in ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from aero_opt.app.config import load_config
from aero_opt.core.atomic import recorded_path, write_json_atomic
from surrogate.model import Surrogate
from surrogate.samples import load_split
from surrogate.splinecnn import LEGACY_DEFAULTS, PressureSplineCNN, SurrogateConfig
from surrogate.train import validation_scores

ROOT = Path(__file__).resolve().parents[2]


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Uniform average of model state dicts with the same keys and shapes (floating tensors averaged in float64,
    others taken from the last)."""
    out = {}
    for k, last in states[-1].items():
        out[k] = (torch.stack([s[k].double() for s in states]).mean(0).to(last.dtype)
                  if last.is_floating_point() else last)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", type=Path, help="copies of one run's checkpoint.pt, any order")
    ap.add_argument("--last", type=int, default=4, help="average the checkpoints of the last N epochs")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml",
                    help="the run's config (its train_surrogate section sets the validation loss)")
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dataset")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.last < 1:
        raise SystemExit(f"--last {args.last}: average at least one epoch")
    cks = {}
    for path in args.checkpoints:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        if "ema" not in ck:
            raise SystemExit(f"{path}: not a training checkpoint (no weight average)")
        cks[int(ck["epoch"])] = ck
    epochs = sorted(cks)[-args.last:]
    if len(epochs) < args.last:
        raise SystemExit(f"--last {args.last}: only {len(cks)} distinct epochs among the checkpoints")
    last = cks[epochs[-1]]
    cfg = SurrogateConfig(**{**LEGACY_DEFAULTS, **last["config"]})
    tcfg = load_config(args.config).train_surrogate
    val, train = load_split(args.data, "val"), load_split(args.data, "train")
    cds = [s.car.cd for s in train]
    report = {"command": "python scripts/pipeline/average_checkpoints.py " + " ".join(sys.argv[1:]), "epochs": epochs,
              "data": recorded_path(args.data, ROOT)}
    for tag, state in (("last", last["ema"]["state"]),
                       ("average", average_states([cks[e]["ema"]["state"] for e in epochs]))):
        model = PressureSplineCNN(cfg)
        model.load_state_dict(state)
        model.eval()
        loss, cd_mae = validation_scores(model, val, float(last["max_value"]), tcfg)
        report[tag] = {"val_loss": loss, "val_cd_mae": cd_mae}
        logging.info("%s: validation loss %.5f, Cd MAE %.5f", tag, report[tag]["val_loss"], report[tag]["val_cd_mae"])
    sur = Surrogate(model, float(last["max_value"]), (min(cds), max(cds)))
    args.out.mkdir(parents=True, exist_ok=True)
    sur.save(args.out / "model.pt", {"epochs_averaged": epochs})
    write_json_atomic(args.out / "report.json", report)  # before the ~5 min of training-domain statistics
    sur.fit_domain(train, args.out / "model.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
