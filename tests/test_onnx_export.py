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
