"""``aero-opt compare``: every parameterization on every car, the same start shape for all, resumable.

Layout of ``out_dir``::

    inputs.json                    the models' SHA-256 and the optimize settings the runs were made with: a resumed
                                   comparison with other models or settings is refused rather than mixed
    <car>/start.pt                 latent code and start mesh (computed once per car)
    <car>/cfd_initial/             OpenFOAM case of the start shape (with --verify; shared by all runs)
    <car>/<param>/summary.json     one optimization (written last: a run with it is finished and skipped)
    results.csv, results.md        one row per (car, param) and the per-parameterization summary
    comparison.png                 mean relative drag change per parameterization (surrogate and CFD)
    surrogate_vs_cfd.png           every run's predicted against its OpenFOAM drag change (with --verify)
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh

from aero_opt.app.optimize import Models, OptimizeConfig, StartShape, data_cd_floor, run_start, start_shape
from aero_opt.app.report import write_compare_report, write_run_report
from aero_opt.cfd import verify
from aero_opt.cfd.executor import ClusterConfig
from aero_opt.cfd.results import case_regions
from aero_opt.core.atomic import save_torch_atomic, write_csv_atomic, write_json_atomic, write_text_atomic
from aero_opt.core.checkpoint import load_torch
from aero_opt.core.errors import AeroOptError
from aero_opt.core.physics import Flow
from aero_opt.core.stats import bootstrap_mean
from aero_opt.geometry.regions import BODY_REGIONS
from aero_opt.meshsdf.config import FitConfig
from parameterizations import NAMES, parameterization_class

log = logging.getLogger(__name__)

INPUTS_FILE = "inputs.json"
"""What a comparison folder's runs were made with (:func:`claim_folder`)."""


def model_fingerprints(surrogate_dir: Path, decoder_dir: Path) -> dict[str, str]:
    """SHA-256 of the surrogate's ``model.pt`` and the decoder's ``checkpoint.pt`` (hex), to tell models apart.

    Raises:
        AeroOptError: a model file is missing (naming it).
    """
    out = {}
    for key, path in (("surrogate", Path(surrogate_dir) / "model.pt"),
                      ("car_decoder", Path(decoder_dir) / "checkpoint.pt")):
        if not path.is_file():
            raise AeroOptError(f"{path}: model file not found")
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        out[key] = digest.hexdigest()
    return out


VERIFY_KEYS = ("verify_preset", "verify_runs")
"""Optimize settings that choose how the shapes are checked, not the shapes: a folder may be re-verified with
others."""


LEGACY_FIT = asdict(FitConfig(init="mean", steps=None))
"""How start shapes were fitted before ``inputs.json`` recorded it: from the mean code, the decoder's own steps."""

LEGACY_OPTIMIZE = {"symmetric": False}
"""Optimize settings of records made before they were settings: the decoder was evaluated as trained."""


def optimize_record(cfg: OptimizeConfig) -> dict[str, Any]:
    """The optimize settings a comparison folder's shapes depend on (all but :data:`VERIFY_KEYS`)."""
    return {k: v for k, v in asdict(cfg).items() if k not in VERIFY_KEYS}


def claim_folder(out_dir: Path, inputs: dict[str, Any]) -> None:
    """Record ``inputs`` in ``out_dir/inputs.json``, or check that the folder's earlier runs used the same.

    Finished runs in a comparison folder are reused, so a folder resumed with another model or other settings would
    mix two experiments in one table. A folder with runs but no record (made before it was kept) is refused too:
    its models are unknown.

    Args:
        out_dir: the comparison folder; inputs: JSON-serializable description (``models`` and ``optimize``).

    Raises:
        AeroOptError: the folder's record differs (naming the file and the first differing key), or the folder
            holds finished runs and no record.
    """
    path = Path(out_dir) / INPUTS_FILE
    if path.is_file():
        old = json.loads(path.read_text())
        if isinstance(old.get("optimize"), dict):  # records made before the verification keys were left out
            old["optimize"] = {**LEGACY_OPTIMIZE, **{k: v for k, v in old["optimize"].items() if k not in VERIFY_KEYS}}
        old.setdefault("fit", LEGACY_FIT)
        for key in sorted(set(old) | set(inputs)):
            if old.get(key) != inputs.get(key):
                diff = key
                if isinstance(old.get(key), dict) and isinstance(inputs.get(key), dict):
                    sub = sorted(k for k in set(old[key]) | set(inputs[key]) if old[key].get(k) != inputs[key].get(k))
                    diff = f"{key}.{sub[0]}" if sub else key
                raise AeroOptError(f"{path}: this folder's runs were made with another {diff}; use a new output "
                                   f"folder (or delete this one) to compare with the current models and settings")
        return
    if Path(out_dir).is_dir() and any(Path(out_dir).glob("*/*/summary.json")):
        raise AeroOptError(f"{out_dir}: holds finished runs but no {INPUTS_FILE} (made by an older version), so "
                           f"the models they used are unknown; use a new output folder")
    write_json_atomic(path, inputs)


