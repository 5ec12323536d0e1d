"""How far the shipped car decoder is from mirror-symmetric, and what evaluating only its y ≥ 0 half costs.

    .venv/bin/python scripts/validation/check_decoder_symmetry.py

For every ``--every``-th training code, at the optimization grid (64 points per axis over CAR_BOUNDS):
- asymmetry: |f| at the mirror images (x, −y, z) of the mesh vertices, in metres (the distance of a mirrored
  vertex from the surface, to first order);
- crease: at the vertices within one grid step of y = 0 (the grid has no plane at y = 0), the angle between ∇f
  and the plane y = 0; a shape made symmetric by :class:`aero_opt.meshsdf.decoder.MirrorSymmetric` bends by
  twice that angle along its centre line;
- whether OpenFOAM would take each mesh, in metres, as a half model (:func:`aero_opt.cfd.case.is_symmetric`)
  without and with the mirror.
Writes docs/validation/decoder_symmetry.json.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
import trimesh

from aero_opt.cfd.case import is_symmetric
from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.frame import CAR_BOUNDS, CAR_SCALE, to_metres
from aero_opt.core.machine import machine_facts
from aero_opt.geometry.dataset import DATASET_RESOLUTION
from aero_opt.geometry.isosurface import extract, grid_axes
from aero_opt.meshsdf.decoder import MirrorSymmetric, load_model

ROOT = Path(__file__).resolve().parents[2]


def _quantiles(x: np.ndarray) -> dict[str, float]:
    return {"median": float(np.median(x)), "p90": float(np.percentile(x, 90)), "p99": float(np.percentile(x, 99)),
            "max": float(x.max())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "data" / "models" / "car_decoder")
    ap.add_argument("--every", type=int, default=20, help="take every N-th training code")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "validation" / "decoder_symmetry.json")
    args = ap.parse_args()
    dec, latents, _ = load_model(args.model)
    dec.requires_grad_(False)
    mirrored = MirrorSymmetric(dec)
    step = float(np.diff(grid_axes(DATASET_RESOLUTION, CAR_BOUNDS)[1][:2])[0])
    flip = torch.tensor([1.0, -1.0, 1.0])
    asym, crease, half_before, half_after = [], [], 0, 0
    codes = list(range(0, len(latents), args.every))
    for i in codes:
        z = latents[i]
        with torch.no_grad():
            v, f, _ = extract(dec, z, DATASET_RESOLUTION, CAR_BOUNDS)
            asym.append(dec(z, v * flip).abs().numpy() * CAR_SCALE)
            vs, fs, _ = extract(mirrored, z, DATASET_RESOLUTION, CAR_BOUNDS)
        centre = v[v[:, 1].abs() <= 1.01 * step].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(dec(z, centre).sum(), centre)
        crease.append(np.degrees(np.arctan2(g[:, 1].abs().numpy(), g[:, [0, 2]].norm(dim=1).numpy())))
        half_before += is_symmetric(trimesh.Trimesh(to_metres(v.numpy()), f.numpy(), process=False))
        half_after += is_symmetric(trimesh.Trimesh(to_metres(vs.numpy()), fs.numpy(), process=False))
        print(f"code {i}: asymmetry p99 {np.percentile(asym[-1], 99) * 100:.2f} cm, crease median "
              f"{np.median(crease[-1]):.2f} deg", flush=True)
    write_json_atomic(args.out, {
        "command": shlex.join(["python", "scripts/validation/check_decoder_symmetry.py", *sys.argv[1:]]),
        "machine": machine_facts(), "model": str(args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT)
                                                 else args.model),
        "codes": codes, "resolution": DATASET_RESOLUTION,
        "asymmetry_m": _quantiles(np.concatenate(asym)),
        "centre_line_angle_deg": _quantiles(np.concatenate(crease)),
        "half_model_without_mirror": f"{half_before}/{len(codes)}",
        "half_model_with_mirror": f"{half_after}/{len(codes)}",
        "note": "asymmetry_m: |f| at the mirror images of the mesh vertices, in metres, over every vertex of every "
                "code. centre_line_angle_deg: angle between the decoder's gradient and the plane y = 0 at the "
                "vertices within one grid step of it; MirrorSymmetric's shapes bend by twice that angle there. "
                "half_model_*: meshes OpenFOAM runs as a half model (aero_opt.cfd.case.is_symmetric, "
                "tolerance 0.2% of the length)."})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
