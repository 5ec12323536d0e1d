"""Train the shipped surrogate from scratch (one command, resumable), evaluate it, and ship it.

1. ``train_surrogate`` on data/dataset (train/val splits) into results/surrogate/run/ (resumes when a checkpoint
   is there; settings: configs/default.yaml, sections surrogate and train_surrogate).
2. Evaluation of the best checkpoint on the test split and on the real-car set (data/real_cars_cfd).
3. model.pt, the loss plot, the histories and both metrics files are copied to data/models/surrogate/.

    .venv/bin/python scripts/train_surrogate_model.py
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from aero_opt.atomic import write_json_atomic
from aero_opt.config import load_config
from surrogate.evaluate import evaluate
from surrogate.train import train_surrogate

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml")
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dataset")
    ap.add_argument("--real", type=Path, default=ROOT / "data" / "real_cars_cfd")
    ap.add_argument("--work", type=Path, default=ROOT / "results" / "surrogate")
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "models" / "surrogate")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = load_config(args.config)
    run = args.work / "run"
    rep = train_surrogate(args.data, run, cfg.surrogate, cfg.train_surrogate,
                          resume=(run / "checkpoint.pt").is_file())
    test = evaluate(run, args.data, "test", args.work / "eval_test")
    real = evaluate(run, args.real, "all", args.work / "eval_real")
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copy(run / "model.pt", args.out / "model.pt")
    shutil.copy(run / "loss.png", args.out / "loss.png")
    shutil.copy(run / "history.json", args.out / "history.json")
    for name, src in (("test", args.work / "eval_test"), ("real_cars", args.work / "eval_real")):
        shutil.copy(src / "metrics.json", args.out / f"metrics_{name}.json")
        shutil.copy(src / "parity.png", args.out / f"parity_{name}.png")
    for tag in ("best", "median", "worst"):
        shutil.copy(args.work / "eval_test" / f"pressure_{tag}.png", args.out / f"pressure_{tag}.png")
    write_json_atomic(args.out / "report.json", {
        "command": "python scripts/train_surrogate_model.py " + " ".join(sys.argv[1:]), "training": rep,
        "surrogate": cfg.surrogate.__dict__, "train_surrogate": cfg.train_surrogate.__dict__,
        "test": {k: test[k] for k in ("cars", "pressure_rel_l2", "cd_pressure", "cd_total", "seconds_per_car")},
        "real_cars": {"cd_total": real["cd_total"], "per_car": [
            {k: r[k] for k in ("car", "rel_l2_pressure", "cd_total_pred", "cd_total_cfd")} for r in real["per_car"]]},
    })
    logging.info("test: pressure rel. L2 %.3f, Cd R2 %s, Spearman %s", test["pressure_rel_l2"]["mean"],
                 test["cd_total"]["r2"], test["cd_total"]["spearman"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
