"""The ``aero-opt`` command line. Each subcommand has ``--help``.

A subcommand with settings takes them from ``--config FILE.yaml`` (the sections of :class:`aero_opt.app.config.Config`,
defaults without a file); its flags override single keys. A subcommand without settings has no ``--config``.
Errors a user can fix (a missing file, a bad config key...) are printed as one line ``error: ...`` and exit
with status 2; the last line of a successful run names the output folder.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aero_opt.app import REPO_DATA
from aero_opt.core.errors import AeroOptError

if TYPE_CHECKING:
    from aero_opt.app.config import Config

log = logging.getLogger("aero_opt")

PRESET_NAMES = ("tiny", "coarse", "verify", "medium", "fine")
"""The CFD presets (:data:`aero_opt.cfd.case.PRESETS`; checked against it by ``tests/aero_opt/app/test_cli.py``)."""


def _config(args: argparse.Namespace) -> Config:
    """The ``--config`` file read into a :class:`~aero_opt.app.config.Config` (defaults without one)."""
    from aero_opt.app.config import load_config

    return load_config(args.config)


def _settings(section: Any, names: dict[str, str] | None = None, **flags: Any) -> Any:
    """A config section (a frozen dataclass) with the flags that were given (not None) replacing its keys, each
    checked against the key's allowed values (an error names the flag: ``names[key]``, else ``--key``)."""
    from aero_opt.core.settings import replace_checked

    return replace_checked(section, names, **flags)


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None,
                   help="where the networks run: auto (a GPU when there is one), cpu, cuda or cuda:N "
                        "(default: device in the config)")


def _device(args: argparse.Namespace, cfg: Config) -> Any:
    from aero_opt.core.device import resolve_device

    return resolve_device(args.device or cfg.device)


def _add_config(p: argparse.ArgumentParser, sections: str) -> None:
    p.add_argument("--config", type=Path, default=None,
                   help=f"YAML config; this command reads its {sections} section(s) (see configs/default.yaml)")
    p.set_defaults(config_sections=tuple(s.strip() for s in sections.replace(" and ", ", ").split(",")))


NOT_IDENTITY = frozenset({"out", "overwrite", "verbose", "quiet", "func", "command", "cfd_command",
                          "dataset_command", "run_command", "identity_skip", "config", "config_sections", "device",
                          "workers", "procs", "procs_per_case", "scheduler", "oversubscribe"})
"""Arguments that say how a command runs, not what it makes: not part of a run's identity."""
VERIFY_CONFIG = ("config.optimize.verify_runs", "config.optimize.verify_preset")
"""How a comparison's shapes are checked: a comparison folder may be re-verified with other settings."""
HOW_SECTIONS = frozenset({"device", "cluster"})
"""Config sections that say how a command runs (left out of its identity like :data:`NOT_IDENTITY`)."""


def _add_out(p: argparse.ArgumentParser, what: str, default: Path | None = None, skip: tuple[str, ...] = ()) -> None:
    """``--out`` as a run folder (one run per folder: :mod:`aero_opt.core.runfolder`) and ``--overwrite``.

    Args:
        p: the command's parser.
        what: what the folder receives.
        default: the default folder (None: --out is required).
        skip: further arguments that are not part of the run's identity (a comparison may add cars, a training
            may be resumed for more epochs).
    """
    if default is None:
        p.add_argument("--out", type=Path, required=True, help=f"output folder ({what})")
    else:
        p.add_argument("--out", type=Path, default=default, help=f"output folder ({what}; default: %(default)s)")
    p.add_argument("--overwrite", action="store_true",
                   help="clear --out first when it holds another aero-opt run (default: refuse it; the same run "
                        "resumes)")
    p.set_defaults(run_command=p.prog.split(" ", 1)[1], identity_skip=skip)


def _identity_value(value: Any) -> Any:
    """An argument as a run record holds it: paths as strings relative to the working folder when inside it (the
    same run from a moved checkout stays the same; a file also by its SHA-256), tuples as lists."""
    if isinstance(value, Path):
        from aero_opt.core.atomic import recorded_path

        shown = recorded_path(value, Path.cwd())
        if value.is_file():
            import hashlib

            return {"path": shown, "sha256": hashlib.sha256(value.read_bytes()).hexdigest()}
        return shown
    if isinstance(value, (list, tuple)):
        return [_identity_value(v) for v in value]
    return value


def _run_record(args: argparse.Namespace) -> dict[str, Any]:
    """What a run into ``args.out`` is: the command, its identity (the arguments and config sections that decide
    what it writes) and, for the reader, the command line and version."""
    from dataclasses import asdict

    from aero_opt.app.config import YAML_NAMES

    identity = {k: _identity_value(v) for k, v in sorted(vars(args).items())
                if k not in NOT_IDENTITY and k not in args.identity_skip}
    sections = [s for s in getattr(args, "config_sections", ()) if s not in HOW_SECTIONS]
    if sections:
        cfg = _config(args)
        attrs = {yaml: attr for attr, yaml in YAML_NAMES.items()}
        identity["config"] = {s: asdict(getattr(cfg, attrs.get(s, s))) for s in sections}
        for path in (k for k in args.identity_skip if k.startswith("config.")):  # e.g. config.optimize.verify_runs
            _, section, key = path.split(".")
            identity["config"].get(section, {}).pop(key, None)
    return {"command": args.run_command, "identity": identity, "argv": sys.argv[1:], "version": _version()}


