"""fastrnn <-> PyTorch: modules and state dicts give the same outputs as predict.

PyTorch is optional (never a CI requirement); these tests skip without it.
"""
import numpy as np
import pytest
from hypothesis import given

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import fastrnn  # noqa: E402
from fastrnn.interop import (from_torch, from_torch_state_dict, to_torch,  # noqa: E402
                             to_torch_state_dict)
from fastrnn.interop.torch import SimpleRNNModule  # noqa: E402
from interop_models import models, predictions  # noqa: E402
from tolerances import tol  # noqa: E402


def torch_outputs(module, x, dtype):
    with torch.no_grad():
        out = module(torch.from_numpy(np.asarray(x, dtype=dtype)))
    if isinstance(out, tuple):
        return {f"pred_{i}": o.numpy() for i, o in enumerate(out)}
    return {"pred": out.numpy()}


def tolerance(dtype):
    return tol("forward", np.float64) if np.dtype(dtype) == np.float64 else \
        tol("interop", np.float32)


def assert_same_outputs(got, want, dtype):
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].shape == want[key].shape and got[key].dtype == want[key].dtype
        np.testing.assert_allclose(got[key], want[key], err_msg=key, **tolerance(dtype))


@given(models())
def test_to_torch_matches_predict(model_and_x):
    model, x = model_and_x
    module = to_torch(model)
    assert not module.training
    assert all(p.dtype == {"float32": torch.float32, "float64": torch.float64}[str(model.dtype)]
               for p in module.parameters())
    x = x.astype(model.dtype)
    assert_same_outputs(torch_outputs(module, x, model.dtype), predictions(model, x), model.dtype)


@given(models())
def test_from_torch_round_trip(model_and_x):
    model, x = model_and_x
    back = from_torch(to_torch(model))
    assert back.dtype == model.dtype
    for a, b in zip(model.get_weights(), back.get_weights()):
        assert np.array_equal(a, b)       # transposes only: exact
    for a, b in zip(model.layers, back.layers):
        for attr in ("units", "activation", "use_bias", "return_sequences", "return_state",
                     "go_backwards"):
            assert getattr(a, attr, None) == getattr(b, attr, None), attr
    assert_same_outputs(predictions(back, x), predictions(model, x), model.dtype)


class TutorialNet(nn.Module):
    """How a PyTorch user writes the tutorial model: their own module, their own names."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.RNN(1, 20, batch_first=True)
        self.head = nn.Linear(20, 1)

    def forward(self, x):
        out, _ = self.encoder(x)
        return self.head(out[:, -1])


def tutorial(dtype="float32"):
    fastrnn.set_random_seed(0)
    return fastrnn.Sequential([fastrnn.Input((3, 1), dtype=dtype), fastrnn.layers.SimpleRNN(20),
                               fastrnn.layers.Dense(1)])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_state_dict_of_a_users_module(dtype):
    """torch's own init gives both biases non-zero values: they must be summed."""
    torch.manual_seed(0)
    net = TutorialNet().to(getattr(torch, dtype))
    assert net.encoder.bias_hh_l0.abs().sum() > 0
    model = tutorial(dtype)
    from_torch_state_dict(model, net.state_dict())
    x = np.random.default_rng(0).standard_normal((8, 3, 1)).astype(dtype)
    assert_same_outputs(predictions(model, x), torch_outputs(net, x, dtype), dtype)


def test_state_dict_layout():
    model = tutorial("float64")
    model.set_weights([w + 0.5 for w in model.get_weights()])
    sd = to_torch_state_dict(model)
    kernel, recurrent, bias, dense_kernel, dense_bias = model.get_weights()
    assert list(sd) == ["0.rnn.weight_ih_l0", "0.rnn.weight_hh_l0", "0.rnn.bias_ih_l0",
                        "0.rnn.bias_hh_l0", "1.weight", "1.bias"]
    np.testing.assert_array_equal(sd["0.rnn.weight_ih_l0"].numpy(), kernel.T)
    np.testing.assert_array_equal(sd["0.rnn.weight_hh_l0"].numpy(), recurrent.T)
    np.testing.assert_array_equal(sd["0.rnn.bias_ih_l0"].numpy(), bias)
    assert not sd["0.rnn.bias_hh_l0"].any()
    np.testing.assert_array_equal(sd["1.weight"].numpy(), dense_kernel.T)
    np.testing.assert_array_equal(sd["1.bias"].numpy(), dense_bias)
    other = tutorial("float64")
    from_torch_state_dict(other, sd)
    for a, b in zip(model.get_weights(), other.get_weights()):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_plain_multilayer_nn_rnn(nonlinearity):
    torch.manual_seed(1)
    rnn = nn.RNN(3, 4, num_layers=3, nonlinearity=nonlinearity, batch_first=True).double()
    model = from_torch(rnn)
    assert [(la.units, la.activation, la.return_sequences) for la in model.layers] == \
        [(4, nonlinearity, True)] * 3
    x = np.random.default_rng(2).standard_normal((5, 7, 3))
    with torch.no_grad():
        y, _ = rnn(torch.from_numpy(x))
    np.testing.assert_allclose(model.predict(x, verbose=0), y.numpy(), **tol("forward", np.float64))


