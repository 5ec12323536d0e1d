"""The CFD dataset as model samples: per-vertex pressure and shear coefficients (Cp, Cτ = field / ½ρU²) on each
car's mesh, their integrated Cd, and mirror images."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from aero_opt.core.physics import dynamic_pressure, surface_force
from aero_opt.geometry.dataset import CarSample, load_car, split_names
from surrogate.graph import mirror_y


@dataclass
class Sample:
    """One car ready for the model."""

    name: str
    verts: torch.Tensor
    faces: torch.Tensor
    target: torch.Tensor
    """(V, 4) Cp and Cτ."""
    car: CarSample
    cd_target: float = 0.0
    """Cd of ``target`` on this mesh (:func:`coefficient_cd`; pressure + shear)."""
    cd_pressure_target: float = 0.0
    """Its pressure part."""
    has_shear: bool = True
    """The car's data has wall shear (imported pressure-only data has zeros there: the loss leaves them out)."""


def samples_on(samples: list[Sample], device: torch.device) -> list[Sample]:
    """The samples with their tensors (vertices, faces, targets) on ``device`` (the same objects on the CPU)."""
    if device.type == "cpu":
        return samples
    return [replace(s, verts=s.verts.to(device), faces=s.faces.to(device), target=s.target.to(device))
            for s in samples]


def mirror_sample(s: Sample) -> Sample:
    """The sample's mirror image in y = 0 (:func:`surrogate.graph.mirror_y`; the wall-shear y coefficient negated),
    named ``<name>|mirror``; its drag, frontal area and so ``cd_target`` are the car's."""
    verts, faces = mirror_y(s.verts, s.faces)
    target = s.target.clone()
    if target.shape[1] == 4:
        target[:, 2] = -target[:, 2]
    return Sample(f"{s.name}|mirror", verts, faces, target, s.car, s.cd_target, s.cd_pressure_target, s.has_shear)


def load_split(data_dir: Path, split: str) -> list[Sample]:
    """Cars of one split (``split.json`` of the dataset folder; ``all``: every ``.npz`` in it) as model samples."""
    return load_samples(data_dir, split_names(Path(data_dir), split))


def load_samples(data_dir: Path, names: list[str]) -> list[Sample]:
    """The dataset cars ``names`` (``<data_dir>/<name>.npz``) as model samples."""
    data_dir = Path(data_dir)
    out = []
    for name in names:
        car = load_car(data_dir / f"{name}.npz")
        q = dynamic_pressure(car.rho, car.speed)
        target = torch.as_tensor(np.concatenate([car.pressure[:, None], car.shear], axis=1) / q, dtype=torch.float32)
        verts, faces = torch.as_tensor(car.verts, dtype=torch.float32), torch.as_tensor(car.faces)
        out.append(Sample(name, verts, faces, target, car, float(coefficient_cd(verts, faces, target, car.a_ref)),
                          float(coefficient_cd(verts, faces, target[:, :1], car.a_ref)),
                          bool(car.case.get("has_shear", True))))
    return out


def coefficient_cd(verts: torch.Tensor, faces: torch.Tensor, coeffs: torch.Tensor, a_ref: float) -> torch.Tensor:
    """Cd () of per-vertex coefficients (V, 1 or 4) = (Cp[, Cτ]) on a mesh (vertices in m) with frontal area
    ``a_ref`` (m²): the force of the coefficient fields (q = 1) over ``a_ref``. Differentiable. This is
    :func:`aero_opt.core.physics.drag_coefficient` for fields already divided by the dynamic pressure ½ρU² (the loss
    works in coefficient units; evaluation and prediction integrate pressure in Pa and call that function)."""
    shear = coeffs[:, 1:4] if coeffs.shape[1] == 4 else None
    return surface_force(verts, faces, coeffs[:, 0], shear)[0] / a_ref
