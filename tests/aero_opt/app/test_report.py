"""The HTML reports: what they say, and that the page works in a real headless browser (Chromium, installed by
scripts/setup.sh): no console message, and a 3D view that is not blank."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import trimesh

from aero_opt.app.report import markdown_tables_html, write_compare_report, write_run_report
from aero_opt.core.physics import dynamic_pressure
from surrogate.evaluate import read_vtp, write_vtp

SPEED, RHO = 15.0, 1.18


def _run_folder(run: Path, verified: bool) -> None:
    """An optimize run's files: a 4 m ellipsoid, the final one 5 cm lower, Cp = its nose-to-tail gradient."""
    run.mkdir(parents=True)
    body = trimesh.creation.icosphere(subdivisions=4)
    body.apply_scale([2.0, 0.9, 0.7])
    body.apply_translation([2.0, 0.0, 0.7])
    q = dynamic_pressure(RHO, SPEED)
    for name, dz in (("initial", 0.0), ("final", -0.05)):
        v = body.vertices * np.array([1.0, 1.0, 1.0 + dz])
        write_vtp(run / f"{name}.vtp", v, body.faces, {"p": q * (1.0 - v[:, 0] / 2.0)})
    summary = {"param": "meshsdf", "car": "car_x", "speed": SPEED, "rho": RHO, "iterations": 20, "best_iteration": 7,
               "feasible": True, "drag_change": -0.2, "stopped_at": 8, "cd_floor": 0.14,
               "initial": {"drag_N": 50.0, "Cd": 0.25, "A_ref": 2.0, "room_penalty_m2": 0.0},
               "final": {"drag_N": 40.0, "Cd": 0.21, "A_ref": 1.9, "room_penalty_m2": 0.0}}
    if verified:
        summary["cfd"] = {"preset": "coarse", "runs": 3, "drag_change": -0.123, "drag_change_ci95": 0.075,
                          "initial": {"Cd": 0.2}, "final": {"Cd": 0.18}}
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "final.stl").write_text("solid x\nendsolid x\n")


def test_read_vtp_returns_what_write_vtp_wrote(tmp_path: Path) -> None:
    v = np.random.default_rng(0).random((5, 3))
    f = np.array([[0, 1, 2], [2, 3, 4]])
    write_vtp(tmp_path / "m.vtp", v, f, {"p": np.arange(5.0), "tau": np.ones((5, 3))})
    v2, f2, d = read_vtp(tmp_path / "m.vtp")
    assert np.allclose(v2, v, rtol=1e-6) and np.array_equal(f2, f)
    assert np.array_equal(d["p"], np.arange(5.0)) and d["tau"].shape == (5, 3)


def test_the_run_report_states_the_numbers_and_links_the_files(tmp_path: Path) -> None:
    _run_folder(tmp_path / "run", verified=True)
    page = write_run_report(tmp_path / "run").read_text()
    assert "aero-opt optimize: meshsdf on car_x" in page
    assert "50.0 N → 40.0 N (-20.0 %)" in page
    assert "-12.3 % ± 7.5 (95% interval), preset coarse, 3 run(s) per shape" in page
    assert "stopped at step 8" in page
    assert "largest surface displacement</th><td class=\"num\">70 mm" in page  # the top (z = 1.4 m) × 0.05
    assert '<a href="final.stl">' in page and '<a href="initial.stl">' not in page  # links only what exists
    assert not re.search(r"(src|href)=(\"|&quot;)(https?:)?//", page)  # nothing is fetched from a network


def test_markdown_tables_become_html_tables() -> None:
    text = "# Results\n\n| param | change |\n|---|---|\n| meshsdf | **-28.0 %** |\n\nmean over 8 cars\n"
    out = markdown_tables_html(text)
    assert out == ("<h2>Results</h2>\n<table><tr><th>param</th><th>change</th></tr>"
                   '<tr><td class="num">meshsdf</td><td class="num">-28.0 %</td></tr></table>\n'
                   "<p>mean over 8 cars</p>")


def test_the_compare_report_links_each_run(tmp_path: Path) -> None:
    _run_folder(tmp_path / "car_x" / "meshsdf", verified=False)
    write_run_report(tmp_path / "car_x" / "meshsdf")
    (tmp_path / "results.md").write_text("| param | change |\n|---|---|\n| meshsdf | -20.0 % |\n")
    (tmp_path / "results.csv").write_text("car,param\ncar_x,meshsdf\ncar_y,scaling\n")
    page = write_compare_report(tmp_path).read_text()
    assert '<a href="car_x/meshsdf/report.html">car_x · meshsdf</a>' in page
    assert "car_y" not in page  # no report there, no dead link


CHROMIUM = shutil.which("chromium")


def _shoot(page: Path, shot: Path) -> tuple[list[str], np.ndarray]:
    """Open ``page`` in headless Chromium (software WebGL); its console lines and a 1200 x 1400 screenshot."""
    from matplotlib.image import imread

    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--enable-unsafe-swiftshader",
                        "--use-angle=swiftshader", "--window-size=1200,1400", f"--screenshot={shot}",
                        "--virtual-time-budget=8000", "--enable-logging=stderr", "--v=0", page.as_uri()],
                       capture_output=True, text=True, timeout=120, cwd=shot.parent)
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    return [line for line in r.stderr.splitlines() if re.search(r":CONSOLE[:(]", line)], imread(shot)[..., :3]


def _coloured_pixels(img: np.ndarray) -> int:
    return int((img.max(axis=2) - img.min(axis=2) > 0.15).sum())


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (scripts/setup.sh installs it as root)")
def test_the_report_opens_in_a_headless_browser_with_a_3d_view(tmp_path: Path) -> None:
    _run_folder(tmp_path / "run", verified=True)
    page = write_run_report(tmp_path / "run")
    console, img = _shoot(page, tmp_path / "shot.png")
    assert console == []  # no error, no warning, nothing: a script error would show here
    # The same page with an empty frame where the 3D view was: the view must add the coloured cars.
    blank = tmp_path / "run" / "blank.html"
    blank.write_text(re.sub(r'<iframe srcdoc="[^"]*"', "<iframe", page.read_text()))
    _, without = _shoot(blank, tmp_path / "blank.png")
    assert _coloured_pixels(img) - _coloured_pixels(without) > 10_000  # measured: 22667


def test_vertex_colours_clip_to_the_limits() -> None:
    import matplotlib as mpl

    from aero_opt.app.report import vertex_colours

    rgba = vertex_colours(np.array([-1.0, 2.0, 4.0, 6.0, 9.0]), "viridis", (2.0, 6.0))
    want = (255 * mpl.colormaps["viridis"](np.array([0.0, 0.0, 0.5, 1.0, 1.0]))).round()
    assert rgba.dtype == np.uint8 and np.array_equal(rgba, want.astype(np.uint8))
