"""The whole model in NumPy: forward, loss, hand-written backward, training.

The oracle the compiled engine is tested against.  A Sequential model is a
list of layer specs and its weights the flat list ``model.get_weights()``
(the lead's contract, ``SPEC.md``)::

    {"kind": "simple_rnn", "units": H, "activation": "tanh", "use_bias": True,
     "return_sequences": False, "go_backwards": False}
    {"kind": "dense", "units": U, "activation": "linear", "use_bias": True}

Omitted keys take the values shown (Keras's defaults; a Dense activation of
None is "linear").  Weights, in Keras order: per SimpleRNN ``kernel`` (D, H),
``recurrent_kernel`` (H, H), ``bias`` (H,) if use_bias; per Dense ``kernel``
(F, U), ``bias`` (U,) if use_bias.

Semantics (Keras 3, checked against ``tests/fixtures/keras/models.npz``):

- SimpleRNN: ``z_t = x_t W + h_{t-1} U + b``, ``h_t = act(z_t)``, ``h_{-1} = 0``.
  With ``go_backwards`` the steps are taken from the last input to the first,
  and with ``return_sequences`` the output sequence is in *processing* order,
  i.e. reversed relative to the input (``output[:, 0]`` is the state after
  seeing only ``x[:, -1]``), as Keras returns it.  Without return_sequences the
  output is the last state processed.
- Dense on (B, F) is ``act(x W + b)``; on (B, T, F) it acts on every step.
- Losses ``"mse"`` and ``"mae"``: the mean over all elements (Keras's
  "sum_over_batch_size" reduction); a target (N,) stands against (N, 1).

Any Keras activation name works in either layer (:mod:`.activations`).
"""
import numpy as np

from .activations import activate, activation_grad, canonical_activation
from .kernels import dense_backward, dense_forward, mae, mse
from .optimizers import apply_gradients, init_state

__all__ = [
    "LAYER_KINDS",
    "LOSSES",
    "normalize_spec",
    "weight_shapes",
    "simple_rnn_forward",
    "simple_rnn_backward",
    "forward",
    "loss_and_gradients",
    "train",
]

LAYER_KINDS = ("simple_rnn", "dense")
LOSSES = {"mse": mse, "mae": mae}

_DEFAULTS = {
    "simple_rnn": dict(activation="tanh", use_bias=True, return_sequences=False,
                       go_backwards=False),
    "dense": dict(activation="linear", use_bias=True),
}


# ---------------------------------------------------------------- spec and weights

def normalize_spec(spec):
    """The spec with every key present and activation names canonical.

    Parameters
    ----------
    spec : list of dict
        Layer specs in order (see the module docstring).

    Returns
    -------
    list of dict
        New dicts; ``"activation"`` is Keras's canonical name (None becomes
        "linear", "swish" "silu", "hard_swish" "hard_silu").

    Raises
    ------
    ValueError
        An empty spec, an unknown kind or key, units < 1, or an unknown
        activation, naming the layer.
    """
    if isinstance(spec, dict) or not hasattr(spec, "__len__") or len(spec) == 0:
        raise ValueError(f"spec must be a non-empty list of layer dicts, got {spec!r}")
    layers = []
    for i, layer in enumerate(spec):
        if not isinstance(layer, dict) or layer.get("kind") not in LAYER_KINDS:
            raise ValueError(f"spec[{i}] must be a dict with 'kind' one of {LAYER_KINDS}, "
                             f"got {layer!r}")
        defaults = _DEFAULTS[layer["kind"]]
        unknown = sorted(set(layer) - set(defaults) - {"kind", "units"})
        if unknown:
            raise ValueError(f"spec[{i}] ({layer['kind']}) has unknown keys {unknown}")
        units = layer.get("units")
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"spec[{i}]['units'] must be a positive integer, got {units!r}")
        full = dict(defaults, **layer)
        try:
            full["activation"] = canonical_activation(full["activation"])
        except ValueError as error:
            raise ValueError(f"spec[{i}]: {error}") from None
        full["units"] = int(units)
        layers.append(full)
    return layers


