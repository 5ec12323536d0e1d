"""OpenFOAM ground truth: case set-up and runs (:mod:`.case`), batches (:mod:`.batch`), results (:mod:`.results`).

The OpenFOAM environment of the Debian v1912 build is prepared by :func:`aero_opt.cfd.env.openfoam_env`.
"""
