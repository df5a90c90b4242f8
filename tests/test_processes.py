"""A fit's mini-batches shared by forked processes (``n_jobs``) train the same model.

With ``n_jobs=k`` each batch's gradient is summed from ``k`` shares of its rows in a
fixed order: a fit agrees with ``n_jobs=None`` to rounding and is bitwise the same at
every run with the same ``k``. The ``forks`` fixture counts the processes forked, so
that no comparison passes because the team never ran, and checks after each test that
every one of them was reaped. The team must leave nothing else behind either: BLAS
thread limits as they were, the optimizer's state in private memory, and a failure in
any process raised in this one.
"""

import contextlib
import copyreg
import mmap
import os
import pickle
import platform
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_info, threadpool_limits

from sknn_scratch import (MLPScratchClassifier, MLPScratchRegressor, _processes,
                          activations)
from sknn_scratch._processes import TeamFailure, resolve_n_jobs
from sknn_scratch._threads import _numpy_blas
from sknn_scratch.network import Network

RNG = np.random.default_rng(0)
N = 203  # batches of 32 rows and a last one of 11
ROOT = Path(__file__).resolve().parents[1]
X = RNG.standard_normal((N, 6))
Y_CLS = np.argmax(X[:, :3] + 0.5 * RNG.standard_normal((N, 3)), axis=1)
Y_BIN = (X[:, 0] + X[:, 1] > 0).astype(int)
Y_LABELS = (X[:, :3] + 0.5 * RNG.standard_normal((N, 3)) > 0).astype(int)
Y_REG = X @ RNG.standard_normal(6) + np.sin(3 * X[:, 0])
Y_COUNT = RNG.poisson(np.exp(0.5 * X[:, 0]))
X_SPARSE = sp.random(N, 30, density=0.15, format="csr", random_state=1)
SW = RNG.uniform(0.2, 2.0, N)
_KILL = os.kill  # the real one, whatever a test patches

SMALL = dict(hidden_layer_sizes=(8,), max_iter=3, batch_size=32, random_state=0)
WIDE = (130, 7)  # see Network.one_thread_layout
TIGHT = dict(rtol=1e-9, atol=1e-12)  # float64: rounding, a few epochs on
LOOSE = dict(rtol=1e-4, atol=1e-6)  # float32


def _clf(**params):
    return MLPScratchClassifier(**{**SMALL, **params})


def _reg(**params):
    return MLPScratchRegressor(**{**SMALL, **params})


