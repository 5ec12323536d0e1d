"""The demo's publishing step: what `aero-opt demo --docs DIR` copies, and that an unfinished demo copies nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from aero_opt.app.demo import PUBLISHED_RUN_FILES, PUBLISHED_TABLE_FILES, publish_demo
from aero_opt.core.errors import AeroOptError


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


def test_a_resumed_demo_adds_its_time_to_the_earlier_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          data_dir: Path) -> None:
    """The demo's summary keeps the wall time of all its runs (the comparison itself is stubbed out here)."""
    import json
    import time

    import aero_opt.app.demo as demo

    def fake_compare(cars: list[str], params: list[str], out: Path, *args: object, **kwargs: object) -> dict:
        time.sleep(0.2)
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "results.md").write_text("table")
        return {"meshsdf": {"runs": 1}}

    monkeypatch.setattr(demo, "run_compare", fake_compare)
    monkeypatch.setattr(demo, "recorded_models", lambda out: {"surrogate": "s0", "car_decoder": "d0"})
    out = tmp_path / "demo"
    first = demo.run_demo(out, data_dir=data_dir)["seconds"]
    second = demo.run_demo(out, data_dir=data_dir)["seconds"]
    assert first >= 0.15 and second >= first + 0.15  # each run sleeps 0.2 s; the summary rounds to 0.1 s
    assert json.loads((out / "summary.json").read_text())["seconds"] == second


def test_the_demo_verifies_once_at_the_verify_preset_unless_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 data_dir: Path) -> None:
    import aero_opt.app.demo as demo

    seen = []

    def fake_compare(cars: list[str], params: list[str], out: Path, cfg, *args: object, **kwargs: object) -> dict:
        seen.append((cfg.verify_preset, cfg.verify_runs))
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "results.md").write_text("table")
        return {}

    monkeypatch.setattr(demo, "run_compare", fake_compare)
    monkeypatch.setattr(demo, "recorded_models", lambda out: {})
    s = demo.run_demo(tmp_path / "a", data_dir=data_dir)
    demo.run_demo(tmp_path / "b", data_dir=data_dir, verify_runs=3)
    assert seen == [("verify", 1), ("verify", 3)] and (s["verify_preset"], s["verify_runs"]) == ("verify", 1)
