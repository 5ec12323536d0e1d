"""The SplineCNN surrogate: invariant to vertex order, differentiable in positions, clear errors on bad meshes."""

from __future__ import annotations

import pytest
import torch
import trimesh

from aero_opt.core.errors import AeroOptError
from surrogate.graph import build_graph, max_edge_component, mesh_edges, vertex_area_weights, vertex_normals
from surrogate.splinecnn import PressureSplineCNN, SurrogateConfig, hat_weights, widen_state

SMALL = SurrogateConfig(width=8, blocks=2)


def _model(cfg: SurrogateConfig = SMALL) -> PressureSplineCNN:
    """A model whose global-context and coarse-grid outputs (zero at initialization) are random, so they take part
    in the tests."""
    model = PressureSplineCNN(cfg)
    with torch.no_grad():
        for block in model.blocks:
            if block.glob is not None:
                block.glob.weight.normal_(0.0, 0.5)
            if block.coarse is not None:
                block.coarse.up.weight.normal_(0.0, 0.5)
    return model


def _car_like() -> tuple[torch.Tensor, torch.Tensor]:
    m = trimesh.creation.icosphere(subdivisions=2)
    m.apply_scale([2.0, 0.8, 0.6])
    m.apply_translation([2.0, 0.0, 0.8])
    return torch.as_tensor(m.vertices, dtype=torch.float32), torch.as_tensor(m.faces)


def test_vertex_order_invariance() -> None:
    torch.manual_seed(0)
    v, f = _car_like()
    model = _model()
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
    model = _model().double()
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


def test_area_weights_are_a_third_of_the_adjacent_faces() -> None:
    v, f = _car_like()
    m = trimesh.Trimesh(v.double().numpy(), f.numpy(), process=False)
    expected = torch.zeros(len(v), dtype=torch.float64).index_add_(
        0, torch.as_tensor(f.reshape(-1)), torch.tensor(m.area_faces).repeat_interleave(3) / 3.0)
    w = vertex_area_weights(v.double(), f)
    assert torch.allclose(w, expected / m.area, rtol=1e-9)


@pytest.mark.parametrize("global_context,coarse_grid", [(True, (0, 0)), (False, (0, 0)), (False, (4, 2))])
def test_global_context_reaches_the_whole_car(global_context: bool, coarse_grid: tuple[int, int]) -> None:
    """With the global term or the coarse grid a vertex's prediction depends on a far-away part of the car; without
    them the receptive field is the 2·3 + 1 = 7 one-ring layers of the small model."""
    torch.manual_seed(2)
    m = trimesh.creation.icosphere(subdivisions=4)
    m.apply_translation([0.0, 0.0, -0.5])  # into the bounds of the coarse grid (normalized frame: z in [-0.95, -0.14])
    v, f = torch.as_tensor(m.vertices, dtype=torch.float64), torch.as_tensor(m.faces)
    model = _model(SurrogateConfig(width=8, blocks=2, global_context=global_context,
                                   coarse_grid=coarse_grid)).double()
    front, back = int(v[:, 0].argmax()), int(v[:, 0].argmin())
    v2 = v.clone()
    v2[back] *= 0.9  # dent the back
    y, y2 = model(build_graph(v, f, 0.5)), model(build_graph(v2, f, 0.5))
    changed = bool((y[front] - y2[front]).abs().max() > 1e-9)
    assert changed == (global_context or min(coarse_grid) > 0)


def test_hat_weights_interpolate_linearly_over_the_bounds() -> None:
    from aero_opt.core.frame import CAR_BOUNDS

    torch.manual_seed(5)
    lo, hi = torch.tensor(CAR_BOUNDS[0]).double(), torch.tensor(CAR_BOUNDS[1]).double()
    p = lo + (hi - lo) * torch.rand(200, 3, dtype=torch.float64)
    w = hat_weights(p, (5, 3))
    assert w.shape == (200, 15) and (w >= 0).all() and torch.allclose(w.sum(1), torch.ones(200, dtype=w.dtype))
    assert ((w > 0).sum(1) <= 4).all()  # bilinear: at most the four corners of a cell
    gx, gz = torch.linspace(lo[0], hi[0], 5).double(), torch.linspace(lo[2], hi[2], 3).double()
    node_x, node_z = gx.repeat_interleave(3), gz.repeat(5)  # node (i, k) is column i * 3 + k
    assert torch.allclose(w @ node_x, p[:, 0]) and torch.allclose(w @ node_z, p[:, 2])  # exact for linear fields
    far = hat_weights(torch.tensor([[9.0, 0.0, -9.0]]).double(), (5, 3))
    assert far[0, 4 * 3 + 0] == 1.0  # outside: the nearest corner
    assert torch.equal(hat_weights(p, (1, 1)), torch.ones(200, 1, dtype=p.dtype))


