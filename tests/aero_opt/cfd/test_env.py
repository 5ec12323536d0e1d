"""The OpenFOAM environment: the variables every tool needs, and none of a Dask worker's malloc settings."""

from __future__ import annotations

import shutil

import pytest

from aero_opt.cfd.env import openfoam_env


def test_dask_malloc_setting_does_not_reach_openfoam(monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("simpleFoam") is None:
        pytest.skip("OpenFOAM is not installed")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # what a Dask nanny gives its worker processes
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    env = openfoam_env()
    assert "MALLOC_TRIM_THRESHOLD_" not in env and env["OMP_NUM_THREADS"] == "1"
    assert env["WM_PROJECT_DIR"] and env["WM_PROJECT_VERSION"] and env["OMPI_ALLOW_RUN_AS_ROOT"] == "1"
