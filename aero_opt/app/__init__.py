"""Layer 4, the application: typed YAML configs (:mod:`.config`), the ``aero-opt`` command (:mod:`.cli`), the drag
optimizer (:mod:`.optimize`), the parameterization comparison (:mod:`.compare`) and the demo (:mod:`.demo`).
Nothing in the project imports this package."""

from pathlib import Path

REPO_DATA = Path(__file__).resolve().parents[2] / "data"
"""The shipped data folder: trained models under ``models/``, the CFD dataset under ``dataset/``, the Bob and Spot
meshes under ``bob_spot/``."""
