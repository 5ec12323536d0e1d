"""Triangle mesh -> graph for the SplineCNN: edges, pseudo-coordinates and node features, all differentiable in the
vertex positions.

- Edges: the mesh edges in both directions (row 0 = source j, row 1 = target i, as in PyG).
- Pseudo-coordinates: as ``torch_geometric.transforms.Cartesian`` (``pos[row] − pos[col]``), scaled into [0, 1]³
  by a FIXED ``max_value`` (metres) taken from the training set, so predictions never depend on the batch:
  ``u = (pos[row] − pos[col]) / (2 max_value) + 1/2``, clamped to [0, 1].
- Node features: vertex position in the normalized car frame and the area-weighted vertex normal.
- Vertex areas (a third of the adjacent faces' areas) and the same normalized to sum 1, for mesh-independent
  averages.
- Optionally mirror-canonical (``mirror_canonical``): every vertex described as if it were on the y ≥ 0 side of
  the car's symmetry plane — position (x, |y|, z), normal (n_x, s n_y, n_z) and the pseudo-coordinates of its
  incoming edges (Δx, s Δy, Δz), with s = ±1 the side of the target vertex (``MeshGraph.side``). The features of
  a mesh's mirror image in y = 0 are then those of the mesh itself, vertex for vertex, so a network on them
  predicts the mirror image's scalar fields exactly as the car's (and the y component of vectors flips with
  ``side``): the flow is mirror-equivariant, and a model should not tell a marching-cubes tessellation from its
  mirror image, which it otherwise learns to do. Exact except for vertices on y = 0 itself (none on the dataset
  grid, whose planes straddle it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aero_opt.core.errors import AeroOptError
from aero_opt.core.frame import CAR_OFFSET, CAR_SCALE
from aero_opt.core.physics import face_corners

NODE_FEATURES = 6
"""Per-vertex input channels: normalized position (3) and unit normal (3)."""


@dataclass
class MeshGraph:
    """A mesh as a graph (tensors on one device)."""

    x: torch.Tensor
    """(V, NODE_FEATURES) node features."""
    pos: torch.Tensor
    """(V, 3) vertex positions (m)."""
    edge_index: torch.Tensor
    """(2, E) long, both directions."""
    pseudo: torch.Tensor
    """(E, 3) pseudo-coordinates in [0, 1]."""
    area_weight: torch.Tensor
    """(V,) vertex area fractions (sum 1): averages over the surface that do not depend on the tessellation."""
    side: torch.Tensor | None = None
    """(V,) ±1: the side of y = 0 of each vertex (+1 on y = 0) when the features are mirror-canonical; the y
    component of a predicted vector field is multiplied by it. None: plain features."""
    area: torch.Tensor | None = None
    """(V,) vertex areas (m², :func:`vertex_areas`); ``area_weight`` is ``area`` over its sum."""


def mesh_edges(faces: torch.Tensor) -> torch.Tensor:
    """Unique mesh edges in both directions, (2, E) long, sorted (so the graph does not depend on face order)."""
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], dim=0)
    e = torch.cat([e, e.flip(1)], dim=0)
    n = int(faces.max()) + 1 if faces.numel() else 0
    key = torch.unique(e[:, 0] * n + e[:, 1])  # sorted; a scalar key is much faster than unique(dim=0)
    return torch.stack([key // n, key % n])


def _scatter_faces(values: torch.Tensor, faces: torch.Tensor, n: int) -> torch.Tensor:
    """Sum per-face values (F, ...) onto the face's three vertices -> (n, ...)."""
    out = values.new_zeros((n,) + values.shape[1:])
    return out.index_add_(0, faces[:, 0], values).index_add_(0, faces[:, 1], values).index_add_(0, faces[:, 2], values)


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals (V, 3), outward for outward faces. Differentiable."""
    a, b, c = face_corners(verts, faces)
    n = _scatter_faces(torch.cross(b - a, c - a, dim=1), faces, verts.shape[0])  # face vector length = 2 x area
    return n / n.norm(dim=1, keepdim=True).clamp_min(1e-12)


def vertex_areas(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(V,) a third of the areas of each vertex's faces (m² for vertices in m). Differentiable."""
    a, b, c = face_corners(verts, faces)
    return _scatter_faces(torch.cross(b - a, c - a, dim=1).norm(dim=1), faces, verts.shape[0]) / 6.0


def vertex_area_weights(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(V,) :func:`vertex_areas` normalized to sum 1. Differentiable."""
    return _fractions(vertex_areas(verts, faces))


def _fractions(w: torch.Tensor) -> torch.Tensor:
    return w / w.sum().clamp_min(1e-30)


def build_graph(verts: torch.Tensor, faces: torch.Tensor, max_value: float, mirror_canonical: bool = False
                ) -> MeshGraph:
    """Graph of a triangle mesh.

    Args:
        verts: (V, 3) float vertices in metres (car frame, symmetry plane y = 0); may require grad.
        faces: (F, 3) long triangles, outward.
        max_value: the fixed Cartesian scale (m): the largest |edge component| of the training set.
        mirror_canonical: describe every vertex as if on the y ≥ 0 side (module docstring).

    Raises:
        AeroOptError: no faces, NaN/inf coordinates, or face indices out of range.
    """
    if faces.numel() == 0 or verts.numel() == 0:
        raise AeroOptError("mesh has no faces: nothing to predict on")
    if not torch.isfinite(verts).all():
        raise AeroOptError("mesh has NaN or infinite vertex coordinates")
    if int(faces.max()) >= verts.shape[0] or int(faces.min()) < 0:
        raise AeroOptError("mesh faces index missing vertices")
    ei = mesh_edges(faces.long())
    cart = verts[ei[0]] - verts[ei[1]]
    pos_n = (verts - torch.as_tensor(CAR_OFFSET, dtype=verts.dtype, device=verts.device)) / CAR_SCALE
    normals = vertex_normals(verts, faces.long())
    side = None
    if mirror_canonical:  # CAR_OFFSET[1] == 0: the symmetry plane stays y = 0 in the normalized frame
        side = torch.where(verts[:, 1].detach() < 0, -1.0, 1.0).to(verts.dtype)
        flip = torch.stack([torch.ones_like(side), side, torch.ones_like(side)], dim=1)  # (V, 3)
        pos_n, normals, cart = pos_n * flip, normals * flip, cart * flip[ei[1]]
    pseudo = (cart / (2.0 * max_value) + 0.5).clamp(0.0, 1.0)
    x = torch.cat([pos_n, normals], dim=1)
    area = vertex_areas(verts, faces.long())
    return MeshGraph(x=x, pos=verts, edge_index=ei, pseudo=pseudo, area_weight=_fractions(area),
                     side=side, area=area)


def max_edge_component(verts: torch.Tensor, faces: torch.Tensor) -> float:
    """Largest |component| of a mesh's edge vectors (m): take the max over the training set for ``max_value``."""
    ei = mesh_edges(faces.long())
    return float((verts[ei[0]] - verts[ei[1]]).abs().max())


def mirror_y(verts: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mesh's mirror image in the car's symmetry plane y = 0: vertices (V, 3) with y negated, faces (F, 3)
    with their winding reversed so they stay outward. Vertex i of the result is the mirror of vertex i. For a
    symmetric car this is the same body with a differently oriented tessellation (marching cubes does not
    triangulate mirror-symmetrically); per-vertex fields carry over with their y components negated."""
    m = verts.clone()
    m[:, 1] = -m[:, 1]
    return m, faces[:, [0, 2, 1]]
