"""Surrogate training on a handful of real dataset cars lowers the validation loss; save/load is exact."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from aero_opt.core.errors import AeroOptError
from aero_opt.core.physics import drag_coefficient, surface_force
from surrogate.config import TrainSurrogateConfig
from surrogate.model import Surrogate
from surrogate.samples import coefficient_cd, load_split
from surrogate.splinecnn import PressureSplineCNN, SurrogateConfig
from surrogate.train import train_surrogate

DATA = Path(__file__).resolve().parents[2] / "data" / "dataset"


@pytest.fixture(scope="module")
def four_cars(tmp_path_factory: pytest.TempPathFactory, mini_dataset: Callable[..., Path]) -> Path:
    """Four shipped dataset cars (real ones): three to train on, one to validate."""
    return mini_dataset(tmp_path_factory.mktemp("mini"), 3, 1, 0)


def test_training_lowers_validation_loss_and_resumes(four_cars: Path, tmp_path: Path) -> None:
    cfg = SurrogateConfig(width=16, blocks=2)
    tcfg = TrainSurrogateConfig(epochs=4, lr=3e-3, patience=100)
    train_surrogate(four_cars, tmp_path / "run", cfg, tcfg, progress=False)
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert min(h["val"] for h in hist[1:]) < hist[0]["val"]
    assert (tmp_path / "run" / "loss.png").is_file()
    train_surrogate(four_cars, tmp_path / "run", cfg, TrainSurrogateConfig(epochs=5, lr=3e-3, patience=100),
                    resume=True, progress=False)
    hist2 = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(hist2) == 5 and hist2[:4] == hist
    assert hist2[4]["seconds"] > hist2[3]["seconds"]  # wall time counts across the resume
    cds = [s.car.cd for s in load_split(four_cars, "train")]
    sur = Surrogate.load(tmp_path / "run")
    assert sur.train_cd == (min(cds), max(cds))  # the optimizer's Cd floor
    assert sur.domain is not None and sur.domain.points.shape == (3, 32)  # 3 cars, 2 blocks x 16 channels
    s = load_split(four_cars, "train")[0]
    with torch.no_grad():
        assert sur.domain_score(sur.coefficients_and_embedding(s.verts, s.faces)[1]) == pytest.approx(
            sur.domain.score(sur.domain.points[0] * sur.domain.std + sur.domain.mean), rel=1e-4)


def test_cd_target_is_the_force_of_the_cfd_fields(four_cars: Path) -> None:
    """The Cd in the loss is the project's force integral of the CFD fields (in Pa) on the same mesh, and it agrees
    with the solver's own Cd within the known interpolation error of the stored fields."""
    for s in load_split(four_cars, "train"):
        v, f = s.verts.double(), s.faces
        force = surface_force(v, f, torch.as_tensor(s.car.pressure, dtype=torch.float64),
                              torch.as_tensor(s.car.shear, dtype=torch.float64))
        cd = drag_coefficient(float(force[0]), s.car.a_ref, s.car.rho, s.car.speed)
        assert s.cd_target == pytest.approx(cd, rel=1e-4)
        assert float(coefficient_cd(v, f, s.target.double(), s.car.a_ref)) == pytest.approx(cd, rel=1e-4)
        assert s.cd_target == pytest.approx(s.car.cd, rel=0.12)


