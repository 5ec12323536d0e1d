"""The optimizer end to end on small stand-in models (an analytic ellipsoid 'decoder' whose latent holds the
semi-axes, a small random SplineCNN): every parameterization starts from the same mesh, a small step lowers the
objective (the gradient chain through surrogate, forces, mesh and parameters is right), the outputs are written,
and a bad --param fails clearly; compare resumes without redoing finished runs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from aero_opt.app.compare import model_fingerprints, result_row, run_compare, summarize, write_tables
from aero_opt.app.optimize import (
    Models,
    OptimizeConfig,
    StartShape,
    TrustRegion,
    data_cd_floor,
    evaluate_objective,
    optimize,
    run_start,
    trainable,
)
from aero_opt.cfd.verify import SimJob, cfd_shift
from aero_opt.core.errors import AeroOptError
from aero_opt.core.physics import Flow
from constraints.packaging import PackageSpec
from constraints.regions import RoomConstraint
from parameterizations import NAMES, parameterization_class
from surrogate.model import Surrogate

CFG = OptimizeConfig(iters=2, resolution=40, fast=False, bf16=False, verify_runs=1)  # float32: exact gradients


@pytest.mark.parametrize("name", NAMES)
def test_same_start_and_a_small_step_lowers_the_objective(name: str, models: Models, start: StartShape) -> None:
    room = RoomConstraint(start.verts, start.faces)
    p = parameterization_class(name).build(start, models, CFG)
    ev0 = evaluate_objective(p, models, room, CFG, None, Flow())
    assert np.allclose(ev0.verts.numpy(), start.verts, atol=1e-5)  # every parameterization starts from it
    assert ev0.room == 0.0
    ev0.objective.backward()
    params = list(p.parameters())
    grads = [q.grad.clone() for q in params]
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    norm2 = sum(float(g.square().sum()) for g in grads)
    eps = 1e-3 / max(norm2, 1e-12) ** 0.5 * (0.01 if name == "vertex" else 1.0)
    with torch.no_grad():
        for q, g in zip(params, grads):
            q -= eps * g
    ev1 = evaluate_objective(p, models, room, CFG, ev0.drag, Flow())
    assert ev1.objective.item() < ev0.objective.item()


def test_optimize_writes_its_outputs(models: Models, start: StartShape, tmp_path: Path) -> None:
    s = run_start("scaling", start, models, CFG, tmp_path / "run", progress=False)
    for name in ("history.csv", "initial.stl", "final.stl", "initial.vtp", "final.vtp", "drag.png",
                 "before_after.png", "summary.json"):
        assert (tmp_path / "run" / name).is_file(), name
    rows = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert len(rows) == 1 + CFG.iters + 1 and rows[0].startswith("iteration,drag_N,Cd")
    assert s["final"]["drag_N"] <= s["initial"]["drag_N"] and s["feasible"]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["car"] == "ellipsoid"
    assert "domain_score" in rows[0].split(",") and s["initial"]["domain_score"] is None  # stand-in: no domain


def test_package_room_is_placed_recorded_and_refused_where_it_does_not_fit(models: Models, start: StartShape,
                                                                          tmp_path: Path) -> None:
    """``room: package`` places the metre package in the start shape (zero penalty there) and records where; the
    default 17-inch wheels fit under no 1.3 m track of this 4.4 m ellipsoid, which is refused before any step."""
    small = PackageSpec(tyre="175/65R14", min_track=1.0)
    s = run_start("scaling", start, models, replace(CFG, room="package", package=small), tmp_path / "pk",
                  progress=False)
    assert s["room"]["kind"] == "package" and s["room_points"] == sum(s["room"]["points"].values())
    assert s["initial"]["room_penalty_m2"] == 0.0 and len(s["room"]["SgRP_m"]) == 2
    with pytest.raises(AeroOptError, match=r"^ellipsoid: the rear wheels \(215/55R17: 0.668 m tyres"):
        run_start("scaling", start, models, replace(CFG, room="package"), tmp_path / "refused", progress=False)
    assert not (tmp_path / "refused" / "summary.json").exists()


def test_trust_region_keeps_the_parameters_in_its_ball_and_on_iterate_sees_every_iterate(
        models: Models, start: StartShape, tmp_path: Path) -> None:
    cfg = replace(CFG, iters=4)
    p = parameterization_class("scaling").build(start, models, cfg)
    p0 = [q.detach().clone() for q in p.parameters()]
    seen: list[tuple[int, float, float]] = []

    def record(it: int, ev, cd: float) -> None:
        dev = torch.cat([(q.detach() - c).reshape(-1) for q, c in zip(p.parameters(), p0)])
        seen.append((it, cd, float(dev.square().mean().sqrt())))

    trust = TrustRegion(1e-3)
    s = optimize(p, models, RoomConstraint(start.verts, start.faces), cfg, tmp_path / "tr", flow=Flow(),
                 progress=False, trust=trust, on_iterate=record)
    assert [it for it, _, _ in seen] == list(range(5))
    rows = (tmp_path / "tr" / "history.csv").read_text().splitlines()[1:]
    assert [cd for _, cd, _ in seen] == pytest.approx([float(r.split(",")[2]) for r in rows])
    assert max(d for _, _, d in seen) <= 1e-3 * (1 + 1e-5) and seen[-1][2] == pytest.approx(1e-3, rel=1e-4)
    assert trust.clipped == 4 and s["trust_region"]["radius"] == 1e-3
    with pytest.raises(AeroOptError, match="trust region radius 0.0: must be a positive number"):
        TrustRegion(0.0)


def test_trainable_is_the_latent_not_the_frozen_decoder(models: Models, start: StartShape) -> None:
    """The trust region and the CMA-ES vector measure what the optimizer moves: MeshSDF's code, not its decoder."""
    nn_decoder = torch.nn.Sequential(torch.nn.Linear(3, 4))  # a decoder with weights, frozen by MeshSDF
    m = replace(models, decoder=nn_decoder)
    p = parameterization_class("meshsdf")(m.decoder, start.latent)
    assert [q.shape for q in trainable(p)] == [start.latent.shape]
    assert len(list(p.parameters())) == 3


