"""One run per output folder: a command records what it is when it starts, and a folder that holds another run is
refused (or cleared with ``--overwrite``).

A run's record (``run.json`` in its folder) holds the command and its identity: the inputs and settings that
decide what it writes (not how it runs: workers, device). The same command with the same identity into the same
folder is the same run — resumed where the command resumes, or redone over its own files. Anything else is refused
before any work starts, with the first difference named. ``--overwrite`` clears a folder that holds an aero-opt
run record first; a folder without one is never deleted (it may be anything). While a run writes, it holds the
folder's lock (:func:`aero_opt.core.atomic.folder_lock`), so a second writer is refused too.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aero_opt.core.atomic import LOCK_FILE, folder_lock, write_json_atomic
from aero_opt.core.errors import AeroOptError

RUN_FILE = "run.json"
"""The run record in an output folder."""

log = logging.getLogger(__name__)


def first_difference(old: Any, new: Any, where: str = "") -> str | None:
    """The first place two JSON-like values differ, as ``"key.sub: old -> new"`` (keys in sorted order), or None.

    Args:
        old, new: nested dicts, lists and scalars.
        where: the key path so far (for the recursion).
    """
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{where}.{key}" if where else str(key)
            if key not in old or key not in new:
                return f"{sub}: {'(absent)' if key not in old else json.dumps(old[key])} -> " \
                       f"{'(absent)' if key not in new else json.dumps(new[key])}"
            diff = first_difference(old[key], new[key], sub)
            if diff is not None:
                return diff
        return None
    if old != new:
        return f"{where or 'value'}: {json.dumps(old)} -> {json.dumps(new)}"
    return None


def run_outputs(folder: Path) -> list[str]:
    """Names in ``folder`` other than the lock and the run record (what the run itself wrote), sorted."""
    return sorted(p.name for p in folder.iterdir() if p.name not in (LOCK_FILE, RUN_FILE))


def clear_outputs(folder: Path, keep_record: bool = True) -> None:
    """Delete what a run wrote in ``folder`` (so a resumed run that cannot continue starts again clean): everything
    but the lock file and, with ``keep_record``, the run record."""
    for p in folder.iterdir():
        if p.name == LOCK_FILE or keep_record and p.name == RUN_FILE:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def claim_run(folder: str | Path, record: dict[str, Any], overwrite: bool = False) -> bool:
    """Make ``folder`` this run's: record it in a fresh folder, accept the same run, clear another run's folder
    when ``overwrite``, refuse anything else.

    Args:
        folder: the output folder (created when missing).
        record: JSON-serializable ``{"command": str, "identity": dict, ...}``; two runs are the same when their
            command and identity are equal.
        overwrite: clear a folder that holds another aero-opt run first.

    Returns:
        True when the folder already held this same run (a resume), False for a fresh or cleared folder.

    Raises:
        AeroOptError: the folder is a file; holds another run (the message names the first difference) and
            ``overwrite`` is false; holds files but no run record (never cleared); or its record is damaged and
            ``overwrite`` is false.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise AeroOptError(f"{folder}: is a file; the output must be a folder")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RUN_FILE
    hint = "use a new --out, or pass --overwrite to clear the folder first"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
            if not isinstance(old, dict):
                raise ValueError("not a mapping")
        except (ValueError, UnicodeDecodeError) as exc:
            if not overwrite:
                raise AeroOptError(f"{path}: damaged run record ({exc}); {hint}") from None
            old = {}
        same = old.get("command") == record["command"] and old.get("identity") == record["identity"]
        if same:
            log.info("%s: the same run as recorded in %s: resuming", folder, RUN_FILE)
            return True
        if not overwrite:
            if old.get("command") != record["command"]:
                what = f"a run of `{old.get('command')}`"
            else:
                diff = first_difference(old.get("identity"), record["identity"])
                what = f"another run of `{record['command']}` ({diff})"
            raise AeroOptError(f"{folder}: holds {what}; {hint}")
        log.info("%s: --overwrite: clearing the earlier run (%s)", folder, old.get("command"))
        clear_outputs(folder, keep_record=False)
    elif run_outputs(folder):
        names = run_outputs(folder)
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise AeroOptError(f"{folder}: is not empty ({shown}) and holds no aero-opt run record ({RUN_FILE}); "
                           "choose a new --out (--overwrite clears only folders an aero-opt run recorded)")
    write_json_atomic(path, record)
    return False


@contextmanager
def run_folder(folder: str | Path, record: dict[str, Any], overwrite: bool = False) -> Iterator[Path]:
    """Hold ``folder``'s lock and :func:`claim_run` it for the duration of a run. A fresh run that fails before it
    writes anything (a bad option found by the command) leaves no record behind, nor the folder it created.

    Yields:
        the folder.
    Raises:
        AeroOptError: another process writes the folder, or :func:`claim_run` refuses it.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise AeroOptError(f"{folder}: is a file; the output must be a folder")
    created = not folder.exists()
    with folder_lock(folder):
        resumed = claim_run(folder, record, overwrite)
        try:
            yield folder
        except BaseException:
            if not resumed and not run_outputs(folder):  # refused before writing anything: leave no trace
                (folder / RUN_FILE).unlink(missing_ok=True)
                if created:
                    (folder / LOCK_FILE).unlink(missing_ok=True)
                    folder.rmdir()
            raise
