"""Carry a long job's work folder across sessions and machines.

A campaign, a comparison or a re-verification runs for hours in a work folder that is not part of the repository
(``results/``). Its *carry* is a mirror of the files the job needs to resume — everything except what it can
rebuild and the bulk of OpenFOAM cases — each compressed with xz (small text files and PNG stay as they are),
with a manifest (``carry.json``: per file its SHA-256, size and modification time). The mirror lives in the
repository and is committed with the partial results; on another machine :func:`restore` puts the files back into
an empty (or partly filled) work folder, and the job resumes as if it had never stopped.

What is carried from an OpenFOAM case folder (one holding ``system/controlDict``) is only its verdict
(``summary.json``, ``failed.json``) and its drag by region (``regions.json``): a finished case is reused from its
summary, an interrupted one is redone. The moved copy of its input mesh (``<case>_input.stl`` beside it) is rebuilt
when needed, so it is skipped too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import lzma
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from aero_opt.core.atomic import atomic_open, folder_lock, write_json_atomic
from aero_opt.core.errors import AeroOptError

log = logging.getLogger(__name__)

MANIFEST = "carry.json"
CASE_FILES = ("summary.json", "failed.json", "regions.json")
"""The files carried from an OpenFOAM case folder: its verdict and its drag by region
(:func:`aero_opt.cfd.results.case_regions`)."""
STORED = (".json", ".csv", ".md", ".txt", ".yaml", ".png", ".gz", ".xz", ".zip")
"""Suffixes kept as they are (small text, readable in a diff, or already compressed); everything else is stored
as ``<name>.xz``."""
MAX_BYTES = 32 * 2**20
"""A larger file is not carried (logged): a carry holds results, not data sets."""


def default_mirror(repo: Path, work: Path) -> Path:
    """Where the scripts keep a work folder's carry in the repository ``repo``: ``docs/results/work/<name>``."""
    return Path(repo) / "docs" / "results" / "work" / Path(work).resolve().name


def add_carry_arguments(ap: argparse.ArgumentParser) -> None:
    """The options of a script whose work folder is carried: ``--carry DIR`` and ``--no-carry``."""
    ap.add_argument("--carry", type=Path, default=None,
                    help="carry folder of the work (default docs/results/work/<work folder name>)")
    ap.add_argument("--no-carry", action="store_true", help="do not carry the work folder")


def chosen_mirror(args: argparse.Namespace, repo: Path, work: Path) -> Path | None:
    """The carry folder :func:`add_carry_arguments`' options choose for ``work`` (None: ``--no-carry``)."""
    return None if args.no_carry else args.carry or default_mirror(repo, work)


def _is_case(folder: Path) -> bool:
    return (folder / "system" / "controlDict").is_file()


Exclude = Callable[[Path], bool]
"""``exclude(path) -> True`` for a file (absolute path in the work folder) the job will not need again."""


def carried_files(work: Path, skip: Sequence[str] = (), exclude: Exclude | None = None) -> Iterator[Path]:
    """The files of ``work`` a carry holds, as paths relative to it, sorted.

    Args:
        work: the work folder.
        skip: file-name patterns (``fnmatch``) the job rebuilds itself (e.g. ``report.html``); hidden files (locks)
            are always skipped.
        exclude: files the job no longer needs to resume, decided when the carry is saved (e.g. a campaign's
            superseded surrogates).
    """
    work = Path(work)
    for dirpath, dirnames, filenames in os.walk(work):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if _is_case(here):
            dirnames[:] = []
            names = [n for n in CASE_FILES if n in filenames]
        else:
            cases = {d for d in dirnames if _is_case(here / d)}
            names = [n for n in filenames if not n.startswith(".") and not any(fnmatch(n, p) for p in skip)
                     and not (n.endswith("_input.stl") and n[: -len("_input.stl")] in cases)]
        for name in sorted(names):
            path = here / name
            if exclude is not None and exclude(path):
                continue
            try:
                size = path.stat().st_size
            except FileNotFoundError:  # replaced or removed by the running job: the next save sees it
                continue
            if size > MAX_BYTES:
                log.warning("%s: %.0f MB, not carried", path, size / 2**20)
                continue
            yield path.relative_to(work)


def _stored_name(rel: Path) -> Path:
    return rel if rel.suffix.lower() in STORED else rel.with_name(rel.name + ".xz")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_manifest(mirror: Path, files: dict[str, dict[str, Any]]) -> None:
    write_json_atomic(Path(mirror) / MANIFEST, {"files": dict(sorted(files.items()))})


def read_manifest(mirror: Path) -> dict[str, dict[str, Any]]:
    """The manifest of a carry (empty when there is none yet).

    Raises:
        AeroOptError: the manifest is unreadable (named).
    """
    path = Path(mirror) / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        files = data["files"]
        if not isinstance(files, dict):
            raise ValueError("'files' is not a mapping")
        return files
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AeroOptError(f"{path}: not a carry manifest ({exc})") from None