def recorded_models(out_dir: Path) -> dict[str, str]:
    """The models' SHA-256 that :func:`run_compare` recorded for ``out_dir`` (``inputs.json``), for summaries."""
    return json.loads((Path(out_dir) / INPUTS_FILE).read_text())["models"]


def cached_start(car: str, models: Models, cfg: OptimizeConfig, data_dir: Path, car_dir: Path, fit: FitConfig
           ) -> StartShape:
    """The car's start shape, cached in ``car_dir/start.pt`` (its code fitted with ``fit`` unless it is a training
    car)."""
    path = car_dir / "start.pt"
    if path.is_file():
        d = load_torch(path, ("name", "latent", "verts", "faces", "source"))
        return StartShape(d["name"], d["latent"], d["verts"], d["faces"], d["source"])
    s = start_shape(car, models, cfg.resolution, data_dir, fit)
    car_dir.mkdir(parents=True, exist_ok=True)
    save_torch_atomic({"name": s.name, "latent": s.latent, "verts": s.verts, "faces": s.faces, "source": s.source},
                      path)
    return s


def run_compare(cars: list[str], params: list[str], out_dir: Path, cfg: OptimizeConfig, surrogate_dir: Path,
                decoder_dir: Path, data_dir: Path, do_verify: bool = False, workers: int | None = None,
                flow: Flow = Flow(), progress: bool = True, procs: int = 1,
                cluster: ClusterConfig | None = None, device: torch.device | str = "cpu",
                fit: FitConfig = FitConfig()) -> dict[str, Any]:
    """Run (or resume) the comparison and write the tables and the chart.

    All optimizations run first; with ``do_verify`` the OpenFOAM cases (one per car for the shared start shape,
    one per run for its final shape) then run ``workers`` at a time, each resumable.

    Args:
        cars: dataset IDs or mesh paths; params: parameterization names or ["all"].
        flow: the free stream (recorded in ``inputs.json`` when it is not the default).
        workers, procs, cluster: how the OpenFOAM cases run (:func:`verify_runs`).
        device: where the networks run.
        fit: how a held-out car's latent code is fitted (recorded in ``inputs.json``: the start shapes depend on it).

    Returns:
        The per-parameterization summary (also in ``results.md``).
    """
    params = list(NAMES) if params == ["all"] else params
    for p in params:
        parameterization_class(p, "--params")
    if not cars:
        raise AeroOptError("--cars: give at least one car")
    out_dir = Path(out_dir)
    models = Models.load(surrogate_dir, decoder_dir, device=device, symmetric=cfg.symmetric)
    if do_verify:
        verify.check_verification(cfg.verify_preset, cfg.verify_runs)
    inputs = {"models": model_fingerprints(surrogate_dir, decoder_dir), "optimize": optimize_record(cfg),
              "fit": asdict(fit)}
    claim_folder(out_dir, inputs if flow == Flow() else {**inputs, "flow": asdict(flow)})
    cd_floor = data_cd_floor(cfg, data_dir, models.surrogate)
    runs: list[tuple[str, str, Path]] = []
    for car in cars:
        car_dir = out_dir / (Path(car).stem if Path(car).suffix else car)
        start = cached_start(car, models, cfg, data_dir, car_dir, fit)
        for param in params:
            run_dir = car_dir / param
            if not (run_dir / "summary.json").is_file():
                log.info("%s / %s", start.name, param)
                run_start(param, start, models, cfg, run_dir, cd_floor=cd_floor, flow=flow, progress=progress)
            runs.append((start.name, param, run_dir))
    if do_verify:
        verify_runs(runs, cfg.verify_preset, workers, progress, flow=flow, procs=procs, cluster=cluster,
                    n_runs=cfg.verify_runs)
        for _, _, run_dir in runs:  # with the OpenFOAM results now in each summary
            write_run_report(run_dir)
    rows = [result_row(car, param, run_dir) for car, param, run_dir in runs]
    table = summarize(rows, params)
    write_tables(rows, table, out_dir)
    write_compare_report(out_dir)
    return table


