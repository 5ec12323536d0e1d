"""Layer 1, on :mod:`aero_opt.core`: parametric cars and the Ahmed body (:mod:`.shapes`, :mod:`.carset`), mesh
import and repair (:mod:`.mesh_import`), SDF sampling (:mod:`.sdf`), the differentiable iso-surface
(:mod:`.isosurface`), silhouettes and figures (:mod:`.raster`, :mod:`.render`) and the dataset format
(:mod:`.dataset`)."""
