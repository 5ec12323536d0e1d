"""aero_opt/core/checkpoint.py: a cut-off, foreign or mismatched torch file is one error naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aero_opt.core.checkpoint import load_torch, load_weights
from aero_opt.core.errors import AeroOptError


def test_load_torch_reads_a_dict_and_refuses_damage(tmp_path: Path) -> None:
    torch.save({"state": {"w": torch.ones(2)}, "epoch": 3}, tmp_path / "ck.pt")
    assert load_torch(tmp_path / "ck.pt", ("state", "epoch"))["epoch"] == 3
    data = (tmp_path / "ck.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(AeroOptError, match=r"cut.pt: cannot read .*a cut-off or corrupt file"):
        load_torch(tmp_path / "cut.pt")
    with pytest.raises(AeroOptError, match=r"ck.pt: not a file of this kind \(missing optimizer\)"):
        load_torch(tmp_path / "ck.pt", ("state", "optimizer"))
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(AeroOptError, match="list.pt: not a saved model or checkpoint"):
        load_torch(tmp_path / "list.pt")
    with pytest.raises(AeroOptError, match="missing.pt: no such file"):
        load_torch(tmp_path / "missing.pt")


def test_weights_of_another_width_are_one_line(tmp_path: Path) -> None:
    small, wide = torch.nn.Linear(3, 4), torch.nn.Linear(3, 8)
    with pytest.raises(AeroOptError) as exc:
        load_weights(wide, small.state_dict(), tmp_path / "model.pt")
    msg = str(exc.value)
    assert msg.startswith(f"{tmp_path / 'model.pt'}: the saved weights are for a model of another size")
    assert "weight" in msg and "\n" not in msg
