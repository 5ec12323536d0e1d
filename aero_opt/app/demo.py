"""The main job behind ``make demo``: the comparison of parameterizations on one shipped car, checked by OpenFOAM.

With the shipped models (``data/models/``), one held-out car of the shipped CFD dataset (:data:`DEMO_CAR`; its
latent code is fitted, the decoder never saw it) is optimized with every parameterization for a short run, the
start shape and every final shape are simulated with the coarse OpenFOAM preset, and the comparison table
(surrogate and CFD drag change, constraint violations) is printed and saved. Resumable like ``compare``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from aero_opt.app import REPO_DATA
from aero_opt.app.compare import recorded_models, run_compare
from aero_opt.app.config import load_config
from aero_opt.cfd.executor import ClusterConfig
from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.device import resolve_device
from aero_opt.core.errors import AeroOptError
from aero_opt.geometry.dataset import split_names
from parameterizations import NAMES

log = logging.getLogger(__name__)

DEMO_ITERS = 20
"""Adam steps per parameterization in the demo (short runs)."""

PUBLISHED_RUN_FILES = ("summary.json", "history.csv", "before_after.png")
"""Each optimization's files copied by :func:`publish_demo`, as ``<param>_<file>``."""

PUBLISHED_TABLE_FILES = ("results.md", "results.csv", "comparison.png", "summary.json")
"""The demo's table files copied by :func:`publish_demo` under their own names."""

DEMO_CAR = "car_0260"
"""The demo's car: the test-split car with the median (one-run) CFD Cd of the first 300 dataset cars, so it has
room to improve inside the surrogate's data (the lowest-drag test car has none). Fixed by name, so the demo and its
committed results stay the same when the dataset grows."""


DEMO_VERIFY_RUNS = 1
"""The demo verifies each of its six shapes once at the verification preset (one run's Cd noise: 0.0085,
``docs/cfd.md``), so that ``make demo`` takes about ten minutes on two cores; ``--verify-runs 3`` gives every shape
the full protocol's mean and interval (about three times the CFD time)."""


def run_demo(out: Path, config: Path | None = None, data_dir: Path | None = None, workers: int | None = None,
             verify: bool = True, docs: Path | None = None, cluster: ClusterConfig | None = None,
             device: str | None = None, verify_runs: int | None = None,
             verify_preset: str | None = None) -> dict[str, Any]:
    """Run the demo comparison; writes ``out/`` as ``compare`` does plus ``out/summary.json``.

    Args:
        out: work and output folder (resumable).
        config: optional YAML config (its ``optimize``, ``flow`` and ``cfd`` sections; the demo fixes ``iters`` to
            :data:`DEMO_ITERS`).
        data_dir: folder with ``dataset/`` and ``models/`` (default: the repository's ``data/``).
        workers: OpenFOAM cases side by side (None: ``cfd.workers`` of the config).
        cluster: where they run (None: the config's ``cluster`` section).
        device: where the networks run (None: the config's ``device``).
        verify: simulate the start and final shapes with OpenFOAM.
        verify_runs, verify_preset: runs per shape and preset of that check (None: :data:`DEMO_VERIFY_RUNS` and
            the config's ``optimize.verify_preset``).
        docs: when given, :func:`publish_demo` copies the results there (the repository keeps them in
            ``docs/results/demo``).

    Returns:
        The summary: the car, the per-parameterization table and the wall time (seconds, summed over the runs
        of a resumed demo).
    """
    data_dir = data_dir or REPO_DATA
    car = DEMO_CAR
    if car not in split_names(data_dir / "dataset", "test"):
        raise AeroOptError(f"{data_dir / 'dataset' / 'split.json'}: the demo car {car} is not in the test split")
    settings = load_config(config)
    given = {k: v for k, v in (("verify_runs", verify_runs), ("verify_preset", verify_preset)) if v is not None}
    cfg = replace(settings.optimize, iters=DEMO_ITERS, **{"verify_runs": DEMO_VERIFY_RUNS, **given})
    previous = Path(out) / "summary.json"  # a resumed demo adds its time to the earlier runs'
    t0 = time.perf_counter() - (json.loads(previous.read_text()).get("seconds", 0.0) if previous.is_file() else 0.0)
    surrogate_dir, decoder_dir = data_dir / "models" / "surrogate", data_dir / "models" / "car_decoder"
    table = run_compare([car], ["all"], out, cfg, surrogate_dir, decoder_dir, data_dir / "dataset",
                        do_verify=verify, workers=settings.cfd.workers if workers is None else workers,
                        flow=settings.flow, procs=settings.cfd.procs, cluster=cluster or settings.cluster,
                        device=resolve_device(device or settings.device), fit=settings.fit)
    summary = {"car": car, "iterations": cfg.iters, "verify_preset": cfg.verify_preset if verify else None,
               "verify_runs": cfg.verify_runs if verify else None,
               "models_sha256": recorded_models(Path(out)), "table": table,
               "seconds": round(time.perf_counter() - t0, 1), "results": str(Path(out) / "results.md")}
    write_json_atomic(Path(out) / "summary.json", summary)
    log.info("demo: %s, %d iterations per parameterization, %.0f s\n%s", car, cfg.iters, summary["seconds"],
             (Path(out) / "results.md").read_text())
    if docs is not None:
        publish_demo(Path(out), docs, car)
    return summary


def publish_demo(out: Path, docs: Path, car: str = DEMO_CAR) -> list[Path]:
    """Copy a finished demo's table (:data:`PUBLISHED_TABLE_FILES`) and each run's summary, history and picture
    (:data:`PUBLISHED_RUN_FILES`, as ``<param>_<file>``) from ``out`` to ``docs``.

    Returns:
        The files written, in ``docs``.
    Raises:
        AeroOptError: a file is missing in ``out`` (the demo did not finish); nothing is copied then.
    """
    pairs = [(out / name, docs / name) for name in PUBLISHED_TABLE_FILES]
    run_dirs = sorted(d for d in (out / car).iterdir() if d.is_dir() and d.name in NAMES) \
        if (out / car).is_dir() else []  # not the CFD case folders beside them (cfd_initial has a summary too)
    pairs += [(d / name, docs / f"{d.name}_{name}") for d in run_dirs for name in PUBLISHED_RUN_FILES]
    missing = [str(src) for src, _ in pairs if not src.is_file()]
    if missing or not run_dirs:
        raise AeroOptError(f"{out}: the demo has not finished (missing {', '.join(missing) or out / car})")
    docs.mkdir(parents=True, exist_ok=True)
    for src, dst in pairs:
        shutil.copyfile(src, dst)
    log.info("demo results copied to %s (%d files)", docs, len(pairs))
    return [dst for _, dst in pairs]
