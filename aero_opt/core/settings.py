"""Allowed values of a setting, declared on the dataclass field that holds it and checked wherever a value comes
in (a YAML config, a command-line flag).

A field declares its range in its metadata: ``at_least(1, 12)`` is ``field(default=12, metadata={"min": 1})``,
``positive(0.005)`` a float that must be finite and above zero; ``choices`` lists the allowed values.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import field
from typing import Any

from aero_opt.core.errors import AeroOptError


def at_least(low: float, default: Any, **metadata: Any) -> Any:
    """A dataclass field with ``default`` whose value (when not None) must be ≥ ``low``."""
    return field(default=default, metadata={"min": low, **metadata})


def positive(default: Any, **metadata: Any) -> Any:
    """A dataclass field with ``default`` whose value (when not None) must be finite and > 0."""
    return field(default=default, metadata={"gt": 0, **metadata})


def check_value(f: dataclasses.Field, value: Any, where: str) -> None:
    """Refuse ``value`` for field ``f`` when it is outside the field's declared choices or range.

    Args:
        f: the dataclass field (its ``metadata`` may hold ``choices``, ``min``, ``max``, ``gt``).
        value: the value given.
        where: what names it in the message: ``"file: section.key"`` or ``"--flag"``.

    Raises:
        AeroOptError: ``"--flag <value>: must be ..."`` for a flag, ``"<file: key>: must be ..., got <value>"``
            otherwise.
    """
    meta = f.metadata

    def refuse(rule: str) -> AeroOptError:
        if where.startswith("--"):
            return AeroOptError(f"{where} {value!r}: {rule}")
        return AeroOptError(f"{where}: {rule}, got {value!r}")

    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise refuse(f"must be one of {', '.join(map(str, choices))}")
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not ({"min", "max", "gt"} & set(meta)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise refuse("must be a finite number")
    if "min" in meta and value < meta["min"]:
        raise refuse(f"must be at least {meta['min']}")
    if "max" in meta and value > meta["max"]:
        raise refuse(f"must be at most {meta['max']}")
    if "gt" in meta and value <= meta["gt"]:
        raise refuse(f"must be greater than {meta['gt']}")


def replace_checked(section: Any, names: dict[str, str] | None = None, **values: Any) -> Any:
    """``dataclasses.replace(section, **values)`` for the values that are not None, each checked against its field
    (:func:`check_value`); an error names the value's flag (``names[key]``, else ``--key-with-dashes``)."""
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        return section
    fields = {f.name: f for f in dataclasses.fields(section)}
    for key, value in given.items():
        check_value(fields[key], value, (names or {}).get(key, "--" + key.replace("_", "-")))
    return dataclasses.replace(section, **given)
