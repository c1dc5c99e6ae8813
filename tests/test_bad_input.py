"""The bad-input matrix: every public entry point against hostile arguments.

One table, ``CASES``, built from a valid call per entry point and a list of
mutations of each argument.  Every case states its documented outcome:

* ``Raises(TypeError, "kernel")`` -- that exception, and the message names
  the argument;
* ``Same()`` -- the call succeeds and returns exactly what the valid call
  returns (layouts, read-only arrays, memmaps, lists), inputs untouched;
* ``Check(fn)`` -- the call succeeds and ``fn(result)`` holds (empty batches,
  NaN propagation in the functional API, saturation).

Never a crash, a hang or a silent NaN.  The README's reliability section
states the size of this table.
"""
import dataclasses
import os
import re
import tempfile
from typing import Any, Callable

import numpy as np
import pytest

from fastrnn import data, ops

B, T, D, H, U = 3, 4, 2, 5, 2


@dataclasses.dataclass
class Raises:
    error: type
    name: str


@dataclasses.dataclass
class Same:
    pass


@dataclasses.dataclass
class Check:
    fn: Callable[[Any], bool]
    what: str = ""


@dataclasses.dataclass
class Case:
    id: str
    call: Callable[[], Any]       # the mutated call
    expect: Any
    baseline: Callable[[], Any] = None  # the valid call, for Same()
    watched: tuple = ()           # arrays that must not be modified


CASES = []


def _valid_rnn_args(dtype=np.float64):
    rng = np.random.default_rng(0)
    return dict(
        x=rng.standard_normal((B, T, D)).astype(dtype),
        kernel=(rng.standard_normal((D, H)) * 0.5).astype(dtype),
        recurrent_kernel=(np.linalg.qr(rng.standard_normal((H, H)))[0] * 0.8).astype(dtype),
        bias=(rng.standard_normal(H) * 0.1).astype(dtype),
        h0=(rng.standard_normal((B, H)) * 0.5).astype(dtype),
    )


def _valid_args(entry):
    """A valid keyword set for each entry point of the functional API."""
    a = _valid_rnn_args()
    rng = np.random.default_rng(1)
    if entry == "rnn_forward":
        return a
    if entry == "rnn_backward":
        h = ops.rnn_forward(**a)
        return dict(x=a["x"], h=h, kernel=a["kernel"], recurrent_kernel=a["recurrent_kernel"],
                    dh=rng.standard_normal((B, T, H)), h0=a["h0"])
    if entry in ("rnn_forward_masks", "rnn_backward_masks"):
        masks = dict(mask=_valid_mask(), dropout_mask=rng.choice([0.0, 2.0], (B, D)),
                     recurrent_dropout_mask=rng.choice([0.0, 1.25], (B, H)), go_backwards=True)
        if entry == "rnn_forward_masks":
            return {**a, **masks}
        h = ops.rnn_forward(**a, **masks)
        return dict(x=a["x"], h=h, kernel=a["kernel"], recurrent_kernel=a["recurrent_kernel"],
                    dh=rng.standard_normal((B, T, H)), h0=a["h0"], **masks)
    if entry == "dense_forward":
        return dict(x=rng.standard_normal((B, T, H)), kernel=rng.standard_normal((H, U)),
                    bias=rng.standard_normal(U))
    if entry == "dense_backward":
        return dict(x=rng.standard_normal((B, T, H)), kernel=rng.standard_normal((H, U)),
                    dy=rng.standard_normal((B, T, U)))
    if entry in ("mse", "mae"):
        return dict(y_true=rng.standard_normal((B, 1)), y_pred=rng.standard_normal((B, 1)))
    raise KeyError(entry)


def _valid_mask():
    """A (B, T) step mask with a full, a partly and an entirely masked sequence."""
    return np.array([[1, 1, 1, 1], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=bool)


def _fresh(entry):
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in _valid_args(entry).items()}


def _fortran(a):
    return np.asfortranarray(a)


def _strided(a):
    # every other element along the last axis of a twice-as-wide array
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


def _reversed_strides(a):
    r = np.ascontiguousarray(a[..., ::-1])
    return r[..., ::-1]


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


_memmap_dir = tempfile.mkdtemp(prefix="fastrnn-memmap-")


def _memmap(a):
    path = os.path.join(_memmap_dir, f"m{len(os.listdir(_memmap_dir))}.dat")
    mm = np.memmap(path, dtype=a.dtype, mode="w+", shape=a.shape)
    mm[...] = a
    mm.flush()
    return np.memmap(path, dtype=a.dtype, mode="r", shape=a.shape)


def _equal_results(got, want):
    if isinstance(want, (tuple, list)):
        return len(got) == len(want) and all(_equal_results(g, w) for g, w in zip(got, want))
    if isinstance(want, float):
        return got == want
    return got.shape == want.shape and got.dtype == want.dtype and np.array_equal(got, want)


def _add_array_mutations(entry, fn, arg):
    """The mutations of one array argument of one functional entry point."""
    base = _valid_args(entry)[arg]

    def mutated(transform):
        def call():
            kwargs = _fresh(entry)
            kwargs[arg] = transform(kwargs[arg])
            return fn(**kwargs)
        return call

    def baseline():
        return fn(**_fresh(entry))

    def layout_call(transform):
        """Call with one argument re-laid-out; it must come back untouched
        and must not share memory with any result."""
        def call():
            kwargs = _fresh(entry)
            kwargs[arg] = transform(kwargs[arg])
            before = np.array(kwargs[arg], copy=True)
            result = fn(**kwargs)
            after = np.asarray(kwargs[arg])
            assert np.array_equal(after, before), f"{arg} was modified"
            for r in (result if isinstance(result, tuple) else (result,)):
                if isinstance(kwargs[arg], np.ndarray):
                    assert not np.shares_memory(r, kwargs[arg]), f"a result shares memory with {arg}"
            return result
        return call

    prefix = f"ops.{entry}-{arg}"
    # shapes and ranks
    CASES.append(Case(f"{prefix}-extra-axis", mutated(lambda a: a[..., None]), Raises(ValueError, arg)))
    if base.ndim > 1:
        # dense layers take x of any leading shape: fewer axes are still an input
        missing = (Check(lambda y: y.shape == (T, U), "(T, D) in, (T, U) out")
                   if (entry, arg) == ("dense_forward", "x") else Raises(ValueError, arg))
        CASES.append(Case(f"{prefix}-missing-axis", mutated(lambda a: a[0]), missing))
    CASES.append(Case(f"{prefix}-wrong-last-size", mutated(lambda a: np.concatenate([a, a[..., :1]], -1)),
                      Raises(ValueError, arg)))
    CASES.append(Case(f"{prefix}-scalar", mutated(lambda a: np.float64(1.0)), Raises(ValueError, arg)))
    # dtypes
    for dtype in (np.int64, np.int32, np.bool_, np.complex128, np.float16, object):
        CASES.append(Case(f"{prefix}-{np.dtype(dtype).name}", mutated(lambda a, d=dtype: a.astype(d)),
                          Raises(TypeError, arg)))
    CASES.append(Case(f"{prefix}-float32-among-float64", mutated(lambda a: a.astype(np.float32)),
                      Raises(TypeError, arg)))
    CASES.append(Case(f"{prefix}-string", mutated(lambda a: "abc"), Raises(TypeError, arg)))
    optional = arg in ("h0", "dropout_mask", "recurrent_dropout_mask")
    CASES.append(Case(f"{prefix}-none", mutated(lambda a: None),
                      Same() if optional else Raises(TypeError, arg),
                      baseline=(lambda: fn(**{**_fresh(entry), arg: None})) if optional else None))
    # layouts: same numbers, inputs untouched
    for name, transform in [("fortran", _fortran), ("strided", _strided),
                            ("negative-strides", _reversed_strides), ("read-only", _read_only),
                            ("memmap", _memmap), ("list", lambda a: a.tolist())]:
        CASES.append(Case(f"{prefix}-{name}", layout_call(transform), Same(), baseline=baseline))
    # non-finite values propagate (documented): NaN in, NaN out -- never a crash
    def nan_in(a):
        a = np.array(a, copy=True)
        a.reshape(-1)[0] = np.nan
        return a
    CASES.append(Case(f"{prefix}-nan", mutated(nan_in),
                      Check(_any_nan, "the NaN propagates to the result")))


def _flatten(result):
    if isinstance(result, tuple):
        return [np.asarray(r, dtype=np.float64).ravel() for r in result]
    return [np.asarray(result, dtype=np.float64).ravel()]


def _any_nan(result):
    return any(np.isnan(r).any() for r in _flatten(result))


_ENTRY_ARRAYS = {
    "rnn_forward": ["x", "kernel", "recurrent_kernel", "bias", "h0"],
    "rnn_backward": ["x", "h", "kernel", "recurrent_kernel", "dh", "h0"],
    "dense_forward": ["x", "kernel", "bias"],
    "dense_backward": ["x", "kernel", "dy"],
    # the recurrence with a step mask, go_backwards and dropout masks
    "rnn_forward_masks": ["dropout_mask", "recurrent_dropout_mask"],
    "rnn_backward_masks": ["dropout_mask", "recurrent_dropout_mask"],
}
for _entry, _arrays in _ENTRY_ARRAYS.items():
    for _arg in _arrays:
        _add_array_mutations(_entry, getattr(ops, _entry.replace("_masks", "")), _arg)


# --- the recurrence: batch, time, activation, saturation --------------------

def _rnn(**changes):
    def call():
        return ops.rnn_forward(**{**_valid_rnn_args(), **changes})
    return call


