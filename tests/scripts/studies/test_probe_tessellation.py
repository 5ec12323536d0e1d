"""probe_tessellation.py: shifted re-meshes are the same body on other triangles; the statistics add up."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from aero_opt.geometry.dataset import grid_mesh
from surrogate.model import Surrogate
from surrogate.samples import load_split
from surrogate.splinecnn import PressureSplineCNN, SurrogateConfig

DATA = Path(__file__).resolve().parents[3] / "data" / "dataset"


def test_shifted_grid_is_the_same_body_on_other_triangles(load_script) -> None:
    mod = load_script("probe_tessellation.py")
    cell = mod.grid_cell_m()
    assert cell.shape == (3,) and (cell > 0.02).all() and (cell < 0.1).all()
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=0.6)
    centre = np.array([2.6, 0.0, 1.0])
    v0, f0 = mod.shifted_mesh(sphere.vertices + centre, sphere.faces, 0.0)
    g0, _ = grid_mesh(sphere.vertices + centre, sphere.faces)
    assert np.array_equal(v0, g0)  # shift 0 is the dataset grid itself
    v, f = mod.shifted_mesh(sphere.vertices + centre, sphere.faces, 0.5)
    assert len(v) != len(v0) or not np.allclose(v, v0, atol=1e-3)  # other triangles ...
    r = np.linalg.norm(v - centre, axis=1)
    assert np.abs(r - 0.6).max() < 0.1 * cell.min()  # ... of the same body, in the same place
    assert trimesh.Trimesh(v, f).volume == pytest.approx(sphere.volume, rel=0.01)


def test_probe_statistics(load_script, tmp_path: Path) -> None:
    mod = load_script("probe_tessellation.py")
    name = sorted(p.stem for p in DATA.glob("car_*.npz"))[0]
    shutil.copy(DATA / f"{name}.npz", tmp_path / f"{name}.npz")
    (tmp_path / "split.json").write_text(json.dumps({"train": [], "val": [], "test": [name]}))
    torch.manual_seed(0)
    Surrogate(PressureSplineCNN(SurrogateConfig(width=8, blocks=1)).eval(), max_value=0.12).save(
        tmp_path / "model.pt")
    rep = mod.probe(tmp_path, tmp_path, "test", [0.0, 0.5], None)
    (row,) = rep["per_car"]
    s = load_split(tmp_path, "test")[0]
    assert row["cd_total_cfd"] == pytest.approx(s.cd_target)
    assert row["cd_total_pred"] == pytest.approx(mod.total_cd(Surrogate.load(tmp_path), s.car.verts, s.car.faces,
                                                              s.car.a_ref))
    a, b = row["cd_total_pred_shifts"]
    assert a != b and row["cd_total_pred_mean"] == pytest.approx((a + b) / 2)
    assert rep["tessellation_std_pooled"] == pytest.approx(abs(a - b) / np.sqrt(2))
    assert rep["cd_total_shift_mean"]["mae"] == pytest.approx(abs((a + b) / 2 - s.cd_target))
