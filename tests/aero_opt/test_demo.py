"""The demo's publishing step: what `aero-opt demo --docs DIR` copies, and that an unfinished demo copies nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from aero_opt.demo import PUBLISHED_RUN_FILES, PUBLISHED_TABLE_FILES, publish_demo
from aero_opt.errors import AeroOptError


def _finished_demo(out: Path, car: str, params: list[str]) -> None:
    out.mkdir(parents=True)
    for name in PUBLISHED_TABLE_FILES:
        (out / name).write_text(f"table {name}")
    for param in params:
        run = out / car / param
        run.mkdir(parents=True)
        for name in PUBLISHED_RUN_FILES:
            (run / name).write_text(f"{param} {name}")
    (out / car / "cfd_initial").mkdir()  # the start shape's OpenFOAM case, with its own summary: not a run
    (out / car / "cfd_initial" / "summary.json").write_text("{}")


def test_publish_copies_table_and_runs(tmp_path: Path) -> None:
    out, docs = tmp_path / "demo", tmp_path / "docs"
    _finished_demo(out, "car_x", ["meshsdf", "scaling"])
    written = publish_demo(out, docs, "car_x")
    names = sorted(p.name for p in docs.iterdir())
    expected = sorted(list(PUBLISHED_TABLE_FILES) + [f"{p}_{n}" for p in ("meshsdf", "scaling")
                                                     for n in PUBLISHED_RUN_FILES])
    assert names == expected
    assert sorted(p.name for p in written) == expected
    assert (docs / "scaling_history.csv").read_text() == "scaling history.csv"
    assert (docs / "results.md").read_text() == "table results.md"


def test_publish_unfinished_demo_copies_nothing(tmp_path: Path) -> None:
    out, docs = tmp_path / "demo", tmp_path / "docs"
    _finished_demo(out, "car_x", ["meshsdf", "scaling"])
    (out / "car_x" / "scaling" / "before_after.png").unlink()
    docs.mkdir()
    (docs / "results.md").write_text("committed")
    with pytest.raises(AeroOptError, match="before_after.png"):
        publish_demo(out, docs, "car_x")
    assert [p.name for p in docs.iterdir()] == ["results.md"]
    assert (docs / "results.md").read_text() == "committed"
