"""Atomic file writes: the one place where results reach the disk.

Every writer goes through :func:`atomic_open`: the data is written to ``<name>.tmp`` beside the target and
renamed over it only when writing finished, so an interrupted job (Ctrl-C, a killed session, a full disk)
never leaves half a file behind and never damages the file it was replacing. The temporary name ends in
``.tmp``, so globs such as ``*.npz`` never pick up a leftover. :func:`recorded_path` is how a results file
names the files it was made from: relative to the repository, not this machine's absolute path.
"""
from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from aero_opt.core.errors import AeroOptError


def recorded_path(path: str | Path, base: str | Path) -> str:
    """``path`` as a results file records it: relative to ``base`` (the repository or the working directory)
    when it lies inside it, else as given."""
    full, root = Path(path).resolve(), Path(base).resolve()
    return str(full.relative_to(root)) if full.is_relative_to(root) else str(path)


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", newline: str | None = None) -> Iterator[IO[Any]]:
    """Open ``<path>.tmp`` for writing; on success rename it over ``path``, on an exception delete it.

    Args:
        path: the final file. Its folder is created if missing.
        mode: ``"w"`` (text) or ``"wb"`` (binary).
        newline: passed to :func:`open` for text mode (``""`` for the csv module).

    Yields:
        the open file object.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, mode, newline=newline) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # a read-only folder: the first error is the one to report
            tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path) as fh:
        fh.write(text)


def write_json_atomic(path: str | Path, data: object) -> None:
    """Write ``data`` as indented JSON (with a final newline) to ``path`` atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_csv_atomic(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write a list of dicts as CSV (header from the first row's keys) to ``path`` atomically.

    Raises:
        ValueError: if ``rows`` is empty (there is no header to write).
    """
    if not rows:
        raise ValueError(f"{path}: no rows to write")
    with atomic_open(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def save_torch_atomic(obj: object, path: str | Path) -> None:
    """``torch.save`` atomically, so a crash never leaves half a checkpoint."""
    import torch

    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)


def savez_atomic(path: str | Path, **arrays: Any) -> None:
    """``numpy.savez_compressed`` of ``arrays`` to ``path`` (which should end in ``.npz``) atomically."""
    import numpy as np

    with atomic_open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


LOCK_FILE = ".aero-opt.lock"
"""The lock file a writer holds in the folder it writes (:func:`folder_lock`)."""


_HELD: dict[Path, int] = {}
"""Folders whose lock this process holds, with the nesting depth (a command and the library call it makes may
both lock the same folder)."""


@contextmanager
def folder_lock(folder: str | Path) -> Iterator[Path]:
    """Hold ``folder/.aero-opt.lock`` (an exclusive ``flock``) while a job writes the folder.

    The lock dies with its process (a ``kill -9`` included), so a rerun after a crash is never refused; a second
    job started on the same folder while the first runs is. Within one process the lock nests.

    Yields:
        the folder (created if missing).
    Raises:
        AeroOptError: another process holds the lock (the message names the folder and that process's pid).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield folder
        finally:
            _HELD[key] -= 1
        return
    path = folder / LOCK_FILE
    fh = open(path, "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise AeroOptError(f"{folder}: another aero-opt job (pid {holder}) is writing this folder; wait for it "
                               f"or stop it (its lock: {path})") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        _HELD[key] = 1
        try:
            yield folder
        finally:
            del _HELD[key]
    finally:
        fh.close()
