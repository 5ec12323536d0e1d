"""Atomic writers: a failed write leaves the previous file intact and no temporary behind."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aero_opt.core.atomic import (
    atomic_open,
    recorded_path,
    save_torch_atomic,
    savez_atomic,
    write_csv_atomic,
    write_json_atomic,
)


def test_failed_write_keeps_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"cd": 0.3})
    with pytest.raises(RuntimeError):
        with atomic_open(path) as fh:
            fh.write('{"cd": ')
            raise RuntimeError("disk full")
    assert json.loads(path.read_text()) == {"cd": 0.3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_writers_round_trip_and_create_folders(tmp_path: Path) -> None:
    rows = [{"iteration": 0, "drag_N": 1.5}, {"iteration": 1, "drag_N": 1.25}]
    write_csv_atomic(tmp_path / "a" / "history.csv", rows)
    with open(tmp_path / "a" / "history.csv", newline="") as fh:
        assert [{k: float(v) for k, v in r.items()} for r in csv.DictReader(fh)] == rows
    savez_atomic(tmp_path / "b" / "car.npz", x=np.arange(4))
    assert np.array_equal(np.load(tmp_path / "b" / "car.npz")["x"], np.arange(4))
    save_torch_atomic({"w": torch.ones(2)}, tmp_path / "c" / "model.pt")
    assert torch.equal(torch.load(tmp_path / "c" / "model.pt")["w"], torch.ones(2))
    assert not list(tmp_path.rglob("*.tmp"))


def test_csv_without_rows_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no rows"):
        write_csv_atomic(tmp_path / "history.csv", [])


def test_recorded_path_is_relative_inside_the_base_only(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert recorded_path(repo / "data" / "models" / "surrogate", repo) == "data/models/surrogate"
    assert recorded_path(repo / "results" / ".." / "data", repo) == "data"
    outside = tmp_path / "elsewhere" / "model.pt"
    assert recorded_path(outside, repo) == str(outside)


def test_a_failed_cleanup_does_not_hide_the_write_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a read-only filesystem the temporary file cannot be removed either: the error raised is the write's."""
    import os

    from aero_opt.core.atomic import write_text_atomic

    def no_replace(src: object, dst: object) -> None:
        raise OSError(30, "Read-only file system", str(dst))

    def no_unlink(self: Path, missing_ok: bool = False) -> None:
        raise OSError(30, "Read-only file system", str(self))

    monkeypatch.setattr(os, "replace", no_replace)
    monkeypatch.setattr(Path, "unlink", no_unlink)
    with pytest.raises(OSError) as exc:
        write_text_atomic(tmp_path / "out.txt", "hello")
    assert exc.value.filename == str(tmp_path / "out.txt") and exc.value.__context__ is None
