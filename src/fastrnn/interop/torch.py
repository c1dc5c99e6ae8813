"""PyTorch interop: fastrnn models as ``torch.nn`` modules and back, and state dicts.

Keras's SimpleRNN (fastrnn's) and ``torch.nn.RNN`` compute the same
recurrence, ``h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``, with the
weights laid out differently:

=====================  ==========================  =====================
fastrnn (Keras)        torch.nn.RNN                shape in torch
=====================  ==========================  =====================
``kernel`` (D, H)      ``weight_ih_l0 = kernel.T``  (H, D)
``recurrent_kernel``   ``weight_hh_l0 = rk.T``      (H, H)
``bias`` (H,)          ``bias_ih_l0 = bias``,       (H,), (H,)
                       ``bias_hh_l0 = 0``
Dense ``kernel`` (D,U) ``Linear.weight = kernel.T`` (U, D)
=====================  ==========================  =====================

On the way back the two torch biases are summed into the one Keras bias.

Importing this module imports torch (the ``fastrnn.interop`` functions import
it only when called); torch is never a fastrnn dependency.
"""
import re

import numpy as np

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - exercised where torch is absent
    raise ImportError("fastrnn.interop.torch needs PyTorch, which is not installed: "
                      "pip install torch (a CPU build is enough)") from None

__all__ = ["SimpleRNNModule", "BidirectionalRNNModule", "to_torch", "from_torch",
           "to_torch_state_dict", "from_torch_state_dict"]

_NONLINEARITIES = ("tanh", "relu")   # what nn.RNN offers
_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


class SimpleRNNModule(nn.Module):
    """``keras.layers.SimpleRNN`` as a torch module: an ``nn.RNN`` (batch first) and its flags.

    Parameters
    ----------
    input_size, units : int
        D and H.
    activation : {"tanh", "relu"}
    use_bias, return_sequences, return_state, go_backwards : bool
        As in Keras.  ``go_backwards`` flips the time axis before the RNN,
        so a returned sequence is in processing order, as Keras returns it.

    Input (B, T, D); output (B, T, H) or (B, H), or the tuple
    ``(output, last_state)`` with ``return_state``.
    """

    def __init__(self, input_size, units, activation="tanh", use_bias=True,
                 return_sequences=False, return_state=False, go_backwards=False):
        super().__init__()
        self.rnn = nn.RNN(input_size, units, nonlinearity=activation, bias=use_bias,
                          batch_first=True)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)

    def forward(self, x):
        if self.go_backwards:
            x = torch.flip(x, dims=[1])
        y, h_n = self.rnn(x)
        last = h_n[0]
        out = y if self.return_sequences else last
        return (out, last) if self.return_state else out

    def extra_repr(self):
        return (f"return_sequences={self.return_sequences}, return_state={self.return_state}, "
                f"go_backwards={self.go_backwards}")


class BidirectionalRNNModule(nn.Module):
    """``keras.layers.Bidirectional(SimpleRNN(...))`` as a torch module: one
    ``nn.RNN(bidirectional=True, batch_first=True)`` and Keras's merge.

    torch returns the backward direction's sequence in input order, as Keras's
    Bidirectional does; the last states are ``h_n[0]`` (forward) and
    ``h_n[1]`` (backward, after reading the first step).

    Parameters
    ----------
    input_size, units : int
    activation : {"tanh", "relu"}
    use_bias, return_sequences : bool
    merge_mode : {"concat", "sum", "mul", "ave", None}
        None returns the tuple ``(forward, backward)``.
    """

    def __init__(self, input_size, units, activation="tanh", use_bias=True,
                 return_sequences=False, merge_mode="concat"):
        super().__init__()
        self.rnn = nn.RNN(input_size, units, nonlinearity=activation, bias=use_bias,
                          batch_first=True, bidirectional=True)
        self.return_sequences = bool(return_sequences)
        self.merge_mode = merge_mode

    def forward(self, x):
        y, h_n = self.rnn(x)
        H = self.rnn.hidden_size
        f, b = (y[..., :H], y[..., H:]) if self.return_sequences else (h_n[0], h_n[1])
        if self.merge_mode == "concat":
            return torch.cat([f, b], dim=-1)
        if self.merge_mode == "sum":
            return f + b
        if self.merge_mode == "mul":
            return f * b
        if self.merge_mode == "ave":
            return (f + b) / 2
        return f, b

    def extra_repr(self):
        return f"return_sequences={self.return_sequences}, merge_mode={self.merge_mode!r}"


