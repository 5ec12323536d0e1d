"""SplineConv (Fey et al. 2018) in plain PyTorch: PyG's semantics, fast on CPU.

For an edge j -> i with pseudo-coordinates u ∈ [0, 1]^d, open B-splines of degree 1 with K_d knots per dimension
give 2^d (corner, weight) pairs: v_d = u_d (K_d − 1), corner index (⌊v_d⌋ + b_d) mod K_d and weight
Π_d (b_d ? frac(v_d) : 1 − frac(v_d)), b ∈ {0, 1}^d. The message is Σ_s w_s · x_j W[k_s], messages are averaged
at the target node, then the root term x_i W_root and the bias are added — exactly
``torch_geometric.nn.SplineConv(aggr="mean", degree=1, is_open_spline=True, root_weight=True, bias=True)``.

How it is computed: the basis of a graph is one sparse matrix S of shape (V·K, V) with 2^d entries per edge,
S[i·K + k_s, j] = w_s / deg(i). It depends only on the graph, so it is built once per forward pass
(:func:`spline_basis`) and shared by every layer. A layer is then ``A = S @ x`` (a CSR sparse-dense product,
(V·K, C_in)) followed by one dense matmul ``A.view(V, K·C_in) @ W.view(K·C_in, C_out)``. The backward pass is the
transposed products (S is stored in both orientations) plus, only when the pseudo-coordinates require a gradient
(shape optimization), a sampled dense-dense product for dL/dS. Under ``torch.autocast('cpu', torch.bfloat16)``
the dense matmuls run in bfloat16 while the sparse products stay in float32. Where oneDNN runs bfloat16 (AVX-512
and newer) it pays (``benchmarks/surrogate_native_bf16_cpu.json``); on an AVX2-only CPU bfloat16 is many times
*slower* (``benchmarks/surrogate_avx2_epyc.json``, :func:`native_bf16`), so the configs' ``bf16: null`` lets
:func:`resolve_bf16` decide. The compiled
``torch_spline_conv`` CPU kernel instead weights every edge separately; ``scripts/bench/bench_surrogate.py`` measures
both side by side.

These products allocate (V·K, C) arrays of tens of MB per layer; glibc returns such blocks to the OS after each
use and page-faults them back in, which costs more than the arithmetic (``docs/architecture.md``).
:func:`aero_opt.core.memory.keep_freed_memory` raises glibc's mmap threshold so freed blocks are reused; it runs
when this module or the ``aero_opt`` package is imported (glibc only; elsewhere it does nothing).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from aero_opt.core.memory import keep_freed_memory

keep_freed_memory()  # the layers' tens-of-MB temporaries reuse freed blocks (see aero_opt.core.memory)

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)


@functools.cache
def native_bf16() -> bool:
    """Whether oneDNN runs bfloat16 matmuls on this CPU (it needs AVX-512 or newer). Where it does not (AVX2
    only), autocast to bfloat16 falls back to a reference kernel: the surrogate's (10,000 × 864) @ (864 × 32)
    matmul took 0.29 s against 0.016 s in float32 on an AVX2 AMD EPYC (2026-12-02)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_bf16(setting: bool | None, device: torch.device | str = "cpu") -> bool:
    """A config's ``bf16`` setting: ``True``/``False`` as given; ``None`` (the default): whether ``device`` runs
    bfloat16 natively (:func:`native_bf16` on a CPU, ``torch.cuda.is_bf16_supported`` on a GPU)."""
    if setting is not None:
        return setting
    return torch.cuda.is_bf16_supported() if torch.device(device).type == "cuda" else native_bf16()


