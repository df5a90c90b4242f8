"""Forward and backward passes of a multi-layer perceptron on a flat parameter vector.

All parameters live in one contiguous vector laid out as
``[W_1, ..., W_L, b_1, ..., b_L, s_1, ...]`` (weights, biases, then the per-unit
parameters of learnable activations such as PReLU); the per-layer arrays are views into
it. The optimizers update the whole vector in one vectorized step, the L2 penalty is
one dot product over the weight block, and L-BFGS needs no packing.

This module knows nothing of scikit-learn: it takes validated arrays.
"""

import copy
import functools
import math

import numpy as np
import scipy.sparse as sp

from ._threads import run_halves, timed_split

try:  # scipy's kernels behind CSR @ dense, which can accumulate into an existing array
    from scipy.sparse._sparsetools import csc_matvecs, csr_matvecs
except ImportError:  # pragma: no cover - a scipy that moved them: use the public API
    csc_matvecs = csr_matvecs = None

# multiply-adds (stored entries x columns) from which a sparse product runs in two
# threads: 1,000,000 take 0.16 ms instead of 0.22 in the forward pass
PARALLEL_SPARSE = 1 << 19

# elements up to which OpenBLAS computes a dot product in one thread (squared_norm)
SHORT_DOT = 10_000


class Network:
    """Layer sizes, activations and loss of an MLP, and its passes over a batch.

    Parameters
    ----------
    layer_units : list of int
        ``[n_features, hidden_1, ..., n_outputs]``.
    activations : list of Activation
        One per hidden layer, then the output activation.
    loss : Loss
    dtype : numpy dtype
    """

    # prepared passes (see _plan); a class default, so that a network pickled before
    # they existed trains on
    _plans = ()
    # per layer, whether its coefficient matrix lies in Fortran order in the flat
    # vectors (see relaid); empty: all in C order, as in every estimator's network
    _coef_fortran = ()

    def __init__(self, layer_units, activations, loss, dtype):
        self.layer_units = list(layer_units)
        self.activations = list(activations)
        self.loss = loss
        self.dtype = np.dtype(dtype)
        pairs = list(zip(self.layer_units[:-1], self.layer_units[1:]))
        self.n_coefs = sum(i * o for i, o in pairs)
        sizes = [i * o for i, o in pairs] + [o for _, o in pairs]
        sizes += [o if act.learnable else 0
                  for act, (_, o) in zip(self.activations[:-1], pairs)]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.n_params = int(self._offsets[-1])
        self._shapes = pairs + [(o,) for _, o in pairs] + [(o,) for _, o in pairs]
        # hidden layers whose delta the backward pass writes over their activations
        self._masked = [act.mask_derivative and not act.learnable
                        for act in self.activations[:-1]] + [False]
        # float64 hidden layers after the first keep their batch buffers in Fortran
        # order: OpenBLAS's float64 kernels multiply 100 rows of a (256, 128) network
        # into it 11 % faster (126 -> 112 us) and the other products barely change;
        # in float32 it is slower. An output layer of several units does too, in any
        # dtype: softmax and the loss reduce each row, which numpy does fast over
        # contiguous columns, slowly over short contiguous rows (200 rows of 10
        # classes: softmax 9.5 us instead of 17.9, for 1.5 more in the product)
        last = self.n_layers - 1
        self._fortran = [(0 < i < last and self.dtype == np.float64)
                         or (i == last and self.layer_units[-1] > 1)
                         for i in range(self.n_layers)]
        self._work = None
        self._view_cache = []
        self._plans = []

    @property
    def n_layers(self):
        return len(self.layer_units) - 1

    def unpack(self, flat):
        """Views ``(coefs, intercepts, slopes)`` into ``flat``; ``slopes[i]`` may be None."""
        views = [
            flat[start:stop].reshape(shape) if stop > start else None
            for start, stop, shape in zip(self._offsets[:-1], self._offsets[1:],
                                          self._shapes)
        ]
        for i, fortran in enumerate(self._coef_fortran):
            if fortran:
                fan_in, fan_out = self._shapes[i]
                views[i] = views[i].reshape(fan_out, fan_in).T
        n = self.n_layers
        return views[:n], views[n:2 * n], views[2 * n:3 * n - 1]

    def relaid(self, fortran):
        """A copy of this network that finds coefficient matrix ``i`` in Fortran order
        in the flat vectors it is given where ``fortran[i]`` (C order elsewhere), with
        batch buffers of its own. :meth:`pack` and :meth:`unpack` move parameter vectors
        between the two layouts."""
        if fortran[0]:  # the first layer's products take X as it comes
            raise ValueError("The first layer's coefficients stay in C order.")
        net = self.with_own_buffers()
        net._coef_fortran = [bool(f) for f in fortran]
        return net

    def with_own_buffers(self):
        """A copy of this network with batch buffers (and cached views) of its own:
        for passes that may run while another thread runs passes of this one."""
        net = copy.copy(self)
        net._work, net._view_cache, net._plans = None, [], []
        return net

    def relay(self, flat, other, out=None):
        """``flat``, a vector in this network's layout, in ``other``'s (into ``out``,
        or a new vector): one plain copy where the layouts agree."""
        if _fortran_layers(self) != _fortran_layers(other):
            return other.pack(*self.unpack(flat), out=out)
        if out is None:
            return flat.copy()
        np.copyto(out, flat)
        return out

    def one_thread_layout(self):
        """``relaid``'s argument for products that run in one BLAS thread each (an
        ``n_jobs`` team): float64 matrices between two hidden layers of more than 128
        inputs in Fortran order. OpenBLAS's float64 kernels on this development
        machine (AVX-512) then run the three products of such a layer on a 100-row
        batch 3-6 % faster (256 x 128: 475 against 498 us), to the same values up to
        rounding (bitwise on that layer); with 128 inputs or fewer, and with two
        threads on 200 rows, 2-11 % slower."""
        last = self.n_layers - 1
        return [0 < i < last and self.dtype == np.float64 and self.layer_units[i] > 128
                for i in range(self.n_layers)]

    def _views(self, flat):
        """``unpack(flat)``, remembered for the two vectors the training loop reuses."""
        cache = self._view_cache
        for i, (arr, views) in enumerate(cache):
            if arr is flat:
                cache.insert(0, cache.pop(i))  # least recently used goes first
                return views
        views = self.unpack(flat)
        self._view_cache = [(flat, views)] + cache[:1]
        return views

    def release(self):
        """Drop the batch buffers and cached views: not worth keeping or pickling."""
        self._work = None
        self._view_cache = []
        self._plans = []

    def pack(self, coefs, intercepts, slopes=None, out=None):
        """Copy per-layer arrays into a flat vector (``out`` or a new one)."""
        flat = np.empty(self.n_params, self.dtype) if out is None else out
        views = self.unpack(flat)
        slopes = slopes if slopes is not None else [None] * (self.n_layers - 1)
        for dst_list, src_list in zip(views, (coefs, intercepts, slopes)):
            for dst, src in zip(dst_list, src_list):
                if dst is not None:
                    dst[...] = src
        return flat

    def predict(self, X, coefs, intercepts, slopes=None):
        """Network output for ``X`` from per-layer arrays (no training buffers)."""
        a = X
        for W, b, act, slope in zip(coefs, intercepts, self.activations,
                                    self._layer_slopes(slopes)):
            z = a @ W if sp.issparse(a) else np.dot(a, W)
            z += b
            a = activate_(act, z, slope)
        return a

    def _layer_slopes(self, slopes):
        """One entry per layer, output included: the learned slopes or None."""
        hidden = slopes if slopes is not None else [None] * (self.n_layers - 1)
        return [*hidden, None]

    def _workspace(self, n_rows):
        """Per-layer buffers ``(Z, A, D, masks)`` and ``ones`` for ``n_rows`` rows.

        Allocated for the largest batch and reused; the views for the last row count
        asked for are kept too, so a training loop pays for neither. A layer whose
        derivative is a mask of its activations (ReLU) has its delta written over them
        (``D[i] is A[i]``) and a boolean mask buffer, ``masks[i]``; the other layers
        have a delta buffer of their own and no mask. A layer's buffers are in Fortran
        order where ``self._fortran`` says so (C order otherwise), whatever the rows.
        """
        work = self._work
        units, fortran = self.layer_units[1:], self._fortran
        if work is None or work["rows"] < n_rows:
            Z = [np.empty(n_rows * u, self.dtype) for u in units]
            # activations that need z for their derivative keep a separate a
            A = [np.empty_like(z) if act.needs_input else z
                 for z, act in zip(Z, self.activations)]
            widest = max([u for u, m in zip(units, self._masked) if m], default=0)
            work = self._work = {
                "rows": n_rows,
                "Z": Z,
                "A": A,
                "D": [a if m else np.empty_like(z)
                      for z, a, m in zip(Z, A, self._masked)],
                "mask": np.empty(n_rows * widest, bool),  # one layer's at a time
                "ones": np.ones(n_rows, self.dtype),  # intercept gradients as a GEMV
                "views": (None, None),
            }
        n, views = work["views"]
        if n != n_rows:
            def shaped(flat, u, f):
                return (flat[:n_rows * u].reshape(u, n_rows).T if f
                        else flat[:n_rows * u].reshape(n_rows, u))
            Z = [shaped(z, u, f) for z, u, f in zip(work["Z"], units, fortran)]
            # the same view object where a is z (the forward pass tests `a is z`) and
            # where d is a
            A = [z if a is full else shaped(a, u, f)
                 for z, a, full, u, f in zip(Z, work["A"], work["Z"], units, fortran)]
            D = [a if m else shaped(d, u, f)
                 for a, d, m, u, f in zip(A, work["D"], self._masked, units, fortran)]
            masks = [shaped(work["mask"], u, f) if m else None
                     for u, m, f in zip(units, self._masked, fortran)]
            views = (Z, A, D, masks, work["ones"][:n_rows])
            work["views"] = (n_rows, views)
        return views

    def loss_grad(self, flat, X, Y, sw, alpha, grad):
        """Objective J at ``flat`` on the batch, gradient written into ``grad``.

        ``J = (1/sum w) sum_i w_i l_i + alpha / (2 sum w) ||W||^2``.
        """
        sw_sum = float(X.shape[0] if sw is None else sw.sum())
        l2 = float(alpha) / sw_sum  # a numpy scalar would run a float32 pass in float64
        loss, done = self.data_grad(flat, X, Y, sw, sw_sum, grad, l2)
        penalty = self.add_l2(flat, grad, l2, done) if alpha else 0.0
        return loss / sw_sum + 0.5 * alpha * penalty / sw_sum

    def data_value(self, flat, X, Y):
        """``sum_i l_i`` at ``flat`` on rows ``X``, through the training buffers."""
        forward, _, _ = self._plan(flat, None, X.shape[0])
        return self.loss.value(Y, _forward(X, forward))

    def data_finite(self, flat, X, Y, rows, first=0, last=None):
        """Whether :meth:`data_value` at ``flat`` is finite on rows ``first:last`` of
        ``X`` (all by default), computed ``rows`` rows at a time through the training
        buffers (as fast as a forward pass that allocates its outputs: 91 ms per epoch
        of the large benchmark case against 92; a sparse ``X`` is never sliced whole)."""
        last = X.shape[0] if last is None else last
        for start in range(first, last, rows):
            stop = min(start + rows, last)
            if not math.isfinite(self.data_value(flat, X[start:stop], Y[start:stop])):
                return False
        return True

    def surely_finite(self, flat, x_bound, y_bound, n_rows):
        """Whether a bound shows :meth:`data_value` finite at ``flat`` on any
        ``n_rows`` rows whose inputs and targets are at most ``x_bound`` and
        ``y_bound`` in absolute value; False when it cannot (too loose, or an
        activation or the loss gives no bound).

        Layer by layer, ``|z| <= fan_in max|a| max|W| + max|b|``, then the activation's
        :meth:`~sknn_scratch.activations.Activation.output_bound`; everything must stay
        a million times below the dtype's largest value (room for rounding).
        """
        coefs, intercepts, slopes = self.unpack(flat)
        limit = float(np.finfo(self.dtype).max) * 1e-6
        a = z = float(x_bound)
        layers = zip(coefs, intercepts, self.activations, self._layer_slopes(slopes))
        for W, b, act, slope in layers:
            z = a * W.shape[0] * abs_max(W) + abs_max(b)
            a = act.output_bound(z, slope) if z < limit else None  # False for NaN
            if a is None or not a < limit:
                return False
        return self.loss.surely_finite(a, z, float(y_bound),
                                       n_rows * self.layer_units[-1], limit)

    def data_grad(self, flat, X, Y, sw, sw_sum, grad, l2=0.0):
        """The data term on rows ``X`` of a batch whose weights sum to ``sw_sum``.

        Writes the gradient of ``(1/sw_sum) sum_i w_i l_i`` into ``grad`` and returns
        ``(sum_i w_i l_i, done)``: ``done`` leading coefficients of ``grad`` already
        hold their L2 term ``l2 * W`` as well (see :meth:`add_l2` for the others).
        """
        forward, backward, (z, delta, ones) = self._plan(flat, grad, X.shape[0])
        a = _forward(X, forward)
        loss = self.loss.value_and_delta(Y, a, z, self.activations[-1], sw, delta)
        delta *= 1.0 / sw_sum
        return loss, _backward(X, backward, ones, l2)

    def add_l2(self, flat, grad, l2, done=0):
        """``grad += l2 * W`` over the coefficients from ``done`` on; returns
        ``||W||^2``."""
        coefs = flat[:self.n_coefs]
        _add_scaled(grad[done:self.n_coefs], coefs[done:], l2)
        return squared_norm(coefs)

    def _plan(self, flat, grad, n_rows):
        """The passes over ``n_rows`` rows at ``flat``, the gradient into ``grad`` (None:
        forward only), as per-layer steps: ``(forward, backward, (z, delta, ones))``
        for :func:`_forward` and :func:`_backward`, and the output layer's buffers.

        Each step holds the views, bound functions and product orientation its layer
        needs, worked out once per parameter vector, gradient and buffer set (the two
        latest are remembered), not at every batch: 0.5 % of a large ``n_jobs=2`` epoch.
        """
        work = self._workspace(n_rows)
        for key, plan in self._plans:
            if key[0] is flat and key[1] is grad and key[2] is work:
                return plan
        coefs, intercepts, slopes = self._views(flat)
        Zs, As, Ds, masks, ones = work
        slopes = self._layer_slopes(slopes)
        forward = []
        for W, b, z, a, act, slope in zip(coefs, intercepts, Zs, As, self.activations,
                                          slopes):
            # z = a @ W; into a Fortran-ordered z, BLAS writes z.T = W.T @ a.T
            flipped = not z.flags.c_contiguous
            activate = (act.forward_ if slope is None else
                        functools.partial(_first_then, act.forward_param_, (slope,)))
            forward.append((W, W.T if flipped else None, z.T if flipped else None, b, z,
                            a, activate))
        backward = []
        if grad is not None:
            gcoefs, gintercepts, gslopes = self._views(grad)
            for i in range(self.n_layers - 1, -1, -1):
                delta = Ds[i]
                if i == 0:  # no delta into the input
                    backward.append((None, delta, gcoefs[0], gintercepts[0], coefs[0],
                                     None, None, None, None, None))
                    break
                d, mask = Ds[i - 1], masks[i - 1]
                flipped = not d.flags.c_contiguous
                if mask is not None:
                    # d is the layer's a: g'(z) = (a > 0) is kept first, and d is
                    # multiplied by the mask as uint8, which numpy casts to float
                    # faster than a bool
                    derivative = None
                else:
                    act = self.activations[i - 1]
                    derivative = (
                        functools.partial(_first_then, act.backward_,
                                          (Zs[i - 1], As[i - 1]))
                        if slopes[i - 1] is None else
                        functools.partial(_first_then, act.backward_param_,
                                          (Zs[i - 1], slopes[i - 1], gslopes[i - 1])))
                # g = a.T @ delta, or g.T = delta.T @ a into a Fortran-ordered g
                g_flipped = not gcoefs[i].flags.c_contiguous
                backward.append((
                    (delta.T, As[i - 1], gcoefs[i].T) if g_flipped else
                    (As[i - 1].T, delta, gcoefs[i]), delta, gcoefs[i], gintercepts[i],
                    # d = delta @ W.T, or d.T = W @ delta.T into a Fortran-ordered d
                    coefs[i] if flipped else coefs[i].T,
                    delta.T if flipped else delta, d.T if flipped else d, d,
                    mask, derivative))
        plan = (forward, backward, (Zs[-1], Ds[-1], ones))
        self._plans = [((flat, grad, work), plan), *self._plans[:1]]
        return plan


