"""Shared helper for the script tests: load a file of ``scripts/`` (not a package) as a module (the small dataset
folder of shipped cars, ``mini_dataset``, lives in ``tests/conftest.py``)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="session")
def load_script() -> Callable[[str], ModuleType]:
    """A function taking a script's file name (e.g. ``"average_labels.py"``, found in any of ``scripts/``'s
    folders) and returning it imported as a module."""

    def load(name: str) -> ModuleType:
        (path,) = SCRIPTS.glob(f"*/{name}")
        spec = importlib.util.spec_from_file_location(f"{Path(name).stem}_script", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load
