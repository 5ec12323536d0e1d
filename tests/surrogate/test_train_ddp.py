"""Data-parallel training (what ``torchrun --nproc_per_node 2 -m aero_opt.app train-surrogate`` runs): two gloo
processes end with identical weights, equal to one process averaging the same cars per step; only rank 0 writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from surrogate.config import TrainSurrogateConfig
from surrogate.splinecnn import SurrogateConfig

CFG = SurrogateConfig(width=8, blocks=1)
TCFG = TrainSurrogateConfig(epochs=2, lr=3e-3, bf16=False, patience=100)


def _rank(rank: int, world: int, init_file: str, data: str, run_dir: str, out: str) -> None:
    """One training process: joins the group, records every file write, trains, saves its final weights."""
    import surrogate.model as model_mod
    import surrogate.train as train_mod

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    writes: list[str] = []

    def recorded(name: str, fn: Callable) -> Callable:
        def wrapper(*args: object, **kwargs: object) -> object:
            writes.append(name)
            return fn(*args, **kwargs)
        return wrapper

    for mod, name in ((train_mod, "save_torch_atomic"), (train_mod, "write_json_atomic"), (train_mod, "_plot"),
                      (model_mod, "save_torch_atomic")):
        setattr(mod, name, recorded(name, getattr(mod, name)))
    rep = train_mod.train_surrogate(Path(data), Path(run_dir), CFG, TCFG, progress=False)
    torch.save({"weights": rep["weights"], "writes": writes, "processes": rep["processes"]},
               Path(out) / f"rank{rank}.pt")
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def four_cars(tmp_path_factory: pytest.TempPathFactory, mini_dataset: Callable[..., Path]) -> Path:
    """Four shipped dataset cars: three to train on (two steps of two, then one), one to validate."""
    return mini_dataset(tmp_path_factory.mktemp("mini"), 3, 1, 0)


def test_two_processes_train_like_one_averaging_two_cars(four_cars: Path, tmp_path: Path) -> None:
    from surrogate.train import train_surrogate

    mp.spawn(_rank, args=(2, str(tmp_path / "init"), str(four_cars), str(tmp_path / "ddp"), str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["processes"] == r1["processes"] == 2
    assert r1["writes"] == [] and {"save_torch_atomic", "write_json_atomic", "_plot"} <= set(r0["writes"])
    for name, w in r0["weights"].items():
        assert torch.equal(w, r1["weights"][name]), name
    single = train_surrogate(four_cars, tmp_path / "one", CFG, TrainSurrogateConfig(**{**TCFG.__dict__,
                                                                                       "cars_per_step": 2}),
                             progress=False)["weights"]
    for name, w in r0["weights"].items():
        torch.testing.assert_close(w, single[name], rtol=1e-5, atol=1e-6, msg=name)
    one_car = train_surrogate(four_cars, tmp_path / "one_car", CFG, TCFG, progress=False)["weights"]
    assert any(not torch.allclose(w, one_car[name], rtol=1e-5, atol=1e-6) for name, w in single.items())
    assert (tmp_path / "ddp" / "model.pt").is_file()


def test_cars_per_step_must_split_over_the_processes(four_cars: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from aero_opt.core.errors import AeroOptError
    from surrogate import train as train_mod

    monkeypatch.setattr(train_mod, "init_from_env", lambda device: (0, 2))
    with pytest.raises(AeroOptError, match="cars_per_step 3 must be a positive multiple of the 2 training"):
        train_mod.train_surrogate(four_cars, tmp_path / "r", CFG, TrainSurrogateConfig(cars_per_step=3),
                                  progress=False)