def _fortran_layers(net):
    """The layers whose coefficient matrix ``net`` finds in Fortran order."""
    return [i for i, fortran in enumerate(net._coef_fortran) if fortran]


def _first_then(method, rest, first):
    """``method(first, *rest)``: an activation's in-place pass with its buffers bound."""
    return method(first, *rest)


def _forward(X, steps):
    """The forward pass of :meth:`Network._plan`'s steps; the output activations."""
    a = X
    for W, w_t, out_t, b, z, a_out, activate in steps:
        if a is X and sp.issparse(X):  # only the input can be sparse
            _sparse_dot(X, W, z)
        elif out_t is None:
            np.dot(a, W, out=z)
        else:
            np.dot(w_t, a.T, out=out_t)
        z += b
        if a_out is not z:  # the backward pass needs z: keep it, activate a copy
            np.copyto(a_out, z)
        a = activate(a_out)
    return a


def _backward(X, steps, ones, l2):
    """Gradient of the data term along :meth:`Network._plan`'s steps; returns how many
    leading coefficient entries already hold their L2 term ``l2 * W`` too (the sparse
    first layer's)."""
    done = 0
    for g_product, delta, g_coef, g_intercept, W, left, out, d, mask, derivative in steps:
        if g_product is not None:
            np.dot(*g_product[:2], out=g_product[2])
        elif sp.issparse(X):
            # the sparse product accumulates: seeding it with the L2 term saves two
            # passes over the widest weights
            if l2:
                np.multiply(W, l2, out=g_coef)
            else:  # not 0 * W: that would turn an infinite weight into NaN
                g_coef[...] = 0
            _sparse_dot(X, delta, g_coef, transpose=True, accumulate=True)
            done = W.size
        else:
            np.dot(X.T, delta, out=g_coef)
        np.dot(ones, delta, out=g_intercept)
        if d is None:  # the first layer: no delta into the input
            break
        if mask is not None:
            np.greater(d, 0, out=mask)
        if left is delta:
            np.dot(delta, W, out=out)
        else:
            np.dot(W, left, out=out)
        if mask is not None:
            np.multiply(d, mask.view(np.uint8), out=d)
        else:
            derivative(d)
    return done


