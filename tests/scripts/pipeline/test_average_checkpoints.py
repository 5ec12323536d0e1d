"""scripts/pipeline/average_checkpoints.py: the uniform average of a run's epoch-end weight averages, validated."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest
import torch

from aero_opt.app.config import load_config
from surrogate.model import Surrogate
from surrogate.train import train_surrogate


def test_average_states_is_the_mean_of_floats(load_script: Callable[[str], ModuleType]) -> None:
    mod = load_script("average_checkpoints.py")
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(5)}
    out = mod.average_states([a, b])
    assert torch.equal(out["w"], torch.tensor([2.0, 4.0])) and out["n"] == 5


def test_averages_the_last_epochs_and_scores_them_on_validation(
        load_script: Callable[[str], ModuleType], mini_dataset: Callable[..., Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    mod = load_script("average_checkpoints.py")
    data = mini_dataset(tmp_path, train=2, val=1, test=0)
    yaml = tmp_path / "tiny.yaml"
    yaml.write_text("surrogate: {width: 8, blocks: 1}\ntrain_surrogate: {lr: 0.003, drag_weight: 5.0}\n")
    cfg = load_config(yaml)
    run, snaps = tmp_path / "run", tmp_path / "epochs"
    snaps.mkdir()
    for epochs in (1, 2, 3):  # a copy of checkpoint.pt at the end of every epoch, as a watcher would take it
        train_surrogate(data, run, cfg.surrogate, replace(cfg.train_surrogate, epochs=epochs), resume=epochs > 1,
                        progress=False)
        shutil.copy(run / "checkpoint.pt", snaps / f"e{epochs}.pt")
    monkeypatch.setattr(sys, "argv", ["x", *map(str, sorted(snaps.glob("*.pt"))), "--last", "2", "--config",
                                      str(yaml), "--data", str(data), "--out", str(tmp_path / "swa")])
    assert mod.main() == 0
    rep = json.loads((tmp_path / "swa" / "report.json").read_text())
    hist = json.loads((run / "history.json").read_text())
    assert rep["epochs"] == [2, 3]
    assert rep["last"]["val_loss"] == pytest.approx(hist[-1]["val"], rel=1e-5)  # the training's own figure
    assert rep["last"]["val_cd_mae"] == pytest.approx(hist[-1]["val_cd_mae"], rel=1e-5)
    ema = [torch.load(snaps / f"e{e}.pt", weights_only=False)["ema"]["state"] for e in (2, 3)]
    avg = Surrogate.load(tmp_path / "swa")
    for k, v in avg.model.state_dict().items():
        assert torch.allclose(v, (ema[0][k] + ema[1][k]) / 2, atol=1e-7), k
    assert avg.domain is not None
    monkeypatch.setattr(sys, "argv", ["x", str(snaps / "e3.pt"), "--last", "2", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="only 1 distinct epochs"):
        mod.main()
