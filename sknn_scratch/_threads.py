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

A split pays only while the second core is free. When another program keeps it busy,
or the machine is loaded, the caller waits for the helper's half longer than the split
saves: a 10-epoch fit of the sparse benchmark case took 15 % longer split than whole
beside a program busy on the other core, and 23 % less without it. So each kind of
pass times itself both ways (:func:`timed_split`) and goes the way that has lately
been faster; the choice never changes a result.
"""

import collections
import functools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

from threadpoolctl import ThreadpoolController

__all__ = ["numpy_blas_pool", "process_wide_blas_limit", "run_halves",
           "scipy_blas_pool", "thread_pools", "timed_split", "two_threads"]

#: while the passes of a kind run whole, every EXPLORE-th is split all the same, so
#: that a second core freed (a neighbour that stops) is noticed within a few dozen
#: passes; while they run split, every EXPLORE_WHOLE-th runs whole (the whole way
#: does not use the second core, so its times barely change, and trying it costs the
#: most when the split pays). A busy second core shows in the split passes themselves.
EXPLORE, EXPLORE_WHOLE = 20, 100
_KEEP = 5  # the latest per-unit times kept of each way; a pass compares their medians

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


class _Judge:
    """Which way the passes of one kind go: split in two threads, or whole.

    Keeps the time per unit of work of the latest passes of each way. At first the two
    ways alternate (split first); then a pass goes the way with the lower median, except
    every :data:`EXPLORE`-th (:data:`EXPLORE_WHOLE`-th while the split way is faster),
    which goes the other way to refresh its times.
    """

    def __init__(self):
        self.times = (collections.deque(maxlen=_KEEP), collections.deque(maxlen=_KEEP))
        self.passes = 0

    def choose(self):
        """True to split the next pass."""
        whole, split = self.times
        if len(whole) < 2 or len(split) < 2:
            return len(split) <= len(whole)
        self.passes += 1
        faster = _median(split) <= _median(whole)
        return faster != (self.passes % (EXPLORE_WHOLE if faster else EXPLORE) == 0)

    def record(self, split, seconds_per_unit):
        self.times[split].append(seconds_per_unit)


def _median(values):
    return sorted(values)[len(values) // 2]


_judges = collections.defaultdict(_Judge)  # by kind of pass and size


def timed_split(kind, work, min_size, run):
    """``run(split)``: a pass of ``work`` units that may be split (``run(True)``) or
    not (``run(False)``); split when :func:`two_threads` allows it and the passes of
    ``kind`` and about as much work (within a factor of 2) have lately been faster
    split. ``run`` must give the same result both ways."""
    if not two_threads(work, min_size):
        run(False)
        return
    # the hand-off's fixed cost weighs less per unit on longer passes: sizes apart
    # are judged apart (so are dtypes, part of the kind)
    judge = _judges[kind, int(work).bit_length()]
    split = judge.choose()
    start = time.perf_counter()
    run(split)
    judge.record(split, (time.perf_counter() - start) / work)


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


def process_wide_blas_limit():
    """Whether a thread limit set on numpy's BLAS holds for every thread of the process,
    as a pthreads OpenBLAS's does (an OpenMP-threaded one keeps one per thread)."""
    blas = _numpy_blas()
    return (blas is not None and blas.internal_api == "openblas"
            and getattr(blas, "threading_layer", None) == "pthreads")


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
def scipy_blas_pool():
    """The BLAS libraries scipy loaded for itself, apart from numpy's, as a controller
    that can limit them (empty if none)."""
    own = [c.filepath for c in thread_pools().lib_controllers
           if c.user_api == "blas" and "scipy" in c.filepath and "numpy" not in c.filepath]
    return thread_pools().select(filepath=own)


@functools.cache
def _numpy_blas():
    """numpy's BLAS library controller (the first BLAS loaded when none is numpy's)."""
    libs = [c for c in thread_pools().lib_controllers if c.user_api == "blas"]
    own = [c for c in libs if "numpy" in c.filepath]
    return (own or libs or [None])[0]
