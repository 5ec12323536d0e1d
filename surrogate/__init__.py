"""The learned CFD surrogate (to come with the surrogate issue): mesh -> graph (``graph.py``), the SplineCNN
pressure model with a CPU-fast SplineConv (``splinecnn.py``), the pressure/shear -> force integral, the project's
single home for the drag physics (``forces.py``), and surrogate training and evaluation (``train.py``)."""
