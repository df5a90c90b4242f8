"""In-place level-1 BLAS by dtype: ``y += a x`` and ``x *= a`` in one pass, no temporary.

Looked up by dtype at each use rather than stored on objects, because BLAS function
objects cannot be pickled.
"""

import numpy as np
from scipy.linalg import blas

AXPY_SCAL = {np.dtype(np.float64): (blas.daxpy, blas.dscal),
             np.dtype(np.float32): (blas.saxpy, blas.sscal)}
