"""fastrnn -> ONNX (the standard RNN operator) -> ONNX Runtime equals fastrnn's predict."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import fastrnn  # noqa: E402
from fastrnn.export import to_onnx  # noqa: E402
from fastrnn.export import _onnx  # noqa: E402
from interop_models import models, predictions  # noqa: E402
from tolerances import tol  # noqa: E402


def session(proto):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def run(proto, x):
    outputs = session(proto).run(None, {"input": np.asarray(x, np.float32)})
    if len(outputs) == 1:
        return {"pred": outputs[0]}
    return {f"pred_{i}": o for i, o in enumerate(outputs)}


def assert_matches(model, proto, x):
    """ONNX Runtime's float32 outputs equal fastrnn's predict to float32 rounding."""
    got, want = run(proto, x), predictions(model, x.astype(model.dtype))
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].shape == want[key].shape
        np.testing.assert_allclose(got[key], want[key], err_msg=key,
                                   **tol("interop", model.dtype))


def ops(proto):
    return [n.op_type for n in proto.graph.node]


@given(models())
def test_onnx_runtime_matches_predict(model_and_x):
    model, x = model_and_x
    proto = to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    assert {"Loop", "Scan"}.isdisjoint(ops(proto))
    assert ops(proto).count("RNN") == sum(type(la).__name__ == "SimpleRNN" for la in model.layers)
    assert_matches(model, proto, x)


@given(models(dtypes=("float32",), min_rnns=1), st.integers(1, 7), st.integers(1, 9))
def test_dynamic_batch_and_time(model_and_x, batch, steps):
    """One exported graph serves any batch size, and any length the model accepts."""
    model, _ = model_and_x
    T = model.input_shape[1] or steps
    x = np.random.default_rng(batch * 10 + steps).standard_normal(
        (batch, T, model.input_shape[2]))
    assert_matches(model, to_onnx(model), x)


def stacked_model():
    fastrnn.clear_session()
    fastrnn.set_random_seed(3)
    model = fastrnn.Sequential([
        fastrnn.Input((None, 2)),
        fastrnn.layers.SimpleRNN(4, return_sequences=True, go_backwards=True, activation="relu"),
        fastrnn.layers.SimpleRNN(3, return_sequences=True, use_bias=False),
        fastrnn.layers.Dense(2, activation="softmax"),
    ])
    model.set_weights([w + 0.1 for w in model.get_weights()])
    return model


def test_graph_structure():
    proto = to_onnx(stacked_model())
    graph = proto.graph
    assert proto.opset_import[0].version == _onnx.DEFAULT_OPSET
    assert proto.producer_name == "fastrnn"
    (inp,) = graph.input
    dims = inp.type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", "time", 2]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    out_dims = graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in out_dims] == ["batch", "time", 2]
    rnns = [n for n in graph.node if n.op_type == "RNN"]
    attrs = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in rnns]
    assert [a["direction"] for a in attrs] == [b"reverse", b"forward"]
    assert [a["activations"] for a in attrs] == [[b"Relu"], [b"Tanh"]]
    assert [a["hidden_size"] for a in attrs] == [4, 3]
    assert all("layout" not in a for a in attrs)   # layout 0: time-major, with Transposes
    assert len(rnns[0].input) == 4 and len(rnns[1].input) == 3   # no B without a bias
    assert ops(proto).count("Transpose") == 2     # in once, out once
    assert "Slice" in ops(proto)                  # the backwards sequence put in Keras order


def test_weights_mapping():
    """W = kernel^T, R = recurrent_kernel^T, B = [bias, 0] (one bias in Wb, zeros in Rb)."""
    model = stacked_model()
    proto = to_onnx(model)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    rnn = next(n for n in proto.graph.node if n.op_type == "RNN")
    kernel, recurrent, bias = model.layers[0].get_weights()
    np.testing.assert_array_equal(inits[rnn.input[1]], kernel.T[None].astype(np.float32))
    np.testing.assert_array_equal(inits[rnn.input[2]], recurrent.T[None].astype(np.float32))
    np.testing.assert_array_equal(inits[rnn.input[3]],
                                  np.concatenate([bias, np.zeros(4)])[None].astype(np.float32))


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_each_direction_and_output(go_backwards, return_sequences):
    fastrnn.clear_session()
    fastrnn.set_random_seed(1)
    model = fastrnn.Sequential([fastrnn.Input((None, 3)), fastrnn.layers.SimpleRNN(
        5, go_backwards=go_backwards, return_sequences=return_sequences, return_state=True)])
    model.set_weights([w + 0.2 for w in model.get_weights()])
    x = np.random.default_rng(0).standard_normal((4, 6, 3))
    assert_matches(model, to_onnx(model), x)


def test_tutorial_model_file(tmp_path):
    from fastrnn.data import make_sequences
    fastrnn.set_random_seed(0)
    model = fastrnn.Sequential([fastrnn.layers.SimpleRNN(units=20, input_shape=[3, 1]),
                                fastrnn.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    X, Y = make_sequences()
    model.fit(X, Y, epochs=3, verbose=0)
    path = tmp_path / "tutorial.onnx"
    returned = to_onnx(model, path)
    loaded = onnx.load(str(path))
    assert loaded == returned
    assert_matches(model, loaded, X)


def test_sigmoid_recurrence_against_numpy(monkeypatch):
    """ONNX's Sigmoid RNN activation, checked against a NumPy recurrence (fastrnn's SimpleRNN
    has no sigmoid yet, so the layer's attribute is set by hand)."""
    fastrnn.set_random_seed(2)
    model = fastrnn.Sequential([fastrnn.Input((5, 2)),
                                fastrnn.layers.SimpleRNN(3, return_sequences=True,
                                                         go_backwards=True)])
    layer = model.layers[0]
    monkeypatch.setattr(layer, "activation", "sigmoid")
    kernel, recurrent, bias = layer.get_weights()
    x = np.random.default_rng(1).standard_normal((2, 5, 2))
    h, states = np.zeros((2, 3)), []
    for t in reversed(range(5)):
        h = 1 / (1 + np.exp(-(x[:, t] @ kernel + h @ recurrent + bias)))
        states.append(h)
    np.testing.assert_allclose(run(to_onnx(model), x)["pred"], np.stack(states, axis=1),
                               **tol("interop", np.float32))


