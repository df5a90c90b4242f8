"""A second core for the passes that BLAS does not parallelise.

numpy's ufuncs and scipy's sparse kernels run on one core, and both release the GIL
while they work. When a pass is long enough (an optimizer step over hundreds of
thousands of parameters, a sparse product over a wide first layer), running its two
halves in two threads takes about half the time; below that, the hand-off to the second
thread (about 50 us here) costs more than it saves.

The split never changes a result: the passes are elementwise, or write disjoint rows
each summed in the same order as in one thread, so a fit is bitwise the same with one
thread or two. The second thread is used only when numpy's BLAS may use two threads or
more: whatever limits BLAS (``threadpoolctl.threadpool_limits``, joblib's loky workers,
dask's nannies, ``OPENBLAS_NUM_THREADS``) limits this too, so concurrent fits do not
oversubscribe the cores.
"""

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

from threadpoolctl import ThreadpoolController

__all__ = ["numpy_blas_pool", "run_halves", "thread_pools", "two_threads"]

_NAME = "sknn_scratch_helper"
_state = {"executor": None, "starting": threading.Lock()}
if hasattr(os, "register_at_fork"):
    # a forked child has neither the helper thread nor, if another thread held it at
    # the fork, a usable lock: it starts afresh
    os.register_at_fork(after_in_child=lambda: _state.update(
        executor=None, starting=threading.Lock()))


def two_threads(work, min_size):
    """Whether a pass of ``work`` units should be split: large enough, and BLAS may use
    two threads."""
    return work >= min_size and _blas_threads() >= 2


def run_halves(fn, n, split):
    """``fn(0, n)``; if ``split``, as ``fn(0, n // 2)`` here and ``fn(n // 2, n)`` in a
    helper thread. ``fn`` must write disjoint outputs for the two halves."""
    if not split or threading.current_thread().name.startswith(_NAME):
        fn(0, n)  # the helper itself would wait on itself
        return
    half = n // 2
    other = _executor().submit(fn, half, n)
    try:
        fn(0, half)
    finally:
        wait([other])  # never leave the helper writing into buffers the caller reuses
    other.result()


def _executor():
    """The helper thread of this process, started on first use."""
    if _state["executor"] is None:
        with _state["starting"]:  # two fits in two threads must not start two helpers
            if _state["executor"] is None:
                _state["executor"] = ThreadPoolExecutor(1, thread_name_prefix=_NAME)
    return _state["executor"]


def _blas_threads():
    """Threads numpy's BLAS may use now (1 when it cannot be told)."""
    blas = _numpy_blas()
    return blas.num_threads if blas is not None else 1


@functools.cache
def thread_pools():
    """The thread pools (BLAS, OpenMP) loaded in this process; finding them takes
    about 10 ms, so once."""
    return ThreadpoolController()


def numpy_blas_pool():
    """numpy's BLAS alone, as a controller that can limit it (empty if none found)."""
    blas = _numpy_blas()
    return thread_pools().select(filepath=[blas.filepath] if blas is not None else [])


@functools.cache
def _numpy_blas():
    """numpy's BLAS library controller (the first BLAS loaded when none is numpy's)."""
    libs = [c for c in thread_pools().lib_controllers if c.user_api == "blas"]
    own = [c for c in libs if "numpy" in c.filepath]
    return (own or libs or [None])[0]
