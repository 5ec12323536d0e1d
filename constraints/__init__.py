"""Soft penalties for the drag optimizer: room for the driver and the engine (``regions.py``) and the kNN latent
prior that keeps the car realistic (``latent_prior.py``)."""
