"""Scale-out: models are cheap to pickle; grid searches and cross-validation on joblib's
loky backend and on a dask cluster give the sequential run's scores to the last bit;
BLAS threads per worker are limited when workers share the machine."""

import importlib.util
import pickle
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from distributed import Client, LocalCluster, get_task_stream
from joblib import Parallel, cpu_count, delayed, parallel_config
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from threadpoolctl import threadpool_limits

from sknn_scratch import MLPScratchClassifier, MLPScratchRegressor
from sknn_scratch.activations import LeakyReLU
from sknn_scratch.initializers import HeNormal
from sknn_scratch.parallel import blas_threads, limit_blas_threads

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    keep = np.random.default_rng(0).permutation(len(y))[:450]
    return X[keep] / 16, y[keep]


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes: each fit is pickled, sent and run there."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as local, Client(local) as client:
        yield local, client


def _assert_same_weights(a, b):
    for wa, wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        assert np.array_equal(wa, wb)


def _weights_nbytes(est):
    return sum(a.nbytes for a in est.coefs_ + est.intercepts_)


# --- pickling -------------------------------------------------------------------------

def test_unfitted_pickle_is_small():
    assert len(pickle.dumps(MLPScratchClassifier())) < 2_000
    assert len(pickle.dumps(MLPScratchRegressor())) < 2_000


# a fitted model carries its weights once (the flat buffer behind coefs_/intercepts_ is
# not pickled) plus the optimizer state that partial_fit continues from: Adam's two
# moments, SGD's velocity, nothing for lbfgs; the rest (random state, curves) is small
@pytest.mark.parametrize("solver, state_copies",
                         [("adam", 2), ("sgd", 1), ("lbfgs", 0)])
@pytest.mark.parametrize("hidden", [(32,), (128, 64)])
def test_fitted_pickle_is_weights_plus_optimizer_state(digits, solver, state_copies,
                                                       hidden):
    X, y = digits
    est = MLPScratchClassifier(hidden, solver=solver, max_iter=5,
                               random_state=0).fit(X, y)
    size, weights = len(pickle.dumps(est)), _weights_nbytes(est)
    assert size < (1 + state_copies) * weights + 8_000
    restored = pickle.loads(pickle.dumps(est))
    assert np.array_equal(restored.predict_proba(X), est.predict_proba(X))
    _assert_same_weights(restored, est)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_pickled_model_continues_partial_fit_identically(digits, solver):
    X, y = digits
    est = MLPScratchClassifier((16,), solver=solver, random_state=0)
    est.partial_fit(X[:200], y[:200], classes=np.unique(y))
    restored = pickle.loads(pickle.dumps(est))
    est.partial_fit(X[200:], y[200:])
    restored.partial_fit(X[200:], y[200:])
    assert est.loss_ == restored.loss_
    _assert_same_weights(restored, est)


# --- identical results on loky and dask -----------------------------------------------

GRID = [
    {"activation": ["relu", "tanh", LeakyReLU(negative_slope=0.1)],
     "init": ["auto", "normal", HeNormal()]},
    {"solver": ["sgd", "lbfgs"], "activation": ["logistic"]},
]


def _search(X, y, n_jobs):
    est = MLPScratchClassifier((16,), max_iter=15, random_state=0)
    search = GridSearchCV(est, GRID, cv=StratifiedKFold(3), n_jobs=n_jobs,
                          return_train_score=True)
    return search.fit(X, y)


def _cross_validate(X, y, n_jobs):
    est = MLPScratchClassifier((16, 8), activation=LeakyReLU(), early_stopping=True,
                               max_iter=15, random_state=0)
    return cross_validate(est, X, y, cv=StratifiedKFold(4), n_jobs=n_jobs,
                          return_estimator=True, return_train_score=True)


@pytest.fixture(scope="module")
def sequential(digits):
    X, y = digits
    return _search(X, y, None), _cross_validate(X, y, None)


def _assert_same_search(got, ref):
    res, exp = got.cv_results_, ref.cv_results_
    score_keys = [k for k in exp if k.endswith("_score") and "time" not in k]
    assert {"split0_test_score", "mean_test_score", "rank_test_score"} <= {*score_keys}
    for key in score_keys:
        assert np.array_equal(res[key], exp[key]), key
    assert res["params"] == exp["params"]
    assert got.best_params_ == ref.best_params_ and got.best_score_ == ref.best_score_


def _assert_same_cross_validation(got, ref):
    for key in ["test_score", "train_score"]:
        assert np.array_equal(got[key], ref[key]), key
    for a, b in zip(got["estimator"], ref["estimator"]):
        assert a.n_iter_ == b.n_iter_ and a.loss_curve_ == b.loss_curve_
        _assert_same_weights(a, b)


# Bit-identical needs the same BLAS threads everywhere: a threaded BLAS may sum in
# another order (lbfgs on 3000 x 100 with (256, 128) units moves by 1e-16 from 1 to 2
# threads). The sequential run has 1 (conftest), so the workers get 1 too.

