"""Public-dataset import: files written in each published layout (with VTK's own writers, in the encodings the
datasets use) from a dataset car whose fields and drag are known, read back through ``aero-opt dataset import``."""

from __future__ import annotations

import json
import locale
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aero_opt.cfd.public_data import ImportSettings, import_dataset, list_cases, locale_kept
from aero_opt.core.errors import AeroOptError
from aero_opt.core.physics import RHO_AIR
from aero_opt.geometry.dataset import load_car

ROOT = Path(__file__).resolve().parents[3]
CAR = ROOT / "data" / "dataset" / "car_0000.npz"
OFFSET = np.array([-0.8, 0.05, -0.32])
"""Where the files put the car: their origin is not the car frame's (DrivAer's origin is near the front axle)."""


def _car_surface() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """The car as OpenFOAM writes a body patch: faces wound into the body, per-face kinematic p and
    wallShearStress (the stress on the fluid), points in the file's frame; and its Cd by the dataset's own force
    formula F = rho * sum_f(p_f A_f - tau_f |A_f|), A_f the face's area vector as wound (hand-written here)."""
    car = load_car(CAR)
    faces = car.faces[:, ::-1]
    p_face = car.pressure[faces].mean(axis=1) / car.rho
    wss_face = -car.shear[faces].mean(axis=1) / car.rho
    return car.verts + OFFSET, faces, p_face, wss_face, _hand_cd(car.verts, faces, p_face, wss_face)


def _hand_cd(points: np.ndarray, faces: np.ndarray, p_face: np.ndarray, wss_face: np.ndarray | None) -> float:
    """Cd of kinematic per-face fields on faces wound into the body: F = sum_f(p_f A_f - tau_f |A_f|) (the
    density cancels), over the dataset car's free stream and reference area."""
    car = load_car(CAR)
    a, b, c = (points[faces[:, i]] for i in range(3))
    area = 0.5 * np.cross(b - a, c - a)
    force = (p_face[:, None] * area).sum(0)
    if wss_face is not None:
        force -= (wss_face * np.linalg.norm(area, axis=1)[:, None]).sum(0)
    return float(force[0] / (0.5 * car.speed ** 2 * car.a_ref))


def _polydata(points: np.ndarray, faces: np.ndarray, cell: dict[str, np.ndarray] | None = None,
              point: dict[str, np.ndarray] | None = None):  # noqa: ANN202 (a vtkPolyData)
    from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData

    pts = vtkPoints()
    pts.SetData(numpy_to_vtk(np.ascontiguousarray(points, np.float64), deep=True))
    cells = vtkCellArray()
    offsets = np.arange(0, 3 * len(faces) + 1, 3, dtype=np.int64)
    cells.SetData(numpy_to_vtkIdTypeArray(offsets, deep=True),
                  numpy_to_vtkIdTypeArray(np.ascontiguousarray(faces, np.int64).ravel(), deep=True))
    pd = vtkPolyData()
    pd.SetPoints(pts)
    pd.SetPolys(cells)
    for data, arrays in ((pd.GetCellData(), cell or {}), (pd.GetPointData(), point or {})):
        for name, a in arrays.items():
            arr = numpy_to_vtk(np.ascontiguousarray(a, np.float32), deep=True)
            arr.SetName(name)
            data.AddArray(arr)
    return pd


def _write_drivaerml(root: Path, run: int, cd: float, cl: float = 0.05) -> float:
    """run_N/boundary_N.vtp (appended, zlib-compressed: VTK's XML defaults), force_mom_N.csv, geo_ref_N.csv;
    returns the reference area written."""
    from vtkmodules.vtkIOXML import vtkXMLPolyDataWriter

    pts, faces, p, wss, _ = _car_surface()
    d = root / f"run_{run}"
    d.mkdir(parents=True)
    w = vtkXMLPolyDataWriter()
    w.SetFileName(str(d / f"boundary_{run}.vtp"))
    w.SetInputData(_polydata(pts, faces, cell={"pMeanTrim": p, "wallShearStressMeanTrim": wss}))
    assert w.Write() == 1
    a_ref = load_car(CAR).a_ref
    (d / f"force_mom_{run}.csv").write_text(f"run, cd, cl, clf, clr, cs\n{run}, {cd}, {cl}, 0.01, 0.04, 0.0\n")
    (d / f"geo_ref_{run}.csv").write_text(f"run, aRef, lRef\n{run}, {a_ref}, 2.786\n")
    return a_ref


