"""One fit's mini-batches shared by several processes (``n_jobs``).

On the large benchmark case a mini-batch of 200 rows costs about 1 ms, of which BLAS's
two threads speed up only the matrix products, and by 1.45x (small products divide
badly); the rest, elementwise passes and the optimizer step, runs on one core. Threads
cannot share the rest: waking a sleeping thread costs about 50 us here and two threads
issuing NumPy calls queue for the GIL.

A team of processes (this one and ``n_jobs - 1`` forked ones) splits each batch instead:

1. process ``j`` computes the data gradient of its share of the batch's rows, with
   one-thread BLAS, into its own row of a shared gradient array;
2. they meet; process ``j`` sums the ``n_jobs`` gradients over its own share of the
   parameters (always in the order 0, 1, ...), adds the L2 term there and runs the
   optimizer's update on that share of the parameters and of its moments;
3. they meet again, and go on with the next batch.

Parameters, moments and gradients live in shared memory. A process that waits polls a
counter in shared memory (yielding the core if another process wants it): no sleeping
thread to wake and no GIL in common, so a meeting costs microseconds. Between epochs
a forked process polls for a few milliseconds, then sleeps 0.1 ms between polls. At
the end of a fit each forked process says it has left and exits; a thread reaps it
while the kernel tears it down (5 ms the fit no longer waits for), and the next team
forks only once it is reaped.

The objective, the schedule and the stopping rules are those of one process; only the
order in which a batch's gradient terms are summed differs, so a fit agrees with the
one-process fit to rounding, and equals bitwise every fit with the same ``n_jobs``.
"""

import _thread
import contextlib
import copy
import mmap
import os
import pickle
import signal
import sys
import threading
import time
import tracemalloc
import weakref

import numpy as np
import threadpoolctl

from ._threads import numpy_blas_pool, scipy_blas_pool

__all__ = ["ProcessTeam", "WholeSteps", "last_team_memory", "resolve_n_jobs",
           "using_blas"]

#: Memory of the latest team in this process, for memory benchmarks (bytes): the shared
#: memory it held, and when tracemalloc was tracing, each forked process's traced peak
#: beyond what it inherited and ``peak_bytes``, a bound on the team's memory at any time
#: while it held shared memory: this process's traced peak so far plus the shared memory
#: plus the forked peaks, and while the moments move back, traced plus shared then
#: (tracemalloc sees no shared memory, nor another process)
last_team_memory = {"shared_bytes": 0, "forked_peaks": [], "peak_bytes": 0}

_LINE = 8  # int64 slots per cache line: each process writes its counter on its own
_ALIGN = 16  # parameter shares start on cache-line boundaries (float32 and float64)
# control block slots (after the k sync counters, one cache line each)
_CMD, _OP, _ABORT, _FAILED = range(4)
_IN_ORDER, _SHUFFLED, _CHECK = 1, 2, 3  # what _OP asks: an epoch, or loss_is_finite
_MSG_BYTES = 1 << 12  # room for a pickled message (optimizer scalars, an error)
# batches whose objective terms the processes keep (see ProcessTeam._add_terms)
_RING = 128


def resolve_n_jobs(n_jobs):
    """Processes for ``n_jobs``: None is 1, -1 all usable CPUs, -2 all but one, ..."""
    if n_jobs is None:
        return 1
    if n_jobs < 0:
        return max(1, _usable_cpus() + 1 + n_jobs)
    return n_jobs


def inside_parallel_worker():
    """Where this code runs as one of several parallel workers: ``"a joblib worker"``
    (loky's processes, the threading backend's threads: joblib's nesting level is 1 or
    more there), ``"a dask worker"``, or None."""
    try:
        from joblib.parallel import get_active_backend

        if getattr(get_active_backend()[0], "nesting_level", 0):
            return "a joblib worker"
    except Exception:  # pragma: no cover - a joblib without it: no answer from it
        pass
    distributed = sys.modules.get("distributed")  # imported by dask's workers
    if distributed is not None:
        try:
            distributed.get_worker()
            return "a dask worker"
        except (ValueError, AttributeError):  # not in a dask task
            pass
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is not None:
        # a Pool names its (daemonic) workers ForkPoolWorker-1, SpawnPoolWorker-2...;
        # a process of the user's own, daemonic or not, keeps its team
        process = multiprocessing.current_process()
        if process.daemon and "PoolWorker-" in process.name:
            return "a multiprocessing.Pool worker"
    return None


def _usable_cpus():
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - platforms without affinity


