"""``python -m aero_opt.app``: the ``aero-opt`` command (what ``make demo`` and ``torchrun -m`` call)."""

from aero_opt.app.cli import main

raise SystemExit(main())