# ---------------------------------------------------------------- geometry


def _cmd_cars(args: argparse.Namespace) -> Path:
    from aero_opt.geometry.carset import generate_cars

    cfg = _settings(_config(args).cars, n=args.n, seed=args.seed, style=args.style, wing_fraction=args.wing_fraction)
    summary = generate_cars(args.out, n=cfg.n, seed=cfg.seed, style=cfg.style, wing_fraction=cfg.wing_fraction,
                            edge=cfg.edge)
    log.info("wrote %d cars (%s) to %s", summary["n"], summary["styles"], args.out)
    return Path(args.out)


def _parser_cars(sub: Any) -> None:
    p = sub.add_parser("cars", help="generate a reproducible set of parametric car bodies")
    p.add_argument("--n", type=int, default=None, help="number of cars (default: cars.n)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: cars.seed)")
    _add_out(p, "the cars' STL files, params.json, summary.json")
    p.add_argument("--style", choices=["fastback", "notchback", "estate", "all"], default=None,
                   help="body style (default: cars.style)")
    p.add_argument("--wing-fraction", type=float, default=None,
                   help="share of cars with a rear wing (default: cars.wing_fraction)")
    _add_config(p, "cars")
    p.set_defaults(func=_cmd_cars)


def _cmd_import(args: argparse.Namespace) -> Path:
    from aero_opt.core.atomic import write_json_atomic
    from aero_opt.geometry.mesh_import import export_mesh, import_mesh

    out = Path(args.out)
    mesh, report = import_mesh(args.mesh, forward=args.forward, up=args.up, length=args.length,
                               clearance=args.clearance, opts=_config(args).mesh_import)
    export_mesh(mesh, out)
    report["output_file"] = str(out)
    write_json_atomic(out.with_name(out.stem + "_import.json"), report)
    log.info("%s: %s", Path(args.mesh).name, report["repair"]["method"])
    log.info("  input: %s", report["input"])
    log.info("  output: %d faces, watertight, volume %.3f m3, bbox change %s", report["output"]["faces"],
             report["volume_m3"], report["bbox_relative_change"])
    return out


def _parser_import(sub: Any) -> None:
    p = sub.add_parser("import", help="import a car mesh: orient, scale to metres, repair to a watertight manifold")
    p.add_argument("mesh", type=Path, help="OBJ, STL, PLY, OFF, GLB/GLTF (or .gz of these)")
    p.add_argument("--out", type=Path, required=True, help="output mesh file (.stl, .obj, .ply, .off)")
    p.add_argument("--forward", default=None,
                   help="axis pointing from tail to nose in the file, e.g. +z (write --forward=-x for a negative axis)")
    p.add_argument("--up", default=None, help="axis pointing up in the file, e.g. +y")
    p.add_argument("--length", type=float, default=None, help="scale to this overall length (m)")
    p.add_argument("--clearance", type=float, default=0.0,
                   help="height of the lowest point above the ground (m); 0 for a car with wheels")
    _add_config(p, "import")
    p.set_defaults(func=_cmd_import)


def _cmd_ahmed(args: argparse.Namespace) -> Path:
    from aero_opt.geometry.mesh_import import export_mesh
    from aero_opt.geometry.shapes import make_ahmed

    mesh = make_ahmed(args.slant, stilts=args.stilts)
    export_mesh(mesh, Path(args.out))
    log.info("Ahmed body, slant %.1f deg, %d faces, volume %.5f m3", args.slant, len(mesh.faces), mesh.volume)
    return Path(args.out)


def _parser_ahmed(sub: Any) -> None:
    p = sub.add_parser("ahmed", help="write an Ahmed body (1044 x 389 x 288 mm) with a given rear slant")
    p.add_argument("--slant", type=float, default=25.0, help="rear slant angle (deg)")
    p.add_argument("--stilts", action="store_true", help="add the four stilts")
    p.add_argument("--out", type=Path, required=True, help="output mesh file")
    p.set_defaults(func=_cmd_ahmed)


def _cmd_sdf(args: argparse.Namespace) -> Path:
    from aero_opt.core.atomic import write_json_atomic
    from aero_opt.core.progress import progress_bar
    from aero_opt.geometry.sdf import samples_for_mesh_file

    spec = _settings(_config(args).sdf, {"n_samples": "--n"}, n_samples=args.n)
    src = Path(args.mesh)
    files = sorted(p for p in src.iterdir() if p.suffix.lower() in (".stl", ".obj", ".ply", ".off")) \
        if src.is_dir() else [src]
    if not files:
        raise AeroOptError(f"{src}: no mesh files found")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    reports = []
    for i, f in enumerate(progress_bar(files, desc="sdf samples", unit="mesh")):
        t0 = time.perf_counter()
        rep = samples_for_mesh_file(f, out / (f.stem + ".npz"), spec, seed=args.seed + i,
                                    normalization=args.normalization)
        rep["seconds"] = round(time.perf_counter() - t0, 3)
        reports.append(rep)
    write_json_atomic(out / "summary.json", {"spec": spec.__dict__, "normalization": args.normalization,
                                             "meshes": reports})
    return out


def _parser_sdf(sub: Any) -> None:
    p = sub.add_parser("sdf-samples", help="DeepSDF training samples (points + signed distances) for meshes")
    p.add_argument("mesh", type=Path, help="a watertight mesh file or a folder of them")
    _add_out(p, ".npz files and summary.json")
    p.add_argument("--n", type=int, default=None, help="samples per mesh (default: sdf.n_samples)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--normalization", choices=["car", "unit_sphere"], default="car",
                   help="car: the fixed car frame (metres / 2.75); unit_sphere: per mesh (bob, spot)")
    _add_config(p, "sdf")
    p.set_defaults(func=_cmd_sdf)