def _shared(shape, dtype):
    """A zeroed array in anonymous shared memory: a forked process sees the same pages."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    return np.frombuffer(mmap.mmap(-1, max(size, 1)), dtype, int(np.prod(shape))
                         ).reshape(shape)


class TeamFailure(RuntimeError):
    """A process of an ``n_jobs`` team failed or vanished."""


class ProcessTeam:
    """``n_procs`` processes training one network: this one (rank 0) and forked ones.

    Use as a context manager around the epochs of a fit: the optimizer's moments move
    to shared memory on entry and back on exit, when the forked processes stop.

    Parameters
    ----------
    n_procs : int
    network : Network
    optimizer : SGD or Adam
    params : ndarray
        The flat parameter vector; updated after each epoch.
    gather : _BatchGatherer
        ``gather(order, start, stop) -> (X, Y, sw)`` rows of a batch; each process
        gathers its share of a batch into buffers of its own (``gather.resized``).
    alpha : float
    """

    # holds the fork reservation (reserve_fork) until forked, or until the fit gives
    # it up (unreserve: the fit's own try, not __del__, which an error in the fit's
    # frames would keep alive while every other fit and prediction waited)
    _reserved = False

    def __init__(self, n_procs, network, optimizer, params, gather, alpha):
        self.k = n_procs
        # the team's products run in one BLAS thread per process, which some
        # coefficient matrices serve faster in another layout: the team keeps the
        # parameters and the optimizer's moments in that layout while it holds them
        self.home = network
        self.network = network.relaid(network.one_thread_layout())
        self.optimizer, self.params = optimizer, params
        self.batch_size = gather.batch_size
        # buffers for a share of a batch, allocated by each process at its first batch
        self.gather = gather.resized(-(-gather.batch_size // n_procs))
        self.alpha = float(alpha)
        n_params, dtype = network.n_params, network.dtype
        cuts = [n_params * j // n_procs // _ALIGN * _ALIGN for j in range(n_procs)]
        self.cuts = [*cuts, n_params]
        self.shared_params = _shared(n_params, dtype)
        self.grads = _shared((n_procs, n_params), dtype)
        # per process, a cache line each: traced peak, and whether its rows' loss is
        # finite (loss_is_finite)
        self.values = _shared((n_procs, _LINE), np.float64)
        # each batch's terms of the objective, per process: data loss and penalty share,
        # in a ring of batches that process 0 adds up half a ring at a time
        self.terms = _shared((_RING, n_procs, 2), np.float64)
        self.ctl = _shared(_LINE * (n_procs + 1), np.int64)
        self.sync = self.ctl[:_LINE * n_procs:_LINE]
        # set by a forked process once it no longer touches shared memory, just before
        # it exits (the next slot of its cache line)
        self.left = self.ctl[1:_LINE * n_procs:_LINE]
        self.control = self.ctl[_LINE * n_procs:]
        n = gather.X.shape[0]
        # intp: numpy shuffles 8-byte items in place faster (50,000 in 0.43 ms against
        # 0.64 for int32) and takes rows by them without converting them first. Each
        # shuffled epoch shuffles the order of the one before, as one process does
        self.order = _shared(n, np.intp)
        for start in range(0, n, 1 << 13):  # no temporary as long as the order
            stop = min(start + (1 << 13), n)
            self.order[start:stop] = np.arange(start, stop)
        self.scalars = _shared(_MSG_BYTES, np.uint8)  # the optimizer's, each epoch
        # why a forked process failed: one slot each, two may fail at once
        self.error = _shared((n_procs, _MSG_BYTES), np.uint8)
        self._entered = False
        self._pids = {}  # forked process id -> its rank
        self._limited = False  # holds a share of numpy_one_thread
        self._moved = []  # the optimizer's moments now in shared memory (_enter)
        self._synced = 0  # meetings so far
        self._commands = 0  # commands given when the team forked
        self._traced_at_fork = 0
        self._parent = os.getpid()

    def reserve(self):
        """Reserve the fork (see :func:`reserve_fork`); False if a fit or prediction
        of another thread is running."""
        try:
            with _signals_deferred():  # the count and the flag change together
                self._reserved = reserve_fork()
        except BaseException:  # a handler raised as the block ended: not reserved
            self.unreserve()
            raise
        return self._reserved

    def unreserve(self):
        """Give up the reservation, if it holds one (forked, or never to fork)."""
        if self._reserved:
            with _signals_deferred():  # the flag and the count change together
                if self._reserved:
                    self._reserved = False
                    release_fork()

    @property
    def shared_bytes(self):
        """Bytes of shared memory the team holds (the optimizer's moments included)."""
        arrays = [self.shared_params, self.grads, self.values, self.terms, self.ctl,
                  self.order, self.scalars, self.error]
        if self._entered:
            arrays += self.optimizer.state()
        return sum(a.nbytes for a in arrays if a is not None)

    # ---------------------------------------------------------------- lifetime
    def __enter__(self):
        try:
            with _signals_deferred():  # forks and thread limits are set up whole
                try:
                    self._enter()
                finally:
                    self.unreserve()  # forked (or failed): fits and predictions go on
        except BaseException:  # a Ctrl-C held back until now included: undone
            self.__exit__(None, None, None)
            raise
        return self

    def _enter(self):
        # an earlier team's processes are being reaped by a thread: a process that
        # forks while it has other threads may deadlock its child (Python 3.12 warns)
        join_reapers()
        opt = self.optimizer
        self._entered = True  # from here on, __exit__ has something to undo
        for name in opt.STATE:  # moved, not copied: no second copy alive meanwhile
            private = getattr(opt, name)
            shared = _shared(private.shape, private.dtype)
            self.home.relay(private, self.network, out=shared)
            setattr(opt, name, shared)
            self._moved.append(name)  # in shared memory, in the team's layout
            del private, shared
        last_team_memory.update(shared_bytes=self.shared_bytes, forked_peaks=[],
                                peak_bytes=0)
        # one BLAS thread per process: the team is the parallelism. numpy's BLAS only,
        # which the team calls; not scipy's: raising a limit back makes OpenBLAS start
        # a new thread, which spins a core for about 0.1 s, and scipy's, which nothing
        # puts to work, slowed whatever this process ran next (scikit-learn's next fit
        # took 15-18 ms longer)
        numpy_one_thread.acquire()
        self._limited = True
        # read here, not in the forked process: by the time it runs, this one may
        # already have given its first command
        self._commands = int(self.control[_CMD])
        die_with_parent = _parent_death_signal()  # looked up before forking
        # blocked across the fork as well: SIGINT (in a fit off the main thread, where
        # nothing holds it back, the forked process starts with it blocked until it
        # ignores it), and the signals held back, until the forked process has put
        # their handlers back
        blocked = {signal.SIGINT, *_held_signals()}
        for rank in range(1, self.k):
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
            try:
                pid = os.fork()
                if pid == 0:  # pragma: no cover - runs in the forked process
                    try:  # it never returns, not even through an error: never a copy
                        die_with_parent()  # of this program that runs on
                        self._serve(rank, mask)
                    finally:
                        os._exit(1)
                self._pids[pid] = rank
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def __exit__(self, *exc):
        try:
            with _signals_deferred():
                self._exit()
        finally:
            if self._pids or self._limited or self._entered:
                self._exit()  # a Ctrl-C came before the deferral took hold: again
        return False

    def _exit(self):
        self.unreserve()
        self.control[_ABORT] = 1  # the forked processes exit when they see it
        pids, self._pids = self._pids, {}
        # every step runs whatever interrupts the one before (Ctrl-C may land here):
        # no process left running or unreaped, no thread limit or shared memory left
        _each([
            lambda: self._wait_until_left(pids),
            lambda: self._stop_left_over(pids),
            # the kernel takes 4-7 ms to tear a process down once it has called _exit:
            # reaped by a thread, so that the fit need not wait
            lambda: _reap(list(pids)),
            self._restore_limits,
            lambda: self._leave_shared_memory() if self._entered else None,
        ])

    def _stop_left_over(self, pids):
        """Kill those of ``pids`` that have not left (an interrupted wait): the thread
        that reaps them would wait forever for a stuck one."""
        for pid, rank in pids.items():
            if not self.left[rank]:
                with contextlib.suppress(ProcessLookupError):  # reaped meanwhile
                    os.kill(pid, signal.SIGKILL)

    def _restore_limits(self):
        if self._limited:
            self._limited = False
            numpy_one_thread.release()

    def _wait_until_left(self, pids):
        """Wait until each forked process says it no longer touches shared memory;
        ``pids`` keeps those still to be reaped."""
        deadline = time.monotonic() + 5.0
        for pid, rank in list(pids.items()):
            polls = 0
            while not self.left[rank]:
                polls += 1
                if polls % 64:  # it notices within 0.1 ms: a sleep here took 0.7
                    os.sched_yield()
                    continue
                if _exit_status(pid) is not None:  # gone unannounced: reaped
                    del pids[pid]
                    break
                if time.monotonic() > deadline:  # pragma: no cover - a stuck process
                    os.kill(pid, signal.SIGKILL)
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, 0)
                    del pids[pid]
                    break
                if polls > 4096:
                    time.sleep(1e-4)

    def _leave_shared_memory(self):
        """Free the shared memory; the moments go back to private memory one by one."""
        forked = [int(v) for v in self.values[1:, 0]]
        self.network.release()  # the batch buffers first: a lower peak
        tracing = tracemalloc.is_tracing()
        peak = (tracemalloc.get_traced_memory()[1] + self.shared_bytes + sum(forked)
                if tracing else 0)
        # the forked processes are gone: nobody else maps these pages
        self.shared_params = self.grads = self.order = None
        opt, left = self.optimizer, self.shared_bytes  # the moments and a few messages
        # only the moments still in shared memory: a second try after a failure here
        # must not relay one again, which the first already gave back in the
        # estimator's layout
        while self._moved:
            shared = getattr(opt, self._moved[0])
            setattr(opt, self._moved[0], self.network.relay(shared, self.home))
            del self._moved[0]
            if tracing:  # both copies of this moment are alive now
                peak = max(peak, tracemalloc.get_traced_memory()[0] + left)
            left -= shared.nbytes
            del shared  # unmapped with its last reference
        self._entered = False
        last_team_memory.update(forked_peaks=forked, peak_bytes=peak)

    # ------------------------------------------------------------------ epochs
    def run_epoch(self, random_state):
        """One pass over the data, in the previous epoch's order (the rows' at the
        first) shuffled by ``random_state`` (in order if None): ``(mean batch objective,
        rows of the batches trained on)``.
        The optimizer is updated; the parameters still hold the epoch's start,
        ``fetch_params`` brings its end."""
        if random_state is not None:  # the previous epoch's order, shuffled in place
            random_state.shuffle(self.order)
        # the learning rate and step count as this process has them now
        _write(self.scalars, {k: v for k, v in vars(self.optimizer).items()
                              if not isinstance(v, np.ndarray)})
        self.home.relay(self.params, self.network, out=self.shared_params)
        self.control[_OP] = _IN_ORDER if random_state is None else _SHUFFLED
        self.control[_CMD] += 1
        return self._epoch(0, random_state is not None)

    def home_optimizer(self):
        """A copy of the optimizer whose moments are in the estimator's layout (a copy
        of the estimator taken while the team runs: the moments there are in the
        team's)."""
        opt = copy.copy(self.optimizer)
        for name in self._moved:
            setattr(opt, name, self.network.relay(getattr(self.optimizer, name),
                                                  self.home))
        return opt

    def fetch_params(self):
        """The parameters as the latest epoch left them."""
        with _signals_deferred():  # copied layer by layer: whole or not at all
            self.network.relay(self.shared_params, self.home, out=self.params)

    def _epoch(self, rank, shuffled):
        k, net, opt, gather = self.k, self.network, self.optimizer, self.gather
        params, grads = self.shared_params, self.grads
        order = self.order if shuffled else None
        n, batch_size = gather.X.shape[0], self.batch_size
        sw = gather.sw
        lo, hi = self.cuts[rank], self.cuts[rank + 1]
        own_params, own_state = params[lo:hi], [s[lo:hi] for s in opt.state()]
        # the gradient of the share is summed into process 0's row: nobody else
        # reads that part of it until the next batch
        own_grad = grads[0, lo:hi]
        # one view for all batches: the network caches its per-layer views of it
        grad = grads[rank]
        n_coefs = min(max(net.n_coefs - lo, 0), hi - lo)  # coefficients in the share
        own_coefs, own_coef_grad = own_params[:n_coefs], own_grad[:n_coefs]
        # l2 W goes through process 1's part of the share's gradient, summed into
        # own_grad by then and not written again before the next batch: no new scratch
        spare = grads[1, lo:lo + n_coefs]
        others = [grads[j, lo:hi] for j in range(1, k)]
        # [batch % _RING, rank, (loss, penalty)], written by flat index: a view of the
        # slot per batch cost more than the writes
        terms = self.terms.reshape(-1)
        alpha, total = self.alpha, 0.0
        l2 = bool(alpha and n_coefs)
        update, advance = opt.update, opt.advance
        pending = []  # process 0: (sw_sum, m) of the batches it has not added up yet
        batch, rows = -1, 0  # the latest batch trained on, the rows of those trained on
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            m = stop - start
            if sw is None:
                sw_sum = float(m)
            else:  # the whole batch's weights, summed as in one process
                sw_sum = float((sw[start:stop] if order is None
                                else sw[order[start:stop]]).sum())
                if not sw_sum > 0:
                    continue  # no objective, no step: every process skips it alike
            batch, rows = batch + 1, rows + m
            first, last = start + m * rank // k, start + m * (rank + 1) // k
            slot = (batch % _RING * k + rank) * 2
            if last > first:
                terms[slot] = net.data_grad(params, *gather(order, first, last), sw_sum,
                                            grad)[0]
            else:
                grad[...] = 0
                terms[slot] = 0.0
            self._meet(rank)
            for other in others:
                np.add(own_grad, other, out=own_grad)
            if l2:  # own_grad += l2 W through spare, as network._add_scaled would
                np.multiply(own_coefs, alpha / sw_sum, out=spare)
                np.add(own_coef_grad, spare, out=own_coef_grad)
                # BLAS's dot: one thread in a team (see squared_norm), 5x faster
                terms[slot + 1] = float(np.dot(own_coefs, own_coefs))
            else:
                terms[slot + 1] = 0.0
            update(own_params, own_grad, *own_state, *advance())
            self._meet(rank)
            if rank == 0:
                pending.append((sw_sum, m))
                if len(pending) == _RING // 2:
                    total = self._add_terms(total, batch, pending)
        # no process leaves the epoch before all have read its order: the last batches
        # may be skipped ones, read after the last meeting, and process 0 shuffles the
        # order of the next epoch as soon as it leaves
        self._meet(rank)
        if pending:
            total = self._add_terms(total, batch, pending)
        if rank and tracemalloc.is_tracing():  # for memory benchmarks
            self.values[rank, 0] = (tracemalloc.get_traced_memory()[1]
                                    - self._traced_at_fork)
        return total / rows, rows

    def _add_terms(self, total, batch, pending):
        """``total`` plus the objective of the batches in ``pending`` (weight sums and
        rows, in order), the latest of which is ``batch``; empties ``pending``.

        Process 0 adds them up here, after the second meeting of ``batch``, rather than
        batch by batch: reading the others' terms after each meeting delayed its next
        batch, for which the others waited. The others may be writing the next batch's
        terms meanwhile, never these (they wait for this process at its first meeting).
        """
        lo = (batch + 1 - len(pending)) % _RING
        sums = self.terms[lo:lo + len(pending)].sum(axis=1).tolist()
        alpha = self.alpha
        for (sw_sum, m), (loss, penalty) in zip(pending, sums):
            total += (loss / sw_sum + 0.5 * alpha * penalty / sw_sum) * m
        pending.clear()
        return total

    def loss_is_finite(self):
        """Whether the data term at the current parameters is finite on every row
        (each process checks its share of the rows)."""
        self.home.relay(self.params, self.network, out=self.shared_params)
        self.control[_OP] = _CHECK
        self.control[_CMD] += 1
        self._check_finite(0)
        return bool(self.values[:, 1].all())

    def _check_finite(self, rank):
        net, X, Y = self.network, self.gather.X, self.gather.Y
        rows = self.gather.batch_size  # a share of a batch: the buffers' size
        first, last = X.shape[0] * rank // self.k, X.shape[0] * (rank + 1) // self.k
        self.values[rank, 1] = net.data_finite(self.shared_params, X, Y, rows, first,
                                               last)
        self._meet(rank)

    # ------------------------------------------------------------ coordination
    def _meet(self, rank):
        """Wait until every process has reached this point."""
        self._synced += 1
        target, sync = self._synced, self.sync
        sync[rank] = target
        spins = 0
        for other in range(self.k):
            while sync[other] < target:
                spins += 1
                if spins % 64 == 0:
                    os.sched_yield()  # a core shared with another process: let it run
                    if spins % 4096 == 0:
                        self._check(rank)

    def _check(self, rank):
        """Leave a meeting that will never complete."""
        if rank != 0:
            self._exit_if_abandoned(rank)  # pragma: no cover - runs in a forked process
            return
        for pid in list(self._pids):
            status = _exit_status(pid)
            if status is not None:
                del self._pids[pid]
            failed = int(self.control[_FAILED])  # set once its message is written
            if status is None and not failed:
                continue
            if failed:
                why, pickled = _read(self.error[failed])
            else:
                why, pickled = (f"exited with status {status}" if status != "" else
                                "exited, and its exit status was collected elsewhere "
                                "(SIGCHLD ignored, or a waitpid of the program's)"), None
            failure = TeamFailure(f"A process of this fit's n_jobs={self.k} team "
                                  f"failed: {why}")
            original = _unpickled(pickled)
            if original is not None:  # its own type, as without n_jobs
                raise original from failure
            raise failure

    def _serve(self, rank, mask):  # pragma: no cover - runs in a forked process
        """The forked process: run epochs as told, then exit (never return). ``mask``:
        the signals blocked in the thread that forked it, before the fork."""
        code = 0
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides
            _handlers_back()
            signal.pthread_sigmask(signal.SIG_SETMASK, {*mask, signal.SIGINT})
            if tracemalloc.is_tracing():  # count this process's own allocations
                self._traced_at_fork = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
            seen = self._commands
            while True:
                seen = self._next_command(rank, seen)
                if self.control[_OP] == _CHECK:
                    self._check_finite(rank)
                    continue
                vars(self.optimizer).update(_read(self.scalars))
                self._epoch(rank, self.control[_OP] == _SHUFFLED)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            code = 1
            text = f"{type(exc).__name__}: {exc}".encode()[:_MSG_BYTES // 2]
            text = text.decode(errors="ignore")
            try:  # the exception itself too, where it pickles and fits the slot
                _write(self.error[rank], (text, _pickled_within(exc, _MSG_BYTES)))
            except Exception:  # noqa: BLE001 - the text is enough
                _write(self.error[rank], (text, None))
            self.control[_FAILED] = rank
        finally:
            self._leave(rank, code)

    def _next_command(self, rank, seen):  # pragma: no cover - runs in a forked process
        """Wait for the parent's next command: poll fast for a while, then slowly."""
        polls = 0
        while self.control[_CMD] == seen:
            polls += 1
            if self.control[_ABORT] or polls % 256 == 0:
                self._exit_if_abandoned(rank)
            if polls > 20000:
                time.sleep(1e-4)
            elif polls % 64 == 0:
                os.sched_yield()
        return int(self.control[_CMD])

    def _exit_if_abandoned(self, rank):  # pragma: no cover - runs in a forked process
        """A forked process leaves when told to or when its parent is gone."""
        if self.control[_ABORT] or os.getppid() != self._parent:
            self._leave(rank, 0)

    def _leave(self, rank, code):  # pragma: no cover - runs in a forked process
        """Say so, and exit (what it wrote to shared memory is written by then)."""
        self.left[rank] = 1
        os._exit(code)


# Forking while another thread of this process is inside a multi-threaded OpenBLAS
# call can hang the process: OpenBLAS's fork handler shuts its thread pool down under
# that call (fork and call then wait for each other). The package's own fits and
# predictions hold their thread's lock (:class:`_BlasUser`) while they run; a team forks
# only when no other thread holds its own, and no fit or prediction starts while a
# team is about to fork.
_blas_users = {"forking": 0, "owner": None}  # owner: the thread that reserved the fork
# taken as itself (its C ``__enter__``: a signal's handler cannot raise between the lock
# taken and the block's start, as it can in a Condition's Python one); re-entrant: a
# handler that predicts may run while its thread holds it
_blas_users_lock = threading.RLock()
_blas_users_changed = threading.Condition(_blas_users_lock)
_this_thread = threading.local()  # .user: the thread's _BlasUser, once it has one
_users = weakref.WeakValueDictionary()  # thread id -> its _BlasUser, while it lives


def _no_blas_users():
    """A forked child (a team's, or any other code's) runs none of its parent's fits
    or predictions, and may have been forked while another thread held the lock."""
    global _blas_users_lock, _blas_users_changed, _this_thread, _users
    _blas_users.update(forking=0, owner=None)
    _blas_users_lock = threading.RLock()
    _blas_users_changed = threading.Condition(_blas_users_lock)
    _this_thread, _users = threading.local(), weakref.WeakValueDictionary()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_no_blas_users)


