"""Shape parameterizations for the drag optimizer, one file each behind one interface
(:class:`parameterizations.base.Parameterization`: ``parameters()``, ``mesh() -> (V, F)`` with V differentiable,
``regularization()``): ``meshsdf`` (latent code + differentiable iso-surface), ``scaling``, ``freeform``,
``polycube`` and ``vertex``."""

from parameterizations.base import MeshDeformation, Parameterization
from parameterizations.freeform import FreeForm
from parameterizations.meshsdf import MeshSDF
from parameterizations.polycube import PolyCube
from parameterizations.scaling import Scaling
from parameterizations.vertex import VertexOffsets

MESH_PARAMETERIZATIONS: dict[str, type[MeshDeformation]] = {
    "scaling": Scaling, "freeform": FreeForm, "polycube": PolyCube, "vertex": VertexOffsets}
"""The mesh-deforming parameterizations by name (``meshsdf`` is built from a decoder and a latent instead)."""

NAMES: tuple[str, ...] = ("meshsdf", *MESH_PARAMETERIZATIONS)

__all__ = ["FreeForm", "MESH_PARAMETERIZATIONS", "MeshDeformation", "MeshSDF", "NAMES", "Parameterization",
           "PolyCube", "Scaling", "VertexOffsets"]
