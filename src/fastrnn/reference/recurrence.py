"""The SimpleRNN recurrence with Keras's masks, initial state and dropout (NumPy oracle).

This module is the readable definition the compiled recurrence
(``rnn_forward_masked_k`` / ``rnn_backward_masked_k`` in ``_kernels.pyx``, and
:func:`fastrnn.ops.rnn_forward` / :func:`fastrnn.ops.rnn_backward` over them)
is tested against; :func:`fastrnn.reference.rnn_forward` and
:func:`fastrnn.reference.rnn_backward` are these functions restricted to the
activations :mod:`fastrnn.ops` takes.  One loop over the steps, no tricks.

Conventions
-----------
Batch-major arrays: ``x`` (B, T, D), states ``h`` (B, T, H), ``mask`` (B, T).
``h[:, t]`` is always the state after the step that reads ``x[:, t]``, also
with ``go_backwards`` (then ``h[:, 0]`` is the last state); Keras's outputs
are taken from ``h`` by :func:`keras_rnn_output`.

Keras 3's rules (``keras/src/layers/rnn/simple_rnn.py``, ``rnn.py``,
``dropout_rnn_cell.py`` and ``keras/src/backend/*/rnn.py``; checked against
Keras 3.15 with the JAX and the TensorFlow backends, values recorded in
``tests/fixtures/keras/recurrence*.npz`` by ``tools/keras_fixtures/recurrence.py``)
-------------------------------------------------------------------------
Step ``t`` computes, with ``p`` the previous *processed* step (``t - 1``, or
``t + 1`` with go_backwards) and ``h_p = h0`` (zeros by default) before the
first::

    z_t = (x_t * dm) @ kernel + (h_p * rm) @ recurrent_kernel + bias
    h_t = act(z_t)     if mask[:, t]
    h_t = h_p          otherwise (the state is carried unchanged)

- **Mask** (B, T), a bool per sample and *input* position (what
  ``Masking``/``Embedding(mask_zero=True)`` produce): a masked step leaves
  the state as it was; its input reaches nothing, so it gets no gradient.
  Right padding (``pad_sequences(padding="post")``) and left padding (the
  default ``"pre"``) follow from the same rule: the final state of a
  sequence is the state after its last unmasked step, exactly as if the
  sequence had been run alone, unpadded.
- **Output at a masked step** (``zero_output_for_mask=False``, which
  SimpleRNN always uses): the previous output.  The backends agree on this
  except before a sequence's first unmasked step, where there is no previous
  output: the JAX and NumPy backends output the carried state (``states[0]``,
  i.e. ``h0``), the TensorFlow and torch backends (and every backend with
  ``unroll=True``) output zeros.  The two differ only when ``h0`` is not
  zero (``initial_state=`` or ``stateful=True``) and a sequence starts with
  masked steps (left padding), or is masked entirely.  The states, and so
  the final state (``return_state``), are the same on every backend.
  :func:`keras_rnn_output` gives either (``leading="state"`` or
  ``"zeros"``); the compiled states are the ``"state"`` outputs as they are.
- **go_backwards**: the steps are taken from ``x[:, T-1]`` to ``x[:, 0]``
  and the mask is read at the position being processed (it is reversed with
  the input); the returned sequence is in processing order, i.e. reversed,
  ``output[:, s] = h[:, T-1-s]``, and the last output is ``h[:, 0]``.  The
  mask Keras passes on with that sequence is the input mask *as it was*
  (``RNN.compute_mask`` returns it unchanged), not reversed.
- **Last output** (``return_sequences=False``): the output of the last
  processed step, i.e. the state after the last unmasked step (``h0`` if
  none; zeros on TensorFlow, see above).
- **Dropout** (``dropout=rate``, ``recurrent_dropout=rate``; ``training``
  only): ``DropoutRNNCell`` draws one mask per call, shaped like one step,
  ``dm`` (B, D) for the input and ``rm`` (B, H) for the state, and reuses it
  at every step of that batch; each entry is 0 with probability ``rate`` and
  ``1 / (1 - rate)`` otherwise (inverted dropout,
  ``keras.random.dropout(ones, rate)``).  ``SimpleRNNCell.call`` multiplies
  the input ``x_t`` by ``dm`` before the kernel and the previous state by
  ``rm`` before the recurrent kernel (``h0`` too, at the first step); the
  state it carries on is ``h_t`` itself, never ``h_t * rm``.  Masked steps
  carry the unmasked state ``h_p``.
- **Initial state**: ``initial_state=`` and ``stateful=True`` give ``h0``;
  its gradient is ``dh0``.
"""
import numpy as np

from .activations import activate, activation_grad, derivative_from_output

__all__ = [
    "recurrence_forward",
    "recurrence_backward",
    "keras_rnn_output",
    "keras_rnn_output_gradient",
    "dropout_mask",
]


def _processing_order(T, go_backwards):
    return range(T - 1, -1, -1) if go_backwards else range(T)


def _step_mask(mask, B, T):
    """The mask as bools (B, T); all True when None."""
    if mask is None:
        return np.ones((B, T), dtype=bool)
    return np.asarray(mask).astype(bool)