_ACTIVATION_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
                       "softmax": lambda: nn.Softmax(dim=-1)}


def _tensor(array, dtype):
    return torch.from_numpy(np.ascontiguousarray(array)).to(dtype)


_TO_TORCH = ("SimpleRNN", "Dense", "Bidirectional", "Embedding", "Dropout", "Activation")
_STATE_DICT = ("SimpleRNN", "Dense")


def _require_chain(model, what, supported=_STATE_DICT):
    """The model's layers, or a clear error for what a torch.nn.Sequential cannot hold."""
    from ..models.sequential import Sequential
    model.input_shape   # a clear error for an unbuilt model
    if not isinstance(model, Sequential):
        raise ValueError(f"{what} takes a fastrnn.Sequential ({', '.join(supported)}); "
                         f"model {model.name!r} is a functional model (export it with "
                         f"model.save('m.keras') or fastrnn.export.to_onnx instead)")
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in supported:
            raise ValueError(f"layer {layer.name!r} ({kind}) has no PyTorch equivalent in "
                             f"{what} (supported: {', '.join(supported)}; a model with it can "
                             f"leave as a .keras file or through ONNX)")
        if getattr(layer, "stateful", False) or getattr(
                getattr(layer, "forward_layer", None), "stateful", False):
            raise ValueError(f"layer {layer.name!r} is stateful; the torch modules keep no "
                             f"state between calls")
        if kind == "Embedding" and layer.mask_zero:
            raise ValueError(f"layer {layer.name!r}: Embedding(mask_zero=True) has no "
                             f"PyTorch equivalent (nn.RNN takes no step mask)")
    return model.layers


