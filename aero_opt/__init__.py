"""aero-opt: aerodynamic shape optimization of cars with MeshSDF and a SplineCNN surrogate.

Modules: :mod:`aero_opt.shapes` (parametric cars, Ahmed body), :mod:`aero_opt.meshio` (import and repair),
:mod:`aero_opt.sdf` (normalization and SDF samples), :mod:`aero_opt.config` (typed YAML configs),
:mod:`aero_opt.cli` (the ``aero-opt`` command).
"""

__version__ = "0.1.0"

from aero_opt.memory import keep_freed_memory

keep_freed_memory()
