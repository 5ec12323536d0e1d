"""``aero-opt fit``: fit a trained decoder's latent code to a user's mesh and measure how well it fits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh

from aero_opt.core.atomic import save_torch_atomic, write_json_atomic
from aero_opt.core.device import on_device
from aero_opt.core.errors import AeroOptError
from aero_opt.core.frame import CAR_FRAME, CAR_SCALE, Similarity, unit_sphere_transform
from aero_opt.core.progress import progress_bar
from aero_opt.geometry.isosurface import extract
from aero_opt.geometry.mesh_import import export_mesh, load_mesh
from aero_opt.geometry.sdf import CHAMFER_POINTS, SampleSpec, chamfer_l2, sample_sdf, surface_points
from aero_opt.meshsdf.config import FitConfig, TrainSDFConfig
from aero_opt.meshsdf.decoder import SDFDecoder, clamped_l1, grid_bounds, load_model
from aero_opt.meshsdf.samples import ShapeSamples


def fit_mesh(mesh_path: Path, run_dir: Path, out_dir: Path, normalization: str = "car",
             settings: FitConfig = FitConfig(), device: torch.device | str = "cpu") -> dict[str, Any]:
    """Fit a latent code to a mesh (decoder frozen), extract the mesh, and report Chamfer-L2.

    ``settings``: sample count, and steps and learning rate where they differ from the decoder's own training
    settings (recorded in its checkpoint). The decoder runs on ``device``.

    Writes ``out_dir/latent.pt`` (the code, (D,)), ``out_dir/fit.stl`` (in the mesh's frame: metres for cars)
    and ``out_dir/summary.json``.

    Returns:
        The summary: Chamfer-L2 in the normalized frame and (cars) in m², vertices, latent norm.
    """
    mesh = load_mesh(mesh_path)
    if not mesh.is_watertight:
        raise AeroOptError(f"{mesh_path}: mesh is not watertight; run `aero-opt import` on it first")
    weights, latents, ck = load_model(run_dir)
    dec = on_device(weights, torch.device(device))
    tcfg = replace(TrainSDFConfig(), **ck["train_config"])
    car = normalization == "car"
    if car != ck["car_frame"]:
        raise AeroOptError(f"{run_dir}: the decoder was trained in the {'car' if ck['car_frame'] else 'unit-sphere'}"
                           f" frame; pass --normalization {'car' if ck['car_frame'] else 'unit_sphere'}")
    transform = CAR_FRAME if car else unit_sphere_transform(mesh.vertices)
    z, surf = latent_for_mesh(mesh, dec, latents, tcfg, transform, Path(mesh_path).stem, settings)
    v, f, _ = extract(dec, z, tcfg.eval_resolution, bounds=grid_bounds(car))
    v_np = v.detach().numpy()
    ch = chamfer_l2(surface_points(v_np, f.numpy(), CHAMFER_POINTS, np.random.default_rng(1)), surf)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_torch_atomic(z, out_dir / "latent.pt")
    export_mesh(trimesh.Trimesh(transform.inverse(v_np), f.numpy(), process=False), out_dir / "fit.stl")
    summary = {"mesh": str(mesh_path), "model": str(run_dir), "chamfer": ch,
               "chamfer_m2": ch * CAR_SCALE**2 if car else None, "chamfer_points": CHAMFER_POINTS,
               "resolution": tcfg.eval_resolution, "vertices": int(len(v_np)),
               "latent_norm": float(z.norm())}
    write_json_atomic(out_dir / "summary.json", summary)
    return summary


def latent_for_mesh(mesh: trimesh.Trimesh, dec: torch.nn.Module, latents: torch.Tensor, tcfg: TrainSDFConfig,
                    transform: Similarity = CAR_FRAME, name: str = "mesh", settings: FitConfig = FitConfig(),
                    progress: bool = True) -> tuple[torch.Tensor, np.ndarray]:
    """Fit a latent code (D,) to a watertight mesh with the decoder frozen.

    Args:
        mesh: the shape (metres in the car frame for cars); transform: to the decoder's normalized frame;
        latents: (K, D) training codes; tcfg: the decoder's training settings (clamp, code regularization, and the
        fit's steps and learning rate where ``settings`` leaves them to the decoder).
        settings: samples, start (the nearest training code or the mean), steps, learning rate.

    Returns:
        The code (D,) and (CHAMFER_POINTS, 3) surface points of the mesh in the normalized frame.
    """
    rng = np.random.default_rng(0)
    pts, sdf = sample_sdf(mesh.vertices, mesh.faces, transform, SampleSpec(n_samples=settings.samples), rng)
    surf = surface_points(transform.forward(mesh.vertices), mesh.faces, CHAMFER_POINTS, rng)
    shape = ShapeSamples(name, torch.from_numpy(pts), torch.from_numpy(sdf), surf, transform is CAR_FRAME)
    return fit_code(dec, shape, latents, tcfg, settings, progress), surf


def fit_code(dec: SDFDecoder, shape: ShapeSamples, latents: torch.Tensor, tcfg: TrainSDFConfig,
             settings: FitConfig = FitConfig(), progress: bool = True) -> torch.Tensor:
    """A shape's code (D,) fitted to its SDF samples with ``dec`` frozen, as ``aero-opt fit`` does: from the
    nearest training code or the mean of ``latents`` (K, D) (``settings.init``), with ``settings``' steps and
    learning rate where it sets them (else the decoder's own ``tcfg``)."""
    tcfg = settings.applied_to(tcfg)
    init = latents[nearest_code(dec, shape, latents, tcfg, settings.probes)] if settings.init == "nearest" \
        else latents.mean(dim=0)
    return fit_latent(dec, shape, tcfg, latents.shape[1], init=init, progress=progress)


def nearest_code(dec: SDFDecoder, s: ShapeSamples, latents: torch.Tensor, cfg: TrainSDFConfig,
                 probes: int = 2048, chunk: int = 64) -> int:
    """Index into ``latents`` (K, D) of the training code whose decoded SDF best matches the shape's samples.

    Every code is scored by the clamped L1 error of the DeepSDF loss on the same ``probes`` samples (seeded), the
    fit's own measure of a code; K × probes decoder queries, in chunks of ``chunk`` codes.
    """
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    sel = torch.randint(0, len(s.sdf), (min(probes, len(s.sdf)),), generator=gen)
    pts, target = s.points[sel], s.sdf[sel].clamp(-cfg.clamp, cfg.clamp)
    errors = []
    with torch.no_grad():
        for i in range(0, len(latents), chunk):
            codes = latents[i:i + chunk]
            z = codes[:, None, :].expand(-1, len(pts), -1).reshape(-1, codes.shape[1])
            x = pts.repeat(len(codes), 1)
            pred = dec(z, x).reshape(len(codes), len(pts)).clamp(-cfg.clamp, cfg.clamp)
            errors.append((pred - target).abs().mean(dim=1))
    return int(torch.cat(errors).argmin())


def fit_latent(dec: SDFDecoder, s: ShapeSamples, cfg: TrainSDFConfig, latent_size: int,
               init: torch.Tensor | None = None, progress: bool = True) -> torch.Tensor:
    """Fit a latent code (D,) to one shape's samples with the decoder frozen (DeepSDF reconstruction)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    z = (init.clone() if init is not None else torch.zeros(latent_size)).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=cfg.fit_lr)
    for p in dec.parameters():
        p.requires_grad_(False)
    for step in progress_bar(range(cfg.fit_steps), desc="fit", unit="step", enabled=progress):
        if step == cfg.fit_steps // 2:
            opt.param_groups[0]["lr"] = cfg.fit_lr / 10
        sel = torch.randint(0, len(s.sdf), (8192,), generator=gen)
        pred = dec(z, s.points[sel])
        loss = clamped_l1(pred, s.sdf[sel], cfg.clamp) \
            + cfg.code_reg * z.square().sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for p in dec.parameters():
        p.requires_grad_(True)
    return z.detach()
