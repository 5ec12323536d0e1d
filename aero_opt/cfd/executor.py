"""Where OpenFOAM cases run side by side: one executor for every CFD fan-out, on Dask distributed.

:class:`CaseExecutor` opens, by :class:`ClusterConfig`:

- ``local`` (the default): an in-process Dask ``LocalCluster`` of worker processes, one thread each, sized so that
  workers × cores per case ≤ the machine's cores;
- ``address``: a running Dask scheduler (``tcp://host:port``), whose workers must see the same output folders
  (:meth:`CaseExecutor.check_shared_folder` proves it before any case is submitted);
- ``slurm`` / ``pbs``: a dask-jobqueue cluster of ``jobs`` batch jobs, each one worker of ``cores`` cores;
- ``pool``: a plain ``concurrent.futures`` process pool (the baseline of ``scripts/bench/bench_cfd_batch.py``);
- ``threads``: a thread pool in this process (debugging; what the tests use when they replace the solver).

A case that needs N cores (``procs_per_case``, MPI ranks) reserves N units of the workers' ``cores`` resource, so
cases never oversubscribe a node. When a worker dies mid-case, Dask runs the case again on another worker (the
case function redoes a half-written folder); the dead worker's OpenFOAM processes die with it
(:func:`aero_opt.cfd.env.die_with_parent`). ``docs/cluster.md`` has the recipes.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import as_completed as pool_completed
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from aero_opt.core.errors import AeroOptError
from aero_opt.core.progress import progress_bar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
A = TypeVar("A")
T = TypeVar("T")

KINDS = ("local", "pool", "threads", "slurm", "pbs")


@dataclass(frozen=True)
class ClusterConfig:
    """Where CFD cases run (YAML section ``cluster``; ``docs/cluster.md``)."""

    kind: str = field(default="local", metadata={"choices": KINDS})
    """``local``: a Dask cluster on this machine; ``slurm`` / ``pbs``: Dask workers as batch jobs (dask-jobqueue);
    ``pool``: a plain process pool on this machine; ``threads``: threads of this process (debugging)."""
    address: str | None = None
    """A running Dask scheduler, ``tcp://host:port``: used instead of ``kind`` when set."""
    cores: int = 4
    """``slurm`` / ``pbs``: cores of one batch job (one Dask worker)."""
    memory: str = "8GB"
    """``slurm`` / ``pbs``: memory of one batch job."""
    walltime: str = "04:00:00"
    """``slurm`` / ``pbs``: wall-time limit of one batch job."""
    queue: str | None = None
    """``slurm`` / ``pbs``: partition or queue (None: the system's default)."""
    jobs: int = 1
    """``slurm`` / ``pbs``: batch jobs (workers) to start."""


def default_cluster() -> ClusterConfig:
    """The cluster used when a caller gives none: a local Dask cluster."""
    return ClusterConfig()


