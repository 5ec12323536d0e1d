"""Typed experiment configs: YAML files read into dataclasses that reject unknown keys and wrong types.

A config file has one section per workflow (``cars``, ``import``, ``sdf``...); a section that is absent keeps
its defaults, which are the dataclasses' own (``configs/default.yaml`` spells them out; a test keeps the two equal).
Every error names the file and the dotted key, e.g. ``configs/x.yaml: cars.n: expected int, got str 'ten'``.
Which command reads which section: ``aero-opt COMMAND --help`` says it at ``--config``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from aero_opt.app.optimize import OptimizeConfig
from aero_opt.cfd.case import PRESETS
from aero_opt.cfd.executor import ClusterConfig
from aero_opt.core.errors import AeroOptError
from aero_opt.core.physics import Flow
from aero_opt.core.settings import at_least, check_value, positive
from aero_opt.geometry.mesh_import import ImportOptions
from aero_opt.geometry.sdf import SampleSpec
from aero_opt.geometry.shapes import STYLES
from aero_opt.meshsdf.config import FinetuneConfig, FitConfig, TopologyConfig, TrainSDFConfig
from aero_opt.meshsdf.decoder import DecoderConfig
from surrogate.config import TrainSurrogateConfig
from surrogate.splinecnn import SurrogateConfig

T = TypeVar("T")


@dataclass(frozen=True)
class CarsConfig:
    """Generation of the parametric car family (``aero-opt cars``)."""

    n: int = at_least(1, 12)
    """Number of cars."""
    seed: int = 0
    """Random seed: the same seed gives the same cars, byte for byte."""
    style: str = field(default="all", metadata={"choices": (*STYLES, "all")})
    """fastback, notchback, estate, or all (cycled in that order)."""
    wing_fraction: float = at_least(0.0, 0.25, max=1.0)
    """Fraction of fastbacks and notchbacks that get a rear wing on struts (genus 1)."""
    edge: float = 0.045
    """Target triangle edge length of the surface mesh (m)."""


@dataclass(frozen=True)
class CFDConfig:
    """OpenFOAM runs of ``aero-opt cfd run`` / ``cfd batch``, and how many run at once there and in ``compare
    --verify`` and ``demo`` (YAML section ``cfd``)."""

    preset: str = field(default="coarse", metadata={"choices": tuple(PRESETS)})
    """Mesh and iteration preset of ``cfd run`` and ``cfd batch`` (``optimize.verify_preset`` is the verification's)."""
    procs: int = at_least(1, 1)
    """Cores (MPI ranks) of one case: ``cfd run``, and every case of ``cfd batch``, ``compare --verify`` and
    ``demo``, which reserves that many cores on a worker."""
    workers: int | None = at_least(1, None)
    """Cases run side by side on this machine; None: as many as fit its cores (cores // procs)."""
    oversubscribe: bool = False
    """Let Open MPI start more ranks than a node has cores (off: it refuses)."""


@dataclass(frozen=True)
class TrustRadii:
    """Initial trust-region radius per parameterization (RMS over its parameter entries, in its units)."""

    meshsdf: float = positive(0.02)
    """Latent units (the shipped decoder's training codes spread by ~0.04 per dimension)."""
    scaling: float = positive(0.03)
    """Scale factors (3%)."""
    freeform: float = positive(0.01)
    """Sine coefficients (m)."""
    polycube: float = positive(0.2)
    """Pre-tanh lattice displacements (cells)."""
    vertex: float = positive(0.004)
    """Vertex offsets (m)."""


@dataclass(frozen=True)
class CampaignConfig:
    """Settings of ``aero-opt campaign`` (YAML section ``campaign``)."""

    rounds: int = at_least(1, 4)
    """Rounds of optimize, verify, learn (``--rounds``)."""
    per_round: int = at_least(1, 3)
    """Candidates verified per round (``--per-round``)."""
    budget_cases: int | None = field(default=None, metadata={"min": 1})
    """CFD cases the campaign may use, the start shape's included (``--budget-cases``); None: no cap for the
    surrogate method (the CMA-ES baseline needs one)."""
    radius: TrustRadii = field(default_factory=TrustRadii)
    grow: float = positive(2.0)
    """Factor on the radius after a round whose verified improvement was at least ``good_ratio`` of the
    predicted one."""
    shrink: float = positive(0.5)
    """Factor on the radius after a round whose verified drag did not fall (ratio ≤ ``bad_ratio``)."""
    good_ratio: float = 0.5
    bad_ratio: float = 0.0
    finetune_steps: int = at_least(1, 60)
    """Adam steps of each round's fine-tune (one car per step)."""
    finetune_lr: float = positive(3e-4)
    replay_fraction: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    """Share of the fine-tune's steps on replayed training cars (against forgetting)."""
    replay_cars: int = at_least(1, 100)
    """Training cars in the replay pool (the first ones of the train split)."""
    cma_popsize: int | None = field(default=None, metadata={"min": 2})
    """CMA-ES population per generation; None: the package's default, 4 + 3 ln(n)."""
    seed: int = 0


@dataclass(frozen=True)
class Config:
    """The whole configuration; each field is one YAML section."""

    cars: CarsConfig = field(default_factory=CarsConfig)
    """Parametric car family."""
    mesh_import: ImportOptions = field(default_factory=ImportOptions)
    """Mesh import and repair (YAML section ``import``)."""
    sdf: SampleSpec = field(default_factory=SampleSpec)
    """DeepSDF sample counts and jitter."""
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    """DeepSDF decoder size."""
    train_sdf: TrainSDFConfig = field(default_factory=TrainSDFConfig)
    """DeepSDF training and latent fitting."""
    surrogate: SurrogateConfig = field(default_factory=SurrogateConfig)
    """SplineCNN size."""
    train_surrogate: TrainSurrogateConfig = field(default_factory=TrainSurrogateConfig)
    """Surrogate training."""
    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)
    """Drag optimization (``optimize``, ``compare``, ``demo``)."""
    flow: Flow = field(default_factory=Flow)
    """The free stream of every drag number (CFD, prediction, optimization)."""
    cfd: CFDConfig = field(default_factory=CFDConfig)
    """OpenFOAM runs."""
    device: str = "auto"
    """Where the networks learn and run: auto (a GPU when there is one), cpu, cuda or cuda:N (``--device``)."""
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    """Where CFD cases run side by side (a local Dask cluster, a running scheduler, SLURM or PBS)."""
    fit: FitConfig = field(default_factory=FitConfig)
    """Latent fitting of ``aero-opt fit``."""
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    """``aero-opt finetune-sdf``."""
    topology: TopologyConfig = field(default_factory=TopologyConfig)
    """``aero-opt demo-topology``."""
    campaign: CampaignConfig = field(default_factory=CampaignConfig)
    """``aero-opt campaign``."""


