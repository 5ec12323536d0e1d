"""The learned CFD surrogate, layer 2 (on :mod:`aero_opt.core` and :mod:`aero_opt.geometry`).

Inference: mesh -> graph (``graph.py``), a CPU-fast SplineConv with PyG's semantics (``spline_conv.py``), the
residual SplineCNN pressure model (``splinecnn.py``, with the optional volume branch ``volume.py``), the trained
model as the optimizer uses it (``model.py``), the training domain score (``domain.py``), the dataset as samples
(``samples.py``) and evaluation (``evaluate.py``). Training: ``train.py`` with its settings in ``config.py``;
nothing on the inference side imports it. The drag physics lives in :mod:`aero_opt.core.physics`."""