def verify_runs(runs: list[tuple[str, str, Path]], preset: str, workers: int | None, progress: bool,
                key: str = "cfd", flow: Flow = Flow(), procs: int = 1, cluster: ClusterConfig | None = None,
                n_runs: int = 1) -> None:
    """OpenFOAM for every start shape and final shape, ``n_runs`` grid-shifted runs each (finished cases are
    reused); adds ``key`` to each run's summary.

    Args:
        runs: (car, parameterization, run folder) of finished optimizations (``<car>/<param>``).
        preset: CFD preset.
        workers: cases side by side on this machine (None: as many as fit the cores).
        progress: show a progress bar.
        key: the summary entry written (``{"preset", "runs", "initial", "final", "drag_change",
            "drag_change_ci95", "drag_change_se"}``, the shapes' verdicts from
            :func:`aero_opt.cfd.verify.check_shapes`) and the cases' prefix: ``<car>/<key>_initial`` (shared by the
            car's runs) and ``<car>/<param>/<key>_final`` (further runs beside them, ``..._s<shift>``). The default
            ``"cfd"`` is the comparison's own verification; another key (e.g. ``"cfd_medium"``) checks the same
            shapes at another preset without touching it.
        flow: the free stream of the cases.
        procs: cores (MPI ranks) per case; cluster: where the cases run (None: a local Dask cluster).
        n_runs: runs per shape (``--verify-runs``).
    """
    shapes: dict[Path, Path] = {}
    for _, _, run_dir in runs:
        shapes.setdefault(run_dir.parent / f"{key}_initial", run_dir / "initial.stl")
        shapes[run_dir / f"{key}_final"] = run_dir / "final.stl"
    got = verify.check_shapes([(case, mesh, case) for case, mesh in shapes.items()], preset, n_runs, flow.speed,
                              flow.rho, workers, cluster, procs, progress, desc=f"cfd {preset} x{n_runs}")
    for case, result in got.items():
        if isinstance(result, AeroOptError):
            log.error("%s: not verified: %s", case, result)
    for _, _, run_dir in runs:
        ini, fin = got[run_dir.parent / f"{key}_initial"], got[run_dir / f"{key}_final"]
        summary = json.loads((run_dir / "summary.json").read_text())
        if isinstance(ini, AeroOptError) or isinstance(fin, AeroOptError):
            summary.pop(key, None)  # an earlier verdict of other runs would be read as this one's
        else:
            summary[key] = {"preset": preset, "runs": n_runs, "initial": ini, "final": fin,
                            **verify.drag_change(ini, fin)}
        write_json_atomic(run_dir / "summary.json", summary)


REBUILT = ("report.html",)
"""Files of a comparison folder that are not carried across sessions (:mod:`aero_opt.core.carry`): every run's
report is rewritten after its verification."""

EXTENTS = ("length", "width", "height")
"""The bounding-box extents (x, y, z) compared between a run's final and initial shape."""


