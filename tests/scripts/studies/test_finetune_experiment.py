"""The fine-tuning experiment's report: paired per-car differences against the shipped decoder and against the
control at the same learning rate, arms still running left out, the Markdown table and the figure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


def _chamfer(train: list[float], test: list[float]) -> dict:
    def s(v: list[float]) -> dict:
        return {"mean": sum(v) / len(v), "median": sorted(v)[len(v) // 2], "per_shape": v}
    return {"chamfer": {"64": {"train": s(train), "test": s(test)}}, "seconds": 1.0}


def test_paired_differences_against_shipped_and_control(load_script: Callable[[str], ModuleType],
                                                        tmp_path: Path) -> None:
    mod = load_script("finetune_experiment.py")
    scores = {"shipped": _chamfer([1.0, 2.0, 4.0], [2.0, 2.0, 2.0, 2.0]),
              "meshsdf_lr1e-05": _chamfer([0.9, 1.8, 3.6], [1.0, 1.0, 1.0, 3.0]),
              "deepsdf_lr1e-05": _chamfer([1.0, 2.0, 4.0], [2.0, 2.0, 2.0, 2.0]),
              "meshsdf_lr1e-06": _chamfer([1.1, 2.2, 4.4], [2.0, 2.0, 2.0, 2.0])}
    summary = mod.summarize(scores, [1e-5, 1e-6], [64])
    tr = summary["64"]["train"]
    assert tr["meshsdf_lr1e-05"]["vs_shipped"]["mean"] == pytest.approx(-0.1)
    assert tr["meshsdf_lr1e-05"]["vs_shipped"]["lower"] == 3
    assert tr["meshsdf_lr1e-05"]["vs_control"]["mean"] == pytest.approx(-0.1)
    assert tr["meshsdf_lr1e-06"]["vs_shipped"]["mean"] == pytest.approx(0.1)
    assert "vs_control" not in tr["meshsdf_lr1e-06"] and "deepsdf_lr1e-06" not in tr
    te = summary["64"]["test"]["meshsdf_lr1e-05"]["vs_shipped"]
    assert te["mean"] == pytest.approx((-0.5 * 3 + 0.5) / 4) and te["median"] == pytest.approx(-0.5)
    assert te["ci95_low"] < te["mean"] < te["ci95_high"] and te["lower"] == 3 and te["n"] == 4
    result = {"command": "c", "machine": {"cpu_model": "CPU X", "cpu_count": 2}, "train_cars_scored": 3,
              "test_cars": 4, "summary": summary,
              "arms": {"meshsdf_lr1e-05": {"steps": 12, "seconds": 30.0, "loss_first_epoch": 2e-4,
                                           "loss_last_epoch": 1e-4}}}
    md = mod.markdown(result)
    assert "| meshsdf_lr1e-05 | train | 2.100e+00 | 1.800e+00 | -10.0% [" in md and "CPU X" in md
    mod.figure(result, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_the_sampling_floor_falls_with_more_points(load_script: Callable[[str], ModuleType], tmp_path: Path) -> None:
    import trimesh

    mod = load_script("finetune_experiment.py")
    trimesh.creation.box(extents=(4.0, 1.8, 1.4)).export(tmp_path / "car_0000.stl")
    few, many = (mod.sampling_floor(tmp_path, ["car_0000"], n, 0) for n in (500, 8000))
    assert few["cars"] == 1 and few["points"] == 500 and few["per_car"] == [few["mean"]]
    assert 0.0 < many["mean"] < 0.1 * few["mean"]  # ~ spacing² ∝ 1/n
