"""Shared fixtures: paths to the shipped data and small meshes made on the fly."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The repository's shipped data folder."""
    return DATA