def test_unsupported_activations_named(monkeypatch):
    model = stacked_model()
    monkeypatch.setattr(model.layers[0], "activation", "softsign")
    with pytest.raises(ValueError, match="activation 'softsign' has no ONNX RNN equivalent"):
        to_onnx(model)
    monkeypatch.undo()
    monkeypatch.delitem(_onnx.DENSE_ACTIVATIONS, "softmax")
    with pytest.raises(ValueError, match="activation 'softmax' has no ONNX export"):
        to_onnx(model)


def test_unsupported_layer_named(monkeypatch):
    monkeypatch.delitem(_onnx.CONVERTERS, "Dense")
    with pytest.raises(ValueError, match=r"\(Dense\) has no ONNX converter"):
        to_onnx(stacked_model())


@pytest.mark.parametrize("opset", [13, 14, 18, 21])
def test_opsets(opset):
    if opset > onnx.defs.onnx_opset_version():
        pytest.skip("this onnx package does not know that opset")
    model = stacked_model()
    proto = to_onnx(model, opset=opset)
    assert proto.opset_import[0].version == opset
    assert proto.ir_version == onnx.helper.find_min_ir_version_for(list(proto.opset_import))
    assert_matches(model, proto, np.random.default_rng(0).standard_normal((3, 4, 2)))


def test_bad_arguments(tmp_path):
    model = stacked_model()
    with pytest.raises(ValueError, match="opset must be between 13"):
        to_onnx(model, opset=12)
    with pytest.raises(ValueError, match="opset must be between"):
        to_onnx(model, opset=10_000)
    with pytest.raises(TypeError, match="opset must be an int"):
        to_onnx(model, opset="17")
    with pytest.raises(TypeError, match="path"):
        to_onnx(model, path=3.5)
    unbuilt = fastrnn.Sequential([fastrnn.layers.SimpleRNN(2)])
    with pytest.raises(ValueError, match="input shape"):
        to_onnx(unbuilt)


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    import os
    path = tmp_path / "m.onnx"
    to_onnx(stacked_model(), path)
    before = path.read_bytes()
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        to_onnx(stacked_model(), path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.onnx"]


# -- functional models of every layer (issue 12) ------------------------------------------
from interop_models import graph_models  # noqa: E402


def run_graph(proto, model, xs):
    sess = session(proto)
    feeds = {}
    for info, x in zip(sess.get_inputs(), xs):
        feeds[info.name] = np.asarray(x, np.int64 if "int64" in info.type else np.float32)
    return sess.run(None, feeds)


def graph_predictions(model, xs):
    cast = [x if np.asarray(x).dtype.kind in "iu" else np.asarray(x, model.dtype) for x in xs]
    out = model.predict(cast if len(cast) > 1 else cast[0], verbose=0)
    return out if isinstance(out, list) else [out]


@given(graph_models())
def test_graph_models_run_in_onnx_runtime(model_and_xs):
    """Masks (any padding), Bidirectional, initial states, merges, several outputs."""
    model, xs = model_and_xs
    proto = to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    assert {"Loop", "Scan"}.isdisjoint(ops(proto))
    got, want = run_graph(proto, model, xs), graph_predictions(model, xs)
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, err_msg=f"output {k}", **tol("interop", model.dtype))