def to_torch(model):
    """A ``torch.nn.Sequential`` that computes what ``model.predict`` does.

    Parameters
    ----------
    model : fastrnn.Sequential
        Built; SimpleRNN and Bidirectional(SimpleRNN) (tanh or relu), Dense,
        Embedding (without mask_zero), Dropout and Activation layers.

    Returns
    -------
    torch.nn.Sequential
        Of :class:`SimpleRNNModule` (wrapping ``nn.RNN(batch_first=True)``),
        :class:`BidirectionalRNNModule` (``nn.RNN(bidirectional=True)``),
        ``nn.Embedding``, ``nn.Linear``, ``nn.Dropout`` and activation modules
        (``nn.ReLU``, ``nn.Tanh``, ``nn.Sigmoid``, ``nn.Softmax(dim=-1)``,
        ``nn.Identity``), in the model's dtype, on the CPU, in eval mode.
        Input (B, T, D) as for ``predict``; token ids (B, T) as a LongTensor
        for a model starting with an Embedding.
    """
    modules = []
    dtype = None
    for layer in _require_chain(model, "to_torch", _TO_TORCH):
        kind = type(layer).__name__
        weights = layer.get_weights()
        dtype = _DTYPES.get(weights[0].dtype, torch.float32) if weights else dtype
        if kind == "SimpleRNN":
            if layer.activation not in _NONLINEARITIES:
                raise ValueError(f"layer {layer.name!r}: activation {layer.activation!r} has "
                                 f"no torch.nn.RNN equivalent (nonlinearity tanh or relu)")
            kernel, recurrent = weights[0], weights[1]
            module = SimpleRNNModule(kernel.shape[0], kernel.shape[1], layer.activation,
                                     layer.use_bias, layer.return_sequences,
                                     layer.return_state, layer.go_backwards).to(dtype)
            with torch.no_grad():
                module.rnn.weight_ih_l0.copy_(_tensor(kernel.T, dtype))
                module.rnn.weight_hh_l0.copy_(_tensor(recurrent.T, dtype))
                if layer.use_bias:
                    module.rnn.bias_ih_l0.copy_(_tensor(weights[2], dtype))
                    module.rnn.bias_hh_l0.zero_()
            modules.append(module)
        elif kind == "Dense":
            activation = layer.activation or "linear"
            if activation != "linear" and activation not in _ACTIVATION_MODULES:
                raise ValueError(f"layer {layer.name!r}: activation {activation!r} has no "
                                 f"torch module here")
            linear = nn.Linear(weights[0].shape[0], weights[0].shape[1],
                               bias=layer.use_bias).to(dtype)
            with torch.no_grad():
                linear.weight.copy_(_tensor(weights[0].T, dtype))
                if layer.use_bias:
                    linear.bias.copy_(_tensor(weights[1], dtype))
            modules.append(linear)
            if activation != "linear":
                modules.append(_ACTIVATION_MODULES[activation]())
        elif kind == "Bidirectional":
            inner = layer.forward_layer
            if inner.activation not in _NONLINEARITIES:
                raise ValueError(f"layer {layer.name!r}: activation {inner.activation!r} has "
                                 f"no torch.nn.RNN equivalent (nonlinearity tanh or relu)")
            module = BidirectionalRNNModule(weights[0].shape[0], inner.units, inner.activation,
                                            inner.use_bias, inner.return_sequences,
                                            layer.merge_mode).to(dtype)
            half = len(weights) // 2
            with torch.no_grad():
                for suffix, w in (("", weights[:half]), ("_reverse", weights[half:])):
                    getattr(module.rnn, "weight_ih_l0" + suffix).copy_(_tensor(w[0].T, dtype))
                    getattr(module.rnn, "weight_hh_l0" + suffix).copy_(_tensor(w[1].T, dtype))
                    if inner.use_bias:
                        getattr(module.rnn, "bias_ih_l0" + suffix).copy_(_tensor(w[2], dtype))
                        getattr(module.rnn, "bias_hh_l0" + suffix).zero_()
            modules.append(module)
        elif kind == "Embedding":
            module = nn.Embedding(layer.input_dim, layer.output_dim).to(dtype)
            with torch.no_grad():
                module.weight.copy_(_tensor(weights[0], dtype))
            modules.append(module)
        elif kind == "Dropout":
            modules.append(nn.Dropout(layer.rate))
        else:           # Activation
            activation = layer.activation or "linear"
            if activation == "linear":
                modules.append(nn.Identity())
            elif activation in _ACTIVATION_MODULES:
                modules.append(_ACTIVATION_MODULES[activation]())
            else:
                raise ValueError(f"layer {layer.name!r}: activation {activation!r} has no "
                                 f"torch module here")
    return nn.Sequential(*modules).eval()


def _numpy(value, name):
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    value = np.asarray(value)
    if value.dtype.kind != "f":
        raise TypeError(f"{name} must hold floating-point numbers, got dtype {value.dtype}")
    return value


def _activation_after(modules, i, where):
    """(activation name, modules consumed) for the modules following a Linear."""
    if i < len(modules):
        m = modules[i]
        if isinstance(m, nn.Identity):
            return "linear", 1
        for name, cls in (("relu", nn.ReLU), ("tanh", nn.Tanh), ("sigmoid", nn.Sigmoid)):
            if type(m) is cls:
                return name, 1
        if type(m) is nn.Softmax:
            if m.dim != -1:
                raise ValueError(f"{where}: nn.Softmax(dim={m.dim}); only dim=-1 (the "
                                 f"features axis, as Keras) converts")
            return "softmax", 1
    return None, 0


