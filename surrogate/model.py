"""The trained surrogate at inference: :class:`Surrogate` loads a model file, predicts per-vertex pressure and
shear coefficients on a mesh and integrates them to drag. Training (:mod:`surrogate.train`) hands it weights;
nothing here imports training code."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aero_opt.core.atomic import save_torch_atomic
from aero_opt.core.checkpoint import load_torch, load_weights
from aero_opt.core.device import autocast
from aero_opt.core.errors import AeroOptError
from aero_opt.core.physics import RHO_AIR, U_INF, drag_coefficient, dynamic_pressure, surface_force
from aero_opt.core.progress import progress_bar
from surrogate.domain import TrainingDomain
from surrogate.graph import MeshGraph
from surrogate.samples import Sample
from surrogate.splinecnn import LEGACY_DEFAULTS, PressureSplineCNN, SurrogateConfig


class Surrogate:
    """A trained model plus what it needs at inference: the fixed Cartesian scale, the range of the solver Cd of
    the cars it was trained on (``train_cd``, (min, max)) and the training cars' embeddings (``domain``, for the
    domain score of :mod:`surrogate.domain`); the last two are None for models saved before they were recorded.

    The model is put in eval mode with its weights frozen (``requires_grad`` off), so a backward pass to the
    vertices (shape optimization) does not also compute and accumulate the weights' gradients; training keeps its
    own model and hands a Surrogate only its weight average."""

    def __init__(self, model: PressureSplineCNN, max_value: float, train_cd: tuple[float, float] | None = None,
                 domain: TrainingDomain | None = None, device: torch.device | str | None = None) -> None:
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.eval().requires_grad_(False).to(self.device)
        self.max_value = max_value
        self.train_cd = train_cd
        self.domain = domain

    def graph(self, verts: torch.Tensor, faces: torch.Tensor) -> MeshGraph:
        """Graph of a mesh with this model's fixed pseudo-coordinate scale."""
        return self.model.graph(verts, faces, self.max_value)

    def coefficients(self, verts: torch.Tensor, faces: torch.Tensor, bf16: bool = False) -> torch.Tensor:
        """Per-vertex (V, 4) [Cp, Cτ] (or (V, 1)) float32 for vertices (V, 3) in metres; differentiable in
        ``verts``. ``bf16``: dense matmuls in bfloat16 (faster where the CPU runs bfloat16 natively, ~0.5% noise)."""
        return self.coefficients_and_embedding(verts, faces, bf16)[0]

    def coefficients_and_embedding(self, verts: torch.Tensor, faces: torch.Tensor, bf16: bool = False
                                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`coefficients` (V, 4 or 1) and the car's embedding (blocks · width,), both float32 on the
        vertices' device; the model runs on :attr:`device` (the moves are differentiable)."""
        g = self.graph(verts.to(self.device), faces.to(self.device))
        with autocast(self.device, bf16):
            out, emb = self.model.forward_with_embedding(g)
        return out.float().to(verts.device), emb.float().to(verts.device)

    def domain_score(self, embedding: torch.Tensor) -> float | None:
        """Domain score of a car's embedding (:mod:`surrogate.domain`; ~1: like a training car, above
        ``domain.threshold``: outside the training data), or None for a model without a recorded domain."""
        return None if self.domain is None else float(self.domain.score(embedding.detach().double().numpy()))

    def drag(self, verts: torch.Tensor, faces: torch.Tensor, a_ref: float, rho: float = RHO_AIR,
             speed: float = U_INF) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted drag force (N) and Cd of a full car mesh; differentiable in ``verts``."""
        c = self.coefficients(verts, faces)
        q = dynamic_pressure(rho, speed)
        shear = c[:, 1:4] * q if c.shape[1] == 4 else None
        force = surface_force(verts, faces, c[:, 0] * q, shear)
        return force[0], drag_coefficient(force[0], a_ref, rho, speed)

    def save(self, path: Path, extra: dict[str, Any] | None = None) -> None:
        """Write the model atomically (weights, config, Cartesian scale, training Cd range and domain)."""
        save_torch_atomic({"state": self.model.state_dict(), "config": asdict(self.model.cfg),
                           "max_value": self.max_value, "train_cd": self.train_cd,
                           "domain": None if self.domain is None else self.domain.to_dict(), **(extra or {})}, path)

    @staticmethod
    def _file(path: Path) -> Path:
        path = Path(path)
        if path.is_dir():
            path = path / "model.pt"
        if not path.is_file():
            raise AeroOptError(f"{path}: no surrogate model (train one with `aero-opt train-surrogate`; the "
                               "shipped one is made by `python scripts/pipeline/train_surrogate_model.py`)")
        return path

    @classmethod
    def load(cls, path: Path, device: torch.device | str = "cpu") -> Surrogate:
        """Read a model written by :meth:`save` (or a training checkpoint), frozen for inference on ``device``."""
        file = cls._file(path)
        ck = load_torch(file, ("config", "state", "max_value"))
        model = PressureSplineCNN(SurrogateConfig(**{**LEGACY_DEFAULTS, **ck["config"]}))
        load_weights(model, ck["state"], file)
        cds, dom = ck.get("train_cd"), ck.get("domain")
        return cls(model, float(ck["max_value"]), None if cds is None else (float(cds[0]), float(cds[1])),
                   None if dom is None else TrainingDomain.from_dict(dom), device)

    def fit_domain(self, samples: list[Sample], path: Path | None = None, progress: bool = True) -> TrainingDomain:
        """Record the training domain from the embeddings of ``samples`` (the training cars) and, when ``path``
        (a model file or folder) is given, store it there, keeping the file's other entries.

        Returns:
            The fitted :class:`~surrogate.domain.TrainingDomain` (also set as :attr:`domain`).
        """
        with torch.no_grad():
            emb = np.stack([self.coefficients_and_embedding(s.verts, s.faces)[1].double().numpy()
                            for s in progress_bar(samples, desc="training domain", unit="car",
                                                  enabled=progress)])
        self.domain = TrainingDomain.fit(emb)
        if path is not None:
            file = self._file(path)
            ck = load_torch(file)
            save_torch_atomic({**ck, "domain": self.domain.to_dict()}, file)
        return self.domain