def _fit_quietly(estimator, X, y, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few epochs on purpose
        return estimator.fit(X, y, **fit_params)


def _fit_both(estimator, X, y, n_jobs=2, **fit_params):
    """The fit with ``n_jobs=None`` and with ``n_jobs``."""
    return [_fit_quietly(clone(estimator).set_params(n_jobs=j), X, y, **fit_params)
            for j in (None, n_jobs)]


def _arrays(est):
    """The fitted parameters, learned PReLU slopes included."""
    return est.coefs_ + est.intercepts_ + [s for s in est.slopes_ if s is not None]


def _assert_same_fit(a, b, tol=None):
    """``b`` trained as ``a`` did: bitwise without ``tol``, else to ``tol``."""
    assert_equal = (np.testing.assert_array_equal if tol is None else
                    lambda x, y: np.testing.assert_allclose(x, y, **tol))
    assert (a.n_iter_, a.t_) == (b.n_iter_, b.t_)
    assert len(_arrays(a)) == len(_arrays(b))
    for x, y in zip(_arrays(a), _arrays(b)):
        assert x.dtype == y.dtype
        assert_equal(x, y)
    assert_equal(a.loss_curve_, b.loss_curve_)
    opt_a, opt_b = a._optimizer, b._optimizer
    assert (opt_a is None) == (opt_b is None)
    if opt_a is not None:
        assert opt_a.learning_rate == opt_b.learning_rate
        assert getattr(opt_a, "t", None) == getattr(opt_b, "t", None)  # Adam's steps
        for x, y in zip(opt_a.state(), opt_b.state()):
            assert_equal(x, y)


def _in_shared_memory(a):
    """Whether array ``a`` lies in an mmap (its base chain, memoryviews included)."""
    while a is not None:
        if isinstance(a, mmap.mmap):
            return True
        a = a.obj if isinstance(a, memoryview) else getattr(a, "base", None)
    return False


def _assert_private(est):
    assert _in_shared_memory(_processes._shared(4, np.float64))  # the check can see it
    arrays = [est._params, *_arrays(est)]
    if est._optimizer is not None:
        arrays += [getattr(est._optimizer, name) for name in est._optimizer.STATE]
    assert not any(_in_shared_memory(a) for a in arrays)


def _assert_reaped(pids):
    """None of ``pids`` is left, running or a zombie, and no other child has exited
    (a process left is killed first: the check fails, and nothing is left spinning),
    once the threads that reap a finished team's processes are done."""
    _processes.join_reapers()
    left = []
    for pid in pids:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped, as it should be
            continue
        left.append(pid)
        if not done:
            _KILL(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert not left, "forked processes left behind"
    try:
        assert os.waitpid(-1, os.WNOHANG) == (0, 0)  # this process has other children
    except ChildProcessError:
        pass


def _shared_mapped_bytes():
    """Bytes of shared anonymous memory this process maps (Linux), else None."""
    try:
        with open("/proc/self/maps") as maps:
            lines = maps.read().splitlines()
    except OSError:  # pragma: no cover - no procfs
        return None
    total = 0
    for line in lines:
        fields = line.split()
        if fields[1].endswith("s") and "/dev/zero" in line:  # MAP_SHARED | MAP_ANONYMOUS
            start, stop = (int(x, 16) for x in fields[0].split("-"))
            total += stop - start
    return total


def _blas_threads():
    return [(lib["filepath"], lib["num_threads"]) for lib in threadpool_info()
            if lib["user_api"] == "blas"]


def _hook_data_grad(monkeypatch, hook):
    """Call ``hook(in_parent)`` before each ``Network.data_grad`` of the test's fits."""
    parent, original = os.getpid(), Network.data_grad

    def data_grad(self, *args, **kwargs):
        hook(os.getpid() == parent)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Network, "data_grad", data_grad)


@pytest.fixture
def forks(monkeypatch):
    """The ids of the processes the test's fits forked; all reaped at the end."""
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    pids, fork = [], os.fork

    def counting_fork():
        pid = fork()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", counting_fork)
    yield pids
    _assert_reaped(pids)


@pytest.fixture
def blas_two():
    """BLAS allowed two threads (the suite runs at one, which a team would not change);
    yields the limits as BLAS reports them, so a test can show they come back."""
    with threadpool_limits(limits=2, user_api="blas"):
        yield _blas_threads()


@pytest.fixture
def no_kill(monkeypatch):
    """Fail if a forked process had to be killed instead of exiting when told."""
    kill, killed = os.kill, []

    def recording_kill(pid, sig):
        if sig == signal.SIGKILL:
            killed.append(pid)
        kill(pid, sig)

    monkeypatch.setattr(os, "kill", recording_kill)
    yield
    assert not killed, "a forked process was stuck and killed"


# ---------------------------------------------------------------- agreement to rounding
@pytest.mark.parametrize("estimator, X, y, sw", [
    pytest.param(_clf(), X, Y_CLS, None, id="adam"),
    pytest.param(_clf(alpha=0.0), X, Y_CLS, None, id="adam-alpha0"),
    pytest.param(_clf(alpha=1.0), X, Y_CLS, None, id="adam-alpha1"),
    pytest.param(_clf(solver="sgd", learning_rate_init=0.1), X, Y_CLS, None,
                 id="sgd-nesterov"),
    pytest.param(_clf(solver="sgd", learning_rate_init=0.1, nesterovs_momentum=False),
                 X, Y_CLS, None, id="sgd-momentum"),
    pytest.param(_clf(solver="sgd", momentum=0.0, learning_rate_init=0.1), X, Y_CLS,
                 None, id="sgd-plain"),
    pytest.param(_clf(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5,
                      power_t=0.25), X, Y_CLS, None, id="sgd-invscaling"),
    pytest.param(_clf(shuffle=False), X, Y_CLS, None, id="no-shuffle"),
    pytest.param(_clf(hidden_layer_sizes=(8, 5), activation="tanh"), X, Y_CLS, None,
                 id="two-layers"),
    pytest.param(_clf(activation="prelu"), X, Y_CLS, None, id="prelu"),
    # a matrix between hidden layers of more than 128 inputs: the team keeps it (and
    # its gradient and moments) in Fortran order
    pytest.param(_clf(hidden_layer_sizes=WIDE), X, Y_CLS, None, id="wide"),
    pytest.param(_clf(hidden_layer_sizes=WIDE, activation="tanh"), X, Y_CLS, SW,
                 id="wide-tanh-sample-weight"),
    pytest.param(_clf(), X, Y_BIN, None, id="binary"),
    pytest.param(_clf(), X, Y_LABELS, None, id="multi-label"),
    pytest.param(_clf(), X, Y_CLS, SW, id="sample-weight"),
    pytest.param(_clf(solver="sgd", alpha=0.1, learning_rate_init=0.1), X_SPARSE,
                 Y_CLS, None, id="sparse-sgd"),
    pytest.param(_clf(), X_SPARSE, Y_CLS, SW, id="sparse-adam-sample-weight"),
    pytest.param(_reg(), X, Y_REG, None, id="squared-error"),
    pytest.param(_reg(loss="poisson", solver="sgd", learning_rate_init=0.01), X,
                 Y_COUNT, None, id="poisson"),
    pytest.param(_reg(), X, np.c_[Y_REG, -Y_REG], SW, id="two-outputs-sample-weight"),
])
def test_a_team_of_two_trains_as_one_process(estimator, X, y, sw, forks):
    one, two = _fit_both(estimator, X, y, sample_weight=sw)
    assert len(forks) == 1
    _assert_same_fit(one, two, TIGHT)


@pytest.mark.parametrize("dtype, hidden, expected", [
    (np.float64, WIDE, [False, True, False]),
    (np.float64, (200, 129, 128, 3), [False, True, True, False, False]),
    (np.float64, (128, 64), [False, False, False]),
    (np.float32, WIDE, [False, False, False]),
])
def test_a_team_keeps_wide_float64_matrices_in_fortran_order(dtype, hidden, expected,
                                                             forks, monkeypatch):
    layouts, relaid = [], Network.relaid

    def spy(net, fortran):
        layouts.append(list(fortran))
        return relaid(net, fortran)

    monkeypatch.setattr(Network, "relaid", spy)
    est = _fit_quietly(_clf(hidden_layer_sizes=hidden, n_jobs=2), X.astype(dtype), Y_CLS)
    assert len(forks) == 1 and layouts == [expected]
    # the estimator's own vector keeps C order, which its coefs_ show
    assert all(c.flags.c_contiguous for c in est.coefs_)
    one = _fit_quietly(_clf(hidden_layer_sizes=hidden), X.astype(dtype), Y_CLS)
    _assert_same_fit(one, est, TIGHT if dtype == np.float64 else LOOSE)


class _Softsign(activations.Activation):
    """An activation of a user's own: no output bound, so a fit checks its last
    weights by a forward pass over the data (the team's loss_is_finite)."""

    def forward(self, z):
        return z / (1 + np.abs(z))

    def derivative(self, z):
        return 1 / (1 + np.abs(z)) ** 2


def test_the_check_of_the_last_weights_reads_them_in_the_teams_layout(forks,
                                                                      monkeypatch):
    checked, data_finite = [], Network.data_finite

    def spy(net, flat, *args, **kwargs):
        if net._coef_fortran:  # the team's network, in this process (rank 0)
            checked.append([c.copy() for c in net.unpack(flat)[0]])
        return data_finite(net, flat, *args, **kwargs)

    monkeypatch.setattr(Network, "data_finite", spy)
    est = _fit_quietly(_clf(hidden_layer_sizes=WIDE, activation=_Softsign(),
                            n_jobs=2), X, Y_CLS)
    assert len(forks) == 1 and len(checked) == 1
    for seen, coef in zip(checked[0], est.coefs_):
        np.testing.assert_array_equal(seen, coef)


def test_a_failure_while_the_moments_move_back_relays_none_twice(forks, monkeypatch):
    """The team's exit runs again after a failure in it: a moment already back in the
    estimator's layout is not relaid a second time. The failed call then leaves the
    model as it was, its optimizer included."""
    one, two = _clf(hidden_layer_sizes=WIDE), _clf(hidden_layer_sizes=WIDE, n_jobs=2)
    for est in (one, two):
        est.partial_fit(X, Y_CLS, classes=[0, 1, 2])
    relay, back = Network.relay, []

    def failing_relay(net, flat, other, out=None):
        if out is None and net._coef_fortran:  # a moment leaving shared memory
            back.append(1)
            if len(back) == 2:
                raise MemoryError("its private copy")
        return relay(net, flat, other, out)

    monkeypatch.setattr(Network, "relay", failing_relay)
    with pytest.raises(MemoryError, match="its private copy"):
        two.partial_fit(X, Y_CLS)
    monkeypatch.setattr(Network, "relay", relay)
    assert len(back) == 3  # m, v (failed), v again
    _assert_same_fit(one, two, TIGHT)
    _assert_private(two)
    for est in (one, two):
        est.partial_fit(X, Y_CLS)
    _assert_same_fit(one, two, TIGHT)


def test_ctrl_c_while_the_weights_come_back_leaves_them_whole(forks, monkeypatch):
    """The weights come back from the team layer by layer: a Ctrl-C in between waits
    until all are copied, so the model is one epoch's, not a mix of two."""
    params = dict(hidden_layer_sizes=WIDE, tol=0.0)
    two = _clf(**params, max_iter=5, n_jobs=2)
    pack, fetches = Network.pack, []

    def interrupted_pack(net, coefs, intercepts, slopes=None, out=None):
        if out is not None and out is getattr(two, "_params", None):  # fetch_params
            fetches.append(1)
            if len(fetches) == 3:  # the third epoch's end: Ctrl-C after one layer
                out[:coefs[0].size] = coefs[0].ravel()
                os.kill(os.getpid(), signal.SIGINT)
        return pack(net, coefs, intercepts, slopes, out)

    monkeypatch.setattr(Network, "pack", interrupted_pack)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        _fit_quietly(two, X, Y_CLS)
    monkeypatch.setattr(Network, "pack", pack)
    assert len(forks) == 1
    third = _fit_quietly(_clf(**params, max_iter=3), X, Y_CLS)
    for got, expected in zip(two.coefs_, third.coefs_):
        np.testing.assert_allclose(got, expected, **TIGHT)


def test_the_adaptive_rate_falls_at_the_same_epochs(forks):
    """A large tol stalls every epoch: the rate is divided by 5 twice in 5 epochs."""
    one, two = _fit_both(_clf(solver="sgd", learning_rate="adaptive", tol=10.0,
                              n_iter_no_change=1, max_iter=5, learning_rate_init=0.1),
                         X, Y_CLS)
    assert len(forks) == 1
    assert two._optimizer.learning_rate == pytest.approx(0.1 / 25)
    _assert_same_fit(one, two, TIGHT)


@pytest.mark.parametrize("X", [X, X_SPARSE], ids=["dense", "sparse"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_float32_stays_float32_and_agrees(X, solver, forks):
    one, two = _fit_both(_clf(solver=solver, learning_rate_init=0.01),
                         X.astype(np.float32), Y_CLS)
    assert len(forks) == 1
    state = list(two._optimizer.state())
    assert all(a.dtype == np.float32 for a in _arrays(two) + state)
    assert two.predict_proba(X.astype(np.float32)).dtype == np.float32
    _assert_same_fit(one, two, LOOSE)


@pytest.mark.parametrize("n, batch_size", [
    (61, 2),  # none of a batch's rows for process 0; a last batch of one row
    (193, 32),  # a last batch of one row, fewer than the processes
])
def test_processes_without_rows_in_a_batch(n, batch_size, forks):
    one, three = _fit_both(_clf(batch_size=batch_size, max_iter=2), X[:n], Y_CLS[:n],
                           n_jobs=3, sample_weight=SW[:n])
    assert len(forks) == 2
    _assert_same_fit(one, three, TIGHT)


def test_n_jobs_minus_one_uses_every_cpu(forks):
    one, every = _fit_both(_clf(), X, Y_CLS, n_jobs=-1)
    assert len(forks) == len(os.sched_getaffinity(0)) - 1
    _assert_same_fit(one, every, TIGHT)


# ------------------------------------------------------------------------ determinism
@pytest.mark.parametrize("n_jobs", [2, 3])
@pytest.mark.parametrize("estimator, X, y", [
    pytest.param(_clf(), X, Y_CLS, id="adam-dense"),
    pytest.param(_clf(solver="sgd", learning_rate_init=0.1),
                 X_SPARSE.astype(np.float32), Y_CLS, id="sgd-sparse-float32"),
])
def test_fits_with_the_same_n_jobs_are_bitwise_equal(estimator, X, y, n_jobs, forks):
    first, second = (_fit_quietly(clone(estimator).set_params(n_jobs=n_jobs), X, y,
                                  sample_weight=SW) for _ in range(2))
    assert len(forks) == 2 * (n_jobs - 1)
    _assert_same_fit(first, second)


def test_a_fit_from_a_worker_thread_is_that_of_the_main_thread(forks):
    est = _clf(n_jobs=2)
    main = _fit_quietly(clone(est), X, Y_CLS)
    with ThreadPoolExecutor(1) as worker:
        other = worker.submit(_fit_quietly, clone(est), X, Y_CLS).result()
    assert len(forks) == 2
    _assert_same_fit(main, other)


# ------------------------------------------------------- fits continued or cut short
def _partial_fits(est):
    est.partial_fit(X[:100], Y_CLS[:100], classes=[0, 1, 2])
    est.partial_fit(X[100:], Y_CLS[100:], sample_weight=SW[100:])
    return est.partial_fit(X, Y_CLS)


def _warm_fits(est):
    est.set_params(warm_start=True, max_iter=2)
    _fit_quietly(est, X[:150], Y_CLS[:150])
    return _fit_quietly(est, X, Y_CLS)


@pytest.mark.parametrize("fits, n_fits", [(_partial_fits, 3), (_warm_fits, 2)],
                         ids=["partial_fit", "warm_start"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("hidden", [(8,), WIDE], ids=["narrow", "wide"])
def test_continued_fits_carry_the_optimizer_state_over(fits, n_fits, solver, hidden,
                                                       forks):
    """Adam's moments and step count (SGD's velocity) come back from each team, in
    the estimator's layout where the team kept them in its own."""
    one, two = (fits(_clf(solver=solver, hidden_layer_sizes=hidden, n_jobs=n_jobs))
                for n_jobs in (None, 2))
    assert len(forks) == n_fits
    _assert_same_fit(one, two, TIGHT)
    _assert_private(two)


def test_early_stopping_scores_and_restores_the_same_epoch(forks):
    """The same validation scores, and the weights of the same best epoch (not the
    last) restored."""
    one, two = _fit_both(_reg(early_stopping=True, tol=0.0, n_iter_no_change=2,
                              max_iter=30, learning_rate_init=0.05, random_state=1),
                         X, Y_REG)
    assert len(forks) == 1
    best = int(np.argmax(two.validation_scores_))
    assert best < two.n_iter_ - 1  # the weights kept are not the last epoch's
    assert best == int(np.argmax(one.validation_scores_))
    np.testing.assert_allclose(one.validation_scores_, two.validation_scores_, **TIGHT)
    assert one.best_validation_score_ == pytest.approx(two.best_validation_score_,
                                                       rel=1e-12)
    _assert_same_fit(one, two, TIGHT)


@pytest.mark.parametrize("estimator, X, y", [
    # huge steps on unscaled input: a non-finite epoch
    pytest.param(_clf(solver="sgd", learning_rate_init=1e6, max_iter=5), X * 1e3, Y_CLS,
                 id="non-finite-epoch"),
    # every epoch finite, but the weights of the last update overflow on the one row,
    # which process 1 checks (see test_divergence.py)
    pytest.param(_reg(activation="identity", hidden_layer_sizes=(3,), max_iter=5,
                      solver="sgd", batch_size="auto"),
                 np.array([[123.0, 0.0]]), np.array([17.64052346]), id="last-update"),
])
def test_divergence_is_reported_as_in_one_process(estimator, X, y, forks):
    """The same warnings, epochs and kept finite weights."""
    fits, said = [], []
    for n_jobs in (None, 2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fits.append(clone(estimator).set_params(n_jobs=n_jobs).fit(X, y))
        said.append([(w.category, str(w.message)) for w in caught])
    one, two = fits
    assert len(forks) == 1
    assert said[0] == said[1]
    assert said[1][-1][0] is ConvergenceWarning and "diverged" in said[1][-1][1]
    assert all(np.isfinite(a).all() for a in _arrays(two))
    assert np.isfinite(two.predict(X)).all()
    assert two._optimizer is None  # its moments were not finite
    _assert_same_fit(one, two, dict(rtol=1e-9, atol=0))  # weights up to 1e60


# ------------------------------------------------------------ what a team leaves behind
@pytest.mark.parametrize("fits", [
    lambda est: _fit_quietly(est, X_SPARSE, Y_CLS),
    lambda est: est.partial_fit(X_SPARSE, Y_CLS, classes=[0, 1, 2]),
], ids=["fit", "partial_fit"])
def test_a_team_leaves_no_process_shared_memory_or_blas_limit(
        fits, forks, blas_two, no_kill, monkeypatch):
    during = []  # BLAS's limits in this process's first batch

    def record_limits(in_parent):
        if in_parent and not during:
            during.append(dict(_blas_threads()))

    _hook_data_grad(monkeypatch, record_limits)
    mapped = _shared_mapped_bytes()
    est = fits(_clf(solver="sgd", n_jobs=3))
    assert _shared_mapped_bytes() == mapped  # every shared page unmapped
    assert len(forks) == 2
    _assert_reaped(forks)
    # numpy's BLAS, which the team calls, at one thread per process while the team
    # ran; any other BLAS (scipy's own) untouched: raising its limit back would start
    # a thread of its that spins a core after the fit
    numpy_blas = _numpy_blas().filepath
    assert during == [{path: 1 if path == numpy_blas else threads
                       for path, threads in blas_two}]
    assert _blas_threads() == blas_two
    _assert_private(est)
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict_proba(X_SPARSE),
                                  est.predict_proba(X_SPARSE))


def _child_raises(in_parent):
    if not in_parent:
        raise FloatingPointError("boom")


def _child_exits(in_parent):
    if not in_parent:
        os._exit(3)



def test_a_fit_returns_once_its_processes_have_left_and_a_thread_reaps_them(
        forks, no_kill, monkeypatch):
    """The fit does not wait for the kernel to tear its forked processes down: each
    has said it left (after its last write to shared memory) and a thread reaps it;
    the next team forks only once the earlier one's processes are reaped."""
    handed, at_fork, fork = [], [], os.fork
    wait_all = _processes._wait_all

    def recording_wait_all(pids):
        handed.extend(pids)
        wait_all(pids)

    def checking_fork():
        at_fork.append([t.name for t in threading.enumerate()
                        if t.name == "sknn_scratch-reaper"])
        return fork()

    monkeypatch.setattr(_processes, "_wait_all", recording_wait_all)
    monkeypatch.setattr(os, "fork", checking_fork)  # forks' own counter still runs
    est = _clf(solver="adam", n_jobs=3)
    for _ in range(2):
        _fit_quietly(est, X, Y_CLS)
    _processes.join_reapers()
    assert sorted(handed) == sorted(forks) and len(forks) == 4
    assert at_fork == [[]] * 4  # no reaper thread alive at any fork
    # the forked processes' traced peaks were written before they said they left
    tracemalloc.start()
    try:
        _fit_quietly(est, X, Y_CLS)
    finally:
        tracemalloc.stop()
    assert all(peak > 0 for peak in _processes.last_team_memory["forked_peaks"])


@pytest.mark.parametrize("n_jobs", [2, 3])
@pytest.mark.parametrize("hook, error, message", [
    (_child_raises, FloatingPointError, "boom"),
    (_child_exits, TeamFailure, "failed: exited with status 3")], ids=["raises", "exits"])
def test_a_failure_in_a_forked_process_is_raised_here(
        hook, error, message, n_jobs, forks, blas_two, no_kill, monkeypatch):
    """An exception of a forked process comes out with its own type, as it does
    without n_jobs (it came as a TeamFailure, which an `except ValueError` misses),
    caused by a TeamFailure that says where it happened; a process that exits, as a
    TeamFailure."""
    assert issubclass(TeamFailure, RuntimeError)
    est = _warm_started(n_jobs)
    _hook_data_grad(monkeypatch, hook)
    with pytest.raises(error, match=message) as info:
        est.fit(X, Y_CLS)
    if error is not TeamFailure:
        assert type(info.value.__cause__) is TeamFailure
        assert str(info.value.__cause__) == (
            f"A process of this fit's n_jobs={n_jobs} team failed: "
            "FloatingPointError: boom")
    assert len(forks) == n_jobs - 1
    _assert_reaped(forks)
    assert _blas_threads() == blas_two
    _assert_private(est)


def test_failures_of_two_processes_at_once_give_one_whole_message(
        forks, no_kill, monkeypatch):
    """Each forked process writes its message in its own slot: two failing together
    (messages of different lengths) cannot mix a length with another's text."""
    def child_raises_by_pid(in_parent):
        if not in_parent:
            raise FloatingPointError(f"process {os.getpid()} " + "x" * (os.getpid() % 97))

    _hook_data_grad(monkeypatch, child_raises_by_pid)
    for _ in range(20):
        with pytest.raises(FloatingPointError) as info:
            _clf(n_jobs=3, batch_size=30).fit(X, Y_CLS)
        for told in (str(info.value), str(info.value.__cause__)):
            pid = int(told.split("process ")[-1].split()[0])
            assert told.endswith(f"process {pid} " + "x" * (pid % 97))


def test_a_long_non_ascii_message_is_cut_not_lost(forks, no_kill, monkeypatch):
    """An exception too large for its slot comes as a TeamFailure with the start of
    its message."""
    def child_raises(in_parent):
        if not in_parent:
            raise ValueError("\u00e9" * 3000)

    _hook_data_grad(monkeypatch, child_raises)
    with pytest.raises(TeamFailure, match="ValueError: \u00e9\u00e9"):
        _clf(n_jobs=2).fit(X, Y_CLS)


@pytest.mark.parametrize("hook, error, message", [
    (_child_raises, FloatingPointError, "boom"),
    (_child_exits, TeamFailure, "failed: exited, and its exit status was collected "
                                r"elsewhere \(SIGCHLD ignored")], ids=["raises", "exits"])
def test_a_failure_is_raised_here_when_sigchld_is_ignored(
        hook, error, message, forks, no_kill, monkeypatch):
    """With SIGCHLD ignored (as in many servers) an exited process is reaped by the
    kernel: waitpid raised ChildProcessError, not the failure."""
    _hook_data_grad(monkeypatch, hook)
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        for _ in range(5):
            with pytest.raises(error, match=message):
                _clf(n_jobs=2).fit(X, Y_CLS)
    finally:
        signal.signal(signal.SIGCHLD, previous)
    _processes.join_reapers()


_STUCK = """
import os, sys, time, warnings, numpy as np
from sknn_scratch import MLPScratchClassifier
from sknn_scratch.activations import Activation
PARENT = os.getpid()

class StuckInTheForkedProcess(Activation):
    def forward(self, z):
        if os.getpid() != PARENT:
            with open(sys.argv[1], "w") as f:
                f.write(str(os.getpid()))
            while True:  # as on a lock copied while another thread held it
                time.sleep(60)
        return np.tanh(z)

    def derivative(self, z):
        return 1 - np.tanh(z) ** 2

rng = np.random.RandomState(0)
X = rng.randn(400, 5)
warnings.simplefilter("ignore")
MLPScratchClassifier((4,), activation=StuckInTheForkedProcess(), n_jobs=2,
                     max_iter=2).fit(X, X[:, 0] > 0)
"""


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_a_forked_process_stuck_in_user_code_dies_with_its_parent(tmp_path):
    """It never reaches its loops' checks of the parent: killed, the parent left it
    running for ever, with the parent's file descriptors."""
    marker = tmp_path / "pid"
    parent = subprocess.Popen([sys.executable, "-c", _STUCK, str(marker)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (marker.exists() and marker.read_text()):
            assert time.monotonic() < deadline and parent.poll() is None
            time.sleep(0.05)
        stuck = int(marker.read_text())
        assert _alive(stuck)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while _alive(stuck) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = _alive(stuck)
    if alive:
        os.kill(stuck, signal.SIGKILL)
    assert not alive


class _Large(ValueError):
    pass


def test_an_exception_too_large_for_its_slot_is_not_pickled_whole(
        forks, no_kill, monkeypatch):
    """One that holds a 400 MB array took 1.4 s, and as much memory again in the
    forked process, to be pickled and found too large: now given up at the slot's
    size, and the message comes as a TeamFailure."""
    def child_raises(in_parent):
        if not in_parent:
            error = _Large("with an array")
            error.data = np.zeros(50_000_000 // 8)  # 50 MB
            raise error

    _hook_data_grad(monkeypatch, child_raises)
    with pytest.raises(TeamFailure, match="failed: _Large: with an array$"):
        _clf(n_jobs=2).fit(X, Y_CLS)
    assert _processes._pickled_within(ValueError("small"), 4096)
    big = ValueError("big")
    big.data = np.zeros(10**6)
    with pytest.raises(ValueError, match="more than 4096 bytes"):
        _processes._pickled_within(big, 4096)


def _refuse_to_unpickle(*args):
    raise TypeError("not this one")


class _Unpicklable(ValueError):
    def __reduce_ex__(self, protocol):
        return _refuse_to_unpickle, self.args


def test_an_exception_that_does_not_unpickle_comes_as_a_team_failure(
        forks, no_kill, monkeypatch):
    # dask's import of tblib registers its own pickling for the exception classes of
    # that moment, this one included
    monkeypatch.delitem(copyreg.dispatch_table, _Unpicklable, raising=False)

    def child_raises(in_parent):
        if not in_parent:
            raise _Unpicklable("unpickled")

    _hook_data_grad(monkeypatch, child_raises)
    with pytest.raises(TeamFailure, match="failed: _Unpicklable: unpickled$"):
        _clf(n_jobs=2).fit(X, Y_CLS)


@pytest.mark.parametrize("n_jobs", [2, 3])
def test_a_failure_here_stops_the_forked_processes(
        n_jobs, forks, blas_two, no_kill, monkeypatch):
    """The parent fails in its 9th batch (the second epoch), while the others wait for
    it: its own error comes out, and they exit when told, without being killed."""
    calls = []

    def parent_fails(in_parent):
        if in_parent:
            calls.append(1)
            if len(calls) == 9:
                raise FloatingPointError("parent boom")

    est = _warm_started(n_jobs)
    _hook_data_grad(monkeypatch, parent_fails)
    with pytest.raises(FloatingPointError, match="parent boom"):
        est.fit(X, Y_CLS)
    assert len(forks) == n_jobs - 1
    _assert_reaped(forks)
    assert _blas_threads() == blas_two
    _assert_private(est)


def test_a_fork_that_fails_leaves_nothing_behind(forks, blas_two, no_kill, monkeypatch):
    """The second of two forks fails: the first process forked is stopped and reaped."""
    fork = os.fork

    def second_fails():
        if forks:
            raise BlockingIOError("no more processes")
        return fork()

    est = _warm_started(3)
    monkeypatch.setattr(os, "fork", second_fails)
    with pytest.raises(BlockingIOError, match="no more processes"):
        est.fit(X, Y_CLS)
    assert len(forks) == 1
    _assert_reaped(forks)
    assert _blas_threads() == blas_two
    _assert_private(est)


def test_a_first_fit_that_fails_in_a_team_leaves_no_model(forks, no_kill, monkeypatch):
    _hook_data_grad(monkeypatch, _child_raises)
    est = _clf(n_jobs=2)
    with pytest.raises(FloatingPointError):
        est.fit(X, Y_CLS)
    _assert_reaped(forks)
    assert not hasattr(est, "coefs_") and not hasattr(est, "_params")
    assert est.get_params() == _clf(n_jobs=2).get_params()


@pytest.mark.parametrize("where", ["_wait_until_left", "_reap", "_leave_shared_memory"])
def test_an_interrupt_while_the_team_stops_leaves_nothing_behind(
        where, forks, blas_two, no_kill, monkeypatch):
    """Ctrl-C may land in the team's cleanup itself: each step still runs."""
    est = _warm_started(2)
    owner = _processes if where == "_reap" else _processes.ProcessTeam
    original = getattr(owner, where)

    def interrupted(*args):
        original(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(owner, where, interrupted)
    _fit_interrupted(est, forks, blas_two, monkeypatch)


def _state(est):
    """What a fit sets on a model, as bytes (the optimizer included)."""
    params = est.get_params(deep=False)
    return pickle.dumps({k: v for k, v in vars(est).items()
                         if k not in params and k not in ("_params", "_views")})


def test_a_warm_start_whose_team_fails_before_its_first_epoch_ends_changes_nothing(
        forks, no_kill, monkeypatch):
    est = _warm_started(2)
    before = _state(est)
    _hook_data_grad(monkeypatch, _child_raises)
    with pytest.raises(FloatingPointError):
        est.set_params(activation="tanh").fit(X, Y_CLS)
    _assert_reaped(forks)
    assert _state(est) == before and est.activations_[0].name == "relu"


def test_a_partial_fit_whose_team_fails_puts_back_the_moments_it_moved_ahead(
        forks, no_kill, monkeypatch):
    est = _clf(n_jobs=2).partial_fit(X, Y_CLS, classes=np.unique(Y_CLS))
    twin = _clf(n_jobs=2).partial_fit(X, Y_CLS, classes=np.unique(Y_CLS))
    coefs = [c.copy() for c in est.coefs_]
    moments = pickle.dumps(est._optimizer)
    calls = []

    def child_fails_late(in_parent):
        if not in_parent:
            calls.append(1)
            if len(calls) == 4:
                raise FloatingPointError("boom")

    _hook_data_grad(monkeypatch, child_fails_late)
    with pytest.raises(FloatingPointError):
        est.partial_fit(X, Y_CLS)
    _assert_reaped(forks)
    for a, b in zip(est.coefs_, coefs):  # the weights of the epoch's start
        np.testing.assert_array_equal(a, b)
    # its moments took steps these weights did not: they are back as they were
    assert pickle.dumps(est._optimizer) == moments
    monkeypatch.undo()
    for model in (est, twin):
        model.partial_fit(X, Y_CLS)
    _assert_same_fit(est, twin)


def test_an_interrupted_wait_for_the_team_stops_its_processes(forks, blas_two,
                                                              monkeypatch):
    """Ctrl-C before the processes have left: they are stopped, not left running for
    a reaper that would wait for them forever."""
    est = _warm_started(2)

    def interrupted(self, pids):
        raise KeyboardInterrupt

    monkeypatch.setattr(_processes.ProcessTeam, "_wait_until_left", interrupted)
    _fit_interrupted(est, forks, blas_two, monkeypatch)


def test_an_interrupted_wait_after_a_process_was_reaped_still_cleans_up(
        forks, blas_two, monkeypatch):
    """Ctrl-C right after the wait reaped a process that died without saying it left:
    killing it finds no process, and the cleanup goes on."""
    est = _warm_started(2)

    def reaped_then_interrupted(self, pids):
        for pid, rank in pids.items():
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            self.left[rank] = 0
        raise KeyboardInterrupt

    monkeypatch.setattr(_processes.ProcessTeam, "_wait_until_left",
                        reaped_then_interrupted)
    _fit_interrupted(est, forks, blas_two, monkeypatch)


@pytest.mark.parametrize("thread", ["main", "other"])
def test_a_forked_process_ignores_ctrl_c(thread, forks, no_kill, monkeypatch):
    """It starts with SIGINT blocked (a fit off the main thread has no handler holding
    Ctrl-C back) and ignores it: Ctrl-C cannot turn it into a copy of the program."""
    def child_checks_sigint(in_parent):
        if not in_parent:
            assert signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN

    _hook_data_grad(monkeypatch, child_checks_sigint)
    errors = []

    def fit():
        try:
            _clf(n_jobs=2).fit(X, Y_CLS)  # a failed check would fail the team
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    if thread == "main":
        fit()
    else:
        worker = threading.Thread(target=fit)
        worker.start()
        worker.join()
    assert not errors
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


@pytest.mark.parametrize("when", ["fork", "reap"])
def test_ctrl_c_while_the_team_starts_or_stops_waits_until_it_is_done(
        when, forks, blas_two, no_kill, monkeypatch):
    """A Ctrl-C that arrives while the team forks (or stops) is held back until the
    team is whole (or gone), then interrupts the fit as usual: no process is left
    unknown or unreaped, no thread limit is left behind."""
    est = _warm_started(2)
    if when == "fork":
        fork = os.fork  # the fixture's counting fork

        def ctrl_c_then_fork():
            os.kill(os.getpid(), signal.SIGINT)
            return fork()

        monkeypatch.setattr(os, "fork", ctrl_c_then_fork)
    else:
        reap = _processes._reap

        def ctrl_c_then_reap(pids):
            os.kill(os.getpid(), signal.SIGINT)
            reap(pids)

        monkeypatch.setattr(_processes, "_reap", ctrl_c_then_reap)
    _fit_interrupted(est, forks, blas_two, monkeypatch)
    assert len(forks) == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class _Timeout(Exception):
    """What a timeout decorator's SIGALRM handler raises."""


@pytest.fixture
def alarm_raises():
    """SIGALRM handled from Python by raising :class:`_Timeout`, as a timeout
    decorator's handler does (anywhere the signal lands); the test's handler put back
    after."""
    def on_alarm(signum, frame):
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        yield on_alarm
    finally:
        signal.signal(signal.SIGALRM, previous)


def _alarm():
    _KILL(os.getpid(), signal.SIGALRM)


# where a team's start and stop used to let a raising handler leave state behind: the
# fork reservation (later fits and predictions wait for it for ever), the BLAS limit,
# a forked process whose id was not yet kept (never reaped)
_ALARMED = {
    "reserve_fork": lambda f: lambda: (f(), _alarm())[0],
    "fork": lambda f: lambda: (f(), _alarm())[0],
    "acquire": lambda f: lambda self: (f(self), _alarm())[0],
    "_reap": lambda f: lambda pids: (f(pids), _alarm())[0],
    "release_fork": lambda f: lambda: (f(), _alarm())[0],
    "release": lambda f: lambda self: (f(self), _alarm())[0],
}


@pytest.mark.parametrize("where", list(_ALARMED))
def test_a_raising_handler_while_the_team_starts_or_stops_leaves_nothing_behind(
        where, forks, blas_two, no_kill, alarm_raises, monkeypatch):
    """Every signal whose handler was set from Python is held back while a team starts
    and stops, as Ctrl-C is: its handler's error comes once the team is whole (or
    gone), and leaves no reservation, BLAS limit or process behind; the next team
    forks, and its forked processes have the handler back."""
    owner = {"fork": os, "acquire": _processes._SharedLimit,
             "release": _processes._SharedLimit}.get(where, _processes)
    original = getattr(owner, where)
    est = _warm_started(2)
    monkeypatch.setattr(owner, where, _ALARMED[where](original))
    with pytest.raises(_Timeout):
        est.fit(X, Y_CLS)
    monkeypatch.setattr(owner, where, original)
    assert _processes.blas_users() == {"running": [], "forking": 0}
    assert _processes.numpy_one_thread._users == 0
    _assert_reaped(forks)
    assert _blas_threads() == blas_two
    assert signal.getsignal(signal.SIGALRM) is alarm_raises
    assert signal.SIGALRM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])

    def child_has_the_handler(in_parent):
        if not in_parent:
            assert signal.getsignal(signal.SIGALRM) is alarm_raises
            assert signal.SIGALRM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])

    _hook_data_grad(monkeypatch, child_has_the_handler)
    forks.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a team, not one process
        _fit_quietly(_clf(n_jobs=2), X, Y_CLS)
    assert len(forks) == 1
    _assert_reaped(forks)


def test_a_signal_held_back_reaches_its_handler_and_the_wakeup_fd_once(forks,
                                                                        monkeypatch):
    """A signal that comes while the team forks is handed to its handler once, after,
    and written once to the wakeup fd (an event loop's, as asyncio's signal handlers
    use): its handler is called, not sent the signal again."""
    calls = []
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    previous_fd = signal.set_wakeup_fd(write)
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: calls.append(signum))
    fork = os.fork

    def fork_then_signal():
        pid = fork()
        if pid and not calls and len(forks) == 1:
            _KILL(os.getpid(), signal.SIGUSR1)
            assert not calls  # held back
        return pid

    monkeypatch.setattr(os, "fork", fork_then_signal)
    try:
        _fit_quietly(_clf(n_jobs=2), X, Y_CLS)
        written = os.read(read, 1024)
    finally:
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGUSR1, previous)
        os.close(read)
        os.close(write)
    assert calls == [signal.SIGUSR1]
    assert written.count(bytes([signal.SIGUSR1])) == 1
    _assert_reaped(forks)


_PREDICT_INSIDE = r"""
import sys, warnings
import numpy as np
from sknn_scratch import MLPScratchClassifier, _processes
warnings.simplefilter("ignore")
X = np.random.RandomState(0).standard_normal((60, 4))
est = MLPScratchClassifier((4,), max_iter=2, random_state=0).fit(X, X[:, 0] > 0)
if sys.argv[1] == "lock":  # as a handler run while its thread holds the guard's lock
    with _processes._blas_users_lock:
        est.predict(X)
else:  # as a handler run while its thread's fit holds the fork reservation
    with _processes.using_blas():
        assert _processes.reserve_fork()
        est.predict(X)
        _processes.release_fork()
print("done")
"""


@pytest.mark.parametrize("holding", ["lock", "reservation"])
def test_a_handler_that_predicts_in_the_middle_of_a_call_does_not_wait_for_it(holding):
    """A signal's handler runs between any two steps of the thread it interrupts: one
    that predicts, run while that thread holds the guard's lock or its fit's fork
    reservation, used to wait for ever for what its own thread holds."""
    out = subprocess.run([sys.executable, "-c", _PREDICT_INSIDE, holding],
                         capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert out.stdout.strip() == "done", out.stderr[-2000:]


@contextlib.contextmanager
def _using_blas_in_another_thread(first=None):
    """For the block, another thread inside ``using_blas`` (after calling ``first``,
    if given), as a fit or prediction of that thread would be; yields the thread."""
    inside, done = threading.Event(), threading.Event()

    def holds():
        if first is not None:
            first()
        with _processes.using_blas():
            inside.set()
            done.wait(60)

    thread = threading.Thread(target=holds)
    thread.start()
    try:
        assert inside.wait(60)
        yield thread
    finally:
        done.set()
        thread.join()


def test_a_thread_whose_first_call_fails_to_register_is_still_seen(monkeypatch):
    """A handler's error as a thread's first call registers it used to leave that
    thread's guard unregistered: its fits and predictions ran unseen by teams forking
    in other threads."""
    class FailingOnce(weakref.WeakValueDictionary):
        failed = False

        def __setitem__(self, key, value):
            if not FailingOnce.failed:
                FailingOnce.failed = True
                raise KeyboardInterrupt  # as a handler's, landing there
            super().__setitem__(key, value)

    monkeypatch.setattr(_processes, "_users", FailingOnce())

    def first_call_fails():
        with contextlib.suppress(KeyboardInterrupt):
            _processes.using_blas()

    with _using_blas_in_another_thread(first=first_call_fails) as thread:
        seen = _processes.blas_users()["running"]
    assert FailingOnce.failed and seen == [thread.ident]


def test_a_handler_set_while_signals_are_held_back_stays(monkeypatch):
    """A handler that replaces itself (a second Ctrl-C that ends the program, say),
    run as the handlers are swapped, keeps its replacement."""
    def second(signum, frame):
        pass

    def first(signum, frame):
        signal.signal(signal.SIGUSR1, second)

    previous = signal.signal(signal.SIGUSR1, first)
    handler_of = _processes._handler_of

    def pending_during_the_swap(signum):
        if signum == signal.SIGUSR2:  # SIGUSR1's handler read already
            _KILL(os.getpid(), signal.SIGUSR1)  # runs ``first`` here
        return handler_of(signum)

    monkeypatch.setattr(_processes, "_handler_of", pending_during_the_swap)
    try:
        with _processes._signals_deferred():
            pass
        assert signal.getsignal(signal.SIGUSR1) is second
    finally:
        signal.signal(signal.SIGUSR1, previous)


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.machine() != "x86_64",
                    reason="reads glibc's struct sigaction of x86_64")
def test_signals_held_back_keep_their_system_settings(forks):
    """``signal.signal`` installs a handler with flags of its own: the handlers put
    back keep the settings they had (``signal.siginterrupt``'s restart flag here)."""
    import ctypes

    sigaction = ctypes.CDLL(None, use_errno=True).sigaction

    def settings():  # the handler, the first 64 signals of its mask, and its flags
        raw = ctypes.create_string_buffer(1024)
        assert sigaction(signal.SIGUSR1, None, raw) == 0
        return raw.raw[:16], int.from_bytes(raw.raw[136:140], sys.byteorder)

    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    try:
        signal.siginterrupt(signal.SIGUSR1, False)  # restart interrupted system calls
        before = settings()
        _fit_quietly(_clf(n_jobs=2), X, Y_CLS)
        assert len(forks) == 1
        assert settings() == before
    finally:
        signal.signal(signal.SIGUSR1, previous)


_ALARMS = r"""
import logging, os, random, signal, threading, warnings
from sklearn.datasets import make_classification
from sknn_scratch import MLPScratchClassifier, _processes

class Timeout(Exception):
    pass

armed = [False]  # raising only during the fit: the loop's own code is not tested

def on_alarm(signum, frame):
    if armed[0]:
        raise Timeout

def logging_lock_free():  # taken from another thread, as any logging call would
    got = []
    def probe():
        got.append(logging._lock.acquire(timeout=5))
        if got[0]:
            logging._lock.release()
    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return got[0]

def children():
    with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as f:
        return f.read().split()

warnings.simplefilter("ignore")
X, y = make_classification(n_samples=600, n_features=10, random_state=0)
signal.signal(signal.SIGALRM, on_alarm)
rng = random.Random(0)
raised = 0
for i in range(300):
    armed[0] = True
    signal.setitimer(signal.ITIMER_REAL, rng.uniform(0.0005, 0.03))
    try:
        MLPScratchClassifier((8,), max_iter=2, random_state=0, n_jobs=2).fit(X, y)
        armed[0] = False
    except Exception as exc:  # a check of the initializer, say, names it as cause
        armed[0] = False
        if not isinstance(exc, Timeout) and not isinstance(exc.__cause__, Timeout):
            raise
        raised += 1
    signal.setitimer(signal.ITIMER_REAL, 0)
    _processes.join_reapers()
    left = {"users": _processes.blas_users(),
            "limit": _processes.numpy_one_thread._users,
            "logging": logging_lock_free(), "children": children()}
    assert left == {"users": {"running": [], "forking": 0}, "limit": 0,
                    "logging": True, "children": []}, (i, left)
warnings.filterwarnings("error", "n_jobs=2: another fit")  # a team still forks
MLPScratchClassifier((8,), max_iter=2, random_state=0, n_jobs=2).fit(X, y)
print("raised", raised)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_fits_under_a_raising_alarm_leave_nothing_behind():
    """300 fits of n_jobs=2, each under a SIGALRM due 0.5-30 ms after it starts, whose
    handler raises (a timeout decorator's): the alarm lands anywhere in the team's
    start, epochs and stop. After each fit no fork reservation, count of running fits,
    BLAS limit, process or logging lock is left (the alarm used to land in logging's
    fork handler), and no fit hangs."""
    out = subprocess.run([sys.executable, "-c", _ALARMS], capture_output=True,
                         text=True, timeout=240, cwd=str(ROOT))
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.split()[-1]) > 30  # fits the alarm interrupted


def test_fits_in_threads_at_once_share_the_reapers_and_put_the_blas_limit_back(
        blas_two, monkeypatch):
    """Fits with n_jobs=2 running at once in threads: each trains (in a team when its
    fit runs alone, in one process otherwise, see below) to the model of a fit made
    alone, up to rounding; each joins the others' reapers without tripping over them,
    and the BLAS limit goes back to the original once all are done."""
    errors, results, reserved = [], {}, []
    reserve = _processes.reserve_fork

    def recording():
        reserved.append(reserve())
        return reserved[-1]

    monkeypatch.setattr(_processes, "reserve_fork", recording)

    def fits(seed):
        try:
            for size in (40, 400, 120):
                est = _clf(n_jobs=2, random_state=seed, max_iter=2)
                results[seed, size] = est.fit(X[:size], Y_CLS[:size]).coefs_[0]
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence, and training in one process
        threads = [threading.Thread(target=fits, args=(seed,)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        for (seed, size), coefs in results.items():
            alone = _clf(n_jobs=2, random_state=seed, max_iter=2).fit(X[:size],
                                                                     Y_CLS[:size])
            np.testing.assert_allclose(coefs, alone.coefs_[0], rtol=1e-9, atol=1e-12)
    assert len(reserved) >= 12 and any(reserved)  # some fits formed a team
    _processes.join_reapers()
    assert _blas_threads() == blas_two


def test_lbfgs_fits_in_threads_at_once_put_scipys_blas_limit_back(blas_two):
    """Each lbfgs fit runs scipy's BLAS at one thread: overlapping fits (a search on
    joblib's threading backend) share that limit and the last puts the original back
    (the second used to save the first's 1 as the original, and scipy's BLAS stayed
    at one thread for good)."""
    from joblib import parallel_config
    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_validate
    X_dig, y_dig = load_digits(return_X_y=True)  # fits long enough to overlap
    # no thread in control of OpenBLAS's thread count, as in a program that set no
    # limit (this one's limit made the others' limits do nothing)
    with _processes._blas_control():
        pass
    with warnings.catch_warnings(), parallel_config(backend="threading"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(3):
            cross_validate(MLPScratchClassifier((32,), solver="lbfgs", max_iter=50,
                                                random_state=0),
                           X_dig / 16, y_dig, cv=4, n_jobs=2)
            assert _blas_threads() == blas_two


def test_a_team_forks_only_while_no_other_fit_or_prediction_runs(forks):
    """Forking while another thread is inside a multi-threaded OpenBLAS call can hang
    the process (OpenBLAS's fork handler and the call wait for each other): with
    another fit or prediction of this process running, an n_jobs fit warns and trains
    in one process, to the team's model up to rounding."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        team = _clf(n_jobs=2, max_iter=2).fit(X, Y_CLS)
        assert len(forks) == 1
        with _using_blas_in_another_thread():  # as another thread's fit would be
            with pytest.warns(UserWarning, match="another fit or prediction is "
                              "running in a thread of this process"):
                alone = _clf(n_jobs=2, max_iter=2).fit(X, Y_CLS)
        assert len(forks) == 1
        again = _clf(n_jobs=2, max_iter=2).fit(X, Y_CLS)  # alone again: a team
    assert len(forks) == 2
    np.testing.assert_allclose(alone.coefs_[0], team.coefs_[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(again.coefs_[0], team.coefs_[0])
    assert _processes.blas_users() == {"running": [], "forking": 0}


def test_more_processes_than_cpus_warn(forks, monkeypatch):
    """Each process beyond one per CPU slows the team down (128 on 2 CPUs took 5 to
    over 100 s where 2 took 0.03): the fit says so, and trains as asked."""
    from sknn_scratch import _base

    monkeypatch.setattr(_base, "_usable_cpus", lambda: 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(UserWarning, match=r"n_jobs=3 asks for 3 processes, more "
                          r"than the 2 CPUs this process may run on"):
            _clf(n_jobs=3, max_iter=1).fit(X, Y_CLS)
        assert len(forks) == 2
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)  # a UserWarning too
        _clf(n_jobs=2, max_iter=1).fit(X, Y_CLS)


def test_a_child_forked_during_a_fit_starts_with_no_blas_users():
    """Any code's fork copies the guard's counts: a child forked while a fit runs in
    another thread, or while a team forks, used to count it for ever (its n_jobs fits
    warned and trained in one process) or to wait for ever at its first prediction."""
    ready, done = threading.Event(), threading.Event()

    def busy():
        with _processes.using_blas():
            ready.set()
            done.wait(10)

    thread = threading.Thread(target=busy)
    thread.start()
    ready.wait(10)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os._exit(0 if _processes.blas_users() == {"running": [], "forking": 0} else 1)
    done.set()
    thread.join()
    assert os.waitpid(pid, 0)[1] == 0


def test_a_team_fit_beside_a_fit_in_another_thread_does_not_hang():
    """The case that hung: a thread fitting with n_jobs=2 while the main thread fits
    in one process with two BLAS threads (3 runs of 3 hung before the guard)."""
    code = (
        "import threading, warnings\n"
        "from sklearn.datasets import make_classification\n"
        "from sknn_scratch import MLPScratchClassifier\n"
        "warnings.simplefilter('ignore')\n"
        "X, y = make_classification(n_samples=1000, n_features=50, random_state=0)\n"
        "def fits(n_jobs):\n"
        "    for _ in range(40):\n"
        "        MLPScratchClassifier((128,), max_iter=2, random_state=0,\n"
        "                             n_jobs=n_jobs).fit(X, y)\n"
        "t = threading.Thread(target=fits, args=(2,)); t.start(); fits(None); t.join()\n"
        "print('finished')\n")
    env = {k: v for k, v in os.environ.items() if "THREADS" not in k}  # BLAS threaded
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=env, cwd=str(ROOT))
    assert out.stdout.strip() == "finished", out.stderr[-2000:]


def _fit_interrupted(est, forks, blas_two, monkeypatch):
    """``est.fit``, which the test has patched to be interrupted, keeps the model
    trained so far and leaves no process, thread limit or shared memory behind."""
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        est.fit(X, Y_CLS)
    monkeypatch.undo()
    assert np.isfinite(est.predict_proba(X)).all()
    _assert_reaped(forks)
    assert _blas_threads() == blas_two
    _assert_private(est)


def _warm_started(n_jobs):
    """A model fitted in one process, whose next fit continues in a team of ``n_jobs``:
    a failure there leaves the model it trained on (the arrays checked private)."""
    est = _clf(n_jobs=1, warm_start=True).fit(X, Y_CLS)
    return est.set_params(n_jobs=n_jobs)


# ---------------------------------------------------------- no team, and n_jobs itself
@pytest.mark.parametrize("n_jobs", [0, 1.5, "2"])
def test_an_invalid_n_jobs_is_refused_at_fit(n_jobs):
    with pytest.raises(ValueError, match="n_jobs"):
        _clf(n_jobs=n_jobs).fit(X, Y_CLS)


@pytest.mark.parametrize("n_jobs, cpus, expected", [
    (None, 4, 1), (1, 4, 1), (3, 4, 3), (8, 4, 8),
    (-1, 4, 4), (-2, 4, 3), (-4, 4, 1), (-9, 4, 1),
    (-1, 1, 1),
])
def test_resolve_n_jobs(n_jobs, cpus, expected, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    assert resolve_n_jobs(n_jobs) == expected


def _fork_forbidden():
    raise AssertionError("forked")


@pytest.mark.parametrize("estimator, n_jobs", [
    pytest.param(_clf(solver="lbfgs", max_iter=5), 2, id="lbfgs"),
    pytest.param(_reg(solver="lbfgs", max_iter=5), -1, id="lbfgs-all-cpus"),
    pytest.param(_clf(), 1, id="n_jobs=1"),
])
def test_fits_without_a_team_are_bitwise_those_of_one_process(
        estimator, n_jobs, monkeypatch):
    y = Y_REG if isinstance(estimator, MLPScratchRegressor) else Y_CLS
    monkeypatch.setattr(os, "fork", _fork_forbidden, raising=False)
    one, same = _fit_both(estimator, X, y, n_jobs=n_jobs)
    _assert_same_fit(one, same)


def test_without_fork_a_warning_and_one_process(monkeypatch):
    monkeypatch.delattr(os, "fork", raising=False)
    one = _fit_quietly(_clf(), X, Y_CLS)
    with pytest.warns(UserWarning, match=r"os\.fork"):
        same = _fit_quietly(_clf(n_jobs=2), X, Y_CLS)
    _assert_same_fit(one, same)


@pytest.mark.parametrize("cls", [MLPScratchClassifier, MLPScratchRegressor])
def test_n_jobs_is_a_parameter(cls):
    assert cls().get_params()["n_jobs"] is None
    est = cls(n_jobs=3)
    assert est.get_params()["n_jobs"] == 3
    assert clone(est).n_jobs == 3
    assert est.set_params(n_jobs=-1).n_jobs == -1


def _traced_fit(est, X, y):
    """``est`` fitted under tracemalloc; its traced peak."""
    tracemalloc.start()
    try:
        _fit_quietly(est, X, y)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_team_costs_one_parameter_vector_more_than_one_process(forks):
    """Memory while a team trains: its shared memory and the forked process's own
    allocations (which tracemalloc does not see) counted. Against one process it holds
    a second gradient and a shared copy of the weights, and no separate copy of the
    epoch's start; the two processes' batch buffers hold a batch between them."""
    rng = np.random.default_rng(0)
    X_wide = rng.standard_normal((2000, 100))
    y = (X_wide[:, 0] > 0).astype(int)
    params = dict(hidden_layer_sizes=(256, 128), max_iter=2, random_state=0)
    one = _traced_fit(MLPScratchClassifier(**params), X_wide, y)
    _processes.last_team_memory.update(shared_bytes=0, forked_peaks=[], peak_bytes=0)
    est = MLPScratchClassifier(**params, n_jobs=2)
    own = _traced_fit(est, X_wide, y)
    team = _processes.last_team_memory
    vector = est._params.nbytes
    assert len(team["forked_peaks"]) == 1 and team["forked_peaks"][0] > 0
    shared = team["shared_bytes"]
    assert shared >= 5 * vector  # the weights, two gradients, Adam's two moments
    # the bound adds this process's traced peak to the shared and forked memory, or
    # is set while the moments move back: never below the memory it counts
    assert team["peak_bytes"] >= shared + sum(team["forked_peaks"])
    assert team["peak_bytes"] <= own + shared + sum(team["forked_peaks"])
    # measured: 1.2 vectors more; the rest is the second process's small temporaries
    # (the L2 term's scratch, the loss on its rows). A copy of the epoch's start, or
    # the moments counted both in private and in shared memory, would add 1 to 2 more
    assert max(own, team["peak_bytes"]) <= one + 1.3 * vector


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("copy_of", [pickle.dumps, "deepcopy"])
def test_a_copy_taken_while_a_team_trains_has_the_estimators_layout(monkeypatch,
                                                                    copy_of):
    """A checkpoint between two epochs (here from the verbose print): the team keeps
    the optimizer's moments in its own layout (WIDE's second layer in Fortran order),
    which a copy took as they were; a partial_fit from it went on from permuted
    moments."""
    import copy
    import io

    params = dict(SMALL, hidden_layer_sizes=WIDE, n_jobs=2)
    est = _clf(**params, verbose=True)  # SMALL: 3 epochs
    snapshots = []

    class Checkpoint(io.StringIO):
        def write(self, text):
            if text.startswith("Iteration 2,"):
                snapshots.append(pickle.loads(copy_of(est)) if callable(copy_of)
                                 else copy.deepcopy(est))
            return super().write(text)

    monkeypatch.setattr(sys, "stdout", Checkpoint())
    _fit_quietly(est, X, Y_CLS)
    monkeypatch.undo()
    two = _fit_quietly(_clf(**{**params, "max_iter": 2}), X, Y_CLS)
    (snapshot,) = snapshots
    assert snapshot.n_iter_ == 2 and "_team" not in vars(snapshot)
    for a, b in zip(_arrays(snapshot), _arrays(two)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(snapshot._optimizer.state(), two._optimizer.state()):
        assert not _in_shared_memory(a)
        np.testing.assert_array_equal(a, b)
    assert "_team" not in vars(est)
