"""After set-up, PyG's SplineConv (with the compiled torch-spline-conv backend) imports and runs, with gradients."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import SplineConv

pytest.importorskip("torch_spline_conv", reason="the optional compiled kernel (scripts/setup.sh installs it)")


def test_splineconv_forward_backward() -> None:
    torch.manual_seed(0)
    conv = SplineConv(4, 8, dim=3, kernel_size=3)
    x = torch.randn(10, 4, requires_grad=True)
    edge_index = torch.randint(0, 10, (2, 40))
    pseudo = torch.rand(40, 3)
    y = conv(x, edge_index, pseudo)
    assert y.shape == (10, 8) and torch.isfinite(y).all()
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # A node without incoming edges gets only the root weight and bias: mean aggregation of nothing is 0.
    lonely = torch.zeros(1, 4)
    out = conv(torch.cat([lonely, torch.zeros(1, 4)]), torch.tensor([[1], [1]]), torch.rand(1, 3))
    assert torch.allclose(out[0], conv.bias)
