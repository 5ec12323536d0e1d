"""Device choice: names resolve (GPUs stood in for), bad ones name themselves, and a module on another device
takes and returns CPU tensors with gradients flowing through."""

from __future__ import annotations

import pytest
import torch

from aero_opt.core.device import OnDevice, on_device, resolve_device
from aero_opt.core.errors import AeroOptError


def test_names_resolve_with_and_without_gpus() -> None:
    assert resolve_device("auto", cuda_available=False) == torch.device("cpu")
    assert resolve_device("auto", cuda_available=True, cuda_count=2) == torch.device("cuda")
    assert resolve_device("cpu", cuda_available=True, cuda_count=2) == torch.device("cpu")
    assert resolve_device("cuda:1", cuda_available=True, cuda_count=2) == torch.device("cuda", 1)
    with pytest.raises(AeroOptError, match="device 'cuda:2': this machine has 2 CUDA device"):
        resolve_device("cuda:2", cuda_available=True, cuda_count=2)
    with pytest.raises(AeroOptError, match="device 'cuda': this machine has 0 CUDA device.*no GPU"):
        resolve_device("cuda", cuda_available=False)
    with pytest.raises(AeroOptError, match="device 'tpu': expected auto"):
        resolve_device("tpu")


def test_on_device_is_the_module_itself_on_the_cpu() -> None:
    lin = torch.nn.Linear(3, 2)
    assert on_device(lin, torch.device("cpu")) is lin


def test_on_device_wrapper_moves_inputs_and_outputs_and_passes_gradients() -> None:
    """With the CPU standing in for the GPU, the wrapper must be transparent: same values, same gradients."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    wrapped = OnDevice(lin, torch.device("cpu"))
    x = torch.randn(5, 3, requires_grad=True)
    out = wrapped(x)
    assert torch.equal(out, lin(x))
    out.square().sum().backward()
    g = x.grad.clone()
    x.grad = None
    lin(x).square().sum().backward()
    assert torch.equal(g, x.grad)
    assert wrapped.out_features == 2  # attributes of the inner module reach through
    assert list(wrapped.parameters()) == list(lin.parameters())