def test_loky_reproduces_the_sequential_run(digits, sequential):
    X, y = digits
    with parallel_config(backend="loky", inner_max_num_threads=1):
        search = _search(X, y, n_jobs=2)
        cv = _cross_validate(X, y, n_jobs=2)
    _assert_same_search(search, sequential[0])
    _assert_same_cross_validation(cv, sequential[1])


def test_dask_reproduces_the_sequential_run(digits, sequential, cluster):
    X, y = digits
    _, client = cluster
    limit_blas_threads(client, n_threads=1)
    with get_task_stream(client) as tasks, parallel_config(backend="dask"):
        search = _search(X, y, n_jobs=2)
        cv = _cross_validate(X, y, n_jobs=2)
    workers = {task["worker"] for task in tasks.data}
    assert workers == set(client.scheduler_info()["workers"])  # both did fits
    _assert_same_search(search, sequential[0])
    _assert_same_cross_validation(cv, sequential[1])


# --- BLAS threads per worker ----------------------------------------------------------

def test_loky_workers_share_the_cores():
    # joblib starts each of its n_jobs loky workers with cores // n_jobs BLAS threads;
    # the worker imports this package first, so scipy's BLAS is loaded and counted too
    threads = Parallel(n_jobs=2, backend="loky")(delayed(blas_threads)()
                                                 for _ in range(4))
    expected = max(1, cpu_count() // 2)
    for per_library in threads:
        assert len(per_library) >= 2  # numpy's and scipy's OpenBLAS
        assert set(per_library.values()) == {expected}


def test_limit_blas_threads_on_a_dask_cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as local, Client(local) as client:
        assert limit_blas_threads(client, n_threads=2) == dict.fromkeys(
            client.scheduler_info()["workers"], 2)
        for per_library in client.run(blas_threads).values():
            assert len(per_library) >= 2 and set(per_library.values()) == {2}
        # a task's own limit still holds (lbfgs's one scipy BLAS thread): setting the
        # count from the worker's event loop used to make that thread the only one
        # threadpoolctl let set it
        assert client.submit(_scipy_blas_threads_under_a_limit_of_1).result() == [1]
        # by default: the cores of the machine shared by its 2 single-threaded workers
        share = max(1, cpu_count() // 2)
        assert set(limit_blas_threads(client).values()) == {share}
        for per_library in client.run(blas_threads).values():
            assert set(per_library.values()) == {share}


def test_limit_blas_threads_sets_a_limit_a_task_has_set_before():
    """A task's plain threadpool_limits call made its thread the only one threadpoolctl
    let set the count: the limit did nothing, and the count it returned was the one
    asked for, not the workers'."""
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as local, Client(local) as client:
        client.submit(_limit_blas_to_1_for_good).result()
        assert set(client.run(blas_threads).popitem()[1].values()) == {1}
        assert list(limit_blas_threads(client, n_threads=2).values()) == [2]
        assert set(client.run(blas_threads).popitem()[1].values()) == {2}


def _limit_blas_to_1_for_good():
    threadpool_limits(limits=1, user_api="blas")


def test_an_n_jobs_fit_in_a_parallel_worker_trains_in_one_process(digits, cluster):
    """As joblib runs a Parallel nested in its workers: the workers already keep the
    cores busy, and a team in each used to fork more processes than cores, silently."""
    X, y = digits
    fits = Parallel(n_jobs=2)(delayed(_fit_recording_warnings)(X, y, n_jobs)
                              for n_jobs in (2, None))
    _, client = cluster
    fits.append(client.submit(_fit_recording_warnings, X, y, 2, pure=False).result())
    (two, warned), (one, quiet), (on_dask, warned_dask) = fits
    assert two == one == on_dask  # the loss curves: one process, as n_jobs=None
    assert quiet == []
    assert [w for w in warned if "in a joblib worker" in w]
    assert [w for w in warned_dask if "in a dask worker" in w]


def test_an_n_jobs_fit_in_a_multiprocessing_pool_worker_trains_in_one_process(digits):
    """A Pool's workers are daemonic processes: neither joblib's nor dask's, they
    used to fork a team each, 4 busy processes on 2 cores, with no word."""
    import multiprocessing
    X, y = digits
    with multiprocessing.get_context("fork").Pool(2) as pool:
        fits = pool.starmap(_fit_recording_warnings, [(X, y, 2), (X, y, None)])
    (two, warned), (one, quiet) = fits
    assert two == one and quiet == []
    assert [w for w in warned if "in a multiprocessing.Pool worker" in w]


def test_a_daemonic_process_of_ones_own_keeps_its_team(digits):
    """Only a Pool's workers are parallel workers: a process of the user's own, here
    daemonic, has the cores to itself and forks its team."""
    import multiprocessing
    X, y = digits
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    process = ctx.Process(target=_fit_reporting_its_team, args=(X, y, queue),
                          daemon=True)
    process.start()
    warned, shared_bytes = queue.get(timeout=120)
    process.join(timeout=60)
    assert process.exitcode == 0
    assert warned == [] and shared_bytes > 0  # a team, and not a word


def _fit_reporting_its_team(X, y, queue):
    from sknn_scratch import _processes
    _processes.last_team_memory["shared_bytes"] = 0
    _, warned = _fit_recording_warnings(X, y, 2)
    queue.put((warned, _processes.last_team_memory["shared_bytes"]))


def _fit_recording_warnings(X, y, n_jobs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = MLPScratchClassifier((16,), max_iter=3, random_state=0, n_jobs=n_jobs)
        est.fit(X, y)
    return est.loss_curve_, [str(w.message) for w in caught
                             if w.category is UserWarning]


def _scipy_blas_threads_under_a_limit_of_1():
    from sknn_scratch._threads import scipy_blas_pool

    with scipy_blas_pool().limit(limits=1):
        return [lib.num_threads for lib in scipy_blas_pool().lib_controllers]


@pytest.mark.parametrize("n_threads", [0, -1, 1.5, 2.0, True, "2", "x", float("nan"),
                                       float("inf"), [2]])
def test_limit_blas_threads_rejects_bad_counts(n_threads):
    """With a message that names n_threads ("x" or NaN used to fail in int())."""
    with pytest.raises((ValueError, TypeError), match="n_threads"):
        limit_blas_threads(client=None, n_threads=n_threads)


# --- the example ----------------------------------------------------------------------

def _load_example():
    path = ROOT / "examples" / "distributed_grid_search.py"
    spec = importlib.util.spec_from_file_location("distributed_grid_search", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_on_a_running_scheduler_matches_a_sequential_search(cluster):
    local, _ = cluster
    example = _load_example()
    result = example.main(["--quick", "--scheduler", local.scheduler_address])
    pipe, grid, X, y = example.search_space(quick=True)
    (n_threads,) = set(result["blas_threads"].values())
    with warnings.catch_warnings(), threadpool_limits(n_threads, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = GridSearchCV(pipe, grid, cv=StratifiedKFold(3)).fit(X, y)
    _assert_same_search(result["search"], ref)
    assert len(result["ranked"]) == 6 and result["ranked"][0][0] == 1
    assert set(result["blas_threads"]) == set(local.scheduler_info["workers"])


def test_example_starts_its_own_cluster():
    out = subprocess.run([sys.executable, str(ROOT / "examples" /
                                              "distributed_grid_search.py"), "--quick"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "2 workers" in out.stdout and "6 candidates x 3 folds" in out.stdout


def test_parallel_module_doctest():
    import doctest

    from sknn_scratch import parallel

    assert doctest.testmod(parallel).failed == 0


# --- the README -----------------------------------------------------------------------

def _readme_python_blocks(section):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = re.split(r"^## ", text, flags=re.M)
    (part,) = [p for p in body if p.startswith(section + "\n")]
    return re.findall(r"^```python\n(.*?)^```", part, flags=re.S | re.M)


def test_readme_scaling_out_runs_against_a_running_scheduler(cluster, monkeypatch):
    """The section's snippets run as written, but on the fixture's scheduler."""
    local, _ = cluster
    blocks = _readme_python_blocks("Scaling out")
    assert len(blocks) == 3 and '"tcp://scheduler:8786"' in blocks[1]
    namespace = {"__name__": "__readme__"}
    exec(compile(blocks[0], "README.md [Scaling out, block 1]", "exec"), namespace)
    loky_result = namespace["search"].cv_results_["mean_test_score"]
    code = blocks[1].replace("tcp://scheduler:8786", local.scheduler_address)
    exec(compile(code, "README.md [Scaling out, block 2]", "exec"), namespace)
    dask_result = namespace["search"].cv_results_["mean_test_score"]
    assert np.array_equal(loky_result, dask_result)


def test_readme_one_fit_in_two_processes_runs(capsys):
    """The section's n_jobs snippet runs as written and agrees with one process."""
    code = _readme_python_blocks("Scaling out")[2]
    namespace = {"__name__": "__readme__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 3 epochs on purpose
        exec(compile(code, "README.md [Scaling out, n_jobs]", "exec"), namespace)
    assert float(capsys.readouterr().out) < 1e-12
    one, two = namespace["one"], namespace["two"]
    assert one.loss_curve_ == pytest.approx(two.loss_curve_, rel=1e-12)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_a_model_loaded_read_only_trains_on(solver, tmp_path):
    """joblib.load(mmap_mode='r') maps the optimizer's moments read-only: partial_fit
    trains on copies of them, as the model saved would have (it raised 'output array is
    read-only', then, its undo having put back writable copies, trained on retry)."""
    import joblib
    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPScratchClassifier((16,), solver=solver, max_iter=3,
                                   random_state=0).fit(X / 16, y)
    joblib.dump(est, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib", mmap_mode="r")
    for model in (est, loaded):
        model.partial_fit(X / 16, y)
    np.testing.assert_array_equal(loaded.predict_proba(X / 16), est.predict_proba(X / 16))