def result_row(car: str, param: str, run_dir: Path, key: str = "cfd") -> dict[str, Any]:
    """One run's results row: drag (surrogate, and OpenFOAM when verified under ``key`` of its summary, see
    :func:`verify_runs`), constraints, and the final shape's bounding-box extents over the initial shape's
    (``length_ratio``, ``width_ratio``, ``height_ratio``)."""
    s = json.loads((run_dir / "summary.json").read_text())
    ratio = (trimesh.load(run_dir / "final.stl", process=False).extents
             / trimesh.load(run_dir / "initial.stl", process=False).extents)
    row = {"car": car, "param": param, "surrogate_drag_initial_N": s["initial"]["drag_N"],
           "surrogate_drag_final_N": s["final"]["drag_N"], "surrogate_change": s["drag_change"],
           "Cd_initial": s["initial"]["Cd"], "Cd_final": s["final"]["Cd"], "feasible": s["feasible"],
           "room_penalty_m2": s["final"]["room_penalty_m2"], "stopped_at": s.get("stopped_at"),
           "seconds": s["seconds"], **{f"{e}_ratio": float(r) for e, r in zip(EXTENTS, ratio)}}
    cfd = s.get(key) or {}
    ini, fin = cfd.get("initial", {}), cfd.get("final", {})
    row.update({"cfd_drag_initial_N": ini.get("drag_N"), "cfd_drag_final_N": fin.get("drag_N"),
                "cfd_change": cfd.get("drag_change"), "cfd_change_ci95": cfd.get("drag_change_ci95"),
                "cfd_change_se": cfd.get("drag_change_se"),
                "cfd_Cd_initial": ini.get("Cd"), "cfd_Cd_final": fin.get("Cd"),
                "cfd_Cd_initial_std": (ini.get("Cd_stats") or {}).get("std"),
                "cfd_Cd_final_std": (fin.get("Cd_stats") or {}).get("std"),
                "cfd_runs": (f"{(ini.get('Cd_stats') or {}).get('n', 1)}+{(fin.get('Cd_stats') or {}).get('n', 1)}"
                             f"/{cfd.get('runs', 1)}") if cfd else None})
    regions = _verdict_regions(Path(run_dir), s.get(key), key)
    row.update({f"cfd_dCd_{name}": None if regions is None else regions[name] for name in BODY_REGIONS})
    return row


def _shape_regions(case: Path, verdict: dict[str, Any], preset: str, runs: int) -> dict[str, float] | None:
    """Each body region's Cd of one verified shape, the mean over its usable runs (None: a run's surface and its
    cached regions are both gone)."""
    used = [folder for (_, folder), r in zip(verify.run_cases(case, preset, runs), verdict.get("runs", []))
            if "error" not in r and r.get("converged") is not False]
    try:
        per_run = [case_regions(folder) for folder in used]
    except AeroOptError as exc:
        log.warning("%s: no drag by region (%s)", case, exc)
        return None
    return {name: float(np.mean([r[name] for r in per_run])) for name in BODY_REGIONS} if per_run else None


def region_change(run_dir: Path, key: str = "cfd") -> dict[str, float] | None:
    """Where on the car OpenFOAM saw a run's drag change: per body region
    (:data:`aero_opt.geometry.regions.BODY_REGIONS`), the final shape's Cd minus the start shape's, each the mean over
    its usable runs of the verification ``key`` (:func:`verify_runs`); the regions add up to the Cd change.

    Returns:
        region -> ΔCd, or None when the run is not verified under ``key`` or a case's surface is gone (a carried
        case keeps only its cached ``regions.json``, :func:`aero_opt.cfd.results.case_regions`).
    """
    return _verdict_regions(Path(run_dir), json.loads((Path(run_dir) / "summary.json").read_text()).get(key), key)


def _verdict_regions(run_dir: Path, v: dict[str, Any] | None, key: str) -> dict[str, float] | None:
    """:func:`region_change` from the run's verification entry ``v`` (its summary's ``key``) already read."""
    if not v or "runs" not in v.get("initial", {}):
        return None
    runs = v.get("runs", 1)
    shared = run_dir.parent / f"{key}_initial"  # a comparison's start-shape case; an optimize run keeps its own
    ini = _shape_regions(shared if shared.is_dir() else run_dir / f"{key}_initial", v["initial"], v["preset"], runs)
    fin = _shape_regions(run_dir / f"{key}_final", v["final"], v["preset"], runs)
    if ini is None or fin is None:
        return None
    return {name: fin[name] - ini[name] for name in BODY_REGIONS}


REFERENCE_PARAM = "meshsdf"
"""The parameterization the others are compared with, pair by pair on the same cars."""