def test_coarse_grid_starts_at_zero_so_it_can_join_a_trained_model() -> None:
    torch.manual_seed(6)
    v, f = _car_like()
    plain = _model(SMALL).double()
    grid = PressureSplineCNN(SurrogateConfig(width=8, blocks=2, coarse_grid=(4, 2))).double()
    missing = grid.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(".coarse." in k for k in missing)
    g = build_graph(v.double(), f, 0.5)
    assert torch.allclose(grid(g), plain(g), atol=1e-12)


@pytest.mark.parametrize("coarse_grid", [(0, 0), (3, 2)])
def test_widening_keeps_the_function_and_noise_separates_the_copies(coarse_grid: tuple[int, int]) -> None:
    from dataclasses import replace

    torch.manual_seed(8)
    v, f = _car_like()
    cfg = SurrogateConfig(width=6, blocks=2, coarse_grid=coarse_grid)
    small = _model(cfg).double()
    with torch.no_grad():  # trained-like: no zero biases, so their copying is tested too
        for p in small.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    g = build_graph(v.double(), f, 0.5, mirror_canonical=True)
    wide = PressureSplineCNN(replace(cfg, width=10)).double()
    wide.load_state_dict(widen_state(small.state_dict(), cfg, 10, noise=0.0))  # strict: every key, every shape
    with torch.no_grad():
        ref = small(g)
        assert torch.allclose(wide(g), ref, atol=1e-10)
        exact = wide.blocks[1].c2.weight.clone()
        assert torch.equal(exact[:, :, 7], exact[:, :, 1])  # channel 7 copies channel 1
        wide.load_state_dict(widen_state(small.state_dict(), cfg, 10, noise=0.01))
        noisy = wide.blocks[1].c2.weight
        assert torch.equal(noisy[:, :, :6], exact[:, :, :6]) and not torch.equal(noisy[:, :, 7], exact[:, :, 7])
        rel = float((wide(g) - ref).norm() / ref.norm())
    assert 0.0 < rel < 0.05  # nearly the same function
    with pytest.raises(AeroOptError, match="surrogate.width"):
        widen_state(small.state_dict(), cfg, 4)


@pytest.mark.parametrize("grid", [(0, 2), (3,), (-1, 2)])
def test_a_bad_coarse_grid_names_the_key(grid: tuple[int, ...]) -> None:
    with pytest.raises(AeroOptError, match="surrogate.coarse_grid"):
        SurrogateConfig(coarse_grid=grid)


@pytest.mark.parametrize("canonical,coarse_grid", [(True, (0, 0)), (False, (0, 0)), (True, (4, 2))])
def test_mirror_canonical_model_predicts_the_mirror_image_mirrored(canonical: bool,
                                                                   coarse_grid: tuple[int, int]) -> None:
    """With mirror-canonical features the prediction on a mesh's mirror image in y = 0 is the mesh's prediction
    with the y wall-shear component negated (exactly, up to rounding); plain features give another prediction.
    The mesh is deliberately asymmetric (shifted in y, tessellated without mirror symmetry)."""
    from surrogate.graph import mirror_y

    torch.manual_seed(3)
    v, f = _car_like()
    v = (v + torch.tensor([0.0, 0.13, 0.0])).double()
    v[:, 1] += 0.05 * torch.sin(7.0 * v[:, 0])  # not symmetric in y
    model = _model(SurrogateConfig(width=8, blocks=2, mirror_canonical=canonical, coarse_grid=coarse_grid)).double()
    mx = max_edge_component(v, f)
    y = model(model.graph(v, f, mx))
    vm, fm = mirror_y(v, f)
    ym = model(model.graph(vm, fm, mx))
    expected = y.clone()
    expected[:, 2] = -expected[:, 2]
    assert torch.allclose(ym, expected, atol=1e-9) == canonical
    if canonical:  # every vertex is described on the y >= 0 side: |y|, and the y normal flipped with it
        g = model.graph(v, f, mx)
        assert (g.x[:, 1] >= 0).all() and set(g.side.tolist()) == {-1.0, 1.0}
        outward = torch.where(v[:, 1] < 0, -1.0, 1.0).double() * vertex_normals(v, f)[:, 1]
        assert torch.allclose(g.x[:, 4], outward)


@pytest.mark.parametrize("coarse_grid", [(0, 0), (4, 2)])
def test_mirror_canonical_model_is_differentiable_and_order_invariant(coarse_grid: tuple[int, int]) -> None:
    torch.manual_seed(4)
    v, f = _car_like()
    v = v.double().requires_grad_(True)
    model = _model(SurrogateConfig(width=8, blocks=2, mirror_canonical=True, coarse_grid=coarse_grid)).double()
    y = model(model.graph(v, f, 0.5))
    y[:, 0].sum().backward()
    assert v.grad is not None and torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0
    perm = torch.randperm(len(v))
    y2 = model(model.graph(v.detach()[perm], torch.argsort(perm)[f], 0.5))
    assert torch.allclose(y2, y.detach()[perm], atol=1e-9)
