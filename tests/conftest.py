"""Make the repository root importable so the tests run without installing."""

import os
import signal
import sys
from pathlib import Path

import pytest

# scikit-learn's check_array_api_input needs scipy's array API support, which scipy
# reads from the environment when it is first imported (below): without it the check
# is skipped, for all 14 configurations of the estimators
os.environ.setdefault("SCIPY_ARRAY_API", "1")

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# The tests fit small networks on small data, where multi-threaded BLAS costs far more
# in thread hand-offs than it saves (tens of times slower on a busy machine). numpy and
# scipy each bring their own BLAS: load both, then limit them.
import scipy.linalg  # noqa: E402,F401
import scipy.optimize  # noqa: E402,F401
from threadpoolctl import threadpool_limits  # noqa: E402

threadpool_limits(limits=1, user_api="blas")


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """Python's own Ctrl-C handler (KeyboardInterrupt) for every test, as a user at a
    terminal has it: the interpreter installs it only when it starts with SIGINT not
    ignored, and a command run in the background of a non-interactive shell (as a CI
    script may run the suite) starts with it ignored, where the tests of Ctrl-C would
    see nothing to hold back."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
