"""Shared helpers for the script tests: load a file of ``scripts/`` (not a package) as a module; a small dataset
folder of shipped cars."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
DATA = Path(__file__).resolve().parents[2] / "data" / "dataset"


@pytest.fixture(scope="session")
def load_script() -> Callable[[str], ModuleType]:
    """A function taking a script's file name (e.g. ``"average_labels.py"``) and returning it imported as a module."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"{Path(name).stem}_script", SCRIPTS / name)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load


@pytest.fixture(scope="session")
def mini_dataset() -> Callable[..., Path]:
    """A function ``(root, train, val, test)`` making ``root/data``: the first ``train + val + test`` shipped dataset
    cars, split in that order (``split.json``); it returns that folder."""
    return _mini_dataset


def _mini_dataset(root: Path, train: int, val: int, test: int) -> Path:
    data = root / "data"
    data.mkdir()
    names = sorted(p.stem for p in DATA.glob("car_*.npz"))[:train + val + test]
    for n in names:
        shutil.copy(DATA / f"{n}.npz", data / f"{n}.npz")
    (data / "split.json").write_text(json.dumps({"train": names[:train], "val": names[train:train + val],
                                                 "test": names[train + val:]}))
    return data
