"""One run per output folder: fresh, the same run resumed, or refused (cleared only with --overwrite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aero_opt.core.atomic import folder_lock
from aero_opt.core.errors import AeroOptError
from aero_opt.core.runfolder import RUN_FILE, claim_run, first_difference, run_folder

RUN_A = {"command": "optimize", "identity": {"car": "car_0018", "config": {"optimize": {"iters": 60}}}}
RUN_B = {"command": "optimize", "identity": {"car": "car_0026", "config": {"optimize": {"iters": 60}}}}


def test_first_difference_names_the_key_path_and_both_values() -> None:
    assert first_difference(RUN_A, RUN_A) is None
    assert first_difference(RUN_A["identity"], RUN_B["identity"]) == 'car: "car_0018" -> "car_0026"'
    c = {"car": "car_0018", "config": {"optimize": {"iters": 80}}}
    assert first_difference(RUN_A["identity"], c) == "config.optimize.iters: 60 -> 80"
    assert first_difference({"a": 1}, {"a": 1, "b": 2}) == "b: (absent) -> 2"


def test_a_fresh_folder_gets_the_record_and_the_same_run_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert claim_run(out, RUN_A) is False
    assert json.loads((out / RUN_FILE).read_text()) == RUN_A
    (out / "history.csv").write_text("step\n0\n")
    assert claim_run(out, RUN_A) is True
    assert (out / "history.csv").read_text() == "step\n0\n"


def test_another_run_is_refused_and_the_folder_left_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "run"
    claim_run(out, RUN_A)
    (out / "final.stl").write_text("the earlier run's shape")
    with pytest.raises(AeroOptError) as err:
        claim_run(out, RUN_B)
    assert str(err.value) == (f'{out}: holds another run of `optimize` (car: "car_0018" -> "car_0026"); use a new '
                              "--out, or pass --overwrite to clear the folder first")
    with pytest.raises(AeroOptError, match=f"^{out}: holds a run of `optimize`; use a new --out"):
        claim_run(out, {"command": "cars", "identity": {}})
    assert sorted(p.name for p in out.iterdir()) == ["final.stl", RUN_FILE]
    assert json.loads((out / RUN_FILE).read_text()) == RUN_A


def test_overwrite_clears_another_run_but_never_a_folder_without_a_record(tmp_path: Path) -> None:
    out = tmp_path / "run"
    claim_run(out, RUN_A)
    (out / "sub").mkdir()
    (out / "sub" / "x.vtp").write_text("x")
    (out / "final.stl").write_text("x")
    assert claim_run(out, RUN_B, overwrite=True) is False
    assert sorted(p.name for p in out.iterdir()) == [RUN_FILE]
    assert json.loads((out / RUN_FILE).read_text()) == RUN_B
    other = tmp_path / "home"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(AeroOptError, match=f"^{other}: is not empty \\(thesis.tex\\) and holds no aero-opt run "
                                               "record"):
            claim_run(other, RUN_A, overwrite=overwrite)
    assert (other / "thesis.tex").read_text() == "precious"


def test_a_damaged_record_is_refused_unless_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / RUN_FILE).write_text('{"command": "optim')
    with pytest.raises(AeroOptError, match=f"^{out / RUN_FILE}: damaged run record"):
        claim_run(out, RUN_A)
    assert claim_run(out, RUN_A, overwrite=True) is False
    assert json.loads((out / RUN_FILE).read_text()) == RUN_A


def test_a_file_is_not_an_output_folder(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(AeroOptError, match="f: is a file; the output must be a folder"):
        with run_folder(tmp_path / "f", RUN_A):
            pass


def test_a_second_writer_is_refused_and_the_lock_nests_within_a_process(tmp_path: Path, locked_elsewhere) -> None:
    out = tmp_path / "run"
    with locked_elsewhere(out) as pid:
        with pytest.raises(AeroOptError, match=f"another aero-opt job \\(pid {pid}\\) is writing"):
            with run_folder(out, RUN_A):
                pass
    assert not (out / RUN_FILE).exists()
    with run_folder(out, RUN_A):
        with folder_lock(out):  # the library call inside the command locks the same folder
            (out / "x").write_text("x")
    assert (out / "x").is_file()


def test_a_run_that_fails_before_writing_leaves_no_trace(tmp_path: Path) -> None:
    out = tmp_path / "new"
    with pytest.raises(AeroOptError, match="--workers 0"):
        with run_folder(out, RUN_A):
            raise AeroOptError("--workers 0: must be at least 1")
    assert not out.exists()
    claim_run(out, RUN_A)
    (out / "history.csv").write_text("x")
    with pytest.raises(KeyboardInterrupt):
        with run_folder(out, RUN_A):
            raise KeyboardInterrupt
    assert json.loads((out / RUN_FILE).read_text()) == RUN_A and (out / "history.csv").is_file()
