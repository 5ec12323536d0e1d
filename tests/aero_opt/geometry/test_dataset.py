"""Dataset format: a round trip keeps geometry to 0.1 mm and fields to float16; the split is stable."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aero_opt.core.errors import AeroOptError
from aero_opt.geometry.dataset import average_labels, car_stl, load_car, make_split, save_car, split_cd, split_names
from aero_opt.geometry.shapes import CarParams, make_car

SUMMARY = {"Cd": 0.31, "Cd_pressure": 0.29, "Cd_viscous": 0.02, "Cl": 0.1, "A_ref": 2.1, "speed": 15.0,
           "rho": 1.18}


def test_round_trip(tmp_path) -> None:
    car = make_car(CarParams())
    rng = np.random.default_rng(0)
    p = rng.normal(size=len(car.vertices)) * 100
    tau = rng.normal(size=(len(car.vertices), 3))
    save_car(tmp_path / "car_0007.npz", car.vertices, car.faces, p, tau, SUMMARY, {"style": "fastback"})
    c = load_car(tmp_path / "car_0007.npz")
    assert np.abs(c.verts - car.vertices).max() < 1e-4
    assert np.array_equal(c.faces, car.faces)
    assert np.allclose(c.pressure, p, rtol=1e-3, atol=0.05) and np.allclose(c.shear, tau, rtol=1e-3, atol=1e-3)
    assert c.cd == 0.31 and c.a_ref == 2.1 and c.params == {"style": "fastback"}
    # Bodies outside the car box are stored in float32 metres.
    save_car(tmp_path / "far.npz", car.vertices + 100.0, car.faces, p, tau, SUMMARY, {})
    assert np.allclose(load_car(tmp_path / "far.npz").verts, car.vertices + 100.0, atol=1e-4)


def test_car_stl_writes_the_stored_mesh_once(tmp_path) -> None:
    """The STL holds the stored car (same vertices to STL's float32, same faces up to welding), and a second call
    reuses the file instead of rewriting it."""
    import trimesh

    car = make_car(CarParams())
    save_car(tmp_path / "car_0003.npz", car.vertices, car.faces, np.zeros(len(car.vertices)),
             np.zeros((len(car.vertices), 3)), SUMMARY, {})
    work = tmp_path / "work"
    work.mkdir()
    stl = car_stl(tmp_path, "car_0003", work)
    assert stl == work / "car_0003.stl"
    m = trimesh.load(stl, force="mesh")
    stored = load_car(tmp_path / "car_0003.npz")
    assert len(m.faces) == len(stored.faces) and m.is_watertight
    assert np.allclose(np.sort(m.vertices, axis=0), np.sort(stored.verts, axis=0), atol=1e-5)
    assert m.volume == pytest.approx(trimesh.Trimesh(stored.verts, stored.faces).volume, rel=1e-5)
    mtime = stl.stat().st_mtime_ns
    assert car_stl(tmp_path, "car_0003", work) == stl and stl.stat().st_mtime_ns == mtime


def test_split_is_stable_and_proportional() -> None:
    names = [f"car_{i:04d}" for i in range(300)]
    split = make_split(names)
    assert sorted(sum(split.values(), [])) == names
    assert 210 < len(split["train"]) < 270 and 15 < len(split["test"]) < 45
    grown = make_split(names + [f"car_{i:04d}" for i in range(300, 320)])
    assert all(n in grown[k] for k, v in split.items() for n in v)  # adding cars moves none


@pytest.mark.parametrize("cut", [None, 100, 0.5, 0.97])
def test_unreadable_file(tmp_path, cut: float | None) -> None:
    """Garbage, and a real car file cut off at 100 bytes, half or 97% of its length: one AeroOptError naming the
    file (not a zipfile, zlib or key error)."""
    if cut is None:
        (tmp_path / "x.npz").write_text("garbage")
    else:
        car = make_car(CarParams())
        n = len(car.vertices)
        save_car(tmp_path / "whole.npz", car.vertices, car.faces, np.zeros(n), np.zeros((n, 3)), SUMMARY, {})
        data = (tmp_path / "whole.npz").read_bytes()
        (tmp_path / "x.npz").write_bytes(data[:cut if isinstance(cut, int) else int(cut * len(data))])
    with pytest.raises(AeroOptError, match=r"x.npz: cannot read dataset file \(.*a cut-off or corrupt file"):
        load_car(tmp_path / "x.npz")


def test_split_cd_reads_the_split_or_every_car(tmp_path) -> None:
    car = make_car(CarParams())
    zeros = np.zeros(len(car.vertices))
    for i, cd in enumerate((0.31, 0.22, 0.45)):
        save_car(tmp_path / f"car_{i:04d}.npz", car.vertices, car.faces, zeros, np.zeros((len(zeros), 3)),
                 {**SUMMARY, "Cd": cd}, {})
    assert sorted(split_cd(tmp_path)) == [0.22, 0.31, 0.45]  # no split.json: every car
    (tmp_path / "split.json").write_text(json.dumps({"train": ["car_0000", "car_0002"], "test": ["car_0001"]}))
    assert list(split_cd(tmp_path)) == [0.31, 0.45] and list(split_cd(tmp_path, "test")) == [0.22]
    assert len(split_cd(tmp_path, "val")) == 0  # a split the file does not have
    (tmp_path / "car_0002.npz").write_text("garbage")
    with pytest.raises(AeroOptError, match="car_0002.npz"):
        split_cd(tmp_path)


def test_split_names_lists_the_split_and_names_the_problem(tmp_path) -> None:
    with pytest.raises(AeroOptError, match="no .npz cars"):
        split_names(tmp_path, "all")
    for name in ("car_0001", "car_0000"):
        (tmp_path / f"{name}.npz").write_bytes(b"")
    assert split_names(tmp_path, "all") == ["car_0000", "car_0001"]
    with pytest.raises(AeroOptError, match="no split.json"):
        split_names(tmp_path, "train")
    (tmp_path / "split.json").write_text(json.dumps({"train": ["car_0001"], "test": ["car_0000"]}))
    assert split_names(tmp_path, "train") == ["car_0001"] and split_names(tmp_path, "test") == ["car_0000"]
    with pytest.raises(AeroOptError, match="split.json: no split 'val'"):
        split_names(tmp_path, "val")
    (tmp_path / "split.json").write_text("{broken")
    with pytest.raises(AeroOptError, match="split.json: unreadable"):
        split_names(tmp_path, "train")


def test_average_labels_means_fields_and_scalars_once(tmp_path) -> None:
    car = make_car(CarParams())
    n = len(car.vertices)
    rng = np.random.default_rng(1)
    p0, t0 = rng.normal(size=n) * 100, rng.normal(size=(n, 3))
    path = tmp_path / "car_0000.npz"
    save_car(path, car.vertices, car.faces, p0, t0, SUMMARY, {"style": "estate"})
    p1, t1 = p0 + 30.0, t0 - 0.3
    rec = average_labels(path, [(0.33, p1, t1, {**SUMMARY, "Cd": 0.35, "Cd_pressure": 0.33}),
                                (0.67, p0 - 15.0, t0, {**SUMMARY, "Cd": 0.27})])
    c = load_car(path)
    assert np.allclose(c.pressure, p0 + 5.0, rtol=2e-3, atol=0.1)
    assert np.allclose(c.shear, t0 - 0.1, rtol=2e-3, atol=2e-3)
    assert np.isclose(c.cd, (0.31 + 0.35 + 0.27) / 3) and np.isclose(c.cd_pressure, (0.29 + 0.33 + 0.29) / 3)
    assert np.abs(c.verts - car.vertices).max() < 1e-4 and c.params == {"style": "estate"}
    assert [r["grid_shift"] for r in rec] == [0.0, 0.33, 0.67] and rec[1]["Cd"] == 0.35
    assert np.isclose(rec[1]["pressure_rel_l2"], 30.0 * np.sqrt(n) / np.linalg.norm(p0), rtol=2e-3)
    with pytest.raises(AeroOptError, match="already include a run at grid shift 0.67"):
        average_labels(path, [(0.5, p1, t1, SUMMARY), (0.67, p1, t1, SUMMARY)])
    assert len(load_car(path).case["label_runs"]) == 3  # the failed call wrote nothing
    with pytest.raises(AeroOptError, match="another mesh"):
        average_labels(path, [(0.5, p1[:-1], t1, SUMMARY)])


def test_average_labels_extends_an_average_to_the_mean_of_all_runs(tmp_path) -> None:
    """Three runs then three more give the same labels as six at once (the 6-run test labels)."""
    car = make_car(CarParams())
    n = len(car.vertices)
    rng = np.random.default_rng(2)
    fields = [(rng.normal(size=n) * 100 + 50, rng.normal(size=(n, 3))) for _ in range(6)]
    cds = [0.30, 0.33, 0.28, 0.31, 0.35, 0.29]
    extra = [(s, p, t, {**SUMMARY, "Cd": cd}) for s, (p, t), cd in
             zip((0.33, 0.67, 0.17, 0.5, 0.83), fields[1:], cds[1:])]
    one, two = tmp_path / "car_0000.npz", tmp_path / "car_0001.npz"
    for path in (one, two):
        save_car(path, car.vertices, car.faces, fields[0][0], fields[0][1], {**SUMMARY, "Cd": cds[0]}, {})
    average_labels(one, extra)
    average_labels(two, extra[:2])
    rec = average_labels(two, extra[2:])
    a, b = load_car(one), load_car(two)
    assert np.allclose(b.pressure, np.mean([f[0] for f in fields], axis=0), rtol=2e-3, atol=0.1)
    assert np.allclose(a.pressure, b.pressure, rtol=2e-3, atol=0.1)
    assert np.allclose(a.shear, b.shear, rtol=2e-3, atol=2e-3)
    assert np.isclose(b.cd, np.mean(cds)) and np.isclose(a.cd, b.cd)
    assert [r["grid_shift"] for r in rec] == [0.0, 0.33, 0.67, 0.17, 0.5, 0.83]
    assert rec[2]["pressure_rel_l2"] > 0 and rec[3]["pressure_rel_l2"] is None
    first, last = np.mean([f[0] for f in fields[:3]], axis=0), np.mean([f[0] for f in fields[3:]], axis=0)
    want = np.linalg.norm(first - last) / np.linalg.norm(last)
    assert rec[2]["batch_rel_l2"] is None and all(np.isclose(r["batch_rel_l2"], want, rtol=1e-2) for r in rec[3:])