def test_sequential_with_activations():
    torch.manual_seed(2)
    module = nn.Sequential(SimpleRNNModule(2, 5, "relu", return_sequences=True, go_backwards=True),
                           nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3, bias=False), nn.Identity(),
                           nn.Linear(3, 3), nn.Softmax(dim=-1))
    model = from_torch(module)
    assert [type(la).__name__ for la in model.layers] == ["SimpleRNN", "Dense", "Dense", "Dense"]
    assert [la.activation for la in model.layers[1:]] == ["tanh", "linear", "softmax"]
    x = np.random.default_rng(3).standard_normal((2, 6, 2)).astype(np.float32)
    assert_same_outputs(predictions(model, x), torch_outputs(module, x, np.float32), np.float32)


@pytest.mark.parametrize("module,match", [
    (lambda: nn.RNN(2, 3, batch_first=True, bidirectional=True), "bidirectional"),
    (lambda: nn.RNN(2, 3), "batch_first=False"),
    (lambda: nn.Sequential(nn.RNN(2, 3, batch_first=True), nn.Linear(3, 1)),
     "plain nn.RNN returns a tuple"),
    (lambda: nn.Sequential(nn.Conv1d(2, 3, 1)), r"\(Conv1d\) has no fastrnn equivalent"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=1)), "only dim=-1"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.GELU()), r"\(GELU\) has no fastrnn"),
    (lambda: nn.Sequential(nn.ReLU(), nn.Linear(2, 3)), "must say its input size"),
    (lambda: nn.Sequential(nn.Linear(2, 3).half()), "float32 or all float64"),
])
def test_from_torch_refuses_what_it_cannot_convert(module, match):
    with pytest.raises(ValueError, match=match):
        from_torch(module())


def test_to_torch_refuses_unknown_activation(monkeypatch):
    model = tutorial()
    monkeypatch.setattr(model.layers[0], "activation", "sigmoid")
    with pytest.raises(ValueError, match="activation 'sigmoid' has no torch.nn.RNN"):
        to_torch(model)


@pytest.mark.parametrize("change,match", [
    (lambda sd: sd.update({"norm.running_mean": torch.zeros(3)}), "norm.running_mean"),
    (lambda sd: sd.update({"encoder.weight_ih_l0_reverse": torch.zeros(20, 1)}),
     "bidirectional"),
    (lambda sd: sd.pop("encoder.bias_hh_l0"), "only one of the two"),
    (lambda sd: sd.update({"encoder.weight_hh_l0": torch.zeros(21, 21)}), r"shape \(21, 21\)"),
    (lambda sd: sd.pop("head.weight"), "lacks a weight"),
    (lambda sd: sd.update({"extra.weight": torch.zeros(1, 1)}), "3 RNN/Linear weight groups"),
    (lambda sd: sd.update({"head.weight": torch.zeros(1, 20, dtype=torch.int32)}),
     "floating-point"),
])
def test_bad_state_dicts_leave_model_unchanged(change, match):
    torch.manual_seed(0)
    sd = TutorialNet().state_dict()
    change(sd)
    model = tutorial()
    before = model.get_weights()
    with pytest.raises((ValueError, TypeError), match=match):
        from_torch_state_dict(model, sd)
    for a, b in zip(before, model.get_weights()):
        assert np.array_equal(a, b)


def test_state_dict_order_must_match_layer_kinds():
    torch.manual_seed(0)
    sd = TutorialNet().state_dict()
    reordered = {k: sd[k] for k in ["head.weight", "head.bias"] + list(sd)[:4]}
    with pytest.raises(ValueError, match="cannot take the linear weights"):
        from_torch_state_dict(tutorial(), reordered)


def test_use_bias_mismatch():
    torch.manual_seed(0)
    sd = TutorialNet().state_dict()
    fastrnn.set_random_seed(0)
    model = fastrnn.Sequential([fastrnn.Input((3, 1)), fastrnn.layers.SimpleRNN(20, use_bias=False),
                                fastrnn.layers.Dense(1)])
    with pytest.raises(ValueError, match="use_bias=False"):
        from_torch_state_dict(model, sd)