class _BlasUser(_thread.RLock):
    """A thread's ``using_blas``: held (re-entrantly) by its fits and predictions
    while they run. Its ``__exit__`` is the lock's own, in C: a call whose end a
    signal's handler interrupts (raising as the block ends) still lets the lock go, as
    a count taken back in Python would not (the handler can run as any Python
    function starts). A prediction of one row pays about 1 us for the guard."""

    def __enter__(self):
        depth = self._recursion_count()
        try:
            with _blas_users_lock:
                # not for its own thread's fork: a handler that predicts, run while
                # the fit that reserved it holds it, would wait for ever
                while (_blas_users["forking"]
                       and _blas_users["owner"] != threading.get_ident()):
                    _blas_users_changed.wait()
                self.acquire()  # never waits: only this thread takes it
        except BaseException:  # a signal's handler raised once it was taken
            if self._recursion_count() > depth:
                self.release()
            raise
        return self


def using_blas():
    """``with using_blas():`` around a fit or a prediction, which may run BLAS: no
    team forks meanwhile."""
    try:
        return _this_thread.user
    except AttributeError:
        user = _BlasUser()
        _users[threading.get_ident()] = user  # first: a thread's user is always found
        _this_thread.user = user
        return user


def _held_elsewhere(user):
    """Whether another thread holds ``user`` (under ``_blas_users_lock``, where its
    thread cannot take it)."""
    if not user.acquire(blocking=False):
        return True
    user.release()
    return False