def weight_shapes(spec, input_dim):
    """Shapes of ``model.get_weights()``, in Keras order.

    Parameters
    ----------
    spec : list of dict
    input_dim : int
        Features of the model's input (D of x (B, T, D) or (B, D)).

    Returns
    -------
    list of tuple
    """
    shapes = []
    features = int(input_dim)
    for layer in normalize_spec(spec):
        units = layer["units"]
        shapes.append((features, units))
        if layer["kind"] == "simple_rnn":
            shapes.append((units, units))
        if layer["use_bias"]:
            shapes.append((units,))
        features = units
    return shapes


def _split_weights(layers, weights, input_dim):
    """One (kernel, recurrent_kernel or None, bias or None) per layer."""
    shapes = weight_shapes(layers, input_dim)
    weights = list(weights)
    if len(weights) != len(shapes):
        raise ValueError(f"weights must hold {len(shapes)} arrays for this spec and input "
                         f"(shapes {shapes}), got {len(weights)}")
    for k, (w, shape) in enumerate(zip(weights, shapes)):
        if np.shape(w) != shape:
            raise ValueError(f"weights[{k}] must have shape {shape}, got {np.shape(w)}")
    arrays = iter(np.asarray(w) for w in weights)
    per_layer = []
    for layer in layers:
        kernel = next(arrays)
        recurrent = next(arrays) if layer["kind"] == "simple_rnn" else None
        bias = next(arrays) if layer["use_bias"] else None
        per_layer.append((kernel, recurrent, bias))
    return per_layer


# ---------------------------------------------------------------- the layers

def simple_rnn_forward(x, kernel, recurrent_kernel, bias=None, activation="tanh",
                       go_backwards=False):
    """Run a SimpleRNN over every step, keeping z and h.

    Parameters
    ----------
    x : ndarray of shape (B, T, D)
    kernel : ndarray of shape (D, H)
    recurrent_kernel : ndarray of shape (H, H)
    bias : ndarray of shape (H,) or None
        None for ``use_bias=False``.
    activation : str or None
        Any Keras activation name.
    go_backwards : bool
        Take the steps from ``x[:, -1]`` to ``x[:, 0]``.

    Returns
    -------
    z : ndarray of shape (B, T, H)
        Pre-activations, in processing order.
    h : ndarray of shape (B, T, H)
        States, in processing order: ``h[:, s]`` is the state after the
        ``s + 1``-th step taken (input step ``T - 1 - s`` with go_backwards).
    """
    xs = x[:, ::-1] if go_backwards else x
    B, T, _ = xs.shape
    H = kernel.shape[1]
    dtype = np.result_type(x, kernel, recurrent_kernel)
    z = np.empty((B, T, H), dtype=dtype)
    h = np.empty((B, T, H), dtype=dtype)
    h_prev = np.zeros((B, H), dtype=dtype)
    for s in range(T):
        z[:, s] = xs[:, s] @ kernel + h_prev @ recurrent_kernel
        if bias is not None:
            z[:, s] += bias
        h[:, s] = activate(activation, z[:, s])
        h_prev = h[:, s]
    return z, h


