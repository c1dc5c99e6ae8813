"""Shared pieces of the masked-recurrence tests: problems, masks, Keras fixtures."""
import json

import numpy as np

from fastrnn.reference import recurrence as rec

import keras_fixture
from problems import make_rnn_problem


def padding_mask(lengths, T, padding):
    """(B, T) bools of sequences of ``lengths`` padded "post" (right) or "pre" (left)."""
    steps = np.arange(T)[None, :]
    lengths = np.asarray(lengths)[:, None]
    return steps < lengths if padding == "post" else steps >= T - lengths


def masked_problem(B, T, D, H, seed, with_h0=True, mask="random", dropout=False,
                   recurrent_dropout=False):
    """A random problem (tests/problems.py) plus a step mask and dropout masks.

    ``mask``: None, "random" (with an all-masked and a full sequence when B
    allows), "post" or "pre" (random lengths 0..T).
    """
    p = make_rnn_problem(B, T, D, H, seed, with_h0)
    rng = np.random.default_rng(seed + 1)
    if mask == "random":
        m = rng.random((B, T)) < 0.6
        if B > 1:
            m[0] = False
        if B > 2:
            m[1] = True
        p["mask"] = m
    elif mask in ("post", "pre"):
        p["mask"] = padding_mask(rng.integers(0, T + 1, B), T, mask)
    else:
        p["mask"] = None
    p["dropout_mask"] = rec.dropout_mask((B, D), 0.3, rng) if dropout else None
    p["recurrent_dropout_mask"] = rec.dropout_mask((B, H), 0.4, rng) if recurrent_dropout else None
    return p


def mask_kwargs(p, go_backwards=False):
    return dict(mask=p["mask"], go_backwards=go_backwards, dropout_mask=p["dropout_mask"],
                recurrent_dropout_mask=p["recurrent_dropout_mask"])


def run_each_alone(p, lengths, padding, go_backwards, activation, fn_forward, fn_backward):
    """States and gradients of every sequence run alone on its unpadded steps."""
    B, T, _ = p["x"].shape
    H = p["kernel"].shape[1]
    h = np.empty((B, T, H))
    dx = np.zeros_like(p["x"])
    dweights = [np.zeros_like(p[k]) for k in ("kernel", "recurrent_kernel", "bias")]
    dh0 = np.zeros((B, H))
    for b, L in enumerate(lengths):
        h0 = p["h0"][b:b + 1]
        if L == 0:
            h[b] = h0
            continue
        steps = slice(0, L) if padding == "post" else slice(T - L, T)
        x = p["x"][b:b + 1, steps]
        hb = fn_forward(x, p["kernel"], p["recurrent_kernel"], p["bias"], h0, activation,
                        go_backwards=go_backwards)
        h[b] = h0
        h[b, steps] = hb[0]
        # the positions processed after the sequence's steps carry its final state
        after = (slice(L, T) if not go_backwards else None) if padding == "post" else \
            (None if not go_backwards else slice(0, T - L))
        if after is not None:
            h[b, after] = hb[0, 0 if go_backwards else -1]
        grads = fn_backward(x, hb, p["kernel"], p["recurrent_kernel"], p["dh"][b:b + 1, steps],
                            h0, activation, go_backwards=go_backwards)
        dx[b, steps] = grads[0][0]
        for total, g in zip(dweights, grads[1:4]):
            total += g
        dh0[b] = grads[4][0]
    return h, (dx, *dweights, dh0)


# ---------------------------------------------------------------- Keras fixtures

BACKEND_RULES = {"jax": "state", "tensorflow": "zeros"}


def keras_cases(backend):
    """(name, arrays, options) of every case of tests/fixtures/keras/recurrence_<backend>.npz."""
    data = keras_fixture.load(f"recurrence_{backend}")
    out = []
    for name in data["cases"]:
        name = str(name)
        prefix = f"{name}/"
        arrays = {k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix)}
        options = json.loads(str(arrays.pop("options")))
        if "mask" in arrays:
            arrays["mask"] = arrays["mask"].astype(bool)
        out.append((name, arrays, options))
    return out