def _running_elsewhere(me):
    """The ids of the threads other than ``me`` running a fit or prediction now (under
    ``_blas_users_lock``)."""
    return [t for t, user in list(_users.items()) if t != me and _held_elsewhere(user)]


def blas_users():
    """The ids of the threads running a fit or prediction now, and whether a team is
    about to fork (for tests)."""
    me = threading.get_ident()
    with _blas_users_lock:
        running = _running_elsewhere(me)
        mine = _users.get(me)
        if mine is not None and mine._recursion_count():
            running.append(me)
        return {"running": sorted(running), "forking": _blas_users["forking"]}


def reserve_fork():
    """From inside ``using_blas``: True, and no fit or prediction starts until
    :func:`release_fork`, if no other thread's is running; False otherwise."""
    me = threading.get_ident()
    with _blas_users_lock:
        if _blas_users["forking"] or _running_elsewhere(me):
            return False
        _blas_users["forking"] += 1
        _blas_users["owner"] = me
        return True


def release_fork():
    with _blas_users_lock:
        _blas_users["forking"] -= 1
        if not _blas_users["forking"]:
            _blas_users["owner"] = None
        _blas_users_changed.notify_all()


# threads waiting for the processes of finished teams to exit (see join_reapers)
_reapers = []

class _SharedLimit:
    """One thread for a BLAS library while any of the fits that ask for it run (fits in
    threads): the first sets the limit, the last puts the original back (each doing
    both would leave the original at 1 when two overlap: the second would save the
    first's 1 as the original). ``pool()``: the library's threadpoolctl controller.

    Every such limit changes under one lock, each taking control of OpenBLAS's
    thread counts for its call (``_blas_control``): threadpoolctl lets one thread at a
    time set them, for all OpenBLAS libraries at once."""

    _lock = threading.Lock()

    def __init__(self, pool):
        self._pool, self._users, self._limiter = pool, 0, None
        if hasattr(os, "register_at_fork"):
            # a process forked while a fit of another thread held the limit runs
            # none of its fits (it keeps the thread count it was forked with), and
            # may have been forked while that thread held the lock
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self):
        self._users, self._limiter = 0, None
        _SharedLimit._lock = threading.Lock()

    def acquire(self):
        # Ctrl-C held back: between the limit and the count, it would leave the limit
        # set with no user to put it back
        with _signals_deferred(), self._lock:
            if self._users == 0:
                with _blas_control():
                    self._limiter = self._pool().limit(limits=1)
            self._users += 1

    def release(self):
        with _signals_deferred(), self._lock:
            if self._users == 1:
                with _blas_control():
                    self._limiter.restore_original_limits()
                self._limiter = None
            self._users -= 1

    @contextlib.contextmanager
    def held(self):
        self.acquire()
        try:
            yield
        finally:
            self.release()