def test_the_run_stops_at_the_cd_floor(models: Models, start: StartShape, tmp_path: Path) -> None:
    cfg = replace(CFG, iters=4)
    free = run_start("scaling", start, models, cfg, tmp_path / "free", progress=False)
    cds = [float(r.split(",")[2]) for r in (tmp_path / "free" / "history.csv").read_text().splitlines()[1:]]
    assert free["stopped_at"] is None and cds[-1] < cds[1] < cds[0]  # the stand-in surrogate's Cd falls
    floor = 0.5 * (cds[1] + cds[2])  # iterate 2 is the first below it
    s = run_start("scaling", start, models, cfg, tmp_path / "floor", cd_floor=floor, progress=False)
    rows = (tmp_path / "floor" / "history.csv").read_text().splitlines()
    assert s["stopped_at"] == 2 and len(rows) == 1 + 3  # iterates 0, 1 and the one below the floor
    assert s["best_iteration"] in (0, 1) and s["final"]["Cd"] >= floor and s["cd_floor"] == floor


def test_cfd_shift_puts_the_nose_at_zero_and_leaves_framed_bodies_alone() -> None:
    box = trimesh.creation.box(extents=(4.0, 1.8, 1.4))
    box.apply_translation((2.0, 0.0, 0.9))  # nose at x = 0, centred on y = 0
    assert not cfd_shift(box).any()
    box.apply_translation((0.01, 0.2, 0.05))
    assert np.allclose(cfd_shift(box), (-0.01, -0.2, 0.0))  # heights are physics: z is kept


def test_bad_param_is_a_clear_error(models: Models, start: StartShape, tmp_path: Path) -> None:
    with pytest.raises(AeroOptError, match="--param 'bogus'"):
        run_start("bogus", start, models, CFG, tmp_path)


