"""``python -m aero_opt``: the ``aero-opt`` command."""

from aero_opt.app.cli import main

raise SystemExit(main())
