"""The campaign on stand-ins: an ellipsoid 'decoder', a tiny random surrogate, and a stand-in OpenFOAM whose
pressure is linear in x (so the drag of a closed body is exactly q·c·volume/L, and the fields agree with it). A full
2-round campaign, a resume after a kill at each stage without redoing cases, the CFD budget, the trust region, the
candidates, and the CMA-ES baseline at the same case count."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

import aero_opt.app.campaign as campaign
from aero_opt.app.campaign import pick_candidates, run_campaign
from aero_opt.app.config import CampaignConfig, TrustRadii
from aero_opt.app.optimize import Models, OptimizeConfig, StartShape
from aero_opt.cfd.verify import SimJob
from aero_opt.core.errors import AeroOptError
from aero_opt.core.physics import Flow, frontal_area
from aero_opt.geometry.dataset import load_car

FLOW = Flow()
C, L = 0.25, 4.0
CFG = OptimizeConfig(iters=3, resolution=40, fast=False, bf16=False, verify_runs=2, verify_preset="tiny")
CCFG = CampaignConfig(rounds=2, per_round=2, finetune_steps=3, replay_cars=2)


def standin_drag(verts: np.ndarray, faces: np.ndarray) -> float:
    """Drag (N) of p = q·C·(1 − x/L) on a closed body: q·C·V/L (divergence theorem)."""
    return FLOW.q * C * abs(trimesh.Trimesh(verts, faces, process=False).volume) / L


def standin_run(job: SimJob) -> dict:
    """Stand-in for a CFD case: writes a finished case and returns its drag (a finished case is reused, as
    :func:`aero_opt.cfd.verify.simulate` does); every case that finishes is logged."""
    done = job.case / "summary.json"
    if done.is_file():
        s = json.loads(done.read_text())
        return {"Cd": s["Cd"], "A_ref": s["A_ref"], "drag_N": s["Cd"] * FLOW.q * s["A_ref"], "converged": True,
                "cells": 1}
    mesh = trimesh.load(job.mesh, process=False)
    job.case.mkdir(parents=True, exist_ok=True)
    a = frontal_area(np.asarray(mesh.vertices), np.asarray(mesh.faces))
    drag = standin_drag(np.asarray(mesh.vertices), np.asarray(mesh.faces)) * (1 + 0.01 * job.grid_shift)
    summary = {"Cd": drag / (FLOW.q * a), "Cd_pressure": drag / (FLOW.q * a), "Cd_viscous": 0.0, "Cl": 0.0,
               "A_ref": a, "speed": FLOW.speed, "rho": FLOW.rho, "half_model": True, "converged": True}
    (job.case / "summary.json").write_text(json.dumps(summary))
    CALLS.append(job.case)
    return {"Cd": summary["Cd"], "A_ref": a, "drag_N": drag, "converged": True, "cells": 1}


def standin_fields(case: Path, verts: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    summary = json.loads((case / "summary.json").read_text())
    return FLOW.q * C * (1 - verts[:, 0] / L), np.zeros((len(verts), 3)), summary


CALLS: list[Path] = []


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch, start: StartShape, tmp_path: Path) -> None:
    from aero_opt.cfd import executor, verify
    from aero_opt.cfd.executor import ClusterConfig

    CALLS.clear()
    monkeypatch.setattr(executor, "default_cluster", lambda: ClusterConfig(kind="threads"))
    monkeypatch.setattr(verify, "run_job", standin_run)
    monkeypatch.setattr(campaign, "case_fields", standin_fields)
    monkeypatch.setattr(campaign, "cached_start", lambda car, m, cfg, d, out, fit: start)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, mini_dataset) -> Path:
    return mini_dataset(tmp_path_factory.mktemp("campaign"), 2, 0, 1)


def run(models: Models, data: Path, out: Path, ccfg: CampaignConfig = CCFG, method: str = "surrogate",
        cfg: OptimizeConfig = CFG) -> dict:
    return run_campaign("ellipsoid", "scaling", out, cfg, ccfg, method, Path("s"), Path("d"), data, flow=FLOW,
                        workers=2, progress=False, models=models)


def test_two_rounds_verify_learn_and_report(models: Models, data: Path, tmp_path: Path, standin: None) -> None:
    weights = [q.clone() for q in models.surrogate.model.state_dict().values()]
    r = run(models, data, tmp_path / "c")
    assert r["cases_used"] == 2 + 2 * 2 * 2 == len(CALLS)  # start + 2 rounds x 2 candidates x 2 runs
    assert [s["step"] for s in r["steps"]] == [0, 1] and r["steps"][-1]["cases_used"] == 10
    state = json.loads((tmp_path / "c" / "state.json").read_text())
    for rnd in state["rounds"]:
        names = [c["name"] for c in rnd["candidates"]]
        assert len(set(names)) == 2
        learn = rnd["learn"]
        assert learn["accepted"] and len(learn["Cd_predicted_before"]) == 2 and learn["test_r2_after"] is not None
        for c in rnd["candidates"]:  # the verified drag is the stand-in's, the mean of the two shifted runs
            shape = torch.load(Path(tmp_path / "c" / f"round_{rnd['round']:02d}" / "candidates" /
                                    f"c{names.index(c['name'])}.pt"), weights_only=False)
            assert c["drag_N"] == pytest.approx(standin_drag(shape["verts"], shape["faces"]) * (1 + 0.01 * 1 / 16),
                                                rel=1e-6)
    for rnd in state["rounds"]:  # records hold paths inside the folder, relative, so the folder can move
        stem = rnd["centre_after"]["stem"]
        assert not Path(stem).is_absolute() and (tmp_path / "c" / stem).with_suffix(".pt").is_file()
    assert len(list((tmp_path / "c" / "data").glob("*.npz"))) == 4
    for c in state["rounds"][0]["candidates"]:  # a campaign car's labels: the mean of its two runs
        car = load_car(tmp_path / "c" / "data" / f"{c['name']}.npz")
        assert car.case["Cd"] == pytest.approx(c["Cd"], rel=1e-9) and len(car.case["label_runs"]) == 2
        assert car.case["label_runs"][0]["grid_shift"] == 0.0 < car.case["label_runs"][1]["grid_shift"]
    assert (tmp_path / "c" / "round_00" / "surrogate.pt").is_file()
    assert all(torch.equal(a, b) for a, b in zip(weights, models.surrogate.model.state_dict().values()))
    md = (tmp_path / "c" / "campaign.md").read_text()
    assert md.startswith("# Campaign: surrogate, scaling on ellipsoid")
    first = state["rounds"][0]  # each round's learning is in the table: radius, errors before → after, forgetting
    row = next(line for line in md.splitlines() if line.startswith("| 0 |"))
    assert row.count("|") == 14 and f"{first['learn']['Cd_abs_error_before']:.4f} → " in row
    assert f"{first['learn']['test_r2_before']:.3f} → {first['learn']['test_r2_after']:.3f}" in row
    assert (tmp_path / "c" / "campaign.png").is_file()
    assert (tmp_path / "c" / "before_after.png").is_file() == (r["best"]["name"] != "start")
    # the best shape is never worse than the start, and its change has an interval
    assert r["best"]["drag_N"] <= r["start"]["drag_N"]


@pytest.mark.parametrize("stage", ["verify", "learn"])
def test_a_kill_at_any_stage_resumes_without_redoing_cases(models: Models, data: Path, tmp_path: Path,
                                                         standin: None, monkeypatch: pytest.MonkeyPatch,
                                                         stage: str) -> None:
    from aero_opt.cfd import verify

    class Killed(Exception):
        pass

    if stage == "verify":
        def dying(job: SimJob) -> dict:
            if len(CALLS) >= 5:
                raise Killed
            return standin_run(job)
        monkeypatch.setattr(verify, "run_job", dying)
    else:
        real = campaign.finetune
        calls = []

        def dying_finetune(*a, **k):
            calls.append(1)
            if len(calls) == 2:
                raise Killed
            return real(*a, **k)
        monkeypatch.setattr(campaign, "finetune", dying_finetune)
    with pytest.raises(Killed):
        run(models, data, tmp_path / "c")
    monkeypatch.setattr(verify, "run_job", standin_run)
    if stage == "learn":
        monkeypatch.setattr(campaign, "finetune", real)
    r = run(models, data, tmp_path / "c")
    assert r["cases_used"] == 10
    assert len(CALLS) == len({str(c) for c in CALLS}) == 10  # no finished case redone, across kill and resume


def test_the_budget_is_never_exceeded(models: Models, data: Path, tmp_path: Path, standin: None) -> None:
    r = run(models, data, tmp_path / "c", replace(CCFG, budget_cases=7))
    assert r["cases_used"] == 6 <= 7 and len(CALLS) == 6  # start 2, round 0: 2 shapes x 2 runs; round 1: none fit
    assert len(r["steps"]) == 1


def test_the_trust_region_stops_a_surrogate_that_rewards_leaving_it(models: Models, data: Path, tmp_path: Path,
                                                                    standin: None) -> None:
    """With a radius far below what Adam's steps cover, every candidate lies within it and the furthest at its
    edge."""
    ccfg = replace(CCFG, rounds=1, radius=TrustRadii(scaling=0.001))
    run(models, data, tmp_path / "c", ccfg, cfg=replace(CFG, iters=6))
    cands = json.loads((tmp_path / "c" / "round_00" / "candidates.json").read_text())
    dist = [c["distance"] for c in cands]
    assert max(dist) <= 0.001 * (1 + 1e-6) and max(dist) == pytest.approx(0.001, rel=1e-3)
    summary = json.loads((tmp_path / "c" / "round_00" / "optimize" / "summary.json").read_text())
    assert summary["trust_region"]["clipped_steps"] > 0 and summary["stopped_at"] is None


def test_pick_candidates_best_first_then_spread_and_distinct() -> None:
    snaps = [{"iteration": i, "drag_N": 10.0 - i, "feasible": i != 5, "params": np.array([0.01 * i]),
              "distance": 0.01 * i} for i in range(7)]
    got = pick_candidates(snaps, 3, min_gap=0.005)
    assert [s["iteration"] for s in got] == [6, 2, 4]  # best (6), then the iterates nearest 1/3 and 2/3 of 0.06
    assert all(s["feasible"] for s in got) and 0 not in [s["iteration"] for s in got]
    same = [{**s, "params": np.array([0.0])} for s in snaps]
    assert len(pick_candidates(same, 3, min_gap=0.005)) == 1  # nothing distinct from the best


def test_cma_baseline_uses_the_same_number_of_cases(models: Models, data: Path, tmp_path: Path,
                                                    standin: None) -> None:
    ccfg = replace(CCFG, budget_cases=10, cma_popsize=4)
    r = run(models, data, tmp_path / "cma", ccfg, method="cma")
    assert 10 - 2 < r["cases_used"] <= 10 and len(CALLS) == r["cases_used"]
    state = json.loads((tmp_path / "cma" / "state.json").read_text())
    assert state["generations"] and state["generations"][0]["evaluated"] == 4
    assert r["best"]["drag_N"] <= r["start"]["drag_N"]
    n = len(CALLS)
    r2 = run(models, data, tmp_path / "cma", ccfg, method="cma")  # a finished campaign resumes to its report
    assert len(CALLS) == n and r2["cases_used"] == r["cases_used"]
    with pytest.raises(AeroOptError, match="--method cma needs --budget-cases"):
        run(models, data, tmp_path / "cma2", CCFG, method="cma")


def test_only_the_surrogate_a_resumed_campaign_reads_is_carried(tmp_path: Path) -> None:
    from aero_opt.app.campaign import superseded_surrogate

    camp = tmp_path / "car" / "meshsdf" / "surrogate"
    for rd in ("round_00", "round_01", "round_02"):
        (camp / rd).mkdir(parents=True)
        (camp / rd / "learn.json").write_text("{}")
    for rd in ("round_00", "round_01"):  # round 2's fine-tune was discarded: it wrote no surrogate
        (camp / rd / "surrogate.pt").write_bytes(b"weights")
    assert superseded_surrogate(camp / "round_00" / "surrogate.pt")
    assert not superseded_surrogate(camp / "round_01" / "surrogate.pt")
    assert not superseded_surrogate(camp / "round_00" / "learn.json")
    assert not superseded_surrogate(tmp_path / "surrogate.pt")  # not a round's
    (camp / "campaign.json").write_text("{}")  # finished: every round is in the state
    assert superseded_surrogate(camp / "round_01" / "surrogate.pt")
