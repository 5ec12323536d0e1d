"""A differentiable soft silhouette rasterizer in plain PyTorch (SoftRas-style), fast enough on CPU.

Each triangle is projected orthographically onto the image plane of a camera; for a pixel centre p its
coverage is ``D = sigmoid(d(p) / σ)`` with d the signed distance from p to the projected triangle (positive
inside, in pixels). Coverages are aggregated as a probabilistic union, ``S(p) = 1 − Π_f (1 − D_f(p))``,
computed in log space. Pairs (triangle, pixel) are generated only inside each triangle's bounding box grown by
``σ·ln(1e3)`` (where D < 1e-3), so the cost is proportional to the covered area, not pixels × triangles.
Everything is differentiable in the vertex positions. Back faces count like front faces: a silhouette is the
union of all projected triangles; triangles seen exactly edge-on (no projected area) are skipped. The soft union
slightly widens edges where several layers overlap (about σ·ln2/2 pixels per layer; 1-2% of the area of a
32-pixel cube at σ = 0.3).

Why hand-written: PyTorch3D has no installable wheel here, and Mitsuba 3's ``llvm_ad_rgb`` variant needs libLLVM
plus a scene description for a quantity (a blurred silhouette) that takes ~60 lines of PyTorch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from aero_opt.core.errors import AeroOptError

LOG_CUTOFF = math.log(1e3)
"""Pairs farther than σ·ln(1e3) outside a triangle (coverage below 1e-3) are skipped."""


@dataclass(frozen=True)
class Camera:
    """An orthographic camera looking at ``centre`` from the direction (azimuth, elevation) in degrees.

    ``half_extent`` is half the side of the square field of view (world units); the image is ``size``² pixels.
    """

    azimuth: float = 0.0
    elevation: float = 0.0
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    half_extent: float = 1.0
    size: int = 128

    def rotation(self) -> torch.Tensor:
        """(3, 3) world -> camera rotation; rows: image right, image up, towards the viewer."""
        az, el = math.radians(self.azimuth), math.radians(self.elevation)
        view = torch.tensor([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
        up = torch.tensor([0.0, 1.0, 0.0]) if abs(math.cos(el)) > 1e-6 else torch.tensor([0.0, 0.0, -1.0])
        right = torch.linalg.cross(up, view)
        right = right / right.norm()
        up = torch.linalg.cross(view, right)
        return torch.stack([right, up, view])

    def project(self, verts: torch.Tensor) -> torch.Tensor:
        """Pixel coordinates (V, 2) (x to the right, y downwards; pixel centres at integers + 0.5)."""
        r = self.rotation().to(verts)
        q = (verts - torch.as_tensor(self.centre, dtype=verts.dtype)) @ r[:2].t()
        scale = self.size / (2.0 * self.half_extent)
        return torch.stack([(q[:, 0] + self.half_extent) * scale, (self.half_extent - q[:, 1]) * scale], dim=1)


def _segment_distance2(px: torch.Tensor, py: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor, bx: torch.Tensor,
                       by: torch.Tensor) -> torch.Tensor:
    """Squared distance (N,) from points (px, py) to segments a-b (all (N,) component tensors)."""
    ex, ey = bx - ax, by - ay
    wx, wy = px - ax, py - ay
    t = ((wx * ex + wy * ey) / (ex * ex + ey * ey).clamp_min(1e-12)).clamp(0.0, 1.0)
    dx, dy = wx - t * ex, wy - t * ey
    return dx * dx + dy * dy


def _cross2(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """z component (N,) of the cross products of 2-D vectors u, v (N, 2)."""
    return u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]


def silhouette(verts: torch.Tensor, faces: torch.Tensor, camera: Camera, sigma: float = 0.5) -> torch.Tensor:
    """Soft silhouette (size, size) in [0, 1] of a triangle mesh, differentiable in ``verts``.

    Args:
        verts: (V, 3) vertex positions (world units).
        faces: (F, 3) long triangles (orientation irrelevant).
        camera: the orthographic camera and image size.
        sigma: edge softness in pixels (smaller: sharper, sparser gradients).

    Returns:
        (size, size) tensor, row 0 at the top of the image.
    """
    if faces.numel() == 0:
        raise AeroOptError("silhouette of a mesh without faces")
    if not torch.isfinite(verts).all():
        raise AeroOptError("silhouette: NaN or infinite vertex coordinates")
    n = camera.size
    uv = camera.project(verts)
    tri = uv[faces]  # (F, 3, 2)
    margin = sigma * LOG_CUTOFF
    with torch.no_grad():
        lo = (tri.min(dim=1).values - margin - 0.5).floor().clamp(0, n - 1).long()
        hi = (tri.max(dim=1).values + margin - 0.5).ceil().clamp(0, n - 1).long()
        w = (hi[:, 0] - lo[:, 0] + 1).clamp_min(0)
        h = (hi[:, 1] - lo[:, 1] + 1).clamp_min(0)
        inside_img = (tri.max(dim=1).values >= -margin).all(dim=1) & (tri.min(dim=1).values <= n + margin).all(dim=1)
        edge_on = _cross2(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]).abs() < 1e-9  # no projected area
        counts = torch.where(inside_img & ~edge_on, w * h, torch.zeros_like(w))
        fid = torch.repeat_interleave(torch.arange(len(faces)), counts)
        offsets = torch.arange(int(counts.sum())) - torch.repeat_interleave(counts.cumsum(0) - counts, counts)
        px = lo[fid, 0] + offsets % w[fid]
        py = lo[fid, 1] + torch.div(offsets, w[fid], rounding_mode="floor")
    if fid.numel() == 0:
        return torch.zeros(n, n, dtype=verts.dtype)
    qx, qy = px.to(verts.dtype) + 0.5, py.to(verts.dtype) + 0.5
    t = tri[fid]
    ax, ay, bx, by, cx, cy = t[:, 0, 0], t[:, 0, 1], t[:, 1, 0], t[:, 1, 1], t[:, 2, 0], t[:, 2, 1]
    d2 = torch.minimum(torch.minimum(_segment_distance2(qx, qy, ax, ay, bx, by),
                                     _segment_distance2(qx, qy, bx, by, cx, cy)),
                       _segment_distance2(qx, qy, cx, cy, ax, ay))
    dist = d2.clamp_min(1e-12).sqrt()
    with torch.no_grad():  # inside test: the three edge functions share the triangle's orientation
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        e0 = (bx - ax) * (qy - ay) - (by - ay) * (qx - ax)
        e1 = (cx - bx) * (qy - by) - (cy - by) * (qx - bx)
        e2 = (ax - cx) * (qy - cy) - (ay - cy) * (qx - cx)
        sgn = torch.where(area >= 0, 1.0, -1.0)
        inside = (e0 * sgn >= 0) & (e1 * sgn >= 0) & (e2 * sgn >= 0)
    d = torch.where(inside, dist, -dist)
    log_miss = torch.nn.functional.logsigmoid(-d / sigma)  # log(1 − D)
    acc = torch.zeros(n * n, dtype=verts.dtype).index_add(0, py * n + px, log_miss)
    return (1.0 - torch.exp(acc)).view(n, n)
