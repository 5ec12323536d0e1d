"""`cfd collect` on cases the project did not write: an OpenFOAM tutorial (binary fields, time directories,
another patch layout) and the project's own case read through its VTK surfaces."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from aero_opt.cfd.case import run_case
from aero_opt.cfd.collect import case_free_stream, collect_cases
from aero_opt.cfd.env import openfoam_env
from aero_opt.core.errors import AeroOptError
from aero_opt.geometry.dataset import load_car
from aero_opt.geometry.shapes import make_ahmed

TUTORIAL = Path("/usr/share/doc/openfoam-examples/examples/incompressible/simpleFoam/simpleCar")


@pytest.fixture(scope="module")
def simple_car(tmp_path_factory) -> Path:
    """OpenFOAM's simpleCar tutorial run for 20 iterations with binary output, plus wallShearStress."""
    if not TUTORIAL.is_dir():
        pytest.skip("openfoam-examples is not installed (scripts/setup.sh installs it)")
    case = tmp_path_factory.mktemp("tut") / "simpleCar"
    shutil.copytree(TUTORIAL, case)
    bm = case / "system" / "blockMeshDict.gz"
    if bm.exists():
        (case / "system" / "blockMeshDict").write_bytes(gzip.decompress(bm.read_bytes()))
        bm.unlink()
    cd = case / "system" / "controlDict"
    text = cd.read_text()
    for key, val in (("endTime", "20"), ("writeInterval", "20"), ("writeFormat", "binary")):
        text = "\n".join(f"{key} {val};" if ln.split()[:1] == [key] else ln for ln in text.splitlines())
    text = text.replace('#include "runTimeControls"', "").replace('#include "fieldAverage"', "")
    cd.write_text(text)
    env = openfoam_env()
    for cmd in (["blockMesh"], ["topoSet"], ["createPatch", "-overwrite"], ["simpleFoam"],
                ["simpleFoam", "-postProcess", "-func", "wallShearStress", "-latestTime"]):
        subprocess.run(cmd, cwd=case, env=env, check=True, capture_output=True)
    return case


def _tutorial_force_x(case: Path) -> float:
    """Total drag force (N) from the tutorial's own forceCoeffs (magUInf 10, Aref 1, rhoInf 1)."""
    rows = [ln.split() for ln in (case / "postProcessing" / "forceCoeffs1" / "0" / "coefficient.dat")
            .read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return float(rows[-1][1]) * 0.5 * 1.0 * 10.0**2 * 1.0


def test_collect_tutorial_case(simple_car: Path, tmp_path: Path) -> None:
    rows = collect_cases([simple_car], "body", tmp_path / "ds", rho=1.0)  # speed: the case's own ($internalField)
    r = rows["simpleCar"]
    assert r["speed"] == 10.0 and r["speed_from"] == "0/U inlet patch 'inlet'" and r["half_model"] is False
    assert r["source"] == "time directory" and r["has_shear"]
    car = load_car(tmp_path / "ds" / "simpleCar.npz")
    assert car.verts.shape[0] == r["vertices"] and car.faces.max() < len(car.verts)
    assert np.isfinite(car.pressure).all() and np.abs(car.shear).max() > 0
    # Our integral of p and wall shear against the solver's forceCoeffs (wall shear re-computed afterwards).
    force = r["Cd"] * 0.5 * 1.0 * 10.0**2 * r["A_ref"]
    assert force == pytest.approx(_tutorial_force_x(simple_car), rel=0.08)


def test_collect_from_vtk_surfaces(tmp_path: Path) -> None:
    make_ahmed(25.0).export(tmp_path / "a.stl")
    s = run_case(tmp_path / "a.stl", tmp_path / "case", preset_name="tiny", speed=40.0)
    rows = collect_cases([tmp_path / "case"], "body", tmp_path / "ds", rho=1.18)  # 40 m/s and half: the case's
    r = rows["case"]
    assert r["speed"] == 40.0 and r["half_model"] is True and r["source"].startswith("postProcessing/surfaces")
    assert r["Cd_pressure"] * r["A_ref"] == pytest.approx(s["Cd_pressure"] * s["A_ref"], rel=1e-4)
    assert r["Cd"] == pytest.approx(s["Cd"], rel=1e-3)
    with pytest.raises(AeroOptError, match=re.escape(f"{tmp_path / 'case'}: --speed 15 m/s, but the case's 0/U "
                                                     "inlet patch 'inlet' says 40 m/s")):
        collect_cases([tmp_path / "case"], "body", tmp_path / "ds2", rho=1.18, speed=15.0)
    (tmp_path / "case" / "summary.json").unlink()  # now anyone's case: is the body cut at y = 0, or on a floor?
    with pytest.raises(AeroOptError, match="touches it: a half model .* Say --half or --no-half"):
        collect_cases([tmp_path / "case"], "body", tmp_path / "ds3", rho=1.18)
    assert collect_cases([tmp_path / "case"], "body", tmp_path / "ds4", rho=1.18, half=True)["case"]["Cd"] == \
        pytest.approx(s["Cd"], rel=1e-3)


U_FILE = """FoamFile {{ version 2.0; format ascii; class volVectorField; object U; }}
dimensions [0 1 -1 0 0 0 0];
internalField uniform (0 0 0);
boundaryField {{ inlet {{ type fixedValue; value uniform ({u}); }} wall {{ type noSlip; }} }}
"""


@pytest.mark.parametrize("u,speed,message", [
    ("0 0 -20", None, "the flow in 0/U inlet patch 'inlet' is along (0, 0, -20); drag is read along +x"),
    ("-20 0 0", None, "is along (-20, 0, 0)"),
    ("20 0 0", 25.0, "--speed 25 m/s, but the case's 0/U inlet patch 'inlet' says 20 m/s"),
])
def test_a_stated_flow_that_collect_cannot_use_is_refused(tmp_path: Path, u: str, speed: float | None,
                                                         message: str) -> None:
    (tmp_path / "c" / "0").mkdir(parents=True)
    (tmp_path / "c" / "0" / "U").write_text(U_FILE.format(u=u))
    assert case_free_stream(tmp_path / "c")[0].tolist() == [float(x) for x in u.split()]
    with pytest.raises(AeroOptError, match=re.escape(message)):
        collect_cases([tmp_path / "c"], "body", tmp_path / "ds", speed=speed)


def test_a_case_that_states_no_speed_needs_one(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    with pytest.raises(AeroOptError, match="states no free-stream speed .*; give it with --speed"):
        collect_cases([tmp_path / "c"], "body", tmp_path / "ds")
