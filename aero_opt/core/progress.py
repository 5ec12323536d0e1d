"""Progress of long work: a tqdm bar on a terminal; when the output is not a terminal (a log file, CI, a batch
job), one plain log line at most every :data:`LOG_INTERVAL_S` seconds instead of hundreds of carriage-return
updates; nothing at all when quiet (``aero-opt --quiet``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

LOG_INTERVAL_S = 30.0
"""Seconds between two progress lines when the output is not a terminal."""

log = logging.getLogger("aero_opt.progress")
_quiet = False


def set_quiet(quiet: bool) -> None:
    """Turn every progress display of this process off (``True``) or back on."""
    global _quiet
    _quiet = quiet


_LOG_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%), {elapsed} elapsed, {remaining} left{postfix}"


class _LogLines:
    """A file-like sink for tqdm that logs an update as one INFO line when :data:`LOG_INTERVAL_S` seconds have
    passed since the last one, or when it is the first, the last (100%) or a repeat-free final state."""

    def __init__(self) -> None:
        self.last_time = -float("inf")
        self.last_line = ""

    def write(self, text: str) -> int:
        line = text.strip("\r\n\t ")
        now = time.monotonic()
        if line and line != self.last_line and (now - self.last_time >= LOG_INTERVAL_S or "(100%)" in line):
            log.info("%s", line)
            self.last_time, self.last_line = now, line
        return len(text)

    def flush(self) -> None:
        """Nothing to flush: every line went to the log."""


def progress_bar(iterable: Iterable[Any] | None = None, *, desc: str, total: float | None = None, unit: str = "it",
             enabled: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm progress bar over ``iterable`` (or a manual one with ``total``) that suits where the output goes.

    Args:
        iterable: what to iterate over (None: call ``update`` yourself).
        desc: the label (``"fit"``, ``"optimize meshsdf"``).
        total: number of steps when ``iterable`` has no length, or for a manual bar.
        unit: the unit of a step.
        enabled: False turns it off (the caller's own ``progress`` switch); quiet turns every bar off.
        kwargs: further tqdm options (``initial``, ``leave``...).

    Returns:
        The tqdm object: a bar on stderr when stderr is a terminal, else log lines at most every
        :data:`LOG_INTERVAL_S` seconds (start and end included); disabled when not ``enabled`` or quiet.
    """
    if not enabled or _quiet:
        return tqdm(iterable, desc=desc, total=total, unit=unit, disable=True, **kwargs)
    if sys.stderr.isatty():
        return tqdm(iterable, desc=desc, total=total, unit=unit, **kwargs)
    kwargs.setdefault("mininterval", LOG_INTERVAL_S)
    return tqdm(iterable, desc=desc, total=total, unit=unit, file=_LogLines(),
                bar_format=_LOG_FORMAT if total is not None or hasattr(iterable, "__len__") else None, **kwargs)
