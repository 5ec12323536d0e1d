"""Every subcommand with settings takes them from ``--config`` and lets its flags override single keys; a
subcommand without settings has no ``--config``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from aero_opt.app.cli import PRESET_NAMES, main
from aero_opt.cfd.case import PRESETS


class Captured(Exception):  # noqa: N818 (a signal, not an error)
    """Raised by a stand-in for the function a command calls, carrying the call's arguments."""

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().__init__("captured")
        self.args_, self.kwargs = args, kwargs


def _capture(*args: Any, **kwargs: Any) -> None:
    raise Captured(args, kwargs)


FLOW = "flow:\n  speed: 20.0\n  rho: 1.2\n"

# command line ({tmp} = a temporary folder), the function it calls, the config, and what the call must carry
CASES: list[tuple[str, str, str, Callable[[tuple, dict], bool]]] = [
    ("cars --out {tmp}/c", "aero_opt.geometry.carset.generate_cars", "cars:\n  n: 3\n  edge: 0.05\n  style: estate\n",
     lambda a, k: k["n"] == 3 and k["edge"] == 0.05 and k["style"] == "estate"),
    ("cars --out {tmp}/c --n 4", "aero_opt.geometry.carset.generate_cars", "cars:\n  n: 3\n",
     lambda a, k: k["n"] == 4),
    ("import {tmp}/m.obj --out {tmp}/o.stl", "aero_opt.geometry.mesh_import.import_mesh",
     "import:\n  target_faces: 1234\n", lambda a, k: k["opts"].target_faces == 1234),
    ("sdf-samples {tmp}/m.stl --out {tmp}/s", "aero_opt.geometry.sdf.samples_for_mesh_file",
     "sdf:\n  n_samples: 777\n", lambda a, k: a[2].n_samples == 777),
    ("cfd run {tmp}/m.stl --out {tmp}/case", "aero_opt.cfd.case.run_case",
     "cfd:\n  preset: tiny\n  procs: 2\n" + FLOW,
     lambda a, k: (k["preset_name"], k["procs"], k["speed"], k["rho"]) == ("tiny", 2, 20.0, 1.2)),
    ("cfd run {tmp}/m.stl --out {tmp}/case --preset medium --speed 30", "aero_opt.cfd.case.run_case",
     "cfd:\n  preset: tiny\n" + FLOW, lambda a, k: (k["preset_name"], k["speed"], k["rho"]) == ("medium", 30.0, 1.2)),
    ("cfd run {tmp}/m.stl --out {tmp}/case --grid-shift 0.33", "aero_opt.cfd.case.run_case", "",
     lambda a, k: k["grid_shift"] == 0.33),
    ("cfd batch {tmp} --out {tmp}/b", "aero_opt.cfd.batch.run_batch", "cfd:\n  preset: tiny\n  workers: 3\n" + FLOW,
     lambda a, k: (k["preset"], k["workers"], k["speed"], k["rho"]) == ("tiny", 3, 20.0, 1.2)),
    ("cfd batch {tmp} --out {tmp}/b --procs-per-case 2 --scheduler tcp://h:1", "aero_opt.cfd.batch.run_batch",
     "cfd:\n  procs: 1\n  oversubscribe: true\ncluster:\n  kind: slurm\n",
     lambda a, k: (k["procs"], k["oversubscribe"], k["cluster"].address, k["cluster"].kind) == (2, True, "tcp://h:1",
                                                                                              "slurm")),
    ("cfd collect {tmp} --patch car --out {tmp}/d", "aero_opt.cfd.collect.collect_cases", FLOW,
     lambda a, k: (k["speed"], k["rho"]) == (None, 1.2)),  # the speed is the one the case states
    ("cfd collect {tmp} --patch car --speed 20 --out {tmp}/d", "aero_opt.cfd.collect.collect_cases", FLOW,
     lambda a, k: (k["speed"], k["rho"]) == (20.0, 1.2)),  # or the one given, checked against the case's
    ("train-sdf --data {tmp} --out {tmp}/r", "aero_opt.meshsdf.train.train",
     "decoder:\n  hidden: 64\ntrain_sdf:\n  epochs: 3\n", lambda a, k: a[2].hidden == 64 and a[3].epochs == 3),
    ("fit {tmp}/m.stl --model {tmp} --out {tmp}/f", "aero_opt.meshsdf.fit.fit_mesh",
     "fit:\n  samples: 5000\n  steps: 9\n  lr: 0.01\n",
     lambda a, k: (k["settings"].samples, k["settings"].steps, k["settings"].lr) == (5000, 9, 0.01)),
    ("finetune-sdf --model {tmp} --data {tmp} --out {tmp}/f", "aero_opt.meshsdf.finetune.run_finetune",
     "finetune:\n  epochs: 5\n  points: 100\n", lambda a, k: (a[4].epochs, a[4].points) == (5, 100)),
    ("demo-topology --out {tmp}/t", "aero_opt.meshsdf.topology.run_demo_topology",
     "topology:\n  iters: 7\n  sigma: 0.5\n", lambda a, k: (a[3].iters, a[3].sigma) == (7, 0.5)),
    ("train-surrogate --data {tmp} --out {tmp}/r", "surrogate.train.train_surrogate",
     "surrogate:\n  width: 16\ntrain_surrogate:\n  epochs: 2\n", lambda a, k: a[2].width == 16 and a[3].epochs == 2),
    ("predict {tmp}/m.stl --model {tmp} --out {tmp}/p", "surrogate.evaluate.predict_mesh", FLOW,
     lambda a, k: (k["speed"], k["rho"]) == (20.0, 1.2)),
    ("eval-surrogate --model {tmp} --data {tmp} --out {tmp}/e --device cpu", "surrogate.evaluate.evaluate", "",
     lambda a, k: k["device"] == torch.device("cpu")),
    ("train-surrogate --data {tmp} --out {tmp}/r", "surrogate.train.train_surrogate", "device: cpu\n",
     lambda a, k: k["device"] == torch.device("cpu")),
    ("optimize --param scaling --car 3 --out {tmp}/o", "aero_opt.app.optimize.run_optimize",
     "optimize:\n  iters: 5\n  knn_k: 4\n" + FLOW,
     lambda a, k: (a[3].iters, a[3].knn_k, k["flow"].speed, k["flow"].rho) == (5, 4, 20.0, 1.2)),
    ("optimize --param scaling --car 3 --out {tmp}/o --workers 1 --procs-per-case 2",
     "aero_opt.app.optimize.run_optimize",
     "cluster:\n  kind: pool\n", lambda a, k: (k["workers"], k["procs"], k["cluster"].kind) == (1, 2, "pool")),
    ("optimize --param scaling --car 3 --out {tmp}/o --iters 2", "aero_opt.app.optimize.run_optimize",
     "optimize:\n  iters: 5\n", lambda a, k: a[3].iters == 2),
    ("compare --cars 3 --out {tmp}/o", "aero_opt.app.compare.run_compare",
     "optimize:\n  iters: 5\ncfd:\n  workers: 3\n" + FLOW,
     lambda a, k: (a[3].iters, k["workers"], k["flow"].speed) == (5, 3, 20.0)),
    ("compare --cars 3 --out {tmp}/o --procs-per-case 2", "aero_opt.app.compare.run_compare",
     "cluster:\n  kind: pbs\n  jobs: 4\n",
     lambda a, k: (k["procs"], k["cluster"].kind, k["cluster"].jobs) == (2, "pbs", 4)),
    ("demo --out {tmp}/d", "aero_opt.app.demo.run_compare",
     "optimize:\n  knn_k: 4\ncfd:\n  workers: 3\n  procs: 2\ncluster:\n  kind: pool\n" + FLOW,
     lambda a, k: (a[3].knn_k, k["workers"], k["flow"].rho, k["procs"], k["cluster"].kind) == (4, 3, 1.2, 2, "pool")),
    ("demo --out {tmp}/d --scheduler tcp://h:2", "aero_opt.app.demo.run_compare", "",
     lambda a, k: k["cluster"].address == "tcp://h:2"),
    ("optimize --param scaling --car 3 --out {tmp}/o --verify-runs 3", "aero_opt.app.optimize.run_optimize",
     "optimize:\n  verify_runs: 2\n  verify_preset: medium\n",
     lambda a, k: (a[3].verify_runs, a[3].verify_preset) == (3, "medium")),
    ("compare --cars 3 --out {tmp}/o --verify-preset tiny", "aero_opt.app.compare.run_compare",
     "optimize:\n  verify_runs: 2\n", lambda a, k: (a[3].verify_runs, a[3].verify_preset) == (2, "tiny")),
    ("demo --out {tmp}/d --verify-runs 4 --verify-preset medium", "aero_opt.app.demo.run_compare", "",
     lambda a, k: (a[3].verify_runs, a[3].verify_preset) == (4, "medium")),
    ("optimize --param meshsdf --car 3 --out {tmp}/o", "aero_opt.app.optimize.run_optimize",
     "optimize:\n  symmetric: false\n", lambda a, k: a[3].symmetric is False),
]