def simple_rnn_backward(x, z, h, kernel, recurrent_kernel, dh, activation="tanh",
                        go_backwards=False):
    """Backpropagation through time for :func:`simple_rnn_forward`.

    Parameters
    ----------
    x : ndarray of shape (B, T, D)
        The input, in input order.
    z, h : ndarray of shape (B, T, H)
        What :func:`simple_rnn_forward` returned (processing order).
    kernel : ndarray of shape (D, H)
    recurrent_kernel : ndarray of shape (H, H)
    dh : ndarray of shape (B, T, H)
        dLoss/dh for every state from outside the layer, in processing order.
    activation : str or None
    go_backwards : bool

    Returns
    -------
    dx : ndarray of shape (B, T, D)
        In input order.
    dkernel : ndarray of shape (D, H)
    drecurrent_kernel : ndarray of shape (H, H)
    dbias : ndarray of shape (H,)
        Also returned for ``use_bias=False`` (then it is simply unused).

    Notes
    -----
    Walking the processing order backwards, with ``g`` the gradient reaching
    h_s from the step after it::

        dz_s = vjp_act(z_s, h_s, dh_s + g)      (activation_grad)
        g    = dz_s @ U.T
        dW  += xs_s.T @ dz_s;  dU += h_{s-1}.T @ dz_s;  db += sum_b dz_s
        dxs_s = dz_s @ W.T

    where ``xs`` is x in processing order; dx is dxs flipped back.
    """
    xs = x[:, ::-1] if go_backwards else x
    B, T, _ = xs.shape
    H = kernel.shape[1]
    dxs = np.empty(xs.shape, dtype=h.dtype)
    dkernel = np.zeros(kernel.shape, dtype=h.dtype)
    drecurrent_kernel = np.zeros(recurrent_kernel.shape, dtype=h.dtype)
    dbias = np.zeros(H, dtype=h.dtype)
    carry = np.zeros((B, H), dtype=h.dtype)
    for s in reversed(range(T)):
        dz = activation_grad(activation, z[:, s], h[:, s], dh[:, s] + carry)
        h_prev = h[:, s - 1] if s > 0 else np.zeros((B, H), dtype=h.dtype)
        dkernel += xs[:, s].T @ dz
        drecurrent_kernel += h_prev.T @ dz
        dbias += dz.sum(axis=0)
        dxs[:, s] = dz @ kernel.T
        carry = dz @ recurrent_kernel.T
    dx = dxs[:, ::-1] if go_backwards else dxs
    return np.ascontiguousarray(dx), dkernel, drecurrent_kernel, dbias


# ---------------------------------------------------------------- the model

def forward(spec, weights, x):
    """Run the model.

    Parameters
    ----------
    spec : list of dict
    weights : list of ndarray
        ``model.get_weights()`` order.
    x : ndarray of shape (B, T, D), or (B, D) when no SimpleRNN comes first

    Returns
    -------
    y : ndarray
        The model's output: (B, U) or (B, T, U).
    trace : list of dict
        One per layer, what the backward pass needs: ``"input"`` (what the
        layer received), ``"z"`` (pre-activations) and ``"h"`` (activations);
        for a SimpleRNN ``z`` and ``h`` are (B, T, H) in processing order and
        the layer's output is ``h[:, -1]`` or, with return_sequences, ``h``;
        for a Dense the output is ``h``.
    """
    layers = normalize_spec(spec)
    x = np.asarray(x)
    if x.ndim not in (2, 3):
        raise ValueError(f"x must have shape (B, T, D) or (B, D), got {x.shape}")
    per_layer = _split_weights(layers, weights, x.shape[-1])
    trace = []
    out = x
    for i, (layer, (kernel, recurrent, bias)) in enumerate(zip(layers, per_layer)):
        if layer["kind"] == "simple_rnn":
            if out.ndim != 3:
                raise ValueError(f"spec[{i}] (simple_rnn) needs a 3-D input (B, T, F), but "
                                 f"{'x' if i == 0 else f'layer {i - 1}'} gives shape {out.shape}"
                                 " (set return_sequences=True on the SimpleRNN before it)")
            z, h = simple_rnn_forward(out, kernel, recurrent, bias, layer["activation"],
                                      layer["go_backwards"])
            trace.append(dict(input=out, z=z, h=h))
            out = h if layer["return_sequences"] else h[:, -1]
        else:
            z = dense_forward(out, kernel, bias if bias is not None else 0)
            h = activate(layer["activation"], z)
            trace.append(dict(input=out, z=z, h=h))
            out = h
    return out, trace


