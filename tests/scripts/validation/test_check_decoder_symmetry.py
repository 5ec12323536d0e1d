"""check_decoder_symmetry.py on the shipped decoder: its shapes are not half models, mirrored they all are."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


def test_the_shipped_decoder_is_asymmetric_and_the_mirror_makes_half_models(
        load_script: Callable[[str], ModuleType], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mod = load_script("check_decoder_symmetry.py")
    out = tmp_path / "sym.json"
    monkeypatch.setattr(sys, "argv", ["check_decoder_symmetry.py", "--every", "125", "--out", str(out)])
    assert mod.main() == 0
    rep = json.loads(out.read_text())
    assert rep["codes"] == [0, 125]
    assert rep["half_model_without_mirror"] == "0/2" and rep["half_model_with_mirror"] == "2/2"
    a = rep["asymmetry_m"]
    assert 0.0 < a["median"] <= a["p99"] <= a["max"] < 0.1  # millimetres to centimetres, not metres
    assert 0.0 <= rep["centre_line_angle_deg"]["median"] < 10.0
