"""The aero-opt console script: help on every subcommand, clear one-line errors and non-zero exits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trimesh

from aero_opt.app.cli import build_parser, main

SUBCOMMANDS = ["cars", "import", "ahmed", "sdf-samples", "train-sdf", "fit", "train-surrogate", "eval-surrogate",
               "predict", "optimize", "compare", "finetune-sdf", "demo-topology", "demo"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aero_opt.app", *args], capture_output=True, text=True,
                          timeout=300)


WITHOUT_SETTINGS = {"ahmed", "fit-domain"}


@pytest.mark.parametrize("cmd", [*SUBCOMMANDS, "fit-domain", "cfd run", "cfd batch", "cfd collect"])
def test_help(cmd: str) -> None:
    r = _run(*cmd.split(), "--help")
    assert r.returncode == 0
    assert ("--config" in r.stdout) == (cmd not in WITHOUT_SETTINGS)


def test_parser_knows_all_subcommands() -> None:
    text = build_parser().format_help()
    assert all(c in text for c in SUBCOMMANDS)


@pytest.mark.parametrize("args,match", [
    (["import", "{tmp}/missing.obj", "--out", "{tmp}/o.stl"], "missing.obj: no such file"),
    (["import", "{tmp}/empty.obj", "--out", "{tmp}/o.stl"], "empty.obj: the file holds no triangles"),
    (["import", "{tmp}/mesh.abc", "--out", "{tmp}/o.stl"], "unknown mesh extension"),
    (["cars", "--n", "2", "--out", "{tmp}/c", "--config", "{tmp}/bad.yaml"], "bad.yaml: cars.nn: unknown key"),
    (["cars", "--n", "0", "--out", "{tmp}/c"], "--n 0"),
    (["optimize", "--param", "bogus", "--car", "3", "--out", "{tmp}/o"], "--param 'bogus'"),
    (["optimize", "--param", "meshsdf", "--car", "{tmp}/missing.stl", "--out", "{tmp}/o",
      "--surrogate", "{tmp}", "--decoder", "{tmp}"], "missing.stl: mesh file not found"),
    (["optimize", "--param", "meshsdf", "--car", "3", "--out", "{tmp}/o", "--surrogate", "{tmp}"],
     "no surrogate model"),
    # Options are refused before the models are loaded and the latent code fitted (minutes), one message each.
    (["optimize", "--param", "meshsdf", "--car", "3", "--out", "{tmp}/o", "--lr", "0", "--surrogate", "{tmp}/none"],
     "--lr 0.0: must be a positive number"),
    (["optimize", "--param", "meshsdf", "--car", "3", "--out", "{tmp}/o", "--iters", "-1", "--surrogate",
      "{tmp}/none"], "--iters -1: must be at least 0"),
    (["optimize", "--param", "meshsdf", "--car", "3", "--out", "{tmp}/o", "--config", "{tmp}/neg.yaml"],
     "neg.yaml: optimize.room_weight: must be at least 0.0, got -1.0"),
])
def test_bad_input_gives_one_line_error(tmp_path: Path, args: list[str], match: str) -> None:
    (tmp_path / "empty.obj").write_text("")
    (tmp_path / "mesh.abc").write_text("x")
    (tmp_path / "bad.yaml").write_text("cars:\n  nn: 3\n")
    (tmp_path / "neg.yaml").write_text("optimize:\n  room_weight: -1\n")
    r = _run(*[a.format(tmp=tmp_path) for a in args])
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert err[-1].startswith("error: ") and match in err[-1]
    assert "Traceback" not in r.stderr


def test_cars_and_sdf_samples_end_to_end(tmp_path: Path) -> None:
    r = _run("cars", "--n", "2", "--seed", "1", "--out", str(tmp_path / "cars"), "--style", "estate")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == f"output: {tmp_path / 'cars'}"
    params = json.loads((tmp_path / "cars" / "params.json").read_text())
    assert [c["params"]["style"] for c in params["cars"]] == ["estate", "estate"]
    assert len(params["cars"][0]["params"]) >= 17
    assert trimesh.load(tmp_path / "cars" / "car_0001.stl").is_watertight
    r = _run("sdf-samples", str(tmp_path / "cars"), "--out", str(tmp_path / "sdf"), "--n", "5000")
    assert r.returncode == 0, r.stderr
    import numpy as np
    with np.load(tmp_path / "sdf" / "car_0000.npz") as z:
        assert z["points"].shape == (5000, 3) and 0.05 < (z["sdf"] < 0).mean() < 0.95


def test_import_writes_mesh_and_report(tmp_path: Path) -> None:
    src = tmp_path / "box.obj"
    trimesh.creation.box(extents=(4.2, 1.7, 1.3)).export(src)
    r = _run("import", str(src), "--out", str(tmp_path / "car.stl"), "--forward=-x", "--up=+z")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == f"output: {tmp_path / 'car.stl'}"  # the file written
    rep = json.loads((tmp_path / "car_import.json").read_text())
    assert rep["output"]["watertight"] and rep["repair"]["method"].startswith("none")
    assert trimesh.load(tmp_path / "car.stl").bounds[0].tolist() == pytest.approx([0.0, -0.85, 0.0])


def test_import_refusal_is_one_line_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    box = trimesh.creation.box(extents=(4.0, 1.8, 1.4)).subdivide_to_size(0.1)
    trimesh.Trimesh(box.vertices, box.faces[3:], process=False).export(tmp_path / "box.stl")
    (tmp_path / "c.yaml").write_text("import:\n  resolution: 96\n  max_volume_change: 0.000001\n")
    code = main(["import", str(tmp_path / "box.stl"), "--out", str(tmp_path / "o.stl"), "--forward=-x", "--up", "+z",
                 "--config", str(tmp_path / "c.yaml")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"error: {tmp_path / 'box.stl'}: cannot repair it faithfully")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box.stl", "c.yaml"]


def test_an_output_folder_holds_one_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cars"
    assert main(["cars", "--n", "2", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    # Another run into it (once: stale cars beside the new ones) is refused before anything is written.
    assert main(["cars", "--n", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {out}: holds another run of `cars` (n: 2 -> 1); use a new --out, or pass --overwrite "
                   "to clear the folder first"]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # The same run again resumes into the folder; --overwrite clears it for the other run.
    assert main(["cars", "--n", "2", "--out", str(out)]) == 0
    assert main(["cars", "--n", "1", "--out", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [".aero-opt.lock", "car_0000.stl", "params.json", "run.json",
                                                    "summary.json"]


def test_optimize_into_a_folder_of_another_optimize_run_is_refused_first(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """An optimize killed in a folder that held an earlier run once left a mixed folder; now the second run never
    starts (the refusal comes before the models are even looked for)."""
    out = tmp_path / "opt"
    out.mkdir()
    record = {"command": "optimize", "identity": {"car": "car_0018"}}
    (out / "run.json").write_text(json.dumps(record))
    (out / "final.stl").write_text("the earlier run's final shape")
    code = main(["optimize", "--param", "meshsdf", "--car", "car_0026", "--out", str(out),
                 "--surrogate", str(tmp_path / "none"), "--decoder", str(tmp_path / "none")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {out}: holds another run of `optimize` (")
    assert sorted(p.name for p in out.iterdir()) == [".aero-opt.lock", "final.stl", "run.json"]
    assert json.loads((out / "run.json").read_text()) == record


def test_progress_off_a_terminal_is_log_lines_and_quiet_is_silent(tmp_path: Path) -> None:
    loud = _run("cars", "--n", "2", "--out", str(tmp_path / "a"))
    assert loud.returncode == 0 and "\r" not in loud.stderr
    assert "cars: 2/2 car (100%)" in loud.stderr.splitlines()[-2]
    quiet = _run("--quiet", "cars", "--n", "2", "--out", str(tmp_path / "b"))
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == f"output: {tmp_path / 'b'}\n"


def test_a_comparison_may_be_reverified_and_extended_but_not_reoptimized(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from aero_opt.app import REPO_DATA
    from aero_opt.app.cli import _run_record

    monkeypatch.chdir(REPO_DATA.parent)

    def identity(*extra: str) -> dict:
        return _run_record(build_parser().parse_args(["compare", "--cars", "car_0018", "--out", str(tmp_path),
                                                      *extra]))["identity"]

    (tmp_path / "v.yaml").write_text("optimize:\n  verify_runs: 3\n  verify_preset: medium\n")
    (tmp_path / "i.yaml").write_text("optimize:\n  iters: 10\n")
    base = identity()
    assert identity("--cars", "car_0018,car_0026", "--verify", "--verify-runs", "3") == base
    assert identity("--config", str(tmp_path / "v.yaml")) == base
    assert identity("--config", str(tmp_path / "i.yaml")) != base
    assert base["data"] == "data/dataset"  # relative: the same run from a moved checkout


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"aero-opt {version('aero-opt')}"


def test_an_unwritable_output_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    code = main(["cars", "--n", "1", "--out", str(tmp_path / "afile" / "cars")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"error: {tmp_path / 'afile' / 'cars'}: Not a directory"]


def test_a_batch_where_every_case_failed_exits_non_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import aero_opt.cfd.batch as batch

    monkeypatch.setattr(batch, "run_batch", lambda *a, **k: {"n": 3, "done": 0, "failed": 3})
    code = main(["cfd", "batch", str(tmp_path), "--out", str(tmp_path / "b")])
    assert code == 2 and "every case failed (3 of 3" in capsys.readouterr().err
    monkeypatch.setattr(batch, "run_batch", lambda *a, **k: {"n": 3, "done": 1, "failed": 2})
    assert main(["cfd", "batch", str(tmp_path), "--out", str(tmp_path / "b")]) == 0


def test_cfd_run_into_a_fresh_folder_then_resumed(tmp_path: Path) -> None:
    """The run record and lock in ``--out`` are not case files; the same run again keeps a finished case and
    redoes an interrupted one from a clean folder."""
    from aero_opt.geometry.shapes import make_ahmed

    stl, out = tmp_path / "ahmed25.stl", tmp_path / "case"
    make_ahmed(25.0).export(stl)
    argv = ["cfd", "run", str(stl), "--out", str(out), "--preset", "tiny", "--mesh-only"]
    assert main(argv) == 0
    first = json.loads((out / "summary.json").read_text())
    assert first["mesh_only"] and 5_000 < first["cells"] < 40_000 and (out / "run.json").is_file()
    stamp = (out / "summary.json").stat().st_mtime_ns
    assert main(argv) == 0 and (out / "summary.json").stat().st_mtime_ns == stamp  # finished: kept
    (out / "summary.json").unlink()
    (out / "half_written.txt").write_text("an interrupted attempt")
    assert main(argv) == 0 and not (out / "half_written.txt").exists()
    assert json.loads((out / "summary.json").read_text())["cells"] == first["cells"]


@pytest.mark.parametrize("case,message", [
    ("folder", "{tmp}/meshes: is a folder, not a mesh file"),
    ("cut_stl", "{tmp}/cut.stl: binary STL cut off: its header announces 80 triangles (4084 bytes), the file has "
                "1000 bytes"),
    ("yaml", "{tmp}/bad.yaml: invalid YAML at line 3, column 1: expected the node content, but found "
             "'<stream end>'"),
])
def test_unreadable_inputs_are_one_line_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        case: str, message: str) -> None:
    (tmp_path / "meshes").mkdir()
    trimesh.creation.icosphere(subdivisions=1).export(tmp_path / "whole.stl")
    (tmp_path / "cut.stl").write_bytes((tmp_path / "whole.stl").read_bytes()[:1000])
    (tmp_path / "bad.yaml").write_text("cars:\n  n: [1,\n")
    args = {"folder": ["import", str(tmp_path / "meshes"), "--out", str(tmp_path / "o.stl")],
            "cut_stl": ["import", str(tmp_path / "cut.stl"), "--out", str(tmp_path / "o.stl")],
            "yaml": ["cars", "--out", str(tmp_path / "c"), "--config", str(tmp_path / "bad.yaml")]}[case]
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"error: {message.format(tmp=tmp_path)}"]
