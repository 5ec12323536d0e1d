"""Reading saved torch files (models, checkpoints, cached start shapes) with errors that name the file."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from aero_opt.core.errors import AeroOptError


def load_torch(path: str | Path, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """The dict saved in a torch file, on the CPU.

    Args:
        path: the ``.pt`` file.
        keys: entries it must hold.

    Raises:
        AeroOptError: missing, cut-off or corrupt file, not a dict, or a missing entry (naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise AeroOptError(f"{path}: no such file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise AeroOptError(f"{path}: cannot read ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); a "
                           "cut-off or corrupt file: restore it or make it again") from exc
    if not isinstance(data, dict):
        raise AeroOptError(f"{path}: not a saved model or checkpoint (holds a {type(data).__name__})")
    missing = [k for k in keys if k not in data]
    if missing:
        raise AeroOptError(f"{path}: not a file of this kind (missing {', '.join(missing)})")
    return data


def load_weights(module: torch.nn.Module, state: dict[str, Any], path: str | Path) -> None:
    """``module.load_state_dict(state)``, refusing with one line naming ``path`` when the saved weights belong to
    a model of another size or layout (changed width, depth or options)."""
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = next((ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()), str(exc).splitlines()[0])
        raise AeroOptError(f"{path}: the saved weights are for a model of another size or layout ({first[:200]}); "
                           "use the settings it was made with, or a new output folder") from exc
