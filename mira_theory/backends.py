"""Where independent chunks of work run: in this process, in local processes, or on Dask.

Sweeps (:mod:`mira_theory.sweep`) and Monte Carlo simulations (:mod:`mira_theory.montecarlo`)
split the work that has no vectorized closed form into chunks (a few grid points, a few
replicates) and hand them to :func:`run_chunks`, which returns the chunks' results in chunk
order whatever order they finished in. The result never depends on the backend: chunks are
pure functions of their inputs (Monte Carlo chunks carry their own ``SeedSequence``).

Backends
--------
``"inprocess"`` (default)
    A plain loop in this process. Fastest for small jobs: no start-up, no pickling.
``"processes"``
    A local :class:`concurrent.futures.ProcessPoolExecutor` (``workers`` processes, default:
    the usable cores), started with the ``spawn`` method so it is safe next to threads (Dask,
    tqdm). Pass ``client=`` an existing executor to reuse its warm workers across calls.
``"dask"``
    A :mod:`dask.distributed` cluster. ``client`` may be

    * ``None``: a :class:`~dask.distributed.LocalCluster` of ``workers`` single-threaded
      worker processes (default 2) is started for the call and closed after it;
    * a scheduler address, ``"tcp://host:8786"``: a client connects for the call;
    * a :class:`~dask.distributed.Client` you manage (reused; not closed).

Pointing it at a cluster
------------------------
On the scheduler machine run ``dask scheduler`` (it listens on ``tcp://<host>:8786``); on
each worker machine run ``dask worker tcp://<host>:8786 --nthreads 1 --nworkers <cores>``.
Every worker needs the same mira-theory version installed (chunks are pickled functions of
this package). Then::

    from mira_theory.sweep import sweep
    ds = sweep(scenario, over, backend="dask", client="tcp://scheduler-host:8786")

or from the command line ``mira-theory sweep models/binary-claims.toml --over
committee.size=3:41:20 --backend dask --scheduler tcp://scheduler-host:8786 -o out.nc``.

Progress
--------
:func:`progress_bar` is a tqdm bar with an ETA, shown on standard error. ``progress=None``
(the default everywhere) shows it only when standard output and standard error are both
interactive terminals; ``True`` forces it, ``False`` hides it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from typing import Any

from mira_theory.scenario import Problem, ScenarioError

BACKENDS = ("inprocess", "processes", "dask")


def check_backend(backend: str) -> None:
    """Raise a :class:`ScenarioError` naming the valid backends if ``backend`` is not one."""
    if backend not in BACKENDS:
        raise ScenarioError([Problem("<arguments>", "backend", f"one of {list(BACKENDS)}", repr(backend))])


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _NoBar:
    def update(self, n: float = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def progress_enabled(progress: bool | None) -> bool:
    """``None``: only when standard output and standard error are interactive terminals."""
    if progress is None:
        return bool(sys.stdout.isatty() and sys.stderr.isatty())
    return bool(progress)


def progress_bar(total: float, desc: str, unit: str, progress: bool | None) -> Any:
    """A tqdm bar with ETA on standard error (appearing after 0.5 s), or a no-op bar."""
    if not progress_enabled(progress):
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, delay=0.5, dynamic_ncols=True,
                file=sys.stderr)


def run_chunks(fn: Callable[[Any], Any], chunks: Sequence[Any], *, backend: str = "inprocess",
               client: Any = None, workers: int | None = None, weights: Sequence[float] | None = None,
               progress: Any = None) -> list[Any]:
    """``[fn(c) for c in chunks]`` on the chosen backend, in chunk order.

    ``fn`` must be a module-level function (it is pickled for the other backends); ``weights``
    (default 1 per chunk) advance ``progress``, a bar from :func:`progress_bar` (or None).
    """
    check_backend(backend)
    bar = progress or _NoBar()
    weights = list(weights) if weights is not None else [1] * len(chunks)
    if not chunks:
        return []
    if backend == "inprocess":
        out = []
        for c, w in zip(chunks, weights):
            out.append(fn(c))
            bar.update(w)
        return out
    if backend == "processes":
        return _run_processes(fn, chunks, client, workers, weights, bar)
    return _run_dask(fn, chunks, client, workers, weights, bar)


def _run_processes(fn, chunks, client, workers, weights, bar) -> list[Any]:
    own = not isinstance(client, Executor)
    ex = (ProcessPoolExecutor(max_workers=workers or usable_cores(), mp_context=mp.get_context("spawn"))
          if own else client)
    try:
        futures = {ex.submit(fn, c): i for i, c in enumerate(chunks)}
        out: list[Any] = [None] * len(chunks)
        for fut in as_completed(futures):
            i = futures[fut]
            out[i] = fut.result()
            bar.update(weights[i])
        return out
    finally:
        if own:
            ex.shutdown(cancel_futures=True)


def dask_client(client: Any = None, workers: int | None = None) -> tuple[Any, Callable[[], None]]:
    """(a dask.distributed Client, a function closing what was opened here) for ``client``:
    None (a LocalCluster of ``workers`` processes, default 2), an address, or a Client."""
    from dask.distributed import Client, LocalCluster

    if isinstance(client, Client):
        return client, lambda: None
    if isinstance(client, str):
        c = Client(client)
        return c, c.close
    if client is not None:
        raise ScenarioError([Problem("<arguments>", "client", "a dask.distributed Client, a scheduler "
                                     "address such as 'tcp://host:8786', or None", type(client).__name__)])
    cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    c = Client(cluster)

    def close() -> None:
        c.close()
        cluster.close()

    return c, close


def _run_dask(fn, chunks, client, workers, weights, bar) -> list[Any]:
    from dask.distributed import as_completed as dask_completed

    c, close = dask_client(client, workers)
    try:
        futures = [c.submit(fn, chunk, pure=False) for chunk in chunks]
        index = {f.key: i for i, f in enumerate(futures)}
        out: list[Any] = [None] * len(chunks)
        for fut in dask_completed(futures):
            i = index[fut.key]
            out[i] = fut.result()
            bar.update(weights[i])
            fut.release()
        return out
    finally:
        close()