def summarize(rows: list[dict[str, Any]], params: list[str]) -> dict[str, Any]:
    """Per parameterization: the relative drag-force change (surrogate: mean ± std over the runs; OpenFOAM: mean
    with a 95% bootstrap interval over the cars that carries each car's own run-to-run noise,
    :func:`aero_opt.core.stats.bootstrap_mean`) and the OpenFOAM Cd change (drag force = Cd × frontal area: the Cd
    column shows how much of the gain is shape rather than a smaller frontal area), constraint violations, runs
    stopped at the data's edge and the mean extent ratios (final / initial length, width, height). Each other
    parameterization also gets ``vs_<REFERENCE_PARAM>``: its OpenFOAM drag change minus the reference's on the
    same cars, mean with the same bootstrap interval, and whether the interval excludes zero."""
    out: dict[str, Any] = {}
    by_car = {p: {x["car"]: x for x in rows if x["param"] == p and x["cfd_change"] is not None} for p in params}
    for p in params:
        r = [x for x in rows if x["param"] == p]
        sur = np.array([x["surrogate_change"] for x in r], float)
        v = [x for x in r if x["cfd_change"] is not None]
        cd = np.array([x["cfd_Cd_final"] / x["cfd_Cd_initial"] - 1.0 for x in v], float)
        boot = bootstrap_mean([x["cfd_change"] for x in v], [x.get("cfd_change_se") for x in v]) if v else None
        out[p] = {"runs": len(r), "surrogate_change_mean": float(sur.mean()) if len(sur) else None,
                  "surrogate_change_std": float(sur.std()) if len(sur) else None,
                  "cfd_change_mean": boot.mean if boot else None,
                  "cfd_change_std": float(np.std([x["cfd_change"] for x in v])) if v else None,
                  "cfd_change_ci95": [boot.low, boot.high] if boot else None, "cfd_runs": len(v),
                  "cfd_cd_change_mean": float(cd.mean()) if len(cd) else None,
                  "cfd_cd_change_std": float(cd.std()) if len(cd) else None,
                  "violations": int(sum(not x["feasible"] for x in r)),
                  "stopped": int(sum(x["stopped_at"] is not None for x in r)),
                  "cfd_dCd_by_region": _region_means(v),
                  **{f"{e}_ratio_mean": float(np.mean([x[f"{e}_ratio"] for x in r])) if r else None
                     for e in EXTENTS}}
        ref = by_car.get(REFERENCE_PARAM, {})
        cars = [c for c in by_car[p] if c in ref]
        if p != REFERENCE_PARAM and cars:
            diff = [by_car[p][c]["cfd_change"] - ref[c]["cfd_change"] for c in cars]
            se = [None if by_car[p][c].get("cfd_change_se") is None or ref[c].get("cfd_change_se") is None
                  else float(np.hypot(by_car[p][c]["cfd_change_se"], ref[c]["cfd_change_se"])) for c in cars]
            out[p][f"vs_{REFERENCE_PARAM}"] = bootstrap_mean(diff, se).as_dict()
    return out