def _rnn_backward(**changes):
    def call():
        a = _valid_rnn_args()
        h = ops.rnn_forward(**a)
        kwargs = dict(x=a["x"], h=h, kernel=a["kernel"], recurrent_kernel=a["recurrent_kernel"],
                      dh=np.ones_like(h), h0=a["h0"])
        kwargs.update(changes)
        return ops.rnn_backward(**kwargs)
    return call


CASES += [
    Case("ops.rnn_forward-T=0", _rnn(x=np.zeros((B, 0, D))), Raises(ValueError, "x")),
    Case("ops.rnn_forward-B=0", _rnn(x=np.zeros((0, T, D)), h0=np.zeros((0, H))),
         Check(lambda h: h.shape == (0, T, H) and h.dtype == np.float64, "empty (0, T, H)")),
    Case("ops.rnn_forward-D=0", _rnn(x=np.zeros((B, T, 0)), kernel=np.zeros((0, H))),
         Check(lambda h: h.shape == (B, T, H) and np.isfinite(h).all(), "D=0 runs on bias alone")),
    Case("ops.rnn_forward-h0-batch-mismatch", _rnn(h0=np.zeros((B + 1, H))), Raises(ValueError, "h0")),
    Case("ops.rnn_forward-activation-sigmoid", _rnn(activation="sigmoid"), Raises(ValueError, "activation")),
    Case("ops.rnn_forward-activation-None", _rnn(activation=None), Raises(ValueError, "activation")),
    Case("ops.rnn_forward-activation-TANH", _rnn(activation="TANH"), Raises(ValueError, "activation")),
    Case("ops.rnn_forward-saturating-tanh", _rnn(x=np.full((B, T, D), 1e4)),
         Check(lambda h: np.isfinite(h).all() and np.abs(h).max() <= 1.0, "h within [-1, 1]")),
    Case("ops.rnn_forward-saturating-negative-tanh", _rnn(x=np.full((B, T, D), -1e4)),
         Check(lambda h: np.isfinite(h).all() and np.abs(h).max() <= 1.0, "h within [-1, 1]")),
    Case("ops.rnn_forward-saturating-relu", _rnn(x=np.full((B, T, D), 1e4), activation="relu"),
         Check(lambda h: np.isfinite(h).all() and h.min() >= 0, "finite, non-negative")),
    Case("ops.rnn_forward-inf-input", _rnn(x=np.full((B, T, D), np.inf)),
         Check(lambda h: h.shape == (B, T, H), "inf propagates as IEEE arithmetic does")),
    Case("ops.rnn_backward-saturating-tanh",
         _rnn_backward(x=np.full((B, T, D), 1e4), h=ops.rnn_forward(**{**_valid_rnn_args(), "x": np.full((B, T, D), 1e4)})),
         Check(lambda g: all(np.isfinite(r).all() for r in _flatten(g)), "finite gradients")),
    Case("ops.rnn_backward-h-batch-mismatch", _rnn_backward(h=np.zeros((B + 1, T, H))), Raises(ValueError, "h")),
    Case("ops.rnn_backward-dh-time-mismatch", _rnn_backward(dh=np.zeros((B, T + 1, H))), Raises(ValueError, "dh")),
    Case("ops.rnn_backward-activation", _rnn_backward(activation="gelu"), Raises(ValueError, "activation")),
    Case("ops.rnn_backward-B=0",
         _rnn_backward(x=np.zeros((0, T, D)), h=np.zeros((0, T, H)), dh=np.zeros((0, T, H)), h0=None),
         Check(lambda g: g[0].shape == (0, T, D) and g[4].shape == (0, H) and not g[1].any(),
               "empty dx/dh0, zero weight gradients")),
    Case("ops.rnn_backward-T=0",
         _rnn_backward(x=np.zeros((B, 0, D)), h=np.zeros((B, 0, H)), dh=np.zeros((B, 0, H))),
         Raises(ValueError, "x")),
    Case("ops.dense_forward-kernel-mismatch",
         lambda: ops.dense_forward(np.zeros((B, H)), np.zeros((H + 1, U)), np.zeros(U)),
         Raises(ValueError, "kernel")),
    Case("ops.dense_forward-bias-mismatch",
         lambda: ops.dense_forward(np.zeros((B, H)), np.zeros((H, U)), np.zeros(U + 1)),
         Raises(ValueError, "bias")),
    Case("ops.dense_backward-dy-mismatch",
         lambda: ops.dense_backward(np.zeros((B, H)), np.zeros((H, U)), np.zeros((B + 1, U))),
         Raises(ValueError, "dy")),
]


# --- the recurrence's step mask and flags -----------------------------------

def _masked(entry, **changes):
    fn = getattr(ops, entry.replace("_masks", ""))

    def call():
        return fn(**{**_fresh(entry), **{k: (v() if callable(v) else v)
                                          for k, v in changes.items()}})
    return call


def _masked_time_major(entry):
    """The valid masked call with every array laid out time-major (T, B, ...)."""
    def call():
        kwargs = _fresh(entry)
        for name in ("x", "h", "dh", "mask"):
            if name in kwargs:
                kwargs[name] = np.ascontiguousarray(np.swapaxes(kwargs[name], 0, 1))
        result = getattr(ops, entry.replace("_masks", ""))(**kwargs, time_major=True)
        if entry == "rnn_forward_masks":
            return np.ascontiguousarray(np.swapaxes(result, 0, 1))
        return (np.ascontiguousarray(np.swapaxes(result[0], 0, 1)),) + tuple(result[1:])
    return call


for _entry in ("rnn_forward_masks", "rnn_backward_masks"):
    _name = f"ops.{_entry.replace('_masks', '')}"
    _base = (lambda e=_entry: _masked(e)())
    CASES += [
        Case(f"{_name}-mask-int64", _masked(_entry, mask=lambda: _valid_mask().astype(np.int64)),
             Raises(TypeError, "mask")),
        Case(f"{_name}-mask-float", _masked(_entry, mask=lambda: _valid_mask().astype(float)),
             Raises(TypeError, "mask")),
        Case(f"{_name}-mask-int8", _masked(_entry, mask=lambda: _valid_mask().astype(np.int8)),
             Raises(TypeError, "mask")),
        Case(f"{_name}-mask-string", _masked(_entry, mask="all"), Raises(TypeError, "mask")),
        Case(f"{_name}-mask-T+1", _masked(_entry, mask=np.ones((B, T + 1), bool)),
             Raises(ValueError, "mask")),
        Case(f"{_name}-mask-B+1", _masked(_entry, mask=np.ones((B + 1, T), bool)),
             Raises(ValueError, "mask")),
        Case(f"{_name}-mask-transposed", _masked(_entry, mask=lambda: _valid_mask().T.copy()),
             Raises(ValueError, "mask")),
        Case(f"{_name}-mask-1d", _masked(_entry, mask=np.ones(B * T, bool)),
             Raises(ValueError, "mask")),
        Case(f"{_name}-mask-3d", _masked(_entry, mask=np.ones((B, T, 1), bool)),
             Raises(ValueError, "mask")),
        Case(f"{_name}-mask-time-major-not-transposed",
             _masked(_entry, mask=_valid_mask, time_major=True,
                     **{k: (lambda k=k, e=_entry: np.swapaxes(_fresh(e)[k], 0, 1))
                        for k in ("x", "h", "dh") if k in _valid_args(_entry)}),
             Raises(ValueError, "mask")),
        Case(f"{_name}-mask-uint8", _masked(_entry, mask=lambda: _valid_mask().astype(np.uint8)),
             Same(), baseline=_base),
        Case(f"{_name}-mask-list", _masked(_entry, mask=lambda: _valid_mask().tolist()),
             Same(), baseline=_base),
        Case(f"{_name}-mask-fortran", _masked(_entry, mask=lambda: np.asfortranarray(_valid_mask())),
             Same(), baseline=_base),
        Case(f"{_name}-mask-strided", _masked(_entry, mask=lambda: _strided(_valid_mask())),
             Same(), baseline=_base),
        Case(f"{_name}-mask-read-only", _masked(_entry, mask=lambda: _read_only(_valid_mask())),
             Same(), baseline=_base),
        Case(f"{_name}-time-major", _masked_time_major(_entry),
             Check(lambda r, e=_entry: all(np.allclose(a, b, rtol=1e-12, atol=1e-14) for a, b in
                                           zip(_flatten(r), _flatten(_masked(e)()))),
                   "the batch-major results, transposed")),
        Case(f"{_name}-go_backwards-str", _masked(_entry, go_backwards="yes"),
             Raises(TypeError, "go_backwards")),
        Case(f"{_name}-go_backwards-int", _masked(_entry, go_backwards=1),
             Raises(TypeError, "go_backwards")),
        Case(f"{_name}-time_major-none", _masked(_entry, time_major=None),
             Raises(TypeError, "time_major")),
        Case(f"{_name}-all-masked",
             _masked(_entry, mask=np.zeros((B, T), bool), dropout_mask=None,
                     recurrent_dropout_mask=None),
             Check(lambda r: (np.array_equal(r, np.broadcast_to(_valid_rnn_args()["h0"][:, None],
                                                                (B, T, H)))
                              if isinstance(r, np.ndarray) else not r[0].any() and not r[1].any()),
                   "all-masked: h0 carried through, no input or kernel gradient")),
    ]
