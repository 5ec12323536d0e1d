"""Side-by-side table of surrogate evaluations: one row per ``eval-surrogate`` metrics file, as Markdown.

    .venv/bin/python scripts/surrogate_table.py "run 5=data/models/surrogate/metrics_test.json" \
        "run 6=results/surrogate/run/eval_test/metrics.json" [--out docs/validation/surrogate_runs.md]

Each argument is ``LABEL=PATH`` (or just a path: the label is the file's folder name). The columns are the ones
the training notes compare runs by: pressure relative L2 (mean), total Cd R² / Spearman / MAE, pressure-only Cd
R² / Spearman, the predicted viscous Cd's std and negative count (against CFD's std), the mean change of the
predicted Cd on the cars' mirror images, and the largest region part of the pressure Cd error. Older metrics
files that lack a field show "—". With ``--out`` the table is written (atomically) with the command that made it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aero_opt.atomic import write_text_atomic
from aero_opt.errors import AeroOptError

COLUMNS = ("model", "cars", "pressure rel. L2", "Cd total R² / Spearman / MAE", "Cd pressure-only R² / Spearman",
           "viscous Cd std (CFD), negative", "mirror-image Cd change", "largest Cd error part (std)")


def _f(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _mirror_cell(change: dict[str, float] | None) -> str:
    """Signed mean change of the predicted Cd on the mirror images (older files: only its absolute mean)."""
    if change is None:
        return "—"
    return f"{change['mean']:+.3f}" if "mean" in change else f"±{change['mae']:.3f}"


def row(label: str, m: dict[str, Any]) -> list[str]:
    """The table cells of one metrics dict (``eval-surrogate``'s metrics.json) under the name ``label``."""
    ct, cp = m["cd_total"], m["cd_pressure"]
    visc = m.get("cd_viscous")
    mirror = (m.get("mirror") or {}).get("cd_total_change")
    regions = m.get("cd_pressure_error_by_region")
    worst = None if not regions else max(regions.items(), key=lambda kv: kv[1]["std"])
    return [label, str(m["cars"]), _f(m["pressure_rel_l2"]["mean"], 3),
            f"{_f(ct['r2'])} / {_f(ct['spearman'])} / {_f(ct['mae'], 3)}",
            f"{_f(cp['r2'])} / {_f(cp['spearman'])}",
            "—" if visc is None else f"{visc['pred_std']:.3f} ({visc['cfd_std']:.3f}), {visc['pred_negative']}",
            _mirror_cell(mirror),
            "—" if worst is None else f"{worst[0]} ({worst[1]['std']:.3f})"]


def table(entries: list[tuple[str, dict[str, Any]]]) -> str:
    """Markdown table (header, rule, one row per (label, metrics) entry)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(label, m)) + " |" for label, m in entries]
    return "\n".join(lines) + "\n"


def _entry(arg: str) -> tuple[str, dict[str, Any]]:
    label, _, path = arg.rpartition("=") if "=" in arg else ("", "", arg)
    p = Path(path)
    if not p.is_file():
        raise AeroOptError(f"{p}: no such metrics file (make one with `aero-opt eval-surrogate`)")
    try:
        m = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise AeroOptError(f"{p}: not JSON ({e})") from e
    missing = [k for k in ("cars", "pressure_rel_l2", "cd_total", "cd_pressure") if k not in m]
    if missing:
        raise AeroOptError(f"{p}: not an eval-surrogate metrics file (no {', '.join(missing)})")
    return label or p.parent.name, m


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("metrics", nargs="+", help="LABEL=PATH of an eval-surrogate metrics.json")
    ap.add_argument("--out", type=Path, default=None, help="write the table here (Markdown)")
    args = ap.parse_args()
    try:
        text = table([_entry(a) for a in args.metrics])
    except AeroOptError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.out is not None:
        cmd = "python scripts/surrogate_table.py " + " ".join(f'"{a}"' for a in args.metrics)
        write_text_atomic(args.out, f"<!-- made by: {cmd} -->\n{text}")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
