"""Data-parallel training across processes (``torchrun``): who this process is, and summing over all of them.

Under ``torchrun --nproc_per_node K`` every process runs the same command; :func:`init_from_env` joins them into
one process group (gloo on the CPU, nccl on GPUs). Outside torchrun everything here is the identity: rank 0 of 1.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_from_env(device: torch.device) -> tuple[int, int]:
    """Join the process group ``torchrun`` describes in the environment (once); returns (rank, world size).

    Returns (0, 1) when not started by torchrun (no ``WORLD_SIZE`` above 1) and no group exists.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def local_device(device: torch.device) -> torch.device:
    """The GPU of this process under torchrun (``cuda:LOCAL_RANK``) when ``device`` is a GPU, else ``device``."""
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def world() -> tuple[int, int]:
    """(rank, world size) of the current process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over every rank, in place (itself without a process group)."""
    if world()[1] > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier() -> None:
    """Wait for every rank (nothing without a process group)."""
    if world()[1] > 1:
        dist.barrier()


def sum_gradients(params: list[torch.nn.Parameter]) -> None:
    """Sum every parameter's gradient over the ranks, in one flat all-reduce (a parameter without a gradient on
    this rank contributes zeros). Nothing without a process group."""
    if world()[1] == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = sum_over_ranks(torch.cat([g.reshape(-1) for g in grads]))
    offset = 0
    for p in params:
        p.grad = flat[offset:offset + p.numel()].view_as(p).clone()
        offset += p.numel()