CASES += [
    Case("ops.rnn_forward-mask-B=0",
         _rnn(x=np.zeros((0, T, D)), h0=None, mask=np.zeros((0, T), bool)),
         Check(lambda h: h.shape == (0, T, H), "empty (0, T, H)")),
    Case("ops.rnn_forward-positional-mask", lambda: ops.rnn_forward(
        *_valid_rnn_args().values(), "tanh", _valid_mask()), Raises(TypeError, "positional")),
    Case("ops.rnn_backward-dh-time-major-shape",
         _masked("rnn_backward_masks", time_major=True,
                 x=lambda: np.ascontiguousarray(np.swapaxes(_fresh("rnn_backward_masks")["x"], 0, 1)),
                 mask=lambda: _valid_mask().T.copy()),
         Raises(ValueError, "h")),
]


# --- losses ------------------------------------------------------------------

for _loss in ("mse", "mae"):
    _f = getattr(ops, _loss)
    CASES += [
        Case(f"ops.{_loss}-target-(N,)", lambda f=_f: f(np.zeros(B), np.ones((B, 1))),
             Check(lambda r: r[0] == pytest.approx(1.0) and r[1].shape == (B, 1), "accepted as Keras does")),
        Case(f"ops.{_loss}-count-mismatch", lambda f=_f: f(np.zeros((B + 1, 1)), np.ones((B, 1))),
             Raises(ValueError, "y_true")),
        Case(f"ops.{_loss}-complex", lambda f=_f: f(np.zeros((B, 1), complex), np.ones((B, 1))),
             Raises(TypeError, "y_true")),
        Case(f"ops.{_loss}-y_pred-int", lambda f=_f: f(np.zeros((B, 1)), np.ones((B, 1), int)),
             Raises(TypeError, "y_pred")),
        Case(f"ops.{_loss}-empty", lambda f=_f: f(np.zeros((0, 1)), np.zeros((0, 1))),
             Raises(ValueError, "y_pred")),
    ]


# --- Adam ----------------------------------------------------------------------

def _adam(**changes):
    def call():
        n = 7
        kwargs = dict(param=np.ones(n), grad=np.full(n, 0.5), m=np.zeros(n), v=np.zeros(n), step=1)
        kwargs.update({k: (v() if callable(v) else v) for k, v in changes.items()})
        ops.adam_update(**kwargs)
        return kwargs["param"]
    return call


CASES += [
    Case("ops.adam_update-valid", _adam(),
         Check(lambda p: np.allclose(p, 1 - 0.001), "first step moves by lr")),
    Case("ops.adam_update-step=0", _adam(step=0), Raises(ValueError, "step")),
    Case("ops.adam_update-grad-length", _adam(grad=np.ones(8)), Raises(ValueError, "grad")),
    Case("ops.adam_update-m-length", _adam(m=np.zeros(6)), Raises(ValueError, "m")),
    Case("ops.adam_update-v-dtype", _adam(v=np.zeros(7, np.float32)), Raises(TypeError, "v")),
    Case("ops.adam_update-param-int", _adam(param=np.ones(7, int)), Raises(TypeError, "param")),
    Case("ops.adam_update-param-read-only", _adam(param=lambda: _read_only(np.ones(7))),
         Raises(ValueError, "param")),
    Case("ops.adam_update-m-read-only", _adam(m=lambda: _read_only(np.zeros(7))), Raises(ValueError, "m")),
    Case("ops.adam_update-param-list", _adam(param=[1.0] * 7), Raises(TypeError, "param")),
    Case("ops.adam_update-learning_rate-nan", _adam(learning_rate=float("nan")),
         Raises(ValueError, "learning_rate")),
    Case("ops.adam_update-beta_1-one", _adam(beta_1=1.0), Raises(ValueError, "beta_1")),
    Case("ops.adam_update-epsilon-negative", _adam(epsilon=-1.0), Raises(ValueError, "epsilon")),
]


# --- data generators ---------------------------------------------------------

CASES += [
    Case("data.make_sequences-size=0", lambda: data.make_sequences(size=0), Raises(ValueError, "size")),
    Case("data.make_sequences-size=-5", lambda: data.make_sequences(size=-5), Raises(ValueError, "size")),
    Case("data.make_sequences-seq_len=0", lambda: data.make_sequences(seq_len=0), Raises(ValueError, "seq_len")),
    Case("data.make_sequences-size-float", lambda: data.make_sequences(size=2.0), Raises(TypeError, "size")),
    Case("data.make_sequences-size-str", lambda: data.make_sequences(size="10"), Raises(TypeError, "size")),
    Case("data.make_sequences-size-None", lambda: data.make_sequences(size=None), Raises(TypeError, "size")),
    Case("data.make_sequences-np-int", lambda: data.make_sequences(size=np.int32(4)),
         Check(lambda r: r[0].shape == (4, 3, 1), "numpy ints accepted")),
    Case("data.make_sine-noise-inf", lambda: data.make_sine(noise=np.inf), Raises(ValueError, "noise")),
    Case("data.make_sine-period-negative", lambda: data.make_sine(period=-3), Raises(ValueError, "period")),
    Case("data.make_sine-size=0", lambda: data.make_sine(size=0), Raises(ValueError, "size")),
    Case("data.make_sine-seq_len-bool", lambda: data.make_sine(seq_len=True), Raises(TypeError, "seq_len")),
    Case("data.make_sine-noise-str", lambda: data.make_sine(noise="x"), Raises((TypeError, ValueError), "noise")),
]


# --- the model API: layers, compile, fit, evaluate, predict, weights --------

import fastrnn as keras  # noqa: E402


def _tutorial(compiled=True, **rnn_kwargs):
    keras.set_random_seed(0)
    model = keras.Sequential([keras.layers.SimpleRNN(units=4, input_shape=[3, 1], **rnn_kwargs),
                              keras.layers.Dense(1)])
    if compiled:
        model.compile(optimizer="adam", loss="mse")
    return model


def _xy(n=10):
    x = np.linspace(0, 1, n * 3).reshape(n, 3, 1)
    return x, x[:, -1, 0] + 0.1


def _fit(**changes):
    def call():
        x, y = _xy()
        kwargs = dict(x=x, y=y, epochs=1, batch_size=4, verbose=0, shuffle=False)
        kwargs.update({k: (v() if callable(v) else v) for k, v in changes.items()})
        history = _tutorial().fit(**kwargs)
        return history.history.get("loss", [])
    return call


def _predict(x, compiled=True):
    def call():
        return _tutorial(compiled).predict(x() if callable(x) else x, verbose=0)
    return call


def _evaluate(**changes):
    def call():
        x, y = _xy()
        kwargs = dict(x=x, y=y, verbose=0)
        kwargs.update(changes)
        return _tutorial().evaluate(**kwargs)
    return call


def _x_mutation(fn):
    return lambda: fn(_xy()[0])


def _finite_losses(losses):
    return len(losses) == 1 and all(np.isfinite(losses))


_X = _xy()[0]
_PRED = None


def _baseline_predict():
    return _tutorial().predict(_xy()[0], verbose=0)


def _set_weights(transform):
    def call():
        model = _tutorial()
        before = model.get_weights()
        try:
            model.set_weights(transform(model.get_weights()))
        finally:
            pass
        return before, model.get_weights()
    return call


def _nan_at(a, index=0):
    a = np.array(a, dtype=np.float64, copy=True)
    a.reshape(-1)[index] = np.nan
    return a


