"""The surrogate's dataset: marching-cubes car meshes with OpenFOAM surface fields, one compact ``.npz`` per car.

The surrogate sees meshes made by marching cubes on the optimization grid, so the cars are simulated as such
meshes: exact SDF of the generated car on the grid (:data:`DATASET_RESOLUTION` points per axis over
:data:`aero_opt.core.frame.CAR_BOUNDS`), marching cubes, back to metres, CFD on that mesh.

File format (``car_XXXX.npz``, all arrays little-endian):

- ``verts_q`` (V, 3) uint16: vertices quantized over CAR_BOUNDS (0.08 mm steps), or ``verts`` (V, 3) float32
  metres for bodies outside CAR_BOUNDS (collected foreign cases); :func:`load_car` returns metres either way;
- ``faces_delta`` (3F,) int32: the outward faces flattened and delta-encoded (half the compressed size);
- ``pressure`` (V,) float16, Pa relative to the free stream; ``shear`` (V, 3) float16, Pa, on the body;
- ``cd``, ``cd_pressure``, ``cd_viscous``, ``cl``, ``a_ref`` (m²), ``speed`` (m/s), ``rho`` (kg/m³): scalars
  from the CFD run (forces of the solver);
- ``params`` and ``case``: JSON strings (car parameters, the case summary).
"""

from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aero_opt.core.atomic import savez_atomic
from aero_opt.core.errors import AeroOptError
from aero_opt.core.frame import CAR_BOUNDS, to_metres, to_normalized

DATASET_RESOLUTION = 64
"""Grid points per axis over CAR_BOUNDS for the dataset meshes (the default optimization grid)."""

_LO = np.asarray(CAR_BOUNDS[0])
_HI = np.asarray(CAR_BOUNDS[1])


def grid_mesh(verts_m: np.ndarray, faces: np.ndarray, resolution: int = DATASET_RESOLUTION
              ) -> tuple[np.ndarray, np.ndarray]:
    """The marching-cubes mesh of a watertight car: its exact SDF on the optimization grid, back in metres.

    Args:
        verts_m: (V, 3) vertices (m, car frame); faces: (F, 3) triangles.
        resolution: grid points per axis over CAR_BOUNDS.

    Returns:
        verts (V', 3) float64 in metres and outward faces (F', 3) int64.
    """
    from aero_opt.geometry.isosurface import marching_cubes_mesh
    from aero_opt.geometry.sdf import signed_distance

    vn = to_normalized(verts_m)
    v, f = marching_cubes_mesh(lambda x: signed_distance(x, vn, faces), resolution, CAR_BOUNDS)
    return to_metres(v), f


def quantize(verts_m: np.ndarray) -> np.ndarray:
    """Metres (V, 3) -> uint16 (V, 3) over CAR_BOUNDS."""
    u = (to_normalized(verts_m) - _LO) / (_HI - _LO)
    if (u < 0).any() or (u > 1).any():
        raise AeroOptError("vertices outside CAR_BOUNDS cannot be stored in the dataset format")
    return np.round(u * 65535.0).astype(np.uint16)


def dequantize(q: np.ndarray) -> np.ndarray:
    """uint16 (V, 3) -> metres (V, 3) float64."""
    return to_metres(_LO + q.astype(np.float64) / 65535.0 * (_HI - _LO))


@dataclass
class CarSample:
    """One dataset car."""

    name: str
    verts: np.ndarray
    """(V, 3) float64 metres."""
    faces: np.ndarray
    """(F, 3) int64, outward."""
    pressure: np.ndarray
    """(V,) float32 Pa."""
    shear: np.ndarray
    """(V, 3) float32 Pa."""
    cd: float
    cd_pressure: float
    cd_viscous: float
    cl: float
    a_ref: float
    speed: float
    rho: float
    params: dict[str, Any]
    case: dict[str, Any]


