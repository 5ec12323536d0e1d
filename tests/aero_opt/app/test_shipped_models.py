"""The shipped models end to end (data/models/surrogate and data/models/car_decoder): one Adam step of every
parameterization, at its configured learning rate, lowers the surrogate drag of a dataset car while keeping the
room constraints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aero_opt.app.demo import DEMO_CAR
from aero_opt.app.optimize import Models, OptimizeConfig, StartShape, evaluate_objective, start_shape
from aero_opt.core.physics import Flow
from aero_opt.geometry.dataset import split_names
from constraints.regions import RoomConstraint
from parameterizations import NAMES, parameterization_class


@pytest.fixture(scope="module")
def models(data_dir: Path) -> Models:
    return Models.load(data_dir / "models" / "surrogate", data_dir / "models" / "car_decoder")


@pytest.fixture(scope="module")
def start(models: Models, data_dir: Path) -> StartShape:
    return start_shape(models.names[0], models, OptimizeConfig().resolution, data_dir / "dataset")


@pytest.mark.parametrize("name", NAMES)
def test_one_step_lowers_the_surrogate_drag(name: str, models: Models, start: StartShape) -> None:
    cfg = OptimizeConfig()
    room = RoomConstraint(start.verts, start.faces)
    param = parameterization_class(name).build(start, models, cfg)
    opt = torch.optim.Adam(param.parameters(), lr=getattr(cfg.lr, name))
    ev0 = evaluate_objective(param, models, room, cfg, None, Flow())
    assert ev0.room == 0.0
    opt.zero_grad()
    ev0.objective.backward()
    opt.step()
    ev1 = evaluate_objective(param, models, room, cfg, ev0.drag, Flow())
    assert ev1.drag < ev0.drag
    assert ev1.room <= cfg.feasible_tol


def test_demo_car_is_held_out(data_dir: Path) -> None:
    """The demo's fixed car is a test-split car of the shipped dataset (the decoder and surrogate never saw it)."""
    assert DEMO_CAR in split_names(data_dir / "dataset", "test")
    assert DEMO_CAR not in split_names(data_dir / "dataset", "train") + split_names(data_dir / "dataset", "val")