# ---------------------------------------------------------------- CFD


def _add_flow(p: argparse.ArgumentParser, rho_help: str = "air density (kg/m3)",
              speed_help: str = "free-stream speed in m/s (default: flow.speed)") -> None:
    p.add_argument("--speed", type=float, default=None, help=speed_help)
    p.add_argument("--rho", type=float, default=None, help=f"{rho_help} (default: flow.rho)")


def _flow(args: argparse.Namespace, cfg: Config) -> Any:
    return _settings(cfg.flow, speed=args.speed, rho=args.rho)


def _add_fanout(p: argparse.ArgumentParser, what: str) -> None:
    """Flags of a command that runs OpenFOAM cases side by side."""
    p.add_argument("--workers", type=int, default=None,
                   help=f"{what} side by side on this machine (default: cfd.workers; none: as many as fit)")
    p.add_argument("--procs-per-case", type=int, default=None,
                   help="cores (MPI ranks) per case, reserved on a worker (default: cfd.procs)")
    p.add_argument("--scheduler", default=None,
                   help="run the cases on this running Dask scheduler, tcp://HOST:PORT (default: cluster.address, "
                        "or cluster.kind: a local Dask cluster)")


def _fanout(args: argparse.Namespace, cfg: Config) -> tuple[Any, Any]:
    """The ``cfd`` and ``cluster`` sections with a fan-out command's flags applied."""
    return (_settings(cfg.cfd, {"procs": "--procs-per-case"}, workers=args.workers, procs=args.procs_per_case),
            _settings(cfg.cluster, {"address": "--scheduler"}, address=args.scheduler))


def _cmd_cfd_run(args: argparse.Namespace) -> Path:
    from aero_opt.cfd.case import finished_summary, run_case
    from aero_opt.core.runfolder import clear_outputs

    cfg = _config(args)
    cfd, flow = _settings(cfg.cfd, preset=args.preset, procs=args.procs), _flow(args, cfg)
    s = finished_summary(args.out)  # the same run finished earlier: its result stands
    if s is None:  # fresh, or interrupted: OpenFOAM cannot continue a half-written case, so it starts again
        clear_outputs(args.out)
        s = run_case(args.mesh, args.out, preset_name=cfd.preset, speed=flow.speed, rho=flow.rho, procs=cfd.procs,
                     keep=args.keep, mesh_only=args.mesh_only, oversubscribe=cfd.oversubscribe,
                     grid_shift=args.grid_shift)
    else:
        log.info("%s: finished earlier by the same run; its summary is kept", args.out)
    if args.mesh_only:
        log.info("%d cells, meshing %.0f s", s["cells"], s["seconds"]["total"])
        return Path(args.out)
    log.info("Cd %.4f (pressure %.4f + viscous %.4f), Cl %.4f, A_ref %.4f m2, %d cells, %d iterations, "
             "converged %s, %.0f s", s["Cd"], s["Cd_pressure"], s["Cd_viscous"], s["Cl"], s["A_ref"], s["cells"],
             s["iterations"], s["converged"], s["seconds"]["total"])
    log.info("Cd history and the convergence band: %s", Path(args.out) / "convergence.png")
    return Path(args.out)


def _cmd_cfd_batch(args: argparse.Namespace) -> Path:
    from aero_opt.cfd.batch import run_batch

    cfg = _config(args)
    (cfd, cluster), flow = _fanout(args, cfg), _flow(args, cfg)
    s = run_batch(args.mesh_dir, args.out, preset=args.preset or cfd.preset, speed=flow.speed, rho=flow.rho,
                  workers=cfd.workers, retry_failed=args.retry_failed, procs=cfd.procs,
                  oversubscribe=cfd.oversubscribe, cluster=cluster)
    log.info("%d cases: %d done, %d failed (see %s/batch_summary.json)", s["n"], s["done"], s["failed"], args.out)
    if s["n"] and not s["done"]:
        raise AeroOptError(f"{args.out}: every case failed ({s['failed']} of {s['n']}; the reasons are in "
                           "batch_summary.json)")
    return Path(args.out)


def _cmd_cfd_collect(args: argparse.Namespace) -> Path:
    from aero_opt.cfd.collect import collect_cases

    flow = _flow(args, _config(args))  # validates --speed when given; the case's own speed is the default
    collect_cases(args.cases, args.patch, args.out, rho=flow.rho, speed=None if args.speed is None else flow.speed,
                  time=args.time, half=args.half)
    return Path(args.out)