CASES += [
    # layers
    Case("layers.SimpleRNN-units=0", lambda: keras.layers.SimpleRNN(0), Raises(ValueError, "units")),
    Case("layers.SimpleRNN-units=-3", lambda: keras.layers.SimpleRNN(-3), Raises(ValueError, "units")),
    Case("layers.SimpleRNN-units-float", lambda: keras.layers.SimpleRNN(2.5), Raises(TypeError, "units")),
    Case("layers.SimpleRNN-units-str", lambda: keras.layers.SimpleRNN("20"), Raises(TypeError, "units")),
    Case("layers.SimpleRNN-units-None", lambda: keras.layers.SimpleRNN(None), Raises(TypeError, "units")),
    Case("layers.SimpleRNN-activation-unknown", lambda: keras.layers.SimpleRNN(4, activation="sigmoidd"),
         Raises(ValueError, "activation")),
    Case("layers.SimpleRNN-activation-not-yet", lambda: keras.layers.SimpleRNN(4, activation="gelu"),
         Raises(ValueError, "activation")),
    Case("layers.SimpleRNN-input_shape-rank-1",
         lambda: keras.Sequential([keras.layers.SimpleRNN(4, input_shape=[3])]), Raises(ValueError, "rank 3")),
    Case("layers.SimpleRNN-input_shape-zero", lambda: keras.layers.SimpleRNN(4, input_shape=[3, 0]),
         Raises(ValueError, "input_shape")),
    Case("layers.SimpleRNN-input_shape-negative", lambda: keras.layers.SimpleRNN(4, input_shape=[-3, 1]),
         Raises(ValueError, "input_shape")),
    Case("layers.SimpleRNN-input_shape-str", lambda: keras.layers.SimpleRNN(4, input_shape="3,1"),
         Raises(ValueError, "input_shape")),
    Case("layers.SimpleRNN-initializer-unknown", lambda: keras.layers.SimpleRNN(4, kernel_initializer="magic"),
         Raises(ValueError, "kernel_initializer")),
    Case("layers.SimpleRNN-dtype-int", lambda: keras.layers.SimpleRNN(4, dtype="int32"),
         Raises(TypeError, "dtype")),
    Case("layers.Dense-units=0", lambda: keras.layers.Dense(0), Raises(ValueError, "units")),
    Case("layers.Dense-units=-1", lambda: keras.layers.Dense(-1), Raises(ValueError, "units")),
    Case("layers.Dense-units-bool", lambda: keras.layers.Dense(True), Raises(TypeError, "units")),
    Case("layers.Dense-activation-unknown", lambda: keras.layers.Dense(1, activation="swishy"),
         Raises(ValueError, "activation")),
    Case("layers.Input-shape-empty-before-SimpleRNN",
         lambda: keras.Sequential([keras.Input(shape=()), keras.layers.SimpleRNN(4)]),
         Raises(ValueError, "input_shape")),
    # Sequential / compile
    Case("Sequential-not-a-layer", lambda: keras.Sequential([object()]), Raises(TypeError, "layers")),
    Case("compile-optimizer-unknown", lambda: _tutorial(False).compile(optimizer="adamax", loss="mse"),
         Raises(ValueError, "optimizer")),
    Case("compile-optimizer-number", lambda: _tutorial(False).compile(optimizer=3, loss="mse"),
         Raises(TypeError, "optimizer")),
    Case("compile-loss-unknown", lambda: _tutorial(False).compile(optimizer="adam", loss="xent"),
         Raises(ValueError, "loss")),
    Case("compile-loss-None", lambda: _tutorial(False).compile(optimizer="adam", loss=None),
         Raises(ValueError, "loss")),
    Case("optimizers.Adam-learning_rate-negative", lambda: keras.optimizers.Adam(learning_rate=-1),
         Raises(ValueError, "learning_rate")),
    Case("optimizers.Adam-beta_1-one", lambda: keras.optimizers.Adam(beta_1=1.0),
         Raises(ValueError, "beta_1")),
    Case("optimizers.Adam-clipnorm-zero", lambda: keras.optimizers.Adam(clipnorm=0.0),
         Raises(ValueError, "clipnorm")),
    Case("optimizers.SGD-momentum-nan", lambda: keras.optimizers.SGD(momentum=float("nan")),
         Raises(ValueError, "momentum")),
    # fit: sizes and counts
    Case("fit-valid", _fit(), Check(_finite_losses, "one finite epoch loss")),
    Case("fit-epochs=0", _fit(epochs=0), Check(lambda h: h == [], "trains nothing, as Keras")),
    Case("fit-epochs=-1", _fit(epochs=-1), Raises(ValueError, "epochs")),
    Case("fit-epochs-float", _fit(epochs=1.5), Raises(TypeError, "epochs")),
    Case("fit-batch_size=0", _fit(batch_size=0), Raises(ValueError, "batch_size")),
    Case("fit-batch_size=-4", _fit(batch_size=-4), Raises(ValueError, "batch_size")),
    Case("fit-batch_size-str", _fit(batch_size="4"), Raises(TypeError, "batch_size")),
    Case("fit-batch_size-larger-than-data", _fit(batch_size=1000), Check(_finite_losses, "one batch")),
    Case("fit-verbose=5", _fit(verbose=5), Raises(ValueError, "verbose")),
    Case("fit-validation_split=1.5", _fit(validation_split=1.5), Raises(ValueError, "validation_split")),
    Case("fit-validation_split-leaves-nothing", _fit(validation_split=0.99), Raises(ValueError, "validation_split")),
    Case("fit-callbacks-not-callbacks", _fit(callbacks=[object()]), Raises(TypeError, "callbacks")),
    Case("fit-initial_epoch-negative", _fit(initial_epoch=-1), Raises(ValueError, "initial_epoch")),
    Case("fit-uncompiled", lambda: _tutorial(False).fit(*_xy(), verbose=0), Raises(ValueError, "compile")),
    # fit: x and y
    Case("fit-x-None", _fit(x=None), Raises(ValueError, "x")),
    Case("fit-y-None", _fit(y=None), Raises(ValueError, "y")),
    Case("fit-x-nan", _fit(x=lambda: _nan_at(_xy()[0], 5)), Raises(ValueError, "x")),
    Case("fit-x-inf", _fit(x=lambda: np.where(_xy()[0] > 0.5, np.inf, 0.0)), Raises(ValueError, "x")),
    Case("fit-y-nan", _fit(y=lambda: _nan_at(_xy()[1], 2)), Raises(ValueError, "y")),
    Case("fit-y-neg-inf", _fit(y=lambda: -np.inf * np.ones(10)), Raises(ValueError, "y")),
    Case("fit-x-huge-float64-overflows-float32", _fit(x=lambda: _xy()[0] * 1e300), Raises(ValueError, "x")),
    Case("fit-count-mismatch", _fit(y=lambda: _xy()[1][:7]), Raises(ValueError, "y")),
    Case("fit-x-wrong-features", _fit(x=lambda: np.zeros((10, 3, 2))), Raises(ValueError, "x")),
    Case("fit-x-wrong-steps", _fit(x=lambda: np.zeros((10, 5, 1))), Raises(ValueError, "x")),
    # Keras's rank adjustment: (N, T) for a model of input (T, 1), and (N, T, 1, 1) back
    Case("fit-x-rank-2-expanded", _fit(x=lambda: _xy()[0][..., 0]), Same(), baseline=_fit()),
    Case("fit-x-rank-4-squeezed", _fit(x=lambda: _xy()[0][..., None]), Same(), baseline=_fit()),
    Case("fit-x-rank-2-wide", _fit(x=lambda: np.zeros((10, 2))), Raises(ValueError, "x")),
    Case("fit-x-rank-4", _fit(x=lambda: np.zeros((10, 3, 1, 2))), Raises(ValueError, "x")),
    Case("fit-x-empty", _fit(x=lambda: np.zeros((0, 3, 1)), y=lambda: np.zeros(0)), Raises(ValueError, "x")),
    Case("fit-y-wrong-width", _fit(y=lambda: np.zeros((10, 2))), Raises(ValueError, "y")),
    Case("fit-y-rank-3", _fit(y=lambda: np.zeros((10, 1, 1))), Raises(ValueError, "y")),
    Case("fit-x-complex", _fit(x=lambda: _xy()[0].astype(complex)), Raises(TypeError, "x")),
    Case("fit-x-object", _fit(x=lambda: _xy()[0].astype(object)), Raises(TypeError, "x")),
    Case("fit-x-bool", _fit(x=lambda: _xy()[0] > 0.5), Check(_finite_losses, "cast, as Keras")),
    Case("fit-x-str", _fit(x="abc"), Raises(TypeError, "x")),
    Case("fit-y-complex", _fit(y=lambda: _xy()[1].astype(complex)), Raises(TypeError, "y")),
    Case("fit-x-ragged-list", _fit(x=lambda: [[[0.0]] * 3] * 9 + [[[0.0]] * 2]), Raises(ValueError, "x")),
    Case("fit-x-int", _fit(x=lambda: (_xy()[0] * 10).astype(int)), Check(_finite_losses, "cast to float32")),
    Case("fit-x-list", _fit(x=lambda: _xy()[0].tolist(), y=lambda: _xy()[1].tolist()),
         Check(_finite_losses, "lists accepted")),
    Case("fit-x-fortran", _fit(x=lambda: np.asfortranarray(_xy()[0])), Same(), baseline=_fit()),
    Case("fit-x-negative-strides", _fit(x=lambda: _reversed_strides(_xy()[0])), Same(), baseline=_fit()),
    Case("fit-x-read-only", _fit(x=lambda: _read_only(_xy()[0]), y=lambda: _read_only(_xy()[1])),
         Same(), baseline=_fit()),
    Case("fit-x-memmap", _fit(x=lambda: _memmap(_xy()[0]), y=lambda: _memmap(_xy()[1])),
         Same(), baseline=_fit()),
    Case("fit-validation_data-mismatch", _fit(validation_data=lambda: (_xy()[0], _xy()[1][:3])),
         Raises(ValueError, "validation_data")),
    Case("fit-validation_data-not-a-pair", _fit(validation_data=lambda: _xy()[0]),
         Raises((TypeError, ValueError), "validation_data")),
    # saturation: huge but finite inputs keep training finite (tanh saturates)
    Case("fit-x-saturating", _fit(x=lambda: _xy()[0] * 1e4), Check(_finite_losses, "finite loss")),
    # evaluate / predict
    Case("evaluate-y-mismatch", _evaluate(y=np.zeros(3)), Raises(ValueError, "y")),
    Case("evaluate-batch_size=0", _evaluate(batch_size=0), Raises(ValueError, "batch_size")),
    Case("evaluate-x-nan", _evaluate(x=_nan_at(_X)), Raises(ValueError, "x")),
    Case("predict-valid", _predict(_X), Same(), baseline=_baseline_predict),
    Case("predict-x-wrong-features", _predict(np.zeros((2, 3, 2))), Raises(ValueError, "x")),
    Case("predict-x-rank-2-expanded", _predict(np.zeros((2, 3))),
         Check(lambda p: p.shape == (2, 1), "(N, T) taken as (N, T, 1), as Keras")),
    Case("predict-x-rank-2-wide", _predict(np.zeros((2, 4))), Raises(ValueError, "x")),
    Case("predict-x-nan", _predict(_nan_at(_X)), Raises(ValueError, "x")),
    Case("predict-x-empty", _predict(np.zeros((0, 3, 1))), Raises(ValueError, "x")),
    Case("predict-x-complex", _predict(_X.astype(complex)), Raises(TypeError, "x")),
    Case("predict-x-object", _predict(_X.astype(object)), Raises(TypeError, "x")),
    Case("predict-x-list", _predict(_X.tolist()), Same(), baseline=_baseline_predict),
    Case("predict-x-fortran", _predict(np.asfortranarray(_X)), Same(), baseline=_baseline_predict),
    Case("predict-x-negative-strides", _predict(_reversed_strides(_X)), Same(), baseline=_baseline_predict),
    Case("predict-x-read-only", _predict(_read_only(_X)), Same(), baseline=_baseline_predict),
    Case("predict-x-memmap", _predict(lambda: _memmap(_X)), Same(), baseline=_baseline_predict),
    Case("predict-uncompiled", _predict(_X, compiled=False), Same(), baseline=_baseline_predict),
    Case("predict-x-saturating", _predict(_X * 1e4),
         Check(lambda p: np.isfinite(p).all(), "finite predictions")),
    Case("predict-no-input-shape",
         lambda: keras.Sequential([keras.layers.SimpleRNN(4), keras.layers.Dense(1)]).predict(
             np.zeros((2, 3, 1)), verbose=0),
         Raises(ValueError, "input shape")),
    Case("predict-batch_size=0", lambda: _tutorial().predict(_X, batch_size=0), Raises(ValueError, "batch_size")),
    # the engine: the public class over raw buffers (fastrnn._engine.Engine)
    Case("engine-reserve-timesteps=2**62", lambda: _engine_of().reserve(4, 2**62),
         Raises(ValueError, "steps")),
    Case("engine-reserve-batch=2**62", lambda: _engine_of().reserve(2**62, 4),
         Raises(ValueError, "steps")),
    Case("engine-reserve-rows-over-int", lambda: _engine_of().reserve(2**16, 2**16),
         Raises(ValueError, "rows")),
    Case("engine-reserve-batch=0", lambda: _engine_of().reserve(0, 4), Raises(ValueError, "batch_size")),
    Case("engine-reserve-batch-float", lambda: _engine_of().reserve(2.5, 4), Raises(TypeError, "batch_size")),
    Case("engine-run_epoch-batch=2**63-1", lambda: _engine_run(batch_size=2**63 - 1),
         Raises(ValueError, "batch_size")),
    Case("engine-run_epoch-losses-too-short", lambda: _engine_run(losses=np.empty(0)),
         Raises(ValueError, "losses")),
    Case("engine-run_epoch-order-out-of-range", lambda: _engine_run(order=np.array([0, 99])),
         Raises(ValueError, "order")),
    Case("engine-run_epoch-order-int32", lambda: _engine_run(order=np.arange(8, dtype=np.int32)),
         Raises(TypeError, "order")),
    Case("engine-run_epoch-epochs=0", lambda: _engine_run(epochs=0), Raises(ValueError, "epochs")),
    Case("engine-run_epoch-order-not-whole-epochs", lambda: _engine_run(epochs=3),
         Raises(ValueError, "epochs")),
    Case("engine-train_step-xb-wrong-features", lambda: _engine_of().train_step(
        np.zeros((2, 3, 5), np.float32), np.zeros((2, 1), np.float32), 0.001),
         Raises(ValueError, "xb")),
    Case("engine-train_step-yb-float64", lambda: _engine_of().train_step(
        np.zeros((2, 3, 2), np.float32), np.zeros((2, 1)), 0.001), Raises(TypeError, "yb")),
    Case("engine-train_step-lr-nan", lambda: _engine_of().train_step(
        np.zeros((2, 3, 2), np.float32), np.zeros((2, 1), np.float32), float("nan")),
         Raises(ValueError, "learning_rate")),
    Case("engine-predict-out-overlaps-x", lambda: _engine_predict_into_x(), Raises(ValueError, "out")),
    Case("engine-plan-weights-outside-params", lambda: _engine_bad_plan(), Raises(ValueError, "params")),
    # files
    Case("load_weights-directory", lambda: _tutorial().load_weights(_a_directory()),
         Raises(IsADirectoryError, "directory")),
    Case("load_weights-missing", lambda: _tutorial().load_weights("no-such-file.npz"),
         Raises(FileNotFoundError, "No")),
    # weights
    Case("set_weights-too-few", _set_weights(lambda w: w[:-1]), Raises(ValueError, "weight")),
    Case("set_weights-too-many", _set_weights(lambda w: w + [np.zeros(1)]), Raises(ValueError, "weight")),
    Case("set_weights-wrong-shape", _set_weights(lambda w: [w[0].T] + w[1:]), Raises(ValueError, "simple_rnn/kernel")),
    Case("set_weights-nan", _set_weights(lambda w: w[:-1] + [_nan_at(w[-1])]), Raises(ValueError, "dense/bias")),
    Case("set_weights-complex", _set_weights(lambda w: [w[0].astype(complex)] + w[1:]),
         Raises(TypeError, "simple_rnn/kernel")),
    Case("set_weights-not-a-list", _set_weights(lambda w: 3), Raises(TypeError, "weights")),
    Case("set_weights-lists", _set_weights(lambda w: [a.tolist() for a in w]),
         Check(lambda r: all(np.array_equal(a, b) for a, b in zip(*r)), "lists accepted")),
    Case("load_weights-not-npz", lambda: _tutorial().load_weights("weights.h5"), Raises(ValueError, "filepath")),
]


