"""The project's SplineConv equals PyG's SplineConv (compiled torch-spline-conv backend): outputs and gradients."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import SplineConv as PygSplineConv

from surrogate import spline_conv
from surrogate.spline_conv import SplineConv, grid_corners, resolve_bf16, spline_basis_deg1


@pytest.mark.parametrize("seed,n,e,cin,cout", [(0, 30, 120, 4, 8), (1, 200, 1500, 16, 32), (2, 7, 3, 3, 5)])
def test_matches_pyg_outputs_and_gradients(seed: int, n: int, e: int, cin: int, cout: int) -> None:
    pytest.importorskip("torch_spline_conv", reason="the optional compiled kernel (scripts/setup.sh installs it)")
    torch.manual_seed(seed)
    ref = PygSplineConv(cin, cout, dim=3, kernel_size=3).double()
    torch.nn.init.normal_(ref.bias)  # non-zero bias so it is checked too
    ours = SplineConv(cin, cout, dim=3, kernel_size=3).double().load_from_pyg(ref)
    x = torch.randn(n, cin, dtype=torch.float64)
    ei = torch.randint(0, n, (2, e))
    pseudo = torch.rand(e, 3, dtype=torch.float64)
    pseudo[:3] = torch.tensor([[0.0, 0.5, 1.0], [1.0, 1.0, 1.0], [0.25, 0.0, 0.75]], dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = ref(xa, ei, pseudo), ours(xb, ei, pseudo)
    assert torch.allclose(ya, yb, atol=1e-10)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    assert torch.allclose(xa.grad, xb.grad, atol=1e-10)
    assert torch.allclose(ref.weight.grad, ours.weight.grad, atol=1e-10)
    assert torch.allclose(ref.lin.weight.grad.t(), ours.root.grad, atol=1e-10)
    assert torch.allclose(ref.bias.grad, ours.bias.grad, atol=1e-10)


def test_gradient_wrt_pseudo_coordinates() -> None:
    torch.manual_seed(3)
    conv = SplineConv(3, 4).double()
    x = torch.randn(10, 3, dtype=torch.float64)
    ei = torch.randint(0, 10, (2, 30))
    pseudo = (torch.rand(30, 3, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    torch.autograd.gradcheck(lambda p: conv(x, ei, p), (pseudo,))


def test_basis_partition_of_unity() -> None:
    w, k = spline_basis_deg1(torch.rand(50, 3), 3)
    assert torch.allclose(w.sum(dim=1), torch.ones(50)) and k.min() >= 0 and k.max() < 27


@pytest.mark.parametrize("nodes", [(6,), (4, 3), (3, 1, 5), (2, 3, 2, 4)])
def test_grid_corners_reproduce_linear_fields_and_clamp(nodes: tuple[int, ...]) -> None:
    d = len(nodes)
    torch.manual_seed(d)
    t = torch.rand(500, d, dtype=torch.float64) * (torch.tensor(nodes, dtype=torch.float64) - 1)
    flat, w = grid_corners(t, nodes)
    assert flat.shape == w.shape == (500, 2**d)
    assert int(flat.min()) >= 0 and int(flat.max()) < int(torch.tensor(nodes).prod())
    assert torch.allclose(w.sum(1), torch.ones(500, dtype=torch.float64)) and bool((w >= 0).all())
    grids = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in nodes], indexing="ij")
    coeff = torch.arange(1, d + 1, dtype=torch.float64)
    field = sum(c * g for c, g in zip(coeff, grids)).reshape(-1)  # linear in the node coordinates, row-major flat
    assert torch.allclose((field[flat] * w).sum(1), t @ coeff)  # exact on linear fields (single-node axes: t = 0)
    outside = t + torch.where(torch.rand(500, d) < 0.5, -5.0, 5.0).double()
    clamped = torch.minimum(outside.clamp_min(0.0), torch.tensor(nodes, dtype=torch.float64) - 1)
    f_out, w_out = grid_corners(outside, nodes)
    assert torch.allclose((field[f_out] * w_out).sum(1), clamped @ coeff)  # outside: the nearest boundary point


@pytest.mark.parametrize("native", [True, False])
def test_resolve_bf16_follows_the_cpu_only_when_unset(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(spline_conv, "native_bf16", lambda: native)
    assert resolve_bf16(None) is native
    assert resolve_bf16(True) is True and resolve_bf16(False) is False
