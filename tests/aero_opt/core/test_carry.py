"""aero_opt.core.carry: a work folder's carry restores exactly what a job needs to resume, and nothing else."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from aero_opt.core.carry import MANIFEST, carried, forget, read_manifest, restore, save
from aero_opt.core.errors import AeroOptError


def _work(root: Path) -> dict[str, bytes]:
    """A work folder like a comparison's: a run folder, a finished OpenFOAM case with its bulk, the case's moved
    input mesh, a lock and a rebuilt report. Returns the files a carry must hold (relative path -> content)."""
    keep = {"inputs.json": b'{"a": 1}', "car/start.pt": bytes(range(256)) * 40,
            "car/meshsdf/final.stl": b"solid\x00\x01" * 1000, "car/meshsdf/before_after.png": b"\x89PNG" + b"x" * 99,
            "car/cfd_initial/summary.json": b'{"Cd": 0.3}'}
    bulk = {"car/cfd_initial/system/controlDict": b"FoamFile", "car/cfd_initial/constant/polyMesh/points": b"1" * 999,
            "car/cfd_initial/log.simpleFoam": b"Time = 1", "car/cfd_initial_input.stl": b"moved copy",
            "car/meshsdf/report.html": b"<html>", ".aero-opt.lock": b"123"}
    for rel, data in {**keep, **bulk}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return keep


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_round_trip_restores_exactly_the_carried_files(tmp_path: Path) -> None:
    work, mirror, other = tmp_path / "work", tmp_path / "mirror", tmp_path / "elsewhere"
    keep = _work(work)
    assert save(work, mirror, skip=("report.html",)) == len(keep)
    stored = sorted(p.relative_to(mirror).as_posix() for p in mirror.rglob("*") if p.is_file())
    assert stored == sorted([MANIFEST, "inputs.json", "car/start.pt.xz", "car/meshsdf/final.stl.xz",
                             "car/meshsdf/before_after.png", "car/cfd_initial/summary.json"])
    assert (mirror / "car/meshsdf/final.stl.xz").stat().st_size < len(keep["car/meshsdf/final.stl"]) / 10
    assert restore(mirror, other) == len(keep)
    assert _files(other) == keep
    for rel in keep:  # a later save sees the restored files as unchanged
        assert (other / rel).stat().st_mtime_ns == (work / rel).stat().st_mtime_ns
    assert save(other, mirror) == 0


def test_forgotten_folders_are_not_restored(tmp_path: Path) -> None:
    work, mirror, other = tmp_path / "work", tmp_path / "mirror", tmp_path / "elsewhere"
    keep = _work(work)
    save(work, mirror, skip=("report.html",))
    assert forget(mirror, ["car/cfd_initial"]) == 1  # only its summary was carried
    assert not (mirror / "car/cfd_initial/summary.json").exists()
    restore(mirror, other)
    assert _files(other) == {k: v for k, v in keep.items() if not k.startswith("car/cfd_initial/")}
    assert forget(mirror, ["car/cfd"]) == 0  # a folder, not a name prefix


def test_save_writes_only_what_changed_and_restore_keeps_newer_files(tmp_path: Path) -> None:
    work, mirror = tmp_path / "work", tmp_path / "mirror"
    _work(work)
    save(work, mirror)
    assert save(work, mirror) == 0
    (work / "car/meshsdf/final.stl").write_bytes(b"new shape")
    (work / "car/cfd_initial/failed.json").write_text("{}")
    assert save(work, mirror) == 2
    assert read_manifest(mirror)["car/meshsdf/final.stl"]["size"] == len(b"new shape")
    (work / "inputs.json").write_text('{"a": 2}')  # the work folder's own file is newer than the carry's
    assert restore(mirror, work) == 0 and json.loads((work / "inputs.json").read_text()) == {"a": 2}
    assert save(tmp_path / "empty", tmp_path / "mirror2") == 0 and not (tmp_path / "mirror2").exists()


def test_damaged_carry_is_refused_by_name(tmp_path: Path) -> None:
    work, mirror = tmp_path / "work", tmp_path / "mirror"
    _work(work)
    save(work, mirror)
    png = (mirror / "car/meshsdf/before_after.png").read_bytes()
    (mirror / "car/meshsdf/before_after.png").write_bytes(b"\x89PNG other")
    with pytest.raises(AeroOptError, match=r"before_after.png: damaged \(its content does not match carry.json\)"):
        restore(mirror, tmp_path / "a")
    (mirror / "car/meshsdf/before_after.png").write_bytes(png)
    (mirror / "car/start.pt.xz").write_bytes(b"not xz")
    with pytest.raises(AeroOptError, match=r"start.pt.xz: cannot read the carried file"):
        restore(mirror, tmp_path / "b")
    (mirror / MANIFEST).write_text("[1]")
    with pytest.raises(AeroOptError, match=r"carry.json: not a carry manifest"):
        restore(mirror, tmp_path / "c")


def test_carried_job_restores_first_and_saves_when_it_fails(tmp_path: Path) -> None:
    work, mirror = tmp_path / "work", tmp_path / "mirror"
    keep = _work(work)
    save(work, mirror, skip=("report.html",))
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError), carried(fresh, mirror, every=3600):
        assert _files(fresh) == keep  # restored before the job starts
        (fresh / "car/scaling").mkdir()
        (fresh / "car/scaling/summary.json").write_text("{}")
        raise RuntimeError("the job fails")
    assert "car/scaling/summary.json" in read_manifest(mirror)
    assert (mirror / ".aero-opt.lock").is_file() and not os.path.exists(fresh / ".aero-opt.lock")


def test_periodic_save_while_the_job_runs(tmp_path: Path) -> None:
    work, mirror = tmp_path / "work", tmp_path / "mirror"
    work.mkdir()
    (work / "a.json").write_text("{}")
    with carried(work, mirror, every=0.05):
        deadline = 200
        while "a.json" not in read_manifest(mirror) and deadline:
            time.sleep(0.02)
            deadline -= 1
        assert deadline, "no save while the job ran"


def test_excluded_files_are_decided_at_each_save(tmp_path: Path) -> None:
    work, mirror = tmp_path / "work", tmp_path / "mirror"
    (work / "r0").mkdir(parents=True)
    (work / "r0" / "model.pt").write_bytes(b"old")
    newest = {"r0"}
    exclude = lambda path: path.name == "model.pt" and path.parent.name not in newest  # noqa: E731
    assert save(work, mirror, exclude=exclude) == 1
    (work / "r1").mkdir()
    (work / "r1" / "model.pt").write_bytes(b"new")
    newest = {"r1"}
    assert save(work, mirror, exclude=exclude) == 1
    assert sorted(read_manifest(mirror)) == ["r0/model.pt", "r1/model.pt"]  # a saved file stays in the carry


def test_a_job_killed_with_sigterm_still_saves_its_carry(tmp_path: Path) -> None:
    """``kill`` (SIGTERM) ends a carried job with its last save, as Ctrl-C does; the periodic save never ran."""
    import signal
    import subprocess
    import sys

    work, mirror = tmp_path / "work", tmp_path / "mirror"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from aero_opt.core.carry import carried\n"
        f"work, mirror = Path({str(work)!r}), Path({str(mirror)!r})\n"
        "with carried(work, mirror, every=3600):\n"
        "    (work / 'case').mkdir(parents=True)\n"
        "    (work / 'case' / 'done.json').write_text('{}')\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert "case/done.json" in read_manifest(mirror)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # this process's handler is untouched
