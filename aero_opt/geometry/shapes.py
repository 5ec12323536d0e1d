"""Parametric car bodies and the Ahmed body, as watertight triangle meshes in metres.

Frame (shared by every stage, see :mod:`aero_opt.core.frame`): the flow runs along +x, the nose is at x = 0 and the
tail at x = length, y is lateral with the symmetry plane at y = 0, z is up with the ground at z = 0.

A car body is a loft of smooth cross-sections along x:

* the side profile is a top curve (nose, hood, windshield, roof, rear window, deck/tail) and a bottom curve
  (ground clearance, front upsweep, rear diffuser), both monotone cubic (PCHIP) interpolants of control points;
* the plan view is a half-width curve that narrows towards nose and tail;
* each cross-section is a superellipse of exponent ``squareness`` between the two curves, narrowed above the
  belt line by the ``tumblehome`` factor;
* nose and tail are closed by elliptic end caps of length ``nose_rounding`` / ``tail_rounding``.

The loft is watertight by construction; an optional rear wing on two struts is added by an exact boolean union
(manifold3d), which changes the genus from 0 to 1; the result is remeshed isotropically (pymeshlab) so that it
has no slivers. Everything is deterministic: the same parameters give the same bytes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import Literal

import manifold3d
import numpy as np
import pymeshlab
import trimesh
from scipy.interpolate import PchipInterpolator

from aero_opt.core.errors import AeroOptError
from aero_opt.core.physics import face_corners

log = logging.getLogger(__name__)

Style = Literal["fastback", "notchback", "estate"]
STYLES: tuple[str, ...] = ("fastback", "notchback", "estate")


@dataclass(frozen=True)
class CarParams:
    """Every parameter of one car body. Lengths in metres, angles in degrees, fractions in [0, 1]."""

    style: str = "fastback"
    """Body style label: fastback, notchback or estate (sets the sampling ranges, see :data:`STYLE_RANGES`)."""
    length: float = 4.5
    """Overall length (m), 3.5-5.2."""
    width: float = 1.8
    """Overall width (m), 1.6-2.0."""
    height: float = 1.42
    """Roof height above the ground (m), 1.3-1.8."""
    ground_clearance: float = 0.15
    """Height of the flat underbody above the ground (m), 0.10-0.22."""
    hood_length: float = 0.28
    """Distance from the nose to the windshield base, as a fraction of the length."""
    hood_height: float = 0.64
    """Height of the windshield base, as a fraction of the roof height."""
    windshield_rake: float = 60.0
    """Windshield angle from the vertical (deg): more rake moves the roof front back and down."""
    roof_length: float = 0.22
    """Length of the roof between windshield top and rear window top, as a fraction of the length."""
    rear_window_rake: float = 68.0
    """Rear window (or hatch) angle from the vertical (deg)."""
    tail_height: float = 0.68
    """Height of the deck/tail top, as a fraction of the roof height."""
    nose_rounding: float = 0.35
    """Length of the elliptic nose cap (m): larger is rounder."""
    tail_rounding: float = 0.12
    """Length of the elliptic tail cap (m): small gives a blunt (Kamm) tail."""
    tumblehome: float = 0.2
    """Narrowing of the greenhouse at the roof, as a fraction of the half-width."""
    squareness: float = 4.5
    """Superellipse exponent of the cross-sections (2 = ellipse, larger = boxier)."""
    nose_height: float = 0.55
    """Height of the nose's top edge between ground clearance (0) and hood height (1)."""
    plan_taper: float = 0.85
    """Half-width at the nose relative to the full half-width (plan view), the tail narrows half as much."""
    diffuser_angle: float = 4.0
    """Upsweep angle of the rear underbody (deg) over the last 15% of the length."""
    wing: bool = False
    """Rear wing on two struts (makes the body genus 1)."""
    wing_chord: float = 0.36
    """Wing chord (m)."""
    wing_gap: float = 0.18
    """Clear gap between the deck and the wing's underside (m)."""
    deck_length: float = field(default=0.0, compare=False)
    """Derived: length of the deck behind the rear window (m); filled in by :func:`car_layout`."""

    def to_dict(self) -> dict[str, float | str | bool]:
        """All parameters (including the derived deck length) as a JSON-ready dict."""
        return dataclasses.asdict(self)