def test_save_load_round_trip(four_cars: Path, tmp_path: Path) -> None:
    s = load_split(four_cars, "val")[0]
    from surrogate.splinecnn import PressureSplineCNN

    torch.manual_seed(0)
    sur = Surrogate(PressureSplineCNN(SurrogateConfig(width=8, blocks=1, mirror_canonical=True)).eval(),
                    max_value=0.12, train_cd=(0.14, 0.42))
    sur.save(tmp_path / "model.pt", {"epoch": 7})
    back = Surrogate.load(tmp_path)
    assert back.max_value == 0.12 and back.train_cd == (0.14, 0.42) and back.domain is None
    assert back.model.cfg == sur.model.cfg
    cars = load_split(four_cars, "train")
    dom = back.fit_domain(cars, tmp_path, progress=False)
    again = Surrogate.load(tmp_path)
    assert again.domain is not None and np.allclose(again.domain.points, dom.points, atol=1e-5)
    assert torch.load(tmp_path / "model.pt", weights_only=False)["epoch"] == 7  # the file's other entries kept
    with torch.no_grad():
        assert torch.equal(sur.coefficients(s.verts, s.faces), back.coefficients(s.verts, s.faces))
    v = s.verts.clone().requires_grad_(True)
    force, cd = back.drag(v, s.faces, a_ref=s.car.a_ref)
    assert torch.isfinite(cd)
    cd.backward()  # to the vertices only: a loaded model's weights are frozen and gather no gradient
    assert v.grad is not None and v.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in back.model.parameters())


def test_a_model_saved_before_mirror_canonical_loads_without_it(tmp_path: Path) -> None:
    """Run 5's model.pt has no ``mirror_canonical`` in its configuration: it was trained on plain features."""
    from surrogate.splinecnn import PressureSplineCNN

    Surrogate(PressureSplineCNN(SurrogateConfig(width=8, blocks=1, mirror_canonical=False)), 0.12).save(
        tmp_path / "model.pt")
    ck = torch.load(tmp_path / "model.pt", weights_only=False)
    del ck["config"]["mirror_canonical"]
    torch.save(ck, tmp_path / "model.pt")
    assert SurrogateConfig().mirror_canonical and not Surrogate.load(tmp_path).model.cfg.mirror_canonical


def test_viscous_metrics_expose_a_shear_head_that_cancels_pressure_errors() -> None:
    """A viscous Cd whose error is minus the pressure Cd error correlates at -1, and negatives are counted."""
    from surrogate.evaluate import _viscous_metrics

    pe = np.array([0.03, -0.02, 0.05, -0.04])
    rows = [{"cd_pressure_pred": 0.3 + e, "cd_pressure_cfd": 0.3, "cd_viscous_cfd": 0.02,
             "cd_viscous_pred": 0.02 - e} for e in pe]
    m = _viscous_metrics(rows)
    assert m["corr_error_with_pressure_error"] == pytest.approx(-1.0)
    assert m["pred_negative"] == 2 and m["cfd_std"] == pytest.approx(0.0)
    assert m["pred_std"] == pytest.approx(np.std(0.02 - pe))


def test_cd_error_by_region_puts_a_base_pressure_error_on_the_base() -> None:
    """On a box, a pressure error on the downstream face only is all base; a uniform error on a closed body has no
    net force, so the regions cancel (nose and base opposite, equal). The regions are OpenFOAM's
    (:data:`aero_opt.geometry.regions.BODY_REGIONS`)."""
    import trimesh

    from aero_opt.geometry.regions import BODY_REGIONS
    from surrogate.evaluate import cd_error_by_region

    box = trimesh.creation.box(extents=(4.0, 2.0, 1.0))
    v, f = torch.as_tensor(box.vertices), torch.as_tensor(box.faces)
    q = 0.5 * 1.18 * 15.0**2
    rear = torch.where(v[:, 0] > 1.9, -0.2 * q, 0.0)  # under-predicted base suction -> vertices of the x = 2 face
    parts = cd_error_by_region(v, f, rear, a_ref=2.0, rho=1.18, speed=15.0)
    assert list(parts) == list(BODY_REGIONS)
    # faces with every vertex on x = 2 carry -0.2 q; side faces touching it carry a third or two (no x force)
    assert parts["base"] == pytest.approx(0.2 * 2.0 / 2.0) and parts["nose"] == 0.0
    assert parts["roof_sides"] == parts["rear_upper"] == parts["underbody"] == 0.0
    uniform = cd_error_by_region(v, f, torch.full((len(v),), q), a_ref=2.0, rho=1.18, speed=15.0)
    assert uniform["nose"] == pytest.approx(-uniform["base"]) and uniform["nose"] == pytest.approx(1.0)


