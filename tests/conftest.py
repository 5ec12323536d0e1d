"""Shared fixtures: paths to the shipped data and small meshes made on the fly."""

from __future__ import annotations

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