# ---------------------------------------------------------------- the functional API (issue 10)

def _functional(compiled=True):
    keras.set_random_seed(0)
    seq = keras.Input((3, 1), name="seq")
    aux = keras.Input((2,), name="aux")
    h = keras.layers.SimpleRNN(4)(seq)
    out1 = keras.layers.Dense(1, name="out1")(keras.layers.Concatenate()([h, aux]))
    out2 = keras.layers.Dense(2, name="out2")(h)
    model = keras.Model([seq, aux], [out1, out2])
    if compiled:
        model.compile(optimizer="adam", loss=["mse", "mae"])
    return model


def _fxy(n=6):
    x, _ = _xy(n)
    return [x, np.ones((n, 2))], [np.ones((n, 1)), np.zeros((n, 2))]


def _ffit(x=None, y=None, **compile_args):
    def call():
        xs, ys = _fxy()
        model = _functional(compiled=not compile_args)
        if compile_args:
            model.compile(optimizer="adam", **compile_args)
        history = model.fit(xs if x is None else x(), ys if y is None else y(), verbose=0)
        return history.history["loss"]
    return call


def _fpredict(x):
    return lambda: _functional().predict(x(), verbose=0)


def _text_model():
    ids = keras.Input((4,), dtype="int32", name="tokens")
    model = keras.Model(ids, keras.layers.Dense(1)(keras.layers.SimpleRNN(3)(
        keras.layers.Embedding(10, 2, name="emb")(ids))))
    model.compile(optimizer="sgd", loss="mse")
    return model


def _ids(bad):
    ids = np.array([[1, 2, 3, 4], [5, 6, 7, 9]], dtype=np.float64)
    ids[1, 2] = bad
    return ids


def _symbolic(make):
    def call():
        t = keras.Input((4, 3), name="t")
        return keras.Model(t, make(t))
    return call