#: numpy's BLAS at one thread while an n_jobs team (any team of this process) runs
numpy_one_thread = _SharedLimit(numpy_blas_pool)
#: scipy's own BLAS at one thread while an lbfgs fit runs (see solvers.lbfgs)
scipy_one_thread = _SharedLimit(scipy_blas_pool)


@contextlib.contextmanager
def _blas_control():
    """This thread in control of OpenBLAS's thread count for the block.

    threadpoolctl lets one thread at a time set the count of a pthreads OpenBLAS
    (one pool for the whole process): the first that sets it, while it lives; the
    others' calls do nothing. The teams' limit is set by one fit's thread and put back
    by another's (under ``_SharedLimit``'s lock), so each takes control for its call and
    leaves it free after, for whichever thread sets a limit next."""
    controller = getattr(threadpoolctl, "OpenBLASController", None)
    clear = getattr(controller, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)
    try:
        yield
    finally:
        if clear is not None:
            clear(force=True)


def _each(steps):
    """Call every step, whatever the ones before raise; then raise the first error (a
    KeyboardInterrupt or the like before any ordinary exception)."""
    errors = []
    for step in steps:
        try:
            step()
        except BaseException as exc:  # noqa: BLE001 - raised once all steps have run
            errors.append(exc)
    _raise_first(errors)


