"""Quick shaded pictures of triangle meshes with matplotlib (painter's algorithm, Lambert shading).

No OpenGL or display is needed, so pictures work on a headless CI machine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from aero_opt.core.atomic import atomic_open  # noqa: E402

VIEWS: dict[str, tuple[float, float]] = {"side": (0.0, 0.0), "three_quarter": (-35.0, 20.0), "top": (0.0, 89.9),
                                         "front": (-90.0, 0.0)}
"""Camera (azimuth, elevation) in degrees; azimuth 0 looks along +y at the car's left side."""


def _camera(azim_deg: float, elev_deg: float) -> np.ndarray:
    """Rotation (3, 3) whose rows are the screen right, screen up and towards-the-viewer axes."""
    az, el = math.radians(azim_deg), math.radians(elev_deg)
    view = np.array([math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])  # towards viewer
    right = np.cross([0.0, 0.0, 1.0], view)
    right /= np.linalg.norm(right)
    up = np.cross(view, right)
    return np.stack([right, up, view])


def colour_map(values: np.ndarray, cmap: str, clim: tuple[float, float]) -> np.ndarray:
    """RGBA colours (N, 4) in [0, 1] of ``values`` (N,) through the matplotlib colormap ``cmap``, clipped to
    ``clim`` = (low, high)."""
    lo, hi = clim
    return plt.get_cmap(cmap)(np.clip((np.asarray(values, np.float64) - lo) / max(hi - lo, 1e-12), 0.0, 1.0))


def draw_mesh(ax: Axes, verts: np.ndarray, faces: np.ndarray, view: str | tuple[float, float] = "three_quarter",
              values: np.ndarray | None = None, cmap: str = "coolwarm", clim: tuple[float, float] | None = None,
              color: Sequence[float] = (0.62, 0.70, 0.82)) -> PolyCollection:
    """Draw a triangle mesh into a 2-D matplotlib axis.

    Args:
        ax: target axis (its aspect is set to equal and its frame hidden).
        verts: (V, 3) float vertex positions.
        faces: (F, 3) int triangles with outward winding (back faces are culled).
        view: a name from :data:`VIEWS` or an (azimuth, elevation) pair in degrees.
        values: optional per-vertex (V,) or per-face (F,) scalars to colour by (e.g. pressure).
        cmap: colormap for ``values``.
        clim: colour limits for ``values`` (default: 2nd-98th percentile).
        color: base RGB colour when no values are given.

    Returns:
        The PolyCollection added to ``ax`` (usable for a colorbar when ``values`` is given).
    """
    azel = VIEWS[view] if isinstance(view, str) else view
    rot = _camera(*azel)
    p = np.asarray(verts, np.float64) @ rot.T
    tri = p[np.asarray(faces)]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-30
    front = n[:, 2] > 0.0
    order = np.argsort(tri[front, :, 2].mean(axis=1))
    tri_f = tri[front][order]
    light = np.array([0.35, 0.45, 0.82])
    shade = 0.35 + 0.65 * np.clip(n[front][order] @ (light / np.linalg.norm(light)), 0.0, 1.0)
    if values is None:
        rgb = np.clip(np.outer(shade, np.asarray(color)), 0.0, 1.0)
        coll = PolyCollection(tri_f[:, :, :2], facecolors=rgb, edgecolors=rgb, linewidths=0.3)
    else:
        vals = np.asarray(values, np.float64)
        face_vals = vals[np.asarray(faces)].mean(axis=1) if vals.shape[0] == len(verts) else vals
        face_vals = face_vals[front][order]
        lo, hi = clim if clim is not None else tuple(np.percentile(face_vals, [2, 98]))
        rgb = colour_map(face_vals, cmap, (lo, hi))[:, :3]
        rgb = np.clip(rgb * (0.55 + 0.45 * shade[:, None]), 0.0, 1.0)
        coll = PolyCollection(tri_f[:, :, :2], facecolors=rgb, edgecolors=rgb, linewidths=0.3,
                              cmap=plt.get_cmap(cmap))
        coll.set_array(None)
        coll.set_clim(lo, hi)
    ax.add_collection(coll)
    xy = tri_f[:, :, :2].reshape(-1, 2)
    if len(xy):
        pad = 0.03 * float(np.ptp(xy, axis=0).max())
        ax.set_xlim(xy[:, 0].min() - pad, xy[:, 0].max() + pad)
        ax.set_ylim(xy[:, 1].min() - pad, xy[:, 1].max() + pad)
    ax.set_aspect("equal")
    ax.axis("off")
    return coll


def add_colorbar(fig: Figure, axes: Axes | Sequence[Axes] | np.ndarray, coll: PolyCollection, label: str) -> None:
    """A colour scale beside ``axes`` for the values :func:`draw_mesh` coloured ``coll`` by (its colormap and
    limits), labelled with the quantity and unit (``"Cp"``, ``"p (Pa)"``)."""
    lo, hi = coll.get_clim()
    scale = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(lo, hi), cmap=coll.get_cmap())
    fig.colorbar(scale, ax=axes, label=label, shrink=0.85, pad=0.02)


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> None:
    """Write ``fig`` as a PNG to ``path`` atomically (folder created if missing) and close it."""
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=dpi)
    plt.close(fig)


def plot_curves(path: str | Path, x: Sequence[float], curves: dict[str, Sequence[float]], xlabel: str,
                ylabel: str, log: bool = True) -> None:
    """A line plot of one or more curves against ``x`` (legend when more than one), saved as a PNG.

    Used for the loss curves of every training loop.
    """
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for label, y in curves.items():
        (ax.semilogy if log else ax.plot)(list(x), list(y), label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if len(curves) > 1:
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
