"""Self-contained HTML reports of an optimization run and of a comparison: the numbers, the drag history, and an
interactive 3D view of the start and final shapes coloured by Cp with the change between them.

Everything a report shows is inside the one ``report.html`` (pictures as data URIs; the 3D view is trimesh's
offline three.js viewer with the meshes embedded as glTF), so it opens from a copied folder without a network;
the meshes and tables it was made from are linked beside it.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from aero_opt.core.atomic import write_text_atomic
from aero_opt.core.errors import AeroOptError
from aero_opt.core.physics import dynamic_pressure

REPORT_FILE = "report.html"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 14px; } td, th { border: 1px solid #ccc; padding: 4px 8px; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
iframe { width: 100%; height: 620px; border: 1px solid #ccc; }
.scales img { height: 60px; margin-right: 24px; } .note { color: #555; font-size: 13px; }
"""


def _page(title: str, body: str) -> str:
    """A complete HTML document."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _img(path: Path, alt: str) -> str:
    """An <img> with the PNG at ``path`` embedded, or nothing when the file is missing."""
    if not path.is_file():
        return ""
    return f'<p><img src="{_png_uri(path.read_bytes())}" alt="{html.escape(alt)}" style="max-width:100%"></p>'


def colour_scale_png(cmap: str, clim: tuple[float, float], label: str) -> bytes:
    """A horizontal colour bar (PNG bytes) for ``cmap`` over ``clim``, labelled with the quantity and unit."""
    import matplotlib as mpl

    from aero_opt.geometry.render import plt

    fig, ax = plt.subplots(figsize=(4.2, 0.75), layout="constrained")
    fig.colorbar(mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(*clim), cmap=cmap), cax=ax,
                 orientation="horizontal", label=label)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def vertex_colours(values: np.ndarray, cmap: str, clim: tuple[float, float]) -> np.ndarray:
    """RGBA colours (V, 4) uint8 of per-vertex ``values`` (V,) through ``cmap`` clipped to ``clim``."""
    from aero_opt.geometry.render import colour_map

    return (255 * colour_map(values, cmap, clim)).round().astype(np.uint8)


def viewer_html(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> str:
    """An offline three.js page (trimesh's viewer) showing coloured meshes one above the other, the first on top.

    Args:
        parts: (vertices (V, 3) in the car frame (z up, metres), faces (F, 3), RGBA colours (V, 4) uint8) each.

    Returns:
        The page, its quotes escaped for an iframe's ``srcdoc``.
    """
    scene = trimesh.Scene()
    to_y_up = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # glTF: y up
    gap = 1.5 * max(float(np.ptp(v[:, 2])) for v, _, _ in parts)
    for i, (verts, faces, colours) in enumerate(parts):
        v = np.asarray(verts, np.float64) @ to_y_up.T
        v[:, 1] -= i * gap
        mesh = trimesh.Trimesh(v, faces, vertex_colors=colours, process=False)
        scene.add_geometry(mesh, geom_name=f"part{i}")
    scene.set_camera(angles=(np.radians(-12.0), np.radians(-35.0), 0.0), distance=1.6 * float(scene.scale),
                     center=scene.centroid)
    from trimesh.viewer.notebook import scene_to_html

    return scene_to_html(scene, escape_quotes=True)


def _rows_table(rows: list[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td class=\"num\">{html.escape(v)}</td></tr>"
                               for k, v in rows) + "</table>"


def _change(cfd: dict[str, Any]) -> str:
    """An OpenFOAM drag change with its interval when the shapes were run more than once."""
    text = f"{100 * cfd['drag_change']:+.1f} %"
    if cfd.get("drag_change_ci95") is not None:  # the half width of the 95% interval
        text += f" ± {100 * cfd['drag_change_ci95']:.1f} (95% interval)"
    return text + f", preset {cfd.get('preset')}, {cfd.get('runs', 1)} run(s) per shape"


def _links(run_dir: Path, names: list[str]) -> str:
    present = [n for n in names if (run_dir / n).exists()]
    return "<ul>" + "".join(f'<li><a href="{html.escape(n)}">{html.escape(n)}</a></li>' for n in present) + "</ul>"


def write_run_report(run_dir: Path) -> Path:
    """``run_dir/report.html`` for a finished ``optimize`` run (its ``summary.json``, ``initial.vtp``,
    ``final.vtp``, ``drag.png``).

    Returns:
        The report's path.
    Raises:
        AeroOptError: a file the report needs is missing or unreadable (the message names it).
    """
    from aero_opt.geometry.sdf import signed_distance
    from surrogate.evaluate import read_vtp

    run_dir = Path(run_dir)
    try:
        s = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError) as exc:
        raise AeroOptError(f"{run_dir / 'summary.json'}: cannot read the run's summary ({exc})") from None
    q = dynamic_pressure(s["rho"], s["speed"])
    v0, f0, d0 = read_vtp(run_dir / "initial.vtp")
    v1, f1, d1 = read_vtp(run_dir / "final.vtp")
    cp0, cp1 = d0["p"] / q, d1["p"] / q
    both = np.concatenate([cp0, cp1])
    cp_lim = (float(np.percentile(both, 2)), float(np.percentile(both, 98)))
    moved = 1000.0 * signed_distance(v1, v0, f0)
    reach = max(float(np.percentile(np.abs(moved), 98)), 1.0)
    viewer = viewer_html([(v0, f0, vertex_colours(cp0, "coolwarm", cp_lim)),
                          (v1, f1, vertex_colours(cp1, "coolwarm", cp_lim)),
                          (v1, f1, vertex_colours(moved, "PuOr_r", (-reach, reach)))])
    ini, fin = s["initial"], s["final"]
    rows = [("car", str(s.get("car"))), ("parameterization", s["param"]),
            ("surrogate drag", f"{ini['drag_N']:.1f} N → {fin['drag_N']:.1f} N ({100 * s['drag_change']:+.1f} %)"),
            ("surrogate Cd", f"{ini['Cd']:.4f} → {fin['Cd']:.4f}"),
            ("frontal area", f"{ini['A_ref']:.3f} → {fin['A_ref']:.3f} m²"),
            ("steps", f"{s['iterations']} at most; best feasible at step {s['best_iteration']}"
                      + (f"; stopped at step {s['stopped_at']} (Cd below the lowest training Cd {s['cd_floor']:.3f})"
                         if s.get("stopped_at") is not None else "")),
            ("room constraints", "met" if s["feasible"] else f"violated ({fin['room_penalty_m2']:.2e} m²)"),
            ("largest surface displacement", f"{np.abs(moved).max():.0f} mm")]
    if "cfd" in s:
        c = s["cfd"]
        rows.append(("OpenFOAM drag change", _change(c)))
        rows.append(("OpenFOAM Cd", f"{c['initial']['Cd']:.4f} → {c['final']['Cd']:.4f}"))
    else:
        rows.append(("OpenFOAM", "not verified (run with --verify)"))
    cp_scale = _png_uri(colour_scale_png("coolwarm", cp_lim, "Cp (predicted)"))
    moved_scale = _png_uri(colour_scale_png("PuOr_r", (-reach, reach), "surface moved outward (+) / inward (-), mm"))
    scales = (f'<p class="scales"><img src="{cp_scale}" alt="Cp colour scale">'
              f'<img src="{moved_scale}" alt="displacement colour scale"></p>')
    body = (_rows_table(rows)
            + ("<h2>Drag during the optimization</h2>" + _img(run_dir / "drag.png", "drag history")
               if (run_dir / "drag.png").is_file() else "")
            + "<h2>Shapes (drag to rotate, scroll to zoom)</h2>"
            + '<p class="note">top: the start shape coloured by predicted Cp; middle: the final shape, same scale; '
              "bottom: the final shape coloured by how far its surface moved from the start shape.</p>"
            + scales + f'<iframe srcdoc="{viewer}" title="3D view"></iframe>'
            + "<h2>Files</h2>" + _links(run_dir, ["initial.stl", "final.stl", "initial.vtp", "final.vtp",
                                                   "history.csv", "summary.json", "before_after.png", "cfd_initial",
                                                   "cfd_final"]))
    path = run_dir / REPORT_FILE
    write_text_atomic(path, _page(f"aero-opt optimize: {s['param']} on {s.get('car')}", body))
    return path


def markdown_tables_html(text: str) -> str:
    """The pipe tables and paragraphs of a markdown text (as ``results.md`` writes them) as HTML."""
    out: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            head, *rest = table
            out.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f'<td class="num">{html.escape(c)}</td>' for c in r) + "</tr>"
                                 for r in rest) + "</table>")
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip().replace("**", "") for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cells):
                table.append(cells)
            continue
        flush()
        if line.startswith("#"):
            out.append(f"<h2>{html.escape(line.lstrip('#').strip())}</h2>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "\n".join(out)


def write_compare_report(out_dir: Path) -> Path:
    """``out_dir/report.html`` for a comparison folder: its tables (``results.md``), its chart, and a link to each
    run's own report.

    Returns:
        The report's path.
    """
    out_dir = Path(out_dir)
    tables = markdown_tables_html((out_dir / "results.md").read_text()) if (out_dir / "results.md").is_file() else ""
    runs = []
    if (out_dir / "results.csv").is_file():
        with open(out_dir / "results.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                rel = f"{row['car']}/{row['param']}/{REPORT_FILE}"
                if (out_dir / rel).is_file():
                    runs.append(f'<li><a href="{html.escape(rel)}">{html.escape(row["car"])} · '
                                f'{html.escape(row["param"])}</a></li>')
    body = (tables + _img(out_dir / "comparison.png", "comparison chart")
            + "<h2>Each run</h2><ul>" + "".join(runs) + "</ul>"
            + "<h2>Files</h2>" + _links(out_dir, ["results.md", "results.csv", "comparison.png", "inputs.json"]))
    path = out_dir / REPORT_FILE
    write_text_atomic(path, _page("aero-opt compare", body))
    return path