def _raise_first(errors):
    """Raise the first of ``errors``, if any: a KeyboardInterrupt or the like before
    any ordinary exception."""
    if errors:
        raise next((e for e in errors if not isinstance(e, Exception)), errors[0])


class WholeSteps:
    """Around a one-process fit's epochs: a Ctrl-C that comes during an optimizer step
    is raised once the step is done (:meth:`step`, then :meth:`deliver`), so that a fit
    cut short keeps the weights of an update. A step can change the weights in more
    than one pass: SGD with Nesterov momentum adds to them twice, and a step split over
    two threads updates each half of them in its own thread, where a Ctrl-C would stop
    this thread's half and not the other's. Any other Ctrl-C is raised where it comes.

    The handler is swapped once per fit (about 10 us), not at every step; in the main
    thread only (KeyboardInterrupt is raised there alone), over a handler installed
    from Python (the default one, or a user's), which it then calls, once for each
    Ctrl-C. The fit's end puts that handler back unless the handler changed meanwhile
    (a user's that installs another at the first Ctrl-C, say).
    """

    def __init__(self):
        self._previous = None
        self._pending = []
        self._stepping = False

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if callable(previous):  # not SIG_IGN, SIG_DFL, or one set outside Python
                self._previous = previous
                signal.signal(signal.SIGINT, self._hold)
        return self

    def __exit__(self, *exc):
        previous = self._previous
        if previous is None:
            return False
        # _previous stays set until the handler is back: a Ctrl-C in between still
        # finds it
        if signal.getsignal(signal.SIGINT) == self._hold:  # bound: a new object each
            signal.signal(signal.SIGINT, previous)
        self._previous = None
        self._deliver(previous)  # held during a step that then failed
        return False

    def _hold(self, signum, frame):
        previous = self._previous
        if self._stepping:
            self._pending.append((signum, frame))
        elif previous is not None:
            previous(signum, frame)
        else:  # pragma: no cover - only between __exit__'s two steps above
            signal.default_int_handler(signum, frame)

    def step(self, optimizer, params, grad):
        """``optimizer.step(params, grad)``, whole: a Ctrl-C meanwhile waits for
        :meth:`deliver`."""
        self._stepping = True
        try:
            optimizer.step(params, grad)
        finally:
            self._stepping = False

    def deliver(self):
        """Raise the Ctrl-Cs held back during the latest step, if any."""
        if self._pending:
            self._deliver(self._previous)

    def _deliver(self, previous):
        """Each held Ctrl-C, in turn, to the handler it would meet now: ``previous``
        while this one is installed, else whatever is (a user's handler may have
        installed another at the first)."""
        while self._pending:
            signum, frame = self._pending.pop(0)
            current = signal.getsignal(signal.SIGINT)
            handler = previous if current == self._hold else current
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:  # pragma: no cover - it ends the process
                signal.raise_signal(signal.SIGINT)


