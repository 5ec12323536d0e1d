"""surrogate.domain: the nearest-neighbour domain score, and the embedding it is computed from."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aero_opt.core.errors import AeroOptError
from surrogate.domain import TrainingDomain


def test_score_is_the_kth_neighbour_distance_over_the_training_median() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)) * np.array([1.0, 2.0, 0.5, 1.0, 3.0, 1.0]) + 4.0
    dom = TrainingDomain.fit(x, k=3)
    z = (x - x.mean(0)) / x.std(0)
    q = x[0] + np.array([0.0, 0.0, 0.0, 0.0, 30.0, 0.0])  # 10 standard deviations out along feature 4
    d = np.sort(np.linalg.norm(z - (q - x.mean(0)) / x.std(0), axis=1))
    assert dom.score(q) == pytest.approx(d[2] / dom.scale)
    own = np.array([np.sort(np.linalg.norm(z - z[i], axis=1))[3] for i in range(len(z))])  # [0] is itself
    assert dom.scale == pytest.approx(np.median(own))
    assert dom.threshold == pytest.approx(np.quantile(own / np.median(own), 0.99))
    fresh = rng.normal(size=(500, 6)) * np.array([1.0, 2.0, 0.5, 1.0, 3.0, 1.0]) + 4.0
    scores = dom.score(fresh)
    assert scores.shape == (500,) and np.mean(scores <= dom.threshold) > 0.9
    assert dom.score(q) > 2 * dom.threshold


def test_round_trip_and_bad_input() -> None:
    rng = np.random.default_rng(1)
    dom = TrainingDomain.fit(rng.normal(size=(30, 4)))
    back = TrainingDomain.from_dict(dom.to_dict())
    q = rng.normal(size=(5, 4))
    assert np.allclose(back.score(q), dom.score(q), rtol=1e-6)
    assert TrainingDomain.fit(rng.normal(size=(4, 4)), k=5).k == 3
    with pytest.raises(AeroOptError, match="at least 2"):
        TrainingDomain.fit(rng.normal(size=(1, 4)))
    with pytest.raises(AeroOptError, match="NaN"):
        TrainingDomain.fit(np.full((10, 4), np.nan))
    with pytest.raises(AeroOptError, match="features"):
        dom.score(np.zeros(3))


def test_embedding_is_the_forward_pass_by_products_and_ignores_vertex_order() -> None:
    from aero_opt.geometry.shapes import CarParams, make_car
    from surrogate.model import Surrogate
    from surrogate.splinecnn import PressureSplineCNN, SurrogateConfig

    torch.manual_seed(0)
    sur = Surrogate(PressureSplineCNN(SurrogateConfig(width=8, blocks=2)).eval(), 0.12)
    car = make_car(CarParams(), edge=0.09)
    v, f = torch.as_tensor(car.vertices, dtype=torch.float32), torch.as_tensor(car.faces)
    perm = torch.randperm(len(v))
    inv = torch.argsort(perm)
    with torch.no_grad():
        c, e = sur.coefficients_and_embedding(v, f)
        c2, e2 = sur.coefficients_and_embedding(v[perm], inv[f])
        assert torch.equal(c, sur.model(sur.graph(v, f)))
    assert e.shape == (16,)
    assert torch.allclose(e, e2, atol=1e-5) and torch.allclose(c, c2[inv], atol=1e-5)
    assert sur.domain_score(e) is None