def _parser_cfd(sub: Any) -> None:
    p = sub.add_parser("cfd", help="OpenFOAM ground truth: run, batch, collect")
    cfd = p.add_subparsers(dest="cfd_command", required=True, metavar="CFD_COMMAND")
    preset_help = "mesh and iteration preset (default: cfd.preset)"
    q = cfd.add_parser("run", help="run one external-aerodynamics case around a watertight car mesh")
    q.add_argument("mesh", type=Path, help="watertight mesh in the car frame (metres)")
    _add_out(q, "the OpenFOAM case")
    q.add_argument("--preset", choices=PRESET_NAMES, default=None, help=preset_help)
    _add_flow(q)
    q.add_argument("--procs", type=int, default=None, help="MPI ranks for simpleFoam (default: cfd.procs)")
    q.add_argument("--keep", action="store_true", help="keep the mesh and field folders")
    q.add_argument("--mesh-only", action="store_true", help="stop after meshing and its checks (cell count)")
    q.add_argument("--grid-shift", type=float, default=0.0,
                   help="move the background grid upstream by this fraction of its cell, in [0, 1): the same body "
                        "on other cells; rerun at a few shifts to measure the preset's noise on your car")
    _add_config(q, "cfd and flow")
    q.set_defaults(func=_cmd_cfd_run)
    q = cfd.add_parser("batch", help="run many cases (resumable; failures recorded)")
    q.add_argument("mesh_dir", type=Path, help="folder of .stl meshes")
    _add_out(q, "one case per mesh, batch_summary.json")
    q.add_argument("--preset", choices=PRESET_NAMES, default=None, help=preset_help)
    _add_flow(q)
    _add_fanout(q, "cases")
    q.add_argument("--retry-failed", action="store_true", help="redo cases that failed before")
    _add_config(q, "cfd, cluster and flow")
    q.set_defaults(func=_cmd_cfd_batch)
    q = cfd.add_parser("collect", help="turn existing OpenFOAM cases into the surrogate's dataset format")
    q.add_argument("cases", type=Path, nargs="+", help="case folders")
    q.add_argument("--patch", required=True, help="name of the body patch")
    _add_out(q, "the dataset")
    q.add_argument("--time", default=None, help="time to read (default: latest)")
    _add_flow(q, rho_help="density for kinematic p (kg/m3)",
              speed_help="free-stream speed in m/s (default: the one the case states in 0/U; given: checked "
                         "against it)")
    q.add_argument("--half", action=argparse.BooleanOptionalAction, default=None,
                   help="the case is a half model, forces doubled (default: as an aero-opt case records it; for "
                        "another case a full model, refused when the body touches y = 0 from one side)")
    _add_config(q, "flow")
    q.set_defaults(func=_cmd_cfd_collect)


