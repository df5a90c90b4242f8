"""The training pass works in its preallocated buffers: no batch-sized temporaries."""

import tracemalloc

import numpy as np
import pytest

from sknn_scratch import activations
from sknn_scratch.losses import LOSSES
from sknn_scratch.network import Network

N_FEATURES, HIDDEN, BATCH = 8, (64, 32), 1024


def _network(hidden_activation):
    units = [N_FEATURES, *HIDDEN, 1]
    acts = [activations.get(hidden_activation) for _ in HIDDEN]
    return Network(units, [*acts, activations.Sigmoid()],
                   LOSSES["binary_log_loss"](), np.float64)


def _batch(rng, n=BATCH):
    X = rng.standard_normal((n, N_FEATURES))
    Y = (rng.random((n, 1)) < 0.5).astype(np.float64)
    return X, Y


@pytest.mark.parametrize("hidden_activation", ["relu", "gelu"])
@pytest.mark.parametrize("n_rows", [BATCH, BATCH - 3])
def test_activation_shares_the_pre_activation_buffer_when_it_can(hidden_activation,
                                                                   n_rows):
    net = _network(hidden_activation)
    net._workspace(BATCH)  # allocated for the full batch, then asked for fewer rows
    Zs, As, Ds, masks, ones = net._workspace(n_rows)
    for z, a, d, mask, act in zip(Zs, As, Ds, masks, net.activations):
        assert z.shape[0] == a.shape[0] == d.shape[0] == n_rows
        # a is z itself (one object) unless the derivative needs z kept apart
        assert (a is z) == (not act.needs_input)
        assert act.needs_input == (not np.shares_memory(a, z))
    # a hidden ReLU layer's delta is written over its activations, keeping a mask
    relu = hidden_activation == "relu"
    for d, a, mask in zip(Ds[:-1], As[:-1], masks[:-1]):
        assert (d is a) == relu
        assert (mask is not None) == relu
        if relu:
            assert mask.dtype == bool and mask.shape == a.shape
    assert not np.shares_memory(Ds[-1], As[-1]) and masks[-1] is None


def test_a_relu_subclass_with_its_own_derivative_gets_a_delta_buffer():
    class Clipped(activations.ReLU):
        def derivative(self, z):
            return ((z > 0) & (z < 6)).astype(z.dtype)

        def backward_(self, delta, z, a):
            delta *= self.derivative(z)
            return delta

    class Shifted(activations.ReLU):  # the same derivative, said so
        mask_derivative = True

    assert activations.ReLU.mask_derivative
    assert not Clipped.mask_derivative and Shifted.mask_derivative
    net = Network([N_FEATURES, 16, 1], [Clipped(), activations.Sigmoid()],
                  LOSSES["binary_log_loss"](), np.float64)
    _, As, Ds, masks, _ = net._workspace(10)
    assert Ds[0] is not As[0] and masks[0] is None


def test_a_training_pass_allocates_no_batch_sized_array():
    rng = np.random.default_rng(0)
    net = _network("relu")
    params = rng.standard_normal(net.n_params) * 0.1
    grad = np.empty_like(params)
    X, Y = _batch(rng)
    net.loss_grad(params, X, Y, None, 1e-4, grad)  # first call allocates the buffers
    tracemalloc.start()
    try:
        net.loss_grad(params, X, Y, None, 1e-4, grad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    layer_buffer = BATCH * HIDDEN[0] * 8
    # what is left: ReLU masks (1 byte per unit) and numpy's fixed-size casting buffer
    # (8192 elements) for multiplying by them, the loss on one output column, the L2
    # scratch; a copy of a layer's buffer would be at least layer_buffer
    assert peak < layer_buffer / 2, (peak, layer_buffer)


@pytest.mark.parametrize("hidden_activation", ["relu", "gelu", "prelu"])
@pytest.mark.parametrize("n_rows", [BATCH, BATCH - 3])
def test_fortran_ordered_buffers_give_the_gradient_of_c_ordered_ones(hidden_activation,
                                                                      n_rows):
    rng = np.random.default_rng(1)
    units = [N_FEATURES, 48, *HIDDEN, 1]  # two hidden layers after the first
    acts = [activations.get(hidden_activation) for _ in units[1:-1]]
    nets = [Network(units, [*acts, activations.Sigmoid()],
                    LOSSES["binary_log_loss"](), np.float64) for _ in range(2)]
    assert nets[0]._fortran == [False, True, True, False]  # float64's choice
    nets[1]._fortran = [False] * 4
    params = rng.standard_normal(nets[0].n_params) * 0.3
    X, Y = _batch(rng)
    grads, losses = [], []
    for net in nets:
        net._workspace(BATCH)  # allocated for the full batch, then asked for fewer rows
        Zs, _, Ds, masks, _ = net._workspace(n_rows)
        order = "F" if net is nets[0] else "C"
        assert all(z.flags[order + "_CONTIGUOUS"] for z in Zs[1:-1])
        assert all(d.flags[order + "_CONTIGUOUS"] for d in Ds[1:-1])
        grad = np.empty_like(params)
        losses.append(net.loss_grad(params, X[:n_rows], Y[:n_rows], None, 1e-3, grad))
        grads.append(grad)
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-13)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_rows", [BATCH, BATCH - 3])
@pytest.mark.parametrize("output", [("softmax", "log_loss", 4),
                                    ("sigmoid", "binary_log_loss", 3),
                                    ("identity", "squared_error", 2)],
                         ids=["softmax", "multi-label", "two-targets"])