def masked_rnn(go_backwards, return_sequences, source="masking", initial_state=False):
    fastrnn.clear_session()
    fastrnn.set_random_seed(5)
    L = fastrnn.layers
    if source == "masking":
        x_in = fastrnn.Input((None, 2))
        x = L.Masking(0.0)(x_in)
    else:
        x_in = fastrnn.Input((None,), dtype="int32")
        x = L.Embedding(6, 2, mask_zero=True)(x_in)
    inputs = [x_in]
    rnn = L.SimpleRNN(3, go_backwards=go_backwards, return_sequences=return_sequences,
                      return_state=True)
    if initial_state:
        inputs.append(fastrnn.Input((3,)))
        out = rnn(x, initial_state=inputs[1])
    else:
        out = rnn(x)
    model = fastrnn.Model(inputs, out)
    model.set_weights([w + 0.3 for w in model.get_weights()])
    return model


@pytest.mark.parametrize("initial_state", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("source", ["masking", "embedding"])
def test_every_padding_is_exact(source, return_sequences, go_backwards, initial_state):
    """Padding after, before, in between, everywhere and nowhere, in one batch."""
    model = masked_rnn(go_backwards, return_sequences, source, initial_state)
    keep = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1], [1, 0, 1, 0, 0, 1],
                     [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
    rng = np.random.default_rng(0)
    if source == "masking":
        x = rng.standard_normal((5, 6, 2)) * keep[..., None]
    else:
        x = rng.integers(1, 6, (5, 6)) * keep
    xs = [x] + ([rng.standard_normal((5, 3))] if initial_state else [])
    proto = to_onnx(model)
    assert "RNN" in ops(proto) and "ScatterElements" in ops(proto)
    for a, b in zip(run_graph(proto, model, xs), graph_predictions(model, xs)):
        np.testing.assert_allclose(a, b, **tol("interop", np.float32))


def test_bidirectional_is_one_bidirectional_rnn():
    fastrnn.set_random_seed(6)
    L = fastrnn.layers
    model = fastrnn.Sequential([fastrnn.Input((4, 2)), L.Bidirectional(
        L.SimpleRNN(3, return_sequences=True), merge_mode="ave"), L.Dense(1)])
    proto = to_onnx(model)
    rnns = [n for n in proto.graph.node if n.op_type == "RNN"]
    assert len(rnns) == 1
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in rnns[0].attribute}
    assert attrs["direction"] == b"bidirectional"
    x = np.random.default_rng(1).standard_normal((3, 4, 2))
    assert_matches(model, proto, x)


def test_several_inputs_and_outputs_are_named():
    fastrnn.clear_session()
    L = fastrnn.layers
    seq, h0 = fastrnn.Input((None, 2), name="seq"), fastrnn.Input((3,), name="h0")
    out, state = L.SimpleRNN(3, return_state=True)(seq, initial_state=h0)
    model = fastrnn.Model([seq, h0], {"out": L.Dense(1)(out), "state": state})
    proto = to_onnx(model)
    assert [i.name for i in proto.graph.input] == ["seq", "h0"]
    assert sorted(o.name for o in proto.graph.output) == ["out", "state"]
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "seq_time", 2]


def test_embedding_input_is_int64():
    model = masked_rnn(False, False, source="embedding")
    proto = to_onnx(model)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64


