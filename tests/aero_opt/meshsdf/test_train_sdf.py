"""DeepSDF: a tiny decoder learns (loss falls), resumes from its checkpoint, and a latent fit reconstructs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from aero_opt.core.errors import AeroOptError
from aero_opt.geometry.sdf import SampleSpec, chamfer_l2, samples_for_mesh_file
from aero_opt.meshsdf.config import TrainSDFConfig
from aero_opt.meshsdf.decoder import DecoderConfig, SDFDecoder, load_model
from aero_opt.meshsdf.train import train

TINY = DecoderConfig(latent_size=4, hidden=32, layers=4, inject_at=2, fourier_degree=1)


@pytest.fixture(scope="module")
def spheres(tmp_path_factory) -> Path:
    """Samples of three spheres of different radii in the car frame (so their sizes differ in SDF space)."""
    root = tmp_path_factory.mktemp("sdf")
    (root / "samples").mkdir()
    for i, r in enumerate((0.5, 0.7, 0.9)):
        m = trimesh.creation.icosphere(subdivisions=3, radius=r)
        m.apply_translation([2.6, 0.0, 2.475 - 1.4])  # near the normalized centre, inside CAR_BOUNDS
        m.export(root / f"s{i}.stl")
        samples_for_mesh_file(root / f"s{i}.stl", root / "samples" / f"s{i}.npz", SampleSpec(n_samples=6000),
                              seed=i)
    return root / "samples"


def test_decoder_shapes_and_reinjection() -> None:
    dec = SDFDecoder(TINY)
    x = torch.rand(10, 3)
    assert dec(torch.zeros(4), x).shape == (10,)
    assert dec(torch.zeros(10, 4), x).shape == (10,)
    assert dec.hidden[2].weight.shape[1] == 32 + 4 + 9  # re-injected [z, γ(x)] at layer 2


def test_training_lowers_loss_and_resumes(spheres: Path, tmp_path: Path) -> None:
    cfg = TrainSDFConfig(epochs=6, shapes_per_batch=3, points_per_shape=1024, lr_decoder=3e-3, lr_latent=3e-3,
                         checkpoint_every=3, eval_resolution=24)
    rep = train(spheres, tmp_path / "run", TINY, cfg, progress=False)
    ck = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert ck["epoch"] == 6 and len(ck["history"]) == 6
    assert ck["history"][-1]["l1"] < 0.7 * ck["history"][0]["l1"]
    assert (tmp_path / "run" / "loss.png").is_file() and rep["reconstruction"]
    with pytest.raises(AeroOptError, match="--resume"):
        train(spheres, tmp_path / "run", TINY, cfg, progress=False)
    train(spheres, tmp_path / "run", TINY, replace(cfg, epochs=9), resume=True, progress=False)
    ck2 = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert ck2["epoch"] == 9 and ck2["history"][:6] == ck["history"]  # continued, not restarted
    dec, lat, _ = load_model(tmp_path / "run")
    assert lat.shape == (3, 4)


def test_chamfer_definition() -> None:
    a = np.zeros((1, 3))
    b = np.array([[0.0, 0.0, 0.5]])
    assert chamfer_l2(a, b) == pytest.approx(0.5)  # 0.25 each way
    assert chamfer_l2(a, a) == 0.0


def test_resume_refuses_other_data(spheres: Path, tmp_path: Path) -> None:
    cfg = TrainSDFConfig(epochs=1, shapes_per_batch=3, points_per_shape=256, eval_resolution=16)
    train(spheres, tmp_path / "r", TINY, cfg, progress=False)
    with pytest.raises(AeroOptError, match="another decoder config"):
        train(spheres, tmp_path / "r", replace(TINY, hidden=16), replace(cfg, epochs=2), resume=True,
              progress=False)
    json.loads((tmp_path / "r" / "report.json").read_text())


def _sdf_rank(rank: int, world: int, init_file: str, data: str, run_dir: str, out: str) -> None:
    """One training process of the data-parallel test: trains, then saves its decoder and codes."""
    import torch.distributed as dist

    import aero_opt.meshsdf.train as train_mod

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    writes: list[str] = []
    for name in ("save_torch_atomic", "write_json_atomic", "_loss_plot"):
        fn = getattr(train_mod, name)
        setattr(train_mod, name, lambda *a, _fn=fn, _n=name, **k: (writes.append(_n), _fn(*a, **k))[1])
    cfg = TrainSDFConfig(epochs=3, shapes_per_batch=3, points_per_shape=512, checkpoint_every=1, eval_resolution=16)
    torch.manual_seed(0)
    train_mod.train(Path(data), Path(run_dir), TINY, cfg, progress=False)
    dist.destroy_process_group()
    torch.save({"writes": writes}, Path(out) / f"sdf_rank{rank}.pt")


def test_two_processes_train_the_decoder_like_one(spheres: Path, tmp_path: Path) -> None:
    """torchrun-style data parallelism for train-sdf: the batch's shapes split over 2 gloo processes give the weights
    one process gets from the whole batch; only rank 0 writes."""
    import torch.multiprocessing as mp

    mp.spawn(_sdf_rank, args=(2, str(tmp_path / "init"), str(spheres), str(tmp_path / "ddp"), str(tmp_path)),
             nprocs=2)
    w0, w1 = (torch.load(tmp_path / f"sdf_rank{r}.pt", weights_only=False)["writes"] for r in (0, 1))
    assert w1 == [] and "save_torch_atomic" in w0
    cfg = TrainSDFConfig(epochs=3, shapes_per_batch=3, points_per_shape=512, checkpoint_every=1, eval_resolution=16)
    train(spheres, tmp_path / "one", TINY, cfg, progress=False)
    ddp, one = (torch.load(tmp_path / d / "checkpoint.pt", weights_only=False) for d in ("ddp", "one"))
    for name, w in one["decoder"].items():
        torch.testing.assert_close(ddp["decoder"][name], w, rtol=1e-4, atol=1e-6, msg=name)
    torch.testing.assert_close(ddp["latents"], one["latents"], rtol=1e-4, atol=1e-6)


class _CodeNorm:
    """An extra loss: the mean squared norm of all codes, times 10 (pulls the codes to zero)."""

    record = {"name": "code_norm"}

    def __call__(self, dec: torch.nn.Module, latents: torch.nn.Embedding, gen: torch.Generator) -> torch.Tensor:
        return 10.0 * latents.weight.square().sum(dim=1).mean()


def test_an_extra_loss_enters_every_step_and_a_resume_with_another_is_refused(spheres: Path,
                                                                               tmp_path: Path) -> None:
    cfg = TrainSDFConfig(epochs=20, shapes_per_batch=3, points_per_shape=256, eval_resolution=16, init_std=1.0,
                         lr_latent=0.1)
    train(spheres, tmp_path / "plain", TINY, cfg, progress=False)
    train(spheres, tmp_path / "extra", TINY, cfg, progress=False, extra_loss=_CodeNorm())
    plain, extra = (load_model(tmp_path / n)[1].norm(dim=1).mean() for n in ("plain", "extra"))
    assert extra < 0.5 * plain
    assert load_model(tmp_path / "extra")[2]["extra_loss"] == {"name": "code_norm"}
    with pytest.raises(AeroOptError, match="another extra loss"):
        train(spheres, tmp_path / "extra", TINY, replace(cfg, epochs=21), resume=True, progress=False)