def test_evaluate_writes_metrics_and_vtp(four_cars: Path, tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    from surrogate.evaluate import evaluate, r2_score, score_cd
    from surrogate.splinecnn import PressureSplineCNN

    torch.manual_seed(0)
    Surrogate(PressureSplineCNN(SurrogateConfig(width=8, blocks=1)).eval(), 0.12).save(tmp_path / "model.pt")
    m = evaluate(tmp_path, four_cars, "train", tmp_path / "eval")
    assert m["cars"] == 3 and m["pressure_rel_l2"]["mean"] > 0
    runs = [len(s.car.case.get("label_runs") or []) or 1 for s in load_split(four_cars, "train")]
    assert {k: g["cars"] for k, g in m["by_label_runs"].items()} == {str(k): runs.count(k) for k in set(runs)}
    one = m["by_label_runs"][str(runs[0])]
    assert one["pressure_rel_l2_mean"] == pytest.approx(np.mean(
        [r["rel_l2_pressure"] for r in m["per_car"] if r["label_runs"] == runs[0]]))
    styles = [s.car.params["style"] for s in load_split(four_cars, "train")]
    assert {k: g["cars"] for k, g in m["by_style"].items()} == {k: styles.count(k) for k in set(styles)}
    for style, g in m["by_style"].items():
        err = [r["cd_total_pred"] - r["cd_total_cfd"] for r in m["per_car"] if r["style"] == style]
        assert g["cd_total"]["error_std"] == pytest.approx(np.std(err))
        assert g["cd_total"]["mae"] == pytest.approx(np.mean(np.abs(err)))
    assert (tmp_path / "eval" / "parity.png").is_file() and (tmp_path / "eval" / "pressure_worst.png").is_file()
    change = [abs(r["cd_total_pred_mirror"] - r["cd_total_pred"]) for r in m["per_car"]]
    assert m["mirror"]["cd_total_change"]["mae"] == pytest.approx(np.mean(change)) and all(np.isfinite(change))
    signed = [r["cd_total_pred_mirror"] - r["cd_total_pred"] for r in m["per_car"]]
    assert m["mirror"]["cd_total_change"]["mean"] == pytest.approx(np.mean(signed))
    assert m["mirror"]["cd_total_change"]["cars_lower"] == sum(c < 0 for c in signed)
    sym = [0.5 * (r["cd_total_pred_mirror"] + r["cd_total_pred"]) for r in m["per_car"]]
    assert m["mirror"]["cd_total_symmetrized"]["mae"] == pytest.approx(
        np.mean([abs(c - r["cd_total_cfd"]) for c, r in zip(sym, m["per_car"])]))
    for r in m["per_car"]:
        assert r["cd_pressure_pred"] + r["cd_viscous_pred"] == pytest.approx(r["cd_total_pred"])
        assert r["cd_pressure_cfd"] + r["cd_viscous_cfd"] == pytest.approx(r["cd_total_cfd"])
        assert sum(r["cd_pressure_error_by_region"].values()) == pytest.approx(
            r["cd_pressure_pred"] - r["cd_pressure_cfd"], abs=1e-9)
    assert m["cd_viscous"]["cfd_std"] == pytest.approx(np.std([r["cd_viscous_cfd"] for r in m["per_car"]]))
    first = load_split(four_cars, "train")[0]
    root = ET.parse(tmp_path / "eval" / "vtp" / f"{first.name}.vtp").getroot()
    assert root.find("PolyData/Piece").get("NumberOfPoints") == str(len(first.verts))
    y = np.array([1.0, 2.0, 3.0])
    assert r2_score(y, y) == 1.0 and r2_score(y, np.full(3, 2.0)) == 0.0
    # hand-computed: errors (0, 0, 0, 1) -> MAE 1/4, R² = 1 - 1/5; the ranking is unchanged
    s = score_cd(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 5.0]))
    assert s == pytest.approx({"mae": 0.25, "max_error": 1.0, "r2": 0.8, "spearman": 1.0})
    assert score_cd(np.array([0.3, 0.4]), np.array([0.4, 0.3]))["spearman"] is None
    assert m["cd_total"]["ci95"]["r2"][0] <= m["cd_total"]["r2"] <= m["cd_total"]["ci95"]["r2"][1]