def from_torch(module):
    """A fastrnn model computing what ``module`` computes.

    Parameters
    ----------
    module : torch.nn.Module
        What :func:`to_torch` returns: an ``nn.Sequential`` of
        :class:`SimpleRNNModule`, ``nn.Linear`` and ``nn.ReLU``/``nn.Tanh``/
        ``nn.Sigmoid``/``nn.Softmax(dim=-1)``/``nn.Identity``; or a single
        ``nn.RNN(batch_first=True)`` (one direction, any number of layers),
        which becomes a stack of SimpleRNNs returning the last layer's output
        sequence, as the ``nn.RNN`` does.

    Returns
    -------
    fastrnn.Sequential
        Built for inputs (B, None, D) (any number of time steps; (B, D) for a
        Linear-only module), in the module's dtype (float32 or float64).

    Raises
    ------
    ValueError
        A module or setting with no fastrnn equivalent (named in the message).
    """
    import fastrnn
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    modules = list(module) if isinstance(module, nn.Sequential) else [module]
    layers, weights, first_input, first_dtype = [], [], None, None
    params = list(module.parameters())
    if not params:
        raise ValueError("module has no weights to convert")
    dtype = params[0].dtype
    if dtype not in (torch.float32, torch.float64) or any(p.dtype != dtype for p in params):
        raise ValueError(f"module weights must all be float32 or all float64, got "
                         f"{sorted({str(p.dtype) for p in params})}")
    i = 0
    while i < len(modules):
        m = modules[i]
        where = f"module {i} ({type(m).__name__})"
        if isinstance(m, SimpleRNNModule):
            rnn_layers, rnn_weights = _rnn_layers(m.rnn, where, m.return_sequences,
                                                  m.return_state, m.go_backwards)
            size = m.rnn.input_size
        elif type(m) is nn.RNN:
            if len(modules) != 1:
                raise ValueError(f"{where}: a plain nn.RNN returns a tuple, so it converts "
                                 f"only on its own; wrap it as SimpleRNNModule in a Sequential")
            rnn_layers, rnn_weights = _rnn_layers(m, where, True, False, False)
            size = m.input_size
        elif type(m) is nn.Linear:
            activation, used = _activation_after(modules, i + 1, where)
            i += used
            rnn_layers = [fastrnn.layers.Dense(m.out_features, activation=activation,
                                               use_bias=m.bias is not None)]
            rnn_weights = [_numpy(m.weight, f"{where}.weight").T]
            if m.bias is not None:
                rnn_weights.append(_numpy(m.bias, f"{where}.bias"))
            size = m.in_features
        elif isinstance(m, BidirectionalRNNModule):
            fwd, fwd_w = _rnn_layers(m.rnn, where, m.return_sequences, False, False,
                                     bidirectional=True)
            rnn_layers = [fastrnn.layers.Bidirectional(fwd[0], merge_mode=m.merge_mode)]
            rnn_weights = fwd_w + _rnn_layers(m.rnn, where, m.return_sequences, False, False,
                                              bidirectional=True, suffix="_reverse")[1]
            size = m.rnn.input_size
        elif type(m) is nn.Embedding:
            if m.padding_idx is not None or m.max_norm is not None:
                raise ValueError(f"{where}: padding_idx and max_norm have no fastrnn "
                                 f"equivalent")
            rnn_layers = [fastrnn.layers.Embedding(m.num_embeddings, m.embedding_dim)]
            rnn_weights = [_numpy(m.weight, f"{where}.weight")]
            size = None
        elif type(m) is nn.Dropout:
            rnn_layers, rnn_weights, size = [fastrnn.layers.Dropout(m.p)], [], None
        elif _activation_after(modules, i, where)[1]:
            activation, _ = _activation_after(modules, i, where)
            rnn_layers, rnn_weights, size = [fastrnn.layers.Activation(activation)], [], None
        else:
            raise ValueError(f"{where} has no fastrnn equivalent (supported: "
                             f"SimpleRNNModule, BidirectionalRNNModule, nn.RNN, nn.Linear, "
                             f"nn.Embedding, nn.Dropout and activations)")
        if first_input is None:
            if size is None and type(m) is not nn.Embedding:
                raise ValueError(f"{where}: the first module must say its input size "
                                 f"(an RNN, a Linear or an Embedding)")
            first_input = ((None,) if type(m) is nn.Embedding else
                           (None, size) if not isinstance(m, nn.Linear) else (size,))
            first_dtype = "int64" if type(m) is nn.Embedding else None
        layers += rnn_layers
        weights += rnn_weights
        i += 1
    float_dtype = str(dtype).split(".")[-1]
    if first_dtype is not None:         # token ids in: the layers say the float type
        for layer in layers:
            layer.dtype = layer._dtype_arg = np.dtype(float_dtype)
    model = fastrnn.Sequential([fastrnn.Input(first_input, dtype=first_dtype or float_dtype)]
                               + layers)
    model.set_weights(weights)
    return model


