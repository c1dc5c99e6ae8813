"""The engine on graphs (several inputs and outputs, merges, shared tensors) against
the NumPy reference of whole graphs (fastrnn.reference.graph), and the reference
against finite differences.

Graphs are drawn at random (tests/graphs.py) over every node kind the engine
has and lowered straight to the engine, so these tests do not depend on the
layer classes: outputs, each output's loss, the total, every weight's gradient
(with dropout on, the masks known to the reference), training steps, and one
call per epoch against one per batch.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastrnn import _engine
from fastrnn.reference import graph as ref
from fastrnn.reference.activations import canonical_activation

from finite_diff import check_gradient, kink_regions
from graphs import engine_of, graphs, make_data, weights_of
from tolerances import assert_close, tol


def problem(drawn, B, seed, dtype="float64"):
    graph, shapes, kinds = drawn
    rng = np.random.default_rng(seed)
    xs = make_data(shapes, kinds, B, rng)
    weights = weights_of(graph, xs, rng)
    outs, _ = ref.forward(graph, weights, xs)
    ys = [rng.uniform(-1, 1, o.shape) for o in outs]
    engine, params, grads, x_engine = engine_of(graph, weights, xs, dtype)
    return graph, xs, ys, weights, engine, params, grads, x_engine


def flat(arrays):
    return np.concatenate([np.ravel(a) for a in arrays] + [np.zeros(0)])


def losses_for(n):
    return ["mse" if k % 2 == 0 else "mae" for k in range(n)], [1.0 + 0.5 * k for k in range(n)]


@settings(max_examples=80, deadline=None)
@given(drawn=graphs(), B=st.integers(1, 4), seed=st.integers(0, 2**16),
       dtype=st.sampled_from(["float64", "float32"]))
def test_outputs_losses_and_gradients_match_the_reference(drawn, B, seed, dtype):
    graph, xs, ys, weights, engine, params, grads, x_engine = problem(drawn, B, seed, dtype)
    dt = np.dtype(dtype)
    outs = [np.empty(y.shape, dtype) for y in ys]
    engine.predict(x_engine, outs, 3)
    ref_outs, _ = ref.forward(graph, weights, xs)
    for o, r in zip(outs, ref_outs):
        assert_close(o, r, "forward", dt)
    losses, loss_weights = losses_for(len(ys))
    engine.set_losses([_engine.LOSSES[n] for n in losses], loss_weights)
    y_engine = [np.ascontiguousarray(y, dtype) for y in ys]
    # gradients() runs in training mode: dropout draws its first masks (counter 0)
    total = engine.gradients(x_engine, y_engine)
    ref_total, ref_each, ref_grads = ref.loss_and_gradients(graph, weights, xs, ys, losses,
                                                            loss_weights, training=True)
    assert_close(total, ref_total, "forward", dt)
    assert_close(engine.output_losses, ref_each, "forward", dt)
    if dtype == "float64":      # float32 rounding may flip mae's sign(0)
        assert_close(grads, flat(ref_grads), "backward", dt)
    # evaluate: the same losses without dropout, in chunks of 2
    value = engine.evaluate(x_engine, y_engine, 2)
    ref_value, ref_each, _ = ref.loss_and_gradients(graph, weights, xs, ys, losses,
                                                    loss_weights, training=False)
    assert_close(value, ref_value, "forward", dt)
    assert_close(engine.output_losses, ref_each, "forward", dt)


SGD = (_engine.OPTIMIZERS["sgd"], [0, 0, 1e-7, 0, 0, 0, 0], None, 0, _engine.CLIPS[None], 0.0,
       [0])


@settings(max_examples=30, deadline=None)
@given(drawn=graphs(max_nodes=6), seed=st.integers(0, 2**16))
def test_training_steps_and_epochs_match_the_reference(drawn, seed):
    """Three SGD steps (dropout masks advance per batch) equal the reference step by
    step, and one run_epoch over the same batches equals them bit for bit."""
    graph, xs, ys, weights, engine, params, grads, x_engine = problem(drawn, 8, seed)
    losses, loss_weights = ["mse"] * len(ys), [1.0 + 0.5 * k for k in range(len(ys))]
    codes = [_engine.LOSSES[n] for n in losses]
    y_engine = [np.ascontiguousarray(y) for y in ys]
    cuts, rates = [slice(0, 3), slice(3, 6), slice(6, 8)], [0.1, 0.05, 0.1]
    engine.set_optimizer(*SGD)
    engine.set_losses(codes, loss_weights)
    step_losses = [engine.train_step([x[s] for x in x_engine], [y[s] for y in y_engine], lr)
                   for s, lr in zip(cuts, rates)]
    w = [np.array(a) for a in weights]
    counters = {}
    for s, lr, got in zip(cuts, rates, step_losses):
        value, _, g = ref.loss_and_gradients(graph, w, [x[s] for x in xs], [y[s] for y in ys],
                                             losses, loss_weights, True, counters)
        assert_close(got, value, "forward", np.dtype(np.float64))
        _advance(graph, [x[s] for x in xs], w, counters)
        w = [a - lr * b for a, b in zip(w, g)]
    assert_close(params, flat(w), "backward", np.dtype(np.float64))
    # one compiled call for the epoch: the same batches, bit for bit
    again, again_params, _, _ = engine_of(graph, weights, xs, np.float64)
    again.set_optimizer(*SGD)
    again.set_losses(codes, loss_weights)
    again.bind_data(x_engine, y_engine)
    batch_losses = np.empty(3)
    mean = again.run_epoch(np.arange(8, dtype=np.int64), 3, np.array(rates), batch_losses)
    np.testing.assert_array_equal(batch_losses, step_losses)
    np.testing.assert_array_equal(again_params, params)
    assert mean == pytest.approx((3 * sum(step_losses[:2]) + 2 * step_losses[2]) / 8)


def _advance(graph, xs, weights, counters):
    """Dropout counters after one training batch (every element of its input)."""
    _, trace = ref.forward(graph, weights, xs)
    for i, node in enumerate(graph["nodes"]):
        if node["kind"] == "dropout" and node["rate"] > 0:
            counters[i] = counters.get(i, 0) + trace[node["inputs"][0]]["out"].size


@settings(max_examples=40, deadline=None)
@given(drawn=graphs(max_nodes=6, smooth=False), seed=st.integers(0, 2**16))
def test_reference_graph_gradients_match_finite_differences(drawn, seed):
    graph, shapes, kinds = drawn
    rng = np.random.default_rng(seed)
    xs = make_data(shapes, kinds, 3, rng)
    weights = weights_of(graph, xs, rng)
    outs, _ = ref.forward(graph, weights, xs)
    ys = [rng.uniform(-1, 1, o.shape) for o in outs]
    losses, loss_weights = ["mse"] * len(ys), [1.0 + k for k in range(len(ys))]
    _, _, grads = ref.loss_and_gradients(graph, weights, xs, ys, losses, loss_weights,
                                         True, {})

    def loss():
        return ref.loss_and_gradients(graph, weights, xs, ys, losses, loss_weights,
                                      True, {})[0]

    def regions():
        _, trace = ref.forward(graph, weights, xs, True, {})
        keys = []
        for node, rec in zip(graph["nodes"], trace):
            act = node.get("activation")
            if act is not None and "z" in rec:
                keys.append(kink_regions(canonical_activation(act), rec["z"]))
            elif act is not None:
                keys.append(kink_regions(canonical_activation(act), rec["inputs"][0]))
            if node["kind"] == "global_pool" and node.get("mode", "max") == "max":
                keys.append(np.argmax(rec["inputs"][0], axis=1))   # which step is the max
        return keys

    for k, (w, g) in enumerate(zip(weights, grads)):
        check_gradient(loss, w, g, tol("finite_difference", np.float64)["rel"],
                       name=f"weights[{k}]", regions=regions, max_coords=16)


def test_fan_out_accumulates_and_losses_write_first():
    """A Dense output used as a model output and by two more nodes, and a tensor fed
    twice to one Multiply: every gradient path adds up."""
    graph = {"nodes": [{"kind": "input", "index": 0},
                       {"kind": "simple_rnn", "inputs": [0], "units": 3,
                        "return_sequences": True},
                       {"kind": "dense", "inputs": [1], "units": 3, "activation": "tanh"},
                       {"kind": "multiply", "inputs": [2, 2]},
                       {"kind": "add", "inputs": [2, 3, 1]},
                       {"kind": "flatten", "inputs": [4]},
                       {"kind": "dense", "inputs": [5], "units": 2}],
             "outputs": [2, 6, 2]}
    rng = np.random.default_rng(3)
    xs = [rng.uniform(-1, 1, (4, 5, 2))]
    weights = weights_of(graph, xs, rng)
    outs, _ = ref.forward(graph, weights, xs)
    ys = [rng.uniform(-1, 1, o.shape) for o in outs]
    engine, params, grads, x_engine = engine_of(graph, weights, xs, "float64")
    engine.set_losses([0, 1, 0], [0.5, 1.0, 2.0])
    total = engine.gradients(x_engine, ys)
    ref_total, _, ref_grads = ref.loss_and_gradients(graph, weights, xs, ys,
                                                     ["mse", "mae", "mse"], [0.5, 1.0, 2.0])
    assert_close(total, ref_total, "forward", np.dtype(np.float64))
    assert_close(grads, flat(ref_grads), "backward", np.dtype(np.float64))


def test_inputs_of_different_lengths_and_a_time_concatenation():
    """Two sequence inputs of different lengths (T given per input at run time), joined
    on the time axis, then a recurrence over the joined sequence."""
    graph = {"nodes": [{"kind": "input", "index": 0}, {"kind": "input", "index": 1},
                       {"kind": "concatenate", "inputs": [0, 1], "axis": 1},
                       {"kind": "simple_rnn", "inputs": [2], "units": 3},
                       {"kind": "dense", "inputs": [3], "units": 1}],
             "outputs": [4]}
    rng = np.random.default_rng(5)
    for T0, T1 in [(2, 5), (4, 1), (7, 3)]:
        xs = [rng.uniform(-1, 1, (3, T0, 2)), rng.uniform(-1, 1, (3, T1, 2))]
        weights = weights_of(graph, xs, rng)
        engine, params, grads, x_engine = engine_of(graph, weights, xs, "float64")
        out = np.empty((3, 1))
        engine.predict(x_engine, out, 2)
        assert_close(out, ref.forward(graph, weights, xs)[0][0], "forward",
                     np.dtype(np.float64))