YAML_NAMES = {"mesh_import": "import"}
"""Config attributes whose YAML section has another name."""


def _check_type(value: Any, tp: Any, where: str) -> Any:
    """Return ``value`` converted to ``tp`` (int -> float allowed) or raise naming ``where``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _check_type(value, arg, where)
            except AeroOptError:
                continue
        raise AeroOptError(f"{where}: expected {tp}, got {type(value).__name__} {value!r}")
    if tp is type(None):
        if value is None:
            return None
        raise AeroOptError(f"{where}: expected null, got {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise AeroOptError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        args = typing.get_args(tp)
        item = args[0] if args else Any
        return origin(_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool):
        raise AeroOptError(f"{where}: expected int, got bool {value!r}")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise AeroOptError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str) -> T:
    """Build dataclass ``cls`` from a mapping, recursing into nested dataclasses.

    Args:
        cls: a dataclass type.
        data: the YAML mapping for it.
        where: prefix for error messages (``file: section``).

    Raises:
        AeroOptError: unknown key, wrong type, or a mapping where a value is expected (and vice versa).
    """
    if not isinstance(data, dict):
        raise AeroOptError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {YAML_NAMES.get(f.name, f.name): f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        sub = f"{where}{key}" if where.endswith(": ") else f"{where}.{key}"
        if key not in fields:
            raise AeroOptError(f"{sub}: unknown key (known: {', '.join(sorted(fields))})")
        f = fields[key]
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = from_dict(tp, value if value is not None else {}, sub)
        else:
            kwargs[f.name] = _check_type(value, tp, sub)
            check_value(f, kwargs[f.name], sub)
    return cls(**kwargs)


def load_config(path: str | Path | None) -> Config:
    """Read a YAML config file into a :class:`Config` (defaults when ``path`` is None).

    Raises:
        AeroOptError: missing file, invalid YAML, unknown key or wrong type (the message names file and key).
    """
    if path is None:
        return Config()
    path = Path(path)
    if not path.is_file():
        raise AeroOptError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise AeroOptError(f"{path}: invalid YAML{where}: {problem}") from exc
    return from_dict(Config, data, f"{path}: ")
