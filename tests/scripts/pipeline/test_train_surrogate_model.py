"""train_surrogate_model.py: train, evaluate and ship; ``--init`` fine-tunes a shipped model and records it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch

from surrogate.model import Surrogate


def test_trains_ships_and_fine_tunes_from_the_shipped_model(
        load_script: Callable[[str], ModuleType], mini_dataset: Callable[..., Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    mod = load_script("train_surrogate_model.py")
    data = mini_dataset(tmp_path, train=2, val=1, test=1)
    first, frozen = tmp_path / "first.yaml", tmp_path / "frozen.yaml"
    first.write_text("surrogate: {width: 8, blocks: 1}\ntrain_surrogate: {epochs: 1}\n")
    # Adam with lr 0 and no averaging: the fine-tuned weights must be the starting model's
    frozen.write_text("surrogate: {width: 8, blocks: 1}\ntrain_surrogate: {epochs: 1, lr: 0.0, ema_decay: 0.0}\n")
    common = ["--data", str(data), "--real", str(data), "--work", str(tmp_path / "work")]

    monkeypatch.setattr(sys, "argv", ["x", "--config", str(first), *common, "--out", str(tmp_path / "a")])
    assert mod.main() == 0
    rep_a = json.loads((tmp_path / "a" / "report.json").read_text())
    assert rep_a["init"] is None and rep_a["test"]["cars"] == 1
    assert (tmp_path / "work" / "run" / "eval_test" / "metrics.json").is_file()

    monkeypatch.setattr(sys, "argv", ["x", "--config", str(frozen), *common, "--run", "ft", "--init",
                                      str(tmp_path / "a"), "--out", str(tmp_path / "a")])  # ships over its own init
    assert mod.main() == 0
    rep_b = json.loads((tmp_path / "a" / "report.json").read_text())
    assert rep_b["init"] == {"path": str(tmp_path / "a"), "command": rep_a["command"]}
    a, b = Surrogate.load(tmp_path / "work" / "run"), Surrogate.load(tmp_path / "a")
    assert b.max_value == a.max_value
    assert all(torch.equal(p, q) for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values()))

