"""Shared fixtures: paths to the shipped data, small meshes made on the fly, a small dataset of shipped cars."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The repository's shipped data folder."""
    return DATA


@pytest.fixture
def float64():
    """Run a test with float64 as torch's default dtype, restoring the previous default afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


_HOLD_LOCK = """
import sys, time
from aero_opt.core.atomic import folder_lock
with folder_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


@contextmanager
def _locked_elsewhere(folder: Path) -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def locked_elsewhere() -> Callable[[Path], contextlib.AbstractContextManager[int]]:
    """A context manager ``(folder)`` during which another process holds ``folder``'s aero-opt lock (as a second
    job writing it would); it yields that process's pid."""
    return _locked_elsewhere


@pytest.fixture(scope="session")
def mini_dataset() -> Callable[..., Path]:
    """A function ``(root, train, val, test)`` making ``root/data``: the first ``train + val + test`` shipped dataset
    cars, split in that order (``split.json``); it returns that folder."""
    return _mini_dataset


def _mini_dataset(root: Path, train: int, val: int, test: int) -> Path:
    data = root / "data"
    data.mkdir()
    names = sorted(p.stem for p in (DATA / "dataset").glob("car_*.npz"))[:train + val + test]
    if len(names) < train + val + test:
        pytest.fail(f"the shipped dataset (data/dataset) needs at least {train + val + test} cars")
    for n in names:
        shutil.copy(DATA / "dataset" / f"{n}.npz", data / f"{n}.npz")
    (data / "split.json").write_text(json.dumps({"train": names[:train], "val": names[train:train + val],
                                                 "test": names[train + val:]}))
    return data
