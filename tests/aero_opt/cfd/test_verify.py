"""aero_opt/cfd/verify.py: the grid shifts of repeated runs (check_shapes itself runs in the optimize and compare
tests, with the stand-in solver)."""

from __future__ import annotations

import pytest

from aero_opt.cfd.verify import grid_shifts
from aero_opt.core.errors import AeroOptError


def test_grid_shifts_span_one_cell_of_the_coarsest_box() -> None:
    assert grid_shifts(3, "coarse") == pytest.approx([0.0, 1 / 12, 1 / 6], abs=1e-6)  # box level 2: period ¼
    assert grid_shifts(1, "medium") == [0.0]
    assert grid_shifts(4, "coarse-layers") == pytest.approx([0.0, 1 / 16, 1 / 8, 3 / 16], abs=1e-6)
    with pytest.raises(AeroOptError, match="--preset 'huge'"):
        grid_shifts(2, "huge")