CASES += [
    # data for several inputs and outputs
    Case("functional-fit-valid", _ffit(), Check(_finite_losses, "one finite epoch loss")),
    Case("functional-fit-x-one-array-for-two-inputs", _ffit(x=lambda: _fxy()[0][0]),
         Raises(ValueError, "x")),
    Case("functional-fit-x-three-arrays", _ffit(x=lambda: _fxy()[0] + [np.ones((6, 2))]),
         Raises(ValueError, "x")),
    Case("functional-fit-x-dict-missing-input", _ffit(x=lambda: {"seq": _fxy()[0][0]}),
         Raises(ValueError, "aux")),
    Case("functional-fit-x-dict", _ffit(x=lambda: dict(zip(["seq", "aux"], _fxy()[0]))),
         Check(_finite_losses, "keyed by input name")),
    Case("functional-fit-x-samples-differ", _ffit(x=lambda: [_fxy()[0][0], np.ones((5, 2))]),
         Raises(ValueError, "x")),
    Case("functional-fit-x1-wrong-features", _ffit(x=lambda: [_fxy()[0][0], np.ones((6, 3))]),
         Raises(ValueError, "features")),
    Case("functional-fit-x0-nan", _ffit(x=lambda: [_nan_at(_fxy()[0][0]), np.ones((6, 2))]),
         Raises(ValueError, "NaN")),
    Case("functional-fit-y-one-array-for-two-outputs", _ffit(y=lambda: _fxy()[1][0]),
         Raises(ValueError, "y")),
    Case("functional-fit-y-dict-missing-output", _ffit(y=lambda: {"out1": _fxy()[1][0]}),
         Raises(ValueError, "out2")),
    Case("functional-fit-y1-wrong-shape", _ffit(y=lambda: [_fxy()[1][0], np.ones((6, 3))]),
         Raises(ValueError, "y")),
    Case("functional-fit-y-samples-differ", _ffit(y=lambda: [np.ones((5, 1)), np.ones((6, 2))]),
         Raises(ValueError, "y")),
    Case("functional-predict-x-list-of-one", _fpredict(lambda: [_fxy()[0][0]]),
         Raises(ValueError, "x")),
    Case("functional-compile-loss-list-too-short", _ffit(loss=["mse"]), Raises(ValueError, "loss")),
    Case("functional-compile-loss-dict-missing-output", _ffit(loss={"out1": "mse"}),
         Raises(ValueError, "loss")),
    Case("functional-compile-loss-dict-unknown-name", _ffit(loss={"out1": "mse", "out2": "mse",
                                                                   "out3": "mse"}),
         Raises(ValueError, "loss")),
    Case("functional-compile-loss_weights-too-many", _ffit(loss=["mse", "mse"],
                                                           loss_weights=[1, 2, 3]),
         Raises(ValueError, "loss_weights")),
    Case("functional-compile-loss_weights-negative", _ffit(loss="mse", loss_weights=[-1.0]),
         Raises(ValueError, "loss_weights")),
    Case("functional-compile-loss_weights-nan", _ffit(loss="mse", loss_weights=[np.nan]),
         Raises(ValueError, "loss_weights")),
    Case("functional-compile-loss_weights-one-for-one-loss", _ffit(loss="mse", loss_weights=[0.5]),
         Check(_finite_losses, "Keras: one weight for the one loss")),
    # building graphs
    Case("Model-inputs-not-a-tensor", lambda: keras.Model(np.ones((2, 3)), None),
         Raises(TypeError, "inputs")),
    Case("Model-outputs-not-a-tensor", lambda: keras.Model(keras.Input((3,)), [np.ones(3)]),
         Raises(TypeError, "outputs")),
    Case("Model-inputs-empty", lambda: keras.Model([], keras.Input((3,))), Raises(ValueError, "inputs")),
    Case("Model-inputs-not-from-Input", lambda: (lambda h: keras.Model(h, keras.layers.Dense(1)(h)))(
        keras.layers.Dense(2)(keras.Input((3,)))), Raises(ValueError, "inputs")),
    Case("Model-graph-disconnected", lambda: keras.Model(keras.Input((3,)), keras.layers.Dense(1)(
        keras.Input((3,), name="other"))), Raises(ValueError, "other")),
    Case("Model-shared-layer", lambda: (lambda t, d: keras.Model(t, keras.layers.Add()(
        [d(t), d(t)])))(keras.Input((3,)), keras.layers.Dense(3)),
         Raises(NotImplementedError, "shared")),
    Case("Input-shape-zero", lambda: keras.Input((3, 0)), Raises(ValueError, "shape")),
    Case("Input-shape-str", lambda: keras.Input("3"), Raises(ValueError, "shape")),
    Case("Input-no-shape", lambda: keras.Input(), Raises(ValueError, "shape")),
    Case("Input-shape-and-batch_shape", lambda: keras.Input((3,), batch_shape=(2, 3)),
         Raises(ValueError, "batch_shape")),
    Case("Input-batch_size-zero", lambda: keras.Input((3,), batch_size=0),
         Raises(ValueError, "batch_size")),
    Case("Input-dtype-complex", lambda: keras.Input((3,), dtype="complex64"),
         Raises(TypeError, "dtype")),
    Case("Input-dtype-float16", lambda: keras.Input((3,), dtype="float16"),
         Raises(TypeError, "dtype")),
    Case("Input-dtype-nonsense", lambda: keras.Input((3,), dtype="fish"), Raises(TypeError, "dtype")),
    Case("layer-called-on-a-mix", lambda: keras.layers.Add()([keras.Input((3,)), np.ones((2, 3))]),
         Raises(TypeError, "symbolic")),
    Case("Dense-called-on-two-tensors", lambda: keras.layers.Dense(2)([keras.Input((3,)),
                                                                       keras.Input((3,))]),
         Raises(ValueError, "input")),
    # merges
    Case("Add-shapes-differ", _symbolic(lambda t: keras.layers.Add()(
        [t, keras.layers.Dense(2)(t)])), Raises(ValueError, "shape")),
    Case("Add-ranks-differ", _symbolic(lambda t: keras.layers.Add()(
        [t, keras.layers.Flatten()(t)])), Raises(ValueError, "shape")),
    Case("Add-one-tensor", _symbolic(lambda t: keras.layers.Add()(t)), Raises(TypeError, "tensors")),
    Case("Add-empty-list", _symbolic(lambda t: keras.layers.Add()([])), Raises(ValueError, "inputs")),
    Case("Subtract-three", _symbolic(lambda t: keras.layers.Subtract()([t, t, t])),
         Raises(ValueError, "inputs")),
    Case("Concatenate-shapes-differ", _symbolic(lambda t: keras.layers.Concatenate()(
        [t, keras.layers.RepeatVector(5)(keras.layers.Flatten()(t))])), Raises(ValueError, "shapes")),
    Case("Concatenate-axis-0", _symbolic(lambda t: keras.layers.Concatenate(axis=0)([t, t])),
         Raises(ValueError, "axis")),
    Case("Concatenate-axis-3", _symbolic(lambda t: keras.layers.Concatenate(axis=3)([t, t])),
         Raises(ValueError, "axis")),
    Case("Concatenate-axis-str", lambda: keras.layers.Concatenate(axis="1"), Raises(TypeError, "axis")),
    Case("Add-eager-shapes-differ", lambda: keras.layers.Add()([np.ones((2, 3)), np.ones((2, 4))]),
         Raises(ValueError, "shape")),
    Case("Add-eager-samples-differ", lambda: keras.layers.Add()([np.ones((2, 3)), np.ones((3, 3))]),
         Raises(ValueError, "samples")),
    # reshaping and wrappers
    Case("Reshape-size-differs", _symbolic(lambda t: keras.layers.Reshape((5,))(t)),
         Raises(ValueError, "target_shape")),
    Case("Reshape-two-minus-ones", lambda: keras.layers.Reshape((-1, -1))(keras.Input((4, 3))),
         Raises(ValueError, "target_shape")),
    Case("Reshape-zero", lambda: keras.layers.Reshape((0, 3)), Raises(ValueError, "target_shape")),
    Case("Reshape-not-a-tuple", lambda: keras.layers.Reshape(3), Raises(TypeError, "target_shape")),
    Case("Reshape-rank-4", _symbolic(lambda t: keras.layers.Reshape((2, 2, 3))(t)),
         Raises(ValueError, "rank")),
    Case("Flatten-unknown-steps", lambda: (lambda t: keras.Model(t, keras.layers.Flatten()(t)))(
        keras.Input((None, 3))), Raises(ValueError, "steps")),
    Case("RepeatVector-n-zero", lambda: keras.layers.RepeatVector(0), Raises(ValueError, "n")),
    Case("RepeatVector-n-float", lambda: keras.layers.RepeatVector(2.0), Raises(TypeError, "n")),
    Case("RepeatVector-on-a-sequence", _symbolic(lambda t: keras.layers.RepeatVector(2)(t)),
         Raises(ValueError, "rank")),
    Case("TimeDistributed-not-a-layer", lambda: keras.layers.TimeDistributed("dense"),
         Raises(TypeError, "layer")),
    Case("TimeDistributed-on-2d", lambda: keras.layers.TimeDistributed(keras.layers.Dense(2))(
        keras.Input((3,))), Raises(ValueError, "rank")),
    Case("Activation-unknown", lambda: keras.layers.Activation("sigmoidish"),
         Raises(ValueError, "activation")),
    # Dropout
    Case("Dropout-rate-negative", lambda: keras.layers.Dropout(-0.1), Raises(ValueError, "rate")),
    Case("Dropout-rate-above-one", lambda: keras.layers.Dropout(1.5), Raises(ValueError, "rate")),
    Case("Dropout-rate-str", lambda: keras.layers.Dropout("0.5"), Raises(ValueError, "rate")),
    Case("Dropout-rate-nan", lambda: keras.layers.Dropout(float("nan")), Raises(ValueError, "rate")),
    Case("Dropout-seed-float", lambda: keras.layers.Dropout(0.5, seed=1.5), Raises(TypeError, "seed")),
    Case("Dropout-noise_shape", lambda: keras.layers.Dropout(0.5, noise_shape=(None, 1, 3)),
         Raises(NotImplementedError, "noise_shape")),
    # Embedding: indices are checked before anything runs
    Case("Embedding-input_dim-zero", lambda: keras.layers.Embedding(0, 2), Raises(ValueError, "input_dim")),
    Case("Embedding-input_dim-float", lambda: keras.layers.Embedding(5.0, 2),
         Raises(TypeError, "input_dim")),
    Case("Embedding-output_dim-bool", lambda: keras.layers.Embedding(5, True),
         Raises(TypeError, "output_dim")),
    Case("Embedding-weights-wrong-shape", lambda: keras.layers.Embedding(5, 2, weights=np.ones((4, 2))),
         Raises(ValueError, "weights")),
    Case("Embedding-weights-nan", lambda: keras.layers.Embedding(2, 2, weights=np.full((2, 2), np.nan)),
         Raises(ValueError, "weights")),
    Case("Embedding-on-3d", _symbolic(lambda t: keras.layers.Embedding(5, 2)(t)),
         Raises(ValueError, "shape")),
    Case("Embedding-index-too-large", lambda: _text_model().predict(_ids(10), verbose=0),
         Raises(ValueError, "input_dim")),
    Case("Embedding-index-negative", lambda: _text_model().predict(_ids(-1), verbose=0),
         Raises(ValueError, "input_dim")),
    Case("Embedding-index-nan", lambda: _text_model().predict(_ids(np.nan), verbose=0),
         Raises(ValueError, "input_dim")),
    Case("Embedding-index-inf", lambda: _text_model().predict(_ids(np.inf), verbose=0),
         Raises(ValueError, "input_dim")),
    Case("Embedding-index-huge", lambda: _text_model().predict(_ids(2.0**62), verbose=0),
         Raises(ValueError, "input_dim")),
    Case("Embedding-index-out-of-range-in-fit", lambda: _text_model().fit(
        _ids(10), np.zeros(2), verbose=0), Raises(ValueError, "input_dim")),
    Case("Embedding-index-out-of-range-in-evaluate", lambda: _text_model().evaluate(
        _ids(10), np.zeros(2), verbose=0), Raises(ValueError, "input_dim")),
    Case("Embedding-index-out-of-range-eager", lambda: keras.layers.Embedding(10, 2)(_ids(12)),
         Raises(ValueError, "input_dim")),
    Case("Embedding-index-truncated", lambda: _text_model().predict(_ids(9.9), verbose=0),
         Check(lambda p: p.shape == (2, 1), "9.9 is row 9, as Keras's cast")),
    Case("Embedding-index-wrong-length", lambda: _text_model().predict(np.ones((2, 5)), verbose=0),
         Raises(ValueError, "x")),
    Case("Embedding-engine-index-out-of-range", lambda: _text_model()._runner().predictor().predict(
        np.full((1, 4, 1), 10.0, np.float32), np.zeros((1, 1), np.float32), 1),
         Raises(ValueError, "input_dim")),
    # the graph engine
    Case("engine-plan-input-from-a-later-node", lambda: _engine_plan(
        [{"kind": "input", "inputs": [], "width": 2, "seq": False},
         {"kind": "dense", "inputs": [2], "width": 2, "seq": False, "p0": 0},
         {"kind": "dense", "inputs": [1], "width": 2, "seq": False, "p0": 0}], [2]),
         Raises(ValueError, "inputs")),
    Case("engine-plan-merge-widths-differ", lambda: _engine_plan(
        [{"kind": "input", "inputs": [], "width": 2, "seq": False},
         {"kind": "input", "inputs": [], "width": 3, "seq": False, "arg": 1},
         {"kind": "add", "inputs": [0, 1], "width": 2, "seq": False}], [2]),
         Raises(ValueError, "width")),
    Case("engine-plan-embedding-of-a-dense", lambda: _engine_plan(
        [{"kind": "input", "inputs": [], "width": 2, "seq": True},
         {"kind": "dense", "inputs": [0], "width": 1, "seq": True, "p0": 0},
         {"kind": "embedding", "inputs": [1], "width": 2, "seq": True, "arg": 3, "p0": 0}], [2]),
         Raises(ValueError, "input")),
    Case("engine-plan-no-outputs", lambda: _engine_plan(
        [{"kind": "input", "inputs": [], "width": 2, "seq": False}], []), Raises(ValueError, "outputs")),
    # masks in plans and calls
    Case("engine-plan-mask-flag-on-a-dense", lambda: _engine_plan(
        [{"kind": "input", "inputs": [], "width": 2, "seq": True},
         {"kind": "dense", "inputs": [0], "width": 1, "seq": True, "p0": 0, "masked": True}],
        [1]), Raises(ValueError, "embedding")),
    Case("engine-plan-zero-masked-dense", lambda: _engine_plan(
        [{"kind": "input", "inputs": [], "width": 2, "seq": True},
         {"kind": "dense", "inputs": [0], "width": 1, "seq": True, "p0": 0,
          "zero_masked": True}], [1]), Raises(ValueError, "recurrent")),
    Case("engine-plan-masked-rnn-without-a-mask", lambda: _engine_plan(
        [{"kind": "input", "inputs": [], "width": 2, "seq": True},
         {"kind": "simple_rnn", "inputs": [0], "width": 2, "seq": False, "p0": 0, "p1": 4,
          "masked": True}], [1]), Raises(ValueError, "mask")),
    Case("engine-predict-masks-wrong-shape", lambda: _masked_predictor(np.zeros((2, 3), np.uint8)),
         Raises(ValueError, "masks")),
    Case("engine-predict-masks-wrong-dtype", lambda: _masked_predictor(np.zeros((2, 4), bool)),
         Raises(ValueError, "masks")),
    Case("engine-predict-masks-list-length", lambda: _masked_predictor([None, None]),
         Raises(ValueError, "masks")),
    Case("engine-loss-mask-wrong-shape", lambda: _engine_module().loss_and_gradient(
        np.zeros((2, 4, 1)), np.zeros((2, 4, 1)), code=0, mask=np.ones((2, 3), bool)),
         Raises(ValueError, "mask")),
    Case("Layer-call-mask-argument", lambda: keras.layers.Dense(2)(
        np.zeros((1, 3, 2), np.float32), mask=np.ones((1, 3), bool)),
         Raises(NotImplementedError, "mask")),
    Case("engine-x-list-too-long", lambda: _engine_of().predict(
        [np.zeros((2, 3, 2), np.float32)] * 2, np.zeros((2, 1), np.float32), 2), Raises(ValueError, "x")),
    Case("engine-y-list-for-one-output", lambda: _engine_of().train_step(
        np.zeros((2, 3, 2), np.float32), [np.zeros((2, 1), np.float32)] * 2, 0.001),
         Raises(ValueError, "yb")),
    Case("engine-set_losses-count", lambda: _engine_of().set_losses([0, 0], [1.0, 1.0]),
         Raises(ValueError, "loss")),
    Case("engine-set_losses-weight-negative", lambda: _engine_of().set_losses([0], [-1.0]),
         Raises(ValueError, "loss")),
]


