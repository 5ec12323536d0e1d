"""Shape parameterizations for the drag optimizer, one file each behind one interface
(:class:`parameterizations.base.Parameterization`: ``build()`` from a start shape and settings, ``parameters()``,
``mesh() -> (V, F)`` with V differentiable, ``regularization()``, ``room_penalty()``): ``meshsdf`` (latent code +
differentiable iso-surface), ``scaling``, ``freeform``, ``polycube`` and ``vertex``."""

from aero_opt.core.errors import AeroOptError
from parameterizations.base import MeshDeformation, Parameterization
from parameterizations.freeform import FreeForm
from parameterizations.meshsdf import MeshSDF
from parameterizations.polycube import PolyCube
from parameterizations.scaling import Scaling
from parameterizations.vertex import VertexOffsets

REGISTRY: dict[str, type[Parameterization]] = {
    cls.name: cls for cls in (MeshSDF, Scaling, FreeForm, PolyCube, VertexOffsets)}
"""Every parameterization by name, in the order reports list them."""

NAMES: tuple[str, ...] = tuple(REGISTRY)


def parameterization_class(name: str, option: str = "--param") -> type[Parameterization]:
    """The class registered as ``name``; raises :class:`AeroOptError` naming ``option`` and the choices otherwise."""
    if name not in REGISTRY:
        raise AeroOptError(f"{option} {name!r}: choose from {', '.join(NAMES)}")
    return REGISTRY[name]


__all__ = ["REGISTRY", "FreeForm", "MeshDeformation", "MeshSDF", "NAMES", "Parameterization", "PolyCube",
           "Scaling", "VertexOffsets", "parameterization_class"]