def squared_norm(w):
    """``||w||^2`` of a vector, as a float: np.dot over slices of ``SHORT_DOT``,
    summed in order."""
    # OpenBLAS's threaded dot product, on a longer vector, stalls between two matrix
    # products (4x slower fits on digits with 2 threads). Its one-thread one beats
    # einsum (7,400 elements: 1.0 us against 3.1), on slices of a long vector too
    # (500,100 float64 weights: 82 us against 124; 58,496: 9.3 against 15.5)
    if len(w) <= SHORT_DOT:
        return float(np.dot(w, w))
    total = 0.0
    for start in range(0, len(w), SHORT_DOT):
        part = w[start:start + SHORT_DOT]
        total += float(np.dot(part, part))
    return total


def abs_max(A):
    """``max |A|`` as a float (NaN if ``A`` has one), without a temporary; 0 if empty.
    A sparse matrix's stored entries only."""
    A = A.data if sp.issparse(A) else A
    if A.size == 0:
        return 0.0
    if A.dtype == bool:
        return float(A.any())
    return float(max(A.max(), -A.min()))  # numpy's max and min propagate NaN


def activate_(activation, z, slope=None):
    """``g(z)`` in place, with the layer's learned per-unit slopes when it has them."""
    if slope is None:
        return activation.forward_(z)
    return activation.forward_param_(z, slope)


