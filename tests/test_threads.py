"""Passes split over two threads give bitwise the results of one thread.

The suite runs with one BLAS thread (see conftest.py), where nothing is split. These
tests let the split paths believe that BLAS may use two threads (BLAS itself stays at
one, so only the split differs between the runs compared) and lower the size
thresholds, so that the split paths run on small data; they count the hand-offs to show
that they did.
"""

import collections
import contextlib
import os
import signal
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from sknn_scratch import MLPScratchClassifier, MLPScratchRegressor, _threads
from sknn_scratch import network, solvers
from sknn_scratch.solvers import SGD, Adam


@pytest.fixture
def handoffs(monkeypatch):
    """Small thresholds, every pass that may be split split (the choice by timing is
    tested on its own below), and a counter of the halves sent to the helper thread."""
    monkeypatch.setattr(_threads._Judge, "choose", lambda self: True)
    monkeypatch.setattr(solvers, "PARALLEL_STEP", 8)
    monkeypatch.setattr(network, "PARALLEL_SPARSE", 8)
    count = [0]
    executor = _threads._executor

    class Counting:
        def submit(self, fn, *args):
            count[0] += 1
            return executor().submit(fn, *args)

    monkeypatch.setattr(_threads, "_executor", Counting)
    return count


@contextlib.contextmanager
def _blas_allows(n):
    with mock.patch.object(_threads, "_blas_threads", lambda: n):
        yield


def _in_threads(n, fn):
    with _blas_allows(n):
        return fn()


