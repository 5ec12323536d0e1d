"""``aero-opt demo-topology``: the MeshSDF paper's toy experiment (Bob and Spot), a topology change driven by a
silhouette loss through the differentiable iso-surface.

A DeepSDF decoder with a 2-D latent space is trained on Spot (a genus-0 cow) and Bob (a genus-1 duck), both in
their own unit-sphere frames (the paper's set-up: 8×128, Fourier features of degree 5, latent injected at layer
4, clamp 0.1). Starting from Spot's code, Adam on the latent minimizes the mean squared difference between the
soft silhouettes (:mod:`aero_opt.geometry.raster`) of the extracted mesh and Bob's, seen by three orthographic cameras
(top: through Bob's hole; front; side). The mesh passes from genus 0 (Euler characteristic 2) to genus 1 (0).

Beyond the paper, the decoder is also trained on the blend of the two shapes' signed distances along the line
through their codes (:class:`BlendLoss`, ``topology.blend_weight``): without it, codes between the two hold
floating components and extra handles (measured along the segment by :func:`line_topology`), which the
optimization passes through. The summary records the topology per iterate and along the segment.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from aero_opt.core.atomic import atomic_open, savez_atomic, write_json_atomic
from aero_opt.core.errors import AeroOptError
from aero_opt.core.frame import unit_sphere_transform
from aero_opt.core.progress import progress_bar
from aero_opt.geometry.isosurface import EmptySurfaceError, IsoState, extract, grid_axes, marching_cubes_grid
from aero_opt.geometry.mesh_import import load_mesh
from aero_opt.geometry.raster import Camera, silhouette
from aero_opt.geometry.sdf import SampleSpec, samples_for_mesh_file, signed_distance
from aero_opt.meshsdf.config import TopologyConfig
from aero_opt.meshsdf.decoder import clamped_l1, load_model
from aero_opt.meshsdf.train import train

log = logging.getLogger(__name__)

SHAPES = {"bob": "bob_tri.obj", "spot": "spot.obj"}
"""The two shapes (files in ``data/bob_spot/``); sample files are named by the keys, so latents are [bob, spot]."""

CUBE = ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))
LINE_POINTS = 21
"""Codes on the latent segment Spot → Bob whose topology the summary records."""


def cameras(size: int) -> tuple[Camera, ...]:
    """Top (looking down the y axis, through Bob's hole), front and side views of the unit cube."""
    return (Camera(0.0, 90.0, size=size), Camera(0.0, 0.0, size=size), Camera(90.0, 0.0, size=size))


def blend_record(weight: float, t_range: tuple[float, float]) -> dict[str, Any]:
    """How a decoder's latent-blend term was set (stored in its checkpoint as ``extra_loss``, without ``points``)."""
    return {"name": "latent_blend", "weight": weight, "t_range": list(t_range)}


class BlendLoss:
    """The latent-blend training term: for t drawn uniformly from ``t_range``, the code
    z_t = (1 − t) z_spot + t z_bob (the current codes) should give s_t = (1 − t) s_spot + t s_bob, the blend of the
    two shapes' exact signed distances at common points; clamped L1 like DeepSDF's loss, times ``weight``.

    The linear blend of two signed distance fields is the usual smooth morph: along this segment it holds one
    component apart from grid-sized specks where a thin part (an ear, a horn) thins away (measured with
    :func:`blend_topology`), and its genus goes from 0 to 1 once.
    """

    def __init__(self, points: torch.Tensor, sdf_bob: torch.Tensor, sdf_spot: torch.Tensor, weight: float,
                 t_range: tuple[float, float], clamp: float, batch: int) -> None:
        """points (N, 3) in the cube; sdf_bob, sdf_spot (N,) their signed distances (unit-sphere frames)."""
        self.points, self.sdf_bob, self.sdf_spot = points, sdf_bob, sdf_spot
        self.weight, self.t_range, self.clamp, self.batch = weight, t_range, clamp, batch
        self.record = {**blend_record(weight, t_range), "points": len(points)}

    def __call__(self, dec: torch.nn.Module, latents: torch.nn.Embedding, gen: torch.Generator) -> torch.Tensor:
        """The term for one step: ``batch`` points, one t per point."""
        sel = torch.randint(0, len(self.points), (self.batch,), generator=gen)
        lo, hi = self.t_range
        t = lo + (hi - lo) * torch.rand(self.batch, generator=gen)
        dev = latents.weight.device
        z = (1 - t[:, None]).to(dev) * latents.weight[1] + t[:, None].to(dev) * latents.weight[0]
        target = ((1 - t) * self.sdf_spot[sel] + t * self.sdf_bob[sel]).to(dev)
        pred = dec(z, self.points[sel].to(dev)).reshape(-1)
        return self.weight * clamped_l1(pred, target, self.clamp)


def shape_sdfs(shapes_dir: Path, points: np.ndarray) -> dict[str, np.ndarray]:
    """Exact signed distances (N,) of Bob and Spot, each in its unit-sphere frame, at ``points`` (N, 3)."""
    out = {}
    for key, fname in SHAPES.items():
        mesh = load_mesh(shapes_dir / fname)
        out[key] = signed_distance(points, unit_sphere_transform(mesh.vertices).forward(mesh.vertices), mesh.faces)
    return out


def blend_loss(sample_dir: Path, shapes_dir: Path, cfg: TopologyConfig) -> BlendLoss:
    """The :class:`BlendLoss` on the two shapes' sample points (exact distances kept in ``blend.npz``)."""
    path = sample_dir.parent / "blend.npz"
    if not path.is_file():
        pts = np.concatenate([np.load(sample_dir / f"{k}.npz")["points"] for k in sorted(SHAPES)])
        d = shape_sdfs(shapes_dir, pts.astype(np.float64))
        savez_atomic(path, points=pts.astype(np.float32), bob=d["bob"].astype(np.float32),
                     spot=d["spot"].astype(np.float32))
    with np.load(path) as z:
        return BlendLoss(torch.from_numpy(z["points"]), torch.from_numpy(z["bob"]), torch.from_numpy(z["spot"]),
                         cfg.blend_weight, cfg.blend_range, cfg.train.clamp, cfg.train.points_per_shape)


def ensure_model(model_dir: Path, shapes_dir: Path, cfg: TopologyConfig, work: Path) -> Path:
    """Train the Bob/Spot decoder into ``model_dir`` unless it already holds one (resumes an interrupted run).

    Raises:
        AeroOptError: ``model_dir`` holds a decoder trained with another latent-blend setting.
    """
    model_dir = Path(model_dir)
    sample_dir = work / "samples"
    record = blend_record(cfg.blend_weight, cfg.blend_range) if cfg.blend_weight > 0 else None
    if (model_dir / "report.json").is_file():
        _, _, ck = load_model(model_dir)
        have = ck.get("extra_loss")
        have = {k: v for k, v in have.items() if k != "points"} if have else None
        if have != record:
            raise AeroOptError(f"{model_dir}: its decoder was trained with latent blend {have}, the config asks "
                               f"for {record} (topology.blend_weight, blend_range); use another --model folder")
        return model_dir
    sample_dir.mkdir(parents=True, exist_ok=True)
    for key, fname in SHAPES.items():
        out = sample_dir / f"{key}.npz"
        if not out.is_file():
            spec = SampleSpec(n_samples=cfg.samples, fraction_uniform=cfg.fraction_uniform)
            samples_for_mesh_file(shapes_dir / fname, out, spec, seed=0, normalization="unit_sphere")
    train(sample_dir, model_dir, cfg.decoder, cfg.train, resume=(model_dir / "checkpoint.pt").is_file(),
          extra_loss=blend_loss(sample_dir, shapes_dir, cfg) if record is not None else None)
    return model_dir


def line_topology(dec: torch.nn.Module, z_from: torch.Tensor, z_to: torch.Tensor, resolution: int,
                  ts: np.ndarray) -> list[dict[str, Any]]:
    """Topology of the decoder's shapes along the latent segment: one row per t of ``ts`` (code
    (1 − t) z_from + t z_to) with the components, each one's genus and area (:func:`topology`)."""
    rows = []
    for t in ts:
        with torch.no_grad():
            v, f, _ = extract(dec, (1 - float(t)) * z_from + float(t) * z_to, resolution, CUBE)
        topo = topology(v.numpy(), f.numpy())
        rows.append({"t": round(float(t), 4), "components": topo["components"], "genus": topo["genus"],
                     "areas": [round(a, 5) for a in topo["areas"]]})
    return rows


def blend_topology(shapes_dir: Path, resolution: int, ts: np.ndarray) -> list[dict[str, Any]]:
    """Topology of the exact blend (1 − t) s_spot + t s_bob on the ``resolution``³ grid of the cube, per t of
    ``ts``: what :class:`BlendLoss` teaches the decoder."""
    axes = grid_axes(resolution, CUBE)
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    d = {k: v.reshape((resolution,) * 3) for k, v in shape_sdfs(shapes_dir, grid).items()}
    rows = []
    for t in ts:
        verts, faces = marching_cubes_grid(((1 - t) * d["spot"] + t * d["bob"]).astype(np.float32), axes)
        topo = topology(verts, faces)
        rows.append({"t": round(float(t), 4), "components": topo["components"], "genus": topo["genus"],
                     "areas": [round(a, 5) for a in topo["areas"]]})
    return rows


def target_silhouettes(shapes_dir: Path, cams: tuple[Camera, ...], sigma: float) -> torch.Tensor:
    """Bob's silhouettes (C, S, S) in its unit-sphere frame (the frame the decoder learned it in)."""
    mesh = load_mesh(shapes_dir / SHAPES["bob"])
    v = torch.as_tensor(unit_sphere_transform(mesh.vertices).forward(mesh.vertices), dtype=torch.float32)
    f = torch.as_tensor(mesh.faces)
    with torch.no_grad():
        return torch.stack([silhouette(v, f, c, sigma) for c in cams])


def euler_characteristic(verts: np.ndarray, faces: np.ndarray) -> int:
    """V − E + F of a mesh (2 for a sphere, 0 for a torus)."""
    return int(trimesh.Trimesh(verts, faces, process=False).euler_number)


def topology(verts: np.ndarray, faces: np.ndarray) -> dict[str, Any]:
    """The connected components of a triangle mesh and the genus of each.

    Args:
        verts: (V, 3) vertices; faces: (F, 3) triangles.

    Returns:
        ``euler`` (V − E + F of the whole mesh), ``components`` (their number), ``areas`` and ``genus`` (one entry
        per component, largest area first; genus (2 − χ − b) / 2 with b the component's boundary loops, so an open
        patch is not counted as a handle), ``genus_largest`` (the largest component's genus).
    """
    mesh = trimesh.Trimesh(verts, faces, process=False)
    mesh.merge_vertices()
    mesh.remove_unreferenced_vertices()
    parts = sorted(mesh.split(only_watertight=False), key=lambda m: -float(m.area))
    areas, genus = [], []
    for part in parts:
        edges, counts = np.unique(part.edges_sorted, axis=0, return_counts=True)
        border = edges[counts == 1]
        loops = 0
        if len(border):
            nodes, idx = np.unique(border, return_inverse=True)
            graph = coo_matrix((np.ones(len(border)), (idx.reshape(-1, 2)[:, 0], idx.reshape(-1, 2)[:, 1])),
                               shape=(len(nodes), len(nodes)))
            loops = int(connected_components(graph, directed=False)[0])
        genus.append((2 - int(part.euler_number) - loops) // 2)
        areas.append(float(part.area))
    return {"euler": int(mesh.euler_number), "components": len(parts), "areas": areas, "genus": genus,
            "genus_largest": genus[0] if genus else None}


def topology_label(row: dict[str, Any]) -> str:
    """A frame's title: the iteration, the components and the largest one's genus (floaters named as such)."""
    n = row["components"]
    text = f"it {row['iteration']}: genus {row['genus_largest']}"
    if n > 1:
        share = sum(row["areas"][1:]) / sum(row["areas"])
        text += f", +{n - 1} floating component{'s' if n > 2 else ''} ({100 * share:.1f}% of the area)"
    return text


def genus_changed_at(rows: list[dict[str, Any]]) -> int | None:
    """The first iteration whose mesh is one component with another genus than the first iteration's largest
    component (floating components alone are not a topology change)."""
    first = rows[0]["genus_largest"]
    return next((r["iteration"] for r in rows if r["components"] == 1 and r["genus_largest"] != first), None)


def run_trajectory(dec: torch.nn.Module, z0: torch.Tensor, target: torch.Tensor, cfg: TopologyConfig, fast: bool,
                   iters: int, frames: Path | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Adam on the latent from ``z0``; one row per iteration (loss, Euler characteristic, decoder queries, seconds
    of the whole iteration and of the extraction alone).

    Writes ``frames/frame_XXX.png`` when ``frames`` is given.
    """
    cams = cameras(cfg.image_size)
    z = z0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=cfg.lr)
    state: IsoState | None = None
    rows = []
    for it in progress_bar(range(iters + 1), desc=f"topology ({'fast' if fast else 'full'})", unit="it",
                          enabled=progress):
        t0 = time.perf_counter()
        try:
            v, f, state = extract(dec, z, cfg.resolution, CUBE, state, fast)
        except EmptySurfaceError as exc:
            raise AeroOptError(f"iteration {it}: the shape vanished ({exc}); lower the learning rate") from exc
        t_extract = time.perf_counter() - t0
        sil = torch.stack([silhouette(v, f, c, cfg.sigma) for c in cams])
        loss = (sil - target).square().mean()
        if it < iters:
            opt.zero_grad()
            loss.backward()
            opt.step()
        dt = time.perf_counter() - t0
        vn, fn = v.detach().numpy(), f.numpy()
        topo = topology(vn, fn)
        rows.append({"iteration": it, "loss": float(loss.detach()), "euler": topo["euler"],
                     "components": topo["components"], "genus": topo["genus"],
                     "genus_largest": topo["genus_largest"], "areas": [round(a, 5) for a in topo["areas"]],
                     "queries": int(state.queries), "seconds": dt, "extract_seconds": t_extract,
                     "latent": z.detach().tolist()})
        if frames is not None:
            _frame(frames / f"frame_{it:03d}.png", vn, fn, sil.detach(), target, rows[-1])
    return rows


def _frame(path: Path, v: np.ndarray, f: np.ndarray, sil: torch.Tensor, target: torch.Tensor,
           row: dict[str, Any]) -> None:
    from aero_opt.geometry.render import draw_mesh, plt, save_figure

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
    draw_mesh(axes[0], v[:, [0, 2, 1]] * np.array([1, -1, 1]), f, "three_quarter")
    axes[0].set_title(topology_label(row).replace(", +", "\n+"), fontsize=9)  # two lines: fits the panel
    for ax, s, t, name in zip(axes[1:], sil, target, ("top", "front", "side")):
        rgb = np.stack([t.numpy(), s.numpy(), np.zeros_like(s.numpy())], axis=-1)  # red: Bob, green: current
        ax.imshow(rgb)
        ax.set_title(f"{name} (red Bob, green current)", fontsize=8)
        ax.axis("off")
    fig.suptitle(f"silhouette loss {row['loss']:.4f}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=70)


def run_demo_topology(out: Path, model_dir: Path, shapes_dir: Path, cfg: TopologyConfig = TopologyConfig(),
                      fast: bool = False, timing_iters: int = 20, progress: bool = True) -> dict[str, Any]:
    """The demonstration; writes ``target.png``, ``start.png``, ``frames/``, ``topology.gif`` and
    ``summary.json`` (loss and Euler characteristic per iteration, time and queries per iteration in both modes).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model_dir = ensure_model(model_dir, shapes_dir, cfg, out / "work")
    dec, latents, ck = load_model(model_dir)
    if list(ck["names"]) != sorted(SHAPES) or latents.shape[1] != 2:
        raise AeroOptError(f"{model_dir}: not a Bob/Spot decoder with a 2-D latent space")
    dec.requires_grad_(False)
    z_bob, z_spot = latents[0], latents[1]
    target = target_silhouettes(shapes_dir, cameras(cfg.image_size), cfg.sigma)
    rows = run_trajectory(dec, z_spot, target, cfg, fast, cfg.iters, out / "frames", progress)
    other = run_trajectory(dec, z_spot, target, cfg, not fast, min(timing_iters, cfg.iters), None, progress)
    _gif(sorted((out / "frames").glob("frame_*.png")), out / "topology.gif")
    shutil.copy(out / "frames" / "frame_000.png", out / "start.png")
    _target_png(shapes_dir, target, out / "target.png")
    eulers = [r["euler"] for r in rows]
    ts = np.linspace(0.0, 1.0, LINE_POINTS)
    line = line_topology(dec, z_spot, z_bob, cfg.resolution, ts)
    blend = blend_topology(shapes_dir, cfg.resolution, ts)
    per_mode = {}
    for mode_fast, rr in ((fast, rows), (not fast, other)):
        body = rr[1:] or rr  # after the first extraction (fast mode's coarse-to-fine start is separate)
        per_mode["fast" if mode_fast else "full"] = {
            "seconds_per_iteration": float(np.median([r["seconds"] for r in body])),
            "extract_seconds_per_iteration": float(np.median([r["extract_seconds"] for r in body])),
            "queries_per_iteration": float(np.median([r["queries"] for r in body])),
            "first_iteration": {"seconds": rr[0]["seconds"], "queries": rr[0]["queries"]},
            "iterations_timed": len(body)}
    summary = {
        "command": "aero-opt demo-topology" + (" --fast" if fast else ""), "mode": "fast" if fast else "full",
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("decoder", "train")},
        "decoder": asdict(cfg.decoder), "latent_bob": z_bob.tolist(), "latent_spot": z_spot.tolist(),
        "loss_first": rows[0]["loss"], "loss_last": rows[-1]["loss"], "euler_first": eulers[0],
        "euler_last": eulers[-1], "genus_first": rows[0]["genus_largest"], "genus_last": rows[-1]["genus_largest"],
        "genus_changed_at": genus_changed_at(rows),
        "iterations_with_floaters": [r["iteration"] for r in rows if r["components"] > 1],
        "components_max": max(r["components"] for r in rows),
        "latent_blend": ck.get("extra_loss"),
        "segment": {"note": "shapes along the straight latent segment Spot (t=0) -> Bob (t=1) and the exact blend "
                            "of their signed distances (what the latent-blend term teaches), same grid",
                    "decoder": line, "exact_blend": blend,
                    "decoder_t_with_floaters": [r["t"] for r in line if r["components"] > 1],
                    "exact_blend_t_with_floaters": [r["t"] for r in blend if r["components"] > 1]},
        "per_mode": per_mode,
        "paper_gpu": {"meshsdf_seconds_per_iteration": 0.29, "meshsdf_queries": 266_000,
                      "dist_seconds_per_iteration": 1.24, "dist_queries": 898_000,
                      "setting": "256^3 grid, 512^2 renders, GPU (MeshSDF supplementary)"},
        "iterations": rows,
    }
    write_json_atomic(out / "summary.json", summary)
    return summary


def _target_png(shapes_dir: Path, target: torch.Tensor, path: Path) -> None:
    from aero_opt.geometry.render import draw_mesh, plt, save_figure

    mesh = load_mesh(shapes_dir / SHAPES["bob"])
    v = unit_sphere_transform(mesh.vertices).forward(mesh.vertices)
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
    draw_mesh(axes[0], v[:, [0, 2, 1]] * np.array([1, -1, 1]), mesh.faces, "three_quarter")
    axes[0].set_title("target: Bob (genus 1)", fontsize=9)
    for ax, t, name in zip(axes[1:], target, ("top", "front", "side")):
        ax.imshow(t.numpy(), cmap="gray_r")
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path, dpi=70)


def _gif(frames: list[Path], path: Path) -> None:
    from PIL import Image

    if not frames:
        return
    images = [Image.open(p).convert("P", palette=Image.Palette.ADAPTIVE) for p in frames]
    with atomic_open(path, "wb") as fh:
        images[0].save(fh, format="GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