def test_round_two_layers_and_functional_models_refused_clearly():
    """Only SimpleRNN/Dense chains map onto nn.Sequential; anything else says so by name."""
    L = fastrnn.layers
    seq = fastrnn.Sequential([fastrnn.Input((4, 2)), L.Masking(), L.SimpleRNN(2),
                              L.Dense(1)])
    with pytest.raises(ValueError, match=r"'masking.*' \(Masking\) has no PyTorch"):
        to_torch(seq)
    with pytest.raises(ValueError, match=r"\(Masking\) has no PyTorch"):
        from_torch_state_dict(seq, {})
    tokens = fastrnn.Input((5,), dtype="int32")
    functional = fastrnn.Model(tokens, L.SimpleRNN(2)(L.Embedding(4, 2)(tokens)))
    for call in (lambda: to_torch(functional), lambda: to_torch_state_dict(functional),
                 lambda: from_torch_state_dict(functional, {})):
        with pytest.raises(ValueError, match="is a functional model"):
            call()


def bidirectional_model(dtype="float32", merge_mode="ave"):
    fastrnn.clear_session()
    fastrnn.set_random_seed(11)
    L = fastrnn.layers
    model = fastrnn.Sequential([
        fastrnn.Input((6,), dtype="int32"), L.Embedding(9, 3, dtype=dtype),
        L.Bidirectional(L.SimpleRNN(4, return_sequences=True, activation="relu",
                                    dtype=dtype)),
        L.Dropout(0.5, dtype=dtype),
        L.Bidirectional(L.SimpleRNN(2, use_bias=False, dtype=dtype), merge_mode=merge_mode),
        L.Dense(3, dtype=dtype), L.Activation("softmax", dtype=dtype)])
    model.set_weights([w + 0.05 for w in model.get_weights()])
    return model


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bidirectional_and_embedding_to_torch_and_back(dtype, merge_mode):
    """Bidirectional <-> nn.RNN(bidirectional=True), Embedding <-> nn.Embedding."""
    model = bidirectional_model(dtype, merge_mode)
    ids = np.random.default_rng(0).integers(0, 9, (5, 6))
    net = to_torch(model)
    assert isinstance(net[1].rnn, nn.RNN) and net[1].rnn.bidirectional
    assert isinstance(net[0], nn.Embedding)
    with torch.no_grad():
        got = net(torch.from_numpy(ids)).numpy()
    want = model.predict(ids, verbose=0)
    np.testing.assert_allclose(got, want, **tolerance(dtype))
    back = from_torch(net)
    # Linear + Softmax comes back as one Dense(activation="softmax")
    assert [type(la).__name__ for la in back.layers] == [type(la).__name__
                                                          for la in model.layers][:-1]
    assert back.layers[-1].activation == "softmax"
    assert back.dtype == np.dtype(dtype)
    for a, b in zip(back.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(back.predict(ids, verbose=0), want, **tolerance(dtype))


def test_bidirectional_merge_none_and_state_dicts():
    L = fastrnn.layers
    model = fastrnn.Sequential([fastrnn.Input((5, 2)), L.Bidirectional(
        L.SimpleRNN(3), merge_mode=None)])
    x = np.random.default_rng(1).standard_normal((4, 5, 2)).astype(np.float32)
    with torch.no_grad():
        f, b = to_torch(model)(torch.from_numpy(x))
    want = model.predict(x, verbose=0)
    np.testing.assert_allclose(f.numpy(), want[0], **tolerance("float32"))
    np.testing.assert_allclose(b.numpy(), want[1], **tolerance("float32"))
    assert "0.rnn.weight_ih_l0_reverse" in to_torch_state_dict(model)
    with pytest.raises(ValueError, match=r"\(Bidirectional\) has no PyTorch equivalent in "
                                         r"from_torch_state_dict"):
        from_torch_state_dict(model, to_torch_state_dict(model))


def test_mask_zero_and_plain_bidirectional_rnn_refused():
    L = fastrnn.layers
    model = fastrnn.Sequential([fastrnn.Input((4,), dtype="int32"),
                                L.Embedding(5, 2, mask_zero=True), L.SimpleRNN(2)])
    with pytest.raises(ValueError, match="mask_zero=True"):
        to_torch(model)
    with pytest.raises(ValueError, match="only as BidirectionalRNNModule"):
        from_torch(nn.Sequential(SimpleRNNModule(2, 3)).to(torch.float32)
                   .__class__(nn.RNN(2, 3, batch_first=True, bidirectional=True)))


def test_stateful_layers_refused():
    from fastrnn.saving.keras_layers import takes_argument
    if not takes_argument("SimpleRNN", "stateful"):
        pytest.skip("this fastrnn has no stateful SimpleRNN")
    model = fastrnn.Sequential([fastrnn.Input(batch_shape=(2, 3, 1)),
                                fastrnn.layers.SimpleRNN(2, stateful=True)])
    with pytest.raises(ValueError, match="is stateful"):
        to_torch(model)
