"""Running OpenFOAM tools (Debian ``openfoam`` v1912) with the environment they need.

The Debian ``etc/bashrc`` is partly broken; the minimum that makes every tool work is set here (see
``docs/cfd.md``): WM_PROJECT_DIR, WM_PROJECT, WM_PROJECT_VERSION, FOAM_ETC, and the two Open MPI
variables that allow ``mpirun`` as root.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from aero_opt.core.errors import AeroOptError

INSTALL_HINT = ("OpenFOAM is not installed (no simpleFoam on PATH): run "
                "`apt-get update && apt-get install -y openfoam` as root (or `make setup`, which does it)")


DASK_WORKER_ENV = ("MALLOC_TRIM_THRESHOLD_",)
"""Variables a Dask nanny sets for its worker processes that must not reach OpenFOAM: ``MALLOC_TRIM_THRESHOLD_``
(65536) makes glibc hand freed memory back to the OS at once, and OpenFOAM, which allocates and frees large
fields every iteration, then spends its time page-faulting (a coarse case ran about 2× slower)."""


def openfoam_env() -> dict[str, str]:
    """The process environment for OpenFOAM tools; raises :class:`AeroOptError` when OpenFOAM is missing."""
    if shutil.which("simpleFoam") is None:
        raise AeroOptError(INSTALL_HINT)
    env = {k: v for k, v in os.environ.items() if k not in DASK_WORKER_ENV}
    project_dir = env.get("WM_PROJECT_DIR") or "/usr/share/openfoam"
    env.update({
        "WM_PROJECT_DIR": project_dir,
        "WM_PROJECT": env.get("WM_PROJECT", "OpenFOAM"),
        "WM_PROJECT_VERSION": env.get("WM_PROJECT_VERSION", "v1912"),
        "FOAM_ETC": env.get("FOAM_ETC", str(Path(project_dir) / "etc")),
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        "OMPI_MCA_btl_vader_single_copy_mechanism": "none",
    })
    return env


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` of every OpenFOAM process: the kernel sends it SIGTERM when the thread that started it dies
    (Linux ``prctl(PR_SET_PDEATHSIG)``), so a killed batch or Dask worker leaves no solver running (mpirun passes
    the SIGTERM on to its ranks). The starting thread waits for the process, so it only dies with its process.
    Does nothing where prctl is missing."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def run_tool(args: list[str], case: Path, log_name: str, timeout: float | None = None) -> float:
    """Run one OpenFOAM tool in ``case`` with its output in ``case/log.<log_name>``; returns the wall time (s).

    Raises:
        AeroOptError: when the tool exits non-zero (the message has the log's last lines).
    """
    log_path = case / f"log.{log_name}"
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.run(args, cwd=case, env=openfoam_env(), stdout=log, stderr=subprocess.STDOUT,
                              timeout=timeout, preexec_fn=die_with_parent)
    if proc.returncode != 0:
        raise AeroOptError(f"{args[0]} failed in {case} (exit {proc.returncode}): {log_tail(log_path)}")
    return time.perf_counter() - t0


def log_tail(path: Path, lines: int = 12) -> str:
    """The last non-empty lines of a log file, joined with ' | ' (for one-line error messages)."""
    try:
        text = [ln.strip() for ln in Path(path).read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:])