try:  # signal.getsignal converts each handler to an enum member: 20 times slower
    from _signal import getsignal as _handler_of
except ImportError:  # pragma: no cover - an interpreter without it
    _handler_of = signal.getsignal
# the signals a handler can be set for (not SIGKILL or SIGSTOP, nor the two glibc keeps)
_CATCHABLE = tuple(int(s) for s in signal.valid_signals()
                   if s not in (signal.SIGKILL, signal.SIGSTOP)
                   and signal.getsignal(s) is not None)


class _Noted:
    """The handler that stands in while signals are held back: it notes each signal,
    and keeps the handlers it stands in for, and their settings as the system has them
    (:meth:`keep_settings`)."""

    def __init__(self, handlers):
        self.handlers = handlers
        self.received = {}  # signal -> the frame it first came in
        self.settings = {}  # signal -> the raw sigaction, where libc's can be called

    def __call__(self, signum, frame):
        self.received.setdefault(signum, frame)

    def keep_settings(self, signum):
        """Keep the system's settings of ``signum`` (``signal.signal`` installs its
        handler with flags of its own: ``signal.siginterrupt``'s restart flag, or a
        handler of faulthandler's chained in front of Python's, would be lost)."""
        sigaction = _libc("sigaction")
        if sigaction:
            import ctypes
            raw = ctypes.create_string_buffer(_SIGACTION_BYTES)
            if sigaction(signum, None, raw) == 0:
                self.settings[signum] = raw

    def put_settings_back(self, signum):
        raw = self.settings.get(signum)
        if raw is not None:
            _libc("sigaction")(signum, raw, None)


_SIGACTION_BYTES = 1024  # more than any libc's struct sigaction (152 bytes in glibc's)


