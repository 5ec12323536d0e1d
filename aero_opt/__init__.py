"""aero-opt: aerodynamic shape optimization of cars with MeshSDF and a SplineCNN surrogate.

The package is layered; a module imports only from its own layer's package or a lower layer
(``tests/test_layers.py`` enforces it, ``docs/architecture.md`` draws it):

0. :mod:`aero_opt.core`: errors, atomic file writes, the car frame, the drag physics.
1. :mod:`aero_opt.geometry`: shapes, mesh import, SDF sampling, iso-surfaces, rendering, the dataset format.
2. :mod:`aero_opt.meshsdf` (decoder, training, fitting), :mod:`aero_opt.cfd` (OpenFOAM), and the top-level packages
   :mod:`surrogate`, :mod:`constraints`.
3. :mod:`parameterizations`.
4. :mod:`aero_opt.app`: configs, the ``aero-opt`` command (``python -m aero_opt.app``), optimize, compare, demo.
   Nothing imports it.
"""

__version__ = "0.1.0"

from aero_opt.core.memory import keep_freed_memory

keep_freed_memory()