# Sampling ranges per style: (low, high) for every continuous parameter.
_COMMON: dict[str, tuple[float, float]] = {
    "length": (3.5, 5.2),
    "width": (1.6, 2.0),
    "ground_clearance": (0.10, 0.22),
    "hood_length": (0.22, 0.32),
    "hood_height": (0.56, 0.70),
    "windshield_rake": (52.0, 66.0),
    "nose_rounding": (0.18, 0.50),
    "tail_rounding": (0.06, 0.30),
    "tumblehome": (0.10, 0.28),
    "squareness": (3.0, 7.0),
    "nose_height": (0.35, 0.80),
    "plan_taper": (0.75, 0.95),
    "diffuser_angle": (0.0, 9.0),
    "wing_chord": (0.30, 0.42),
    "wing_gap": (0.15, 0.24),
}
STYLE_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "fastback": {**_COMMON, "height": (1.30, 1.50), "roof_length": (0.12, 0.22),
                 "rear_window_rake": (66.0, 78.0), "tail_height": (0.60, 0.74)},
    "notchback": {**_COMMON, "height": (1.35, 1.55), "roof_length": (0.16, 0.24),
                  "rear_window_rake": (52.0, 66.0), "tail_height": (0.62, 0.74)},
    "estate": {**_COMMON, "height": (1.45, 1.80), "roof_length": (0.30, 0.42),
               "rear_window_rake": (8.0, 28.0), "tail_height": (0.48, 0.66)},
}
# Minimum deck length (m) per style: a notchback has a boot, the others only a tail lip.
_MIN_DECK: dict[str, float] = {"fastback": 0.15, "notchback": 0.55, "estate": 0.12}
_MAX_DECK: dict[str, float] = {"fastback": 0.60, "notchback": 1.20, "estate": 0.45}


@dataclass(frozen=True)
class CarLayout:
    """Stations along x (m) and heights (m) of the side-profile control points."""

    x_windshield: float
    x_roof_front: float
    x_roof_rear: float
    x_rear_window: float
    z_hood: float
    z_tail: float
    z_nose: float


def car_layout(p: CarParams) -> CarLayout:
    """Compute the side-profile layout of a car and check that it is consistent.

    Args:
        p: the car parameters.

    Returns:
        The layout (stations and heights in metres).

    Raises:
        AeroOptError: when the parameters do not describe a valid body (e.g. the rear window would end behind
            the tail), naming the offending parameter.
    """
    L, H = p.length, p.height
    z_hood = p.hood_height * H
    z_tail = p.tail_height * H
    if not p.ground_clearance + 0.2 < z_hood < H - 0.15:
        raise AeroOptError(f"hood_height={p.hood_height}: hood must lie between the underbody and the roof")
    if not p.ground_clearance + 0.2 < z_tail < H - 0.1:
        raise AeroOptError(f"tail_height={p.tail_height}: tail must lie between the underbody and the roof")
    x_ws = p.hood_length * L
    x_r0 = x_ws + (H - z_hood) * math.tan(math.radians(p.windshield_rake))
    x_r1 = x_r0 + p.roof_length * L
    x_rw = x_r1 + (H - z_tail) * math.tan(math.radians(p.rear_window_rake))
    deck = L - x_rw
    if deck < 0.1:
        raise AeroOptError(
            f"rear_window_rake={p.rear_window_rake}, roof_length={p.roof_length}: the rear window ends "
            f"{-deck + 0.1:.2f} m too far back for length={L}")
    if x_ws < p.nose_rounding + 0.1:
        raise AeroOptError(f"nose_rounding={p.nose_rounding} is longer than the hood allows")
    if deck < p.tail_rounding + 0.02:
        raise AeroOptError(f"tail_rounding={p.tail_rounding} is longer than the deck ({deck:.2f} m)")
    z_nose = p.ground_clearance + p.nose_height * (z_hood - p.ground_clearance)
    return CarLayout(x_ws, x_r0, x_r1, x_rw, z_hood, z_tail, z_nose)