@contextlib.contextmanager
def _signals_deferred():
    """Signals held back until the block is done, then delivered: a team's setup and
    cleanup run whole. That is every signal whose handler was set from Python (which
    may raise anywhere: Ctrl-C's default handler raises KeyboardInterrupt, a timeout
    decorator's SIGALRM handler its error), and SIGINT at its default.

    Python runs those handlers in the main thread only, whichever thread the signal
    reaches (blocking it there would not do), so for the block's duration a handler
    that notes the signal stands in; at the end the handler put back is called once
    for each signal noted (called, not sent the signal again: a wakeup fd, asyncio's,
    had it written once already). A forked process inherits the stand-in until it puts
    the handlers back (:func:`_handlers_back`)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # a handler runs in the main thread only: it cannot interrupt this one
        return
    handlers = {}
    for signum in _CATCHABLE:
        handler = _handler_of(signum)
        if callable(handler) or (signum == signal.SIGINT and handler == signal.SIG_DFL):
            handlers[signum] = handler
    noted = _Noted(handlers)
    swapped = []
    try:
        for signum in handlers:
            noted.keep_settings(signum)
            swapped.append(signum)  # first: a handler's error as the swap returns
            # the handler replaced: signal.signal may first run a pending signal's
            # handler, which may set another
            handlers[signum] = signal.signal(signum, noted)
    except BaseException:
        _put_back(noted, swapped)
        raise
    try:
        yield
    finally:
        _put_back(noted, swapped)


def _put_back(noted, swapped):
    """Put back the handlers ``noted`` stood in for on ``swapped``, then call each on
    the signal it noted, in the order they came; whatever a handler raises meanwhile is
    raised at the end (a KeyboardInterrupt or the like before any ordinary exception),
    after every handler is back."""
    errors = []
    for signum in swapped:
        while True:  # signal.signal runs the handler of a pending signal first
            try:
                replaced = signal.signal(signum, noted.handlers[signum])
                if replaced is noted:
                    noted.put_settings_back(signum)
                else:  # a handler run meanwhile set its own: it stays
                    signal.signal(signum, replaced)
                break
            except BaseException as exc:  # noqa: BLE001 - raised once all are back
                errors.append(exc)
    for signum, frame in noted.received.items():
        handler = noted.handlers[signum]
        try:
            if callable(handler):  # the default one raises KeyboardInterrupt
                handler(signum, frame)
            else:  # pragma: no cover - SIGINT at SIG_DFL: it ends the process
                signal.raise_signal(signum)
        except BaseException as exc:  # noqa: BLE001 - raised below
            errors.append(exc)
    _raise_first(errors)


def _held_signals():
    """The signals held back now (by :func:`_signals_deferred`)."""
    return [s for s in _CATCHABLE if isinstance(_handler_of(s), _Noted)]


def _handlers_back():  # pragma: no cover - runs in a forked process
    """In a process forked while signals were held back: the handlers they stood in
    for (the signals themselves stay with the parent, which noted them)."""
    for signum in _held_signals():
        handler = _handler_of(signum)
        while isinstance(handler, _Noted):  # held back twice, in nested blocks
            noted, handler = handler, handler.handlers[signum]
        signal.signal(signum, handler)
        noted.put_settings_back(signum)


_libc_functions = {}  # name -> libc's function once looked up, False where there is none


def _libc(name):
    """libc's function ``name`` (ctypes), or False. Looked up in the parent: loading a
    library in the forked copy of a multi-threaded process can deadlock."""
    function = _libc_functions.get(name)
    if function is None:
        function = False
        if os.name == "posix":
            with contextlib.suppress(Exception):  # no libc to be found, or no such name
                import ctypes
                function = getattr(ctypes.CDLL(None, use_errno=True), name)
        _libc_functions[name] = function
    return function


_PR_SET_PDEATHSIG = 1


def _parent_death_signal():
    """A function that, called in a forked process, has Linux kill it when the thread
    that forked it ends (its parent killed, say): a process stuck in a user's code (a
    lock copied while held) never reaches the checks of its waiting loops, and would
    outlive its parent. Found here, before the fork (see :func:`_libc`). Elsewhere, or
    with no libc to be found (the waiting loops' checks remain), a function that does
    nothing."""
    prctl = sys.platform.startswith("linux") and _libc("prctl")
    if not prctl:
        return lambda: None
    parent = os.getpid()

    def die_with_parent():
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # gone before the request took hold
            os._exit(1)

    return die_with_parent


def _exit_status(pid):
    """The exit code of forked process ``pid`` if it has exited (and is reaped here),
    ``""`` if it has exited and was reaped elsewhere (SIGCHLD ignored, a program's own
    ``waitpid(-1)``), None while it runs."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return ""
    return os.waitstatus_to_exitcode(status) if done else None


def _pickled_within(obj, limit):
    """``pickle.dumps(obj)``, given up (``ValueError``) once it passes ``limit`` bytes:
    an exception that holds a 400 MB array is not copied whole (1.4 s, and as much
    memory again, in a forked process) to find that it does not fit its slot."""
    chunks, size = [], 0

    def check(n):
        if size + n > limit:
            raise ValueError(f"more than {limit} bytes")

    class Sink:
        def write(self, data):
            nonlocal size
            check(len(data))
            size += len(data)
            chunks.append(bytes(data))

    def in_band(buffer):  # an array's data (protocol 5): checked before it is copied
        check(buffer.raw().nbytes)
        return True

    pickle.Pickler(Sink(), protocol=5, buffer_callback=in_band).dump(obj)
    return b"".join(chunks)


def _unpickled(data):
    """The exception a forked process pickled, or None: none sent, one that does not
    unpickle (an ``__init__`` of other arguments), or no ``Exception`` (an exit)."""
    if data is None:
        return None
    try:
        exc = pickle.loads(data)
    except Exception:  # noqa: BLE001 - the message still says what happened
        return None
    return exc if isinstance(exc, Exception) else None


def _reap(pids):
    """Collect the exit status of ``pids``, which are exiting, in a thread."""
    if not pids:
        return
    thread = threading.Thread(target=_wait_all, args=(pids,), daemon=True,
                              name="sknn_scratch-reaper")
    thread.start()
    _reapers.append(thread)


def _wait_all(pids):
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:  # pragma: no cover - reaped by someone else
            pass


def join_reapers():
    """Wait until the processes of every finished team are reaped (they have left
    by then, and exit within milliseconds)."""
    for thread in list(_reapers):  # fits in several threads may join them at once
        thread.join()  # then dropped: a Ctrl-C in the join leaves it listed
        with contextlib.suppress(ValueError):  # dropped by another thread already
            _reapers.remove(thread)


def _write(buffer, obj):
    """Pickle ``obj`` into a shared byte buffer (its length first)."""
    data = pickle.dumps(obj)
    if len(data) > len(buffer) - 8:  # pragma: no cover - a few scalars, a short text
        raise ValueError(f"{len(data)} bytes do not fit a {len(buffer)}-byte message")
    buffer[8:8 + len(data)] = np.frombuffer(data, np.uint8)
    buffer[:8] = np.frombuffer(np.int64(len(data)).tobytes(), np.uint8)


def _read(buffer):
    size = int(buffer[:8].view(np.int64)[0])
    return pickle.loads(buffer[8:8 + size].tobytes())