def _cmd_dataset_import(args: argparse.Namespace) -> Path:
    from aero_opt.cfd.public_data import ImportSettings, import_dataset

    if args.cases is not None and args.cases < 1:
        raise AeroOptError(f"--cases {args.cases}: must be at least 1")
    for flag, value in (("--speed", args.speed), ("--a-ref", args.a_ref), ("--rho", args.rho)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise AeroOptError(f"{flag} {value}: must be a positive number")
    settings = ImportSettings(speed=args.speed, a_ref=args.a_ref, forward=args.forward, up=args.up,
                              clearance=args.clearance, cd_tolerance=args.cd_tolerance,
                              max_friction_share=args.max_friction_share,
                              kinematic=None if args.fields is None else args.fields == "kinematic",
                              **({} if args.rho is None else {"rho": args.rho}))
    s = import_dataset(args.format, args.src, args.out, settings, table=args.table, limit=args.cases,
                       repair=_config(args).mesh_import)
    counts = f"{s['imported']} imported, {s['refused']} refused, {s['skipped']} skipped"
    if not s["imported"]:
        first = next((r["reason"] for r in s["cases"].values() if r["status"] == "refused"), None)
        raise AeroOptError(f"{args.out}: no case imported ({counts}; every reason is in import_summary.json)"
                           + (f"; the first: {first}" if first else ""))
    log.info("%s into %s (import_summary.json, split.json)", counts, args.out)
    return Path(args.out)


def _parser_dataset(sub: Any) -> None:
    from aero_opt.cfd.public_data import FORMAT_NAMES

    p = sub.add_parser("dataset", help="public CFD datasets into the surrogate's dataset format")
    ds = p.add_subparsers(dest="dataset_command", required=True, metavar="DATASET_COMMAND")
    q = ds.add_parser("import", help="import a downloaded DrivAerML, DrivAerNet++ or windtunnel-20k copy "
                                     "(docs/datasets.md: the files each reader expects)")
    q.add_argument("src", type=Path, help="the dataset folder (DrivAerML: one run_N folder also)")
    q.add_argument("--format", required=True, choices=FORMAT_NAMES, help="the dataset's layout")
    _add_out(q, "the dataset: one .npz per case, split.json, import_summary.json", skip=("cases",))
    q.add_argument("--cases", type=int, default=None, help="import at most this many cases (default: all)")
    q.add_argument("--table", type=Path, default=None,
                   help="DrivAerNet++ drag table (default: the CSV beside the files with Design, Average Cd)")
    q.add_argument("--speed", type=float, default=None, help="free stream (m/s) instead of the dataset's")
    q.add_argument("--a-ref", type=float, default=None,
                   help="reference area (m2) instead of the dataset's (windtunnel-20k: default the frontal area)")
    q.add_argument("--fields", choices=("kinematic", "pa"), default=None,
                   help="units of the files' pressure and shear (default: kinematic, as the three datasets publish)")
    q.add_argument("--rho", type=float, default=None,
                   help="density (kg/m3): multiplies kinematic fields; for fields in Pa, the dataset's density")
    q.add_argument("--cd-tolerance", type=float, default=0.02,
                   help="largest relative difference of the integrated Cd from the published one (default 2%%)")
    q.add_argument("--max-friction-share", type=float, default=0.25,
                   help="pressure-only data: the share of the published Cd the missing friction may explain")
    q.add_argument("--forward", default="-x", help="axis from tail to nose in the files (default -x: flow along +x)")
    q.add_argument("--up", default="+z", help="axis pointing up in the files")
    q.add_argument("--clearance", type=float, default=0.0,
                   help="height of the body's lowest point above the ground (m); 0 for wheels on the ground")
    _add_config(q, "import")
    q.set_defaults(func=_cmd_dataset_import)


# ---------------------------------------------------------------- implicit shape model


def _cmd_train_sdf(args: argparse.Namespace) -> Path:
    import numpy as np

    from aero_opt.meshsdf.train import train

    cfg = _config(args)
    rep = train(args.data, args.out, cfg.decoder, _settings(cfg.train_sdf, epochs=args.epochs), resume=args.resume,
                device=_device(args, cfg))
    ch = [r["chamfer"] for r in rep["reconstruction"] if r.get("chamfer") is not None]
    log.info("final clamped L1 %.5f after %d epochs (%.0f s); train Chamfer-L2 (normalized) median %s",
             rep["final_l1"], rep["epochs"], rep["train_seconds"] or 0, f"{np.median(ch):.2e}" if ch else "n/a")
    return Path(args.out)


def _parser_train_sdf(sub: Any) -> None:
    p = sub.add_parser("train-sdf", help="train a DeepSDF auto-decoder on SDF samples (resumable)")
    p.add_argument("--data", type=Path, required=True, help="folder of SDF sample files (aero-opt sdf-samples)")
    _add_out(p, "checkpoint, loss plot, report", skip=("resume", "epochs"))
    p.add_argument("--epochs", type=int, default=None, help="override train_sdf.epochs")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    _add_device(p)
    _add_config(p, "decoder, train_sdf and device")
    p.set_defaults(func=_cmd_train_sdf)


def _cmd_fit(args: argparse.Namespace) -> Path:
    from aero_opt.meshsdf.fit import fit_mesh

    config = _config(args)
    cfg = _settings(config.fit, samples=args.samples, steps=args.steps)
    rep = fit_mesh(args.mesh, args.model, args.out, normalization=args.normalization, settings=cfg,
                   device=_device(args, config))
    log.info("Chamfer-L2 %.3e (normalized) = %s", rep["chamfer"],
             f"{rep['chamfer_m2']:.3e} m2" if rep["chamfer_m2"] is not None else "n/a")
    return Path(args.out)


def _parser_fit(sub: Any) -> None:
    p = sub.add_parser("fit", help="fit a latent code to a mesh with a trained decoder; report Chamfer-L2")
    p.add_argument("mesh", type=Path, help="watertight mesh (car frame, metres; or any mesh with unit_sphere)")
    p.add_argument("--model", type=Path, required=True, help="run folder of aero-opt train-sdf")
    _add_out(p, "the fitted code, its mesh, report")
    p.add_argument("--normalization", choices=["car", "unit_sphere"], default="car")
    p.add_argument("--samples", type=int, default=None, help="SDF samples of the mesh (default: fit.samples)")
    p.add_argument("--steps", type=int, default=None,
                   help="Adam steps (default: fit.steps, or the decoder's own when that is null)")
    _add_device(p)
    _add_config(p, "fit and device")
    p.set_defaults(func=_cmd_fit)


def _cmd_finetune_sdf(args: argparse.Namespace) -> Path:
    from aero_opt.meshsdf.finetune import run_finetune

    cfg = _config(args)
    r = run_finetune(args.model, args.data, args.out, args.test, _settings(cfg.finetune, epochs=args.epochs),
                     device=_device(args, cfg))
    ch = r["relative_change"]
    log.info("Chamfer-L2 change: train %s, held-out %s", f"{100 * ch['train']:+.1f} %",
             "n/a" if ch["test"] is None else f"{100 * ch['test']:+.1f} %")
    return Path(args.out)


def _parser_finetune_sdf(sub: Any) -> None:
    p = sub.add_parser("finetune-sdf", help="fine-tune a DeepSDF end to end through the iso-surface (Chamfer)")
    p.add_argument("--model", type=Path, required=True, help="train-sdf run folder")
    p.add_argument("--data", type=Path, required=True, help="the SDF samples it was trained on")
    p.add_argument("--test", type=Path, default=None, help="SDF samples of held-out shapes (for the report)")
    _add_out(p, "checkpoint.pt, finetune.json", skip=("resume", "epochs"))
    p.add_argument("--epochs", type=int, default=None, help="passes over the training shapes (default: "
                                                            "finetune.epochs)")
    _add_device(p)
    _add_config(p, "finetune and device")
    p.set_defaults(func=_cmd_finetune_sdf)


def _cmd_demo_topology(args: argparse.Namespace) -> Path:
    from aero_opt.meshsdf.topology import run_demo_topology

    cfg = _settings(_config(args).topology, iters=args.iters)
    s = run_demo_topology(args.out, args.model, args.shapes, cfg, fast=args.fast)
    log.info("silhouette loss %.4f -> %.4f, Euler characteristic %d -> %d (changed at iteration %s); "
             "%.2f s and %d queries per iteration (%s)", s["loss_first"], s["loss_last"], s["euler_first"],
             s["euler_last"], s["genus_changed_at"], s["per_mode"][s["mode"]]["seconds_per_iteration"],
             s["per_mode"][s["mode"]]["queries_per_iteration"], s["mode"])
    return Path(args.out)


def _parser_demo_topology(sub: Any) -> None:
    p = sub.add_parser("demo-topology", help="Spot -> Bob through a silhouette loss: a genus change (MeshSDF toy)")
    _add_out(p, "frames, GIF, summary.json", default=Path("results/topology"))
    p.add_argument("--model", type=Path, default=REPO_DATA / "models" / "bob_spot",
                   help="Bob/Spot decoder (trained there first if missing, ~5 min)")
    p.add_argument("--shapes", type=Path, default=REPO_DATA / "bob_spot", help="folder with bob_tri.obj, spot.obj")
    p.add_argument("--fast", action="store_true", help="fast (narrow-band) extraction for the main run")
    p.add_argument("--iters", type=int, default=None, help="Adam steps (default: topology.iters)")
    _add_config(p, "topology")
    p.set_defaults(func=_cmd_demo_topology)


# ---------------------------------------------------------------- surrogate


def _cmd_train_surrogate(args: argparse.Namespace) -> Path:
    from surrogate.train import train_surrogate

    cfg = _config(args)
    rep = train_surrogate(args.data, args.out, cfg.surrogate, _settings(cfg.train_surrogate, epochs=args.epochs),
                          resume=args.resume, init=args.init, device=_device(args, cfg))
    log.info("best validation loss %.5f after %d epochs (%d train / %d val cars)", rep["best_val"],
             rep["epochs_run"], rep["train_cars"], rep["val_cars"])
    return Path(args.out)


def _parser_train_surrogate(sub: Any) -> None:
    p = sub.add_parser("train-surrogate", help="train the SplineCNN pressure surrogate on the CFD dataset")
    p.add_argument("--data", type=Path, required=True, help="dataset folder (npz files and split.json)")
    _add_out(p, "model.pt, checkpoint, loss plot", skip=("resume", "epochs"))
    p.add_argument("--epochs", type=int, default=None, help="override train_surrogate.epochs")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    p.add_argument("--init", type=Path, default=None,
                   help="start from this trained model (run folder or model.pt) instead of random weights")
    _add_device(p)
    _add_config(p, "surrogate, train_surrogate and device")
    p.set_defaults(func=_cmd_train_surrogate)


def _cmd_eval_surrogate(args: argparse.Namespace) -> Path:
    from surrogate.evaluate import evaluate

    m = evaluate(args.model, args.data, args.split, args.out, device=_device(args, _config(args)))
    log.info("%s: %d cars, pressure rel. L2 mean %.3f; Cd R2 %s, Spearman %s, MAE %.4f", args.split, m["cars"],
             m["pressure_rel_l2"]["mean"], m["cd_total"]["r2"], m["cd_total"]["spearman"], m["cd_total"]["mae"])
    return Path(args.out)


def _parser_eval_surrogate(sub: Any) -> None:
    p = sub.add_parser("eval-surrogate", help="evaluate a trained surrogate on a dataset split")
    p.add_argument("--model", type=Path, required=True, help="run folder of train-surrogate (model.pt)")
    p.add_argument("--data", type=Path, required=True, help="dataset folder")
    p.add_argument("--split", choices=["train", "val", "test", "all"], default="test",
                   help="split of split.json, or all: every car of the folder (e.g. the real-car set)")
    _add_out(p, "metrics.json, plots, vtp/")
    _add_device(p)
    _add_config(p, "device")
    p.set_defaults(func=_cmd_eval_surrogate)


def _cmd_fit_domain(args: argparse.Namespace) -> Path:
    from surrogate.model import Surrogate
    from surrogate.samples import load_split

    dom = Surrogate.load(args.model).fit_domain(load_split(args.data, args.split), args.model)
    log.info("%s: training domain of %d cars recorded (score threshold %.2f)", args.model, len(dom.points),
             dom.threshold)
    return Path(args.model)


def _parser_fit_domain(sub: Any) -> None:
    p = sub.add_parser("fit-domain", help="record a trained surrogate's training domain (for its domain score); "
                                          "train-surrogate does this itself, this is for models saved before")
    p.add_argument("--model", type=Path, required=True, help="run folder of train-surrogate (model.pt, updated)")
    p.add_argument("--data", type=Path, required=True, help="the dataset folder it was trained on")
    p.add_argument("--split", choices=["train", "val", "test", "all"], default="train")
    p.set_defaults(func=_cmd_fit_domain)


def _cmd_predict(args: argparse.Namespace) -> Path:
    from surrogate.evaluate import predict_mesh

    cfg = _config(args)
    flow = _flow(args, cfg)
    s = predict_mesh(args.mesh, args.model, args.out, rho=flow.rho, speed=flow.speed, regrid=not args.as_is,
                     device=_device(args, cfg))
    log.info("predicted Cd %.4f (pressure %.4f + viscous %.4f), A_ref %.3f m2, %.2f s, domain score %s", s["Cd"],
             s["Cd_pressure"], s["Cd_viscous"], s["A_ref"], s["seconds"],
             "unknown (model without a recorded domain)" if s["domain_score"] is None else
             f"{s['domain_score']:.2f} (threshold {s['domain_threshold']:.2f})")
    return Path(args.out)


def _parser_predict(sub: Any) -> None:
    p = sub.add_parser("predict", help="surrogate pressure field and Cd for a watertight car mesh")
    p.add_argument("mesh", type=Path, help="watertight car mesh in the car frame (aero-opt import)")
    p.add_argument("--model", type=Path, required=True, help="run folder of train-surrogate")
    _add_out(p, "prediction.vtp, summary.json")
    _add_flow(p)
    p.add_argument("--as-is", action="store_true",
                   help="predict on the mesh as given (default: on its marching-cubes mesh on the dataset grid, the "
                        "kind of mesh the surrogate was trained on)")
    _add_device(p)
    _add_config(p, "flow and device")
    p.set_defaults(func=_cmd_predict)


# ---------------------------------------------------------------- optimization


def _add_models(p: argparse.ArgumentParser, verify_flag: bool = True) -> None:
    p.add_argument("--surrogate", type=Path, default=REPO_DATA / "models" / "surrogate",
                   help="surrogate run folder (default: the shipped model)")
    p.add_argument("--decoder", type=Path, default=REPO_DATA / "models" / "car_decoder",
                   help="DeepSDF run folder (default: the shipped decoder)")
    p.add_argument("--data", type=Path, default=REPO_DATA / "dataset",
                   help="dataset folder for car IDs (default: the shipped dataset)")
    p.add_argument("--iters", type=int, default=None, help="Adam steps (default: optimize.iters)")
    p.add_argument("--room", choices=("relative", "package"), default=None,
                   help="room constraint: relative boxes of the initial car, or package: two occupants, an engine "
                        "bay and wheels in metres (default: optimize.room)")
    if verify_flag:
        p.add_argument("--verify", action="store_true", help="simulate the initial and final shapes with OpenFOAM")
    _add_verify_settings(p)
    _add_flow(p)
    _add_device(p)


def _add_verify_settings(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verify-runs", type=int, default=None,
                   help="OpenFOAM runs per shape on distinct near-body grids; the shape's drag is their mean, with "
                        "its 95%% interval (default: optimize.verify_runs)")
    p.add_argument("--verify-preset", default=None,
                   help=f"OpenFOAM preset of the check: {', '.join(PRESET_NAMES)} (default: optimize.verify_preset)")


def _optimize_settings(args: argparse.Namespace, cfg: Config) -> Any:
    """The config's optimize section with the command's --iters, --room, --verify-runs and --verify-preset."""
    return _settings(cfg.optimize, iters=getattr(args, "iters", None), room=getattr(args, "room", None),
                     verify_runs=args.verify_runs, verify_preset=args.verify_preset)


def _cmd_optimize(args: argparse.Namespace) -> Path:
    from aero_opt.app.optimize import run_optimize

    cfg = _config(args)
    cfd, cluster = _fanout(args, cfg)
    s = run_optimize(args.param, args.car, args.out, _optimize_settings(args, cfg), args.surrogate,
                     args.decoder, args.data, lr=args.lr, do_verify=args.verify, flow=_flow(args, cfg),
                     device=_device(args, cfg), cluster=cluster, procs=cfd.procs, workers=cfd.workers, fit=cfg.fit)
    log.info("%s on %s: surrogate drag %.1f N -> %.1f N (%+.1f %%), Cd %.4f -> %.4f%s", s["param"], s["car"],
             s["initial"]["drag_N"], s["final"]["drag_N"], 100 * s["drag_change"], s["initial"]["Cd"],
             s["final"]["Cd"], f"; OpenFOAM drag change {100 * s['cfd']['drag_change']:+.1f} %" if "cfd" in s else "")
    return Path(args.out)


def _parser_optimize(sub: Any) -> None:
    p = sub.add_parser("optimize", help="lower a car's drag with one parameterization (surrogate drag, constraints)")
    p.add_argument("--param", required=True, help="meshsdf | scaling | freeform | polycube | vertex")
    p.add_argument("--car", required=True, help="dataset car ID (12 or car_0012) or a watertight mesh file")
    _add_out(p, "initial and final shapes, history, summary")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: optimize.lr.<param>)")
    _add_models(p)
    _add_fanout(p, "the two OpenFOAM cases of --verify")
    _add_config(p, "optimize, fit, flow, device, cfd and cluster")
    p.set_defaults(func=_cmd_optimize)


