"""Honest evaluation of the surrogate on a dataset split, and VTP output for ParaView.

Metrics (``metrics.json``): per-car relative L2 error of the surface pressure ‖p̂ − p‖ / ‖p‖ (mean, median);
Cd from the integrated predicted pressure against Cd from the integrated CFD pressure on the same mesh (MAE, max
error, R², Spearman rank correlation) — both integrated with :mod:`aero_opt.core.physics`, so the comparison isolates
the model — with 95% bootstrap intervals of the total Cd's R² and Spearman over the cars (``cd_total.ci95``: how
far a score could move with another draw of test cars); the same Cd metrics for each car's mirror image in y = 0
(the true drag is the same; for a symmetric car it is the same body tessellated the other way round, so the change
measures how much the model depends on the tessellation); the pressure Cd error split by region of the car (front,
rear/base, top, bottom, side); the spread and sign of the predicted viscous Cd against CFD's (``cd_viscous``); and
the inference time per car. Pictures: a parity plot and the predicted vs CFD pressure on the worst, median and
best car.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh
from scipy.stats import rankdata, spearmanr

from aero_opt.core.atomic import write_json_atomic, write_text_atomic
from aero_opt.core.physics import (
    RHO_AIR,
    U_INF,
    drag_coefficient,
    dynamic_pressure,
    force_parts,
    surface_force,
)
from aero_opt.geometry.regions import BODY_REGIONS, region_of_faces
from surrogate.graph import mirror_y
from surrogate.model import Surrogate
from surrogate.samples import load_split

log = logging.getLogger(__name__)


def write_vtp(path: Path, verts: np.ndarray, faces: np.ndarray, point_data: dict[str, np.ndarray]) -> None:
    """Write a triangle mesh with per-vertex fields as ASCII VTK XML PolyData (.vtp), readable by ParaView."""
    v = np.asarray(verts, np.float64)
    f = np.asarray(faces, np.int64)
    lines = ['<?xml version="1.0"?>', '<VTKFile type="PolyData" version="0.1" byte_order="LittleEndian">',
             "<PolyData>", f'<Piece NumberOfPoints="{len(v)}" NumberOfPolys="{len(f)}">', "<PointData>"]
    for name, arr in point_data.items():
        a = np.asarray(arr, np.float64).reshape(len(v), -1)
        lines.append(f'<DataArray type="Float64" Name="{name}" NumberOfComponents="{a.shape[1]}" format="ascii">')
        lines.append(" ".join(f"{x:.6g}" for x in a.ravel()))
        lines.append("</DataArray>")
    lines += ["</PointData>", "<Points>", '<DataArray type="Float64" NumberOfComponents="3" format="ascii">',
              " ".join(f"{x:.7g}" for x in v.ravel()), "</DataArray>", "</Points>", "<Polys>",
              '<DataArray type="Int64" Name="connectivity" format="ascii">', " ".join(map(str, f.ravel())),
              "</DataArray>", '<DataArray type="Int64" Name="offsets" format="ascii">',
              " ".join(map(str, 3 * np.arange(1, len(f) + 1))), "</DataArray>", "</Polys>", "</Piece>",
              "</PolyData>", "</VTKFile>"]
    write_text_atomic(path, "\n".join(lines) + "\n")


def read_vtp(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Read a triangle mesh written by :func:`write_vtp`.

    Returns:
        vertices (V, 3), faces (F, 3) int64 and the per-vertex fields by name ((V,) or (V, C) float64).

    Raises:
        AeroOptError: the file is missing or not such a file (the message names it).
    """
    import xml.etree.ElementTree as ET

    from aero_opt.core.errors import AeroOptError

    try:
        piece = ET.parse(path).getroot().find("PolyData/Piece")
        if piece is None:
            raise ValueError("no PolyData piece")
        verts = np.array(piece.find("Points/DataArray").text.split(), np.float64).reshape(-1, 3)
        polys = {a.get("Name"): a for a in piece.find("Polys")}
        faces = np.array(polys["connectivity"].text.split(), np.int64).reshape(-1, 3)
        fields = {}
        for a in piece.find("PointData"):
            arr = np.array(a.text.split(), np.float64).reshape(len(verts), -1)
            fields[a.get("Name")] = arr[:, 0] if arr.shape[1] == 1 else arr
    except (OSError, ET.ParseError, ValueError, AttributeError, KeyError) as exc:
        raise AeroOptError(f"{path}: not a readable VTP mesh ({type(exc).__name__}: {exc})") from None
    return verts, faces, fields


