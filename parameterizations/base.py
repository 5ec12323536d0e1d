"""The interface every shape parameterization implements.

A parameterization is a ``torch.nn.Module`` whose parameters are what the optimizer moves. ``mesh()`` returns the
current car surface as (V (N, 3) metres in the car frame, differentiable in the parameters; F (M, 3) long,
outward) and ``regularization()`` a scalar penalty that belongs to the parameterization itself (0 for none).
At the initial parameters ``mesh()`` returns the initial mesh.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aero_opt.errors import AeroOptError


class Parameterization(nn.Module):
    """Base class: parameters -> mesh (V differentiable, F) plus a regularization term."""

    name = "base"

    def mesh(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The current surface: vertices (V, 3) metres (differentiable) and outward faces (F, 3) long."""
        raise NotImplementedError

    def regularization(self) -> torch.Tensor:
        """The parameterization's own penalty (scalar tensor); zero unless a subclass defines one."""
        return torch.zeros(())


class MeshDeformation(Parameterization):
    """A parameterization that deforms a fixed initial mesh: V = V0 + displacement(V0; parameters)."""

    def __init__(self, verts: np.ndarray | torch.Tensor, faces: np.ndarray | torch.Tensor) -> None:
        """Args: the initial mesh, verts (V, 3) metres and faces (F, 3) outward."""
        super().__init__()
        v = torch.as_tensor(np.asarray(verts, np.float32) if isinstance(verts, np.ndarray) else verts.detach(),
                            dtype=torch.float32)
        f = torch.as_tensor(np.asarray(faces) if isinstance(faces, np.ndarray) else faces).long()
        if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0 or f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
            raise AeroOptError(f"initial mesh must be (V, 3) vertices and (F, 3) faces, got {tuple(v.shape)} "
                               f"and {tuple(f.shape)}")
        if not torch.isfinite(v).all():
            raise AeroOptError("initial mesh has NaN or infinite vertex coordinates")
        self.register_buffer("verts0", v)
        self.register_buffer("faces", f)
        lo, hi = v.min(dim=0).values, v.max(dim=0).values
        self.register_buffer("lo", lo)
        self.register_buffer("hi", hi)

    def displacement(self) -> torch.Tensor:
        """(V, 3) displacement of the initial vertices (m)."""
        raise NotImplementedError

    def mesh(self) -> tuple[torch.Tensor, torch.Tensor]:
        """V0 + displacement and the fixed faces."""
        return self.verts0 + self.displacement(), self.faces