def _point_pressure(faces: np.ndarray, p_face: np.ndarray, n: int) -> np.ndarray:
    acc, cnt = np.zeros(n), np.zeros(n)
    np.add.at(acc, faces.ravel(), np.repeat(p_face, 3))
    np.add.at(cnt, faces.ravel(), 1)
    return acc / np.maximum(cnt, 1)


def test_drivaerml_run_imports_with_its_published_cd_and_fields(tmp_path: Path) -> None:
    pts, faces, p, _, cd = _car_surface()
    _write_drivaerml(tmp_path / "src", 7, cd)
    s = import_dataset("drivaerml", tmp_path / "src", tmp_path / "out", ImportSettings(speed=15.0))
    assert s["imported"] == 1 and s["refused"] == 0
    got = load_car(tmp_path / "out" / "drivaerml_0007.npz")
    assert got.cd == pytest.approx(cd)
    assert got.case["Cd_integrated"] == pytest.approx(cd, rel=1e-4)  # the check integrates what the file holds
    assert got.case["has_shear"] and got.case["arrays"]["pressure"] == "pMeanTrim (cell data)"
    # into the car frame (nose at x = 0, ground at z = 0) and onto the dataset grid, fields carried over
    assert got.verts[:, 0].min() == pytest.approx(0.0, abs=0.01) and got.verts[:, 2].min() == pytest.approx(0, abs=0.01)
    assert got.case["Cd_on_dataset_mesh"] == pytest.approx(cd, rel=0.03)
    orig = load_car(CAR)
    assert np.abs(got.pressure).max() == pytest.approx(np.abs(orig.pressure).max() * RHO_AIR / orig.rho, rel=0.15)
    assert json.loads((tmp_path / "out" / "split.json").read_text())  # a dataset folder train-surrogate reads


