"""Train the shipped surrogate (one command, resumable), evaluate it, and ship it.

1. ``train_surrogate`` on data/dataset (train/val splits) into results/surrogate/<--run>/ (resumes when a
   checkpoint is there; settings: configs/default.yaml, sections surrogate and train_surrogate), from random
   weights or, with ``--init``, from a trained model (fine-tuning; its pseudo-coordinate scale is kept).
2. Evaluation of the best checkpoint on the test split and on the real-car set (data/real_cars_cfd), into the
   run folder (``eval_test/``, ``eval_real/``).
3. model.pt, the loss plot, the histories and both metrics files are copied to data/models/surrogate/, with
   ``report.json`` (the command, the settings, the starting model's own command when ``--init`` was given).

    .venv/bin/python scripts/pipeline/train_surrogate_model.py       # run 6, 40 epochs
    .venv/bin/python scripts/pipeline/train_surrogate_model.py --config configs/runs/surrogate_60_epochs.yaml
                                                                     # run 7: resumed

(docs/surrogate_training.md has every run and its recipe.)
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

from aero_opt.app.config import load_config
from aero_opt.core.atomic import recorded_path, write_json_atomic
from surrogate.evaluate import evaluate
from surrogate.train import train_surrogate

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml")
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dataset")
    ap.add_argument("--real", type=Path, default=ROOT / "data" / "real_cars_cfd")
    ap.add_argument("--work", type=Path, default=ROOT / "results" / "surrogate")
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "models" / "surrogate")
    ap.add_argument("--run", default="run", help="run folder name under --work")
    ap.add_argument("--init", type=Path, default=None,
                    help="start from this trained model (file or folder) instead of random weights")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = load_config(args.config)
    # relative to the working directory, so the metrics files record results/surrogate/run8, not this machine's path
    run, args.data, args.real = (Path(recorded_path(p, Path.cwd()))
                                 for p in (args.work / args.run, args.data, args.real))
    resume = (run / "checkpoint.pt").is_file()
    init_record = None
    if args.init is not None:
        folder = args.init if args.init.is_dir() else args.init.parent
        origin = run / "init_report.json"  # kept beside the run: --init may be the folder this script overwrites
        if not resume and (folder / "report.json").is_file():
            run.mkdir(parents=True, exist_ok=True)
            shutil.copy(folder / "report.json", origin)
        init_record = {"path": str(args.init), "command": json.loads(origin.read_text())["command"]
                       if origin.is_file() else None}
    rep = train_surrogate(args.data, run, cfg.surrogate, cfg.train_surrogate, resume=resume, init=args.init)
    test = evaluate(run, args.data, "test", run / "eval_test")
    real = evaluate(run, args.real, "all", run / "eval_real")
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copy(run / "model.pt", args.out / "model.pt")
    shutil.copy(run / "loss.png", args.out / "loss.png")
    shutil.copy(run / "history.json", args.out / "history.json")
    for name, src in (("test", run / "eval_test"), ("real_cars", run / "eval_real")):
        shutil.copy(src / "metrics.json", args.out / f"metrics_{name}.json")
        shutil.copy(src / "parity.png", args.out / f"parity_{name}.png")
    for tag in ("best", "median", "worst"):
        shutil.copy(run / "eval_test" / f"pressure_{tag}.png", args.out / f"pressure_{tag}.png")
    write_json_atomic(args.out / "report.json", {
        "command": " ".join(["python scripts/pipeline/train_surrogate_model.py", *sys.argv[1:]]), "init": init_record,
        "training": {k: v for k, v in rep.items() if k != "weights"},
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