def recurrence_forward(x, kernel, recurrent_kernel, bias=None, h0=None, activation="tanh",
                       mask=None, go_backwards=False, dropout_mask=None,
                       recurrent_dropout_mask=None):
    """States of a SimpleRNN for every step, with Keras's masks.

    Parameters
    ----------
    x : ndarray of shape (B, T, D)
    kernel : ndarray of shape (D, H)
    recurrent_kernel : ndarray of shape (H, H)
    bias : ndarray of shape (H,), optional
        None for ``use_bias=False``.
    h0 : ndarray of shape (B, H), optional
        Initial state; zeros when None.
    activation : str or None
        Any Keras activation name (None: linear).
    mask : ndarray of shape (B, T), optional
        True where a step is processed; None: every step.
    go_backwards : bool
        Take the steps from ``x[:, T-1]`` to ``x[:, 0]``.
    dropout_mask : ndarray of shape (B, D), optional
        Multiplies every input step (training with ``dropout``).
    recurrent_dropout_mask : ndarray of shape (B, H), optional
        Multiplies the previous state where it enters the recurrent kernel
        (training with ``recurrent_dropout``).

    Returns
    -------
    h : ndarray of shape (B, T, H)
        ``h[:, t]``: the state after the step that reads ``x[:, t]`` (input
        order, also with go_backwards).
    """
    B, T, _ = x.shape
    H = kernel.shape[1]
    dtype = np.result_type(x, kernel, recurrent_kernel)
    keep = _step_mask(mask, B, T)
    h = np.empty((B, T, H), dtype=dtype)
    state = np.zeros((B, H), dtype=dtype) if h0 is None else np.asarray(h0, dtype=dtype)
    for t in _processing_order(T, go_backwards):
        x_in = x[:, t] if dropout_mask is None else x[:, t] * dropout_mask
        h_in = state if recurrent_dropout_mask is None else state * recurrent_dropout_mask
        z = x_in @ kernel + h_in @ recurrent_kernel
        if bias is not None:
            z = z + bias
        # processed rows take act(z); masked rows keep the state they had
        state = np.where(keep[:, t, None], activate(activation, z), state)
        h[:, t] = state
    return h


def recurrence_backward(x, h, kernel, recurrent_kernel, dh, bias=None, h0=None,
                        activation="tanh", mask=None, go_backwards=False, dropout_mask=None,
                        recurrent_dropout_mask=None):
    """Gradients of a scalar loss through :func:`recurrence_forward` (BPTT).

    Parameters
    ----------
    x, kernel, recurrent_kernel, bias, h0, activation, mask, go_backwards,
    dropout_mask, recurrent_dropout_mask
        As given to :func:`recurrence_forward`; ``bias`` is used only by
        activations whose derivative needs z (silu, gelu, mish, ...: see
        :func:`fastrnn.reference.derivative_from_output`).
    h : ndarray of shape (B, T, H)
        The states it returned.
    dh : ndarray of shape (B, T, H)
        dLoss/dh_t from outside the recurrence, by input position (see
        :func:`keras_rnn_output_gradient` for Keras's outputs).

    Returns
    -------
    dx : ndarray of shape (B, T, D)
        Zero at masked steps.
    dkernel : ndarray of shape (D, H)
    drecurrent_kernel : ndarray of shape (H, H)
    dbias : ndarray of shape (H,)
        Returned also without a bias (the gradient a bias would get).
    dh0 : ndarray of shape (B, H)
        The gradient of the initial state (of a zero one when ``h0`` is None).

    Notes
    -----
    Walking the processed steps backwards with ``g`` the gradient reaching
    h_t from later steps and ``G = dh_t + g`` all of dLoss/dh_t::

        dz_t   = act'(z_t) G           where mask[:, t], else 0
        dW_x  += (x_t dm)^T dz_t;  dW_h += (h_p rm)^T dz_t;  db += sum dz_t
        dx_t   = (dz_t W_x^T) dm
        g      = (dz_t W_h^T) rm        where mask[:, t]  (inverts z_t's h_p term)
        g      = G                      elsewhere          (inverts h_t = h_p)

    and ``dh0`` is the last ``g``.
    """
    B, T, D = x.shape
    H = kernel.shape[1]
    dtype = h.dtype
    keep = _step_mask(mask, B, T)
    start = np.zeros((B, H), dtype=dtype) if h0 is None else np.asarray(h0, dtype=dtype)
    order = list(_processing_order(T, go_backwards))
    dx = np.zeros((B, T, D), dtype=dtype)
    dkernel = np.zeros((D, H), dtype=dtype)
    drecurrent_kernel = np.zeros((H, H), dtype=dtype)
    dbias = np.zeros(H, dtype=dtype)
    g = np.zeros((B, H), dtype=dtype)
    for k in reversed(range(T)):
        t = order[k]
        h_prev = h[:, order[k - 1]] if k > 0 else start
        x_in = x[:, t] if dropout_mask is None else x[:, t] * dropout_mask
        h_in = h_prev if recurrent_dropout_mask is None else h_prev * recurrent_dropout_mask
        G = dh[:, t] + g
        kept = keep[:, t, None]
        if derivative_from_output(activation):   # h_t = act(z_t) where kept
            dz = activation_grad(activation, None, h[:, t], G)
        else:                                    # act' needs z_t: recompute it
            z = x_in @ kernel + h_in @ recurrent_kernel
            if bias is not None:
                z = z + bias
            dz = activation_grad(activation, z, activate(activation, z), G)
        dz = np.where(kept, dz, 0)
        dkernel += x_in.T @ dz
        drecurrent_kernel += h_in.T @ dz
        dbias += dz.sum(axis=0)
        dx_t = dz @ kernel.T
        dx[:, t] = dx_t if dropout_mask is None else dx_t * dropout_mask
        through_kernel = dz @ recurrent_kernel.T
        if recurrent_dropout_mask is not None:
            through_kernel = through_kernel * recurrent_dropout_mask
        g = np.where(kept, through_kernel, G)
    return dx, dkernel, drecurrent_kernel, dbias, g


