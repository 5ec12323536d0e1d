"""Room in metres: two front occupants, an engine bay and four wheels of a real passenger car, placed in each car.

The relative boxes of :mod:`constraints.regions` scale with the car they start from, so a car may shrink to a
width no two occupants fit in. This module gives the room absolute sizes in metres, from published passenger-car
dimensions (SAE J1100 dimension codes, values of a mid-size sedan: :class:`OccupantSpec`), and *fits only their
positions* to each car: the occupants' seating reference point (SgRP), the engine bay, the axles and the track are
searched where the initial car has room for them, keeping the most clearance. A car that has no room for a part
anywhere is refused with the part and its size named.

Every part is a set of sample points (metres, car frame: nose at x = 0, y = 0 the symmetry plane, z = 0 the
ground) that must stay inside the car; :meth:`constraints.regions.RoomConstraint.from_points` turns them into the
same penalty as the relative boxes. The occupant envelope around an SgRP at (x_s, z_s), occupants at
y = ±W3/4 (each centred on their half of the shoulder room):

* hips: W5 (hip room) wide, from 76 mm below to 76 mm above the SgRP (J1100's hip-room band);
* shoulders: W3 (shoulder room) wide, from 254 mm above the SgRP up 200 mm (J1100 measures W3 from 254 mm above
  the SgRP to the belt line);
* heads: a column per occupant up to the headlining point of H61, the effective head room: J1100 measures it along
  a line 8° rearward of vertical from the SgRP to the headlining, plus 102 mm;
* legs: per occupant, from the SgRP forward to the ankle pivot (L34, the effective leg room, is the distance from
  the ankle pivot to the H-point plus 254 mm) and a foot beyond it, from the heel (H30 below the SgRP) to 100 mm
  above the SgRP.

The boxes are the cabin's *interior*; the body shell around it (doors, roof panel) is not modelled, so a car that
passes has at least that room inside its outer skin.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import trimesh
from scipy.ndimage import distance_transform_edt, map_coordinates

from aero_opt.core.errors import AeroOptError
from aero_opt.core.settings import positive
from aero_opt.geometry.mesh_import import winding_numbers
from aero_opt.geometry.sdf import signed_distance

INCH = 0.0254
"""Metres per inch (the published dimensions are in inches)."""

Box = tuple[np.ndarray, np.ndarray]

FIREWALL = 0.05
"""Gap (m) between the engine bay and the occupants' feet."""


@dataclass(frozen=True)
class OccupantSpec:
    """Front-occupant dimensions (m), named by their SAE J1100 codes. Defaults: the published interior dimensions
    of the 2018 Toyota Camry (a mid-size sedan; Toyota's specification sheet, inches converted), except the seat
    height, which specification sheets do not give."""

    shoulder_room: float = positive(round(57.7 * INCH, 4))
    """W3, front shoulder room: 57.7 in."""
    hip_room: float = positive(round(55.4 * INCH, 4))
    """W5, front hip room: 55.4 in."""
    head_room: float = positive(round(38.3 * INCH, 4))
    """H61, effective head room front: 38.3 in."""
    leg_room: float = positive(round(42.1 * INCH, 4))
    """L34, maximum effective leg room (accelerator): 42.1 in."""
    seat_height: float = positive(0.25)
    """H30, SgRP above the heel point (assumed: a sedan's seat; not in specification sheets)."""
    torso_depth: float = positive(0.35)
    """Length (x) of the hip and shoulder bands, from 250 mm behind the SgRP forward."""
    head_width: float = positive(0.16)
    """Width (y) and half the length (x) of each head column."""
    leg_width: float = positive(0.40)
    """Width (y) of each occupant's leg and foot space."""


@dataclass(frozen=True)
class PackageSpec:
    """The parts of the package and how they are placed (YAML section ``optimize.package``)."""

    occupants: OccupantSpec = field(default_factory=OccupantSpec)
    engine_length: float = positive(0.60)
    """Engine bay length (x, m): assumed envelope of a transverse inline-4 with its gearbox, placed ahead of the
    front occupants' feet, centred on y = 0."""
    engine_width: float = positive(1.00)
    """Engine bay width (y, m)."""
    engine_height: float = positive(0.55)
    """Engine bay height (z, m)."""
    tyre: str = "215/55R17"
    """ISO metric tyre code of the four wheels (the Camry's): width mm / aspect % R rim inches."""
    jounce: float = 0.05
    """Upward wheel travel (m) the wheel arch must clear."""
    track: float = positive(1.58)
    """Track (m, between the tyre centres) asked for (assumed: a mid-size sedan's); a car too narrow for it gets
    the widest track it has room for, down to ``min_track``."""
    min_track: float = positive(1.30)
    """Narrowest track (m) accepted."""
    spacing: float = positive(0.08)
    """Distance (m) between the sample points of each part."""
    grid: float = positive(0.035)
    """Cell (m) of the signed-distance grid the placement search reads."""


