"""BLAS threads of parallel workers: see them, and limit them on a dask cluster.

A fit spends most of its time in BLAS matrix products, and BLAS starts one thread per
core by default. When several workers share a machine, each running fits, that gives
workers x cores threads fighting over the cores (oversubscription), which is slower
than one thread each. Two cases:

- joblib's ``loky`` backend (``GridSearchCV(..., n_jobs=k)``) already starts its
  workers with ``cores // k`` BLAS threads.
- A dask worker started by a nanny (``LocalCluster(processes=True)``, ``dask worker``)
  starts with 1 BLAS thread (dask's ``distributed.nanny.pre-spawn-environ``): safe,
  but a worker with one dask thread on a big machine then leaves cores idle. Workers
  that share a process (``LocalCluster(processes=False)``) or that run without a nanny
  keep every core each. :func:`limit_blas_threads` sets each worker to its share,
  ``cores // dask threads on its host``, or to a number you give.

numpy and scipy each bring their own OpenBLAS; both are loaded (importing this package
imports scipy's optimizer) before the limits are set, so both obey them.
"""

import numbers
import os
from collections import defaultdict

from joblib import cpu_count
from threadpoolctl import threadpool_info, threadpool_limits

from ._processes import _blas_control

__all__ = ["blas_threads", "limit_blas_threads"]


def blas_threads():
    """Threads of each BLAS library loaded in this process.

    Returns
    -------
    dict
        ``{library file name: number of threads}``, numpy's and scipy's among them.

    Examples
    --------
    >>> from sknn_scratch.parallel import blas_threads
    >>> all(n >= 1 for n in blas_threads().values())
    True
    """
    return {os.path.basename(lib["filepath"]): lib["num_threads"]
            for lib in threadpool_info() if lib["user_api"] == "blas"}


def limit_blas_threads(client, n_threads=None):
    """Limit the BLAS threads of every worker of a dask cluster.

    Parameters
    ----------
    client : distributed.Client
        A client connected to the cluster.
    n_threads : int or None
        BLAS threads per worker. None gives each worker its share of its machine:
        ``max(1, cores // t)`` with ``t`` the dask threads of all workers on that host,
        so that concurrent fits never ask for more threads than there are cores.

    Returns
    -------
    dict
        ``{worker address: BLAS threads}``, read back from each worker after the limit
        is set (the fewest of its BLAS libraries').

    Notes
    -----
    The limit holds for the workers connected now; call again after the cluster grows
    (a worker that joins later starts with its own default, 1 under a nanny).
    Workers that run in the client's own process (``LocalCluster(processes=False)``)
    share its BLAS: the limit then holds for the client's process as well, after the
    cluster is closed too; read :func:`blas_threads` before and put it back with
    ``threadpoolctl.threadpool_limits`` if that matters.
    For a BLAS threaded with OpenMP the limit would hold only for the thread that set
    it; numpy's and scipy's OpenBLAS (pthreads) are process-wide.
    """
    if n_threads is not None and (isinstance(n_threads, bool)
                                  or not isinstance(n_threads, numbers.Integral)
                                  or n_threads < 1):
        raise ValueError(f"n_threads must be a positive integer or None, "
                         f"got {n_threads!r}.")
    layout = client.run(_worker_layout)  # {address: (host, dask threads, cores)}
    if n_threads is None:
        threads_on_host = defaultdict(int)
        for host, threads, _ in layout.values():
            threads_on_host[host] += threads
        limits = {addr: max(1, cores // threads_on_host[host])
                  for addr, (host, _, cores) in layout.items()}
    else:
        limits = dict.fromkeys(layout, int(n_threads))
    result = {}
    for n in set(limits.values()):
        result.update(client.run(_set_blas_threads, n,
                                 workers=[addr for addr, k in limits.items() if k == n]))
    return result


def _worker_layout(dask_worker):
    """Runs on a worker: its host, its dask threads and the cores it may use."""
    from distributed.comm import get_address_host

    return (get_address_host(dask_worker.address), dask_worker.state.nthreads,
            cpu_count())


def _set_blas_threads(n):
    """Runs on a worker: load numpy's and scipy's BLAS, limit both to n threads, and
    return the fewest threads they have then."""
    import scipy.optimize  # noqa: F401  # scipy's OpenBLAS, loaded before the limit

    # threadpoolctl lets the thread that set a pthreads OpenBLAS's count be the only
    # one that sets it from then on: a task that set one with a plain call would make
    # this call do nothing, and this one (the worker's event loop) a task's own limits
    # (lbfgs's one scipy BLAS thread). Free before and after, as a team's limit is.
    with _blas_control():
        threadpool_limits(limits=n, user_api="blas")
    return min(blas_threads().values(), default=n)
