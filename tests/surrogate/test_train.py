"""Surrogate training on a handful of real dataset cars lowers the validation loss; save/load is exact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from surrogate.forces import drag_coefficient, surface_force
from surrogate.splinecnn import SurrogateConfig
from surrogate.train import Surrogate, TrainSurrogateConfig, coefficient_cd, load_split, train_surrogate

DATA = Path(__file__).resolve().parents[2] / "data" / "dataset"


@pytest.fixture(scope="module")
def mini_dataset(tmp_path_factory) -> Path:
    """Four shipped dataset cars: three to train on, one to validate."""
    names = sorted(p.stem for p in DATA.glob("car_*.npz"))[:4]  # small cars would be faster; these are real
    if len(names) < 4:
        pytest.fail("the shipped dataset (data/dataset) needs at least 4 cars")
    root = tmp_path_factory.mktemp("mini")
    for n in names:
        shutil.copy(DATA / f"{n}.npz", root / f"{n}.npz")
    (root / "split.json").write_text(json.dumps({"train": names[:3], "val": names[3:], "test": []}))
    return root


def test_training_lowers_validation_loss_and_resumes(mini_dataset: Path, tmp_path: Path) -> None:
    cfg = SurrogateConfig(width=16, blocks=2)
    tcfg = TrainSurrogateConfig(epochs=4, lr=3e-3, patience=100)
    train_surrogate(mini_dataset, tmp_path / "run", cfg, tcfg, progress=False)
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert min(h["val"] for h in hist[1:]) < hist[0]["val"]
    assert (tmp_path / "run" / "loss.png").is_file()
    train_surrogate(mini_dataset, tmp_path / "run", cfg, TrainSurrogateConfig(epochs=5, lr=3e-3, patience=100),
                    resume=True, progress=False)
    hist2 = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(hist2) == 5 and hist2[:4] == hist
    assert hist2[4]["seconds"] > hist2[3]["seconds"]  # wall time counts across the resume
    cds = [s.car.cd for s in load_split(mini_dataset, "train")]
    assert Surrogate.load(tmp_path / "run").train_cd == (min(cds), max(cds))  # the optimizer's Cd floor


def test_cd_target_is_the_force_of_the_cfd_fields(mini_dataset: Path) -> None:
    """The Cd in the loss is the project's force integral of the CFD fields (in Pa) on the same mesh, and it agrees
    with the solver's own Cd within the known interpolation error of the stored fields."""
    for s in load_split(mini_dataset, "train"):
        v, f = s.verts.double(), s.faces
        force = surface_force(v, f, torch.as_tensor(s.car.pressure, dtype=torch.float64),
                              torch.as_tensor(s.car.shear, dtype=torch.float64))
        cd = drag_coefficient(float(force[0]), s.car.a_ref, s.car.rho, s.car.speed)
        assert s.cd_target == pytest.approx(cd, rel=1e-4)
        assert float(coefficient_cd(v, f, s.target.double(), s.car.a_ref)) == pytest.approx(cd, rel=1e-4)
        assert s.cd_target == pytest.approx(s.car.cd, rel=0.12)


def test_save_load_round_trip(mini_dataset: Path, tmp_path: Path) -> None:
    s = load_split(mini_dataset, "val")[0]
    from surrogate.splinecnn import PressureSplineCNN

    torch.manual_seed(0)
    sur = Surrogate(PressureSplineCNN(SurrogateConfig(width=8, blocks=1)).eval(), max_value=0.12,
                    train_cd=(0.14, 0.42))
    sur.save(tmp_path / "model.pt")
    back = Surrogate.load(tmp_path)
    assert back.max_value == 0.12 and back.train_cd == (0.14, 0.42)
    with torch.no_grad():
        assert torch.equal(sur.coefficients(s.verts, s.faces), back.coefficients(s.verts, s.faces))
    force, cd = back.drag(s.verts, s.faces, a_ref=s.car.a_ref)
    assert torch.isfinite(cd)


def test_evaluate_writes_metrics_and_vtp(mini_dataset: Path, tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    import numpy as np

    from surrogate.evaluate import evaluate, r2_score
    from surrogate.splinecnn import PressureSplineCNN

    torch.manual_seed(0)
    Surrogate(PressureSplineCNN(SurrogateConfig(width=8, blocks=1)).eval(), 0.12).save(tmp_path / "model.pt")
    m = evaluate(tmp_path, mini_dataset, "train", tmp_path / "eval")
    assert m["cars"] == 3 and m["pressure_rel_l2"]["mean"] > 0
    runs = [len(s.car.case.get("label_runs") or []) or 1 for s in load_split(mini_dataset, "train")]
    assert {k: g["cars"] for k, g in m["by_label_runs"].items()} == {str(k): runs.count(k) for k in set(runs)}
    one = m["by_label_runs"][str(runs[0])]
    assert one["pressure_rel_l2_mean"] == pytest.approx(np.mean(
        [r["rel_l2_pressure"] for r in m["per_car"] if r["label_runs"] == runs[0]]))
    assert (tmp_path / "eval" / "parity.png").is_file() and (tmp_path / "eval" / "pressure_worst.png").is_file()
    first = load_split(mini_dataset, "train")[0]
    root = ET.parse(tmp_path / "eval" / "vtp" / f"{first.name}.vtp").getroot()
    assert root.find("PolyData/Piece").get("NumberOfPoints") == str(len(first.verts))
    y = np.array([1.0, 2.0, 3.0])
    assert r2_score(y, y) == 1.0 and r2_score(y, np.full(3, 2.0)) == 0.0


def test_predict_on_a_user_mesh(tmp_path: Path) -> None:
    from aero_opt.shapes import CarParams, make_car
    from surrogate.evaluate import predict_mesh
    from surrogate.splinecnn import PressureSplineCNN

    torch.manual_seed(0)
    Surrogate(PressureSplineCNN(SurrogateConfig(width=8, blocks=1)).eval(), 0.12).save(tmp_path / "model.pt")
    make_car(CarParams(), edge=0.09).export(tmp_path / "car.stl")
    s = predict_mesh(tmp_path / "car.stl", tmp_path, tmp_path / "pred")
    assert (tmp_path / "pred" / "prediction.vtp").is_file()
    assert s["Cd"] == pytest.approx(s["Cd_pressure"] + s["Cd_viscous"]) and 1.5 < s["A_ref"] < 3.0


def test_weight_average() -> None:
    """The average follows min(decay, (1+t)/(10+t)) per update; decay 0 is the raw model."""
    from surrogate.splinecnn import PressureSplineCNN
    from surrogate.train import WeightEMA

    torch.manual_seed(0)
    model = PressureSplineCNN(SurrogateConfig(width=4, blocks=1))
    w0 = model.head.bias.detach().clone()
    ema = WeightEMA(model, decay=0.5)
    with torch.no_grad():
        model.head.bias.add_(1.0)
    ema.update(model)  # d = min(0.5, 2/11)
    assert torch.allclose(ema.model.head.bias, w0 + (1 - 2 / 11))
    for _ in range(30):
        ema.update(model)  # d = 0.5 from now on: the gap halves each update
    assert torch.allclose(ema.model.head.bias, w0 + 1 - (2 / 11) * 0.5**30, atol=1e-6)
    raw = WeightEMA(model, decay=0.0)
    with torch.no_grad():
        model.head.bias.add_(1.0)
    raw.update(model)
    assert torch.equal(raw.model.head.bias, model.head.bias)
