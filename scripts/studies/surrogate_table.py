"""Side-by-side table of surrogate evaluations: one row per ``eval-surrogate`` metrics file, as Markdown.

    .venv/bin/python scripts/studies/surrogate_table.py "run 5=data/models/surrogate/metrics_test.json" \
        "run 6=results/surrogate/run/eval_test/metrics.json" [--out docs/validation/surrogate_runs.md]

Each argument is ``LABEL=PATH`` (or just a path: the label is the file's folder name). The columns are the ones
the training notes compare runs by: pressure relative L2 (mean), total Cd R² / Spearman / MAE, pressure-only Cd
R² / Spearman, the predicted viscous Cd's std and negative count (against CFD's std), the mean change of the
predicted Cd on the cars' mirror images, and the largest region part of the pressure Cd error. Older metrics
files that lack a field show "—". With ``--out`` the table is written (atomically) with the command that made it.

With ``--common`` every file is cut down to the cars all of them evaluated (by name, from ``per_car``) and its
metrics recomputed over those cars (``surrogate.evaluate.summarize``): how to compare a model evaluated on a grown
test split with one evaluated before it grew. A note under the table says when the CFD labels of those cars
differ between the files (e.g. averaged over more runs since), since the rows then measure against different
references.

With ``--errors`` (two files or more, same CFD labels) a second table follows: the Pearson correlation of the
per-car total Cd errors (predicted − CFD) of every pair of files over their common cars with the difference of
their Cd R² and its 95% paired bootstrap interval (both models scored on the same resampled cars: an interval that
excludes 0 is a difference beyond the luck of the test draw), and the Cd metrics of the mean of all files'
predictions (an ensemble). Errors that correlate near 1 are shared by the models: averaging them cannot remove them.
A third table fits, for every file, the straight line CFD Cd ≈ a + b · predicted Cd on its own cars by least
squares and gives the R² after it: an upper bound on what any linear recalibration of the predictions could gain
on those cars (a slope b near 1 and no gain mean the predictions are neither shrunk nor offset).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from aero_opt.core.atomic import write_text_atomic
from aero_opt.core.errors import AeroOptError
from surrogate.evaluate import EXTRA_SECTIONS, paired_r2_difference_ci, score_cd, sections_in, summarize

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


def _common_names(entries: list[tuple[str, dict[str, Any]]], why: str) -> set[str]:
    """The cars every entry's ``per_car`` rows cover; AeroOptError (naming the entry, ending with ``why``) when an
    entry has no rows, or when no car is common."""
    for label, m in entries:
        if not m.get("per_car"):
            raise AeroOptError(f"{label}: no per_car rows, so {why}")
    names = set.intersection(*({r["car"] for r in m["per_car"]} for _, m in entries))
    if not names:
        raise AeroOptError("the metrics files have no car in common")
    return names


def common_cars(entries: list[tuple[str, dict[str, Any]]]) -> tuple[list[tuple[str, dict[str, Any]]], str]:
    """Each (label, metrics) entry recomputed over the cars every entry evaluated, and a note for the table.

    Args:
        entries: (label, eval-surrogate metrics with ``per_car`` rows) pairs.

    Returns:
        The entries with ``cars`` and the summary metrics recomputed over the common cars (the sections of an
        older file whose rows lack a section's fields are left out, not carried over from the whole file), and a
        one-line note: how many cars are common and on how many of them the CFD Cd differs between the files (by
        more than 1e-6).

    Raises:
        AeroOptError: a file without ``per_car`` rows, or no car in common.
    """
    names = _common_names(entries, "it cannot be cut down to the common cars")
    out = []
    labels: dict[str, set[float]] = {n: set() for n in names}
    for label, m in entries:
        rows = [r for r in m["per_car"] if r["car"] in names]
        for r in rows:
            labels[r["car"]].add(round(r["cd_total_cfd"], 6))
        recomputed = summarize(rows, sections_in(rows))
        kept = {k: v for k, v in m.items() if k not in EXTRA_SECTIONS}
        out.append((label, {**kept, **recomputed, "cars": len(rows)}))
    differ = sum(len(v) > 1 for v in labels.values())
    note = f"Over the {len(names)} cars all files evaluated" + (
        f"; their CFD Cd labels differ between the files on {differ} cars (different label averaging): the rows "
        "measure against different references." if differ else "; the same CFD labels in every file.")
    return out, note


def error_agreement(entries: list[tuple[str, dict[str, Any]]]) -> str:
    """Markdown table of how the files' total Cd errors agree over their common cars (see the module docstring).

    Args:
        entries: two or more (label, eval-surrogate metrics with ``per_car`` rows) pairs.

    Returns:
        One row per pair (labels, cars, Pearson r of the per-car Cd errors) and a last row: the R² / Spearman / MAE
        of the mean predicted Cd of all files.

    Raises:
        AeroOptError: fewer than two files, a file without ``per_car`` rows, no car in common, or CFD labels that
        differ between the files on a common car (the errors would be measured against different references).
    """
    if len(entries) < 2:
        raise AeroOptError("--errors needs two metrics files or more")
    names = sorted(_common_names(entries, "its Cd errors cannot be compared"))
    rows = [{r["car"]: r for r in m["per_car"]} for _, m in entries]
    cfd = np.array([[f[n]["cd_total_cfd"] for n in names] for f in rows])
    if np.abs(cfd - cfd[0]).max() > 1e-6:
        raise AeroOptError("the metrics files' CFD Cd labels differ on common cars: evaluate the models on the same "
                           "labels before comparing their errors")
    pred = np.array([[f[n]["cd_total_pred"] for n in names] for f in rows])
    err = pred - cfd
    lines = ["| files | cars | Cd error correlation (Pearson r) | Cd R² second − first (95% paired bootstrap) |",
             "|---|---|---|---|"]
    for i in range(len(entries)):
        for j in range(i + 1, len(entries)):
            r = float(np.corrcoef(err[i], err[j])[0, 1])
            d = score_cd(cfd[0], pred[j])["r2"] - score_cd(cfd[0], pred[i])["r2"]
            lo, hi = paired_r2_difference_ci(cfd[0], pred[i], pred[j])
            lines.append(f"| {entries[i][0]} vs {entries[j][0]} | {len(names)} | {r:.2f} | {d:+.3f} "
                         f"[{lo:+.3f}, {hi:+.3f}] |")
    ens = score_cd(cfd[0], pred.mean(0))
    lines.append(f"| mean prediction: Cd R² / Spearman / MAE | {len(names)} | {_f(ens['r2'], 3)} / "
                 f"{_f(ens['spearman'], 3)} / {_f(ens['mae'], 4)} | |")
    return "\n".join(lines) + "\n"


def recalibration(entries: list[tuple[str, dict[str, Any]]]) -> str:
    """Markdown table: each file's least-squares line CFD Cd ≈ a + b · predicted Cd and its R² before and after it.

    Args:
        entries: (label, eval-surrogate metrics with ``per_car`` rows) pairs.

    Returns:
        One row per file: cars, intercept a, slope b, total Cd R² of the predictions and of a + b · prediction,
        both against the file's CFD Cd. The line is fitted on the scored cars themselves, so the second R² bounds
        from above what a linear recalibration could reach on them.

    Raises:
        AeroOptError: a file with fewer than three ``per_car`` rows.
    """
    lines = ["| file | cars | CFD Cd ≈ a + b · predicted: a / b | Cd R² as predicted → after the line |",
             "|---|---|---|---|"]
    for label, m in entries:
        if len(m.get("per_car") or []) < 3:
            raise AeroOptError(f"{label}: fewer than 3 per_car rows, too few to refit its predictions")
        cfd = np.array([r["cd_total_cfd"] for r in m["per_car"]])
        pred = np.array([r["cd_total_pred"] for r in m["per_car"]])
        b, a = np.polyfit(pred, cfd, 1)
        lines.append(f"| {label} | {len(cfd)} | {a:+.4f} / {b:.3f} | {score_cd(cfd, pred)['r2']:.4f} → "
                     f"{score_cd(cfd, a + b * pred)['r2']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("metrics", nargs="+", help="LABEL=PATH of an eval-surrogate metrics.json")
    ap.add_argument("--out", type=Path, default=None, help="write the table here (Markdown)")
    ap.add_argument("--common", action="store_true", help="recompute every row over the cars all files evaluated")
    ap.add_argument("--errors", action="store_true",
                    help="add the correlation of the files' Cd errors, the metrics of their mean prediction and "
                         "each file's best linear recalibration")
    args = ap.parse_args()
    try:
        entries = [_entry(a) for a in args.metrics]
        note = ""
        if args.common:
            entries, note = common_cars(entries)
        text = table(entries) + (f"\n{note}\n" if note else "")
        if args.errors:
            text += "\n" + error_agreement(entries) + "\n" + recalibration(entries)
    except AeroOptError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.out is not None:
        cmd = "python scripts/studies/surrogate_table.py " + " ".join(f'"{a}"' for a in args.metrics) + (
            " --common" if args.common else "") + (" --errors" if args.errors else "")
        write_text_atomic(args.out, f"<!-- made by: {cmd} -->\n{text}")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