def r2_score(y: np.ndarray, yhat: np.ndarray) -> float:
    """Coefficient of determination of predictions ``yhat`` for targets ``y``."""
    ss_res = float(np.sum((y - yhat) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def score_cd(y: np.ndarray, yh: np.ndarray) -> dict[str, float | None]:
    """MAE, max error, R² and Spearman of predicted drag coefficients ``yh`` (N,) against reference ones ``y`` (N,)
    (dimensionless); R² needs two cars, Spearman three (else None)."""
    y, yh = np.asarray(y, dtype=float), np.asarray(yh, dtype=float)
    return {"mae": float(np.abs(y - yh).mean()), "max_error": float(np.abs(y - yh).max()),
            "r2": r2_score(y, yh) if len(y) > 1 else None,
            "spearman": float(spearmanr(y, yh).statistic) if len(y) > 2 else None}


def _resampled(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) indices of ``n`` cars drawn with replacement (fixed seed)."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _r2_rows(yb: np.ndarray, hb: np.ndarray) -> np.ndarray:
    """R² of each row of ``hb`` against the same row of ``yb`` (both (R, N)); NaN where a row of ``yb`` is constant."""
    tot = ((yb - yb.mean(1, keepdims=True)) ** 2).sum(1)
    return np.divide(-((yb - hb) ** 2).sum(1), tot, out=np.full(len(yb), np.nan), where=tot > 0) + 1.0


def _interval(v: np.ndarray) -> list[float]:
    return [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))]


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row of ``a`` with the same row of ``b`` (both (R, N)); NaN where a row is constant."""
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.divide((a * b).sum(1), den, out=np.full(len(a), np.nan), where=den > 0)


def bootstrap_ci(y: np.ndarray, yh: np.ndarray, resamples: int = 2000, seed: int = 0) -> dict[str, list[float]]:
    """95% bootstrap intervals (percentile; cars resampled with replacement, fixed seed) of the R² and the Spearman
    correlation of predicted drag coefficients ``yh`` (N,) against reference ones ``y`` (N,), N >= 3: how far the
    scores of a test set of N cars could move with another draw of N cars."""
    y, yh = np.asarray(y, dtype=float), np.asarray(yh, dtype=float)
    idx = _resampled(len(y), resamples, seed)
    yb, hb = y[idx], yh[idx]
    rho = _pearson_rows(rankdata(yb, axis=1), rankdata(hb, axis=1))  # Spearman: Pearson of the ranks (ties averaged)
    return {"r2": _interval(_r2_rows(yb, hb)), "spearman": _interval(rho)}


def pearson_ci(a: np.ndarray, b: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, list[float]]:
    """Pearson correlation of two per-car quantities ``a``, ``b`` (N,), N >= 3, and its 95% bootstrap interval
    (percentile; cars resampled with replacement, fixed seed; resamples where one side is constant are skipped).

    Returns:
        (r, [low, high]).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    idx = _resampled(len(a), resamples, seed)
    return float(_pearson_rows(a[None], b[None])[0]), _interval(_pearson_rows(a[idx], b[idx]))