def local_slots(workers: int | None, procs_per_case: int, cores: int | None = None) -> int:
    """How many cases run at once on this machine: ``workers``, or as many as fit (``cores // procs_per_case``).

    Raises:
        AeroOptError: ``workers × procs_per_case`` exceeds the cores, or a count below 1.
    """
    cores = cores or os.cpu_count() or 1
    if procs_per_case < 1 or (workers is not None and workers < 1):
        raise AeroOptError(f"cfd.workers and cfd.procs must be >= 1 (got {workers} and {procs_per_case})")
    if procs_per_case > cores:
        raise AeroOptError(f"cfd.procs {procs_per_case}: this machine has {cores} cores")
    if workers is None:
        return max(1, cores // procs_per_case)
    if workers * procs_per_case > cores:
        raise AeroOptError(f"cfd.workers {workers} × cfd.procs {procs_per_case} = {workers * procs_per_case} "
                           f"cores, but this machine has {cores}: cases would oversubscribe it")
    return workers


def _touch(path: str) -> str:
    """Worker side of the shared-folder check: write a marker file, return this worker's host name."""
    Path(path).write_text(os.uname().nodename)
    return os.uname().nodename


class CaseExecutor:
    """Runs case functions side by side on a Dask cluster (or a plain pool); a context manager.

    Args:
        cluster: where (:class:`ClusterConfig`; None: :func:`default_cluster`).
        workers: cases at once on a local cluster or pool (None: as many as fit the cores).
        procs_per_case: cores (MPI ranks) each case reserves.
    """

    def __init__(self, cluster: ClusterConfig | None = None, workers: int | None = None,
                 procs_per_case: int = 1) -> None:
        self.cluster = cluster or default_cluster()
        self.procs = procs_per_case
        self.workers = workers
        self._client: Any = None
        self._dask_cluster: Any = None
        self._pool: Executor | None = None

    @property
    def remote(self) -> bool:
        """Whether the workers may run on other machines (an address or a batch-job cluster)."""
        return self.cluster.address is not None or self.cluster.kind in ("slurm", "pbs")

    def __enter__(self) -> CaseExecutor:
        c = self.cluster
        if c.address is None and c.kind in ("pool", "threads"):
            pool = ProcessPoolExecutor if c.kind == "pool" else ThreadPoolExecutor
            self._pool = pool(max_workers=local_slots(self.workers, self.procs))
            return self
        from distributed import Client, LocalCluster

        logging.getLogger("distributed").setLevel(max(logging.WARNING, logging.getLogger().level))
        if c.address is not None:
            self._client = Client(c.address, timeout="30s")
        elif c.kind == "local":
            n = local_slots(self.workers, self.procs)
            self._dask_cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                              resources={"cores": self.procs}, dashboard_address=":0",
                                              silence_logs=logging.WARNING)
            self._client = Client(self._dask_cluster)
        else:
            self._dask_cluster = _jobqueue_cluster(c)
            self._dask_cluster.scale(jobs=c.jobs)
            self._client = Client(self._dask_cluster)
        if self.remote:
            self._check_resources()
            if self._client.dashboard_link:
                log.info("Dask dashboard: %s", self._client.dashboard_link)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=exc is None, cancel_futures=True)
        if self._client is not None:
            self._client.close()
        if self._dask_cluster is not None:
            self._dask_cluster.close()

    def _check_resources(self) -> None:
        """A remote cluster's workers must declare the ``cores`` resource when cases need more than one core."""
        if self.procs <= 1:
            return
        workers = self._client.scheduler_info().get("workers", {})
        have = [w.get("resources", {}).get("cores", 0) for w in workers.values()]
        if workers and max(have) < self.procs:
            raise AeroOptError(f"cluster {self.cluster.address or self.cluster.kind}: no worker offers "
                               f"{self.procs} cores (start workers with `--resources cores=N`, N >= {self.procs})")

    def capacity(self) -> int:
        """How many cases run at once: the local slots, or the remote workers' threads (or ``cores``) per case."""
        if self._client is None or self._dask_cluster is not None and self.cluster.kind == "local":
            return local_slots(self.workers, self.procs)
        workers = self._client.scheduler_info().get("workers", {}).values()
        per_worker = [w.get("resources", {}).get("cores", w.get("nthreads", 1)) // self.procs for w in workers]
        return max(1, sum(per_worker))

    def check_shared_folder(self, folder: Path) -> None:
        """Prove that the workers see ``folder`` (a worker writes a marker there and this process reads it).

        Raises:
            AeroOptError: the marker does not appear here (the folder is not on a filesystem the workers share).
        """
        if not self.remote:
            return
        folder = Path(folder).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        marker = folder / f".shared-check-{uuid.uuid4().hex}"
        try:
            host = self._client.submit(_touch, str(marker), pure=False).result(timeout=300)
            if not marker.is_file():
                raise AeroOptError(f"{folder}: a Dask worker ({host}) wrote a file here that this machine cannot "
                                   "see; put the output folder on a filesystem the workers share")
        finally:
            marker.unlink(missing_ok=True)

    def map(self, fn: Callable[[A], T], items: Iterable[tuple[K, A]], desc: str = "cfd",
            progress: bool = True) -> Iterator[tuple[K, T | AeroOptError]]:
        """Run ``fn(arg)`` for every (key, arg), started in the given order, yielding (key, result) in order of
        completion.

        ``fn`` must be importable by the workers (a module-level function). A case that raised
        :class:`AeroOptError`, or whose workers kept dying (Dask gives up after three), yields an
        :class:`AeroOptError` as its result; other exceptions propagate. The progress bar counts cases done, and
        shows how many run (the free slots, :meth:`capacity`), wait and failed.
        """
        pairs = list(items)
        if not pairs:
            return
        bar = progress_bar(total=len(pairs), desc=desc, unit="case", enabled=progress)
        failed, slots = 0, self.capacity()
        bar.set_postfix(running=min(slots, len(pairs)), failed=0, queued=max(0, len(pairs) - slots))
        try:
            for key, result in self._completed(fn, pairs):
                failed += isinstance(result, AeroOptError)
                bar.update(1)
                left = bar.total - bar.n
                bar.set_postfix(running=min(slots, left), failed=failed, queued=max(0, left - slots))
                yield key, result
        finally:
            bar.close()

    def _completed(self, fn: Callable[[A], T], pairs: list[tuple[K, A]]
                   ) -> Iterator[tuple[K, T | AeroOptError]]:
        if self._pool is not None:
            futures = {self._pool.submit(fn, arg): key for key, arg in pairs}
            for fut in pool_completed(futures):
                yield futures[fut], _outcome(fut.result)
            return
        if self._client is None:
            raise RuntimeError("CaseExecutor used outside its with-block")
        from distributed import as_completed

        resources = {"cores": self.procs} if self.procs > 1 or self.cluster.address is None else None
        futures = {}
        for i, (key, arg) in enumerate(pairs):  # in the given order: Dask would start resource-bound tasks in any
            fut = self._client.submit(fn, arg, pure=False, resources=resources, priority=len(pairs) - i)
            futures[fut] = key
        for fut in as_completed(futures):
            yield futures[fut], _outcome(fut.result)


def _outcome(result: Callable[[], T]) -> T | AeroOptError:
    from distributed.scheduler import KilledWorker

    try:
        return result()
    except AeroOptError as exc:
        return exc
    except KilledWorker as exc:
        return AeroOptError(f"the workers running this case died repeatedly ({exc}); see the workers' logs")


def _jobqueue_cluster(c: ClusterConfig) -> Any:
    """A dask-jobqueue cluster: one worker per batch job, declaring its cores as the ``cores`` resource."""
    try:
        import dask_jobqueue
    except ImportError as exc:  # pinned in pyproject.toml; missing only in a hand-made environment
        raise AeroOptError(f"cluster.kind {c.kind}: dask-jobqueue is not installed (pip install "
                           "dask-jobqueue==0.9.0)") from exc
    cls = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}[c.kind]
    return cls(cores=c.cores, processes=1, memory=c.memory, walltime=c.walltime, queue=c.queue,
               worker_extra_args=["--resources", f"cores={c.cores}"])