def _unstarted(mask, B, T, go_backwards):
    """(B, T) bools: steps taken before a sequence's first unmasked step."""
    keep = _step_mask(mask, B, T)
    in_order = keep[:, ::-1] if go_backwards else keep
    before = np.cumsum(in_order, axis=1) == 0
    return before[:, ::-1] if go_backwards else before


def keras_rnn_output(h, go_backwards=False, return_sequences=False, mask=None,
                     leading="state"):
    """Keras's SimpleRNN output from the states of :func:`recurrence_forward`.

    Parameters
    ----------
    h : ndarray of shape (B, T, H)
        States by input position.
    go_backwards, return_sequences : bool
    mask : ndarray of shape (B, T), optional
        The step mask used (only needed for ``leading="zeros"``).
    leading : {"state", "zeros"}
        The output at the masked steps before a sequence's first unmasked
        step: the carried state (Keras's JAX and NumPy backends) or zeros
        (TensorFlow, torch, ``unroll=True``); see the module docstring.

    Returns
    -------
    output : ndarray of shape (B, T, H) or (B, H)
        The sequence in processing order, or the last output.
    final_state : ndarray of shape (B, H)
        The state ``return_state`` gives (the same on every backend).
    """
    B, T, H = h.shape
    seq = h[:, ::-1] if go_backwards else h
    final_state = seq[:, -1].copy()
    if leading not in ("state", "zeros"):
        raise ValueError(f"leading must be 'state' or 'zeros', got {leading!r}")
    if leading == "zeros" and mask is not None:
        unstarted = _unstarted(mask, B, T, go_backwards)
        seq_unstarted = unstarted[:, ::-1] if go_backwards else unstarted
        seq = np.where(seq_unstarted[:, :, None], 0, seq)
    output = seq.copy() if return_sequences else seq[:, -1].copy()
    return output, final_state


def keras_rnn_output_gradient(d_output, T, go_backwards=False, return_sequences=False,
                              mask=None, leading="state"):
    """dLoss/dh by input position from dLoss/d(Keras's output).

    Parameters
    ----------
    d_output : ndarray of shape (B, T, H) or (B, H)
        The gradient of :func:`keras_rnn_output`'s ``output``.
    T : int
        Time steps.
    go_backwards, return_sequences, mask, leading
        As for :func:`keras_rnn_output`.

    Returns
    -------
    dh : ndarray of shape (B, T, H)
        For :func:`recurrence_backward`: zero except where an output was
        taken from a state (with ``leading="zeros"``, not at the steps before
        a sequence's first unmasked step, whose outputs are constants).
    """
    d_output = np.asarray(d_output)
    B, H = d_output.shape[0], d_output.shape[-1]
    dseq = np.zeros((B, T, H), dtype=d_output.dtype)
    if return_sequences:
        dseq[...] = d_output
    else:
        dseq[:, -1] = d_output
    if leading == "zeros" and mask is not None:
        unstarted = _unstarted(mask, B, T, go_backwards)
        seq_unstarted = unstarted[:, ::-1] if go_backwards else unstarted
        dseq = np.where(seq_unstarted[:, :, None], 0, dseq)
    return dseq[:, ::-1].copy() if go_backwards else dseq


def dropout_mask(shape, rate, rng, dtype="float64"):
    """A Keras dropout mask: 0 with probability ``rate``, else ``1 / (1 - rate)``.

    Parameters
    ----------
    shape : tuple of int
        (B, D) for ``dropout``, (B, H) for ``recurrent_dropout``: one row per
        sequence, reused at every step.
    rate : float
        In [0, 1]; 1 drops everything (all zeros).
    rng : numpy.random.Generator
    dtype : str or numpy dtype

    Returns
    -------
    ndarray of shape ``shape``
    """
    if rate >= 1:
        return np.zeros(shape, dtype=dtype)
    keep = 1.0 - rate
    return ((rng.random(shape) < keep) / keep).astype(dtype)