def _add_scaled(out, x, c, chunk=1 << 13):
    """``out += c * x`` in place, through a cache-sized scratch, not a weight-sized one."""
    if c == 0:
        return
    # allocated per call, not kept: a scratch alive all fit long raised its peak
    scratch = np.empty(min(chunk, len(x)), x.dtype)
    for start in range(0, len(x), chunk):
        part = scratch[:min(chunk, len(x) - start)]
        np.multiply(x[start:start + chunk], c, out=part)
        out[start:start + chunk] += part


def _sparse_dot(A, B, out, transpose=False, accumulate=False):
    """``out[...] = A @ B`` (``A.T @ B`` if ``transpose``; ``out +=`` if ``accumulate``)
    for sparse ``A``.

    For CSR ``A`` the product goes straight into ``out``: the public ``A @ B`` would
    allocate a result as large as the first layer's weights at every batch. A large
    product runs in two threads, each on its own rows of ``out``.
    """
    direct = (csr_matvecs is not None and A.format == "csr"
              and A.dtype == B.dtype == out.dtype
              and B.flags.c_contiguous and out.flags.c_contiguous)
    if not direct:
        product = (A.T if transpose else A) @ B
        if accumulate:
            out += product
        else:
            out[...] = product
        return out
    if not accumulate:
        out[...] = 0  # the kernels accumulate
    n_vecs = B.shape[1]

    def product(split):
        if transpose and not split:
            # A.T of a CSR is a CSC: one pass, scattering into the rows of out
            csc_matvecs(A.shape[1], A.shape[0], n_vecs, A.indptr, A.indices, A.data,
                        B.ravel(), out.ravel())
            return
        # rows of out in two threads need A.T as a CSR; each output entry still sums
        # its terms in the same order (A's rows ascending), so the result is the same
        M = A.T.tocsr() if transpose else A
        indptr, indices, data, b = M.indptr, M.indices, M.data, B.ravel()

        def rows(lo, hi):
            csr_matvecs(hi - lo, M.shape[1], n_vecs, indptr[lo:], indices, data, b,
                        out[lo:hi].ravel())

        run_halves(rows, M.shape[0], split)

    timed_split(("A.T @ B" if transpose else "A @ B", out.dtype), A.nnz * n_vecs,
                PARALLEL_SPARSE, product)
    return out
