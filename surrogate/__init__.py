"""The learned CFD surrogate: the drag physics (``forces.py``, the project's single home for it), mesh -> graph
(``graph.py``), a CPU-fast SplineConv with PyG's semantics (``spline_conv.py``) and the residual SplineCNN pressure
model (``splinecnn.py``). Training and evaluation come with the surrogate issue."""
