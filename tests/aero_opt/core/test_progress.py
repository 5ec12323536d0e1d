"""Progress off a terminal is a few plain log lines (first, every LOG_INTERVAL_S, last), and nothing when quiet."""

from __future__ import annotations

import logging

import pytest

from aero_opt.core import progress as progress_module
from aero_opt.core.progress import progress_bar, set_quiet


def test_off_a_terminal_progress_is_rate_limited_log_lines(caplog: pytest.LogCaptureFixture,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    with caplog.at_level(logging.INFO, logger="aero_opt.progress"):
        for _ in progress_bar(range(500), desc="fit", unit="step"):
            pass
        bar = progress_bar(total=3, desc="cases", unit="case")
        for _ in range(3):
            bar.set_postfix(failed=0)  # refreshes on every call: still one line per interval
            bar.update()
        bar.close()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["fit: 0/500 step (0%), 00:00 elapsed, ? left",
                     "fit: 500/500 step (100%), 00:00 elapsed, 00:00 left",
                     "cases: 0/3 case (0%), 00:00 elapsed, ? left",
                     "cases: 3/3 case (100%), 00:00 elapsed, 00:00 left, failed=0"]
    assert "\r" not in capsys.readouterr().err


def test_a_line_per_interval(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "LOG_INTERVAL_S", 0.0)
    with caplog.at_level(logging.INFO, logger="aero_opt.progress"):
        bar = progress_bar(total=4, desc="train", unit="epoch", mininterval=0.0)
        for _ in range(4):
            bar.update()
        bar.close()
    assert [r.getMessage().split(",")[0] for r in caplog.records] == [
        f"train: {i}/4 epoch ({25 * i}%)" for i in range(5)]


def test_quiet_and_disabled_bars_say_nothing(caplog: pytest.LogCaptureFixture,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with caplog.at_level(logging.INFO, logger="aero_opt.progress"):
        assert sum(progress_bar(range(5), desc="off", enabled=False)) == 10
        set_quiet(True)
        try:
            assert sum(progress_bar(range(5), desc="quiet")) == 10
        finally:
            set_quiet(False)
    assert not caplog.records and capsys.readouterr().err == ""