def _backward(layers, per_layer, trace, dy):
    """Gradients of every weight, in ``get_weights()`` order, given dLoss/dy."""
    grads = []
    d_out = dy
    for layer, (kernel, recurrent, bias), record in reversed(list(zip(layers, per_layer, trace))):
        x, z, h = record["input"], record["z"], record["h"]
        if layer["kind"] == "simple_rnn":
            if layer["return_sequences"]:
                dh = d_out
            else:  # only the last state processed is the output
                dh = np.zeros_like(h)
                dh[:, -1] = d_out
            d_out, dk, drk, db = simple_rnn_backward(x, z, h, kernel, recurrent, dh,
                                                     layer["activation"], layer["go_backwards"])
            layer_grads = [dk, drk] + ([db] if bias is not None else [])
        else:
            dz = activation_grad(layer["activation"], z, h, d_out)
            d_out, dk, db = dense_backward(x, kernel, dz)
            layer_grads = [dk] + ([db] if bias is not None else [])
        grads[:0] = layer_grads
    return grads


def loss_and_gradients(spec, weights, x, y, loss="mse"):
    """The loss on one batch and its gradient with respect to every weight.

    Parameters
    ----------
    spec : list of dict
    weights : list of ndarray
    x : ndarray of shape (B, T, D) or (B, D)
    y : ndarray, the shape of the model's output (or (B,) against (B, 1))
    loss : {"mse", "mae"}

    Returns
    -------
    loss : float
        Mean over all elements.
    grads : list of ndarray
        dLoss/dweight, in the order and shapes of ``weights``.

    Notes
    -----
    A hand-written backward pass: ``dy = dLoss/dy`` from the loss
    (``2 (y_pred - y) / n`` for mse, ``sign(y_pred - y) / n`` for mae, with
    sign(0) = 0 as JAX's), then each layer in reverse (Dense:
    :func:`~.kernels.dense_backward` after the activation's
    vector-Jacobian product; SimpleRNN: :func:`simple_rnn_backward`).
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    layers = normalize_spec(spec)
    y_pred, trace = forward(layers, weights, x)
    value, dy = LOSSES[loss](y, y_pred)
    per_layer = _split_weights(layers, weights, np.shape(x)[-1])
    return value, _backward(layers, per_layer, trace, dy)


def train(spec, weights, optimizer_name, optimizer_config, batches, loss="mse"):
    """Train step by step, as Keras's ``train_on_batch`` on each batch in turn.

    Parameters
    ----------
    spec : list of dict
    weights : list of ndarray
        Initial weights; not modified.
    optimizer_name : {"adam", "adamw", "sgd", "rmsprop", "adagrad"}
    optimizer_config : dict or None
        Options as :func:`~.optimizers.apply_gradients` takes them (learning
        rate or schedule, the rule's options, weight_decay, one clip option).
    batches : iterable of (x, y)
    loss : {"mse", "mae"}

    Returns
    -------
    weights : list of ndarray
        After the last step.
    losses : list of float
        Each batch's loss, computed in that step's forward pass (before the
        update), as ``train_on_batch`` returns it.

    Notes
    -----
    The optimizer sees all weights as one flat vector (the engine's layout);
    clipnorm still clips each weight array on its own, as Keras does.
    """
    weights = [np.array(w, copy=True) for w in weights]
    shapes = [w.shape for w in weights]
    sizes = [w.size for w in weights]
    params = np.concatenate([w.ravel() for w in weights])
    state = init_state(optimizer_name, params, **(optimizer_config or {}))
    iteration = 0
    losses = []
    for x, y in batches:
        value, grads = loss_and_gradients(spec, weights, x, y, loss)
        losses.append(value)
        flat_grads = np.concatenate([g.ravel() for g in grads])
        params, state, iteration = apply_gradients(optimizer_name, params, flat_grads, state,
                                                   iteration, optimizer_config, sizes)
        weights = [part.reshape(shape) for part, shape in
                   zip(np.split(params, np.cumsum(sizes)[:-1]), shapes)]
    return weights, losses