def _profiles(p: CarParams, lay: CarLayout) -> tuple[PchipInterpolator, PchipInterpolator, PchipInterpolator]:
    """Top curve z_top(x), bottom curve z_bot(x) and plan half-width w(x), all in metres."""
    L, H, gc = p.length, p.height, p.ground_clearance
    crown = 0.015 * H
    top_x = [0.0, 0.45 * lay.x_windshield, lay.x_windshield, lay.x_roof_front,
             0.5 * (lay.x_roof_front + lay.x_roof_rear), lay.x_roof_rear, lay.x_rear_window, L]
    top_z = [lay.z_nose, lay.z_nose + 0.85 * (lay.z_hood - lay.z_nose), lay.z_hood, H - crown, H, H - crown,
             lay.z_tail, lay.z_tail - 0.02 * (lay.z_tail - gc)]
    diff_len = 0.15 * L
    z_diff = gc + diff_len * math.tan(math.radians(p.diffuser_angle))
    z_diff = min(z_diff, gc + 0.4 * (lay.z_tail - gc))
    bot_x = [0.0, 0.12 * L, L - diff_len, L]
    bot_z = [gc + 0.3 * (lay.z_nose - gc), gc, gc, z_diff]
    half = 0.5 * p.width
    plan_x = [0.0, 0.22 * L, 0.72 * L, L]
    plan_w = [p.plan_taper * half, half, half, (1.0 - 0.5 * (1.0 - p.plan_taper)) * half]
    return (PchipInterpolator(top_x, top_z), PchipInterpolator(bot_x, bot_z), PchipInterpolator(plan_x, plan_w))