def _cmd_compare(args: argparse.Namespace) -> Path:
    from aero_opt.app.compare import run_compare

    cfg = _config(args)
    cars = [c.strip() for c in args.cars.split(",") if c.strip()]
    params = [p.strip() for p in args.params.split(",") if p.strip()]
    cfd, cluster = _fanout(args, cfg)
    run_compare(cars, params, args.out, _optimize_settings(args, cfg), args.surrogate, args.decoder,
                args.data, do_verify=args.verify, workers=cfd.workers, flow=_flow(args, cfg), procs=cfd.procs,
                cluster=cluster, device=_device(args, cfg), fit=cfg.fit)
    log.info("%s", (Path(args.out) / "results.md").read_text())
    return Path(args.out)


def _parser_compare(sub: Any) -> None:
    p = sub.add_parser("compare", help="every parameterization on every car (resumable), table and chart")
    p.add_argument("--cars", required=True, help="comma-separated dataset IDs or mesh files")
    p.add_argument("--params", default="all", help="comma-separated parameterizations, or all")
    _add_fanout(p, "OpenFOAM cases of --verify")
    _add_out(p, "one run per car and parameterization, tables, chart",
             skip=("cars", "params", "verify", "verify_runs", "verify_preset", *VERIFY_CONFIG))
    _add_models(p)
    _add_config(p, "optimize, fit, flow, cfd, cluster and device")
    p.set_defaults(func=_cmd_compare)