def save_car(path: Path, verts_m: np.ndarray, faces: np.ndarray, pressure: np.ndarray, shear: np.ndarray,
             summary: dict[str, Any], params: dict[str, Any]) -> None:
    """Write one car atomically in the format of the module docstring."""
    u = (to_normalized(verts_m) - _LO) / (_HI - _LO)
    geometry = {"verts_q": quantize(verts_m)} if (u >= 0).all() and (u <= 1).all() else \
        {"verts": np.asarray(verts_m, np.float32)}
    savez_atomic(
        path, **geometry, faces_delta=np.diff(np.asarray(faces, np.int32).ravel(), prepend=np.int32(0)),
        pressure=np.asarray(pressure, np.float16), shear=np.asarray(shear, np.float16),
        cd=np.float64(summary["Cd"]), cd_pressure=np.float64(summary["Cd_pressure"]),
        cd_viscous=np.float64(summary["Cd_viscous"]), cl=np.float64(summary["Cl"]),
        a_ref=np.float64(summary["A_ref"]), speed=np.float64(summary["speed"]), rho=np.float64(summary["rho"]),
        params=np.asarray(json.dumps(params)), case=np.asarray(json.dumps(summary)))


def load_car(path: Path) -> CarSample:
    """Read one dataset car (vertices back in metres, fields as float32)."""
    path = Path(path)
    try:
        with np.load(path) as z:
            faces = np.cumsum(z["faces_delta"].astype(np.int64)).reshape(-1, 3)
            verts = dequantize(z["verts_q"]) if "verts_q" in z.files else z["verts"].astype(np.float64)
            return CarSample(name=path.stem, verts=verts, faces=faces,
                             pressure=z["pressure"].astype(np.float32), shear=z["shear"].astype(np.float32),
                             cd=float(z["cd"]), cd_pressure=float(z["cd_pressure"]),
                             cd_viscous=float(z["cd_viscous"]), cl=float(z["cl"]), a_ref=float(z["a_ref"]),
                             speed=float(z["speed"]), rho=float(z["rho"]), params=json.loads(str(z["params"])),
                             case=json.loads(str(z["case"])))
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise AeroOptError(f"{path}: cannot read dataset file ({type(exc).__name__}: {exc}); a cut-off or "
                           "corrupt file: restore or remake it") from exc


def make_split(names: list[str], seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
               ) -> dict[str, list[str]]:
    """Split car names into train/val/test by car, with a fixed seed; stable as cars are added at the end.

    Each car's split is decided by a hash-free draw from ``default_rng([seed, index])``, so adding cars never
    moves an existing car to another split.
    """
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    edges = np.cumsum(fractions)
    for name in sorted(names):
        idx = int("".join(ch for ch in name if ch.isdigit()) or 0)
        u = np.random.default_rng([seed, idx]).uniform()
        key = "train" if u < edges[0] else ("val" if u < edges[1] else "test")
        out[key].append(name)
    return out


def split_names(data_dir: Path, split: str) -> list[str]:
    """Names of the cars of one split of a dataset folder, as listed in its ``split.json``.

    Args:
        data_dir: a dataset folder (``car_XXXX.npz`` files and ``split.json``, as
            ``scripts/pipeline/make_dataset.py`` writes).
        split: ``train``, ``val``, ``test`` or ``all`` (every ``.npz`` of the folder, sorted; no split.json needed).

    Returns:
        The car names (file stems), in the order of ``split.json``.

    Raises:
        AeroOptError: no split.json (for a named split), no such split, or no cars at all for ``all``.
    """
    data_dir = Path(data_dir)
    if split == "all":
        names = sorted(p.stem for p in data_dir.glob("*.npz"))
        if not names:
            raise AeroOptError(f"{data_dir}: no .npz cars")
        return names
    split_path = data_dir / "split.json"
    if not split_path.is_file():
        raise AeroOptError(f"{data_dir}: no split.json (a dataset made by scripts/pipeline/make_dataset.py); "
                           "use the split 'all' for every car of the folder")
    try:
        names = json.loads(split_path.read_text()).get(split)
    except (OSError, ValueError) as exc:
        raise AeroOptError(f"{split_path}: unreadable ({exc})") from exc
    if names is None:
        raise AeroOptError(f"{split_path}: no split {split!r}")
    return list(names)


def split_cd(data_dir: Path, split: str = "train") -> np.ndarray:
    """Drag coefficients (N,) of one split of a dataset folder (``split.json``; without it every ``.npz``).

    Returns:
        The CFD Cd of each car of the split; empty when the folder holds no dataset cars or not that split.
    """
    data_dir = Path(data_dir)
    if not (data_dir / "split.json").is_file():
        split = "all"
    try:
        names = split_names(data_dir, split)
    except AeroOptError:
        return np.zeros(0)
    out = []
    for p in (data_dir / f"{n}.npz" for n in names):
        try:
            with np.load(p) as z:
                out.append(float(z["cd"]))
        except (OSError, ValueError, KeyError) as exc:
            raise AeroOptError(f"{p}: cannot read the Cd of a dataset car ({exc})") from exc
    return np.asarray(out, np.float64)