def _stations(p: CarParams, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Stations x_j (m) from nose pole to tail pole and the end-cap factor f_j in [0, 1] at each."""
    L, rn, rt = p.length, p.nose_rounding, p.tail_rounding
    n_nose = max(6, math.ceil(0.5 * math.pi * rn / spacing))
    n_tail = max(6, math.ceil(0.5 * math.pi * rt / spacing))
    n_mid = max(2, math.ceil((L - rn - rt) / spacing))
    phi_n = np.linspace(0.0, 0.5 * math.pi, n_nose + 1)
    x_nose = rn * (1.0 - np.cos(phi_n))
    x_mid = np.linspace(rn, L - rt, n_mid + 1)[1:-1]
    phi_t = np.linspace(0.5 * math.pi, 0.0, n_tail + 1)
    x_tail = L - rt * (1.0 - np.cos(phi_t))
    xs = np.concatenate([x_nose, x_mid, x_tail])
    fs = np.concatenate([np.sin(phi_n), np.ones_like(x_mid), np.sin(phi_t)])
    return xs, fs


def _section(half_w: float, z_c: float, half_h: float, m: float, z_belt: float, z_roof: float,
             tumble: float, n_half: int) -> tuple[np.ndarray, np.ndarray]:
    """Right half (y >= 0) of one cross-section from bottom to top, resampled uniformly in arc length.

    Returns:
        (y, z), each of shape (n_half + 1,), metres; the first point is the bottom (y = 0), the last the top.
    """
    theta = np.linspace(-0.5 * math.pi, 0.5 * math.pi, 721)
    c, s = np.cos(theta), np.sin(theta)
    z = z_c + half_h * np.sign(s) * np.abs(s) ** (2.0 / m)
    t = np.clip((z - z_belt) / max(z_roof - z_belt, 1e-9), 0.0, 1.0)
    y = half_w * np.abs(c) ** (2.0 / m) * (1.0 - tumble * t * t)
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(y), np.diff(z)))])
    target = np.linspace(0.0, arc[-1], n_half + 1)
    return np.interp(target, arc, y), np.interp(target, arc, z)


def _loft(p: CarParams, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """The body without wing as a closed, outward-wound triangle mesh (vertices (V, 3) m, faces (F, 3))."""
    lay = car_layout(p)
    top, bot, plan = _profiles(p, lay)
    xs, fs = _stations(p, spacing)
    perimeter = 2.0 * (p.height + p.width)
    n_half = 2 * max(8, math.ceil(0.5 * perimeter / spacing / 2))
    rings = []
    for x, f in zip(xs[1:-1], fs[1:-1]):
        zt, zb = float(top(x)), float(bot(x))
        zc, hh = 0.5 * (zt + zb), 0.5 * (zt - zb) * f
        y, z = _section(float(plan(x)) * f, zc, hh, p.squareness, lay.z_hood, p.height, p.tumblehome, n_half)
        # Right half bottom->top, then the left half top->bottom without repeating the two y = 0 points.
        ring_y = np.concatenate([y, -y[-2:0:-1]])
        ring_z = np.concatenate([z, z[-2:0:-1]])
        rings.append(np.stack([np.full_like(ring_y, x), ring_y, ring_z], axis=1))
    n_ring = rings[0].shape[0]
    z_pole_n = 0.5 * (float(top(xs[0])) + float(bot(xs[0])))
    z_pole_t = 0.5 * (float(top(xs[-1])) + float(bot(xs[-1])))
    verts = np.concatenate([[[xs[0], 0.0, z_pole_n]], *rings, [[xs[-1], 0.0, z_pole_t]]])
    faces = []
    k = np.arange(n_ring)
    k1 = (k + 1) % n_ring
    faces.append(np.stack([np.zeros(n_ring, int), 1 + k1, 1 + k], axis=1))
    for r in range(len(rings) - 1):
        a, b = 1 + r * n_ring, 1 + (r + 1) * n_ring
        faces.append(np.stack([a + k, a + k1, b + k1], axis=1))
        faces.append(np.stack([a + k, b + k1, b + k], axis=1))
    last = 1 + (len(rings) - 1) * n_ring
    pole_t = verts.shape[0] - 1
    faces.append(np.stack([np.full(n_ring, pole_t), last + k, last + k1], axis=1))
    faces_arr = np.concatenate(faces).astype(np.int64)
    if _signed_volume(verts, faces_arr) < 0:
        faces_arr = faces_arr[:, ::-1].copy()
    return verts, faces_arr


def _signed_volume(v: np.ndarray, f: np.ndarray) -> float:
    """Signed volume (m³) enclosed by a closed triangle mesh; positive for outward winding."""
    a, b, c = face_corners(v, f)
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def _to_manifold(v: np.ndarray, f: np.ndarray) -> manifold3d.Manifold:
    """Wrap a closed mesh into a manifold3d solid, failing loudly if it is not a valid solid."""
    solid = manifold3d.Manifold(manifold3d.Mesh64(vert_properties=np.ascontiguousarray(v, np.float64),
                                                  tri_verts=np.ascontiguousarray(f, np.uint64)))
    if solid.status() != manifold3d.Error.NoError:
        raise AeroOptError(f"internal: body mesh is not a valid solid ({solid.status()})")
    return solid


def _box(lo: tuple[float, float, float], hi: tuple[float, float, float]) -> manifold3d.Manifold:
    size = tuple(h - lo_ for lo_, h in zip(lo, hi))
    return manifold3d.Manifold.cube(size).translate(lo)


_WING_THICKNESS = 0.10
"""Wing thickness (m): at least two voxels of the optimization grid, so marching cubes keeps the hole."""


def _wing_placement(p: CarParams, top: PchipInterpolator) -> tuple[float, float, float]:
    """Wing chord interval [x0, x1] (m) and the height of its underside (m); raises if it does not fit."""
    x1 = p.length - p.tail_rounding - 0.05
    x0 = x1 - p.wing_chord
    zb = float(np.max(top(np.linspace(x0, x1, 25)))) + p.wing_gap
    if zb + _WING_THICKNESS > p.height:
        raise AeroOptError(f"wing_gap={p.wing_gap}: the rear wing would stand above the roof (no deck under it)")
    return x0, x1, zb


def _wing_solids(p: CarParams, top: PchipInterpolator) -> manifold3d.Manifold:
    """Rear wing (a thick rounded profile spanning 80% of the width) and two struts rooted inside the deck."""
    x0, x1, zb = _wing_placement(p, top)
    t = _WING_THICKNESS
    span = 0.8 * p.width
    # Cross-section in x-z: a rounded slab (superellipse, exponent 4) extruded along y by the hull.
    th = np.linspace(0.0, 2.0 * math.pi, 48, endpoint=False)
    cx = 0.5 * (x0 + x1) + 0.5 * p.wing_chord * np.sign(np.cos(th)) * np.abs(np.cos(th)) ** 0.5
    cz = zb + 0.5 * t + 0.5 * t * np.sign(np.sin(th)) * np.abs(np.sin(th)) ** 0.5
    pts = np.concatenate([np.stack([cx, np.full_like(cx, s * 0.5 * span), cz], axis=1) for s in (-1.0, 1.0)])
    wing = manifold3d.Manifold.hull_points(pts)
    strut_w, strut_len = 0.12, 0.55 * p.wing_chord
    sx0 = 0.5 * (x0 + x1) - 0.5 * strut_len
    root = float(np.min(top(np.linspace(sx0, sx0 + strut_len, 25)))) - 0.12
    struts = [
        _box((sx0, s * 0.28 * p.width - 0.5 * strut_w, root),
             (sx0 + strut_len, s * 0.28 * p.width + 0.5 * strut_w, zb + 0.5 * t))
        for s in (-1.0, 1.0)
    ]
    return manifold3d.Manifold.batch_boolean([wing, *struts], manifold3d.OpType.Add)


def check_params(p: CarParams) -> CarLayout:
    """Validate a car's parameters (layout and, if present, the wing) and return its layout.

    Raises:
        AeroOptError: naming the parameter that makes the body invalid.
    """
    lay = car_layout(p)
    if p.wing:
        _wing_placement(p, _profiles(p, lay)[0])
    return lay


def _remesh(v: np.ndarray, f: np.ndarray, edge: float) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic remeshing to a target edge length (m), keeping sharp features and the surface."""
    ms = pymeshlab.MeshSet()
    ms.add_mesh(pymeshlab.Mesh(vertex_matrix=v, face_matrix=f.astype(np.int32)))
    ms.meshing_isotropic_explicit_remeshing(targetlen=pymeshlab.PureValue(edge), iterations=4,
                                            featuredeg=40.0, reprojectflag=True)
    m = ms.current_mesh()
    return m.vertex_matrix().astype(np.float64), m.face_matrix().astype(np.int64)


def make_car(p: CarParams, edge: float = 0.045) -> trimesh.Trimesh:
    """Build one watertight car body.

    Args:
        p: car parameters (see :class:`CarParams`).
        edge: target triangle edge length (m) of the final isotropic remesh.

    Returns:
        A watertight, outward-wound trimesh in metres (nose at x = 0, ground at z = 0, symmetric in y).

    Raises:
        AeroOptError: invalid parameters, or (internal) a body that fails the watertightness check.
    """
    lay = check_params(p)
    v, f = _loft(p, spacing=edge)
    if p.wing:
        top, _, _ = _profiles(p, lay)
        solid = (_to_manifold(v, f) + _wing_solids(p, top)).refine_to_length(edge)
        out = solid.to_mesh64()
        v, f = np.asarray(out.vert_properties, np.float64)[:, :3], np.asarray(out.tri_verts, np.int64)
    v, f = _remesh(v, f, edge)
    mesh = trimesh.Trimesh(v, f, process=False)
    if not (mesh.is_watertight and mesh.is_winding_consistent):
        raise AeroOptError(f"internal: generated {p.style} body is not watertight (parameters {p.to_dict()})")
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def sample_car_params(rng: np.random.Generator, style: str, wing_fraction: float = 0.25,
                      max_tries: int = 200) -> CarParams:
    """Draw one valid car from the style's ranges (uniform), rejecting inconsistent layouts.

    Args:
        rng: NumPy random generator (the only source of randomness).
        style: fastback, notchback or estate.
        wing_fraction: probability that the car gets a rear wing.
        max_tries: give up after this many rejected draws.

    Returns:
        A :class:`CarParams` whose derived ``deck_length`` is filled in.
    """
    if style not in STYLE_RANGES:
        raise AeroOptError(f"unknown style {style!r}; choose from {', '.join(STYLES)}")
    ranges = STYLE_RANGES[style]
    for _ in range(max_tries):
        values = {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in sorted(ranges.items())}
        wing = bool(rng.uniform() < wing_fraction) and style != "estate"  # an estate has no deck for a wing
        p = CarParams(style=style, wing=wing, **{k: round(v, 4) for k, v in values.items()})
        try:
            lay = check_params(p)
        except AeroOptError:
            continue
        deck = p.length - lay.x_rear_window
        if _MIN_DECK[style] <= deck <= _MAX_DECK[style]:
            return dataclasses.replace(p, deck_length=round(deck, 4))
    raise AeroOptError(f"could not draw a valid {style} car in {max_tries} tries")


# --------------------------------------------------------------------------------------------------------------
# Ahmed body (Ahmed, Ramm & Faltin 1984, SAE 840300)

AHMED_LENGTH = 1.044
AHMED_WIDTH = 0.389
AHMED_HEIGHT = 0.288
AHMED_FRONT_RADIUS = 0.100
AHMED_CLEARANCE = 0.050
AHMED_SLANT_LENGTH = 0.222
AHMED_STILT_DIAMETER = 0.030
AHMED_STILT_X = (0.2025, 0.6725)
"""Stilt stations from the nose (m): 470 mm apart; approximate, the CFD set-up omits the stilts by default."""
AHMED_STILT_Y = 0.1635
"""Stilt offset from the symmetry plane (m), approximate."""


def make_ahmed(slant_deg: float = 25.0, stilts: bool = False, segments: int = 48,
               edge: float | None = 0.015) -> trimesh.Trimesh:
    """The Ahmed body: 1044 x 389 x 288 mm, R100 front, 50 mm ground clearance, any rear slant angle.

    The slanted rear surface is 222 mm long measured along the slant (as in the experiment), so its horizontal
    run is 222 cos(phi) mm. Without stilts the body floats 50 mm above the ground.

    Args:
        slant_deg: rear slant angle from the horizontal (deg), 0-50.
        stilts: add the four 30 mm cylindrical stilts down to the ground (z = 0).
        segments: tessellation of the front roundings (per quarter circle: segments / 4).
        edge: longest edge (m) after splitting edges (points stay exactly on the body, so vertex-sampled fields
            integrate accurately); None keeps the raw hull triangulation (about a hundred faces).

    Returns:
        A watertight trimesh in metres, nose at x = 0, ground at z = 0, symmetric in y.
    """
    if not 0.0 <= slant_deg <= 50.0:
        raise AeroOptError(f"slant_deg={slant_deg}: must be in [0, 50]")
    r = AHMED_FRONT_RADIUS
    z0, z1 = AHMED_CLEARANCE, AHMED_CLEARANCE + AHMED_HEIGHT
    hw = 0.5 * AHMED_WIDTH
    # The front is the intersection of two prisms: the plan view with R100 front corners (extruded in z) and the
    # side view with R100 front corners (extruded in y); the longitudinal edges stay sharp.
    n = max(4, segments // 4) * 4
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)  # includes the four axis extremes exactly
    ca, sa = r * np.cos(t), r * np.sin(t)
    rear = np.array([[AHMED_LENGTH, sy * hw, sz] for sy in (-1, 1) for sz in (z0, z1)])
    plan_pts = np.concatenate([np.stack([r + ca, sy * (hw - r) + sa, np.full(n, sz)], axis=1)
                               for sy in (-1, 1) for sz in (z0, z1)] + [rear])
    side_pts = np.concatenate([np.stack([r + ca, np.full(n, sy * hw), zc + sa], axis=1)
                               for sy in (-1, 1) for zc in (z0 + r, z1 - r)] + [rear])
    body = manifold3d.Manifold.hull_points(plan_pts) ^ manifold3d.Manifold.hull_points(side_pts)
    if slant_deg > 0.0:
        a = math.radians(slant_deg)
        x_s = AHMED_LENGTH - AHMED_SLANT_LENGTH * math.cos(a)
        normal = np.array([math.sin(a), 0.0, math.cos(a)])  # keep the side with normal . x <= offset
        body = body.trim_by_plane(tuple(-normal), float(-normal @ np.array([x_s, 0.0, z1])))
    if stilts:
        cyl = manifold3d.Manifold.cylinder(z0 + 0.02, 0.5 * AHMED_STILT_DIAMETER, circular_segments=24)
        for x in AHMED_STILT_X:
            for sy in (-1.0, 1.0):
                body = body + cyl.translate((x, sy * AHMED_STILT_Y, 0.0))
    if edge is not None:
        body = body.refine_to_length(edge)
    out = body.to_mesh64()
    mesh = trimesh.Trimesh(np.asarray(out.vert_properties, np.float64)[:, :3], np.asarray(out.tri_verts, np.int64),
                           process=False)
    if mesh.volume < 0:
        mesh.invert()
    return mesh