def test_an_output_layer_of_several_units_in_fortran_order_gives_the_same_gradient(
        output, n_rows, dtype):
    """Several output units: the output layer's buffers are in Fortran order (softmax
    and the losses reduce rows), and the gradient is that of C-ordered buffers, with
    targets in either order."""
    act_name, loss_name, n_out = output
    rng = np.random.default_rng(2)
    units = [N_FEATURES, 16, n_out]
    nets = [Network(units, [activations.ReLU(), activations.get(act_name)],
                    LOSSES[loss_name](), dtype) for _ in range(2)]
    assert nets[0]._fortran[-1]
    nets[1]._fortran = [False, False]
    params = (rng.standard_normal(nets[0].n_params) * 0.3).astype(dtype)
    X = rng.standard_normal((n_rows, N_FEATURES)).astype(dtype)
    if act_name == "softmax":
        Y = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, n_rows)]
    else:
        Y = (rng.random((n_rows, n_out)) < 0.5).astype(dtype)
    results = []
    for net, y in zip(nets, (np.asfortranarray(Y), Y)):
        net._workspace(BATCH)
        Zs, _, Ds, _, _ = net._workspace(n_rows)
        order = "F" if net is nets[0] else "C"
        assert Zs[-1].flags[order + "_CONTIGUOUS"] and Ds[-1].flags[order + "_CONTIGUOUS"]
        grad = np.empty_like(params)
        results.append((net.loss_grad(params, X, y, None, 1e-3, grad), grad))
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5,
                                                                         atol=1e-6)
    np.testing.assert_allclose(results[0][0], results[1][0], **tol)
    np.testing.assert_allclose(results[0][1], results[1][1], **tol)


def test_one_output_unit_keeps_c_order():
    assert _network("relu")._fortran[-1] is False


@pytest.mark.parametrize("n_cols, dtype", [(4, bool), (3, np.float32), (1, bool)])
def test_gathered_targets_are_in_the_order_of_the_output_layer(n_cols, dtype):
    """A batch's targets come in Fortran order when they have several columns, as the
    output layer's buffers do, whatever the rows, cast to the input's dtype."""
    from sknn_scratch._base import _BatchGatherer
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 3)).astype(np.float32)
    Y = (rng.standard_normal((50, n_cols)) > 0).astype(dtype)
    gather = _BatchGatherer(X, Y, None, 16)
    order = rng.permutation(50)
    for start, stop in [(0, 16), (16, 32), (48, 50)]:
        Xb, Yb, sw = gather(order, start, stop)
        assert Yb.flags.f_contiguous and Yb.dtype == np.float32 and sw is None
        np.testing.assert_array_equal(Yb, Y[order[start:stop]])
        np.testing.assert_array_equal(Xb, X[order[start:stop]])