def test_bootstrap_interval_brackets_the_score_and_narrows_with_more_cars() -> None:
    from scipy.stats import spearmanr

    from surrogate.evaluate import bootstrap_ci, r2_score

    perfect = bootstrap_ci(np.arange(5.0), np.arange(5.0))  # resamples of one repeated car are left out
    assert perfect == {"r2": [pytest.approx(1.0), pytest.approx(1.0)], "spearman": [pytest.approx(1.0)] * 2}
    y = np.array([0.3, 0.25, 0.4, 0.28, 0.33, 0.31])
    yh = y + np.array([0.01, -0.02, 0.0, 0.015, -0.01, 0.02])
    ci = bootstrap_ci(y, yh, resamples=300, seed=3)
    rng = np.random.default_rng(3)  # the same resamples, scored one by one with the plain functions
    idx = rng.integers(0, 6, size=(300, 6))
    ok = [i for i in idx if len(set(i)) > 1]
    assert ci["r2"] == pytest.approx([np.percentile([r2_score(y[i], yh[i]) for i in ok], q) for q in (2.5, 97.5)])
    assert ci["spearman"] == pytest.approx(
        [np.nanpercentile([spearmanr(y[i], yh[i]).statistic for i in ok], q) for q in (2.5, 97.5)])
    rng = np.random.default_rng(1)
    widths = []
    for n in (20, 2000):
        y = rng.normal(size=n)
        yh = y + 0.3 * rng.normal(size=n)  # R² ≈ 1 - 0.09 = 0.91
        ci = bootstrap_ci(y, yh)
        assert ci["r2"][0] < r2_score(y, yh) < ci["r2"][1]
        widths.append(ci["r2"][1] - ci["r2"][0])
    assert widths[1] < 0.05 < widths[0] and widths[0] / widths[1] > 5  # ~sqrt(100) = 10 times narrower


def test_pearson_interval_matches_resamples_scored_one_by_one() -> None:
    from surrogate.evaluate import pearson_ci

    a = np.array([0.01, -0.03, 0.02, 0.0, -0.01, 0.04, -0.02])
    b = np.array([0.02, -0.05, 0.01, 0.01, -0.03, 0.05, 0.0])
    r, ci = pearson_ci(a, b, resamples=400, seed=5)
    assert r == pytest.approx(np.corrcoef(a, b)[0, 1])
    idx = np.random.default_rng(5).integers(0, 7, size=(400, 7))
    by_hand = [np.corrcoef(a[i], b[i])[0, 1] for i in idx if np.ptp(a[i]) > 0 and np.ptp(b[i]) > 0]
    assert ci == pytest.approx([np.percentile(by_hand, q) for q in (2.5, 97.5)])
    assert ci[0] < r < ci[1] and ci[0] > 0
    assert pearson_ci(a, -2 * a + 1)[0] == pytest.approx(-1.0)


