"""SDF sample files of shapes (from ``aero-opt sdf-samples``) as tensors, for training and fitting the decoder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aero_opt.core.errors import AeroOptError
from aero_opt.core.frame import CAR_SCALE


@dataclass
class ShapeSamples:
    """SDF samples of one shape (normalized frame)."""

    name: str
    points: torch.Tensor
    """(N, 3) float32."""
    sdf: torch.Tensor
    """(N,) float32."""
    surface: np.ndarray
    """(S, 3) float32 surface points."""
    car_frame: bool


def load_samples(data_dir: Path) -> list[ShapeSamples]:
    """All ``*.npz`` sample files of a folder (from ``aero-opt sdf-samples``), sorted by name."""
    files = sorted(Path(data_dir).glob("*.npz"))
    if not files:
        raise AeroOptError(f"{data_dir}: no SDF sample files (*.npz); make them with `aero-opt sdf-samples`")
    out = []
    for f in files:
        with np.load(f) as z:
            if "points" not in z.files or "sdf" not in z.files:
                raise AeroOptError(f"{f}: not an SDF sample file (needs points and sdf)")
            out.append(ShapeSamples(f.stem, torch.from_numpy(z["points"].astype(np.float32)),
                                    torch.from_numpy(z["sdf"].astype(np.float32)),
                                    z["surface"] if "surface" in z.files else np.zeros((0, 3), np.float32),
                                    bool(abs(float(z["frame_scale"]) - CAR_SCALE) < 1e-9)))
    return out