def test_compare_resumes(models: Models, start: StartShape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aero_opt.app.compare as compare

    monkeypatch.setattr(compare.Models, "load", classmethod(lambda cls, a, b, **kw: models))
    monkeypatch.setattr(compare, "model_fingerprints", lambda a, b: {"surrogate": "s0", "car_decoder": "d0"})
    monkeypatch.setattr(compare, "start_shape", lambda car, m, r, d, fit: start)
    calls: list[str] = []
    real = compare.run_start

    def counting(param: str, *a, **k):  # noqa: ANN002, ANN003
        calls.append(param)
        return real(param, *a, **k)

    monkeypatch.setattr(compare, "run_start", counting)
    args = (["ellipsoid"], ["scaling", "freeform"], tmp_path, CFG, Path("s"), Path("d"), Path("data"))
    table = run_compare(*args, progress=False)
    assert calls == ["scaling", "freeform"] and table["scaling"]["runs"] == 1
    (tmp_path / "ellipsoid" / "freeform" / "summary.json").unlink()  # as if interrupted during freeform
    run_compare(*args, progress=False)
    assert calls == ["scaling", "freeform", "freeform"]
    assert "| scaling | 1 |" in (tmp_path / "results.md").read_text()
    # the same folder resumed with another surrogate or other settings would mix two experiments: refused
    monkeypatch.setattr(compare, "model_fingerprints", lambda a, b: {"surrogate": "s1", "car_decoder": "d0"})
    with pytest.raises(AeroOptError, match="inputs.json: .*another models.surrogate"):
        run_compare(*args, progress=False)
    monkeypatch.setattr(compare, "model_fingerprints", lambda a, b: {"surrogate": "s0", "car_decoder": "d0"})
    with pytest.raises(AeroOptError, match="another optimize.iters"):
        run_compare(args[0], args[1], tmp_path, replace(CFG, iters=CFG.iters + 1), *args[4:], progress=False)
    # a record made before `symmetric` was a setting: its shapes came from the decoder as trained
    record = json.loads((tmp_path / "inputs.json").read_text())
    del record["optimize"]["symmetric"]
    (tmp_path / "inputs.json").write_text(json.dumps(record))
    with pytest.raises(AeroOptError, match="another optimize.symmetric"):
        run_compare(*args, progress=False)
    run_compare(args[0], args[1], tmp_path, replace(CFG, symmetric=False), *args[4:], progress=False)
    assert calls == ["scaling", "freeform", "freeform"]
    # finished runs with no record (an older version's folder): their models are unknown, refused
    (tmp_path / "inputs.json").unlink()
    with pytest.raises(AeroOptError, match="finished runs but no inputs.json"):
        run_compare(*args, progress=False)
    assert calls == ["scaling", "freeform", "freeform"] and not (tmp_path / "inputs.json").exists()


def test_model_fingerprints_tell_models_apart(tmp_path: Path) -> None:
    """SHA-256 of each model file (hashlib on the bytes); a missing file is named."""
    import hashlib

    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    (tmp_path / "s" / "model.pt").write_bytes(b"a" * 3_000_000)
    (tmp_path / "d" / "checkpoint.pt").write_bytes(b"b")
    f = model_fingerprints(tmp_path / "s", tmp_path / "d")
    assert f == {"surrogate": hashlib.sha256(b"a" * 3_000_000).hexdigest(),
                 "car_decoder": hashlib.sha256(b"b").hexdigest()}
    (tmp_path / "d" / "checkpoint.pt").unlink()
    with pytest.raises(AeroOptError, match="checkpoint.pt: model file not found"):
        model_fingerprints(tmp_path / "s", tmp_path / "d")


def test_cd_floor_is_the_surrogates_own_record(models: Models, tmp_path: Path) -> None:
    """The floor is the lowest Cd of the surrogate's training cars as the model recorded it; a model without the
    record falls back to the dataset's training split; stay_in_data off means no floor."""
    recorded = Surrogate(models.surrogate.model, models.surrogate.max_value, train_cd=(0.2, 0.4))
    assert data_cd_floor(CFG, tmp_path, recorded) == 0.2
    assert data_cd_floor(replace(CFG, stay_in_data=False), tmp_path, recorded) is None
    unrecorded = Surrogate(models.surrogate.model, models.surrogate.max_value)
    assert data_cd_floor(CFG, tmp_path, unrecorded) is None  # and no dataset cars in the folder


def test_row_measures_the_shape_change(tmp_path: Path) -> None:
    """A results row carries the final/initial bounding-box ratios per axis (x length, y width, z height)."""
    trimesh.creation.box((4.0, 2.0, 1.5)).export(tmp_path / "initial.stl")
    trimesh.creation.box((5.0, 1.0, 1.2)).export(tmp_path / "final.stl")
    state = {"drag_N": 10.0, "Cd": 0.3, "room_penalty_m2": 0.0}
    (tmp_path / "summary.json").write_text(json.dumps({"initial": state, "final": state, "drag_change": 0.0,
                                                       "feasible": True, "seconds": 1.0}))
    row = result_row("car", "scaling", tmp_path)
    assert np.allclose([row["length_ratio"], row["width_ratio"], row["height_ratio"]], [1.25, 0.5, 0.8])
    assert row["cfd_change"] is None and row["stopped_at"] is None
    verified = {**row, "length_ratio": 1.75, "cfd_change": -0.1, "cfd_Cd_initial": 0.3, "cfd_Cd_final": 0.24}
    t = summarize([row, verified], ["scaling"])["scaling"]
    assert np.isclose(t["length_ratio_mean"], 1.5) and t["cfd_runs"] == 1
    assert np.isclose(t["cfd_change_mean"], -0.1) and np.isclose(t["cfd_cd_change_mean"], -0.2)


def fake_simulate(job: SimJob) -> dict:
    """Stand-in for OpenFOAM: 'drag' = the mesh's vertex count, written as a finished case."""
    case, mesh = job.case, job.mesh
    case.mkdir(parents=True, exist_ok=True)
    (case / "summary.json").write_text("{}")
    n = len(trimesh.load(mesh, process=False).vertices)
    return {"Cd": 0.3, "A_ref": 2.0, "drag_N": float(n), "converged": True, "cells": 1}


def test_compare_verify_shares_the_initial_case(models: Models, start: StartShape, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import aero_opt.app.compare as compare
    from aero_opt.cfd import executor, verify
    from aero_opt.cfd.executor import ClusterConfig

    monkeypatch.setattr(compare.Models, "load", classmethod(lambda cls, a, b, **kw: models))
    monkeypatch.setattr(compare, "model_fingerprints", lambda a, b: {"surrogate": "s0", "car_decoder": "d0"})
    monkeypatch.setattr(compare, "start_shape", lambda car, m, r, d, fit: start)
    cases: list[Path] = []

    def recording(job: SimJob) -> dict:
        cases.append(job.case)
        return fake_simulate(job)

    monkeypatch.setattr(verify, "run_job", recording)
    monkeypatch.setattr(executor, "default_cluster", lambda: ClusterConfig(kind="threads"))
    run_compare(["ellipsoid"], ["scaling", "polycube"], tmp_path, CFG, Path("s"), Path("d"), Path("data"),
                do_verify=True, progress=False)
    initial = tmp_path / "ellipsoid" / "cfd_initial"
    assert sorted(cases) == sorted([initial, tmp_path / "ellipsoid" / "scaling" / "cfd_final",
                                    tmp_path / "ellipsoid" / "polycube" / "cfd_final"])
    s = json.loads((tmp_path / "ellipsoid" / "scaling" / "summary.json").read_text())
    assert s["cfd"]["drag_change"] == 0.0  # same vertex count before and after: the fake drag is unchanged
    assert "OpenFOAM" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "comparison.png").is_file() and (tmp_path / "surrogate_vs_cfd.png").is_file()


def test_optimize_verify_runs_both_cases_on_the_executor(models: Models, start: StartShape, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """``optimize --verify``: the start and final shapes go to the CFD executor together; a failed case is one
    error naming its folder."""
    from aero_opt.cfd import executor, verify
    from aero_opt.cfd.executor import ClusterConfig

    monkeypatch.setattr(executor, "default_cluster", lambda: ClusterConfig(kind="threads"))
    monkeypatch.setattr(verify, "run_job", fake_simulate)
    s = run_start("scaling", start, models, replace(CFG, iters=2), tmp_path / "run", do_verify=True, progress=False)
    assert (tmp_path / "run" / "cfd_initial" / "summary.json").is_file()
    assert (tmp_path / "run" / "cfd_final" / "summary.json").is_file()
    assert s["cfd"]["drag_change"] == 0.0 and s["cfd"]["preset"] == CFG.verify_preset

    def failing(job: SimJob) -> dict:
        raise AeroOptError("simpleFoam diverged")

    monkeypatch.setattr(verify, "run_job", failing)
    with pytest.raises(AeroOptError, match=r"cfd_(initial|final): no usable CFD run of 1 \(1 failed, 0 did not "
                                           r"converge\): simpleFoam diverged"):
        run_start("scaling", start, models, replace(CFG, iters=2), tmp_path / "again", do_verify=True,
                  progress=False)


def shifted_simulate(job: SimJob) -> dict:
    """Stand-in for OpenFOAM whose drag depends on the grid: vertex count × (1 + grid shift); the run at the
    largest of three shifts (1/6) does not converge."""
    out = fake_simulate(job)
    return {**out, "drag_N": out["drag_N"] * (1.0 + job.grid_shift), "Cd": 0.3 * (1.0 + job.grid_shift),
            "converged": job.grid_shift < 0.15}


def test_verify_runs_average_grid_shifted_runs_and_leave_out_unconverged_ones(
        models: Models, start: StartShape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aero_opt.cfd import executor, verify
    from aero_opt.cfd.executor import ClusterConfig

    monkeypatch.setattr(executor, "default_cluster", lambda: ClusterConfig(kind="threads"))
    monkeypatch.setattr(verify, "run_job", shifted_simulate)
    cfg = replace(CFG, iters=2, verify_runs=3)
    s = run_start("scaling", start, models, cfg, tmp_path / "run", do_verify=True, progress=False)
    ini = s["cfd"]["initial"]
    assert [r["grid_shift"] for r in ini["runs"]] == pytest.approx([0.0, 1 / 12, 1 / 6], abs=1e-6)
    assert [Path(r["case"]).name for r in ini["runs"]] == ["cfd_initial", "cfd_initial_s0.0833",
                                                           "cfd_initial_s0.1667"]
    assert (ini["runs_asked"], ini["not_converged"], ini["failed"], ini["Cd_stats"]["n"]) == (3, 1, 0, 2)
    assert ini["Cd"] == pytest.approx(0.3 * (1 + 1 / 24))  # the mean of the two converged runs only
    assert ini["Cd_stats"]["std"] == pytest.approx(0.3 / 12 / np.sqrt(2), rel=1e-4)  # shifts kept to 6 decimals
    assert s["cfd"]["runs"] == 3 and s["cfd"]["drag_change"] == pytest.approx(0.0)  # same mesh size, same shifts
    assert s["cfd"]["drag_change_ci95"] > 0 and s["cfd"]["drag_change_se"] > 0

    from aero_opt.app.compare import region_change
    from aero_opt.geometry.regions import BODY_REGIONS

    assert region_change(tmp_path / "run") is None  # the stand-in cases wrote no surface
    for name, base in (("run/cfd_initial", 0.10), ("run/cfd_initial_s0.0833", 0.20), ("run/cfd_initial_s0.1667", 9.0),
                       ("run/cfd_final", 0.05), ("run/cfd_final_s0.0833", 0.05), ("run/cfd_final_s0.1667", 9.0)):
        (tmp_path / name / "regions.json").write_text(json.dumps({r: base if r == "base" else 0.01
                                                                  for r in BODY_REGIONS}))
    change = region_change(tmp_path / "run")  # the unconverged third runs (9.0) are left out
    assert change["base"] == pytest.approx(0.05 - 0.15) and change["nose"] == pytest.approx(0.0)
    row = result_row("car", "scaling", tmp_path / "run")
    assert row["cfd_dCd_base"] == pytest.approx(-0.10)
    t = summarize([row], ["scaling"])
    assert t["scaling"]["cfd_dCd_by_region"]["base"] == pytest.approx(-0.10)
    write_tables([row], t, tmp_path / "tables")
    md = (tmp_path / "tables" / "results.md").read_text()
    assert "| scaling | 1 | +0.0000 | +0.0000 | +0.0000 | -0.1000 | +0.0000 | -0.1000 |" in md
    assert "±" not in md.split("\n")[2]  # one run: no spread to show


def test_bad_verification_settings_are_refused_before_any_work(models: Models, start: StartShape,
                                                               tmp_path: Path) -> None:
    with pytest.raises(AeroOptError, match="--verify-runs 0: must be a whole number of at least 1"):
        run_start("scaling", start, models, replace(CFG, verify_runs=0), tmp_path / "a", do_verify=True)
    with pytest.raises(AeroOptError, match="--verify-preset 'huge': choose from tiny, coarse, verify, medium, fine"):
        run_start("scaling", start, models, replace(CFG, verify_preset="huge"), tmp_path / "b", do_verify=True)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_summary_gives_bootstrap_intervals_and_paired_differences_against_meshsdf() -> None:
    from aero_opt.app.compare import summarize

    def row(car: str, param: str, change: float, se: float | None) -> dict:
        return {"car": car, "param": param, "surrogate_change": -0.2, "cfd_change": change, "cfd_change_se": se,
                "cfd_Cd_initial": 0.3, "cfd_Cd_final": 0.3 * (1 + change), "feasible": True, "stopped_at": None,
                **{f"{e}_ratio": 1.0 for e in ("length", "width", "height")}}

    cars = [f"c{i}" for i in range(8)]
    rows = [row(c, "meshsdf", -0.10 + 0.01 * (i % 3), 0.005) for i, c in enumerate(cars)]
    rows += [row(c, "scaling", -0.10 + 0.01 * (i % 3) + 0.05, 0.005) for i, c in enumerate(cars)]  # 5 pts worse
    rows += [row(c, "vertex", -0.10 + 0.01 * (i % 3) + (0.002 if i % 2 else -0.002), 0.02)
             for i, c in enumerate(cars)]  # the same as meshsdf within noise
    t = summarize(rows, ["meshsdf", "scaling", "vertex"])
    m = t["meshsdf"]
    assert m["cfd_change_mean"] == pytest.approx(np.mean([-0.10 + 0.01 * (i % 3) for i in range(8)]))
    lo, hi = m["cfd_change_ci95"]
    assert lo < m["cfd_change_mean"] < hi and hi - lo < 0.02
    d = t["scaling"]["vs_meshsdf"]
    assert d["mean"] == pytest.approx(0.05) and d["significant"] and d["ci95_low"] > 0.04 and d["n"] == 8
    assert not t["vertex"]["vs_meshsdf"]["significant"]  # a difference inside the per-car noise
    assert "vs_meshsdf" not in m


def test_an_asymmetric_car_is_told_its_shapes_will_be_symmetric(models: Models, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    from dataclasses import replace as dc_replace

    from aero_opt.app.optimize import start_shape
    from aero_opt.meshsdf.config import FitConfig
    from aero_opt.meshsdf.decoder import MirrorSymmetric

    mirrored = dc_replace(models, decoder=MirrorSymmetric(models.decoder))
    fit = FitConfig(samples=4000, steps=3)
    for name, shift in (("centred", 0.0), ("offset", 0.2)):
        box = trimesh.creation.box(extents=(4.0, 1.8, 1.4))
        box.apply_translation((2.0, shift, 0.9))
        box.export(tmp_path / f"{name}.stl")
    with caplog.at_level("WARNING", logger="aero_opt.app.optimize"):
        start_shape(str(tmp_path / "centred.stl"), mirrored, 32, tmp_path, fit)
        start_shape(str(tmp_path / "offset.stl"), models, 32, tmp_path, fit)  # decoder as trained: nothing to say
        assert not caplog.records
        start_shape(str(tmp_path / "offset.stl"), mirrored, 32, tmp_path, fit)
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'offset.stl'}: not mirror-symmetric about y = 0 (a mirrored vertex lies 40.0 cm from the "
        "surface); its MeshSDF shapes will be symmetric (optimize.symmetric: false keeps both sides)"]