def _cmd_campaign(args: argparse.Namespace) -> Path:
    from aero_opt.app.campaign import run_campaign

    cfg = _config(args)
    cfd, cluster = _fanout(args, cfg)
    ccfg = _settings(cfg.campaign, rounds=args.rounds, per_round=args.per_round, budget_cases=args.budget_cases)
    r = run_campaign(args.car, args.param, args.out, _optimize_settings(args, cfg), ccfg, args.method,
                     args.surrogate, args.decoder, args.data, flow=_flow(args, cfg), workers=cfd.workers,
                     cluster=cluster, procs=cfd.procs, device=_device(args, cfg), fit=cfg.fit)
    log.info("%s", (Path(args.out) / "campaign.md").read_text())
    log.info("%d CFD cases; best verified drag %.1f N (start %.1f N)", r["cases_used"], r["best"]["drag_N"],
             r["start"]["drag_N"])
    return Path(args.out)


def _parser_campaign(sub: Any) -> None:
    p = sub.add_parser("campaign", help="optimization with OpenFOAM in the loop (surrogate retrained on what it "
                                        "gets wrong), or the CMA-ES baseline at equal CFD cost")
    p.add_argument("--car", required=True, help="dataset car ID (12 or car_0012) or a watertight mesh file")
    p.add_argument("--param", required=True, help="meshsdf | scaling | freeform | polycube | vertex")
    p.add_argument("--method", choices=("surrogate", "cma"), default="surrogate",
                   help="surrogate: optimize, verify, fine-tune per round; cma: CMA-ES with OpenFOAM as the "
                        "objective (needs --budget-cases)")
    p.add_argument("--rounds", type=int, default=None, help="rounds (default: campaign.rounds)")
    p.add_argument("--per-round", type=int, default=None, help="candidates verified per round "
                                                               "(default: campaign.per_round)")
    p.add_argument("--budget-cases", type=int, default=None,
                   help="CFD cases the campaign may use, the start shape's included (default: campaign.budget_cases)")
    _add_out(p, "rounds, campaign dataset, fine-tuned surrogates, campaign.json/.md/.png")
    _add_models(p, verify_flag=False)  # a campaign always verifies
    _add_fanout(p, "OpenFOAM cases")
    _add_config(p, "campaign, optimize, fit, flow, cfd, cluster and device")
    p.set_defaults(func=_cmd_campaign)


