"""``aero-opt campaign``: shape optimization with OpenFOAM in the loop, and the CFD-only optimizer at equal cost.

**Surrogate campaign** (``--method surrogate``), per round:

1. *Optimize* from the best verified shape so far with the current surrogate, under the room constraint placed on
   the start shape (the same one every round: the room never shrinks with the car), inside a **trust region**: the
   parameters stay within a radius (RMS over the parameter entries, :class:`aero_opt.app.optimize.TrustRegion`) of
   the round's start. There is no fixed data-edge stop: the radius is the limit, and it follows what OpenFOAM
   verified — after a round, ``ratio`` = (verified drag change of the round's best candidate against the centre)
   / (its predicted change); ``ratio ≥ good_ratio`` doubles the radius (the surrogate was right that far),
   ``ratio ≤ bad_ratio`` (the verified drag did not fall) halves it, anything between keeps it.
2. *Propose* ``per_round`` distinct feasible shapes from the trajectory: the best predicted one, and iterates
   spread along the path (the ones closest to equal fractions of the best one's distance from the start).
3. *Verify* each with the repeated-run protocol (``optimize.verify_runs`` runs at ``optimize.verify_preset``) on
   the CFD executor, side by side.
4. *Learn*: each verified shape joins the campaign's dataset (``data/``, the dataset format, fields averaged over
   its runs), and the surrogate is fine-tuned from its current weights on all the campaign's shapes mixed with a
   replay of the original training cars (:func:`surrogate.train.finetune`); the shipped model is never written.
   Recorded: the surrogate's Cd error on the round's shapes before and after, and its Cd R² on the dataset's test
   split (forgetting). A fine-tune that diverges is discarded (the previous surrogate stays).

**CMA-ES baseline** (``--method cma``): the same start, parameterization, room constraint and verification protocol,
optimized by CMA-ES (the ``cma`` package) on the parameterization's parameters with OpenFOAM's drag as the
objective; an infeasible shape (room penalty above ``optimize.feasible_tol``) is scored ``1 + room_weight ·
penalty`` without a CFD case. It stops when it has used the same number of CFD cases (``--budget-cases``).

Everything is resumable: every stage writes its result atomically and is skipped when it is there; finished CFD
cases are reused. ``campaign.json`` and ``campaign.md`` report per round (or generation): the best verified drag and
Cd with their intervals, cases and CPU time spent, the surrogate's errors; ``campaign.png`` plots verified drag
against CFD cases.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh

from aero_opt.app.compare import cached_start
from aero_opt.app.config import CampaignConfig
from aero_opt.app.optimize import (
    Evaluation,
    Models,
    OptimizeConfig,
    StartShape,
    TrustRegion,
    check_options,
    evaluate_objective,
    optimize,
    room_constraint,
    trainable,
)
from aero_opt.cfd.executor import ClusterConfig
from aero_opt.cfd.results import case_fields
from aero_opt.cfd.verify import cfd_shift, check_shapes, drag_change
from aero_opt.core.atomic import save_torch_atomic, write_json_atomic, write_text_atomic
from aero_opt.core.checkpoint import load_torch
from aero_opt.core.errors import AeroOptError
from aero_opt.core.physics import Flow, frontal_area
from aero_opt.geometry.dataset import LABEL_KEYS, average_labels, save_car, split_names
from aero_opt.geometry.mesh_import import export_mesh
from aero_opt.meshsdf.config import FitConfig
from parameterizations import Parameterization, parameterization_class
from surrogate.config import TrainSurrogateConfig
from surrogate.evaluate import r2_score
from surrogate.model import Surrogate
from surrogate.samples import Sample, load_samples, load_split
from surrogate.train import finetune

log = logging.getLogger(__name__)

METHODS = ("surrogate", "cma")
"""``--method``: the surrogate campaign or the CMA-ES baseline."""


def _flat(param: Parameterization) -> np.ndarray:
    """The parameterization's trainable parameters (:func:`aero_opt.app.optimize.trainable`) as one float64
    vector."""
    return torch.cat([q.detach().reshape(-1).double() for q in trainable(param)]).numpy()


def _set_flat(param: Parameterization, x: np.ndarray) -> None:
    """Write a vector made by :func:`_flat` back into the parameters."""
    i = 0
    with torch.no_grad():
        for q in trainable(param):
            n = q.numel()
            q.copy_(torch.as_tensor(x[i:i + n], dtype=q.dtype).reshape(q.shape))
            i += n


def _save_shape(stem: Path, verts: np.ndarray, faces: np.ndarray, latent: torch.Tensor | None,
                params: np.ndarray) -> None:
    """A candidate: its mesh (``.stl``) and how to rebuild it (``.pt``: latent, parameters, mesh)."""
    export_mesh(trimesh.Trimesh(verts, faces, process=False), stem.with_suffix(".stl"))
    save_torch_atomic({"latent": latent, "params": params, "verts": verts, "faces": faces}, stem.with_suffix(".pt"))


def _load_start(stem: Path, name: str) -> StartShape:
    """A saved candidate as the start shape of the next round."""
    d = load_torch(stem.with_suffix(".pt"), ("latent", "params", "verts", "faces"))
    return StartShape(name, d["latent"], np.asarray(d["verts"]), np.asarray(d["faces"]), "campaign")


def pick_candidates(snaps: list[dict[str, Any]], k: int, min_gap: float) -> list[dict[str, Any]]:
    """``k`` distinct feasible iterates of a trajectory (fewer when it has fewer): the best predicted drag first,
    then those closest to equal fractions (1/k, 2/k, …) of its distance from the start; two candidates are distinct
    when their parameter distance is above ``min_gap``.

    Args:
        snaps: per iterate ``iteration``, ``drag_N`` (predicted), ``feasible``, ``params`` (vector), ``distance``
            (RMS from the start); the start itself (iteration 0) is never picked.
    """
    pool = [s for s in snaps if s["feasible"] and s["iteration"] > 0]
    if not pool:
        return []
    best = min(pool, key=lambda s: s["drag_N"])
    chosen = [best]

    def distinct(s: dict[str, Any]) -> bool:
        return all(float(np.sqrt(np.mean((s["params"] - c["params"]) ** 2))) > min_gap for c in chosen)

    for j in range(1, k):
        target = best["distance"] * j / k
        for s in sorted(pool, key=lambda s: abs(s["distance"] - target)):
            if distinct(s):
                chosen.append(s)
                break
    for s in sorted(pool, key=lambda s: s["drag_N"]):  # still short: the next best predicted
        if len(chosen) >= k:
            break
        if distinct(s):
            chosen.append(s)
    return chosen[:k]


def save_labelled_shape(path: Path, verdict: dict[str, Any], verts: np.ndarray, faces: np.ndarray,
                        params: dict[str, Any]) -> None:
    """Write a verified shape (``verts`` (V, 3) m, ``faces``) as a dataset car whose labels are the mean of its
    usable runs: the first run's fields and summary, the others folded in by
    :func:`aero_opt.geometry.dataset.average_labels` (the one home of label averaging; ``label_runs`` records each
    run's grid shift and scalars). Written in ``.partial/`` beside ``path`` and moved, so a kill leaves no
    half-averaged car.

    Raises:
        AeroOptError: no usable (finished and converged) run.
    """
    shift = cfd_shift(trimesh.Trimesh(verts, faces, process=False))
    runs = []
    for run in verdict["runs"]:
        if "error" in run or run.get("converged") is False:
            continue
        p, tau, summary = case_fields(Path(run["case"]), verts + shift)
        runs.append((float(run["grid_shift"]), p, tau if tau is not None else np.zeros((len(verts), 3)), summary))
    if not runs:
        raise AeroOptError("no usable run to take fields from")
    g0, p0, tau0, s0 = runs[0]
    first = {**s0, "label_runs": [{"grid_shift": g0, **{k: float(s0[k]) for k in LABEL_KEYS},
                                   "pressure_rel_l2": 0.0}]}
    tmp = path.parent / ".partial" / path.name  # outside the folder's *.npz, which loaders read
    tmp.parent.mkdir(parents=True, exist_ok=True)
    save_car(tmp, verts, faces, p0, tau0, first, params)
    if len(runs) > 1:
        average_labels(tmp, runs[1:])
    tmp.replace(path)


def _predicted_cd(sur: Surrogate, samples: list[Sample], flow: Flow) -> np.ndarray:
    """The surrogate's Cd (N,) of dataset samples (their own frontal areas)."""
    out = []
    with torch.no_grad():
        for s in samples:
            out.append(float(sur.drag(s.verts, s.faces, s.car.a_ref, flow.rho, flow.speed)[1]))
    return np.asarray(out)


class Campaign:
    """One campaign's folder, state and stages (see the module text)."""

    def __init__(self, out_dir: Path, param: str, cfg: OptimizeConfig, ccfg: CampaignConfig, models: Models,
                 start: StartShape, data_dir: Path, flow: Flow, workers: int | None, cluster: ClusterConfig | None,
                 procs: int, progress: bool) -> None:
        self.out, self.param, self.cfg, self.ccfg = Path(out_dir), param, cfg, ccfg
        self.models, self.start, self.data_dir, self.flow = models, start, Path(data_dir), flow
        self.workers, self.cluster, self.procs, self.progress = workers, cluster, procs, progress
        self.room, self.placement = room_constraint(start, cfg)
        self.state_path = self.out / "state.json"
        self.state: dict[str, Any] = json.loads(self.state_path.read_text()) if self.state_path.is_file() else {
            "cases_used": 0, "cpu_seconds": 0.0, "radius": getattr(ccfg.radius, param), "rounds": []}

    # ------------------------------------------------------------------ shared
    def save_state(self) -> None:
        write_json_atomic(self.state_path, self.state)

    def _rel(self, path: Path) -> str:
        """A path inside the campaign folder as stored in its records (relative, so the folder can move)."""
        return Path(path).relative_to(self.out).as_posix()

    def _path(self, rel: str) -> Path:
        """The path of a stored record's relative path."""
        return self.out / rel

    def budget_left(self) -> float:
        b = self.ccfg.budget_cases
        return math.inf if b is None else b - self.state["cases_used"]

    def verify(self, shapes: list[tuple[str, Path, Path]]) -> dict[str, dict[str, Any] | AeroOptError]:
        """Verify shapes with the campaign's protocol (the cases are counted by :meth:`count`)."""
        return check_shapes(shapes, self.cfg.verify_preset, self.cfg.verify_runs, self.flow.speed, self.flow.rho,
                            self.workers, self.cluster, self.procs, self.progress, desc="campaign cfd")

    def count(self, got: dict[str, Any], key_prefix: str) -> None:
        """Record the cases of a verification once (keyed so a resumed stage does not count them twice)."""
        done = self.state.setdefault("counted", [])
        for key in got:
            tag = f"{key_prefix}/{key}"
            if tag not in done:
                done.append(tag)
                self.state["cases_used"] += self.cfg.verify_runs

    def verified_start(self) -> dict[str, Any]:
        """The start shape, saved and verified (``start/``)."""
        path = self.out / "start" / "verified.json"
        if path.is_file():
            return json.loads(path.read_text())
        stem = self.out / "start" / "shape"
        stem.parent.mkdir(parents=True, exist_ok=True)
        p = parameterization_class(self.param).build(self.start, self.models, self.cfg)
        _save_shape(stem, self.start.verts, self.start.faces, self.start.latent, _flat(p))
        got = self.verify([("start", stem.with_suffix(".stl"), self.out / "start" / "cfd")])
        self.count(got, "start")
        if isinstance(got["start"], AeroOptError):
            raise AeroOptError(f"the start shape could not be verified: {got['start']}")
        rec = {"stem": self._rel(stem), **self._record(got["start"], self.start.verts, self.start.faces)}
        write_json_atomic(path, rec)
        self.save_state()
        return rec

    def _record(self, verdict: dict[str, Any], verts: np.ndarray, faces: np.ndarray) -> dict[str, Any]:
        return {"Cd": verdict["Cd"], "drag_N": verdict["drag_N"], "A_ref": verdict["A_ref"],
                "frontal_area_m2": frontal_area(verts, faces), "Cd_stats": verdict["Cd_stats"],
                "drag_stats": verdict["drag_stats"], "verdict": verdict}

    def _to_dataset(self, name: str, rec: dict[str, Any], verts: np.ndarray, faces: np.ndarray) -> Path:
        path = self.out / "data" / f"{name}.npz"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            save_labelled_shape(path, rec["verdict"], verts, faces, {"source": "campaign", "shape": name})
        return path

    # ------------------------------------------------------------------ surrogate method
    def surrogate_path(self, r: int) -> Path | None:
        """The surrogate a round optimizes with: the last accepted fine-tune before round ``r`` (None: given)."""
        for q in range(r - 1, -1, -1):
            f = self.out / f"round_{q:02d}" / "surrogate.pt"
            if f.is_file():
                return f
        return None

    def run_surrogate(self) -> None:
        start_rec = self.verified_start()
        centre = {"name": "start", "stem": start_rec["stem"], **start_rec}
        for r in range(self.ccfg.rounds):
            if r < len(self.state["rounds"]):
                centre = self.state["rounds"][r]["centre_after"]
                continue
            if self.budget_left() < self.cfg.verify_runs:
                log.info("campaign: the CFD budget is spent after %d rounds", r)
                break
            rd = self.out / f"round_{r:02d}"
            sur_file = self.surrogate_path(r)
            models = self.models if sur_file is None else replace(
                self.models, surrogate=Surrogate.load(sur_file, device=self.models.surrogate.device))
            cands = self._propose(r, rd, centre, models)
            n = int(min(len(cands), self.budget_left() // self.cfg.verify_runs))
            cands = cands[:n]
            got = self.verify([(c["name"], self._path(c["stem"]).with_suffix(".stl"), rd / "cfd" / c["name"])
                               for c in cands])
            self.count(got, f"round_{r:02d}")
            self.save_state()
            failed = [f"{k}: {v}" for k, v in got.items() if isinstance(v, AeroOptError)]
            if len(failed) == len(got):
                raise AeroOptError(f"round {r}: every verification failed: " + "; ".join(failed))
            verified = []
            for c in cands:
                v = got[c["name"]]
                if isinstance(v, AeroOptError):
                    continue
                verified.append({**c, **self._record(v, *self._mesh(self._path(c["stem"])))})
            learn = self._learn(r, rd, verified, models.surrogate)
            best = min(verified, key=lambda c: c["drag_N"])
            predicted = best["predicted_change"]
            change = drag_change(centre["verdict"], best["verdict"])
            ratio = change["drag_change"] / predicted if predicted < 0 else -math.inf
            radius = self.state["radius"]
            new_radius = radius * (self.ccfg.grow if ratio >= self.ccfg.good_ratio else
                                   self.ccfg.shrink if ratio <= self.ccfg.bad_ratio else 1.0)
            improved = best["drag_N"] < centre["drag_N"]
            after = {k: best[k] for k in ("name", "stem", "Cd", "drag_N", "A_ref", "frontal_area_m2", "Cd_stats",
                                          "drag_stats", "verdict")} if improved else centre
            self.state["rounds"].append({
                "round": r, "radius": radius, "next_radius": new_radius, "ratio": ratio,
                "predicted_change": predicted, "verified_change": change,
                "candidates": [{k: c[k] for k in ("name", "iteration", "distance", "predicted_drag_N", "Cd",
                                                  "drag_N", "A_ref", "Cd_stats", "drag_stats")} for c in verified],
                "failed": failed, "learn": learn, "improved": improved, "centre_after": after,
                "cases_used_after": self.state["cases_used"]})
            self.state["radius"] = new_radius
            self.save_state()
            centre = after
            log.info("round %d: best verified drag %.1f N (%+.1f%% against the centre, predicted %+.1f%%), radius "
                     "%.3g -> %.3g", r, best["drag_N"], 100 * change["drag_change"], 100 * predicted, radius,
                     new_radius)

    def _propose(self, r: int, rd: Path, centre: dict[str, Any], models: Models) -> list[dict[str, Any]]:
        """Optimize from the centre inside the trust region and save the candidates (``candidates.json``)."""
        path = rd / "candidates.json"
        if path.is_file():
            return json.loads(path.read_text())
        start = _load_start(self._path(centre["stem"]), f"{self.start.name}_{centre['name']}")
        p = parameterization_class(self.param).build(start, models, self.cfg)
        snaps: list[dict[str, Any]] = []
        trust = TrustRegion(self.state["radius"])
        latent_of = (lambda: p.z.detach().clone()) if hasattr(p, "z") else (lambda: None)

        def record(it: int, ev: Evaluation, cd: float) -> None:
            snaps.append({"iteration": it, "drag_N": ev.drag, "Cd": cd, "feasible": ev.room <= self.cfg.feasible_tol,
                          "params": _flat(p), "distance": trust.distance(trainable(p)) if it else 0.0,
                          "verts": ev.verts.double().numpy(), "faces": ev.faces.numpy(), "latent": latent_of()})

        summary = optimize(p, models, self.room, self.cfg, rd / "optimize", flow=self.flow, cd_floor=None,
                           progress=self.progress, trust=trust, on_iterate=record)
        write_json_atomic(rd / "optimize" / "summary.json", {**summary, "car": start.name})
        chosen = pick_candidates(snaps, self.ccfg.per_round, 0.05 * trust.radius)
        if not chosen:
            raise AeroOptError(f"round {r}: the optimization found no feasible shape to verify "
                               f"({rd / 'optimize' / 'history.csv'})")
        out = []
        for k, s in enumerate(chosen):
            stem = rd / "candidates" / f"c{k}"
            stem.parent.mkdir(parents=True, exist_ok=True)
            _save_shape(stem, s["verts"], s["faces"], s["latent"], s["params"])
            out.append({"name": f"r{r:02d}_c{k}", "stem": self._rel(stem), "iteration": s["iteration"],
                        "distance": s["distance"], "predicted_drag_N": s["drag_N"], "predicted_Cd": s["Cd"],
                        "predicted_change": s["drag_N"] / summary["initial"]["drag_N"] - 1.0})
        write_json_atomic(path, out)
        return out

    def _learn(self, r: int, rd: Path, verified: list[dict[str, Any]], sur: Surrogate) -> dict[str, Any]:
        """Add the round's verified shapes to the campaign dataset and fine-tune (``learn.json``,
        ``surrogate.pt``)."""
        path = rd / "learn.json"
        if path.is_file():
            rec = json.loads(path.read_text())
            if rec.get("accepted"):
                self.state["test_r2"] = rec["test_r2_after"]
            return rec
        for c in verified:
            self._to_dataset(c["name"], c, *self._mesh(self._path(c["stem"])))
        campaign_set = load_split(self.out / "data", "all")
        new = [s for s in campaign_set if s.name in {c["name"] for c in verified}]
        y_new = np.array([s.car.cd for s in new])
        before = _predicted_cd(sur, new, self.flow)
        tcfg = TrainSurrogateConfig(bf16=self.cfg.bf16)
        replay = load_samples(self.data_dir, split_names(self.data_dir, "train")[: self.ccfg.replay_cars]) \
            if self.ccfg.replay_fraction > 0 else []
        test = load_split(self.data_dir, "test")
        y_test = np.array([s.car.cd for s in test])
        r2_before = self.state.get("test_r2")  # the current surrogate's, measured after the last fine-tune
        if r2_before is None and test:
            r2_before = self.state["test_r2"] = r2_score(y_test, _predicted_cd(sur, test, self.flow))
        rec: dict[str, Any] = {"new_shapes": [s.name for s in new], "Cd_verified": y_new.tolist(),
                               "Cd_predicted_before": before.tolist(),
                               "Cd_abs_error_before": float(np.mean(np.abs(before - y_new))),
                               "test_r2_before": r2_before}
        t0 = time.perf_counter()
        try:
            tuned, stats = finetune(sur, campaign_set, replay, self.ccfg.finetune_steps, self.ccfg.finetune_lr,
                                    tcfg, self.ccfg.replay_fraction, seed=self.ccfg.seed + r,
                                    progress=self.progress)
        except AeroOptError as exc:
            log.warning("round %d: %s; the previous surrogate stays", r, exc)
            rec.update({"accepted": False, "reason": str(exc), "seconds": time.perf_counter() - t0})
            write_json_atomic(path, rec)
            return rec
        after = _predicted_cd(tuned, new, self.flow)
        rec.update({"accepted": True, "finetune": stats, "Cd_predicted_after": after.tolist(),
                    "Cd_abs_error_after": float(np.mean(np.abs(after - y_new))),
                    "test_r2_after": r2_score(y_test, _predicted_cd(tuned, test, self.flow)) if test else None,
                    "seconds": time.perf_counter() - t0})
        tuned.save(rd / "surrogate.pt", {"campaign_round": r})
        write_json_atomic(path, rec)
        self.state["test_r2"] = rec["test_r2_after"]
        self.save_state()
        return rec

    # ------------------------------------------------------------------ CMA-ES
    def run_cma(self) -> None:
        """CMA-ES on the parameters with OpenFOAM as the objective, until the budget is spent."""
        import cma

        start_rec = self.verified_start()
        drag0 = start_rec["drag_N"]
        p = parameterization_class(self.param).build(self.start, self.models, self.cfg)
        x0 = _flat(p)
        es_path = self.out / "cma" / "es.pkl"
        if es_path.is_file():
            es = pickle.loads(es_path.read_bytes())
        else:
            opts = {"seed": self.ccfg.seed + 1, "verbose": -9}
            if self.ccfg.cma_popsize:
                opts["popsize"] = self.ccfg.cma_popsize
            es = cma.CMAEvolutionStrategy(x0, getattr(self.ccfg.radius, self.param), opts)
        gens = self.state.setdefault("generations", [])
        while self.budget_left() >= self.cfg.verify_runs:
            g = len(gens)
            gd = self.out / "cma" / f"gen_{g:03d}"
            asked = gd / "asked.json"
            xs = es.ask()
            if asked.is_file():  # a generation interrupted after its ask: the same points again
                xs = [np.asarray(x) for x in json.loads(asked.read_text())]
            else:
                write_json_atomic(asked, [np.asarray(x).tolist() for x in xs])
            shapes, rooms = [], []
            for i, x in enumerate(xs):
                _set_flat(p, x)
                ev = evaluate_objective(p, self.models, self.room, self.cfg, drag0, self.flow)
                rooms.append(ev.room)
                if ev.room <= self.cfg.feasible_tol:
                    stem = gd / f"x{i}"
                    latent = p.z.detach().clone() if hasattr(p, "z") else None
                    _save_shape(stem, ev.verts.double().numpy(), ev.faces.numpy(), latent, np.asarray(x))
                    shapes.append((f"g{g:03d}_x{i}", stem.with_suffix(".stl"), gd / "cfd" / f"x{i}"))
            feasible = len(shapes)
            shapes = shapes[:int(self.budget_left() // self.cfg.verify_runs)]
            got = self.verify(shapes) if shapes else {}
            self.count(got, f"gen_{g:03d}")
            scores, verified = [], {}
            for i in range(len(xs)):
                v = got.get(f"g{g:03d}_x{i}")
                if rooms[i] > self.cfg.feasible_tol:
                    scores.append(1.0 + self.cfg.room_weight * rooms[i])
                elif isinstance(v, dict):
                    scores.append(v["drag_N"] / drag0)
                    verified[f"g{g:03d}_x{i}"] = v
                else:  # the case failed: scored as no better than the start, so CMA-ES moves away
                    scores.append(1.0)
            complete = len(shapes) == feasible
            if complete:
                es.tell(xs, scores)
                es_path.parent.mkdir(parents=True, exist_ok=True)
                es_path.write_bytes(pickle.dumps(es))
            best = min(verified.items(), key=lambda kv: kv[1]["drag_N"]) if verified else None
            gens.append({"generation": g, "evaluated": len(xs), "verified": len(verified),
                         "infeasible": int(sum(r > self.cfg.feasible_tol for r in rooms)),
                         "best": None if best is None else {
                             "name": best[0], "stem": self._rel(gd / best[0].split("_")[1]),
                             **self._record(best[1], *self._mesh(gd / best[0].split("_")[1]))},
                         "cases_used_after": self.state["cases_used"]})
            self.save_state()
            if not complete:
                break

    @staticmethod
    def _mesh(stem: Path) -> tuple[np.ndarray, np.ndarray]:
        d = load_torch(stem.with_suffix(".pt"), ("verts", "faces"))
        return np.asarray(d["verts"]), np.asarray(d["faces"])

    # ------------------------------------------------------------------ report
    def report(self, method: str) -> dict[str, Any]:
        """``campaign.json``, ``campaign.md`` and ``campaign.png`` from the state."""
        start = json.loads((self.out / "start" / "verified.json").read_text())
        steps = []
        best = {"name": "start", **start}
        entries = self.state["rounds"] if method == "surrogate" else self.state.get("generations", [])
        for e in entries:
            cand = e["centre_after"] if method == "surrogate" else e["best"]
            if cand is not None and cand["drag_N"] < best["drag_N"]:
                best = cand
            ch = drag_change(start["verdict"], best["verdict"]) if best["name"] != "start" else \
                {"drag_change": 0.0, "drag_change_ci95": None}
            step = {"step": e.get("round", e.get("generation")), "cases_used": e["cases_used_after"],
                    "best": best["name"], "best_drag_N": best["drag_N"], "best_Cd": best["Cd"],
                    "best_A_ref": best["A_ref"], "drag_change": ch["drag_change"],
                    "drag_change_ci95": ch["drag_change_ci95"],
                    "Cd_change": best["Cd"] / start["Cd"] - 1.0}
            if method == "surrogate":
                learn = e["learn"]
                step.update({"radius": e["radius"], "ratio": e["ratio"],
                             "surrogate_error_before": learn.get("Cd_abs_error_before"),
                             "surrogate_error_after": learn.get("Cd_abs_error_after"),
                             "test_r2_before": learn.get("test_r2_before"), "test_r2_after": learn.get("test_r2_after"),
                             "finetune_accepted": learn.get("accepted")})
            steps.append(step)
        out = {"method": method, "param": self.param, "car": self.start.name,
               "room": {"kind": self.cfg.room, **self.placement},
               "verify": {"preset": self.cfg.verify_preset, "runs": self.cfg.verify_runs},
               "start": {k: start[k] for k in ("Cd", "drag_N", "A_ref", "frontal_area_m2", "drag_stats")},
               "cases_used": self.state["cases_used"], "steps": steps,
               "best": {k: best.get(k) for k in ("name", "Cd", "drag_N", "A_ref", "drag_stats")},
               "config": asdict(self.ccfg)}
        write_json_atomic(self.out / "campaign.json", out)
        lines = [f"# Campaign: {method}, {self.param} on {self.start.name}", "",
                 f"Verification: {self.cfg.verify_runs} run(s) at `{self.cfg.verify_preset}` per shape; room: "
                 f"{self.cfg.room}. Start: drag {start['drag_N']:.1f} N, Cd {start['Cd']:.4f}, frontal area "
                 f"{start['frontal_area_m2']:.3f} m².", "",
                 "| step | CFD cases | best shape | drag (N) | drag change ± 95% | Cd | Cd change | A_ref (m²) |"
                 + (LEARN_HEADER if method == "surrogate" else ""),
                 "|---" * (8 + (LEARN_HEADER.count("|") if method == "surrogate" else 0)) + "|"]
        for s in steps:
            ci = s["drag_change_ci95"]
            ci_s = "" if ci is None else f" ± {100 * ci:.1f}"
            lines.append(f"| {s['step']} | {s['cases_used']} | {s['best']} | {s['best_drag_N']:.1f} | "
                         f"{100 * s['drag_change']:+.1f}%{ci_s} | {s['best_Cd']:.4f} | {100 * s['Cd_change']:+.1f}% | "
                         f"{s['best_A_ref']:.3f} |" + (_learn_cells(s) if method == "surrogate" else ""))
        if method == "surrogate":
            lines += ["", "Per round: the trust radius the round optimized in and the ratio of verified to predicted "
                      "drag change that set the next one; the surrogate's mean |Cd error| on the round's verified "
                      "shapes before and after its fine-tune, and its Cd R² on the dataset's test split (forgetting)."]
        write_text_atomic(self.out / "campaign.md", "\n".join(lines) + "\n")
        self._plot(start, steps)
        if best["name"] != "start":
            self._before_after(self._path(start["stem"]), self._path(best["stem"]), start, best)
        return out

    def _before_after(self, start_stem: Path, best_stem: Path, start: dict[str, Any], best: dict[str, Any]) -> None:
        """``before_after.png``: the start shape and the best verified one, coloured by how far the surface
        moved (mm), side and three-quarter views."""
        from aero_opt.geometry.render import add_colorbar, draw_mesh, plt, save_figure
        from aero_opt.geometry.sdf import signed_distance

        v0, f0 = self._mesh(start_stem)
        v1, f1 = self._mesh(best_stem)
        moved = 1000.0 * signed_distance(v1, v0, f0)
        reach = max(float(np.percentile(np.abs(moved), 98)), 1.0)
        fig, axes = plt.subplots(2, 2, figsize=(10, 4.8), layout="constrained")
        for row, view in enumerate(("side", "three_quarter")):
            draw_mesh(axes[row, 0], v0, f0, view=view)
            coll = draw_mesh(axes[row, 1], v1, f1, view=view, values=moved, cmap="PuOr_r", clim=(-reach, reach))
        axes[0, 0].set_title(f"start: {start['drag_N']:.1f} N, Cd {start['Cd']:.4f} (OpenFOAM)", fontsize=10)
        axes[0, 1].set_title(f"best verified ({best['name']}): {best['drag_N']:.1f} N, Cd {best['Cd']:.4f}",
                             fontsize=10)
        add_colorbar(fig, axes[:, 1], coll, "moved outward (+) / inward (-), mm")
        save_figure(fig, self.out / "before_after.png")

    def _plot(self, start: dict[str, Any], steps: list[dict[str, Any]]) -> None:
        from aero_opt.geometry.render import plt, save_figure

        x = [self.cfg.verify_runs] + [s["cases_used"] for s in steps]
        y = [0.0] + [100 * s["drag_change"] for s in steps]
        err = [0.0] + [0.0 if s["drag_change_ci95"] is None else 100 * s["drag_change_ci95"] for s in steps]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3)
        ax.set_xlabel("CFD cases used")
        ax.set_ylabel("best verified drag change (%)")
        ax.set_title(f"{self.start.name}: {self.param}")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        save_figure(fig, self.out / "campaign.png", dpi=110)


LEARN_HEADER = " radius | ratio | Cd error before → after fine-tune | test R² before → after | fine-tune kept |"
"""The surrogate campaign's own columns of ``campaign.md`` (:func:`_learn_cells`)."""


def _learn_cells(step: dict[str, Any]) -> str:
    """A surrogate campaign round's :data:`LEARN_HEADER` cells."""
    def num(x: float | None, fmt: str) -> str:
        return "—" if x is None else format(x, fmt)

    return (f" {step['radius']:.3g} | {num(step['ratio'], '+.2f')} | {num(step['surrogate_error_before'], '.4f')} → "
            f"{num(step['surrogate_error_after'], '.4f')} | {num(step['test_r2_before'], '.3f')} → "
            f"{num(step['test_r2_after'], '.3f')} | {'yes' if step['finetune_accepted'] else 'no'} |")


def superseded_surrogate(path: Path) -> bool:
    """Whether a file of a campaign folder is a fine-tuned surrogate its campaign will not read again: any
    ``round_NN/surrogate.pt`` but the newest, and every one once the campaign has written ``campaign.json`` (its
    rounds are all in its state). Used to keep such files out of a carried work folder (:mod:`aero_opt.core.carry`).

    Args:
        path: a file in a work folder.
    """
    path = Path(path)
    if path.name != "surrogate.pt" or not path.parent.name.startswith("round_"):
        return False
    camp = path.parent.parent
    if (camp / "campaign.json").is_file():
        return True
    newest = max(camp.glob("round_*/surrogate.pt"), default=None)
    return newest is not None and newest != path


def run_campaign(car: str, param: str, out_dir: Path, cfg: OptimizeConfig, ccfg: CampaignConfig, method: str,
                 surrogate_dir: Path, decoder_dir: Path, data_dir: Path, flow: Flow = Flow(),
                 workers: int | None = None, cluster: ClusterConfig | None = None, procs: int = 1,
                 device: torch.device | str = "cpu", fit: FitConfig = FitConfig(), progress: bool = True,
                 models: Models | None = None) -> dict[str, Any]:
    """``aero-opt campaign``: run or resume a campaign in ``out_dir`` and write its report.

    Args:
        car: dataset ID or mesh file; param: parameterization; method: ``surrogate`` or ``cma``.
        cfg: the ``optimize`` settings (iterations per round, room, verification protocol); ccfg: the campaign's.
        surrogate_dir, decoder_dir, data_dir: the shipped (or user's) models and dataset (replay and test split).
        workers, cluster, procs: where the CFD cases run; device: where the networks run; fit: latent fit.
        models: already loaded models (tests); None: loaded from the folders.

    Returns:
        The report (also ``campaign.json``).
    """
    if method not in METHODS:
        raise AeroOptError(f"--method {method}: must be one of {', '.join(METHODS)}")
    if method == "cma" and ccfg.budget_cases is None:
        raise AeroOptError("--method cma needs --budget-cases (the CFD cases it may use)")
    parameterization_class(param)
    check_options(cfg, None, True)
    models = models or Models.load(surrogate_dir, decoder_dir, device=device, symmetric=cfg.symmetric)
    out_dir = Path(out_dir)
    start = cached_start(car, models, cfg, data_dir, out_dir, fit)
    camp = Campaign(out_dir, param, cfg, ccfg, models, start, data_dir, flow, workers, cluster, procs, progress)
    if method == "surrogate":
        camp.run_surrogate()
    else:
        camp.run_cma()
    return camp.report(method)
