"""The CFD executor: sizing, a real tiny batch through Dask, and a killed batch leaves no solver behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aero_opt.cfd.batch import run_batch
from aero_opt.cfd.executor import local_slots
from aero_opt.core.errors import AeroOptError
from aero_opt.geometry.shapes import make_ahmed


def test_local_slots_fill_the_cores_and_refuse_oversubscription() -> None:
    assert local_slots(None, 1, cores=8) == 8 and local_slots(None, 3, cores=8) == 2
    assert local_slots(2, 2, cores=4) == 2
    with pytest.raises(AeroOptError, match="cfd.workers 3 × cfd.procs 2 = 6 cores, but this machine has 4"):
        local_slots(3, 2, cores=4)
    with pytest.raises(AeroOptError, match="cfd.procs 5: this machine has 4 cores"):
        local_slots(None, 5, cores=4)


def _ahmed_meshes(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for slant in (25.0, 35.0):
        make_ahmed(slant).export(folder / f"ahmed_{slant:.0f}.stl")
    return folder


def test_a_real_tiny_batch_runs_through_dask(tmp_path: Path) -> None:
    s = run_batch(_ahmed_meshes(tmp_path / "meshes"), tmp_path / "out", preset="tiny", speed=40.0, workers=2,
                  progress=False)
    assert s["done"] == 2 and s["failed"] == 0
    assert all(0.2 < r["Cd"] < 0.7 for r in s["cases"]), s["cases"]


def _processes_in(folder: Path, name: str | None = None) -> list[int]:
    """PIDs of the processes (named ``name``, if given) whose working directory lies in ``folder``: the OpenFOAM
    tools of its cases."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = os.readlink(entry / "cwd")
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if cwd.startswith(str(folder)) and (name is None or comm == name):
                found.append(int(entry.name))
    return found


def test_killing_the_batch_leaves_no_solver_running(tmp_path: Path) -> None:
    """``kill -9`` of a batch while its simpleFoam runs (coarse preset: tens of seconds of solver per case): the
    Dask workers die with the batch and their OpenFOAM processes with them, within seconds."""
    meshes, out = _ahmed_meshes(tmp_path / "meshes"), tmp_path / "out"
    cmd = [sys.executable, "-m", "aero_opt.app", "cfd", "batch", str(meshes), "--out", str(out), "--preset", "coarse",
           "--speed", "40", "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not _processes_in(out, "simpleFoam"):
            time.sleep(0.2)
        assert _processes_in(out, "simpleFoam"), "the batch never reached the solver"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 8
        while time.time() < deadline and _processes_in(out):
            time.sleep(0.2)
        assert _processes_in(out) == []
    finally:
        for pid in _processes_in(out):
            os.kill(pid, signal.SIGKILL)


def test_a_remote_cluster_must_share_the_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through a scheduler address the executor proves the workers see the output folder before any case runs;
    a worker whose files land elsewhere stops it with one clear error."""
    from distributed import LocalCluster

    from aero_opt.cfd import executor
    from aero_opt.cfd.executor import CaseExecutor, ClusterConfig

    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        with CaseExecutor(ClusterConfig(address=cluster.scheduler_address)) as ex:
            ex.check_shared_folder(tmp_path / "shared")  # same machine: seen
            assert list((tmp_path / "shared").iterdir()) == []  # the marker is cleaned up
            elsewhere = tmp_path / "elsewhere"
            elsewhere.mkdir()
            monkeypatch.setattr(executor, "_touch", lambda path: (elsewhere / Path(path).name).write_text("x") and
                                "node7")
            with pytest.raises(AeroOptError, match="a Dask worker \\(node7\\) wrote a file here that this machine "
                                                   "cannot see"):
                ex.check_shared_folder(tmp_path / "shared")


def test_map_yields_every_result_and_errors_as_values() -> None:
    from aero_opt.cfd.executor import CaseExecutor, ClusterConfig

    with CaseExecutor(ClusterConfig(kind="threads"), workers=2) as ex:
        assert ex.capacity() == 2
        got = dict(ex.map(_square_or_fail, [(i, i) for i in range(5)], progress=False))
    assert {k: v for k, v in got.items() if not isinstance(v, AeroOptError)} == {0: 0, 1: 1, 2: 4, 4: 16}
    assert isinstance(got[3], AeroOptError) and "3 is unlucky" in str(got[3])


def _square_or_fail(i: int) -> int:
    if i == 3:
        raise AeroOptError("3 is unlucky")
    return i * i
