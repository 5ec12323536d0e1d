"""scripts/studies/study_fidelity.py: the report's numbers from a constructed set of runs."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh


def _case(cd: float, regions: dict[str, float], converged: bool = True) -> dict:
    return {"Cd_last": cd, "Cd_window": cd, "Cd_window_drift": 0.0, "window_settled": True, "regions": regions,
            "Cd_surface_sum": sum(regions.values()), "cells": 1000, "iterations": 300, "converged": converged,
            "seconds": 60.0, "layers": None}


def test_summary_gives_the_noise_ranking_bias_and_where_the_noise_lives(load_script) -> None:
    mod = load_script("study_fidelity.py")
    shapes = ["a", "b", "c", "d"]
    ref_cd = {"a": 0.20, "b": 0.25, "c": 0.30, "d": 0.35}
    noise = [-0.01, 0.0, 0.01]  # one run's deviation per grid shift: std 0.01 exactly
    results = {}
    for s in shapes:
        for j, e in enumerate(noise):
            cd = 1.1 * ref_cd[s] + e  # 10% high, noise all in the base
            rest = 0.5 * ref_cd[s]
            results[("coarse", s, j)] = _case(cd, {"nose": 0.0, "roof_sides": rest, "rear_upper": 0.0,
                                                   "base": cd - rest, "underbody": 0.0})
            results[("medium", s, j)] = _case(ref_cd[s], {r: ref_cd[s] / 5 for r in mod.REGIONS})
    results[("coarse", "d", 2)]["converged"] = False  # excluded from the last-iteration numbers, counted
    rep = mod.summarize(results, ["coarse", "medium"], shapes, 3, "medium")
    assert rep["reference_cd"] == pytest.approx(ref_cd)
    c = rep["presets"]["coarse"]
    assert c["cases"] == 12 and c["converged"] == 11 and c["cost_vs_coarse"] == 1.0
    assert c["window_mean"]["noise_std"] == pytest.approx(0.01)
    assert c["last_iteration"]["excluded_not_converged"] == 1
    vr = c["window_mean"]["vs_reference"]
    assert vr["spearman_one_run"] == pytest.approx(1.0) and vr["spearman_mean_of_runs"] == pytest.approx(1.0)
    assert vr["bias_relative_mean"] == pytest.approx(0.10) and vr["shapes"] == 4
    assert c["regions"]["base"]["variance_share"] == pytest.approx(1.0)
    assert c["regions"]["roof_sides"]["variance_share"] == pytest.approx(0.0, abs=1e-9)
    assert rep["presets"]["medium"]["window_mean"]["noise_std"] == pytest.approx(0.0)


def test_demo_change_interval_from_both_shapes_runs(load_script) -> None:
    mod = load_script("study_fidelity.py")
    regions = {r: 0.0 for r in mod.REGIONS}
    results = {("p", "demo_start", j): _case(v, regions) for j, v in enumerate([0.30, 0.32, 0.28])}
    results.update({("p", "demo_meshsdf", j): _case(v, regions) for j, v in enumerate([0.24, 0.24, 0.24])})
    d = mod._demo_changes(results, "p", 3)["meshsdf"]
    assert d["cd_change"] == pytest.approx(0.24 / 0.30 - 1)
    assert d["ci95"] == pytest.approx(0.8 * 4.302653 * 0.02 / np.sqrt(3) / 0.30, rel=1e-5)  # only the start varies
    assert d["runs"] == [3, 3] and "scaling" not in mod._demo_changes(results, "p", 3)


def test_shapes_travel_with_the_repository_and_recorded_cases_are_not_rerun(
        load_script, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--export-demo writes the demo's six shapes as .ply.gz; a later run reads them, and a case recorded in
    <out>_cases.json counts as finished without its case folder (the report is made from the records)."""
    import json
    import sys

    mod = load_script("study_fidelity.py")
    demo = tmp_path / "demo" / "car_0260"
    for i, name in enumerate(["meshsdf/initial", *(f"{p}/final" for p in mod.PARAMS)]):
        (demo / name).parent.mkdir(parents=True, exist_ok=True)
        sphere = trimesh.creation.icosphere(subdivisions=2, radius=1.0 + 0.1 * i)
        sphere.apply_translation([1.5, 0.0, 1.2])
        sphere.export(demo / f"{name}.stl")
    shapes = tmp_path / "shapes"
    monkeypatch.setattr(sys, "argv", ["s", "--export-demo", str(demo), "--shapes", str(shapes), "--cars"])
    assert mod.main() == 0
    assert sorted(f.name for f in shapes.iterdir()) == sorted(
        ["demo_start.ply.gz", *(f"demo_{p}.ply.gz" for p in mod.PARAMS)])
    from aero_opt.geometry.mesh_import import load_mesh

    assert load_mesh(shapes / "demo_vertex.ply.gz").is_watertight
    regions = {r: 0.0 for r in mod.REGIONS}
    records = {f"tiny/{s}_run{j}": {**_case(0.3 + 0.01 * j + (0.05 if s == "demo_start" else 0.0), regions),
                                     "window": 100}
               for s in ["demo_start", *(f"demo_{p}" for p in mod.PARAMS)] for j in range(2)}
    out = tmp_path / "report" / "fid"
    out.parent.mkdir()
    (tmp_path / "report" / "fid_cases.json").write_text(json.dumps(records))
    monkeypatch.setattr(sys, "argv", ["s", "--presets", "tiny", "--reference", "tiny", "--runs", "2", "--cars",
                                      "--shapes", str(shapes), "--work", str(tmp_path / "work"), "--out", str(out)])
    monkeypatch.setattr(mod, "simulate_many", lambda *a, **k: pytest.fail("a recorded case was run again"))
    assert mod.main() == 0
    rep = json.loads(out.with_suffix(".json").read_text())
    assert rep["presets"]["tiny"]["cases"] == 12
    assert rep["presets"]["tiny"]["demo_drag_change"]["meshsdf"]["cd_change"] == pytest.approx(0.305 / 0.355 - 1)
