"""Typed YAML configs: the shipped files load; unknown keys and wrong types name the key and the file."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
import yaml

from aero_opt.app.config import Config, load_config
from aero_opt.core.errors import AeroOptError

REPO = Path(__file__).resolve().parents[3]


def test_shipped_configs_load() -> None:
    for path in sorted((REPO / "configs").rglob("*.yaml")):  # the run configs under configs/runs too
        assert isinstance(load_config(path), Config)


def _keys(cls: type, prefix: str = "") -> set[str]:
    """Dotted YAML keys of a config dataclass, nested sections included."""
    out = set()
    for f in dataclasses.fields(cls):
        key = prefix + {"mesh_import": "import"}.get(f.name, f.name)
        tp = typing.get_type_hints(cls)[f.name]
        out |= _keys(tp, key + ".") if dataclasses.is_dataclass(tp) else {key}
    return out


def _yaml_keys(data: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in data.items():
        out |= _yaml_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
    return out


def test_default_yaml_spells_out_every_default() -> None:
    path = REPO / "configs" / "default.yaml"
    assert load_config(path) == Config()
    assert _yaml_keys(yaml.safe_load(path.read_text())) == _keys(Config)


@pytest.mark.parametrize("text,match", [
    ("cfd:\n  preset: huge\n", "cfd.preset: must be one of tiny, coarse, verify, medium, fine, got 'huge'"),
    ("cars:\n  style: coupe\n", "cars.style: must be one of fastback, notchback, estate, all, got 'coupe'"),
])
def test_choices_are_checked(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(AeroOptError, match=match):
        load_config(path)


@pytest.mark.parametrize("text,match", [
    ("cars:\n  n: 3\n  colour: red\n", "cars.colour: unknown key"),
    ("wheels:\n  n: 4\n", "wheels: unknown key"),
    ("cars:\n  n: ten\n", "cars.n: expected int"),
    ("cars:\n  n: true\n", "cars.n: expected int"),
    ("import:\n  force_remesh: 3\n", "import.force_remesh: expected bool"),
    ("train_surrogate:\n  bf16: auto\n", "train_surrogate.bf16: expected bool | None"),
    ("cars: 5\n", "cars: expected a mapping"),
])
def test_bad_configs_name_file_and_key(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(AeroOptError, match=match) as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_int_is_accepted_for_float(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("cars:\n  wing_fraction: 1\n")
    assert load_config(path).cars.wing_fraction == 1.0


def test_bf16_null_means_decide_by_cpu(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("train_surrogate:\n  bf16: null\noptimize:\n  bf16: false\n")
    cfg = load_config(path)
    assert cfg.train_surrogate.bf16 is None and cfg.optimize.bf16 is False