def cell_corners(frac: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The 2^d corners of a d-dimensional grid cell and their multilinear weights.

    Args:
        frac: (E, d) positions inside the cell, each coordinate in [0, 1] (differentiable).

    Returns:
        Corner offsets (2^d, d) long, each 0 or 1 (corner c has bit a of c along axis a), and weights (E, 2^d):
        Π_a (offset_a ? frac_a : 1 − frac_a), summing to 1 per row.
    """
    d = frac.shape[1]
    corners = torch.arange(2**d, device=frac.device)
    bits = (corners.unsqueeze(1) >> torch.arange(d, device=frac.device)) & 1  # (2^d, d)
    return bits, torch.where(bits.unsqueeze(0).bool(), frac.unsqueeze(1), 1.0 - frac.unsqueeze(1)).prod(dim=2)


def grid_corners(t: torch.Tensor, nodes: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Multilinear interpolation weights of points to a regular d-dimensional grid of nodes.

    Args:
        t: (V, d) positions in node units (node i of axis a sits at t_a = i; differentiable). Points outside the
            grid take the weights of the nearest boundary point.
        nodes: node counts per axis (≥ 1 each; a single-node axis puts all its weight on that node).

    Returns:
        Flat node indices (V, 2^d) long, row-major (the last axis fastest: in 3D node (i, j, k) is
        ``(i * n_1 + j) * n_2 + k``), and weights (V, 2^d), each row ≥ 0 and summing to 1 (:func:`cell_corners`).
    """
    n_t = t.new_tensor(nodes)
    t = torch.minimum(t.clamp_min(0.0), n_t - 1)
    i0 = torch.minimum(t.detach().floor(), (n_t - 2).clamp_min(0.0))
    bits, w = cell_corners(t - i0)
    idx = torch.minimum(i0.long().unsqueeze(1) + bits.unsqueeze(0), n_t.long() - 1)
    flat = idx[..., 0]
    for a in range(1, len(nodes)):
        flat = flat * nodes[a] + idx[..., a]
    return flat, w


def spline_basis_deg1(pseudo: torch.Tensor, kernel_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Open degree-1 B-spline basis.

    Args:
        pseudo: (E, d) pseudo-coordinates in [0, 1].
        kernel_size: knots per dimension K.

    Returns:
        weights (E, 2^d) and flat kernel indices (E, 2^d) long in [0, K^d).
    """
    d = pseudo.shape[1]
    v = pseudo * (kernel_size - 1)
    lo = v.detach().floor()
    bits, w = cell_corners(v - lo)
    idx = (lo.long().unsqueeze(1) + bits.unsqueeze(0)) % kernel_size  # (E, 2^d, d)
    stride = kernel_size ** torch.arange(d, device=pseudo.device)
    flat = (idx * stride).sum(dim=2)
    return w, flat


@dataclass
class SplineBasis:
    """The sparse basis matrix S (V·K × V) of one graph, in both orientations. Build with :func:`spline_basis`."""

    values: torch.Tensor
    """(nnz,) entries w_s / deg(i) (edge j -> i, corner s at row i·K + k_s, column j) in S's CSR order; carries
    the pseudo-coordinate gradient."""
    values_t: torch.Tensor
    """(nnz,) the same entries in Sᵀ's CSR order (no gradient: the backward pass only reads them)."""
    crow: torch.Tensor
    """(V·K + 1,) int32 CSR row pointers of S."""
    col_sorted: torch.Tensor
    """(nnz,) int32 CSR column indices of S."""
    crow_t: torch.Tensor
    """(V + 1,) int32 CSR row pointers of Sᵀ."""
    col_t: torch.Tensor
    """(nnz,) int32 CSR column indices of Sᵀ."""
    num_nodes: int
    kernels: int
    """K = kernel_size^d."""


def _csr(rows: torch.Tensor, cols: torch.Tensor, n_rows: int, n_cols: int
         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CSR layout (int32 row pointers and column indices, and the entry order) of a COO pattern."""
    perm = torch.argsort(rows * n_cols + cols)
    crow = torch.zeros(n_rows + 1, dtype=torch.int32, device=rows.device)
    crow[1:] = torch.bincount(rows, minlength=n_rows).cumsum(0)
    return crow, cols[perm].int(), perm


def spline_basis(edge_index: torch.Tensor, pseudo: torch.Tensor, num_nodes: int, kernel_size: int) -> SplineBasis:
    """Build the basis of a graph once for all its SplineConv layers.

    Args:
        edge_index: (2, E) long, row 0 source j, row 1 target i.
        pseudo: (E, d) pseudo-coordinates in [0, 1] (may require grad).
        num_nodes: V.
        kernel_size: knots per dimension.

    Returns:
        The :class:`SplineBasis` (mean aggregation folded into the values).
    """
    src, dst = edge_index[0], edge_index[1]
    w, k = spline_basis_deg1(pseudo, kernel_size)
    kernels = kernel_size ** pseudo.shape[1]
    corners = w.shape[1]
    deg = torch.bincount(dst, minlength=num_nodes).clamp_min(1).to(w.dtype)
    values = (w / deg[dst].unsqueeze(1)).reshape(-1)
    rows = (dst.unsqueeze(1) * kernels + k).reshape(-1)
    cols = src.unsqueeze(1).expand(-1, corners).reshape(-1)
    crow, col_sorted, perm = _csr(rows, cols, num_nodes * kernels, num_nodes)
    crow_t, col_t, perm_t = _csr(cols, rows, num_nodes, num_nodes * kernels)
    return SplineBasis(values[perm], values.detach()[perm_t], crow, col_sorted, crow_t, col_t, num_nodes, kernels)


class _Aggregate(torch.autograd.Function):
    """A = S @ x for a :class:`SplineBasis` S (values in CSR order), differentiable in x and in S's values."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, values: torch.Tensor,
                basis: SplineBasis) -> torch.Tensor:
        """x (V, C) node features, values (nnz,) S's entries in CSR order -> S @ x (V · K, C), K kernels."""
        s = torch.sparse_csr_tensor(basis.crow, basis.col_sorted, values,
                                    size=(basis.num_nodes * basis.kernels, x.shape[0]), check_invariants=False)
        x = x.to(values.dtype)
        ctx.save_for_backward(x, values)
        ctx.basis = basis
        with torch.autocast(x.device.type, enabled=False):  # the sparse product has no bfloat16 kernel
            return s @ x

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
                 ) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        """grad (V · K, C) of the output -> gradients for x (V, C) = Sᵀ grad and for S's values (nnz,)."""
        x, values = ctx.saved_tensors
        b: SplineBasis = ctx.basis
        grad = grad.to(values.dtype)
        gx = gv = None
        if ctx.needs_input_grad[0]:
            st = torch.sparse_csr_tensor(b.crow_t, b.col_t, b.values_t, size=(x.shape[0], grad.shape[0]),
                                         check_invariants=False)
            gx = st @ grad
        if ctx.needs_input_grad[1]:  # dL/dS sampled on S's pattern (SDDMM), already in CSR order
            pattern = torch.sparse_csr_tensor(b.crow, b.col_sorted, values, size=(grad.shape[0], x.shape[0]),
                                              check_invariants=False)
            gv = torch.sparse.sampled_addmm(pattern, grad, x.t(), beta=0.0).values()
        return gx, gv, None


class SplineConv(nn.Module):
    """SplineConv layer: (x (N, C_in), edge_index (2, E), pseudo (E, d)) -> (N, C_out)."""

    def __init__(self, in_channels: int, out_channels: int, dim: int = 3, kernel_size: int = 3) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.dim, self.kernel_size = in_channels, out_channels, dim, kernel_size
        self.K = kernel_size**dim
        self.weight = nn.Parameter(torch.empty(self.K, in_channels, out_channels))
        self.root = nn.Parameter(torch.empty(in_channels, out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyG's initialization: uniform(±1/√(K·C_in)) for the kernels, Kaiming-uniform-like for the root."""
        bound = 1.0 / math.sqrt(self.K * self.in_channels)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.root, -1.0 / math.sqrt(self.in_channels), 1.0 / math.sqrt(self.in_channels))
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, pseudo: torch.Tensor) -> torch.Tensor:
        """Args: x (N, C_in); edge_index (2, E) long, row 0 source j, row 1 target i; pseudo (E, dim) in [0, 1].

        Returns:
            (N, C_out). Builds the basis for this call; a network should build it once with :func:`spline_basis`
            and call :meth:`apply_basis` in every layer.
        """
        return self.apply_basis(x, spline_basis(edge_index, pseudo, x.shape[0], self.kernel_size))

    def apply_basis(self, x: torch.Tensor, basis: SplineBasis) -> torch.Tensor:
        """The layer on a prebuilt basis: x (N, C_in) -> (N, C_out)."""
        if basis.kernels != self.K:
            raise ValueError(f"basis has {basis.kernels} kernels, layer has {self.K}")
        n = x.shape[0]
        agg = _Aggregate.apply(x, basis.values, basis)  # (N·K, C_in)
        out = agg.view(n, self.K * self.in_channels) @ self.weight.reshape(self.K * self.in_channels, -1)
        return out + x @ self.root + self.bias

    @torch.no_grad()
    def load_from_pyg(self, conv: nn.Module) -> SplineConv:
        """Copy the parameters of a ``torch_geometric.nn.SplineConv`` (same sizes)."""
        self.weight.copy_(conv.weight)
        self.root.copy_(conv.lin.weight.t())
        self.bias.copy_(conv.bias)
        return self