@pytest.mark.parametrize("hidden_activation", ["relu", "tanh"])
def test_passes_prepared_once_follow_new_buffers_and_vectors(hidden_activation):
    """The per-layer steps a network prepares for a parameter vector, a gradient and
    a buffer set are rebuilt when any of them changes (more rows, released buffers,
    another vector): every gradient equals a fresh network's."""
    rng = np.random.default_rng(0)
    net = _network(hidden_activation)
    params = [0.3 * rng.standard_normal(net.n_params) for _ in range(2)]

    def data_grad(net, flat, X, Y):
        grad = np.empty_like(flat)
        loss, _ = net.data_grad(flat, X, Y, None, float(len(X)), grad)
        return loss, grad

    for n_rows, release in [(16, False), (16, False), (40, False), (7, False),
                            (40, True), (16, False)]:
        if release:
            net.release()
        X, Y = _batch(rng, n_rows)
        for flat in params:
            grad = np.empty_like(flat)
            for _ in range(2):  # the second call reuses the prepared steps
                loss, _ = net.data_grad(flat, X, Y, None, float(n_rows), grad)
                expected_loss, expected = data_grad(_network(hidden_activation), flat,
                                                    X, Y)
                assert loss == expected_loss
                np.testing.assert_array_equal(grad, expected)
            assert net.data_value(flat, X, Y) == _network(
                hidden_activation).data_value(flat, X, Y)


def test_a_network_pickled_before_prepared_passes_existed_still_trains():
    rng = np.random.default_rng(1)
    net = _network("relu")
    flat = 0.3 * rng.standard_normal(net.n_params)
    X, Y = _batch(rng, 16)
    expected = np.empty_like(flat)
    net.data_grad(flat, X, Y, None, 16.0, expected)
    old = _network("relu")
    del old.__dict__["_plans"]  # as unpickled from a release without them
    grad = np.empty_like(flat)
    old.data_grad(flat, X, Y, None, 16.0, grad)
    np.testing.assert_array_equal(grad, expected)


@pytest.mark.parametrize("hidden_activation", ["relu", "tanh", "prelu"])
@pytest.mark.parametrize("second", [130, 160], ids=["160x130", "square"])
def test_a_relaid_network_gives_the_gradient_in_its_layout(hidden_activation, second):
    """An ``n_jobs`` team's network keeps wide float64 matrices between hidden layers
    in Fortran order: vectors move between the layouts whole, and its gradient is the
    estimator network's, in its own layout."""
    rng = np.random.default_rng(2)
    units = [N_FEATURES, 160, second, 3]
    acts = [activations.get(hidden_activation) for _ in units[1:-1]]
    net = Network(units, [*acts, activations.Softmax()], LOSSES["log_loss"](),
                  np.float64)
    layout = net.one_thread_layout()
    assert layout == [False, True, False]
    team = net.relaid(layout)
    params = 0.1 * rng.standard_normal(net.n_params)
    moved = net.relay(params, team)
    assert not np.array_equal(moved, params)  # the same values, elsewhere
    for here, there in zip(*(n.unpack(v) for n, v in ((net, params), (team, moved)))):
        for a, b in zip(here, there):
            if a is not None:
                np.testing.assert_array_equal(a, b)
    coefs = team.unpack(moved)[0]
    assert coefs[1].flags.f_contiguous and coefs[0].flags.c_contiguous
    np.testing.assert_array_equal(team.relay(moved, net), params)
    X = rng.standard_normal((50, N_FEATURES))
    Y = np.eye(3)[rng.integers(0, 3, 50)]
    grad, team_grad = np.empty_like(params), np.empty_like(params)
    loss = net.loss_grad(params, X, Y, None, 1e-3, grad)
    team_loss = team.loss_grad(moved, X, Y, None, 1e-3, team_grad)
    np.testing.assert_allclose(team_loss, loss, rtol=1e-13)
    np.testing.assert_allclose(team.relay(team_grad, net), grad, rtol=1e-10,
                               atol=1e-13)
    assert net._coef_fortran == ()  # the original is left as it was


def test_the_one_thread_layout_and_its_limits():
    def layout(hidden, dtype=np.float64):
        units = [N_FEATURES, *hidden, 1]
        acts = [activations.get("relu") for _ in hidden]
        return Network(units, [*acts, activations.Sigmoid()],
                       LOSSES["binary_log_loss"](), dtype).one_thread_layout()

    assert layout((256, 128)) == [False, True, False]
    assert layout((129, 129, 128, 5)) == [False, True, True, False, False]
    assert layout((128, 256)) == [False, False, False]  # 128 inputs or fewer: C
    assert layout((256, 128), np.float32) == [False, False, False]
    assert layout((300,)) == [False, False]  # the first layer and the output: C
    net = _network("relu")
    with pytest.raises(ValueError, match="first layer"):
        net.relaid([True, False, False])