def test_predict_on_a_user_mesh(tmp_path: Path) -> None:
    from aero_opt.geometry.shapes import CarParams, make_car
    from surrogate.evaluate import predict_mesh
    from surrogate.splinecnn import PressureSplineCNN

    torch.manual_seed(0)
    Surrogate(PressureSplineCNN(SurrogateConfig(width=8, blocks=1)).eval(), 0.12).save(tmp_path / "model.pt")
    car = make_car(CarParams(), edge=0.09)
    car.export(tmp_path / "car.stl")
    s = predict_mesh(tmp_path / "car.stl", tmp_path, tmp_path / "pred")
    assert (tmp_path / "pred" / "prediction.vtp").is_file()
    assert s["Cd"] == pytest.approx(s["Cd_pressure"] + s["Cd_viscous"]) and 1.5 < s["A_ref"] < 3.0
    assert s["domain_score"] is None and s["in_training_domain"] is None
    from aero_opt.geometry.dataset import grid_mesh

    assert s["regridded"] and s["vertices"] == len(grid_mesh(car.vertices, car.faces)[0])  # the training kind
    as_is = predict_mesh(tmp_path / "car.stl", tmp_path, tmp_path / "as_is", regrid=False)
    assert not as_is["regridded"] and as_is["vertices"] == len(car.vertices)
    assert as_is["A_ref"] == pytest.approx(s["A_ref"], rel=0.02)
    car.apply_scale(1000.0)  # the same car in millimetres: refused, not predicted as a 4 km car
    car.export(tmp_path / "car_mm.stl")
    with pytest.raises(AeroOptError, match=r"car_mm.stl: the body is 4\d{3} long along x, over the 30 m"):
        predict_mesh(tmp_path / "car_mm.stl", tmp_path, tmp_path / "mm")
    assert not (tmp_path / "mm").exists()


def test_predict_flags_a_mesh_unlike_the_training_cars(four_cars: Path, tmp_path: Path, caplog) -> None:
    """A mesh above the domain threshold gets a warning and ``in_training_domain`` false (an untrained model and a
    domain of three cars: no statistic; the shipped model's domain is tested on real cars below)."""
    import logging

    import trimesh

    from surrogate.evaluate import predict_mesh
    from surrogate.splinecnn import PressureSplineCNN

    torch.manual_seed(0)
    sur = Surrogate(PressureSplineCNN(SurrogateConfig(width=8, blocks=2)).eval(), 0.12)
    sur.save(tmp_path / "model.pt")
    cars = load_split(four_cars, "train") + load_split(four_cars, "val")
    sur.fit_domain(cars[1:], tmp_path, progress=False)
    c = cars[0].car
    trimesh.Trimesh(c.verts, c.faces, process=False).export(tmp_path / "car.stl")
    assert predict_mesh(tmp_path / "car.stl", tmp_path, tmp_path / "car")["domain_score"] > 0
    ball = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    ball.apply_translation([0.5, 0.0, 0.6])  # in the car frame: nose at x = 0, above the ground
    ball.export(tmp_path / "ball.stl")
    with caplog.at_level(logging.WARNING):
        out = predict_mesh(tmp_path / "ball.stl", tmp_path, tmp_path / "ball")
    assert out["in_training_domain"] is False and out["domain_score"] > out["domain_threshold"]
    assert "outside the surrogate's training data" in caplog.text
    assert json.loads((tmp_path / "ball" / "summary.json").read_text())["in_training_domain"] is False


def test_weight_decay_shrinks_weights_not_biases() -> None:
    """With a zero gradient one step multiplies every weight tensor by 1 - lr * weight_decay and leaves the
    biases alone; weight_decay 0 leaves everything alone."""
    from surrogate.splinecnn import PressureSplineCNN
    from surrogate.train import make_optimizer

    torch.manual_seed(0)
    for wd in (0.0, 0.1):
        model = PressureSplineCNN(SurrogateConfig(width=4, blocks=1))
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        opt = make_optimizer(model, TrainSurrogateConfig(lr=0.01, weight_decay=wd))
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
        for n, p in model.named_parameters():
            factor = 1 - 0.01 * wd if p.ndim >= 2 else 1.0
            assert torch.allclose(p, before[n] * factor, atol=1e-7), n
    with pytest.raises(AeroOptError, match="weight_decay"):
        make_optimizer(model, TrainSurrogateConfig(weight_decay=-1.0))


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