@st.composite
def flowing_mask_models(draw):
    """Masks that reach a SimpleRNN or Bidirectional through other layers (where fastrnn
    carries them)."""
    fastrnn.clear_session()
    L = fastrnn.layers
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    N, T = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    x_in = fastrnn.Input((None, 2))
    h = L.Masking(0.0)(x_in)
    same_steps = True
    for step in draw(st.lists(st.sampled_from(["dense", "time_dense", "activation", "dropout",
                                               "rnn", "bidirectional", "add", "concat",
                                               "concat_time"]), max_size=3)):
        if step == "dense":
            h = L.Dense(3, activation="tanh")(h)
        elif step == "time_dense":
            h = L.TimeDistributed(L.Dense(2))(h)
        elif step == "activation":
            h = L.Activation("relu")(h)
        elif step == "dropout":
            h = L.Dropout(0.5)(h)
        elif step == "rnn":
            h = L.SimpleRNN(3, return_sequences=True, go_backwards=draw(st.booleans()),
                            zero_output_for_mask=draw(st.booleans()))(h)
        elif step == "bidirectional":
            h = L.Bidirectional(L.SimpleRNN(2, return_sequences=True), merge_mode=draw(
                st.sampled_from(["concat", "sum", "mul", "ave"])))(h)
        elif step == "add":     # both masked: Keras ORs the masks
            other = L.Masking(0.0)(x_in) if same_steps else h
            h = L.Add()([h, L.Dense(h.shape[-1])(other)])
        elif step == "concat":  # one unmasked: every step kept
            h = L.Concatenate()([h, L.Dense(2)(x_in if same_steps else h)])
        else:
            h = L.Concatenate(axis=1)([h, L.Dense(h.shape[-1])(x_in)])
            same_steps = False  # h is now longer than the input
    ending = draw(st.sampled_from(["rnn", "bidirectional", "pool"]))
    if ending == "pool":        # the mean over kept steps; the max over all
        out = draw(st.sampled_from([L.GlobalMaxPooling1D, L.GlobalAveragePooling1D]))()(h)
    elif ending == "rnn":
        out = L.SimpleRNN(2, go_backwards=draw(st.booleans()),
                          return_sequences=draw(st.booleans()))(h)
    else:
        out = L.Bidirectional(L.SimpleRNN(2, return_sequences=draw(st.booleans())),
                              merge_mode=draw(st.sampled_from(["concat", "ave", None])))(h)
        out = L.Add()(out) if isinstance(out, list) else out
    model = fastrnn.Model(x_in, out)
    model.set_weights([rng.uniform(-1, 1, w.shape) for w in model.get_weights()])
    x = rng.standard_normal((N, T, 2))
    x[rng.random((N, T)) < 0.4] = 0.0
    return model, [x]


from fastrnn.saving.keras_layers import masks_flow  # noqa: E402


@pytest.mark.skipif(not masks_flow(), reason="this fastrnn applies a mask only in a "
                                               "SimpleRNN reading its source")
@given(flowing_mask_models())
def test_masks_through_layers_match_predict(model_and_xs):
    model, xs = model_and_xs
    proto = to_onnx(model)
    for a, b in zip(run_graph(proto, model, xs), graph_predictions(model, xs)):
        np.testing.assert_allclose(a, b, **tol("interop", np.float32))


def test_stateful_layers_refused():
    from fastrnn.saving.keras_layers import takes_argument
    if not takes_argument("SimpleRNN", "stateful"):
        pytest.skip("this fastrnn has no stateful SimpleRNN")
    L = fastrnn.layers
    model = fastrnn.Sequential([fastrnn.Input(batch_shape=(2, 3, 1)),
                                L.SimpleRNN(2, stateful=True)])
    with pytest.raises(ValueError, match="is stateful: an ONNX graph keeps no state"):
        to_onnx(model)


def test_rnn_of_a_simple_rnn_cell():
    """keras.layers.RNN(SimpleRNNCell(...)) is a SimpleRNN: the same RNN operator."""
    L = fastrnn.layers
    if not hasattr(L, "RNN"):
        pytest.skip("this fastrnn has no RNN layer")
    fastrnn.set_random_seed(8)
    model = fastrnn.Sequential([fastrnn.Input((None, 2)), L.RNN(
        L.SimpleRNNCell(3, activation="relu"), return_sequences=True, go_backwards=True),
        L.Dense(1)])
    model.set_weights([w + 0.1 for w in model.get_weights()])
    proto = to_onnx(model)
    assert ops(proto).count("RNN") == 1
    assert_matches(model, proto, np.random.default_rng(2).standard_normal((3, 5, 2)))
