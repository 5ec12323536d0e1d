"""Drag optimization with any parameterization: ``aero-opt optimize`` and the pieces ``aero-opt compare`` reuses.

Objective per iteration (minimized with Adam):

    J = D(shape) / D(initial) + room_weight · room_penalty (m²) + regularization

where D is the surrogate's drag force (N; pressure + viscous, integrated over the mesh by
:mod:`aero_opt.core.physics`), the room penalty keeps the driver and engine boxes inside the car
(:mod:`constraints.regions`; for ``meshsdf`` from the decoder's SDF, otherwise from the mesh), and the
regularization is the parameterization's own (kNN latent prior for ``meshsdf``, coefficient L2 for ``freeform``).
The drag force, not Cd, is minimized (the paper's objective); Cd is reported with the frontal area of each shape.

Every parameterization starts from the same mesh: the MeshSDF reconstruction of the car at the optimization grid
(the paper's fair comparison). The best feasible shape (room penalty ≤ ``feasible_tol``) is kept.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh

from aero_opt.app.report import write_run_report
from aero_opt.cfd.case import PRESETS, is_symmetric, mirror_deviation
from aero_opt.cfd.executor import ClusterConfig
from aero_opt.cfd.verify import check_shapes, check_verification, drag_change
from aero_opt.core.atomic import write_csv_atomic, write_json_atomic
from aero_opt.core.device import on_device
from aero_opt.core.errors import AeroOptError
from aero_opt.core.frame import CAR_BOUNDS, CAR_OFFSET, CAR_SCALE
from aero_opt.core.physics import Flow, frontal_area, surface_force
from aero_opt.core.progress import progress_bar
from aero_opt.core.settings import at_least, positive
from aero_opt.geometry.dataset import DATASET_RESOLUTION, load_car, split_cd
from aero_opt.geometry.isosurface import extract
from aero_opt.geometry.mesh_import import export_mesh, load_mesh
from aero_opt.meshsdf.config import FitConfig, TrainSDFConfig
from aero_opt.meshsdf.decoder import MirrorSymmetric, load_model
from constraints.packaging import PackageSpec, place_package, tyre_size
from constraints.regions import RoomConstraint
from parameterizations import Parameterization, parameterization_class
from surrogate.model import Surrogate
from surrogate.spline_conv import resolve_bf16

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LearningRates:
    """Adam learning rate per parameterization (units of its parameters per step)."""

    meshsdf: float = positive(0.005)
    """Latent code (the shipped decoder's training codes: norm ~0.2, per-dimension spread ~0.04)."""
    scaling: float = positive(0.003)
    """Scale factors."""
    freeform: float = positive(0.003)
    """Sine coefficients (m)."""
    polycube: float = positive(0.003)
    """Pre-tanh lattice displacements (cells)."""
    vertex: float = positive(0.0005)
    """Vertex offsets (m)."""


@dataclass(frozen=True)
class OptimizeConfig:
    """Settings of ``aero-opt optimize`` / ``compare`` (YAML section ``optimize``)."""

    iters: int = at_least(0, 60)
    """Adam steps."""
    lr: LearningRates = field(default_factory=LearningRates)
    room_weight: float = at_least(0.0, 1000.0)
    """Weight of the room penalty (per m²)."""
    feasible_tol: float = at_least(0.0, 1e-5)
    """A shape is feasible when its room penalty (m²) is at most this."""
    knn_k: int = at_least(1, 10)
    """Neighbours of the kNN latent prior."""
    knn_alpha: float = at_least(0.0, 0.2)
    """Weight of the kNN latent prior."""
    resolution: int = at_least(16, DATASET_RESOLUTION)
    """Grid points per axis over CAR_BOUNDS for MeshSDF (the dataset's grid)."""
    fast: bool = True
    """MeshSDF fast (narrow-band) extraction."""
    freeform_terms: int = at_least(1, 3)
    """Sine terms per axis of FreeForm."""
    freeform_l2: float = at_least(0.0, 10.0)
    """FreeForm coefficient L2 weight (per m²)."""
    polycube_lattice: int = at_least(2, 8)
    """PolyCube control points per axis."""
    vertex_smooth: float = at_least(0.0, 0.0)
    """Per-vertex Laplacian weight (0: none, as in the paper)."""
    verify_preset: str = field(default="verify", metadata={"choices": tuple(PRESETS)})
    """OpenFOAM preset of ``--verify`` (``verify``: chosen by the CFD fidelity study, ``docs/cfd.md``)."""
    verify_runs: int = at_least(1, 3)
    """Runs per verified shape on distinct near-body grids (``--verify-runs``): its Cd and drag are their mean,
    stored with their std and 95% interval (:func:`aero_opt.cfd.verify.check_shapes`)."""
    bf16: bool | None = None
    """Run the surrogate's dense matmuls in bfloat16; ``None``: only where the CPU runs bfloat16 natively
    (:func:`surrogate.spline_conv.resolve_bf16`; an AVX2-only CPU runs it ~18x slower than float32)."""
    room: str = field(default="relative", metadata={"choices": ("relative", "package")})
    """Room constraint: ``relative``, cabin and engine boxes as fractions of the initial car
    (:mod:`constraints.regions`), or ``package``, two front occupants, an engine bay and four wheels in metres,
    placed where the initial car has room for them (:mod:`constraints.packaging`)."""
    package: PackageSpec = field(default_factory=PackageSpec)
    """Sizes of the ``package`` room (YAML ``optimize.package``)."""
    symmetric: bool = True
    """MeshSDF shapes exactly mirror-symmetric about y = 0 (:class:`aero_opt.meshsdf.decoder.MirrorSymmetric`): the
    start shape every parameterization shares, every MeshSDF shape and every fitted code; OpenFOAM then checks them
    as half models, as it made the dataset's labels. ``false`` for a car that is not meant to be symmetric."""
    stay_in_data: bool = True
    """Stop when the predicted Cd falls below the lowest Cd of the surrogate's training cars: the surrogate has
    never seen such a car, so its drag there is an extrapolation (the shapes that fool it live there)."""


@dataclass
class StartShape:
    """A car ready to optimize: its latent code and the MeshSDF reconstruction every parameterization starts from."""

    name: str
    latent: torch.Tensor
    """(D,) latent code."""
    verts: np.ndarray
    """(V, 3) metres."""
    faces: np.ndarray
    """(F, 3) outward."""
    source: str
    """Where the code came from: ``training code`` or ``fitted``."""


@dataclass
class Models:
    """The shipped (or user's) trained models."""

    surrogate: Surrogate
    decoder: torch.nn.Module
    latents: torch.Tensor
    """(K, D) training codes."""
    names: list[str]
    """Training shape names, aligned with ``latents``."""
    train_config: TrainSDFConfig

    @classmethod
    def load(cls, surrogate_dir: Path, decoder_dir: Path, device: torch.device | str = "cpu",
             symmetric: bool = True) -> Models:
        """Load a surrogate run folder and a decoder run folder; both networks run on ``device`` (meshes, codes
        and the optimizer stay on the CPU). ``symmetric``: the decoder wrapped in
        :class:`aero_opt.meshsdf.decoder.MirrorSymmetric` (``OptimizeConfig.symmetric``)."""
        device = torch.device(device)
        sur = Surrogate.load(Path(surrogate_dir), device)
        weights, latents, ck = load_model(Path(decoder_dir))
        if not ck.get("car_frame", False):
            raise AeroOptError(f"{decoder_dir}: the decoder was not trained in the car frame; it cannot shape cars")
        dec = on_device(weights, device)
        tcfg = replace(TrainSDFConfig(), **ck["train_config"])
        return cls(sur, MirrorSymmetric(dec) if symmetric else dec, latents, list(ck["names"]), tcfg)


def _to_metres(v: torch.Tensor) -> torch.Tensor:
    return v * CAR_SCALE + torch.as_tensor(CAR_OFFSET, dtype=v.dtype)


def start_shape(car: str, models: Models, resolution: int, data_dir: Path, fit: FitConfig = FitConfig()
                ) -> StartShape:
    """The latent code and reconstruction of a car given as a dataset ID (``12`` or ``car_0012``) or a mesh path.

    A training car uses its learned code; any other car (held-out dataset car, user's mesh) gets a code fitted to
    its surface with the decoder frozen (``fit``: :func:`aero_opt.meshsdf.fit.latent_for_mesh`'s settings).
    """
    from aero_opt.meshsdf.fit import latent_for_mesh

    path = Path(car)
    if path.suffix:
        if not path.is_file():
            raise AeroOptError(f"{car}: mesh file not found")
        mesh = load_mesh(path)
        if not mesh.is_watertight:
            raise AeroOptError(f"{car}: mesh is not watertight; run `aero-opt import` on it first")
        name, source = path.stem, "fitted"
        if isinstance(models.decoder, MirrorSymmetric) and not is_symmetric(mesh, deviation=(
                deviation := mirror_deviation(mesh))):
            log.warning("%s: not mirror-symmetric about y = 0 (a mirrored vertex lies %.1f cm from the surface); its "
                        "MeshSDF shapes will be symmetric (optimize.symmetric: false keeps both sides)", car,
                        100 * deviation)
        z, _ = latent_for_mesh(mesh, models.decoder, models.latents, models.train_config, name=name, settings=fit)
    else:
        name = car if car.startswith("car_") else f"car_{int(car):04d}" if car.isdigit() else car
        if name in models.names:
            z, source = models.latents[models.names.index(name)].clone(), "training code"
        else:
            npz = Path(data_dir) / f"{name}.npz"
            if not npz.is_file():
                raise AeroOptError(f"--car {car}: neither a mesh file nor a car of {data_dir}")
            c = load_car(npz)
            mesh = trimesh.Trimesh(c.verts, c.faces, process=False)
            z, _ = latent_for_mesh(mesh, models.decoder, models.latents, models.train_config, name=name, settings=fit)
            source = "fitted"
    with torch.no_grad():
        v, f, _ = extract(models.decoder, z, resolution, CAR_BOUNDS)
    return StartShape(name, z.detach(), _to_metres(v.detach()).numpy().astype(np.float64), f.numpy(), source)


@dataclass
class Evaluation:
    """One evaluation of the objective."""

    objective: torch.Tensor
    drag: float
    """Surrogate drag force (N)."""
    room: float
    """Room penalty (m²)."""
    reg: float
    verts: torch.Tensor
    faces: torch.Tensor
    coeffs: torch.Tensor
    """(V, 4) predicted Cp and Cτ (detached)."""
    domain_score: float | None = None
    """The surrogate's domain score of the shape (:mod:`surrogate.domain`; None without a recorded domain)."""


def evaluate_objective(param: Parameterization, models: Models, room: RoomConstraint, cfg: OptimizeConfig,
                       drag0: float | None, flow: Flow) -> Evaluation:
    """The optimizer's objective at the parameterization's current shape: surrogate drag (N) divided by ``drag0``
    (the start's drag; None: this shape's own, so the objective is 1 plus the penalties), plus
    ``cfg.room_weight`` × the room penalty, plus the parameterization's regularization.

    Returns:
        The :class:`Evaluation`: the objective (a scalar tensor carrying gradients to the parameters), drag (N),
        penalty and regularization as floats, the mesh (V, 3) m and faces (F, 3), the predicted coefficients
        (V, 1 or 4: Cp and the shear coefficients) and the surrogate's domain score.

    Raises:
        AeroOptError: the objective is NaN or infinite.
    """
    verts, faces = param.mesh()
    bf16 = resolve_bf16(cfg.bf16, models.surrogate.device)
    coeffs, emb = models.surrogate.coefficients_and_embedding(verts, faces, bf16=bf16)
    q = flow.q
    shear = coeffs[:, 1:4] * q if coeffs.shape[1] == 4 else None
    drag = surface_force(verts, faces, coeffs[:, 0] * q, shear)[0]
    pen = param.room_penalty(room, verts, faces)
    reg = param.regularization()
    scale = drag0 if drag0 is not None else float(drag.detach())
    objective = drag / scale + cfg.room_weight * pen + reg
    if not torch.isfinite(objective):
        raise AeroOptError("the objective became NaN or infinite (lower the learning rate)")
    return Evaluation(objective, float(drag.detach()), float(pen.detach()), float(reg.detach()), verts.detach(),
                      faces.detach(), coeffs.detach(), models.surrogate.domain_score(emb))


def _save_mesh(ev: Evaluation, stem: Path, flow: Flow) -> None:
    from surrogate.evaluate import write_vtp

    v, f = ev.verts.double().numpy(), ev.faces.numpy()
    export_mesh(trimesh.Trimesh(v, f, process=False), stem.with_suffix(".stl"))
    q = flow.q
    data = {"p": ev.coeffs[:, 0].double().numpy() * q}
    if ev.coeffs.shape[1] == 4:
        data["wallShearStress"] = ev.coeffs[:, 1:4].double().numpy() * q
    write_vtp(stem.with_suffix(".vtp"), v, f, data)


def trainable(param: Parameterization) -> list[torch.Tensor]:
    """The parameters the optimizer moves: those that require gradients (MeshSDF's latent code, not its frozen
    decoder's weights)."""
    return [q for q in param.parameters() if q.requires_grad]


class TrustRegion:
    """A ball the parameters stay in: after every Adam step their deviation from where the run started is scaled
    back to at most ``radius``, measured as the root mean square over every parameter entry in the
    parameterization's own units (latent units for ``meshsdf``, scale factors, metres of sine coefficients, lattice
    cells, metres of vertex offset). The campaign (:mod:`aero_opt.app.campaign`) sets the radius from what
    OpenFOAM verified."""

    def __init__(self, radius: float) -> None:
        """Args: radius (> 0) in the parameterization's units (RMS over the entries).

        Raises:
            AeroOptError: a radius that is not a positive finite number.
        """
        if not (radius > 0 and math.isfinite(radius)):
            raise AeroOptError(f"trust region radius {radius}: must be a positive number")
        self.radius = float(radius)
        self.centre: list[torch.Tensor] = []
        self.clipped = 0
        """Steps whose result was pulled back onto the ball."""

    def attach(self, params: list[torch.Tensor]) -> None:
        """Record the centre: the parameters' values now."""
        self.centre = [q.detach().clone() for q in params]

    def distance(self, params: list[torch.Tensor]) -> float:
        """RMS deviation of ``params`` from the centre (the parameterization's units)."""
        sq = sum(float((q.detach() - c).square().sum()) for q, c in zip(params, self.centre))
        return math.sqrt(sq / max(1, sum(c.numel() for c in self.centre)))

    def project(self, params: list[torch.Tensor]) -> None:
        """Scale the deviation of ``params`` (in place) back onto the ball when it lies outside."""
        d = self.distance(params)
        if d <= self.radius:
            return
        s = self.radius / d
        with torch.no_grad():
            for q, c in zip(params, self.centre):
                q.copy_(c + s * (q - c))
        self.clipped += 1


def optimize(param: Parameterization, models: Models, room: RoomConstraint, cfg: OptimizeConfig, out_dir: Path,
             lr: float | None = None, flow: Flow = Flow(), cd_floor: float | None = None,
             progress: bool = True, trust: TrustRegion | None = None,
             on_iterate: Callable[[int, Evaluation, float], None] | None = None) -> dict[str, Any]:
    """Run the optimization and write its outputs.

    ``cd_floor``: the run stops at the first iterate whose predicted Cd is below it (that iterate is recorded in
    the history but never kept as the best shape); see :attr:`OptimizeConfig.stay_in_data`. ``trust``: keep the
    parameters within its ball around where they start (:class:`TrustRegion`). ``on_iterate(iteration,
    evaluation, predicted Cd)`` is called at every evaluated iterate, while ``param`` still holds that iterate's
    parameters (the campaign records its candidates this way).

    Writes in ``out_dir``: ``history.csv`` (iteration, drag N, Cd, room penalty, regularization, objective,
    the surrogate's domain score of the shape (recorded, not acted on), seconds), ``initial.stl/.vtp`` and
    ``final.stl/.vtp`` (best feasible shape, predicted p and τ),
    ``drag.png``, ``before_after.png`` and ``summary.json`` (written last, atomically).

    Returns:
        The summary dict.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    step = lr if lr is not None else getattr(cfg.lr, param.name)
    params = trainable(param)
    opt = torch.optim.Adam(params, lr=step)
    if trust is not None:
        trust.attach(params)
    rows: list[dict[str, float]] = []
    t0 = time.perf_counter()
    ev0 = evaluate_objective(param, models, room, cfg, None, flow)
    drag0, a0 = ev0.drag, frontal_area(ev0.verts.double().numpy(), ev0.faces.numpy())
    _save_mesh(ev0, out_dir / "initial", flow)
    best, best_iter = (ev0, 0) if ev0.room <= cfg.feasible_tol else (None, -1)
    ev, last, stopped = ev0, (ev0, 0), None
    bar = progress_bar(range(cfg.iters + 1), desc=f"optimize {param.name}", unit="it", enabled=progress)
    for it in bar:
        if it > 0:
            ev = evaluate_objective(param, models, room, cfg, drag0, flow)
        a_ref = frontal_area(ev.verts.double().numpy(), ev.faces.numpy())
        cd = ev.drag / (flow.q * a_ref)
        rows.append({"iteration": it, "drag_N": ev.drag, "Cd": cd, "A_ref": a_ref, "room_penalty_m2": ev.room,
                     "regularization": ev.reg, "objective": float(ev.objective.detach()),
                     "domain_score": ev.domain_score, "seconds": time.perf_counter() - t0})
        if on_iterate is not None:
            on_iterate(it, ev, cd)
        if cd_floor is not None and cd < cd_floor:
            stopped = it
            log.info("%s: stopped at iteration %d: predicted Cd %.4f is below the surrogate's training data (%.4f)",
                     param.name, it, cd, cd_floor)
            break
        last = (ev, it)
        feasible = ev.room <= cfg.feasible_tol
        if feasible and (best is None or ev.drag < best.drag):
            best, best_iter = ev, it
        bar.set_postfix(drag=f"{ev.drag:.1f}N", Cd=f"{cd:.4f}", room=f"{ev.room:.1e}")
        if it == cfg.iters:
            break
        opt.zero_grad(set_to_none=True)
        ev.objective.backward()
        opt.step()
        if trust is not None:
            trust.project(params)
    bar.close()
    if best is None:
        best, best_iter = last
        log.warning("no feasible shape was found; the final shape is iterate %d (room penalty %.2e m2)",
                    best_iter, best.room)
    _save_mesh(best, out_dir / "final", flow)
    write_csv_atomic(out_dir / "history.csv", rows)
    a_best = rows[best_iter]["A_ref"]
    summary = {
        "param": param.name, "iterations": cfg.iters, "lr": step, "best_iteration": best_iter,
        "feasible": best.room <= cfg.feasible_tol,
        "initial": {"drag_N": drag0, "Cd": drag0 / (flow.q * a0), "A_ref": a0,
                    "room_penalty_m2": ev0.room, "domain_score": ev0.domain_score},
        "final": {"drag_N": best.drag, "Cd": best.drag / (flow.q * a_best), "A_ref": a_best,
                  "room_penalty_m2": best.room, "domain_score": best.domain_score},
        "drag_change": best.drag / drag0 - 1.0, "cd_floor": cd_floor, "stopped_at": stopped,
        "trust_region": None if trust is None else {"radius": trust.radius, "clipped_steps": trust.clipped,
                                                    "final_distance": trust.distance(params)},
        "seconds": time.perf_counter() - t0, "speed": flow.speed, "rho": flow.rho, "config": asdict(cfg),
    }
    _plots(rows, ev0, best, best_iter, out_dir)
    return summary


def _plots(rows: list[dict[str, float]], ev0: Evaluation, best: Evaluation, best_iter: int, out_dir: Path) -> None:
    from aero_opt.geometry.render import add_colorbar, draw_mesh, plt, save_figure
    from aero_opt.geometry.sdf import signed_distance

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([r["iteration"] for r in rows], [r["drag_N"] for r in rows], label="surrogate drag")
    ax.axvline(best_iter, color="k", lw=0.8, ls="--", label="best feasible")
    ax.set_xlabel("iteration")
    ax.set_ylabel("drag (N)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out_dir / "drag.png")
    cp = np.concatenate([ev0.coeffs[:, 0].numpy(), best.coeffs[:, 0].numpy()])
    clim = (float(np.percentile(cp, 2)), float(np.percentile(cp, 98)))
    final_v = best.verts.double().numpy()
    moved = 1000.0 * signed_distance(final_v, ev0.verts.double().numpy(), ev0.faces.numpy())
    reach = max(float(np.percentile(np.abs(moved), 98)), 1.0)
    fig, axes = plt.subplots(2, 3, figsize=(14, 4.8), layout="constrained")
    for col, (ev, title) in enumerate([(ev0, f"initial: {rows[0]['drag_N']:.1f} N"),
                                       (best, f"best (it {best_iter}): {rows[best_iter]['drag_N']:.1f} N")]):
        for row, view in enumerate(("side", "three_quarter")):
            cp_coll = draw_mesh(axes[row, col], ev.verts.double().numpy(), ev.faces.numpy(), view=view,
                                values=ev.coeffs[:, 0].numpy(), clim=clim)
        axes[0, col].set_title(f"predicted Cp, {title}", fontsize=10)
    for row, view in enumerate(("side", "three_quarter")):
        moved_coll = draw_mesh(axes[row, 2], final_v, best.faces.numpy(), view=view, values=moved, cmap="PuOr_r",
                               clim=(-reach, reach))
    axes[0, 2].set_title(f"change from the initial shape (max {np.abs(moved).max():.0f} mm)", fontsize=10)
    add_colorbar(fig, axes[:, :2], cp_coll, "Cp")
    add_colorbar(fig, axes[:, 2], moved_coll, "moved outward (+) / inward (-), mm")
    save_figure(fig, out_dir / "before_after.png")


def data_cd_floor(cfg: OptimizeConfig, data_dir: Path, surrogate: Surrogate | None = None) -> float | None:
    """The Cd below which the optimizer stops (:attr:`OptimizeConfig.stay_in_data`): the lowest CFD Cd of the
    surrogate's training cars, as the model recorded it (``surrogate.train_cd``) or, for a model without that
    record, of the training split of ``data_dir``; None when off or no cars there."""
    if not cfg.stay_in_data:
        return None
    if surrogate is not None and surrogate.train_cd is not None:
        return surrogate.train_cd[0]
    cds = split_cd(data_dir, "train")
    if not len(cds):
        log.warning("%s: no training cars, so no Cd floor: the optimizer may leave the surrogate's data", data_dir)
        return None
    return float(cds.min())


_PLACED: dict[tuple[str, str], tuple[RoomConstraint, dict[str, Any]]] = {}


def room_constraint(start: StartShape, cfg: OptimizeConfig) -> tuple[RoomConstraint, dict[str, Any]]:
    """The room constraint of a start shape under ``cfg.room``, and, for ``package``, where its parts went
    (:meth:`constraints.packaging.PlacedPackage.describe`; empty for ``relative``). A package placed on the same
    shape with the same sizes is reused (``compare`` runs every parameterization from one start shape).

    Raises:
        AeroOptError: a part of the package fits nowhere inside the car.
    """
    if cfg.room == "relative":
        return RoomConstraint(start.verts, start.faces), {}
    digest = hashlib.sha1(np.ascontiguousarray(start.verts, np.float64).tobytes()
                          + np.ascontiguousarray(start.faces, np.int64).tobytes()).hexdigest()
    key = (digest, repr(cfg.package))
    if key not in _PLACED:
        placed = place_package(start.verts, start.faces, cfg.package, name=start.name)
        _PLACED.clear()
        _PLACED[key] = (RoomConstraint.from_points(placed.points), placed.describe())
    return _PLACED[key]


def check_options(cfg: OptimizeConfig, lr: float | None, do_verify: bool) -> None:
    """Refuse a run's options before any long work (the latent fit, the models): ``--iters`` below 0, an ``--lr``
    that is not a positive finite number, a verification that cannot run, a package tyre that is not a tyre code.

    Raises:
        AeroOptError: one message per option, naming it (``"--lr 0.0: must be a positive number"``).
    """
    if cfg.iters < 0:
        raise AeroOptError(f"--iters {cfg.iters}: must be at least 0")
    if lr is not None and not (lr > 0 and math.isfinite(lr)):
        raise AeroOptError(f"--lr {lr}: must be a positive number")
    if do_verify:
        check_verification(cfg.verify_preset, cfg.verify_runs)
    if cfg.room == "package":
        tyre_size(cfg.package.tyre)


def run_start(param: str, start: StartShape, models: Models, cfg: OptimizeConfig, out_dir: Path,
              lr: float | None = None, do_verify: bool = False, cd_floor: float | None = None, flow: Flow = Flow(),
              progress: bool = True, cluster: ClusterConfig | None = None, procs: int = 1,
              workers: int | None = None) -> dict[str, Any]:
    """Optimize one start shape with one parameterization (and optionally verify with OpenFOAM).

    Args:
        flow: the free stream of the drag (surrogate and OpenFOAM).
        cd_floor: stop below this predicted Cd (:func:`data_cd_floor`).
        do_verify: simulate the initial and final shapes side by side (``out_dir/cfd_initial``, ``cfd_final``) on
            the CFD executor: ``cluster`` (None: a local Dask cluster), ``procs`` cores per case, ``workers`` cases
            at once on this machine (None: as many as fit).

    Returns:
        The summary (also ``out_dir/summary.json``, written last).
    """
    build = parameterization_class(param).build
    check_options(cfg, lr, do_verify)
    room, placement = room_constraint(start, cfg)
    p = build(start, models, cfg)
    summary = optimize(p, models, room, cfg, out_dir, lr=lr, flow=flow, cd_floor=cd_floor, progress=progress)
    summary.update({"car": start.name, "latent_source": start.source, "room_points": len(room.points),
                    "room": {"kind": cfg.room, **placement}})
    if do_verify:
        summary["cfd"] = _verify(Path(out_dir), cfg, flow, cluster, procs, workers, progress)
    write_json_atomic(Path(out_dir) / "summary.json", summary)
    write_run_report(Path(out_dir))
    return summary


def _verify(out_dir: Path, cfg: OptimizeConfig, flow: Flow, cluster: ClusterConfig | None, procs: int,
            workers: int | None, progress: bool) -> dict[str, Any]:
    """OpenFOAM drag of a run's initial and final shapes, ``cfg.verify_runs`` grid-shifted runs each, all side by
    side; raises when a shape has no usable run."""
    got = check_shapes([(k, out_dir / f"{k}.stl", out_dir / f"cfd_{k}") for k in ("initial", "final")],
                       cfg.verify_preset, cfg.verify_runs, flow.speed, flow.rho, workers, cluster, procs, progress)
    for result in got.values():
        if isinstance(result, AeroOptError):
            raise result
    ini, fin = got["initial"], got["final"]
    return {"preset": cfg.verify_preset, "runs": cfg.verify_runs, "initial": ini, "final": fin,
            **drag_change(ini, fin)}


def run_optimize(param: str, car: str, out_dir: Path, cfg: OptimizeConfig, surrogate_dir: Path, decoder_dir: Path,
                 data_dir: Path, lr: float | None = None, do_verify: bool = False, flow: Flow = Flow(),
                 progress: bool = True, device: torch.device | str = "cpu", cluster: ClusterConfig | None = None,
                 procs: int = 1, workers: int | None = None, fit: FitConfig = FitConfig()) -> dict[str, Any]:
    """``aero-opt optimize``: load the models, build the start shape of ``car`` (dataset ID or mesh path; a car
    without a training code gets one fitted with ``fit``), run (:func:`run_start`, where ``cluster``, ``procs`` and
    ``workers`` are); the networks run on ``device``.

    Returns:
        The summary (also ``out_dir/summary.json``).
    """
    parameterization_class(param)
    check_options(cfg, lr, do_verify)
    if Path(car).suffix and not Path(car).is_file():
        raise AeroOptError(f"{car}: mesh file not found")
    models = Models.load(surrogate_dir, decoder_dir, device=device, symmetric=cfg.symmetric)
    start = start_shape(car, models, cfg.resolution, data_dir, fit)
    return run_start(param, start, models, cfg, out_dir, lr, do_verify,
                     cd_floor=data_cd_floor(cfg, data_dir, models.surrogate), flow=flow, progress=progress,
                     cluster=cluster, procs=procs, workers=workers)