def test_shipped_model_flags_the_real_cars_and_not_held_out_dataset_cars() -> None:
    """The shipped surrogate's recorded domain (one point per training car, report.json): the three real cars, which
    it predicts poorly (metrics_real_cars.json), score above the threshold; held-out test cars score below it."""
    from aero_opt.geometry.dataset import split_names

    models = DATA.parent / "models" / "surrogate"
    sur = Surrogate.load(models)
    trained_on = json.loads((models / "report.json").read_text())["training"]["train_cars"]
    assert sur.domain is not None and len(sur.domain.points) == trained_on <= len(split_names(DATA, "train"))
    real = load_split(DATA.parent / "real_cars_cfd", "all")
    test = load_split(DATA, "test")[:3]
    with torch.no_grad():
        scores = {s.name: sur.domain_score(sur.coefficients_and_embedding(s.verts, s.faces)[1]) for s in real + test}
    assert all(scores[s.name] > sur.domain.threshold for s in real), scores  # run 7: 4.7, 2.5, 3.0 vs 1.54
    assert all(scores[s.name] <= sur.domain.threshold for s in test), scores


def test_mirror_sample_is_the_same_drag_and_training_uses_it(four_cars: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A car's mirror image with its CFD fields mirrored has exactly the car's Cd (same force function), mirroring
    twice is the identity, and mirror_augment trains on mirror images (and only then)."""
    import surrogate.train as train_mod
    from surrogate.samples import mirror_sample

    s = load_split(four_cars, "train")[0]
    m = mirror_sample(s)
    assert m.name.endswith("|mirror") and torch.equal(m.verts[:, 1], -s.verts[:, 1])
    assert torch.equal(m.target[:, 2], -s.target[:, 2]) and torch.equal(m.target[:, [0, 1, 3]], s.target[:, [0, 1, 3]])
    cd = float(coefficient_cd(m.verts.double(), m.faces, m.target.double(), s.car.a_ref))
    assert cd == pytest.approx(s.cd_target, rel=1e-5)
    shear_y = surface_force(m.verts.double(), m.faces, m.target[:, 0].double(), m.target[:, 1:].double())[1]
    assert float(shear_y) == pytest.approx(-float(surface_force(s.verts.double(), s.faces, s.target[:, 0].double(),
                                                                s.target[:, 1:].double())[1]), rel=1e-4, abs=1e-6)
    back = mirror_sample(m)
    assert torch.equal(back.verts, s.verts) and torch.equal(back.faces, s.faces)
    calls = []
    monkeypatch.setattr(train_mod, "mirror_sample", lambda x: calls.append(x.name) or mirror_sample(x))
    cfg = SurrogateConfig(width=8, blocks=1)
    train_surrogate(four_cars, tmp_path / "plain", cfg, TrainSurrogateConfig(epochs=2), progress=False)
    assert calls == []
    train_surrogate(four_cars, tmp_path / "mirror", cfg, TrainSurrogateConfig(epochs=2, mirror_augment=True),
                    progress=False)
    assert 0 < len(calls) < 6  # each of the 2 x 3 steps mirrors its car with probability 1/2 (seeded)


class _Fixed(torch.nn.Module):
    """A stand-in model whose prediction is ``pred`` (V, 4) for any car: the loss alone is under test."""

    def __init__(self, pred: torch.Tensor) -> None:
        super().__init__()
        self.pred = pred

    def graph(self, verts: torch.Tensor, faces: torch.Tensor, max_value: float) -> None:
        return None

    def basis(self, g: object) -> None:
        return None

    def forward(self, g: object, basis: object) -> torch.Tensor:
        return self.pred


def test_parts_drag_loss_sees_a_shear_error_that_hides_a_pressure_error(four_cars: Path) -> None:
    """Pressure Cd 10% high and a wall shear that cancels it in the total: the ``total`` drag term is ~0, ``parts``
    charges both parts (2 x the squared pressure error)."""
    from dataclasses import replace

    from surrogate.train import _loss

    s = load_split(four_cars, "train")[0]
    pred = s.target.clone()
    pred[:, 0] *= 1.1
    err_p = float(coefficient_cd(s.verts, s.faces, pred[:, :1], s.car.a_ref)) - s.cd_pressure_target
    unit = s.target.clone()
    unit[:, 1] += 1.0
    per_unit = float(coefficient_cd(s.verts, s.faces, unit, s.car.a_ref)) - s.cd_target  # Cd per unit Cτx
    pred[:, 1] -= err_p / per_unit

    tcfg = TrainSurrogateConfig(bf16=False, drag_loss="total")
    mse = float((pred[:, 0] - s.target[:, 0]).square().mean()) + 0.5 * float(
        (pred[:, 1:] - s.target[:, 1:]).square().mean())
    total, cd_err = _loss(_Fixed(pred), s, 0.1, tcfg, {})
    parts, _ = _loss(_Fixed(pred), s, 0.1, replace(tcfg, drag_loss="parts"), {})
    assert abs(err_p) > 0.01 and cd_err < 1e-5
    assert float(total) == pytest.approx(mse, rel=1e-4)
    assert float(parts) == pytest.approx(mse + 2 * err_p**2, rel=1e-4)


def test_pressure_only_car_loss_leaves_out_the_unknown_shear(four_cars: Path) -> None:
    """An imported pressure-only car (``has_shear`` False): the predicted shear is not charged, and the drag term is
    the pressure part's squared error alone."""
    from dataclasses import replace

    from surrogate.train import _loss

    s = replace(load_split(four_cars, "train")[0], has_shear=False)
    pred = s.target.clone()
    pred[:, 0] *= 1.1
    pred[:, 1:] += 5.0  # any shear: unknown for this car

    err_p = float(coefficient_cd(s.verts, s.faces, pred[:, :1], s.car.a_ref)) - s.cd_pressure_target
    loss, cd_err = _loss(_Fixed(pred), s, 0.1, TrainSurrogateConfig(bf16=False, drag_weight=2.0), {})
    mse = float((pred[:, 0] - s.target[:, 0]).square().mean())
    assert float(loss) == pytest.approx(mse + 2.0 * err_p**2, rel=1e-4)
    assert cd_err == pytest.approx(abs(err_p), rel=1e-5)


def test_training_can_start_from_a_trained_model(four_cars: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from surrogate.splinecnn import PressureSplineCNN

    cfg = SurrogateConfig(width=8, blocks=1)
    torch.manual_seed(3)
    Surrogate(PressureSplineCNN(cfg).eval(), max_value=0.5).save(tmp_path / "init.pt")
    frozen = TrainSurrogateConfig(epochs=1, lr=0.0, ema_decay=0.0)  # Adam with lr 0: the weights stay
    train_surrogate(four_cars, tmp_path / "run", cfg, frozen, progress=False, init=tmp_path / "init.pt")
    a, b = Surrogate.load(tmp_path / "init.pt"), Surrogate.load(tmp_path / "run")
    assert b.max_value == 0.5  # the model's scale, not the new training set's
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))
    with pytest.raises(AeroOptError, match="configuration"):
        train_surrogate(four_cars, tmp_path / "other", SurrogateConfig(width=8, blocks=2), frozen,
                        progress=False, init=tmp_path / "init.pt")
    # a coarse grid (zero at the start) may be added to a trained model: it starts as that model
    train_surrogate(four_cars, tmp_path / "grid", replace(cfg, coarse_grid=(3, 2)), frozen, progress=False,
                    init=tmp_path / "init.pt")
    c = Surrogate.load(tmp_path / "grid")
    s = load_split(four_cars, "val")[0]
    assert c.model.cfg.coarse_grid == (3, 2) and c.model.blocks[0].coarse is not None
    with torch.no_grad():
        assert torch.allclose(c.coefficients(s.verts, s.faces), a.coefficients(s.verts, s.faces), atol=1e-6)
    # a wider model starts as the same function (up to the copies' symmetry-breaking noise)
    train_surrogate(four_cars, tmp_path / "wide", replace(cfg, width=12), frozen, progress=False,
                    init=tmp_path / "init.pt")
    w = Surrogate.load(tmp_path / "wide")
    assert w.model.cfg.width == 12
    with torch.no_grad():
        ref = a.coefficients(s.verts, s.faces)
        assert 0.0 < float((w.coefficients(s.verts, s.faces) - ref).norm() / ref.norm()) < 0.05
    with pytest.raises(AeroOptError, match="drag_loss"):
        train_surrogate(four_cars, tmp_path / "bad", cfg, replace(frozen, drag_loss="both"), progress=False)


