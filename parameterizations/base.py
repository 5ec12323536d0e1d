"""The interface every shape parameterization implements.

A parameterization is a ``torch.nn.Module`` whose parameters are what the optimizer moves. ``mesh()`` returns the
current car surface as (V (N, 3) metres in the car frame, differentiable in the parameters; F (M, 3) long,
outward) and ``regularization()`` a scalar penalty that belongs to the parameterization itself (0 for none).
At the initial parameters ``mesh()`` returns the initial mesh. ``build()`` makes one from the start shape, the
trained shape model and the optimizer's settings; ``room_penalty()`` measures how far the driver and engine boxes
stick out of the current shape.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import nn

from aero_opt.core.errors import AeroOptError
from constraints.regions import RoomConstraint


class StartLike(Protocol):
    """The shape an optimization starts from (the application's ``StartShape``)."""

    @property
    def latent(self) -> torch.Tensor:
        """(D,) latent code of the start shape."""

    @property
    def verts(self) -> np.ndarray:
        """(V, 3) vertices in metres, car frame."""

    @property
    def faces(self) -> np.ndarray:
        """(F, 3) outward triangles."""


class ShapeModelLike(Protocol):
    """The trained implicit shape model (the application's ``Models``)."""

    @property
    def decoder(self) -> nn.Module:
        """``decoder(z (D,), x (N, 3) normalized) -> (N,)`` signed distances."""

    @property
    def latents(self) -> torch.Tensor:
        """(K, D) the training shapes' codes."""


class SettingsLike(Protocol):
    """The settings a parameterization is built from (the application's ``OptimizeConfig``, YAML ``optimize``)."""

    @property
    def knn_k(self) -> int: ...
    @property
    def knn_alpha(self) -> float: ...
    @property
    def resolution(self) -> int: ...
    @property
    def fast(self) -> bool: ...
    @property
    def freeform_terms(self) -> int: ...
    @property
    def freeform_l2(self) -> float: ...
    @property
    def polycube_lattice(self) -> int: ...
    @property
    def vertex_smooth(self) -> float: ...


class Parameterization(nn.Module):
    """Base class: parameters -> mesh (V differentiable, F) plus a regularization term."""

    name = "base"

    @classmethod
    def build(cls, start: StartLike, model: ShapeModelLike, settings: SettingsLike) -> Parameterization:
        """The parameterization at ``start`` with its settings from ``settings``."""
        raise NotImplementedError

    def room_penalty(self, room: RoomConstraint, verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """Room penalty (scalar, m²) of the current shape, whose mesh is ``verts`` (V, 3) m and ``faces`` (F, 3):
        :meth:`constraints.regions.RoomConstraint.penalty_mesh` unless a subclass measures it better."""
        return room.penalty_mesh(verts, faces)

    def mesh(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The current surface: vertices (V, 3) metres (differentiable) and outward faces (F, 3) long."""
        raise NotImplementedError

    def regularization(self) -> torch.Tensor:
        """The parameterization's own penalty (scalar tensor); zero unless a subclass defines one."""
        return torch.zeros(())


class MeshDeformation(Parameterization):
    """A parameterization that deforms a fixed initial mesh: V = V0 + displacement(V0; parameters)."""

    @classmethod
    def build(cls, start: StartLike, model: ShapeModelLike, settings: SettingsLike) -> MeshDeformation:
        """The deformation of the start mesh, with :meth:`options` from the settings."""
        return cls(start.verts, start.faces, **cls.options(settings))

    @classmethod
    def options(cls, settings: SettingsLike) -> dict[str, float | int]:
        """The constructor's keyword arguments taken from the settings (none by default)."""
        return {}

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