def _engine_plan(nodes, outputs):
    from fastrnn import _engine
    from fastrnn.engine import lower
    p = lower(nodes, outputs)
    params = np.zeros(64, np.float32)
    return _engine.Engine(p.plan, p.inputs, p.outputs, params, np.zeros_like(params))

def _engine_module():
    from fastrnn import _engine
    return _engine


def _masked_predictor(masks):
    import fastrnn
    fastrnn.set_random_seed(0)
    x = fastrnn.Input((4, 2))
    model = fastrnn.Model(x, fastrnn.layers.SimpleRNN(2, return_sequences=True)(
        fastrnn.layers.Masking()(x)))
    out = np.zeros((2, 4, 2), np.float32)
    masks = masks if isinstance(masks, list) else [masks]
    return model._runner().predictor().predict(np.ones((2, 4, 2), np.float32), out, 2,
                                               masks=masks)


def _engine_of():
    import fastrnn
    fastrnn.set_random_seed(0)
    model = fastrnn.Sequential([fastrnn.Input((3, 2)), fastrnn.layers.SimpleRNN(4),
                                fastrnn.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model._trainer()


def _engine_run(order=None, batch_size=4, losses=None, epochs=1):
    engine = _engine_of()
    engine.bind_data(np.zeros((8, 3, 2), np.float32), np.zeros((8, 1), np.float32))
    order = np.arange(8, dtype=np.int64) if order is None else order
    losses = np.empty(64) if losses is None else losses
    return engine.run_epoch(order, batch_size, np.full(64, 0.001), losses, epochs=epochs)


def _engine_predict_into_x():
    x = np.zeros((4, 3, 2), np.float32)
    return _engine_of().predict(x, x[:, 0, :1].reshape(-1)[:4].reshape(4, 1), 4)


def _engine_bad_plan():
    from fastrnn import _engine
    from fastrnn.engine import lower
    params = np.zeros(10, np.float32)
    p = lower([{"kind": "input", "inputs": [], "width": 4, "seq": False},
               {"kind": "dense", "inputs": [0], "width": 3, "seq": False, "p0": 0, "p2": 12}],
              [1])
    return _engine.Engine(p.plan, p.inputs, p.outputs, params, np.zeros_like(params))


def _a_directory():
    return tempfile.mkdtemp(suffix=".npz")



# --- losses, metrics, weights and data sources (issue 11) ---------------------

def _classifier(units=3, loss="sparse_categorical_crossentropy", activation="softmax"):
    keras.set_random_seed(0)
    model = keras.Sequential([keras.layers.SimpleRNN(4, input_shape=[3, 1]),
                              keras.layers.Dense(units, activation=activation)])
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


def _labels(*changes):
    y = np.arange(10, dtype=float) % 3
    for i, v in changes:
        y[i] = v
    return y


def _fit_labels(y, **kwargs):
    return lambda: _classifier(**kwargs).fit(_xy()[0], y, epochs=1, verbose=0).history["loss"]


def _gen(batches):
    def call():
        return _tutorial().fit(iter(batches()), epochs=1, verbose=0).history["loss"]
    return call


def _good_batches():
    x, y = _xy()
    return [(x[:4], y[:4]), (x[4:8], y[4:8]), (x[8:], y[8:])]


def _raising():
    x, y = _xy()
    yield x[:4], y[:4]
    raise OSError("the generator lost its file")


def _bce_linear_output():
    x, y = _xy()
    model = _tutorial(False)
    model.set_weights([w * 50 for w in model.get_weights()])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model.fit(x, (y > 0.5).astype(float), epochs=1, verbose=0).history["loss"]


CASES += [
    Case("compile-loss-custom-function", lambda: _tutorial(False).compile(loss=lambda a, b: a),
         Raises(TypeError, "loss")),
    Case("compile-loss-reduction-sum",
         lambda: keras.losses.MeanSquaredError(reduction="sum"), Raises(ValueError, "reduction")),
    Case("compile-loss-huber-delta-negative", lambda: keras.losses.Huber(delta=-1.0),
         Raises(ValueError, "delta")),
    Case("compile-loss-label_smoothing-2", lambda: keras.losses.BinaryCrossentropy(
        label_smoothing=2.0), Raises(ValueError, "label_smoothing")),
    Case("compile-loss-axis-1", lambda: keras.losses.CategoricalCrossentropy(axis=1),
         Raises(ValueError, "axis")),
    Case("compile-metrics-not-a-list", lambda: _tutorial(False).compile(loss="mse", metrics="mae"),
         Raises(ValueError, "metrics")),
    Case("compile-metrics-unknown", lambda: _tutorial(False).compile(loss="mse", metrics=["rmse"]),
         Raises(ValueError, "metric")),
    Case("compile-metrics-AUC-missing", lambda: _tutorial(False).compile(loss="mse",
                                                                         metrics=["AUC"]),
         Raises(ValueError, "metric")),
    Case("compile-metrics-top_k-k=0", lambda: keras.metrics.TopKCategoricalAccuracy(k=0),
         Raises(ValueError, "k")),
    Case("fit-sample_weight-wrong-length", _fit(sample_weight=np.ones(7)),
         Raises(ValueError, "sample_weight")),
    Case("fit-sample_weight-2d", _fit(sample_weight=np.ones((10, 3))),
         Raises(ValueError, "sample_weight")),
    Case("fit-sample_weight-nan", _fit(sample_weight=lambda: _nan_at(np.ones(10), 3)),
         Raises(ValueError, "sample_weight")),
    Case("fit-sample_weight-negative", _fit(sample_weight=-np.ones(10)),
         Raises(ValueError, "sample_weight")),
    Case("fit-sample_weight-complex", _fit(sample_weight=np.ones(10, complex)),
         Raises(TypeError, "sample_weight")),
    Case("fit-sample_weight-zeros", _fit(sample_weight=np.zeros(10)),
         Check(lambda h: h == [0.0], "loss 0, as Keras (the count divides, not the weights)")),
    Case("fit-class_weight-negative", _fit(class_weight={0: -1.0}),
         Raises(ValueError, "class_weight")),
    Case("fit-class_weight-not-a-dict", _fit(class_weight=[1.0, 2.0]),
         Raises(ValueError, "class_weight")),
    Case("fit-class_weight-key-str", _fit(class_weight={"a": 1.0}),
         Raises(ValueError, "class_weight")),
    Case("fit-class_weight-and-sample_weight", _fit(class_weight={0: 1.0},
                                                    sample_weight=np.ones(10)),
         Raises(ValueError, "class_weight")),
    Case("fit-steps_per_epoch-zero", _fit(steps_per_epoch=0), Raises(ValueError, "steps_per_epoch")),
    Case("fit-validation_freq-zero", _fit(validation_freq=0), Raises(ValueError, "validation_freq")),
    Case("fit-validation_data-weights-wrong",
         _fit(validation_data=lambda: (_xy()[0], _xy()[1], np.ones(3))),
         Raises(ValueError, "validation_data")),
    Case("fit-sparse-label-out-of-range", _fit_labels(_labels((4, 3.0))), Raises(ValueError, "y")),
    Case("fit-sparse-label-negative", _fit_labels(_labels((2, -1.0))), Raises(ValueError, "y")),
    Case("fit-sparse-label-fraction", _fit_labels(_labels((0, 0.5))), Raises(ValueError, "y")),
    Case("fit-sparse-labels-one-hot", _fit_labels(np.eye(3)[_labels().astype(int)]),
         Raises(ValueError, "y")),
    Case("fit-sparse-labels-valid", _fit_labels(_labels()), Check(_finite_losses, "trains")),
    Case("fit-bce-probabilities-outside-0-1", _bce_linear_output,
         Check(_finite_losses, "clipped as Keras: finite")),
    Case("fit-generator-valid", _gen(_good_batches), Check(_finite_losses, "one epoch")),
    Case("fit-generator-empty", _gen(lambda: []), Raises(ValueError, "x")),
    Case("fit-generator-x-alone", _gen(lambda: [b[0] for b in _good_batches()]),
         Raises(ValueError, "batch")),
    Case("fit-generator-wrong-shape", _gen(lambda: _good_batches()[:1] + [(np.zeros((4, 3, 2)),
                                                                           np.zeros(4))]),
         Raises(ValueError, "batch")),
    Case("fit-generator-5-tuple", _gen(lambda: [tuple(_good_batches()[0]) * 2 + (None,)]),
         Raises(ValueError, "batch")),
    Case("fit-generator-raises", lambda: _tutorial().fit(_raising(), epochs=1, verbose=0),
         Raises(OSError, "generator")),
    Case("fit-generator-with-y", lambda: _tutorial().fit(iter(_good_batches()), _xy()[1],
                                                         verbose=0),
         Raises(ValueError, "y")),
    Case("evaluate-sample_weight-wrong", _evaluate(sample_weight=np.ones(4)),
         Raises(ValueError, "sample_weight")),
    Case("evaluate-steps-zero", _evaluate(steps=0), Raises(ValueError, "steps")),
    Case("predict-generator-bad-batch", lambda: _tutorial().predict(iter([np.zeros((2, 4, 1))]),
                                                                    verbose=0),
         Raises(ValueError, "x")),
]


# -- stateful=True: a fixed batch size, every batch exactly that size -------------------------
def _stateful(batch=4, compiled=True):
    model = keras.Sequential([keras.Input(batch_shape=(batch, 3, 1)),
                              keras.layers.SimpleRNN(4, stateful=True), keras.layers.Dense(1)])
    if compiled:
        model.compile(optimizer="adam", loss="mse")
    return model


def _stateful_call(method, n=8, **kwargs):
    def call():
        x, y = np.ones((n, 3, 1)), np.ones((n, 1))
        model = _stateful()
        args = (x,) if method == "predict" else (x, y)
        return getattr(model, method)(*args, verbose=0, **kwargs)
    return call


def _stateful_generator(method, sizes):
    def call():
        batches = [(np.ones((b, 3, 1)), np.ones((b, 1))) for b in sizes]
        model = _stateful()
        source = iter([x for x, _ in batches]) if method == "predict" else iter(batches)
        return getattr(model, method)(source, verbose=0)
    return call


CASES += [
    Case("stateful-fit-valid", _stateful_call("fit", batch_size=4),
         Check(lambda h: np.isfinite(h.history["loss"][0]), "trains")),
    Case("stateful-fit-batch_size-differs", _stateful_call("fit", batch_size=2),
         Raises(ValueError, "batch_size")),
    Case("stateful-fit-last-batch-partial", _stateful_call("fit", n=10, batch_size=4),
         Raises(ValueError, "batch_size")),
    Case("stateful-fit-fewer-samples-than-the-batch", _stateful_call("fit", n=3),
         Raises(ValueError, "batch_size")),
    Case("stateful-fit-validation-partial", _stateful_call(
        "fit", batch_size=4, validation_data=(np.ones((6, 3, 1)), np.ones((6, 1)))),
         Raises(ValueError, "batch_size")),
    Case("stateful-fit-generator-last-batch-smaller", _stateful_generator("fit", [4, 4, 2]),
         Raises(ValueError, "batch_size")),
    Case("stateful-evaluate-batch_size-differs", _stateful_call("evaluate", batch_size=8),
         Raises(ValueError, "batch_size")),
    Case("stateful-evaluate-last-batch-partial", _stateful_call("evaluate", n=6),
         Raises(ValueError, "batch_size")),
    Case("stateful-evaluate-generator-batch-larger", _stateful_generator("evaluate", [8]),
         Raises(ValueError, "batch_size")),
    Case("stateful-predict-default-batch_size", _stateful_call("predict"),
         Check(lambda p: p.shape == (8, 1), "batches of the fixed size")),
    Case("stateful-predict-batch_size-differs", _stateful_call("predict", batch_size=32),
         Raises(ValueError, "batch_size")),
    Case("stateful-predict-last-batch-partial", _stateful_call("predict", n=5),
         Raises(ValueError, "batch_size")),
    Case("stateful-predict-generator-batch-smaller", _stateful_generator("predict", [4, 3]),
         Raises(ValueError, "batch_size")),
    Case("stateful-without-batch-size", lambda: keras.Sequential([
        keras.Input((3, 1)), keras.layers.SimpleRNN(4, stateful=True)]),
         Raises(ValueError, "stateful")),
    Case("stateful-functional-without-batch-size", _symbolic(
        lambda t: keras.layers.SimpleRNN(4, stateful=True)(t)), Raises(ValueError, "stateful")),
    Case("stateful-reset_states-wrong-shape", lambda: _stateful().layers[0].reset_states(
        np.zeros((3, 4))), Raises(ValueError, "states")),
    Case("stateful-reset_states-two-arrays", lambda: _stateful().layers[0].reset_states(
        [np.zeros((4, 4))] * 2), Raises(ValueError, "states")),
    Case("stateful-reset_states-nan", lambda: _stateful().layers[0].reset_states(
        np.full((4, 4), np.nan)), Raises(ValueError, "states")),
    Case("stateful-reset_states-str", lambda: _stateful().layers[0].reset_states(
        np.array([["a"] * 4] * 4)), Raises(TypeError, "states")),
    Case("stateful-engine-states-wrong-width", lambda: _stateful()._runner().predictor()
         .set_states([np.zeros((4, 5), np.float32)]), Raises(ValueError, "states")),
    Case("stateful-engine-states-wrong-dtype", lambda: _stateful()._runner().predictor()
         .set_states([np.zeros((4, 4))]), Raises(TypeError, "states")),
    Case("stateful-engine-states-count", lambda: _stateful()._runner().predictor()
         .set_states([]), Raises(ValueError, "states")),
    Case("stateful-engine-train_step-batch", lambda: _stateful()._trainer().train_step(
        np.zeros((2, 3, 1), np.float32), np.zeros((2, 1), np.float32), 0.001),
         Raises(ValueError, "batch_size")),
]

@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case):
    expect = case.expect
    if isinstance(expect, Raises):
        with pytest.raises(expect.error) as info:
            case.call()
        assert re.search(rf"\b{expect.name}\b", str(info.value)), (
            f"message does not name {expect.name!r}: {info.value}")
    elif isinstance(expect, Same):
        got = case.call()
        assert _equal_results(got, case.baseline()), "result differs from the plain call"
    else:
        result = case.call()
        assert expect.fn(result), expect.what


def test_readme_states_the_matrix_size():
    readme = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")
    with open(readme, encoding="utf-8") as f:
        stated = re.search(r"bad-input matrix.*?(\d+) cases", f.read(), re.S)
    assert stated, "README's reliability section does not state the matrix size"
    assert int(stated.group(1)) == len(CASES), "update the README's reliability section"