def save(work: Path, mirror: Path, skip: Sequence[str] = (), exclude: Exclude | None = None) -> int:
    """Bring the carry up to date with the work folder: files new or changed since the last save (by size and
    modification time) are compressed into ``mirror``; files the work folder no longer holds stay in the carry.

    Args:
        work: the job's work folder; mirror: the carry folder (created); skip, exclude: as :func:`carried_files`.

    Returns:
        The number of files written (with none, no mirror is created).
    """
    work, mirror = Path(work), Path(mirror)
    files = read_manifest(mirror)
    written, dirty = 0, False
    for rel in carried_files(work, skip, exclude):
        try:
            st = (work / rel).stat()
            known = files.get(rel.as_posix())
            if known and known["size"] == st.st_size and known["mtime_ns"] == st.st_mtime_ns:
                continue
            data = (work / rel).read_bytes()
        except FileNotFoundError:  # removed by the running job since the walk
            continue
        digest = _sha256(data)
        if known and known["sha256"] == digest:
            files[rel.as_posix()] = {**known, "mtime_ns": st.st_mtime_ns}
            dirty = True
            continue
        stored = mirror / _stored_name(rel)
        stored.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(stored, "wb") as fh:
            fh.write(data if stored.name == rel.name else lzma.compress(data, preset=6))
        files[rel.as_posix()] = {"sha256": digest, "size": len(data), "mtime_ns": st.st_mtime_ns}
        written, dirty = written + 1, True
    if dirty:
        mirror.mkdir(parents=True, exist_ok=True)
        _write_manifest(mirror, files)
    return written


def forget(mirror: Path, folders: Sequence[str]) -> int:
    """Drop from a carry every file under the given folders of the work folder (relative paths), so that a
    restore does not bring back what is to be redone (e.g. a case judged by a rule since corrected).

    Returns:
        The number of files dropped.
    """
    mirror = Path(mirror)
    files = read_manifest(mirror)
    prefixes = tuple(Path(f).as_posix().rstrip("/") + "/" for f in folders)
    gone = [rel for rel in files if rel.startswith(prefixes)]
    for rel in gone:
        (mirror / _stored_name(Path(rel))).unlink(missing_ok=True)
        del files[rel]
    if gone:
        _write_manifest(mirror, files)
    return len(gone)


def restore(mirror: Path, work: Path) -> int:
    """Put the carried files the work folder lacks back into it (a file the work folder already holds is newer
    and is kept); each file's content is checked against its recorded SHA-256 and its modification time restored.

    Args:
        mirror: the carry folder; work: the job's work folder (created).

    Returns:
        The number of files restored.

    Raises:
        AeroOptError: a carried file is missing or damaged (named).
    """
    mirror, work = Path(mirror), Path(work)
    restored = 0
    for rel, entry in read_manifest(mirror).items():
        target = work / rel
        if target.exists():
            continue
        stored = mirror / _stored_name(Path(rel))
        try:
            raw = stored.read_bytes()
            data = raw if stored.name == target.name else lzma.decompress(raw)
        except (OSError, lzma.LZMAError) as exc:
            raise AeroOptError(f"{stored}: cannot read the carried file ({exc})") from None
        if _sha256(data) != entry["sha256"]:
            raise AeroOptError(f"{stored}: damaged (its content does not match {MANIFEST})")
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(target, "wb") as fh:
            fh.write(data)
        os.utime(target, ns=(entry["mtime_ns"], entry["mtime_ns"]))
        restored += 1
    return restored


@contextmanager
def carried(work: Path, mirror: Path | None, every: float = 600.0, skip: Sequence[str] = (),
            exclude: Exclude | None = None) -> Iterator[None]:
    """Run a job with its work folder carried: restore the carry first, save it every ``every`` seconds while the
    job runs and once more when it ends (also when it fails or is interrupted, by Ctrl-C or SIGTERM: in the main
    thread SIGTERM becomes ``SystemExit(143)`` while the job runs). The mirror is locked meanwhile
    (:func:`aero_opt.core.atomic.folder_lock`): a second job carrying into it is refused.

    Args:
        work: the job's work folder; mirror: the carry folder (None: nothing is carried).
        every: seconds between saves; skip, exclude: as :func:`carried_files`.
    """
    if mirror is None:
        yield
        return
    with folder_lock(mirror):
        yield from _carried(Path(work), Path(mirror), every, skip, exclude)


def _carried(work: Path, mirror: Path, every: float, skip: Sequence[str], exclude: Exclude | None
             ) -> Iterator[None]:
    n = restore(mirror, work)
    if n:
        log.info("restored %d files of %s from %s", n, work, mirror)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            try:
                save(work, mirror, skip, exclude)
            except (OSError, AeroOptError) as exc:  # the job goes on; the final save reports again
                log.warning("carry %s: %s", mirror, exc)

    saver = threading.Thread(target=loop, name="carry", daemon=True)
    saver.start()
    in_main = threading.current_thread() is threading.main_thread()
    # ``kill``, a session's end or a scheduler's time limit send SIGTERM, which ends Python without unwinding:
    # turned into SystemExit here, so the last save below runs as it does for Ctrl-C
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum)) if in_main else None
    try:
        yield
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        stop.set()
        saver.join()
        log.info("carry %s: %d files updated", mirror, save(work, mirror, skip, exclude))