def test_a_published_cd_the_fields_do_not_give_is_refused_with_the_numbers(tmp_path: Path) -> None:
    *_, cd = _car_surface()
    _write_drivaerml(tmp_path / "src", 1, 1.2 * cd)
    with pytest.raises(AeroOptError) as e:
        from aero_opt.cfd.public_data import import_case

        import_case(list_cases("drivaerml", tmp_path / "src")[0], tmp_path / "x.npz", ImportSettings(speed=15.0),
                    "drivaerml")
    msg = str(e.value)
    assert f"integrated Cd {cd:.4f}" in msg and f"differs from the dataset's Cd {1.2 * cd:.4f} by -16.7%" in msg
    assert "allowed 2%" in msg and "--a-ref" in msg
    assert not (tmp_path / "x.npz").exists()
    # through the command: every case refused -> one error line, exit 2
    r = subprocess.run([sys.executable, "-m", "aero_opt.app.cli", "dataset", "import", "--format", "drivaerml",
                        str(tmp_path / "src"), "--out", str(tmp_path / "out"), "--speed", "15"],
                       capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in r.stderr
    assert "1 refused" in r.stderr


@pytest.mark.parametrize("published", [0.0, -0.3])  # NaN: refused by the reader already
def test_a_published_cd_that_is_no_drag_coefficient_is_refused(tmp_path: Path, published: float) -> None:
    from aero_opt.cfd.public_data import import_case

    _write_drivaerml(tmp_path / "src", 1, published)
    case = list_cases("drivaerml", tmp_path / "src")[0]
    with pytest.raises(AeroOptError, match=re.escape(f"{case.surface}: the dataset's Cd for it is {published:g}, "
                                                     "not a drag coefficient")):
        import_case(case, tmp_path / "x.npz", ImportSettings(speed=15.0), "drivaerml")


def test_drivaernet_binary_legacy_vtk_pressure_only(tmp_path: Path) -> None:
    from vtkmodules.vtkIOLegacy import vtkPolyDataWriter

    pts, faces, p, _, _ = _car_surface()
    car = load_car(CAR)
    src = tmp_path / "PressureVTK"
    src.mkdir()
    w = vtkPolyDataWriter()
    w.SetFileName(str(src / "F_D_WM_WW_0001.vtk"))
    w.SetFileTypeToBinary()
    p_point = _point_pressure(faces, p, len(pts))
    w.SetInputData(_polydata(pts, faces, point={"p": p_point}))
    with locale_kept():
        assert w.Write() == 1
    cd_p = _hand_cd(pts, faces, p_point.astype(np.float32)[faces].mean(axis=1), None)
    (src / "DrivAerNetPlusPlus_Cd_8k.csv").write_text(f"Design,Average Cd\nF_D_WM_WW_0001,{cd_p / 0.9}\n"
                                                      "F_D_WM_WW_0002,0.3\n")
    encoding = locale.getpreferredencoding(False)
    s = import_dataset("drivaernet", src, tmp_path / "out", ImportSettings(speed=car.speed, a_ref=car.a_ref))
    assert s["imported"] == 1, s
    assert locale.getpreferredencoding(False) == encoding  # VTK's legacy reader leaves the process locale alone
    got = load_car(tmp_path / "out" / "F_D_WM_WW_0001.npz")
    assert not got.case["has_shear"] and np.all(got.shear == 0)
    assert got.case["Cd_pressure"] == pytest.approx(cd_p, rel=1e-4)
    assert got.case["Cd_viscous"] == pytest.approx(cd_p / 0.9 - got.case["Cd_pressure"])


def test_windtunnel_layout_skips_yawed_bodies_and_reads_an_unstructured_grid(tmp_path: Path) -> None:
    from vtkmodules.vtkFiltersCore import vtkAppendFilter
    from vtkmodules.vtkIOLegacy import vtkUnstructuredGridWriter

    pts, faces, p, _, _ = _car_surface()
    car = load_car(CAR)
    p_point = _point_pressure(faces, p, len(pts))
    cd_p = _hand_cd(pts, faces, p_point.astype(np.float32)[faces].mean(axis=1), None)
    for sim, angle in (("abc123", 0), ("zzz999", 304)):
        d = tmp_path / "data" / "train" / sim
        d.mkdir(parents=True)
        grid = vtkAppendFilter()
        grid.AddInputData(_polydata(pts, faces, point={"p": p_point}))
        grid.Update()
        w = vtkUnstructuredGridWriter()
        w.SetFileName(str(d / "pressure_field_mesh.vtk"))
        w.SetInputData(grid.GetOutput())
        with locale_kept():
            assert w.Write() == 1
        (d / "simulation_metadata.json").write_text(json.dumps(
            {"id": sim, "wind_speed": car.speed, "rotate_angle": angle, "drag_coefficient": cd_p / 0.92,
             "lift_coefficient": 0.1}))
    s = import_dataset("windtunnel", tmp_path / "data", tmp_path / "out", ImportSettings(a_ref=car.a_ref))
    assert s["imported"] == 1 and s["skipped"] == 1
    assert "rotated by 304 degrees" in s["cases"]["zzz999"]["reason"]
    assert load_car(tmp_path / "out" / "abc123.npz").cl == pytest.approx(0.1)


def test_cut_off_file_is_refused_naming_it(tmp_path: Path) -> None:
    *_, cd = _car_surface()
    _write_drivaerml(tmp_path / "src", 2, cd)
    vtp = tmp_path / "src" / "run_2" / "boundary_2.vtp"
    vtp.write_bytes(vtp.read_bytes()[: vtp.stat().st_size // 3])
    s = import_dataset("drivaerml", tmp_path / "src", tmp_path / "out", ImportSettings(speed=15.0))
    assert s["refused"] == 1
    assert s["cases"]["drivaerml_0002"]["reason"].startswith(f"{vtp}: cannot read a surface")
