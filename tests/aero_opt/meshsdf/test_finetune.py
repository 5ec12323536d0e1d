"""End-to-end fine-tuning through the iso-surface lowers the Chamfer distance of a briefly trained tiny decoder,
and refuses samples the model was not trained on; the differentiable Chamfer equals the reference definition; the
control arm takes the same steps in the same order with DeepSDF's loss and no iso-surface."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from aero_opt.core.errors import AeroOptError
from aero_opt.geometry.sdf import SampleSpec, chamfer_l2, samples_for_mesh_file
from aero_opt.meshsdf import finetune
from aero_opt.meshsdf.config import FinetuneConfig, TrainSDFConfig
from aero_opt.meshsdf.decoder import DecoderConfig, grid_bounds, load_model
from aero_opt.meshsdf.finetune import chamfer_loss, finetune_steps, mesh_points, run_finetune
from aero_opt.meshsdf.samples import load_samples
from aero_opt.meshsdf.train import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ft")
    (root / "samples").mkdir()
    for i, r in enumerate((0.5, 0.8)):
        m = trimesh.creation.icosphere(subdivisions=3, radius=r)
        m.apply_translation([2.6, 0.0, 2.475 - 1.4])
        m.export(root / f"s{i}.stl")
        samples_for_mesh_file(root / f"s{i}.stl", root / "samples" / f"s{i}.npz", SampleSpec(n_samples=8000), seed=i)
    cfg = replace(TrainSDFConfig(), epochs=60, shapes_per_batch=2, points_per_shape=1024, lr_decoder=2e-3,
                  lr_latent=2e-3, lr_halve_every=1000, eval_resolution=24)
    dec = DecoderConfig(latent_size=4, hidden=32, layers=4, inject_at=2, fourier_degree=0)
    train(root / "samples", root / "run", dec, cfg, progress=False)
    return root / "run", root / "samples"


def test_finetuning_lowers_chamfer(trained: tuple[Path, Path], tmp_path: Path) -> None:
    run, samples = trained
    cfg = FinetuneConfig(epochs=10, lr_decoder=1e-3, lr_latent=1e-3, points=1500, resolution=24, eval_train=2)
    res = run_finetune(run, samples, tmp_path / "ft", None, cfg, progress=False)
    assert res["chamfer_after"]["train"]["mean"] < 0.9 * res["chamfer_before"]["train"]["mean"]
    assert (tmp_path / "ft" / "checkpoint.pt").is_file()
    assert json.loads((tmp_path / "ft" / "finetune.json").read_text())["steps"] == 20


def test_refuses_other_samples(trained: tuple[Path, Path], tmp_path: Path) -> None:
    run, samples = trained
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.npz").write_bytes((samples / "s0.npz").read_bytes())
    with pytest.raises(AeroOptError, match="not the samples"):
        run_finetune(run, other, tmp_path / "ft", None, progress=False)


def test_chamfer_loss_matches_definition_and_mesh_points_lie_on_the_mesh() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 3)), rng.normal(size=(200, 3))
    assert float(chamfer_loss(torch.as_tensor(a), b)) == pytest.approx(chamfer_l2(a, b), rel=1e-9)
    box = trimesh.creation.box(extents=(1, 2, 3))
    pts = mesh_points(torch.as_tensor(box.vertices), torch.as_tensor(box.faces), 500, torch.Generator().manual_seed(0))
    assert np.allclose(np.abs(pts.numpy()).max(axis=0), [0.5, 1.0, 1.5])
    on_face = np.isclose(np.abs(pts.numpy()), [0.5, 1.0, 1.5]).any(axis=1)
    assert on_face.all()


def test_control_arm_takes_the_same_steps_in_the_same_order_with_deepsdfs_loss_and_no_iso_surface(
        trained: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    run, samples = trained
    shapes = load_samples(samples)
    tcfg = replace(TrainSDFConfig(), clamp=0.05, code_reg=0.3)
    orders = {}
    for arm in ("meshsdf", "deepsdf"):
        dec, latents, _ = load_model(run)
        codes = torch.nn.Parameter(latents.clone())
        cfg = FinetuneConfig(arm=arm, epochs=3, lr_decoder=0.0, lr_latent=0.0, points=1500, resolution=24, seed=3)
        if arm == "deepsdf":
            def no_iso(*a: object, **k: object) -> None:
                raise AssertionError("the control arm extracted an iso-surface")
            monkeypatch.setattr(finetune, "extract", no_iso)
        rows = finetune_steps(dec, codes, shapes, cfg, tcfg, grid_bounds(True), progress=False)
        orders[arm] = [r["shape"] for r in rows]
    assert orders["meshsdf"] == orders["deepsdf"] and len(orders["deepsdf"]) == 3 * len(shapes)
    assert sorted(orders["deepsdf"]) == sorted(list(range(len(shapes))) * 3)
    gen = torch.Generator().manual_seed(3)
    order = torch.cat([torch.randperm(len(shapes), generator=gen) for _ in range(3)]).tolist()
    s, z = shapes[order[0]], latents[order[0]]
    sel = torch.randint(0, len(s.sdf), (1500,), generator=gen)
    with torch.no_grad():
        pred = dec(z, s.points[sel]).reshape(-1)
    expected = float((pred.clamp(-0.05, 0.05) - s.sdf[sel].clamp(-0.05, 0.05)).abs().mean() + 0.3 * z.square().sum())
    assert rows[0]["loss"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("arm", ["meshsdf", "deepsdf"])
def test_a_run_stopped_after_an_epoch_resumes_to_the_same_result(trained: tuple[Path, Path], arm: str) -> None:
    run, samples = trained
    shapes = load_samples(samples)
    cfg = FinetuneConfig(arm=arm, epochs=3, lr_decoder=1e-3, lr_latent=1e-3, points=800, resolution=20, seed=5)
    results, saved = [], []
    for attempt in ("whole", "first part", "resumed"):
        dec, latents, _ = load_model(run)
        codes = torch.nn.Parameter(latents.clone())
        if attempt == "first part":
            class Stop(Exception):
                pass

            def save(state: dict) -> None:
                saved.append(copy.deepcopy(state))
                raise Stop
            with pytest.raises(Stop):
                finetune_steps(dec, codes, shapes, cfg, TrainSDFConfig(), grid_bounds(True), False, save=save)
            continue
        rows = finetune_steps(dec, codes, shapes, cfg, TrainSDFConfig(), grid_bounds(True), False,
                              resume=saved[0] if attempt == "resumed" else None)
        results.append((rows, [q.detach().clone() for q in dec.parameters()], codes.detach().clone()))
    assert saved[0]["step"] == len(shapes)
    (rows_a, dec_a, codes_a), (rows_b, dec_b, codes_b) = results
    assert [r["shape"] for r in rows_a] == [r["shape"] for r in rows_b]
    assert [r["loss"] for r in rows_a] == pytest.approx([r["loss"] for r in rows_b], rel=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(dec_a, dec_b)) and torch.allclose(codes_a, codes_b)
