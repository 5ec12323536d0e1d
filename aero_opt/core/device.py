"""Which device learning runs on: ``auto`` (a GPU when there is one), ``cpu`` or ``cuda[:N]``.

The project's code keeps meshes, graphs and results on the CPU and moves only the networks' work to the device:
a model wrapped by :class:`OnDevice` (the decoder) or :class:`surrogate.model.Surrogate` takes CPU tensors, runs on
its device and returns CPU tensors, so gradients flow back through the moves and every CPU path is unchanged.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from aero_opt.core.errors import AeroOptError

DEVICE_HELP = "auto (a GPU when there is one), cpu, cuda or cuda:N"


def resolve_device(name: str = "auto", cuda_available: bool | None = None, cuda_count: int | None = None
                   ) -> torch.device:
    """The torch device of a ``device`` setting.

    Args:
        name: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        cuda_available, cuda_count: what to assume about the GPUs (None: ask torch; tests pass stand-ins).

    Raises:
        AeroOptError: an unknown name, or a GPU asked for that this machine does not have.
    """
    available = torch.cuda.is_available() if cuda_available is None else cuda_available
    count = (torch.cuda.device_count() if available else 0) if cuda_count is None else cuda_count
    if name == "auto":
        return torch.device("cuda" if available else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", name)
    if m is None:
        raise AeroOptError(f"device {name!r}: expected {DEVICE_HELP}")
    index = int(m.group(1) or 0)
    if not available or index >= count:
        raise AeroOptError(f"device {name!r}: this machine has {count} CUDA device(s)"
                           + ("" if available else " (no CUDA build of torch or no GPU)"))
    return torch.device("cuda", index)


def autocast(device: torch.device, enabled: bool) -> torch.autocast:
    """bfloat16 autocast on ``device``'s type (the dense matmuls in bfloat16, the rest float32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


class OnDevice(nn.Module):
    """A module that runs ``inner`` on ``device`` for inputs and outputs on the CPU (or wherever they are).

    ``forward(*tensors)`` moves the tensor arguments to ``device``, calls ``inner`` and moves the result back to
    the first argument's device; autograd flows through both moves. On the CPU it is ``inner`` itself.
    """

    def __init__(self, inner: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.inner = inner.to(device)
        self.device = device

    def forward(self, *args: Any) -> Any:
        home = next((a.device for a in args if isinstance(a, torch.Tensor)), torch.device("cpu"))
        out = self.inner(*(a.to(self.device) if isinstance(a, torch.Tensor) else a for a in args))
        return out.to(home)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["inner"], name)


def on_device(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` itself on the CPU, else :class:`OnDevice` around it (which moves its weights to ``device``)."""
    return module if device.type == "cpu" else OnDevice(module, device)
