"""The SplineCNN surrogate: invariant to vertex order, differentiable in positions, clear errors on bad meshes."""

from __future__ import annotations

import pytest
import torch
import trimesh

from aero_opt.errors import AeroOptError
from surrogate.graph import build_graph, max_edge_component, mesh_edges, vertex_normals
from surrogate.splinecnn import PressureSplineCNN, SurrogateConfig

SMALL = SurrogateConfig(width=8, blocks=2)


def _car_like() -> tuple[torch.Tensor, torch.Tensor]:
    m = trimesh.creation.icosphere(subdivisions=2)
    m.apply_scale([2.0, 0.8, 0.6])
    m.apply_translation([2.0, 0.0, 0.8])
    return torch.as_tensor(m.vertices, dtype=torch.float32), torch.as_tensor(m.faces)


def test_vertex_order_invariance() -> None:
    torch.manual_seed(0)
    v, f = _car_like()
    model = PressureSplineCNN(SMALL)
    mx = max_edge_component(v, f)
    y = model(build_graph(v, f, mx))
    perm = torch.randperm(len(v))
    inv = torch.argsort(perm)
    y2 = model(build_graph(v[perm], inv[f], mx))
    assert torch.allclose(y2, y[perm], atol=1e-5)
    # ...and to face order and to which corner a face starts with
    y3 = model(build_graph(v, f[torch.randperm(len(f))][:, [1, 2, 0]], mx))
    assert torch.allclose(y3, y, atol=1e-5)


def test_differentiable_in_vertex_positions() -> None:
    torch.manual_seed(1)
    v, f = _car_like()
    v = v.double().requires_grad_(True)
    model = PressureSplineCNN(SMALL).double()
    model(build_graph(v, f, 0.5))[:, 0].sum().backward()
    assert v.grad is not None and torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0


def test_graph_basics() -> None:
    v, f = _car_like()
    ei = mesh_edges(f)
    assert ei.shape[1] == 2 * (3 * len(f) // 2)  # closed mesh: E = 3F/2 undirected
    n = vertex_normals(v, f)
    outward = ((v - v.mean(0)) * n).sum(1)
    assert (outward > 0).all()
    g = build_graph(v, f, max_edge_component(v, f))
    assert g.pseudo.min() >= 0 and g.pseudo.max() <= 1


def test_bad_meshes() -> None:
    v, f = _car_like()
    with pytest.raises(AeroOptError, match="no faces"):
        build_graph(v, f[:0], 0.5)
    v_nan = v.clone()
    v_nan[3, 1] = float("nan")
    with pytest.raises(AeroOptError, match="NaN"):
        build_graph(v_nan, f, 0.5)