def test_finetune_learns_the_new_car_keeps_the_given_model_and_refuses_divergence(four_cars: Path) -> None:
    """A few steps on a new car (no replay) lower the loss on it; the model handed in is untouched; a NaN target
    is refused as a divergence, and a replay fraction without replay cars as bad arguments."""
    from dataclasses import replace

    from surrogate.train import finetune

    torch.manual_seed(0)
    sur = Surrogate(PressureSplineCNN(SurrogateConfig(width=8, blocks=1)), max_value=0.15, train_cd=(0.2, 0.3))
    cars = load_split(four_cars, "train")
    new, replay = cars[:1], cars[1:]
    before = [q.clone() for q in sur.model.state_dict().values()]
    tcfg = TrainSurrogateConfig(bf16=False)
    tuned, stats = finetune(sur, new, replay, steps=12, lr=3e-3, tcfg=tcfg, replay_fraction=0.0)
    assert stats["loss_new_last"] < 0.8 * stats["loss_new_first"] and stats["steps"] == 12
    assert all(torch.equal(a, b) for a, b in zip(before, sur.model.state_dict().values()))
    assert tuned.train_cd == (min(0.2, new[0].car.cd), max(0.3, new[0].car.cd))
    assert not any(q.requires_grad for q in tuned.model.parameters())  # frozen for inference like any Surrogate
    bad = [replace(new[0], name="nan", target=new[0].target * float("nan"))]
    with pytest.raises(AeroOptError, match="fine-tune diverged: the loss on nan became nan"):
        finetune(sur, bad, replay, steps=3, lr=3e-3, tcfg=tcfg, replay_fraction=0.0)
    with pytest.raises(AeroOptError, match=r"replay cars when it is above 0 \(0\)"):
        finetune(sur, new, [], steps=3, lr=3e-3, tcfg=tcfg, replay_fraction=0.5)


def test_finetune_draws_replay_cars_at_the_asked_share(four_cars: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import surrogate.train as train

    drawn: list[str] = []

    def counting(model, s, *a):  # a cheap differentiable loss: this test is about which cars are drawn
        if torch.is_grad_enabled():  # the steps, not the before/after scoring
            drawn.append(s.name)
        return sum(q.sum() for q in model.parameters()) * 0.0 + 1.0, 0.0

    monkeypatch.setattr(train, "_loss", counting)
    sur = Surrogate(PressureSplineCNN(SurrogateConfig(width=4, blocks=1)), max_value=0.15)
    cars = load_split(four_cars, "train")
    train.finetune(sur, cars[:1], cars[1:], steps=200, lr=1e-4, tcfg=TrainSurrogateConfig(bf16=False),
                   replay_fraction=0.3)
    replayed = sum(n != cars[0].name for n in drawn) / len(drawn)
    assert len(drawn) == 200 and 0.22 < replayed < 0.38  # binomial(200, 0.3): ±2.5 std
    assert {n for n in drawn if n != cars[0].name} == {c.name for c in cars[1:]}  # uniform over the pool
