"""aero_opt/core/settings.py: declared ranges and choices of settings, checked with the value's name."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from aero_opt.core.errors import AeroOptError
from aero_opt.core.settings import at_least, check_value, positive, replace_checked


@dataclass(frozen=True)
class Section:
    n: int = at_least(1, 3)
    lr: float = positive(0.1)
    share: float = at_least(0.0, 0.5, max=1.0)
    steps: int | None = at_least(1, None)
    kind: str = field(default="a", metadata={"choices": ("a", "b")})
    free: float = -2.0


def test_values_inside_the_range_pass_and_none_means_default() -> None:
    s = replace_checked(Section(), n=1, lr=1e-9, share=1.0, steps=None, kind="b", free=-1e9)
    assert (s.n, s.lr, s.share, s.steps, s.kind, s.free) == (1, 1e-9, 1.0, None, "b", -1e9)
    assert replace_checked(Section()) == Section()


@pytest.mark.parametrize("key,value,message", [
    ("n", 0, "--n 0: must be at least 1"),
    ("lr", 0.0, "--lr 0.0: must be greater than 0"),
    ("lr", float("nan"), "--lr nan: must be a finite number"),
    ("lr", float("inf"), "--lr inf: must be a finite number"),
    ("share", 1.5, "--share 1.5: must be at most 1.0"),
    ("steps", -1, "--steps -1: must be at least 1"),
    ("kind", "c", "--kind 'c': must be one of a, b"),
])
def test_a_value_outside_is_refused_naming_the_flag(key: str, value: object, message: str) -> None:
    with pytest.raises(AeroOptError) as exc:
        replace_checked(Section(), **{key: value})
    assert str(exc.value) == message


def test_the_message_names_what_the_caller_calls_the_value() -> None:
    with pytest.raises(AeroOptError, match=r"^--procs-per-case 0: must be at least 1$"):
        replace_checked(Section(), {"n": "--procs-per-case"}, n=0)
    (n_field,) = [f for f in dataclasses.fields(Section) if f.name == "n"]
    with pytest.raises(AeroOptError, match=r"^c.yaml: x.n: must be at least 1, got -3$"):
        check_value(n_field, -3, "c.yaml: x.n")