def paired_r2_difference_ci(y: np.ndarray, first: np.ndarray, second: np.ndarray, resamples: int = 2000,
                            seed: int = 0) -> list[float]:
    """95% bootstrap interval of R²(second) − R²(first): two models' predicted Cd (N,) against the same reference
    Cd ``y`` (N,), scored on the same resampled cars — whether one model is better than the other beyond the
    luck of the test draw (an interval that excludes 0)."""
    y, first, second = (np.asarray(a, dtype=float) for a in (y, first, second))
    idx = _resampled(len(y), resamples, seed)
    return _interval(_r2_rows(y[idx], second[idx]) - _r2_rows(y[idx], first[idx]))


def cd_metrics(rows: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    """``score_cd`` of ``{key}_pred`` against ``{key}_cfd`` over ``rows`` (one dict per car; ``key``:
    ``cd_pressure`` or ``cd_total``)."""
    return score_cd(np.array([r[f"{key}_cfd"] for r in rows]), np.array([r[f"{key}_pred"] for r in rows]))


def _group_metrics(group: list[dict[str, Any]]) -> dict[str, Any]:
    """Cars, mean pressure error and total-Cd metrics (with the Cd error std) over one group of per-car rows."""
    err = np.array([r["cd_total_pred"] - r["cd_total_cfd"] for r in group])
    return {"cars": len(group), "pressure_rel_l2_mean": float(np.mean([r["rel_l2_pressure"] for r in group])),
            "cd_total": {**cd_metrics(group, "cd_total"), "error_std": float(err.std())}}


def _by_group(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """Pressure error and Cd metrics over the cars grouped by ``row[key]`` (e.g. ``label_runs``: the number of CFD
    runs averaged into the labels, keys "1", "3", ...; ``style``: the body style), with each group's Cd error std."""
    return {str(k): _group_metrics([r for r in rows if r[key] == k]) for k in sorted({r[key] for r in rows})}


def _by_label_runs(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``_by_group`` by ``label_runs``, plus ``averaged``: all cars whose labels average two or more runs together
    (when there are both such cars and one-run cars)."""
    out = _by_group(rows, "label_runs")
    averaged = [r for r in rows if r["label_runs"] > 1]
    if averaged and len(averaged) < len(rows):
        out["averaged"] = _group_metrics(averaged)
    return out


def _mirror_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Cd metrics of the cars' mirror images against CFD, of the mean of the car's and its mirror image's
    predicted Cd (``cd_total_symmetrized``: a two-tessellation average), and the change of the predicted Cd."""
    change = np.array([r["cd_total_pred_mirror"] - r["cd_total_pred"] for r in rows])
    return {"cd_total": cd_metrics([{**r, "cd_total_pred": r["cd_total_pred_mirror"]} for r in rows], "cd_total"),
            "cd_total_symmetrized": cd_metrics(
                [{**r, "cd_total_pred": 0.5 * (r["cd_total_pred"] + r["cd_total_pred_mirror"])} for r in rows],
                "cd_total"),
            "cd_total_change": {"mae": float(np.abs(change).mean()), "max": float(np.abs(change).max()),
                                "mean": float(change.mean()), "std": float(change.std()),
                                "cars_lower": int((change < 0).sum())}}


def _viscous_metrics(rows: list[dict[str, Any]]) -> dict[str, float | int | None]:
    """How the viscous (wall-shear) part of the predicted Cd behaves against CFD's.

    A physical wall-shear head gives a small, positive, nearly constant viscous Cd; a head that absorbs the pressure
    head's error spreads wide, goes negative and anti-correlates with the pressure Cd error.
    """
    vp = np.array([r["cd_viscous_pred"] for r in rows])
    vc = np.array([r["cd_viscous_cfd"] for r in rows])
    pe = np.array([r["cd_pressure_pred"] - r["cd_pressure_cfd"] for r in rows])
    corr = float(np.corrcoef(vp - vc, pe)[0, 1]) if len(rows) > 2 and np.std(vp - vc) > 0 and np.std(pe) > 0 \
        else None
    return {"pred_mean": float(vp.mean()), "pred_std": float(vp.std()), "cfd_mean": float(vc.mean()),
            "cfd_std": float(vc.std()), "pred_negative": int((vp < 0).sum()),
            "corr_error_with_pressure_error": corr}


def cd_error_by_region(verts: torch.Tensor, faces: torch.Tensor, p_error: torch.Tensor, a_ref: float, rho: float,
                       speed: float) -> dict[str, float]:
    """The pressure Cd error of a prediction split over the car's regions
    (:data:`aero_opt.geometry.regions.BODY_REGIONS`, the regions OpenFOAM's drag changes are reported in): where
    on the car it comes from.

    Args:
        verts: (V, 3) m; faces: (F, 3) outward; p_error: (V,) predicted minus CFD pressure (Pa); a_ref: frontal
            area (m²); rho: density (kg/m³); speed: free-stream speed (m/s).

    Returns:
        Region name -> its part of the pressure Cd error (the parts sum to the whole; :func:`surface_force`).
    """
    p_face = p_error[faces].mean(dim=1)
    regions = torch.as_tensor(region_of_faces(verts.detach().cpu().numpy(), faces.cpu().numpy()))
    return {name: float(drag_coefficient(float(surface_force(verts, faces, p_face * (regions == k))[0]), a_ref, rho,
                                         speed)) for k, name in enumerate(BODY_REGIONS)}


def _region_metrics(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and std over the cars of each region's part of the pressure Cd error, over the region names the rows
    carry."""
    names = list(rows[0]["cd_pressure_error_by_region"]) if rows else list(BODY_REGIONS)
    parts = {name: [r["cd_pressure_error_by_region"][name] for r in rows] for name in names}
    return {name: {"mean": float(np.mean(x)), "std": float(np.std(x))} for name, x in parts.items()}


# The sections of ``summarize`` beyond pressure and Cd: name -> (the per-car row key it needs, how it is computed).
EXTRA_SECTIONS: dict[str, tuple[str, Callable[[list[dict[str, Any]]], dict[str, Any]]]] = {
    "cd_viscous": ("cd_viscous_pred", _viscous_metrics),
    "cd_pressure_error_by_region": ("cd_pressure_error_by_region", _region_metrics),
    "by_label_runs": ("label_runs", _by_label_runs),
    "by_style": ("style", partial(_by_group, key="style")),
    "mirror": ("cd_total_pred_mirror", _mirror_metrics),
}


def sections_in(rows: list[dict[str, Any]]) -> list[str]:
    """The names of ``EXTRA_SECTIONS`` whose row key every row carries (older metrics files lack some)."""
    return [name for name, (key, _) in EXTRA_SECTIONS.items() if all(key in r for r in rows)]


def summarize(rows: list[dict[str, Any]], sections: list[str] | None = None) -> dict[str, Any]:
    """The metrics of ``metrics.json`` that follow from the per-car rows alone (pressure error, Cd metrics, viscous,
    region, label-run, style and mirror summaries; see the module docstring).

    Args:
        rows: one dict per car as in ``metrics.json``'s ``per_car`` (at least one car).
        sections: which of ``EXTRA_SECTIONS`` to add (default: all; ``sections_in(rows)`` for rows of an older file).

    Returns:
        Dict with keys ``pressure_rel_l2``, ``cd_pressure``, ``cd_total`` (with ``ci95`` from three cars on: see
        :func:`bootstrap_ci`) and the chosen sections (by default
        ``cd_viscous``, ``cd_pressure_error_by_region``, ``by_label_runs``, ``by_style`` and ``mirror``).

    Raises:
        KeyError: a row lacks a field a chosen section needs.
    """
    rel = np.array([r["rel_l2_pressure"] for r in rows])
    out = {"pressure_rel_l2": {"mean": float(rel.mean()), "median": float(np.median(rel)), "max": float(rel.max())},
           "cd_pressure": cd_metrics(rows, "cd_pressure"),
           "cd_total": cd_metrics(rows, "cd_total")}
    if len(rows) >= 3:
        out["cd_total"]["ci95"] = bootstrap_ci(np.array([r["cd_total_cfd"] for r in rows]),
                                               np.array([r["cd_total_pred"] for r in rows]))
    for name in EXTRA_SECTIONS if sections is None else sections:
        out[name] = EXTRA_SECTIONS[name][1](rows)
    return out


def evaluate(model_dir: Path, data_dir: Path, split: str, out_dir: Path,
             device: torch.device | str = "cpu") -> dict[str, Any]:
    """Evaluate a trained surrogate (run on ``device``) on one split; writes metrics.json, parity.png, pictures and
    VTP files.

    Args:
        model_dir: folder with ``model.pt``; data_dir: dataset folder (``.npz`` cars, ``split.json``);
        split: ``train``, ``val``, ``test`` or ``all``; out_dir: where the outputs go (created).

    Returns:
        The metrics written to ``metrics.json`` (see the module docstring), with a row per car in ``per_car``.
    """
    sur = Surrogate.load(Path(model_dir), device)
    cars = load_split(data_dir, split)
    out_dir = Path(out_dir)
    (out_dir / "vtp").mkdir(parents=True, exist_ok=True)
    rows = []
    for s in cars:
        q = dynamic_pressure(s.car.rho, s.car.speed)
        t0 = time.perf_counter()
        with torch.no_grad():
            coeff, emb = sur.coefficients_and_embedding(s.verts, s.faces)
            dt = time.perf_counter() - t0
            vm, fm = mirror_y(s.verts.double(), s.faces)
            mirrored = sur.coefficients(vm.float(), fm).double()
        p_hat = coeff[:, 0].double() * q
        p_cfd = torch.as_tensor(s.car.pressure, dtype=torch.float64)
        v, f = s.verts.double(), s.faces
        a_ref, rho, u = s.car.a_ref, s.car.rho, s.car.speed
        tau_hat = coeff[:, 1:4].double() * q if coeff.shape[1] == 4 else None
        cd_hat, cdv_hat = (drag_coefficient(float(fc[0]), a_ref, rho, u) for fc in force_parts(v, f, p_hat, tau_hat))
        tau_cfd = torch.as_tensor(s.car.shear, dtype=torch.float64)
        cd_cfd, cdv_cfd = (drag_coefficient(float(fc[0]), a_ref, rho, u) for fc in force_parts(v, f, p_cfd, tau_cfd))
        rel = float((p_hat - p_cfd).norm() / p_cfd.norm())
        tau_m = mirrored[:, 1:4] * q if mirrored.shape[1] == 4 else None
        cd_mirror = sum(drag_coefficient(float(fc[0]), a_ref, rho, u)  # same drag and frontal area as the car
                        for fc in force_parts(vm, fm, mirrored[:, 0] * q, tau_m))
        rows.append({"car": s.name, "rel_l2_pressure": rel, "cd_pressure_pred": cd_hat, "cd_pressure_cfd": cd_cfd,
                     "cd_viscous_pred": cdv_hat, "cd_viscous_cfd": cdv_cfd,
                     "cd_total_pred": cd_hat + cdv_hat, "cd_total_cfd": cd_cfd + cdv_cfd,
                     "cd_total_pred_mirror": cd_mirror,
                     "cd_pressure_error_by_region": cd_error_by_region(v, f, p_hat - p_cfd, a_ref, rho, u),
                     "cd_total_cfd_solver": s.car.cd, "seconds": dt, "domain_score": sur.domain_score(emb),
                     "label_runs": len(s.car.case.get("label_runs") or []) or 1,
                     "style": s.car.params.get("style", "unknown")})
        write_vtp(out_dir / "vtp" / f"{s.name}.vtp", s.car.verts, s.car.faces,
                  {"p_pred": p_hat.numpy(), "p_cfd": p_cfd.numpy(), "p_error": (p_hat - p_cfd).numpy()})
    metrics = {
        "model": str(model_dir), "data": str(data_dir), "split": split, "cars": len(rows),
        **summarize(rows),
        "domain": None if sur.domain is None else {
            "threshold": sur.domain.threshold, "cars_outside": sum(r["domain_score"] > sur.domain.threshold
                                                                   for r in rows),
            "max_score": max(r["domain_score"] for r in rows)},
        "seconds_per_car": {"mean": float(np.mean([r["seconds"] for r in rows])),
                            "median": float(np.median([r["seconds"] for r in rows]))},
        "note": "Cd compares the integrals of predicted and CFD surface fields on the same mesh with the project's "
                "force function (cd_pressure: pressure only; cd_total: pressure + wall shear); by_label_runs: the "
                "same metrics over the cars whose labels are one CFD run and over those averaged over k runs "
                "(scripts/pipeline/average_labels.py; averaged: all cars with k >= 2), "
                "by_style: per body style (cd_total.error_std: the std of predicted - "
                "CFD Cd); mirror: the Cd metrics of the surrogate on each car's mirror image in "
                "y = 0 (whose true drag is the car's; for the symmetric dataset cars the same body tessellated the "
                "other way round), of the mean of the car's and the mirror image's Cd (cd_total_symmetrized), and "
                "how much the predicted Cd changes (mean, std: signed mirror - car); "
                "cd_viscous: the spread and sign of the wall-shear part of Cd against CFD's and the correlation "
                "of its error with the pressure Cd error (near -1: the shear head cancels pressure errors instead of "
                "modelling shear); cd_pressure_error_by_region: the pressure Cd error split by where on the car it "
                "arises, over the regions OpenFOAM's drag changes are reported in (aero_opt/geometry/regions.py: "
                "nose, the first 15% of the length; base, rear-facing faces of the last 30%; rear_upper, other "
                "upward faces of the last 40%; underbody, downward faces; roof_sides, the rest; mean and std over "
                "the cars); domain: how many cars score above the model's domain threshold "
                "(per_car domain_score: ~1 like a training car; surrogate/domain.py)",
        "per_car": rows,
    }
    write_json_atomic(out_dir / "metrics.json", metrics)
    _pictures(cars, rows, sur, out_dir)
    return metrics


def _pictures(cars: list, rows: list[dict[str, Any]], sur: Surrogate, out_dir: Path) -> None:
    from aero_opt.geometry.render import add_colorbar, draw_mesh, plt, save_figure

    y = [r["cd_pressure_cfd"] for r in rows]
    yh = [r["cd_pressure_pred"] for r in rows]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(y, yh, s=14)
    lo, hi = min(y + yh), max(y + yh)
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("Cd (pressure) from CFD")
    ax.set_ylabel("Cd (pressure) from surrogate")
    ax.set_aspect("equal")
    fig.tight_layout()
    save_figure(fig, out_dir / "parity.png", dpi=110)
    order = np.argsort([r["rel_l2_pressure"] for r in rows])
    for tag, i in (("best", order[0]), ("median", order[len(order) // 2]), ("worst", order[-1])):
        s = cars[i]
        q = dynamic_pressure(s.car.rho, s.car.speed)
        with torch.no_grad():
            p_hat = sur.coefficients(s.verts, s.faces)[:, 0].numpy() * q
        clim = tuple(np.percentile(s.car.pressure, [2, 98]))
        fig, axes = plt.subplots(1, 2, figsize=(12, 3.2), layout="constrained")
        for ax, vals, title in ((axes[0], s.car.pressure, "CFD"), (axes[1], p_hat, "surrogate")):
            coll = draw_mesh(ax, s.car.verts, s.car.faces, "three_quarter", values=vals, clim=clim)
            ax.set_title(f"{s.name} {title} p (Pa), rel. L2 {rows[i]['rel_l2_pressure']:.3f}", fontsize=9)
        add_colorbar(fig, axes, coll, "surface pressure p (Pa)")
        save_figure(fig, out_dir / f"pressure_{tag}.png", dpi=90)


def predict_mesh(mesh_path: Path, model_dir: Path, out_dir: Path, rho: float = RHO_AIR,
                 speed: float = U_INF, regrid: bool = True, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Predicted pressure field and Cd of a watertight car mesh (car frame, metres); the model runs on ``device``.

    With ``regrid`` (default) the mesh is first turned into the kind of mesh the surrogate was trained on
    (:func:`aero_opt.geometry.dataset.grid_mesh`: its exact SDF on the dataset grid, marching cubes), and the fields are
    predicted on that mesh; the model depends on the tessellation (``mirror`` in ``eval-surrogate``'s metrics), so
    predicting on another tessellation adds an error of a few hundredths of Cd. ``regrid=False`` predicts on the
    mesh as given.

    Writes ``out_dir/prediction.vtp`` (the mesh predicted on, with p and wall shear) and ``out_dir/summary.json``
    (Cd, its pressure and
    viscous parts, drag in N, A_ref, time, and the domain score of :mod:`surrogate.domain` with the model's
    threshold: a car above it is unlike every training car, its prediction an extrapolation, and a warning is
    logged). Returns that summary.
    """
    from aero_opt.core.physics import frontal_area
    from aero_opt.geometry.mesh_import import check_body, load_mesh

    mesh = load_mesh(mesh_path)
    check_body(mesh, str(mesh_path))
    sur = Surrogate.load(Path(model_dir), device)
    if regrid:
        from aero_opt.geometry.dataset import grid_mesh

        mesh = trimesh.Trimesh(*grid_mesh(mesh.vertices, mesh.faces), process=False)
    v = torch.as_tensor(mesh.vertices, dtype=torch.float32)
    f = torch.as_tensor(mesh.faces)
    q = dynamic_pressure(rho, speed)
    t0 = time.perf_counter()
    with torch.no_grad():
        c, emb = sur.coefficients_and_embedding(v, f)
    c = c.double()
    dt = time.perf_counter() - t0
    score = sur.domain_score(emb)
    inside = None if score is None else score <= sur.domain.threshold
    if inside is False:
        log.warning("%s: outside the surrogate's training data (domain score %.2f > %.2f): its pressure and Cd are "
                    "an extrapolation; check them with `aero-opt cfd run`", mesh_path, score, sur.domain.threshold)
    a_ref = frontal_area(mesh.vertices, mesh.faces)
    vd = v.double()
    p = c[:, 0] * q
    tau = c[:, 1:4] * q if c.shape[1] == 4 else torch.zeros(len(v), 3, dtype=torch.float64)
    fp, fv = force_parts(vd, f, p, tau)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_vtp(out_dir / "prediction.vtp", mesh.vertices, mesh.faces, {"p": p.numpy(), "wallShearStress": tau.numpy()})
    summary = {"mesh": str(mesh_path), "model": str(model_dir), "speed": speed, "rho": rho, "A_ref": a_ref,
               "Cd": drag_coefficient(float(fp[0] + fv[0]), a_ref, rho, speed),
               "Cd_pressure": drag_coefficient(float(fp[0]), a_ref, rho, speed),
               "Cd_viscous": drag_coefficient(float(fv[0]), a_ref, rho, speed),
               "drag_N": float(fp[0] + fv[0]), "vertices": int(len(v)), "regridded": regrid, "seconds": dt,
               "domain_score": score, "domain_threshold": None if score is None else sur.domain.threshold,
               "in_training_domain": inside}
    write_json_atomic(out_dir / "summary.json", summary)
    return summary