@pytest.mark.parametrize("line,target,yaml_text,check", CASES, ids=[c[0] for c in CASES])
def test_command_takes_its_settings_from_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str,
                                                    target: str, yaml_text: str,
                                                    check: Callable[[tuple, dict], bool]) -> None:
    module, name = target.rsplit(".", 1)
    monkeypatch.setattr(f"{module}.{name}", _capture)
    config = tmp_path / "c.yaml"
    config.write_text(yaml_text)
    with pytest.raises(Captured) as got:
        main([*line.format(tmp=tmp_path).split(), "--config", str(config)])
    assert check(got.value.args_, got.value.kwargs), (got.value.args_, got.value.kwargs)


@pytest.mark.parametrize("command", [["ahmed", "--out", "a.stl"], ["fit-domain", "--model", "m", "--data", "d"]])
def test_commands_without_settings_refuse_a_config(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*command, "--config", "c.yaml"])
    assert exc.value.code == 2 and "unrecognized arguments: --config" in capsys.readouterr().err


def test_the_preset_choices_are_the_presets() -> None:
    assert PRESET_NAMES == tuple(PRESETS)


@pytest.mark.parametrize("where", ["flag", "config"])
def test_a_gpu_this_machine_lacks_is_one_error_line(tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = tmp_path / "c.yaml"
    config.write_text("device: cuda:1\n" if where == "config" else "")
    flag = ["--device", "cuda:1"] if where == "flag" else []
    code = main(["predict", str(tmp_path / "m.stl"), "--model", str(tmp_path), "--out", str(tmp_path / "p"),
                 "--config", str(config), *flag])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: device 'cuda:1': this machine has 0 CUDA device")


OUT_OF_RANGE = [
    ("optimize --param scaling --car 3 --out {tmp}/o", "optimize:\n  lr:\n    meshsdf: -0.01\n",
     "c.yaml: optimize.lr.meshsdf: must be greater than 0, got -0.01"),
    ("optimize --param scaling --car 3 --out {tmp}/o", "optimize:\n  lr:\n    vertex: .nan\n",
     "c.yaml: optimize.lr.vertex: must be a finite number, got nan"),
    ("compare --cars 3 --out {tmp}/o", "optimize:\n  verify_runs: 0\n",
     "c.yaml: optimize.verify_runs: must be at least 1, got 0"),
    ("sdf-samples {tmp} --out {tmp}/s --n -5", "", "--n -5: must be at least 1"),
    ("sdf-samples {tmp} --out {tmp}/s --n 0", "", "--n 0: must be at least 1"),
    ("cfd batch {tmp} --out {tmp}/b --workers 0", "", "--workers 0: must be at least 1"),
    ("cfd batch {tmp} --out {tmp}/b --procs-per-case 0", "", "--procs-per-case 0: must be at least 1"),
    ("cfd batch {tmp} --out {tmp}/b", "cfd:\n  workers: 0\n", "c.yaml: cfd.workers: must be at least 1, got 0"),
    ("cars --out {tmp}/c --n 0", "", "--n 0: must be at least 1"),
    ("predict {tmp}/m.stl --model {tmp} --out {tmp}/p", "flow:\n  speed: -15\n",
     "c.yaml: flow.speed: must be greater than 0, got -15.0"),
    ("optimize --param scaling --car 3 --out {tmp}/o --verify-runs 0", "",
     "--verify-runs 0: must be at least 1"),
]


@pytest.mark.parametrize("line,yaml_text,message", OUT_OF_RANGE, ids=[m for _, _, m in OUT_OF_RANGE])
def test_an_out_of_range_setting_is_one_error_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              line: str, yaml_text: str, message: str) -> None:
    """A value outside a setting's range, from a config file or a flag, is refused before any work with one line
    naming the key or the flag."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml_text)
    code = main([*line.format(tmp=tmp_path).split(), "--config", str(config)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and err[0].endswith(message), err