def _fit_quietly(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few epochs on purpose
        return estimator.fit(X, y)


@pytest.mark.parametrize("limit", [1, 2])
def test_the_helper_follows_the_blas_thread_limit(limit):
    with threadpool_limits(limits=limit, user_api="blas"):
        blas = _threads._numpy_blas().num_threads  # 1 on a machine with one core
        assert blas <= limit
        assert _threads.two_threads(10**9, 1) == (blas >= 2)
        assert not _threads.two_threads(10, 11)


@pytest.mark.parametrize("make", [
    lambda n: Adam(n, np.float64, learning_rate_init=0.01),
    lambda n: SGD(n, np.float64, nesterov=True),
    lambda n: SGD(n, np.float64, nesterov=False),
    lambda n: SGD(n, np.float32, momentum=0.0),
])
def test_optimizer_steps_in_two_threads_are_bitwise_those_of_one(make, handoffs):
    n, rng = 1001, np.random.default_rng(0)
    grads = rng.standard_normal((5, n))

    def run():
        opt = make(n)
        dtype = opt.velocity.dtype if isinstance(opt, SGD) else opt.m.dtype
        params = np.linspace(-1, 1, n).astype(dtype)
        for g in grads:
            opt.step(params, g.astype(params.dtype))
        return params, vars(opt)

    p1, s1 = _in_threads(1, run)
    assert handoffs[0] == 0
    p2, s2 = _in_threads(2, run)
    assert handoffs[0] == len(grads)
    np.testing.assert_array_equal(p1, p2)
    for key, value in s1.items():
        np.testing.assert_array_equal(value, s2[key])


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("accumulate", [False, True])
def test_sparse_products_in_two_threads_are_bitwise_those_of_one(
        fmt, dtype, transpose, accumulate, handoffs):
    rng = np.random.default_rng(1)
    A = sp.random(37, 53, density=0.2, format=fmt, random_state=rng, dtype=dtype)
    B = rng.standard_normal((A.shape[0] if transpose else A.shape[1], 6)).astype(dtype)
    start = rng.standard_normal((A.shape[1] if transpose else A.shape[0], 6))
    start = start.astype(dtype)

    def run():
        out = start.copy() if accumulate else np.full_like(start, np.nan)
        return network._sparse_dot(A, B, out, transpose, accumulate)

    one = _in_threads(1, run)
    two = _in_threads(2, run)
    assert handoffs[0] == (1 if fmt == "csr" else 0)  # CSC takes scipy's public path
    np.testing.assert_array_equal(one, two)
    dense = (A.toarray().T if transpose else A.toarray()) @ B
    expected = dense + start if accumulate else dense
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(one, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("sparse", [False, True])
def test_fits_in_two_threads_are_bitwise_those_of_one(solver, sparse, handoffs):
    rng = np.random.default_rng(2)
    X = sp.random(300, 40, density=0.1, format="csr", random_state=rng)
    X = X if sparse else X.toarray()
    y = rng.integers(0, 3, 300)

    def run():
        return _fit_quietly(MLPScratchClassifier((16,), solver=solver, max_iter=4,
                                                 batch_size=64, random_state=0), X, y)

    one = _in_threads(1, run)
    assert handoffs[0] == 0
    two = _in_threads(2, run)
    # a step per batch, and with sparse input a forward and a backward product (the
    # final weights' loss is shown finite by a bound, without a forward pass)
    assert handoffs[0] == 4 * 5 * (3 if sparse else 1)
    assert one.loss_curve_ == two.loss_curve_
    for a, b in zip(one.coefs_ + one.intercepts_, two.coefs_ + two.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_fits_in_several_user_threads_share_one_helper(handoffs):
    rng = np.random.default_rng(4)
    X = sp.random(200, 30, density=0.2, format="csr", random_state=rng)
    y = rng.integers(0, 2, 200)

    def fit():
        return _fit_quietly(MLPScratchClassifier((8,), max_iter=3, random_state=0), X, y)

    expected = _in_threads(1, fit)
    with _blas_allows(2):
        with ThreadPoolExecutor(3) as users:
            fits = list(users.map(lambda _: fit(), range(3)))
    assert handoffs[0] > 0
    helpers = [t for t in threading.enumerate() if t.name.startswith(_threads._NAME)]
    assert len(helpers) == 1
    for est in fits:
        assert est.loss_curve_ == expected.loss_curve_
        np.testing.assert_array_equal(est.coefs_[0], expected.coefs_[0])


def test_an_error_in_either_half_reaches_the_caller_after_both_ended():
    ended = []

    def fails_in(bad_lo):
        def fn(lo, hi):
            if lo == bad_lo:
                raise RuntimeError(f"half {lo}")
            ended.append(lo)
        return fn

    with _blas_allows(2):
        for bad in (0, 5):
            ended.clear()
            with pytest.raises(RuntimeError, match=f"half {bad}"):
                _threads.run_halves(fails_in(bad), 10, True)
            assert ended == [5 - bad]  # the other half ran to its end


def test_work_split_inside_the_helper_runs_there_whole():
    inner = []

    def outer(lo, hi):
        _threads.run_halves(lambda a, b: inner.append((a, b)), hi - lo, True)

    with _blas_allows(2):
        _threads.run_halves(outer, 10, True)
    # the caller's half split again; the helper's, nested, ran whole instead of
    # waiting on itself
    assert sorted(inner) == [(0, 2), (0, 5), (2, 5)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_helper_thread(handoffs):
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((120, 5)), rng.standard_normal(120)
    with _blas_allows(2):
        expected = MLPScratchRegressor(hidden_layer_sizes=(8,), max_iter=3,
                                       random_state=0).fit(X, y)
        assert handoffs[0] > 0  # the parent's helper thread is running
        pid = os.fork()  # the parent's helper thread does not exist in the child
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                got = _fit_quietly(MLPScratchRegressor(
                    hidden_layer_sizes=(8,), max_iter=3, random_state=0), X, y)
                code = 0 if got.loss_curve_ == expected.loss_curve_ else 2
            finally:
                os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _judged(judge, seconds, n):
    """The ways ``n`` passes go, each taking ``seconds(split)`` per unit."""
    ways = []
    for _ in range(n):
        split = judge.choose()
        judge.record(split, seconds(split))
        ways.append(split)
    return ways


def test_passes_go_the_faster_way_and_now_and_then_the_other():
    # tried now and then: the split way every EXPLORE-th pass while the whole way is
    # faster, the whole way every EXPLORE_WHOLE-th while the split way is
    for split_time, faster, period in [(1.0, True, _threads.EXPLORE_WHOLE),
                                       (2.0, False, _threads.EXPLORE)]:
        ways = _judged(_threads._Judge(), lambda split: split_time if split else 1.5,
                       4 + 3 * period)
        assert ways[:4] == [True, False, True, False]  # both ways, twice each
        others = [i for i, way in enumerate(ways[4:]) if way != faster]
        assert others == [period - 1, 2 * period - 1, 3 * period - 1]


def test_passes_follow_a_change_in_which_way_is_faster():
    judge, explore = _threads._Judge(), _threads.EXPLORE
    assert _threads.EXPLORE_WHOLE % explore == 0  # the counts below rely on it
    ways = _judged(judge, lambda split: 1.0 if split else 1.5,
                   4 + _threads.EXPLORE_WHOLE)
    assert ways[4:] == [True] * (_threads.EXPLORE_WHOLE - 1) + [False]
    # the second core gets busy: three split passes show it (their median of five)
    ways = _judged(judge, lambda split: 2.0 if split else 1.5, 3 * explore)
    assert ways[:4] == [True, True, True, False]
    assert [i for i, way in enumerate(ways) if way][3:] == [
        explore - 1, 2 * explore - 1, 3 * explore - 1]
    # and free again: three of the passes sent the other way show that
    ways = _judged(judge, lambda split: 1.0 if split else 1.5, 4 * explore)
    assert [i for i, way in enumerate(ways) if way][:3] == [
        explore - 1, 2 * explore - 1, 3 * explore - 1]
    assert all(ways[3 * explore:])


def test_a_pass_that_may_not_be_split_runs_whole_unjudged(monkeypatch):
    monkeypatch.setattr(_threads, "_judges", collections.defaultdict(_threads._Judge))
    got = []
    with _blas_allows(1):
        _threads.timed_split("kind", 100, 10, got.append)
    with _blas_allows(2):
        _threads.timed_split("kind", 9, 10, got.append)
    assert got == [False, False]
    assert not _threads._judges
    with _blas_allows(2):
        for _ in range(3):
            _threads.timed_split("kind", 100, 10, got.append)
        _threads.timed_split("kind", 200, 10, got.append)  # judged apart
        _threads.timed_split("other", 100, 10, got.append)
    assert got[2:] == [True, False, True, True, True]
    assert [len(t) for t in _threads._judges["kind", 7].times] == [1, 2]
    assert [len(t) for t in _threads._judges["kind", 8].times] == [0, 1]


@pytest.mark.parametrize("sparse", [False, True])
def test_fits_whose_passes_go_both_ways_are_bitwise_those_of_one_thread(
        sparse, monkeypatch):
    monkeypatch.setattr(solvers, "PARALLEL_STEP", 8)
    monkeypatch.setattr(network, "PARALLEL_SPARSE", 8)
    monkeypatch.setattr(_threads, "_judges", collections.defaultdict(_threads._Judge))
    # every other pass the other way
    monkeypatch.setattr(_threads, "EXPLORE", 2)
    monkeypatch.setattr(_threads, "EXPLORE_WHOLE", 2)
    ways = []
    choose = _threads._Judge.choose
    monkeypatch.setattr(_threads._Judge, "choose",
                        lambda self: ways.append(choose(self)) or ways[-1])
    rng = np.random.default_rng(5)
    X = sp.random(300, 40, density=0.1, format="csr", random_state=rng)
    X = X if sparse else X.toarray()
    y = rng.integers(0, 3, 300)

    def run():
        return _fit_quietly(MLPScratchClassifier((16,), max_iter=4, batch_size=64,
                                                 random_state=0), X, y)

    one = _in_threads(1, run)
    assert not ways
    two = _in_threads(2, run)
    assert len(ways) == 4 * 5 * (3 if sparse else 1)
    assert 0 < sum(ways) < len(ways)
    assert one.loss_curve_ == two.loss_curve_
    for a, b in zip(one.coefs_ + one.intercepts_, two.coefs_ + two.intercepts_):
        np.testing.assert_array_equal(a, b)




# ------------------------------------------------- one BLAS thread for small products
_numpy_blas_threads = _threads._blas_threads


@pytest.fixture
def blas_two():
    """numpy's BLAS allowed two threads (the suite runs at one)."""
    with threadpool_limits(limits=2, user_api="blas"):
        if _numpy_blas_threads() < 2:
            pytest.skip("numpy's BLAS cannot run two threads here")
        if not _threads.process_wide_blas_limit():
            pytest.skip("numpy's BLAS is not a pthreads OpenBLAS")
        yield


@pytest.fixture
def batch_threads(monkeypatch):
    """numpy's BLAS thread count at each mini-batch of the test's fits; ``hooks``: a
    function called first at each batch, with the batch's number."""
    seen, hooks, original = [], [], network.Network.data_grad

    def data_grad(self, *args, **kwargs):
        seen.append(_numpy_blas_threads())
        for hook in hooks:
            hook(len(seen))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(network.Network, "data_grad", data_grad)
    return seen, hooks


RNG = np.random.default_rng(0)
X_SMALL, Y_SMALL = RNG.standard_normal((200, 8)), RNG.integers(0, 3, 200)
N_PARAMS = 8 * 10 + 10 * 3 + 10 + 3  # of the (10,) network on X_SMALL, Y_SMALL


def _small(**params):
    # 10 batches per epoch; the largest product 20 x 8 x 10 multiply-adds
    return MLPScratchClassifier(**dict(dict(hidden_layer_sizes=(10,), batch_size=20,
                                            max_iter=2, random_state=0), **params))


def _small_fit(X=X_SMALL, y=Y_SMALL, **params):
    return _fit_quietly(_small(**params), X, y)


def test_fits_of_small_products_run_blas_in_one_thread_and_put_it_back(
        blas_two, batch_threads):
    seen, hooks = batch_threads
    est = _small_fit()
    assert est._network.n_params == N_PARAMS
    assert seen == [1] * 20
    assert _numpy_blas_threads() == 2
    # bitwise the fit of BLAS at one thread all along
    with threadpool_limits(limits=1, user_api="blas"):
        one = _small_fit()
    assert est.loss_curve_ == one.loss_curve_
    for a, b in zip(est.coefs_ + est.intercepts_, one.coefs_ + one.intercepts_):
        np.testing.assert_array_equal(a, b)
    # put back by a fit that fails
    failing = len(seen) + 5

    def fail(batch):
        if batch == failing:
            raise RuntimeError("failed in a batch")

    hooks.append(fail)
    with pytest.raises(RuntimeError, match="failed in a batch"):
        _small_fit()
    assert _numpy_blas_threads() == 2
    hooks.clear()
    # continued fits and fits with early stopping take it too
    seen.clear()
    _fit_quietly(est.set_params(warm_start=True), X_SMALL, Y_SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _small(batch_size=10).partial_fit(X_SMALL, Y_SMALL, classes=[0, 1, 2])  # 20
    # 180 training rows: 9 batches per epoch
    _small_fit(early_stopping=True, n_iter_no_change=100)
    assert seen == [1] * (20 + 20 + 18)
    assert _numpy_blas_threads() == 2


def test_fits_in_threads_share_the_limit_whichever_ends_first(blas_two, batch_threads):
    seen, hooks = batch_threads
    first_waits, second_started, first_ended = (threading.Event() for _ in range(3))
    by_thread = collections.defaultdict(list)

    def pace(batch):
        name = threading.current_thread().name
        by_thread[name].append(seen[batch - 1])
        if name == "first" and len(by_thread[name]) == 3:
            first_waits.set()
            assert second_started.wait(10)  # the second starts under the first's limit
        if name == "second" and len(by_thread[name]) == 3:
            second_started.set()
            assert first_ended.wait(10)  # ... and trains on after the first has ended

    hooks.append(pace)
    fits = {}

    def run(name):
        fits[name] = _small_fit()
        if name == "first":
            first_ended.set()

    first = threading.Thread(target=run, args=("first",), name="first")
    first.start()
    assert first_waits.wait(10)
    second = threading.Thread(target=run, args=("second",), name="second")
    second.start()
    first.join(20)
    second.join(20)
    assert set(fits) == {"first", "second"}
    assert by_thread["first"] == [1] * 20 and by_thread["second"] == [1] * 20
    assert _numpy_blas_threads() == 2
    with ThreadPoolExecutor(3) as pool:  # and many at once
        list(pool.map(lambda seed: _small_fit(random_state=seed), range(6)))
    assert seen[-120:] == [1] * 120
    assert _numpy_blas_threads() == 2


@pytest.mark.parametrize("case", [
    # the largest product of a batch above SMALL_PRODUCT (here 20 x 8 x 10 = 1,600)
    "large_products",
    "sparse_input",
    # an optimizer step long enough to run split (from PARALLEL_STEP parameters on)
    "long_steps",
    "few_batches_fit",
    "few_batches_partial_fit",
    # a BLAS whose limit holds per thread
    "openmp_blas",
])
def test_other_fits_leave_blas_as_it_is(case, blas_two, batch_threads, monkeypatch):
    seen, _ = batch_threads
    from sknn_scratch import _base
    if case == "large_products":
        monkeypatch.setattr(_base, "SMALL_PRODUCT", 20 * 8 * 10 - 1)
        _small_fit()
    elif case == "sparse_input":
        _small_fit(sp.csr_matrix(X_SMALL))
    elif case == "long_steps":
        monkeypatch.setattr(solvers, "PARALLEL_STEP", N_PARAMS)
        _small_fit()
    elif case == "few_batches_fit":
        _small_fit(max_iter=1, batch_size=14)  # 15 batches
    elif case == "few_batches_partial_fit":
        _small(batch_size=14).partial_fit(X_SMALL, Y_SMALL, classes=[0, 1, 2])
    else:
        monkeypatch.setattr(_threads, "process_wide_blas_limit", lambda: False)
        _small_fit()
    assert seen and set(seen) == {2}
    assert _numpy_blas_threads() == 2


def test_the_limit_is_at_the_edges_it_names(blas_two, batch_threads, monkeypatch):
    seen, _ = batch_threads
    from sknn_scratch import _base
    monkeypatch.setattr(_base, "SMALL_PRODUCT", 20 * 8 * 10)  # at the product
    monkeypatch.setattr(solvers, "PARALLEL_STEP", N_PARAMS + 1)
    _small_fit(max_iter=1, batch_size=13)  # 16 batches
    assert seen and set(seen) == {1}


def test_ctrl_c_during_a_limit_change_comes_after_it(monkeypatch):
    from sknn_scratch._processes import _SharedLimit, numpy_blas_pool
    limit = _SharedLimit(numpy_blas_pool)

    class Interrupted:  # Ctrl-C in the middle of setting and of restoring the limit
        def limit(self, limits):
            signal.raise_signal(signal.SIGINT)
            return self

        def restore_original_limits(self):
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(limit, "_pool", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        limit.acquire()
    assert limit._users == 1 and limit._limiter is not None  # done, then interrupted
    with pytest.raises(KeyboardInterrupt):
        limit.release()
    assert limit._users == 0 and limit._limiter is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_process_forked_while_a_limit_is_held_starts_with_none():
    from sknn_scratch._processes import _SharedLimit, numpy_one_thread
    numpy_one_thread.acquire()
    try:
        with _SharedLimit._lock:  # as if another thread were changing a limit
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the forked process
                ok = (numpy_one_thread._users == 0
                      and _SharedLimit._lock.acquire(timeout=5))
                os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        numpy_one_thread.release()