def _region_means(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Mean over the runs of each region's OpenFOAM Cd change (None when no run has its regions), with ``n``."""
    have = [x for x in rows if x.get(f"cfd_dCd_{BODY_REGIONS[0]}") is not None]
    if not have:
        return None
    return {"n": len(have), **{name: float(np.mean([x[f"cfd_dCd_{name}"] for x in have])) for name in BODY_REGIONS}}


def _pct(mean: float | None, std: float | None, n: int) -> str:
    """A mean change over ``n`` runs in per cent, with its std when there is a spread to show (``n`` ≥ 2)."""
    if mean is None:
        return "—"
    return f"{100 * mean:+.1f} ± {100 * (std or 0.0):.1f} %" if n >= 2 else f"{100 * mean:+.1f} %"


def _pct_ci(mean: float | None, ci: list[float] | None) -> str:
    """A mean change with its 95% interval, in per cent."""
    if mean is None:
        return "—"
    return f"{100 * mean:+.1f} % [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else f"{100 * mean:+.1f} %"


def write_tables(rows: list[dict[str, Any]], table: dict[str, Any], out_dir: Path) -> None:
    """``results.csv`` (per run), ``results.md`` (per parameterization, and each against
    :data:`REFERENCE_PARAM`), ``comparison.png`` and, with CFD results, ``surrogate_vs_cfd.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(out_dir / "results.csv", rows)
    lines = ["| parameterization | runs | drag change (surrogate, mean ± std) | drag change (OpenFOAM, mean "
             "[95% interval]) | Cd change (OpenFOAM) | constraint violations | stopped at the data's edge | "
             "length × width × height (final / start) |",
             "|---" * 8 + "|"]
    for p, t in table.items():
        ext = " × ".join("—" if t[f"{e}_ratio_mean"] is None else f"{t[f'{e}_ratio_mean']:.2f}" for e in EXTENTS)
        lines.append(f"| {p} | {t['runs']} | "
                     f"{_pct(t['surrogate_change_mean'], t['surrogate_change_std'], t['runs'])} | "
                     f"{_pct_ci(t['cfd_change_mean'], t['cfd_change_ci95'])} | "
                     f"{_pct(t['cfd_cd_change_mean'], t['cfd_cd_change_std'], t['cfd_runs'])} | "
                     f"{t['violations']} | {t['stopped']} | {ext} |")
    paired = {p: t[f"vs_{REFERENCE_PARAM}"] for p, t in table.items() if f"vs_{REFERENCE_PARAM}" in t}
    if paired:
        lines += ["", f"OpenFOAM drag change minus {REFERENCE_PARAM}'s on the same cars (mean [95% bootstrap "
                  "interval over the cars, each car's run-to-run noise included]; negative: lower drag than "
                  f"{REFERENCE_PARAM}):", "", "| parameterization | cars | difference | significant |",
                  "|---|---|---|---|"]
        for p, d in paired.items():
            lines.append(f"| {p} | {d['n']} | {_pct_ci(d['mean'], [d['ci95_low'], d['ci95_high']])} | "
                         f"{'yes' if d['significant'] else 'no'} |")
    by_region = {p: t["cfd_dCd_by_region"] for p, t in table.items() if t.get("cfd_dCd_by_region")}
    if by_region:
        lines += ["", "Where OpenFOAM saw the change: Cd of the final shape minus the start shape's, per region of the "
                  "car's surface (mean over the runs; the regions add up to the Cd change):", "",
                  "| parameterization | runs | " + " | ".join(BODY_REGIONS) + " | total |",
                  "|---" * (len(BODY_REGIONS) + 3) + "|"]
        for p, d in by_region.items():
            lines.append(f"| {p} | {d['n']} | " + " | ".join(f"{d[n]:+.4f}" for n in BODY_REGIONS)
                         + f" | {sum(d[n] for n in BODY_REGIONS):+.4f} |")
    write_text_atomic(out_dir / "results.md", "\n".join(lines) + "\n")
    _chart(table, out_dir / "comparison.png")
    if any(r["cfd_change"] is not None for r in rows):
        _scatter(rows, list(table), out_dir / "surrogate_vs_cfd.png")


def _chart(table: dict[str, Any], path: Path) -> None:
    from aero_opt.geometry.render import plt, save_figure

    names = list(table)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for k, (key, label) in enumerate((("surrogate", "surrogate (± std over the runs)"),
                                      ("cfd", "OpenFOAM (95% interval)"))):
        mean = np.array([100 * (table[n][f"{key}_change_mean"] or 0.0) for n in names])
        if key == "cfd":
            if not any(table[n]["cfd_runs"] for n in names):
                continue
            ci = np.array([[100 * c for c in table[n]["cfd_change_ci95"]] if table[n]["cfd_change_ci95"]
                           else [m, m] for n, m in zip(names, mean)])
            err = np.vstack([mean - ci[:, 0], ci[:, 1] - mean])
        else:
            err = np.array([100 * (table[n]["surrogate_change_std"] or 0.0) for n in names])
        ax.bar(x + (k - 0.5) * 0.38, mean, 0.38, yerr=err, capsize=3, label=label)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, names)
    ax.set_ylabel("drag change (%)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def _scatter(rows: list[dict[str, Any]], params: list[str], path: Path) -> None:
    """Each verified run's surrogate drag change (x, %) against its OpenFOAM drag change (y, %), per
    parameterization; on the diagonal the surrogate is right, below zero the gain is real."""
    from aero_opt.geometry.render import plt, save_figure

    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    done = [r for r in rows if r["cfd_change"] is not None]
    for p in params:
        r = [x for x in done if x["param"] == p]
        ax.scatter([100 * x["surrogate_change"] for x in r], [100 * x["cfd_change"] for x in r], label=p, s=22)
    lo = min(min(100 * x["surrogate_change"] for x in done), min(100 * x["cfd_change"] for x in done), 0.0)
    hi = max(max(100 * x["cfd_change"] for x in done), 0.0)
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8, ls="--", label="surrogate = OpenFOAM")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("drag change predicted by the surrogate (%)")
    ax.set_ylabel("drag change by OpenFOAM (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