def _cmd_demo(args: argparse.Namespace) -> Path:
    from aero_opt.app.demo import run_demo

    cluster = None if args.scheduler is None else _settings(_config(args).cluster, {"address": "--scheduler"},
                                                            address=args.scheduler)
    run_demo(Path(args.out), config=args.config, workers=args.workers, verify=not args.no_verify, docs=args.docs,
             cluster=cluster, device=args.device, verify_runs=args.verify_runs, verify_preset=args.verify_preset)
    return Path(args.out)


def _parser_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="the main job (make demo): every parameterization on a shipped car, "
                                    "checked by OpenFOAM")
    _add_out(p, "shapes, tables, pictures", default=Path("results/demo"),
             skip=("no_verify", "verify_runs", "verify_preset", "docs", *VERIFY_CONFIG))
    p.add_argument("--workers", type=int, default=None,
                   help="OpenFOAM cases side by side on this machine (default: cfd.workers; none: as many as fit)")
    p.add_argument("--scheduler", default=None,
                   help="run the cases on this running Dask scheduler, tcp://HOST:PORT (default: cluster.address)")
    p.add_argument("--no-verify", action="store_true", help="skip the OpenFOAM check")
    _add_verify_settings(p)
    _add_device(p)
    p.add_argument("--docs", type=Path, default=None,
                   help="also copy the table and each run's summary, history and picture here "
                        "(the repository's copy: docs/results/demo)")
    _add_config(p, "optimize, fit, flow, cfd, cluster and device")
    p.set_defaults(func=_cmd_demo)


SUBPARSERS: tuple[Callable[[Any], None], ...] = (
    _parser_cars, _parser_import, _parser_ahmed, _parser_sdf, _parser_cfd, _parser_dataset, _parser_train_sdf,
    _parser_fit, _parser_train_surrogate, _parser_eval_surrogate, _parser_fit_domain, _parser_predict, _parser_optimize,
    _parser_compare, _parser_campaign, _parser_finetune_sdf, _parser_demo_topology, _parser_demo)
"""One function per subcommand adds its parser (in ``--help`` order)."""


def _version() -> str:
    """The installed package's version (``pyproject.toml``), or ``unknown`` when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aero-opt")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``aero-opt`` with all subcommands."""
    parser = argparse.ArgumentParser(prog="aero-opt", description=__doc__.splitlines()[0])
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    talk.add_argument("-q", "--quiet", action="store_true",
                      help="warnings and errors only: no progress, no information lines (the last line still names "
                           "the output)")
    parser.add_argument("--version", action="version", version=f"aero-opt {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBPARSERS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aero-opt`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    from aero_opt.core.progress import set_quiet

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
                        format="%(message)s")
    set_quiet(args.quiet)
    logging.getLogger("trimesh").setLevel(logging.WARNING)
    func: Callable[[argparse.Namespace], Path] = args.func
    try:
        if hasattr(args, "run_command"):
            from aero_opt.core.runfolder import run_folder

            with run_folder(args.out, _run_record(args), args.overwrite):
                out = func(args)
        else:
            out = func(args)
    except AeroOptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unwritable output, full disk, a file where a folder should be
        print(f"error: {exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    print(f"output: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