LABEL_KEYS = ("Cd", "Cd_pressure", "Cd_viscous", "Cl")
"""The scalar labels of a case summary that :func:`average_labels` averages."""


def average_labels(path: Path, runs: list[tuple[float, np.ndarray, np.ndarray, dict[str, Any]]]
                   ) -> list[dict[str, Any]]:
    """Replace a dataset car's labels by the mean over its stored run(s) and re-simulations of the same mesh.

    A car whose labels are already an average of k runs (``label_runs`` in its case summary) gets the new runs
    folded in: the fields become (k · stored mean + Σ new) / (k + m), the scalars the mean over all k + m runs.

    Args:
        path: the car's ``.npz`` (plain labels count as the run at grid shift 0).
        runs: per extra run (grid shift as a fraction of the background cell, pressure (V,) Pa, wall shear
            (V, 3) Pa, the case's summary dict with :data:`LABEL_KEYS`), fields at the car's vertices.

    Returns:
        The ``label_runs`` list written into the car's case summary: per run its shift, its scalar labels and
        the relative L2 difference (over the vertices) of its pressure from the shift-0 run's (``None`` for runs
        added to an existing average, whose shift-0 field is no longer stored); runs added to an existing average
        carry instead ``batch_rel_l2``, the relative L2 difference of the stored average's pressure from the mean
        of the runs added with it (normalized by the latter): how far apart two means over different shifts are.

    Raises:
        AeroOptError: a grid shift is already among the car's runs (or given twice), or a run's fields do not
            match its vertices.
    """
    car = load_car(path)
    n = len(car.verts)
    old = car.case.get("label_runs")
    shifts = [round(r["grid_shift"], 4) for r in old] if old else [0.0]
    for shift, p, tau, _ in runs:
        if round(float(shift), 4) in shifts:
            raise AeroOptError(f"{path}: labels already include a run at grid shift {shift} "
                               f"(an average of {len(old or [0])} runs at shifts {shifts})")
        shifts.append(round(float(shift), 4))
        if np.shape(p) != (n,) or np.shape(tau) != (n, 3):
            raise AeroOptError(f"{path}: the run at grid shift {shift} has fields for another mesh")
    ref = car.pressure.astype(np.float64)
    record = list(old) if old else [{"grid_shift": 0.0, **{k: float(car.case[k]) for k in LABEL_KEYS},
                                     "pressure_rel_l2": 0.0}]
    k = len(record)
    batch = np.mean([np.asarray(r[1], np.float64) for r in runs], axis=0)
    batch_rel = float(np.linalg.norm(batch - ref) / np.linalg.norm(batch)) if old else None
    for shift, p, _, summary in runs:
        rel = None if old else float(np.linalg.norm(np.asarray(p, np.float64) - ref) / np.linalg.norm(ref))
        record.append({"grid_shift": float(shift), **{key: float(summary[key]) for key in LABEL_KEYS},
                       "pressure_rel_l2": rel, "batch_rel_l2": batch_rel})
    m = len(runs)
    pressure = (k * ref + sum(np.asarray(r[1], np.float64) for r in runs)) / (k + m)
    shear = (k * car.shear.astype(np.float64) + sum(np.asarray(r[2], np.float64) for r in runs)) / (k + m)
    summary = {**car.case, **{key: float(np.mean([r[key] for r in record])) for key in LABEL_KEYS},
               "label_runs": record}
    save_car(path, car.verts, car.faces, pressure, shear, summary, car.params)
    return record


def car_stl(data_dir: Path, name: str, work: Path) -> Path:
    """The dataset car's mesh as an STL in ``work`` (``work/<name>.stl``, written once and reused), for CFD reruns.

    Args:
        data_dir: dataset folder holding ``<name>.npz``.
        name: car name, e.g. ``car_0018``.
        work: folder for the STL (must exist).

    Returns:
        The STL path (metres, the stored vertices and faces unchanged).
    """
    import trimesh

    from aero_opt.geometry.mesh_import import export_mesh

    stl = Path(work) / f"{name}.stl"
    if not stl.is_file():
        car = load_car(Path(data_dir) / f"{name}.npz")
        export_mesh(trimesh.Trimesh(car.verts, car.faces, process=False), stl)
    return stl