def _rnn_layers(rnn, where, return_sequences, return_state, go_backwards, bidirectional=False,
                suffix=""):
    """fastrnn SimpleRNN layers (and their Keras-layout weights) for one nn.RNN
    (for one direction, ``suffix`` "" or "_reverse", of a bidirectional one)."""
    import fastrnn
    if not rnn.batch_first:
        raise ValueError(f"{where}: nn.RNN(batch_first=False) takes (T, B, D) input; fastrnn "
                         f"takes (B, T, D): use batch_first=True")
    if rnn.bidirectional != bidirectional:
        raise ValueError(f"{where}: a bidirectional nn.RNN converts only as "
                         f"BidirectionalRNNModule (fastrnn's Bidirectional)")
    if bidirectional and rnn.num_layers != 1:
        raise ValueError(f"{where}: a multi-layer bidirectional nn.RNN has no fastrnn "
                         f"equivalent")
    if rnn.nonlinearity not in _NONLINEARITIES or getattr(rnn, "proj_size", 0):
        raise ValueError(f"{where}: nn.RNN settings with no fastrnn equivalent")
    if go_backwards and rnn.num_layers > 1:
        raise ValueError(f"{where}: go_backwards with a multi-layer nn.RNN has no fastrnn "
                         f"equivalent (only the first layer would run backwards)")
    # nn.RNN's dropout acts only in training; predictions do not use it.
    layers, weights = [], []
    for k in range(rnn.num_layers):
        last = k == rnn.num_layers - 1
        layers.append(fastrnn.layers.SimpleRNN(
            rnn.hidden_size, activation=rnn.nonlinearity, use_bias=rnn.bias,
            return_sequences=return_sequences or not last,
            return_state=return_state and last, go_backwards=go_backwards and k == 0))
        names = [f"{kind}_l{k}{suffix}" for kind in ("weight_ih", "weight_hh", "bias_ih",
                                                      "bias_hh")]
        weights += [_numpy(getattr(rnn, names[0]), names[0]).T,
                    _numpy(getattr(rnn, names[1]), names[1]).T]
        if rnn.bias:
            weights.append(_numpy(getattr(rnn, names[2]), names[2])
                           + _numpy(getattr(rnn, names[3]), names[3]))
    return layers, weights


# -- state dicts -------------------------------------------------------------------------
def to_torch_state_dict(model):
    """The ``state_dict()`` of :func:`to_torch`'s module: ``{"0.rnn.weight_ih_l0": ...}``."""
    return to_torch(model).state_dict()


_RNN_KEY = re.compile(r"^(?P<prefix>(?:.*\.)?)(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh)"
                      r"_l(?P<k>\d+)(?P<reverse>_reverse)?$")
_LINEAR_KEY = re.compile(r"^(?P<prefix>(?:.*\.)?)(?P<kind>weight|bias)$")


