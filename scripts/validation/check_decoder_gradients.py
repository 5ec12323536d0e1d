"""Theorem 1 on the shipped car decoder against central finite differences (re-extraction at 128 points/axis).

    .venv/bin/python scripts/validation/check_decoder_gradients.py

For volume, volume-centroid x and z and (as a counter-example) surface area of training car 3's mesh: the
gradient with respect to the latent code along its own direction vs (q(z + h d) − q(z − h d)) / 2h.
Writes docs/validation/decoder_gradients.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from aero_opt.core.atomic import write_json_atomic
from aero_opt.core.frame import CAR_BOUNDS
from aero_opt.geometry.isosurface import extract, mesh_area, mesh_centroid, mesh_volume
from aero_opt.meshsdf.decoder import load_model

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    dec, latents, _ = load_model(ROOT / "data" / "models" / "car_decoder")
    dec.requires_grad_(False)
    quantities = {"volume": mesh_volume, "centroid_x": lambda v, f: mesh_centroid(v, f)[0],
                  "centroid_z": lambda v, f: mesh_centroid(v, f)[2], "area": mesh_area}
    h = 0.02 * float(latents.norm(dim=1).mean())
    rows = {}
    for name, q in quantities.items():
        z = latents[3].clone().requires_grad_(True)
        v, f, _ = extract(dec, z, 128, CAR_BOUNDS, fast=True)
        (g,) = torch.autograd.grad(q(v, f), z)
        d = g / g.norm()
        vals = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                vv, ff, _ = extract(dec, z.detach() + sign * h * d, 128, CAR_BOUNDS, fast=True)
            vals.append(float(q(vv, ff)))
        fd = (vals[0] - vals[1]) / (2 * h)
        rows[name] = {"theorem1": float(g @ d), "finite_difference": fd,
                      "relative_error": abs(fd - float(g @ d)) / abs(fd)}
        print(name, rows[name], flush=True)
    write_json_atomic(ROOT / "docs" / "validation" / "decoder_gradients.json",
                      {"command": "python scripts/validation/check_decoder_gradients.py", "car_code": 3,
                       "resolution": 128, "step": h, "quantities": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