def tyre_size(code: str) -> tuple[float, float]:
    """(diameter, width) in metres of an ISO metric tyre code such as ``215/55R17``.

    Raises:
        AeroOptError: not a tyre code.
    """
    m = re.fullmatch(r"\s*(\d{3})\s*/\s*(\d{2})\s*Z?R\s*(\d{2}(?:\.\d)?)\s*", code, re.I)
    if not m:
        raise AeroOptError(f"optimize.package.tyre: {code!r} is not a tyre code like 215/55R17")
    width = int(m.group(1)) / 1000.0
    return float(m.group(3)) * INCH + 2.0 * width * int(m.group(2)) / 100.0, width


def _box_points(lo: np.ndarray, hi: np.ndarray, spacing: float) -> np.ndarray:
    """Grid points (N, 3) filling the box [lo, hi], corners included, at most ``spacing`` apart."""
    axes = [np.linspace(a, b, max(2, math.ceil((b - a) / spacing) + 1)) for a, b in zip(lo, hi)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def occupant_boxes(spec: OccupantSpec) -> dict[str, list[Box]]:
    """The occupant envelope as boxes relative to the SgRP in the car frame (+x points rearward: the car drives
    towards −x), per part: ``hips``, ``shoulders``, ``heads``, ``legs`` (both occupants; see the module text for
    the J1100 definitions)."""
    w20 = spec.shoulder_room / 4.0
    ahead, behind = spec.torso_depth - 0.25, 0.25
    reach = spec.head_room - 0.102
    head_x, head_top = reach * math.sin(math.radians(8.0)), reach * math.cos(math.radians(8.0))
    drop = spec.seat_height - 0.10  # SgRP above the ankle pivot, which is ~100 mm above the heel
    ankle = math.sqrt(max((spec.leg_room - 0.254) ** 2 - drop**2, 0.0))
    out: dict[str, list[Box]] = {
        "hips": [(np.array([-ahead, -spec.hip_room / 2, -0.076]), np.array([behind, spec.hip_room / 2, 0.076]))],
        "shoulders": [(np.array([-ahead, -spec.shoulder_room / 2, 0.254]),
                       np.array([behind, spec.shoulder_room / 2, 0.454]))],
        "heads": [], "legs": []}
    for side in (-1.0, 1.0):
        y = side * w20
        out["heads"].append((np.array([head_x - spec.head_width, y - spec.head_width / 2, 0.454]),
                             np.array([head_x + spec.head_width, y + spec.head_width / 2, head_top])))
        out["legs"].append((np.array([-(ankle + 0.10), y - spec.leg_width / 2, -spec.seat_height]),
                            np.array([0.0, y + spec.leg_width / 2, 0.10])))
    return out


def _wheel_points(diameter: float, width: float, jounce: float, spacing: float) -> np.ndarray:
    """Points (N, 3) of one wheel's arch envelope relative to the contact point's x and the tyre's centre plane
    y: the upper half of the tyre raised by ``jounce`` (the part a body without wheel wells must cover)."""
    r = diameter / 2.0
    grid = _box_points(np.array([-r, -width / 2, 0.0]), np.array([r, width / 2, r]), spacing)
    grid = grid[np.hypot(grid[:, 0], grid[:, 2]) <= r + 1e-9]
    grid[:, 2] += r + jounce
    return grid


@dataclass
class PlacedPackage:
    """The package placed in one car."""

    parts: dict[str, np.ndarray]
    """Part name -> sample points (N, 3), metres, car frame."""
    placement: dict[str, Any]
    """Where each part went (m): SgRP, engine box, axles and track, and the clearance each kept."""

    @property
    def points(self) -> np.ndarray:
        """All sample points (P, 3) metres."""
        return np.concatenate(list(self.parts.values()))

    def describe(self) -> dict[str, Any]:
        """JSON-ready placement with the point counts."""
        return {**self.placement, "points": {k: len(v) for k, v in self.parts.items()}}


class _Field:
    """The initial car's signed distance on a regular grid (negative inside), read by trilinear interpolation:
    inside/outside of every grid point from the winding number, distances from the Euclidean distance transform of
    that voxel image (within half a cell of the true distance; placements are checked against the mesh itself)."""

    def __init__(self, verts: np.ndarray, faces: np.ndarray, cell: float) -> None:
        lo, hi = verts.min(axis=0) - 2 * cell, verts.max(axis=0) + 2 * cell
        self.lo, self.cell = lo, cell
        axes = [np.arange(a, b + cell, cell) for a, b in zip(lo, hi)]
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        wn = winding_numbers(trimesh.Trimesh(verts, faces, process=False), pts)
        inside = (wn > 0.5).reshape(tuple(len(a) for a in axes))
        self.sd = cell * (np.where(inside, -distance_transform_edt(inside), distance_transform_edt(~inside))
                          + np.where(inside, 0.5, -0.5))
        self.verts, self.faces = verts, faces
        self.bounds = (verts.min(axis=0), verts.max(axis=0))

    def clearances(self, shape: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Smallest depth (M,) in metres inside the car of the point set ``shape`` (N, 3) moved by each of
        ``offsets`` (M, 3) (negative: some point is outside), from the grid."""
        out = np.empty(len(offsets))
        per = max(1, 2_000_000 // len(shape))
        for i in range(0, len(offsets), per):
            pts = (shape[None, :, :] + offsets[i:i + per, None, :]).reshape(-1, 3)
            sd = map_coordinates(self.sd, ((pts - self.lo) / self.cell).T, order=1, mode="nearest")
            out[i:i + per] = -sd.reshape(-1, len(shape)).max(axis=1)
        return out

    def best(self, shape: np.ndarray, offsets: np.ndarray, usable: np.ndarray | None = None
             ) -> tuple[np.ndarray, float] | None:
        """The offset (3,) with the most clearance for ``shape`` whose points all lie inside the car by the mesh's
        exact distance, and that clearance (m); None if there is none (``usable``: a mask on the offsets)."""
        if len(offsets) == 0:
            return None
        score = self.clearances(shape, offsets)
        if usable is not None:
            score = np.where(usable, score, -np.inf)
        for i in np.argsort(-score)[:10]:
            if score[i] <= -0.87 * self.cell:  # the grid's distance is within ~half a cell diagonal of the mesh's
                return None
            exact = float(-signed_distance(shape + offsets[i], self.verts, self.faces).max())
            if exact > 0.0:
                return offsets[i], exact
        return None


def _offsets(xs: np.ndarray, zs: np.ndarray) -> np.ndarray:
    """Offsets (len(xs)·len(zs), 3) of every (x, 0, z) pair."""
    gx, gz = np.meshgrid(xs, zs, indexing="ij")
    return np.stack([gx.ravel(), np.zeros(gx.size), gz.ravel()], axis=1)


def place_package(verts: np.ndarray, faces: np.ndarray, spec: PackageSpec = PackageSpec(),
                  name: str = "the car") -> PlacedPackage:
    """Fit the package's positions to a car: the SgRP (x, z) with the most clearance for the occupant envelope,
    then the engine bay ahead of the feet, then the widest track and the axle positions where the wheels fit.

    Args:
        verts: (V, 3) the initial car in metres, car frame; faces: (F, 3) outward.
        spec: sizes and search settings; name: the car's name for messages.

    Returns:
        The placed parts and where they went.

    Raises:
        AeroOptError: a part fits nowhere inside the car (the message names the part and its size).
    """
    v = np.asarray(verts, np.float64)
    f = np.asarray(faces, np.int64)
    fld = _Field(v, f, spec.grid)
    (x0, _, z0), (x1, _, z1) = fld.bounds
    length = x1 - x0
    occ = spec.occupants
    boxes = occupant_boxes(occ)
    rel = {k: np.concatenate([_box_points(lo, hi, spec.spacing) for lo, hi in b]) for k, b in boxes.items()}
    envelope = np.concatenate(list(rel.values()))
    legs = -float(min(lo[0] for lo, _ in boxes["legs"]))  # SgRP to the toes (m)
    step = spec.grid
    el, ew, eh = spec.engine_length, spec.engine_width, spec.engine_height
    engine_rel = _box_points(np.array([0.0, -ew / 2, 0.0]), np.array([el, ew / 2, eh]), spec.spacing)
    bays = _offsets(np.arange(x0, x1 - el, step), np.arange(z0, z1 - eh, step))
    bay_clear = fld.clearances(engine_rel, bays)
    seats = _offsets(np.arange(x0 + 0.25 * length, x0 + 0.75 * length, step), np.arange(z0 + occ.seat_height, z1, step))
    # a seat is usable only if an engine bay fits ahead of its occupants' feet
    room_ahead = np.array([bay_clear[bays[:, 0] <= x - legs - FIREWALL - el + 1e-9].max(initial=-np.inf) > 0.0
                           for x in seats[:, 0]])
    got = fld.best(envelope, seats, room_ahead)
    if got is None:
        alone = fld.best(envelope, seats)
        if alone is None:
            raise AeroOptError(
                f"{name}: the two front occupants do not fit inside the car anywhere (shoulder room W3 "
                f"{occ.shoulder_room:.3f} m, hip room W5 {occ.hip_room:.3f} m, head room H61 {occ.head_room:.3f} m, "
                f"leg room L34 {occ.leg_room:.3f} m, seat height H30 {occ.seat_height:.3f} m; the car is "
                f"{length:.2f} m long, {np.ptp(v[:, 1]):.2f} m wide, {z1:.2f} m tall): choose room: relative or "
                "smaller optimize.package.occupants")
        raise AeroOptError(f"{name}: the engine bay ({el:.2f} × {ew:.2f} × {eh:.2f} m) fits ahead of the front "
                           "occupants' feet at no seat position the occupants fit in: choose room: relative or a "
                           "smaller optimize.package.engine_*")
    seat, occ_clear = got
    xs, zs = float(seat[0]), float(seat[2])
    parts = {k: p + seat for k, p in rel.items()}
    placement: dict[str, Any] = {"SgRP_m": [round(xs, 4), round(zs, 4)], "occupants_clearance_m": round(occ_clear, 4),
                                 "spec": asdict(spec)}
    got = fld.best(engine_rel, bays, bays[:, 0] <= xs - legs - FIREWALL - el + 1e-9)
    if got is None:
        raise AeroOptError(f"{name}: the engine bay ({el:.2f} × {ew:.2f} × {eh:.2f} m) does not fit inside the car "
                           f"ahead of the occupants' feet (x < {xs - legs - FIREWALL:.2f} m): choose room: relative "
                           "or a smaller optimize.package.engine_*")
    bay, eng_clear = got
    parts["engine"] = engine_rel + bay
    placement["engine_box_m"] = [[round(float(bay[0]), 4), round(-ew / 2, 4), round(float(bay[2]), 4)],
                                 [round(float(bay[0] + el), 4), round(ew / 2, 4), round(float(bay[2] + eh), 4)]]
    placement["engine_clearance_m"] = round(eng_clear, 4)

    diameter, width = tyre_size(spec.tyre)
    wheel = _wheel_points(diameter, width, spec.jounce, spec.spacing)
    r = diameter / 2.0
    axles = {"front": np.arange(x0 + r, xs - 0.6, step), "rear": np.arange(xs + 0.3, x1 - r, step)}
    widest = min(spec.track, round(float(np.ptp(v[:, 1])) - width, 2))
    for end, xa in axles.items():
        found = None
        for track in np.arange(widest, spec.min_track - 1e-9, -0.02):
            pair = np.concatenate([wheel + [0.0, s * track / 2, 0.0] for s in (-1.0, 1.0)])
            found = fld.best(pair, _offsets(xa, np.zeros(1)))
            if found is not None:
                break
        if found is None:
            raise AeroOptError(f"{name}: the {end} wheels ({spec.tyre}: {diameter:.3f} m tyres, {spec.jounce:.2f} m "
                               f"travel) fit under the body at no track of at least {spec.min_track:.2f} m: choose "
                               "room: relative, a smaller optimize.package.tyre or a smaller min_track")
        (axle, clear), track = found, float(track)
        parts[f"{end}_wheels"] = pair + axle
        placement[f"{end}_axle_x_m"] = round(float(axle[0]), 4)
        placement[f"{end}_track_m"] = round(track, 4)
        placement[f"{end}_wheels_clearance_m"] = round(clear, 4)
    return PlacedPackage(parts, placement)
