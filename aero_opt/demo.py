"""The main job behind ``make demo``: the comparison of parameterizations on one shipped car, checked by OpenFOAM.

With the shipped models (``data/models/``), one held-out car of the shipped CFD dataset (:data:`DEMO_CAR`; its
latent code is fitted, the decoder never saw it) is optimized with every parameterization for a short run, the
start shape and every final shape are simulated with the coarse OpenFOAM preset, and the comparison table
(surrogate and CFD drag change, constraint violations) is printed and saved. Resumable like ``compare``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from aero_opt.atomic import write_json_atomic
from aero_opt.compare import run_compare
from aero_opt.config import load_config
from aero_opt.dataset import split_names
from aero_opt.errors import AeroOptError

log = logging.getLogger(__name__)

DEMO_ITERS = 20
"""Adam steps per parameterization in the demo (short runs)."""

DEMO_CAR = "car_0260"
"""The demo's car: the test-split car with the median (one-run) CFD Cd of the first 300 dataset cars, so it has
room to improve inside the surrogate's data (the lowest-drag test car has none). Fixed by name, so the demo and its
committed results stay the same when the dataset grows."""


def run_demo(out: Path, config: Path | None = None, data_dir: Path | None = None, workers: int = 2,
             verify: bool = True) -> dict[str, Any]:
    """Run the demo comparison; writes ``out/`` as ``compare`` does plus ``out/summary.json``.

    Returns:
        The summary: the car, the per-parameterization table and the wall time.
    """
    data_dir = data_dir or Path(__file__).resolve().parent.parent / "data"
    car = DEMO_CAR
    if car not in split_names(data_dir / "dataset", "test"):
        raise AeroOptError(f"{data_dir / 'dataset' / 'split.json'}: the demo car {car} is not in the test split")
    cfg = replace(load_config(config).optimize, iters=DEMO_ITERS)
    t0 = time.perf_counter()
    table = run_compare([car], ["all"], out, cfg, data_dir / "models" / "surrogate",
                        data_dir / "models" / "car_decoder", data_dir / "dataset", do_verify=verify, workers=workers)
    summary = {"car": car, "iterations": cfg.iters, "verify_preset": cfg.verify_preset if verify else None,
               "table": table, "seconds": round(time.perf_counter() - t0, 1),
               "results": str(Path(out) / "results.md")}
    write_json_atomic(Path(out) / "summary.json", summary)
    log.info("demo: %s, %d iterations per parameterization, %.0f s\n%s", car, cfg.iters, summary["seconds"],
             (Path(out) / "results.md").read_text())
    return summary
