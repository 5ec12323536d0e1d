"""Shape parameterizations for the drag optimizer (to come with the optimization issue), one file each behind one
interface (``parameters()``, ``mesh() -> (V, F)`` with V differentiable, ``regularization()``): ``meshsdf``
(latent code + differentiable iso-surface), ``scaling``, ``freeform``, ``polycube`` and ``vertex``."""