def _groups(state_dict):
    """The state dict as an ordered list of ("rnn" | "linear", {kind: array}, key prefix)."""
    groups, index = [], {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"state_dict keys must be str, got {type(key).__name__}")
        m = _RNN_KEY.match(key)
        if m:
            if m["reverse"]:
                raise ValueError(f"state_dict key {key!r}: a bidirectional nn.RNN has no "
                                 f"fastrnn equivalent yet")
            gid, kind = ("rnn", m["prefix"], int(m["k"])), m["kind"]
        else:
            m = _LINEAR_KEY.match(key)
            if not m:
                raise ValueError(f"state_dict key {key!r} belongs to neither an nn.RNN nor an "
                                 f"nn.Linear")
            gid, kind = ("linear", m["prefix"]), m["kind"]
        if gid not in index:
            index[gid] = len(groups)
            groups.append((gid[0], {}, key[:len(m["prefix"])] or "(top)"))
        groups[index[gid]][1][kind] = _numpy(value, key)
    return groups


def from_torch_state_dict(model, state_dict):
    """Load the weights of ``nn.RNN``/``nn.Linear`` modules into ``model``'s layers, in order.

    The n-th SimpleRNN of ``model`` takes the n-th single-layer RNN found in
    ``state_dict`` (each layer ``l<k>`` of a multi-layer ``nn.RNN`` counts as
    one, in order), the n-th Dense the n-th Linear.  Keys keep their order of
    registration in the torch module, so a module's own ``state_dict()``
    works as it is, whatever its attribute names.  Biases: ``bias_ih +
    bias_hh``.  Everything is checked before anything is written.

    Parameters
    ----------
    model : fastrnn.Sequential
        Built, of SimpleRNN and Dense layers.
    state_dict : mapping of str -> torch.Tensor or ndarray
        Such as ``torch_module.state_dict()``.  The nonlinearity is not part
        of a state dict: the model's activations are used.
    """
    layers = _require_chain(model, "from_torch_state_dict")
    groups = _groups(state_dict)
    if len(groups) != len(layers):
        raise ValueError(f"state_dict holds {len(groups)} RNN/Linear weight groups "
                         f"({', '.join(g[0] + ' ' + g[2] for g in groups)}), the model has "
                         f"{len(layers)} layers")
    weights = []
    for layer, (kind, arrays, prefix) in zip(layers, groups):
        current = layer.get_weights()
        want = {"SimpleRNN": "rnn", "Dense": "linear"}.get(type(layer).__name__)
        if want != kind:
            raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) cannot take the "
                             f"{kind} weights at {prefix!r}")
        if kind == "rnn":
            mapped = [arrays.get("weight_ih"), arrays.get("weight_hh")]
            mapped = [None if a is None else a.T for a in mapped]
            biases = [arrays.get("bias_ih"), arrays.get("bias_hh")]
        else:
            mapped = [None if arrays.get("weight") is None else arrays["weight"].T]
            biases = [arrays.get("bias")]
        has_bias = all(b is not None for b in biases)
        if any(b is not None for b in biases) and not has_bias:
            raise ValueError(f"{prefix!r}: only one of the two nn.RNN biases is present")
        if has_bias != bool(layer.use_bias):
            raise ValueError(f"layer {layer.name!r} has use_bias={layer.use_bias}, the "
                             f"state_dict at {prefix!r} {'has' if has_bias else 'has no'} biases")
        if has_bias:
            mapped.append(sum(biases))
        for i, (got, ref) in enumerate(zip(mapped, current)):
            if got is None:
                raise ValueError(f"{prefix!r} lacks a weight for layer {layer.name!r}")
            if got.shape != ref.shape:
                raise ValueError(f"layer {layer.name!r}, weight {i}: the state_dict at "
                                 f"{prefix!r} gives shape {got.shape} (in Keras layout), "
                                 f"the layer has {ref.shape}")
        weights += mapped
    model.set_weights(weights)
