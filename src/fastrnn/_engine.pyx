# cython: language_level=3
"""The compiled engine: runs a lowered model (a plan of nodes) on flat buffers.

A model is lowered once (:mod:`fastrnn.engine`) to a plan, a graph of nodes
in topological order:

- ``plan``: int64, one row of ``PLAN_FIELDS`` per node: its kind, where its
  inputs sit in the input table and how many there are, activation code,
  flags, output width and time steps, the offsets of its weights in the
  flat ``params``/``grads`` buffers, and one int and one float argument of
  its kind (see ``F_*`` below);
- ``inputs``: int64, the input table: the nodes feeding each node, node by
  node (a node's output may feed several nodes);
- ``outputs``: int64, the nodes that are the model's outputs (each gets a
  loss; the training loss is their weighted sum, as Keras's).

The model's inputs are the nodes of kind ``input``; their ``F_ARG`` is the
position of the array they take.  Step masks (Keras's ``_keras_mask``) are
derived from the plan by kind (``_mask_rule``): a masking node or an
embedding flagged ``masked`` makes one (B*T bytes in its work), the layers
that support masking point at their input's, merges OR them into their own;
a recurrent node skips the masked steps of its input's mask, and an output's
mask leaves its masked rows out of the loss and the metrics.

:class:`Engine` owns one arena of work buffers sized for a batch capacity
and runs, with the GIL released and no allocation per step:

- ``train_step``: forward through every node in order, the losses at the
  outputs, backward through every node in reverse order into ``grads``,
  gradient clipping, the optimizer's update of ``params``;
- ``run_epoch``: every batch of a bound training set in a given order;
- ``predict`` / ``evaluate``: the forward pass (and losses) in chunks.

A stateful recurrent node (``FLAG_STATEFUL``, Keras's ``stateful=True``)
starts every batch from a state buffer the caller gives (:meth:`Engine.set_states`,
one row per sample of the fixed batch size every batch must have) and writes
its last state back; no gradient flows into it.

Every node kind is one forward/backward pair of kernels from ``_kernels``
(the same ones :mod:`fastrnn.ops` exposes); work is time-major: row
``t*B + b`` of a (steps*B, width) buffer is sample ``b`` at step ``t``, so
every time slice is one contiguous (B, width) block.  Backward, a node's
output gradient is written by the first of its consumers to run (or the
loss) and added to by the others.

The Python methods check every buffer they are given (dtype, shape,
contiguity, writability) and the plan itself through the buffer protocol
before any compiled loop runs; the ``cdef ... nogil`` functions check nothing.

Non-finite values never reach the weights: a step whose loss or gradient is
inf/NaN, or whose update would make a weight or optimizer state inf/NaN
(e.g. a huge learning rate), leaves params, optimizer state and the step
counter exactly as before and is reported to the caller.
"""
from libc.math cimport sqrt, sqrtf, pow as c_pow, fabs, isfinite
from libc.string cimport memcpy, memset
from libc.stdint cimport int64_t, uint32_t, uint64_t
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdlib cimport malloc, calloc, free
from cpython.buffer cimport (PyObject_GetBuffer, PyBuffer_Release, PyBUF_STRIDES,
                             PyBUF_FORMAT, PyBUF_WRITABLE)

import numpy as np

from fastrnn._kernels cimport (
    floating, gemm, activate_rows, activation_backward_rows, column_sums, rnn_forward_k,
    rnn_backward_k, rnn_forward_masked_k, rnn_backward_masked_k, dense_forward_k, dense_backward_k, adam_k, copy_or_add, scale_into,
    multiply_into, copy_columns, relayout_k, repeat_forward_k, repeat_backward_k,
    embedding_forward_k, embedding_backward_k, first_bad_index, dropout_mask_k,
    N_ACTIVATIONS, ACT_LINEAR, ACT_SIGMOID, ACT_SOFTMAX)

# ---------------------------------------------------------------- plan codes
# (fastrnn.engine writes plans with these; keep the two in step)

cdef enum:
    KIND_RNN = 0          # SimpleRNN: kernel F_P0, recurrent kernel F_P1, bias F_P2; training
                          # only: F_REAL the dropout rate, F_REAL2 the recurrent dropout
                          # rate, F_ARG their seed (one mask per sequence per batch)
    KIND_DENSE = 1        # Dense (on every step of a sequence): kernel F_P0, bias F_P2
    KIND_INPUT = 2        # a model input: F_ARG its position; F_STEPS 0, or the steps it must have
    KIND_ACTIVATION = 3   # elementwise (softmax: over the last axis)
    KIND_DROPOUT = 4      # training only; F_ARG the seed, F_REAL the rate
    KIND_RELAYOUT = 5     # Flatten / Reshape: each sample's values re-cut to (F_STEPS, width)
    KIND_REPEAT = 6       # RepeatVector: (B, F) -> (B, F_STEPS, F)
    KIND_CONCAT = 7       # Concatenate on the last axis
    KIND_CONCAT_TIME = 8  # Concatenate on the time axis
    KIND_ADD = 9
    KIND_SUBTRACT = 10
    KIND_MULTIPLY = 11
    KIND_AVERAGE = 12
    KIND_EMBEDDING = 13   # table F_P0 of F_ARG rows; its input is a model input of width 1
    KIND_LAST_STEP = 14   # (B, T, F) -> (B, F): the last step (a recurrent layer's final state)
    KIND_MASKING = 15     # Masking(F_REAL): x * keep, keep = any feature != F_REAL (kept in work)
    KIND_POOL_TIME = 16   # (B, T, F) -> (B, F) over the steps: F_ARG 0 max, 1 mean
    KIND_SCALE = 17       # y = F_REAL * x + F_REAL2 elementwise (Lambda of a scale/shift)
    N_KINDS = 18

    F_KIND = 0        # node record fields
    F_IN = 1          # first entry of this node's inputs in the input table
    F_N_IN = 2        # number of inputs
    F_ACT = 3         # activation code (RNN, Dense, Activation)
    F_FLAGS = 4
    F_WIDTH = 5       # output features
    F_STEPS = 6       # output time steps when fixed (Reshape, RepeatVector; input: required), else 0
    F_P0 = 7          # offsets in params/grads (-1: absent)
    F_P1 = 8
    F_P2 = 9
    F_ARG = 10        # kind-specific integer (input position, vocabulary size, dropout seed)
    F_REAL = 11       # kind-specific float64, stored bit for bit (dropout rate)
    F_REAL2 = 12      # a second one (SimpleRNN: recurrent dropout rate)
    N_FIELDS = 13

    FLAG_SEQ = 1          # the output has a time axis (B, steps, width)
    FLAG_BACKWARDS = 2    # go_backwards
    FLAG_INPUT_ORDER = 4  # a backwards sequence output stays in input order (Bidirectional)
    FLAG_MASKED = 8       # embedding: mask_zero (index 0 masks its step); RNN (optional): it
                          # reads a masked tensor.  Masks flow by kind as Keras's (MASK_*)
    FLAG_STATEFUL = 16    # RNN: starts from its state buffer (set_states) and writes its
                          # last state back after every batch (Keras's stateful=True)
    FLAG_ZERO_MASKED = 32 # RNN: a returned sequence is 0 at masked steps (Keras's
                          # zero_output_for_mask; Bidirectional sets it), else the state

    # how a node fills its own step mask (B*T bytes, time-major), as Keras's compute_mask
    MASK_NONE = 0         # none of its own: its output's mask (if any) is another node's
    MASK_KEEP = 1         # Masking: a step is kept when any feature differs from the value
    MASK_INDEX = 2        # embedding with mask_zero: a step is kept when its index is not 0
    MASK_OR = 3           # merges: the logical OR of the inputs' masks (Keras's rule)
    MASK_CONCAT_TIME = 4  # time concatenation: the inputs' masks in turn (none: all kept)

    MAX_METRICS = 32  # metrics computed inside the engine (engine_losses.pxi)

    OPT_SGD = 0
    OPT_ADAM = 1
    OPT_RMSPROP = 2
    OPT_ADAGRAD = 3

    CLIP_NONE = 0
    CLIP_NORM = 1
    CLIP_GLOBAL = 2
    CLIP_VALUE = 3

    # optimizer hyperparameters, by index in State.hyper
    H_BETA_1 = 0      # Adam
    H_BETA_2 = 1
    H_EPSILON = 2     # Adam, RMSprop, Adagrad
    H_MOMENTUM = 3    # SGD, RMSprop
    H_RHO = 4         # RMSprop
    H_WEIGHT_DECAY = 5
    H_FLAG = 6        # Adam: amsgrad; SGD: nesterov; RMSprop: centered
    N_HYPER = 7

    BAD_LOSS = 1
    BAD_GRADIENT = 2
    BAD_UPDATE = 3

PLAN_FIELDS = N_FIELDS
FIELDS = {"kind": F_KIND, "in": F_IN, "n_in": F_N_IN, "act": F_ACT, "flags": F_FLAGS,
          "width": F_WIDTH, "steps": F_STEPS, "p0": F_P0, "p1": F_P1, "p2": F_P2,
          "arg": F_ARG, "real": F_REAL, "real2": F_REAL2}
KINDS = {"simple_rnn": KIND_RNN, "dense": KIND_DENSE, "input": KIND_INPUT,
         "activation": KIND_ACTIVATION, "dropout": KIND_DROPOUT, "relayout": KIND_RELAYOUT,
         "repeat": KIND_REPEAT, "concat": KIND_CONCAT, "concat_time": KIND_CONCAT_TIME,
         "add": KIND_ADD, "subtract": KIND_SUBTRACT, "multiply": KIND_MULTIPLY,
         "average": KIND_AVERAGE, "embedding": KIND_EMBEDDING, "last_step": KIND_LAST_STEP,
         "masking": KIND_MASKING, "pool_time": KIND_POOL_TIME,
         "scale": KIND_SCALE}
FLAGS = {"seq": FLAG_SEQ, "backwards": FLAG_BACKWARDS, "input_order": FLAG_INPUT_ORDER,
         "masked": FLAG_MASKED, "stateful": FLAG_STATEFUL, "zero_masked": FLAG_ZERO_MASKED}
OPTIMIZERS = {"sgd": OPT_SGD, "adam": OPT_ADAM, "rmsprop": OPT_RMSPROP, "adagrad": OPT_ADAGRAD}
CLIPS = {None: CLIP_NONE, "clipnorm": CLIP_NORM, "global_clipnorm": CLIP_GLOBAL,
         "clipvalue": CLIP_VALUE}
HYPER = {"beta_1": H_BETA_1, "beta_2": H_BETA_2, "epsilon": H_EPSILON,
         "momentum": H_MOMENTUM, "rho": H_RHO, "weight_decay": H_WEIGHT_DECAY,
         "flag": H_FLAG}
N_HYPERPARAMETERS = N_HYPER


cdef struct Node:
    int kind, act, n_in
    Py_ssize_t first_in           # in the input table
    bint seq, backwards
    bint flipped                  # RNN: the sequence output is reversed (processing order)
    bint masked                   # RNN: its input's steps mask the recurrence
    bint zeroed                   # RNN: masked, a sequence, FLAG_ZERO_MASKED: its own output
    int mask_of                   # node whose step mask is this output's mask (-1: none)
    int mask_op                   # MASK_*: how this node fills its own mask
    bint backprop                 # weights here or upstream: the backward runs
    bint consumed                 # another node reads the output
    Py_ssize_t width, din         # output features; features of the first input
    Py_ssize_t fixed_steps        # > 0: the output's steps are fixed
    Py_ssize_t p0, p1, p2
    long long arg
    double real, real2
    unsigned long long rng        # dropout: random numbers drawn so far
    Py_ssize_t steps              # output time steps of the current batch
    # arena offsets (elements): output, its gradient, node work
    Py_ssize_t o_out, o_dout, o_hs, o_dz, o_g, o_wht, o_work
    Py_ssize_t o_dh0              # RNN with an initial state (second input): its gradient
    Py_ssize_t o_mask             # a node with a mask of its own: the step mask as bytes
    bint stateful                 # RNN: FLAG_STATEFUL
    char* state                   # ... its state buffer (B, width), B = State.state_B
    Py_ssize_t o_h0               # ... the state the current batch started from


cdef struct LossSpec:
    # a loss or a metric (codes and meaning in engine_losses.pxi)
    int code
    bint from_logits
    double smoothing              # label_smoothing
    double param                  # huber: delta; binary_accuracy: threshold; top-k: k
    bint has_ignore               # sparse cross-entropy: ignore_class
    double ignore
    bint weighted                 # a metric that sees the sample weights
    int output                    # a metric: the model output it measures


cdef struct State:
    int n_nodes
    Node* nodes
    int* in_node                  # the input table
    bint* in_need                 # entry e: its node needs dLoss/d(output)
    bint* in_acc                  # ... and is not the first to write it
    int n_inputs
    int* input_node               # node of model input k
    Py_ssize_t* T_cur             # time steps of input k in the current call
    Py_ssize_t* T_bound           # ... of the bound training set
    Py_ssize_t* capT              # ... the arena holds
    int n_outputs
    int* out_node
    bint* out_acc                 # the loss adds to the output's gradient
    Py_ssize_t* o_target          # arena offset of output o's targets
    Py_ssize_t* o_weight          # ... of its row weights
    LossSpec* losses              # output o's loss (engine_losses.pxi)
    double* loss_weight
    int* out_act                  # output o's node's activation in the plan
    bint* fused                   # ... computed with the loss from the logits
    Py_ssize_t* Ut                # target values per row: the width, or 1 (integer labels)
    bint* has_w                   # the gathered batch has row weights for output o
    int n_metrics
    LossSpec metrics[MAX_METRICS]
    double m_total[MAX_METRICS]
    double m_count[MAX_METRICS]
    double* out_loss              # each output's loss in the last batch
    double* out_loss_mean         # ... sample-weighted mean over the last call
    Py_ssize_t B                  # the current batch size
    Py_ssize_t capB
    Py_ssize_t o_scratch          # a gradient to be added (kernels that overwrite)
    char* arena
    char* params
    char* grads
    Py_ssize_t n_params
    # weight regularizers (Keras's L1L2): segment r of params, [reg_off, reg_off + reg_len),
    # adds reg_l1 * sum|w| + reg_l2 * sum w^2 to the training loss
    int n_reg
    int64_t* reg_off
    int64_t* reg_len
    double* reg_l1
    double* reg_l2
    # optimizer
    int opt, clip, n_slots
    double hyper[N_HYPER]
    double clip_c
    char* opt_state               # n_slots * n_params
    char* backup                  # (1 + n_slots) * n_params: the state before an update
    char* gclip                   # n_params: the clipped gradient
    int n_seg
    Py_ssize_t* seg_off           # variables (for clipnorm): offset, length
    Py_ssize_t* seg_len
    int64_t* iterations           # the optimizer's step counter (its own int64 buffer)
    int bad
    Py_ssize_t bad_batch, bad_epoch
    double bad_loss
    # the training set bound for run_epoch
    char** X
    char** Y
    char** W                      # per-output row weights (NULL entries: none)
    Py_ssize_t N
    # stateful recurrent nodes (set_states): every batch has exactly state_B samples
    int n_stateful
    Py_ssize_t state_B            # 0 until set_states


include "engine_nodes.pxi"
include "engine_losses.pxi"
include "engine_optimizers.pxi"


cdef double _penalty(State* s, floating* tag) noexcept nogil:
    """The weight regularizers' penalty, sum over segments of l1*sum|w| + l2*sum w^2."""
    cdef const floating* p = <const floating*>s.params
    cdef Py_ssize_t i
    cdef double a, q, total = 0
    cdef int r
    for r in range(s.n_reg):
        a = 0
        q = 0
        for i in range(s.reg_off[r], s.reg_off[r] + s.reg_len[r]):
            a += fabs(p[i])
            q += <double>p[i] * p[i]
        total += s.reg_l1[r] * a + s.reg_l2[r] * q
    return total


cdef void _penalty_gradient(State* s, floating* tag) noexcept nogil:
    """grads += l1*sign(w) + 2*l2*w on each segment: the penalty's gradient, added to the
    loss's (the sign of 0 is +1, as JAX differentiates |w|)."""
    cdef const floating* p = <const floating*>s.params
    cdef floating* g = <floating*>s.grads
    cdef floating l1, l2x2
    cdef Py_ssize_t i
    cdef int r
    for r in range(s.n_reg):
        l1 = <floating>s.reg_l1[r]
        l2x2 = <floating>s.reg_l2[r] * 2
        for i in range(s.reg_off[r], s.reg_off[r] + s.reg_len[r]):
            g[i] += (l1 if p[i] >= 0 else -l1) + l2x2 * p[i]


cdef double _train_batch(State* s, floating* tag, double lr) noexcept nogil:
    """Inputs and targets already gathered: forward, loss, backward, update.

    Sets s.bad (and leaves params, state and iterations alone) on a
    non-finite loss, gradient or update.
    """
    cdef double loss
    s.bad = 0
    _forward(s, tag, True)
    loss = _loss(s, tag, True)
    if s.n_reg:
        loss += _penalty(s, tag)
    s.bad_loss = loss
    if not isfinite(loss):
        s.bad = BAD_LOSS
        _restore_states(s, tag)
        return loss
    _metrics(s, tag)
    _backward(s, tag)
    if s.n_reg:
        _penalty_gradient(s, tag)
    s.bad = _update(s, tag, lr)
    if s.bad:
        _restore_states(s, tag)     # a rejected step leaves the states as they were too
    return loss


cdef inline void _add_output_losses(State* s, Py_ssize_t B) noexcept nogil:
    cdef int o
    for o in range(s.n_outputs):
        s.out_loss_mean[o] += s.out_loss[o] * B


cdef inline void _clear_output_losses(State* s) noexcept nogil:
    cdef int o
    for o in range(s.n_outputs):
        s.out_loss_mean[o] = 0


cdef inline void _divide_output_losses(State* s, Py_ssize_t n) noexcept nogil:
    cdef int o
    for o in range(s.n_outputs):
        s.out_loss_mean[o] /= n


cdef double _epoch(State* s, floating* tag, const int64_t* order, Py_ssize_t L,
                   Py_ssize_t batch_size, const double* lrs, double* losses) noexcept nogil:
    """Every batch of the bound set in the given order; the sample-weighted mean loss.

    Stops at the first bad batch (s.bad set, s.bad_batch its index).
    """
    cdef Py_ssize_t start = 0, B, k = 0
    cdef double total = 0
    _clear_output_losses(s)
    while start < L:
        B = L - start if L - start < batch_size else batch_size
        _set_steps(s, B, s.T_bound)
        _gather(s, tag, <floating**>s.X, order, start)
        _gather_targets(s, tag, <floating**>s.Y, <floating**>s.W, order, start)
        losses[k] = _train_batch(s, tag, lrs[k])
        if s.bad:
            s.bad_batch = k
            if start:
                _divide_output_losses(s, start)
            return total / start if start else losses[k]
        total += losses[k] * B
        _add_output_losses(s, B)
        start += B
        k += 1
    _divide_output_losses(s, L)
    return total / L


cdef double _evaluate(State* s, floating* tag, floating** X, floating** Y, floating** W,
                      Py_ssize_t N, Py_ssize_t batch_size, floating** out) noexcept nogil:
    """The loss over N samples in batches: the sample-weighted mean of batch losses.

    Metrics accumulate; ``out`` (if not NULL) receives the outputs.
    """
    cdef Py_ssize_t start = 0, B
    cdef double total = 0
    _clear_output_losses(s)
    while start < N:
        B = N - start if N - start < batch_size else batch_size
        _set_steps(s, B, s.T_cur)
        _gather(s, tag, X, NULL, start)
        _gather_targets(s, tag, Y, W, NULL, start)
        _forward(s, tag, False)
        total += _loss(s, tag, False) * B
        _metrics(s, tag)
        if out != NULL:
            _scatter(s, tag, start, out)
        _add_output_losses(s, B)
        start += B
    _divide_output_losses(s, N)
    return total / N


cdef void _predict(State* s, floating* tag, floating** X, Py_ssize_t N, Py_ssize_t chunk,
                   floating** out, bint training, unsigned char** masks) noexcept nogil:
    cdef Py_ssize_t start = 0, B
    while start < N:
        B = N - start if N - start < chunk else chunk
        _set_steps(s, B, s.T_cur)
        _gather(s, tag, X, NULL, start)
        _forward(s, tag, training)
        _finish_output(s, tag)
        _scatter(s, tag, start, out)
        if masks != NULL:
            _scatter_masks(s, tag, start, masks)
        start += B


cdef void _scatter_masks(State* s, floating* tag, Py_ssize_t start,
                         unsigned char** masks) noexcept nogil:
    """masks[o][start:start+B] = output o's step mask (batch-major (N, T) bytes) for
    every output with a mask and a NULL-free entry."""
    cdef Py_ssize_t i, t, T, B = s.B
    cdef const unsigned char* m
    cdef int o
    for o in range(s.n_outputs):
        m = _mask(s, tag, s.out_node[o])
        if m == NULL or masks[o] == NULL:
            continue
        T = s.nodes[s.out_node[o]].steps
        for i in range(B):
            for t in range(T):
                masks[o][(start + i) * T + t] = m[t * B + i]


# ---------------------------------------------------------------- buffer checks (GIL held)

cdef int _format_size(const char* fmt) noexcept:
    # 4 for a native float32 format, 8 for float64, 0 otherwise
    cdef char c
    if fmt == NULL:
        return 0
    c = fmt[0]
    if c == b'@' or c == b'=' or c == b'<':
        fmt += 1
    if fmt[0] != 0 and fmt[1] == 0:
        if fmt[0] == b'f':
            return 4
        if fmt[0] == b'd':
            return 8
    return 0


cdef int _get(object obj, Py_buffer* view, str name, bint writable, int itemsize,
              int ndim, Py_ssize_t* shape) except -1:
    """Acquire a C-contiguous buffer of ``itemsize`` floats of the given shape
    (shape[k] < 0: any).  Raises TypeError/ValueError naming ``name``."""
    cdef int flags = PyBUF_STRIDES | PyBUF_FORMAT
    cdef Py_ssize_t expect, k
    if writable:
        flags |= PyBUF_WRITABLE
    try:
        PyObject_GetBuffer(obj, view, flags)
    except BufferError as e:
        if writable:
            raise ValueError(f"{name} must be a writable array ({e})") from None
        raise TypeError(f"{name} must be an array of floats, got {type(obj).__name__}") from None
    except TypeError:
        raise TypeError(f"{name} must be a numpy array, got {type(obj).__name__}") from None
    try:
        k = _format_size(view.format)
        if k == 0 or k != view.itemsize or (itemsize and k != itemsize):
            want = "float32" if itemsize == 4 else "float64"
            raise TypeError(f"{name} must have dtype {want} (the engine's dtype), "
                            f"got {getattr(obj, 'dtype', view.format)}")
        bad = view.ndim != ndim
        if not bad:
            for k in range(ndim):
                if shape[k] >= 0 and view.shape[k] != shape[k]:
                    bad = True
        if bad:
            want = [shape[k] if shape[k] >= 0 else "*" for k in range(ndim)]
            got = [view.shape[k] for k in range(view.ndim)]
            raise ValueError(f"{name} must have shape ({', '.join(map(str, want))}), "
                             f"got {tuple(got)}")
        expect = view.itemsize
        for k in range(ndim - 1, -1, -1):
            if view.shape[k] > 1 and view.strides[k] != expect:
                raise ValueError(f"{name} must be C-contiguous (use np.ascontiguousarray)")
            expect *= view.shape[k]
    except BaseException:
        PyBuffer_Release(view)
        raise
    return 0


cdef int _get_index(object order, Py_buffer* view, str name) except -1:
    try:
        PyObject_GetBuffer(order, view, PyBUF_STRIDES | PyBUF_FORMAT)
    except (BufferError, TypeError):
        raise TypeError(f"{name} must be a numpy int64 array, got {type(order).__name__}") from None
    try:
        fmt = view.format.decode() if view.format != NULL else "B"
        if view.itemsize != 8 or fmt.lstrip("@=<") not in ("q", "l"):
            raise TypeError(f"{name} must have dtype int64, got {getattr(order, 'dtype', fmt)}")
        if view.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got {view.ndim} dimensions")
        if view.shape[0] > 1 and view.strides[0] != 8:
            raise ValueError(f"{name} must be contiguous")
    except BaseException:
        PyBuffer_Release(view)
        raise
    return 0


cdef inline bint _overlaps(Py_buffer* a, Py_buffer* b):
    cdef char* a0 = <char*>a.buf
    cdef char* b0 = <char*>b.buf
    return a0 < b0 + b.len and b0 < a0 + a.len and a.len > 0 and b.len > 0


cdef char* _address(object arr) except NULL:
    cdef Py_buffer b
    PyObject_GetBuffer(arr, &b, PyBUF_WRITABLE)
    cdef char* p = <char*>b.buf
    PyBuffer_Release(&b)      # the owner keeps arr alive
    return p


#: Largest element count of one work buffer, and row count of one product:
#: BLAS takes sizes as C int.
_INT_MAX = 2**31 - 1


# ---------------------------------------------------------------- the plan, checked (GIL held)

def _real_field(plan_row, int field=F_REAL):
    """F_REAL (or ``field``) of a plan row as the float64 it stores bit for bit."""
    return float(np.array([plan_row[field]], dtype=np.int64).view(np.float64)[0])


def analyse_plan(plan, inputs, outputs, Py_ssize_t n_params):
    """Check a plan against itself and the size of ``params``; derive what the engine needs.

    Nothing in the plan is trusted: kinds, input references (earlier nodes
    only), sizes, flags, fixed steps and every weight span are checked.

    Returns
    -------
    dict
        ``din`` (features of each node's first input), ``backprop`` (a node's
        backward runs: weights at it or upstream), ``in_need``/``in_acc`` per
        input-table entry and ``out_acc`` per output (see the module
        docstring), ``input_node`` (node of each model input), ``steps``
        (each node's steps when fixed, else None), ``real`` per node.
    """
    rows = plan.tolist()
    table = inputs.tolist()
    outs = outputs.tolist()
    n = len(rows)
    din, steps, has_weights, backprop, reals, reals2 = [], [], [], [], [], []
    mask_of, mask_op = [], []
    input_node = {}
    for i, r in enumerate(rows):
        kind, first, n_in, act, flags, width, fixed = r[:7]
        p0, p1, p2, arg = r[F_P0], r[F_P1], r[F_P2], r[F_ARG]
        real = _real_field(r)
        real2 = _real_field(r, F_REAL2) if kind in (KIND_RNN, KIND_SCALE) else 0.0
        where = f"plan node {i}"
        if not 0 <= kind < N_KINDS:
            raise ValueError(f"{where}: unknown kind {kind}")
        if n_in < 0 or first < 0 or first + n_in > len(table):
            raise ValueError(f"{where}: inputs [{first}, {first + n_in}) are outside the "
                             f"input table ({len(table)} entries)")
        ins = table[first:first + n_in]
        if any(not 0 <= j < i for j in ins):
            raise ValueError(f"{where}: its inputs {ins} must be earlier nodes")
        if width < 1 or width > _INT_MAX:
            raise ValueError(f"{where}: width must be in [1, {_INT_MAX}], got {width}")
        if fixed < 0 or fixed > _INT_MAX:
            raise ValueError(f"{where}: steps must be in [0, {_INT_MAX}], got {fixed}")
        if flags & ~(FLAG_SEQ | FLAG_BACKWARDS | FLAG_INPUT_ORDER | FLAG_MASKED | FLAG_STATEFUL
                     | FLAG_ZERO_MASKED):
            raise ValueError(f"{where}: unknown flags {flags}")
        if kind in (KIND_RNN, KIND_DENSE, KIND_ACTIVATION):
            if not 0 <= act < N_ACTIVATIONS:
                raise ValueError(f"{where}: unknown activation code {act}")
        seq = bool(flags & FLAG_SEQ)
        in_seq = [bool(rows[j][F_FLAGS] & FLAG_SEQ) for j in ins]
        in_width = [rows[j][F_WIDTH] for j in ins]
        d = in_width[0] if ins else width
        need_n_in = {KIND_INPUT: (0, 0), KIND_SUBTRACT: (2, 2)}.get(
            kind, (1, 2) if kind == KIND_RNN else
            (1, 1) if kind in (KIND_DENSE, KIND_ACTIVATION, KIND_DROPOUT, KIND_MASKING,
                                     KIND_RELAYOUT, KIND_REPEAT, KIND_EMBEDDING)
            else (1, 1 << 20))
        if not need_n_in[0] <= n_in <= need_n_in[1]:
            raise ValueError(f"{where}: kind {kind} cannot take {n_in} inputs")
        if kind not in (KIND_INPUT, KIND_RELAYOUT, KIND_REPEAT) and fixed != 0:
            raise ValueError(f"{where}: only input, reshape and repeat nodes fix their steps")
        if kind != KIND_RNN and flags & (FLAG_BACKWARDS | FLAG_INPUT_ORDER | FLAG_STATEFUL
                                         | FLAG_ZERO_MASKED):
            raise ValueError(f"{where}: only a recurrent node goes backwards, zeroes its "
                             f"masked steps or is stateful")
        if kind not in (KIND_RNN, KIND_EMBEDDING) and flags & FLAG_MASKED:
            raise ValueError(f"{where}: only an embedding makes a mask of its flag (mask_zero); "
                             f"a recurrent node is masked by what it reads")
        spans = []
        if kind == KIND_INPUT:
            if arg in input_node or not 0 <= arg < n:
                raise ValueError(f"{where}: input position {arg} is repeated or out of range")
            input_node[arg] = i
            if not seq and fixed > 1:
                raise ValueError(f"{where}: an input without a time axis has one step")
            step = (fixed or None) if seq else 1
        elif kind == KIND_RNN:
            if not in_seq[0]:
                raise ValueError(f"{where}: a recurrent node needs a time axis")
            spans = [(p0, d * width), (p1, width * width)] + ([(p2, width)] if p2 != -1 else [])
            if flags & FLAG_MASKED and mask_of[ins[0]] < 0:
                raise ValueError(f"{where}: a masked recurrent node reads a tensor with a "
                                 f"mask (from a masking node, or an embedding with mask_zero)")
            if n_in == 2 and (in_seq[1] or in_width[1] != width):
                raise ValueError(f"{where}: a recurrent node's initial state is (B, {width}), "
                                 f"got width {in_width[1]}{' with a time axis' if in_seq[1] else ''}")
            if not (0 <= real <= 1 and 0 <= real2 <= 1):
                raise ValueError(f"{where}: the dropout rates must be in [0, 1], got "
                                 f"{real} and {real2}")
            step = steps[ins[0]] if seq else 1
        elif kind == KIND_DENSE:
            if seq != in_seq[0]:
                raise ValueError(f"{where}: a Dense node keeps its input's time axis")
            if p1 != -1:
                raise ValueError(f"{where}: a Dense node has no recurrent kernel")
            spans = [(p0, d * width)] + ([(p2, width)] if p2 != -1 else [])
            step = steps[ins[0]]
        elif kind in (KIND_ACTIVATION, KIND_DROPOUT, KIND_MASKING):
            if seq != in_seq[0] or width != d:
                raise ValueError(f"{where}: an elementwise node keeps its input's shape")
            if kind == KIND_DROPOUT and not 0 <= real <= 1:
                raise ValueError(f"{where}: the dropout rate must be in [0, 1], got {real}")
            step = steps[ins[0]]
        elif kind == KIND_RELAYOUT:
            if fixed < 1 or (not seq and fixed != 1):
                raise ValueError(f"{where}: a reshape node needs its output steps")
            if steps[ins[0]] is not None and steps[ins[0]] * d != fixed * width:
                raise ValueError(f"{where}: a reshape keeps the number of values per sample "
                                 f"({steps[ins[0]]} x {d} != {fixed} x {width})")
            step = fixed
        elif kind == KIND_REPEAT:
            if in_seq[0] or not seq or fixed < 1 or width != d:
                raise ValueError(f"{where}: a repeat node turns (B, F) into (B, steps, F)")
            step = fixed
        elif kind == KIND_LAST_STEP:
            if not in_seq[0] or seq or width != d:
                raise ValueError(f"{where}: a last-step node turns (B, T, F) into (B, F)")
            step = 1
        elif kind == KIND_SCALE:
            if seq != in_seq[0] or width != d or not (isfinite(real) and isfinite(real2)):
                raise ValueError(f"{where}: a scale node keeps its input's shape (finite "
                                 f"factor and offset)")
            step = steps[ins[0]]
        elif kind == KIND_POOL_TIME:
            if not in_seq[0] or seq or width != d or arg not in (0, 1):
                raise ValueError(f"{where}: a pooling node turns (B, T, F) into (B, F) by "
                                 f"max (arg 0) or mean (arg 1)")
            step = 1
        elif kind in (KIND_CONCAT, KIND_CONCAT_TIME, KIND_ADD, KIND_SUBTRACT, KIND_MULTIPLY,
                      KIND_AVERAGE):
            if any(q != seq for q in in_seq):
                raise ValueError(f"{where}: the inputs of a merge must all have a time axis "
                                 f"or none")
            known = {steps[j] for j in ins if steps[j] is not None}
            if kind == KIND_CONCAT_TIME:
                if not seq or any(w != width for w in in_width):
                    raise ValueError(f"{where}: a time concatenation joins sequences of one width")
                step = None if len(known) < len(ins) else sum(steps[j] for j in ins)
            else:
                if len(known) > 1:
                    raise ValueError(f"{where}: the inputs of a merge have different steps")
                if kind == KIND_CONCAT:
                    if sum(in_width) != width:
                        raise ValueError(f"{where}: a concatenation's width is the sum of its "
                                         f"inputs' ({sum(in_width)}), got {width}")
                elif any(w != width for w in in_width):
                    raise ValueError(f"{where}: the inputs of an elementwise merge must have "
                                     f"its width {width}, got {in_width}")
                step = steps[ins[0]]
        else:   # KIND_EMBEDDING
            j = ins[0]
            if rows[j][F_KIND] != KIND_INPUT or in_width[0] != 1 or not in_seq[0] or not seq:
                raise ValueError(f"{where}: an embedding takes a model input of width 1 "
                                 f"with a time axis")
            if arg < 1 or arg > _INT_MAX:
                raise ValueError(f"{where}: the vocabulary size must be in [1, {_INT_MAX}]")
            spans = [(p0, arg * width)]
            step = steps[j]
        for off, size in spans:
            if off < 0 or off + size > n_params:
                raise ValueError(f"{where}: weights at [{off}, {off + size}) are outside "
                                 f"params ({n_params} elements)")
        for off in (p0, p1, p2):
            if off != -1 and not any(off == o for o, _ in spans):
                raise ValueError(f"{where}: kind {kind} has no weight at offset {off}")
        din.append(d)
        steps.append(step)
        op, of = _mask_rule(kind, flags, ins, mask_of, i)
        mask_op.append(op)
        mask_of.append(of)
        reals.append(real)
        reals2.append(real2)
        has_weights.append(bool(spans))
        backprop.append(kind != KIND_INPUT and (bool(spans) or any(backprop[j] for j in ins)))
    if sorted(input_node) != list(range(len(input_node))):
        raise ValueError(f"the input positions {sorted(input_node)} must be 0, 1, ...")
    if not outs or any(not 0 <= o < n for o in outs):
        raise ValueError(f"outputs must be node indices in [0, {n}), got {outs}")
    # Backward order: the losses first (output order), then the nodes from the
    # last; the first to write a node's output gradient overwrites it.
    written = set()
    out_acc = []
    for o in outs:
        out_acc.append(o in written)
        if backprop[o]:
            written.add(o)
    in_need = [False] * len(table)
    in_acc = [False] * len(table)
    for i in range(n - 1, -1, -1):
        if not backprop[i]:
            continue
        first, n_in = rows[i][F_IN], rows[i][F_N_IN]
        for e in range(first, first + n_in):
            j = table[e]
            if backprop[j]:
                in_need[e] = True
                in_acc[e] = j in written
                written.add(j)
    return dict(din=din, steps=steps, backprop=backprop, in_need=in_need, in_acc=in_acc,
                out_acc=out_acc, input_node=[input_node[k] for k in range(len(input_node))],
                real=reals, real2=reals2, mask_of=mask_of, mask_op=mask_op)


def _mask_rule(int kind, long long flags, ins, mask_of, int i):
    """(MASK_* op, mask_of) of node i: where its output's step mask comes from.

    Keras 3's compute_mask: Masking and Embedding(mask_zero) make one;
    Dense, Activation, Dropout (and TimeDistributed of them) pass their
    input's on; a SimpleRNN passes it on with return_sequences and consumes
    it otherwise; Add/Subtract/Multiply/Average (base_merge) and a
    Concatenate on the feature axis give the OR of their inputs' masks, none
    when an input has none (Concatenate fills it with ones: all kept);
    a Concatenate on the time axis joins the masks (ones where none);
    Flatten, Reshape, RepeatVector and a final state drop it.
    """
    if kind == KIND_MASKING or (kind == KIND_EMBEDDING and flags & FLAG_MASKED):
        return (MASK_KEEP if kind == KIND_MASKING else MASK_INDEX), i
    if kind in (KIND_DENSE, KIND_ACTIVATION, KIND_DROPOUT):
        return MASK_NONE, mask_of[ins[0]]
    if kind == KIND_RNN:
        return MASK_NONE, (mask_of[ins[0]] if flags & FLAG_SEQ else -1)
    if kind in (KIND_CONCAT, KIND_ADD, KIND_SUBTRACT, KIND_MULTIPLY, KIND_AVERAGE):
        sources = {mask_of[j] for j in ins}
        if -1 in sources:
            return MASK_NONE, -1
        if len(sources) == 1:
            return MASK_NONE, sources.pop()
        return MASK_OR, i
    if kind == KIND_CONCAT_TIME:
        if all(mask_of[j] < 0 for j in ins):
            return MASK_NONE, -1
        return MASK_CONCAT_TIME, i
    return MASK_NONE, -1


cdef class _Views:
    """Buffers acquired for one call (released when the object goes)."""
    cdef Py_buffer* v
    cdef char** ptr
    cdef int n, acquired

    def __cinit__(self, int n):
        self.v = <Py_buffer*>calloc(n if n > 0 else 1, sizeof(Py_buffer))
        self.ptr = <char**>calloc(n if n > 0 else 1, sizeof(char*))
        if self.v == NULL or self.ptr == NULL:
            raise MemoryError()
        self.n = n
        self.acquired = 0

    cdef int add(self, object obj, str name, bint writable, int itemsize, int ndim,
                 Py_ssize_t* shape) except -1:
        return self.add_at(self.acquired, obj, name, writable, itemsize, ndim, shape)

    cdef int add_at(self, int slot, object obj, str name, bint writable, int itemsize,
                    int ndim, Py_ssize_t* shape) except -1:
        """Acquire obj into the next buffer; its address goes to ptr[slot]."""
        _get(obj, &self.v[self.acquired], name, writable, itemsize, ndim, shape)
        self.ptr[slot] = <char*>self.v[self.acquired].buf
        self.acquired += 1
        return 0

    cdef bint overlaps(self, Py_buffer* other):
        cdef int k
        for k in range(self.acquired):
            if _overlaps(&self.v[k], other):
                return True
        return False

    def __dealloc__(self):
        cdef int k
        if self.v != NULL:
            for k in range(self.acquired):
                PyBuffer_Release(&self.v[k])
        free(self.v)
        free(self.ptr)


def _as_list(obj, int n, str name):
    """obj as a list of n arrays: a list/tuple of n, or one array when n == 1."""
    if isinstance(obj, (list, tuple)):
        if len(obj) != n:
            raise ValueError(f"{name} must be a list of {n} arrays (one per model "
                             f"{'input' if name.startswith('x') or name == 'X' else 'output'}), "
                             f"got {len(obj)}")
        return list(obj)
    if n != 1:
        raise ValueError(f"{name} must be a list of {n} arrays, got {type(obj).__name__}")
    return [obj]


def _item_name(str name, int k, int n):
    return name if n == 1 else f"{name}[{k}]"


# ---------------------------------------------------------------- the Engine

cdef class Engine:
    """A lowered model over flat parameter buffers: train, evaluate, predict.

    Low level: :mod:`fastrnn.engine` builds engines from models and is the
    documented entry point.  One engine serves one thread at a time (a
    second thread gets a RuntimeError); several engines may share read-only
    ``params`` (prediction in many threads).

    Parameters
    ----------
    plan : ndarray of int64, shape (n_nodes, PLAN_FIELDS)
    inputs : ndarray of int64
        The input table (see the module docstring).
    outputs : ndarray of int64
        The output nodes, in the order of the model's outputs.
    params, grads : ndarray of shape (P,)
        The model's flat buffers, float32 or float64 (the engine's dtype).

    Notes
    -----
    Arrays in calls: one per model input (``x``) and per output (``y``,
    ``out``), as a list, or a bare array when there is one.  An input or
    output with a time axis is (N, T, width), else (N, width).

    The engine never changes BLAS's thread count or the floating-point
    control flags: both are process- or thread-wide state the caller owns.
    """
    cdef State s
    cdef Py_buffer pb_params, pb_grads, pb_state
    cdef bint have_params, have_state, busy, inference
    cdef int itemsize
    cdef object _regularizers      # set_regularizers' arrays (the State points into them)
    cdef object _arena, _optimizer_buffers, _dtype, _plan, _bound, _vocab
    cdef object _seq_in, _width_in, _steps_in, _states

    def __cinit__(self):
        memset(&self.s, 0, sizeof(State))

    def __init__(self, plan, inputs, outputs, params, grads, bint inference=False):
        cdef Py_ssize_t shp[1]
        cdef int i, k
        cdef Node* n
        if self.have_params:
            raise RuntimeError("Engine is already initialised")
        plan = np.ascontiguousarray(plan, dtype=np.int64)
        inputs = np.ascontiguousarray(inputs, dtype=np.int64).reshape(-1)
        outputs = np.ascontiguousarray(outputs, dtype=np.int64).reshape(-1)
        if plan.ndim != 2 or plan.shape[1] != N_FIELDS or plan.shape[0] < 1:
            raise ValueError(f"plan must have shape (n_nodes >= 1, {N_FIELDS}), got {plan.shape}")
        if plan.shape[0] > 1 << 20 or inputs.shape[0] > 1 << 24 or outputs.shape[0] > 1 << 20:
            raise ValueError("the plan is too large")
        shp[0] = -1
        _get(params, &self.pb_params, "params", True, 0, 1, shp)
        self.itemsize = <int>self.pb_params.itemsize
        shp[0] = self.pb_params.shape[0]
        try:
            _get(grads, &self.pb_grads, "grads", True, self.itemsize, 1, shp)
        except BaseException:
            PyBuffer_Release(&self.pb_params)
            raise
        self.have_params = True
        if _overlaps(&self.pb_params, &self.pb_grads):
            raise ValueError("params and grads must not share memory")
        self._dtype = np.dtype(np.float64 if self.itemsize == 8 else np.float32)
        self._plan = (plan, inputs, outputs)
        self.inference = inference
        s = &self.s
        s.params = <char*>self.pb_params.buf
        s.grads = <char*>self.pb_grads.buf
        s.n_params = self.pb_params.shape[0]
        info = analyse_plan(plan, inputs, outputs, s.n_params)
        n_nodes, n_table = plan.shape[0], inputs.shape[0]
        n_in, n_out = len(info["input_node"]), outputs.shape[0]
        s.nodes = <Node*>calloc(n_nodes, sizeof(Node))
        s.in_node = <int*>calloc(n_table + 1, sizeof(int))
        s.in_need = <bint*>calloc(n_table + 1, sizeof(bint))
        s.in_acc = <bint*>calloc(n_table + 1, sizeof(bint))
        s.input_node = <int*>calloc(n_in + 1, sizeof(int))
        s.T_cur = <Py_ssize_t*>calloc(n_in + 1, sizeof(Py_ssize_t))
        s.T_bound = <Py_ssize_t*>calloc(n_in + 1, sizeof(Py_ssize_t))
        s.capT = <Py_ssize_t*>calloc(n_in + 1, sizeof(Py_ssize_t))
        s.out_node = <int*>calloc(n_out, sizeof(int))
        s.out_acc = <bint*>calloc(n_out, sizeof(bint))
        s.o_target = <Py_ssize_t*>calloc(n_out, sizeof(Py_ssize_t))
        s.o_weight = <Py_ssize_t*>calloc(n_out, sizeof(Py_ssize_t))
        s.losses = <LossSpec*>calloc(n_out, sizeof(LossSpec))
        s.loss_weight = <double*>calloc(n_out, sizeof(double))
        s.out_act = <int*>calloc(n_out, sizeof(int))
        s.fused = <bint*>calloc(n_out, sizeof(bint))
        s.Ut = <Py_ssize_t*>calloc(n_out, sizeof(Py_ssize_t))
        s.has_w = <bint*>calloc(n_out, sizeof(bint))
        s.W = <char**>calloc(n_out, sizeof(char*))
        s.out_loss = <double*>calloc(n_out, sizeof(double))
        s.out_loss_mean = <double*>calloc(n_out, sizeof(double))
        s.X = <char**>calloc(n_in + 1, sizeof(char*))
        s.Y = <char**>calloc(n_out, sizeof(char*))
        if (s.nodes == NULL or s.in_node == NULL or s.in_need == NULL or s.in_acc == NULL
                or s.input_node == NULL or s.T_cur == NULL or s.T_bound == NULL
                or s.capT == NULL or s.out_node == NULL or s.out_acc == NULL
                or s.o_target == NULL or s.o_weight == NULL or s.losses == NULL
                or s.loss_weight == NULL or s.out_act == NULL or s.fused == NULL
                or s.Ut == NULL or s.has_w == NULL or s.W == NULL
                or s.out_loss == NULL or s.out_loss_mean == NULL or s.X == NULL
                or s.Y == NULL):
            raise MemoryError()
        s.n_nodes, s.n_inputs, s.n_outputs = n_nodes, n_in, n_out
        for i in range(n_nodes):
            n = &s.nodes[i]
            r = plan[i].tolist()
            n.kind, n.first_in, n.n_in, n.act = r[F_KIND], r[F_IN], r[F_N_IN], r[F_ACT]
            n.seq = (r[F_FLAGS] & FLAG_SEQ) != 0
            n.backwards = (r[F_FLAGS] & FLAG_BACKWARDS) != 0
            n.flipped = n.seq and n.backwards and (r[F_FLAGS] & FLAG_INPUT_ORDER) == 0
            n.mask_of = info["mask_of"][i]
            n.mask_op = info["mask_op"][i]
            n.masked = n.kind == KIND_RNN and info["mask_of"][inputs[r[F_IN]]] >= 0
            n.zeroed = n.masked and n.seq and (r[F_FLAGS] & FLAG_ZERO_MASKED) != 0
            n.stateful = (r[F_FLAGS] & FLAG_STATEFUL) != 0
            if n.stateful:
                s.n_stateful += 1
            n.width, n.din, n.fixed_steps = r[F_WIDTH], info["din"][i], r[F_STEPS]
            n.p0, n.p1, n.p2, n.arg = r[F_P0], r[F_P1], r[F_P2], r[F_ARG]
            n.real = info["real"][i]
            n.real2 = info["real2"][i]
            n.backprop = info["backprop"][i]
            if n.kind == KIND_INPUT:
                n.fixed_steps = 0               # the data's (checked against F_STEPS)
        for i in range(n_table):
            s.in_node[i] = inputs[i]
            s.nodes[inputs[i]].consumed = True
            s.in_need[i] = info["in_need"][i]
            s.in_acc[i] = info["in_acc"][i]
        for k in range(n_in):
            s.input_node[k] = info["input_node"][k]
        for k in range(n_out):
            s.out_node[k] = outputs[k]
            s.out_acc[k] = info["out_acc"][k]
            s.losses[k].code = LOSS_MSE
            s.loss_weight[k] = 1.0
            s.out_act[k] = s.nodes[outputs[k]].act
            s.Ut[k] = s.nodes[outputs[k]].width
        # what the user's arrays must look like, and the embeddings' vocabularies
        self._seq_in = [bool(s.nodes[s.input_node[k]].seq) for k in range(n_in)]
        self._width_in = [s.nodes[s.input_node[k]].width for k in range(n_in)]
        self._steps_in = [int(plan[s.input_node[k], F_STEPS]) for k in range(n_in)]
        vocab = {}
        for i in range(n_nodes):
            if s.nodes[i].kind == KIND_EMBEDDING:
                k = plan[inputs[s.nodes[i].first_in], F_ARG]
                vocab[k] = min(vocab.get(k, s.nodes[i].arg), s.nodes[i].arg)
        self._vocab = vocab
        s.opt = OPT_SGD
        s.hyper[H_EPSILON] = 1e-7
        self._optimizer_buffers = (np.zeros(1, np.int64),)
        s.iterations = <int64_t*>_address(self._optimizer_buffers[0])
        self._bound = None
        self.reserve(1, 1)

    def __dealloc__(self):
        if self.have_params:
            PyBuffer_Release(&self.pb_params)
            PyBuffer_Release(&self.pb_grads)
        if self.have_state:
            PyBuffer_Release(&self.pb_state)
        s = &self.s
        free(s.nodes); free(s.in_node); free(s.in_need); free(s.in_acc)
        free(s.input_node); free(s.T_cur); free(s.T_bound); free(s.capT)
        free(s.out_node); free(s.out_acc); free(s.o_target); free(s.o_weight)
        free(s.losses); free(s.loss_weight); free(s.out_act); free(s.fused); free(s.Ut)
        free(s.has_w); free(s.out_loss); free(s.out_loss_mean)
        free(s.X); free(s.Y); free(s.W)
        free(s.seg_off)
        free(s.seg_len)

    # -- configuration ---------------------------------------------------------
    def set_loss(self, int code, bint from_logits=False, double label_smoothing=0.0,
                 double param=0.0, ignore_class=None, output=None):
        """Choose the loss (an entry of LOSSES) and its options, of one output or all.

        Parameters
        ----------
        code : int
        from_logits : bool
            Cross-entropies: the output is logits.
        label_smoothing : float in [0, 1]
            Binary / categorical cross-entropy.
        param : float
            Huber: delta (> 0).
        ignore_class : int or None
            Sparse categorical cross-entropy: rows with this label are masked.
        output : int, optional
            The model output (default: every output).

        Notes
        -----
        An output made by a Dense node with a sigmoid (softmax) activation
        under binary (categorical, sparse categorical) cross-entropy on
        probabilities is fused with the loss (see engine_losses.pxi) when no
        other node reads it; ``fused`` tells.  Sparse cross-entropy takes one
        label per row as targets (shape (N, 1) or (N, T, 1)); changing between
        sparse and dense targets clears the metrics.
        """
        cdef State* s = &self.s
        cdef Node* n
        cdef int o
        if not 0 <= code < N_LOSS_CODES:
            raise ValueError(f"unknown loss code {code}")
        if not (0 <= label_smoothing <= 1):
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        if code == LOSS_HUBER and not (param > 0 and isfinite(param)):
            raise ValueError(f"huber delta must be finite and > 0, got {param}")
        if ignore_class is not None and code != LOSS_SCCE:
            raise ValueError("ignore_class is an option of sparse categorical cross-entropy")
        if output is not None and not 0 <= output < s.n_outputs:
            raise ValueError(f"output must be in [0, {s.n_outputs}), got {output}")
        targets = range(s.n_outputs) if output is None else [output]
        counts = [sum(1 for j in range(s.n_outputs) if s.out_node[j] == s.out_node[o])
                  for o in range(s.n_outputs)]
        self._enter()
        try:
            for o in targets:
                n = &s.nodes[s.out_node[o]]
                ut = 1 if code == LOSS_SCCE else n.width
                if ut != s.Ut[o]:
                    s.n_metrics = 0
                s.Ut[o] = ut
                memset(&s.losses[o], 0, sizeof(LossSpec))
                s.losses[o].code = code
                s.losses[o].from_logits = from_logits
                s.losses[o].smoothing = label_smoothing
                s.losses[o].param = param
                s.losses[o].has_ignore = ignore_class is not None
                s.losses[o].ignore = float(ignore_class) if ignore_class is not None else 0.0
                n.act = s.out_act[o]
                s.fused[o] = (n.kind == KIND_DENSE and not from_logits and not n.consumed
                              and counts[o] == 1
                              and ((code == LOSS_BCE and s.out_act[o] == ACT_SIGMOID)
                                   or ((code == LOSS_CCE or code == LOSS_SCCE)
                                       and s.out_act[o] == ACT_SOFTMAX)))
                if s.fused[o]:
                    n.act = ACT_LINEAR  # the node computes logits; the loss does the rest
        finally:
            self.busy = False

    def set_loss_weights(self, weights):
        """Each output's weight in the total loss (finite, >= 0)."""
        cdef int k
        weights = [float(w) for w in weights]
        if len(weights) != self.s.n_outputs:
            raise ValueError(f"one loss weight per output ({self.s.n_outputs}), "
                             f"got {len(weights)}")
        for w in weights:
            if not (isfinite(w) and w >= 0):
                raise ValueError(f"loss weights must be finite and >= 0, got {w}")
        for k in range(self.s.n_outputs):
            self.s.loss_weight[k] = weights[k]

    def set_losses(self, codes, weights):
        """Each output's loss (entries of LOSSES, default options) and its weight."""
        codes = list(codes)
        if len(codes) != self.s.n_outputs:
            raise ValueError(f"one loss and one weight per output ({self.s.n_outputs}), "
                             f"got {len(codes)} losses")
        self.set_loss_weights(weights)
        for k, code in enumerate(codes):
            self.set_loss(code, output=k)

    @property
    def fused(self):
        """Whether the (first) output's sigmoid/softmax is computed with the loss."""
        return bool(self.s.fused[0])

    @property
    def fused_outputs(self):
        return [bool(self.s.fused[k]) for k in range(self.s.n_outputs)]

    @property
    def target_width(self):
        """Target values per row of the (first) output: its units, or 1 for integer labels."""
        return self.s.Ut[0]

    @property
    def target_widths(self):
        return [self.s.Ut[k] for k in range(self.s.n_outputs)]

    def set_metrics(self, specs):
        """Choose the metrics computed with every batch (and reset their totals).

        Parameters
        ----------
        specs : sequence of dict
            Each ``{"code": METRICS entry, "weighted": bool, "param": float,
            "from_logits": bool, "label_smoothing": float, "output": int}``
            (all but code optional; output 0 by default).  Sparse metrics need
            sparse targets (a sparse loss on that output) and the others dense ones.
        """
        cdef State* s = &self.s
        cdef LossSpec* m
        cdef int k, o
        specs = list(specs)
        if len(specs) > MAX_METRICS:
            raise ValueError(f"at most {MAX_METRICS} metrics run in the engine, got {len(specs)}")
        codes = set(METRICS.values())
        for spec in specs:
            code = spec["code"]
            if code not in codes:
                raise ValueError(f"unknown metric code {code}")
            o = spec.get("output", 0)
            if not 0 <= o < s.n_outputs:
                raise ValueError(f"metric output must be in [0, {s.n_outputs}), got {o}")
            width = s.nodes[s.out_node[o]].width
            sparse = code in SPARSE_CODES
            if (sparse and s.Ut[o] != 1) or (not sparse and s.Ut[o] != width):
                raise ValueError(f"metric code {code} needs {'sparse' if sparse else 'dense'} "
                                 f"targets, but the loss takes "
                                 f"{'dense' if sparse else 'sparse'} ones")
            if not 0 <= spec.get("label_smoothing", 0.0) <= 1:
                raise ValueError("label_smoothing must be in [0, 1]")
            if code == LOSS_HUBER and not spec.get("param", 0.0) > 0:
                raise ValueError("huber delta must be > 0")
        self._enter()
        try:
            for k, spec in enumerate(specs):
                m = &s.metrics[k]
                memset(m, 0, sizeof(LossSpec))
                m.code = spec["code"]
                m.weighted = bool(spec.get("weighted", False))
                m.param = float(spec.get("param", 0.0))
                m.from_logits = bool(spec.get("from_logits", False))
                m.smoothing = float(spec.get("label_smoothing", 0.0))
                m.output = spec.get("output", 0)
                s.m_total[k] = 0
                s.m_count[k] = 0
            s.n_metrics = len(specs)
        finally:
            self.busy = False

    def reset_metrics(self):
        """Zero every metric's running total and count."""
        cdef int k
        for k in range(MAX_METRICS):
            self.s.m_total[k] = 0
            self.s.m_count[k] = 0

    def metric_totals(self):
        """[(total, count), ...] of every metric since the last reset (Keras's Mean state)."""
        return [(self.s.m_total[k], self.s.m_count[k]) for k in range(self.s.n_metrics)]

    def set_optimizer(self, int kind, hyper, state, Py_ssize_t n_slots, int clip,
                      double clip_value, segments, counter=None):
        """Choose the optimizer.

        Parameters
        ----------
        kind : int
            An entry of OPTIMIZERS.
        hyper : sequence of N_HYPERPARAMETERS floats
            By index in HYPER (finite; the caller validates ranges).
        state : ndarray of shape (n_slots * P,) or None
            The optimizer's state (m, v, ...), the engine's dtype; kept referenced.
        n_slots : int
        clip : int
            An entry of CLIPS; ``clip_value`` > 0 with it.
        segments : sequence of int
            Start offset of every variable in params (for clipnorm).
        counter : ndarray of int64, shape (1,), optional
            The step counter the engine counts in (the optimizer's own, so no
            copy back is needed and an interrupt cannot lose a step); kept
            referenced.  Default: a private one.
        """
        cdef Py_ssize_t shp[1]
        cdef State* s = &self.s
        cdef Py_buffer view
        cdef int k
        if kind not in (OPT_SGD, OPT_ADAM, OPT_RMSPROP, OPT_ADAGRAD):
            raise ValueError(f"unknown optimizer code {kind}")
        if clip not in (CLIP_NONE, CLIP_NORM, CLIP_GLOBAL, CLIP_VALUE):
            raise ValueError(f"unknown clip code {clip}")
        if clip != CLIP_NONE and not (clip_value > 0 and isfinite(clip_value)):
            raise ValueError(f"clip value must be finite and > 0, got {clip_value}")
        hyper = [float(h) for h in hyper]
        if len(hyper) != N_HYPER or not all(np.isfinite(hyper)):
            raise ValueError(f"hyper must hold {N_HYPER} finite numbers, got {hyper}")
        if n_slots < 0 or n_slots > 3:
            raise ValueError(f"n_slots must be in [0, 3], got {n_slots}")
        need = {OPT_SGD: (0, 1), OPT_ADAM: (2, 3), OPT_RMSPROP: (1, 2, 3), OPT_ADAGRAD: (1,)}[kind]
        if n_slots not in need:
            raise ValueError(f"optimizer {kind} cannot have {n_slots} state slots")
        if counter is None:
            counter = np.zeros(1, np.int64)
        if (not isinstance(counter, np.ndarray) or counter.dtype != np.int64
                or counter.shape != (1,) or not counter.flags.writeable):
            raise TypeError("counter must be a writable int64 array of shape (1,)")
        if counter[0] < 0:
            raise ValueError(f"counter must hold a count >= 0, got {counter[0]}")
        seg = sorted(int(o) for o in segments)
        if not seg or seg[0] != 0 or len(set(seg)) != len(seg) or seg[len(seg) - 1] >= s.n_params > 0:
            raise ValueError("segments must be distinct start offsets inside params, from 0")
        self._enter()
        try:
            if n_slots:
                shp[0] = n_slots * s.n_params
                _get(state, &view, "state", True, self.itemsize, 1, shp)
                if (_overlaps(&view, &self.pb_params) or _overlaps(&view, &self.pb_grads)):
                    PyBuffer_Release(&view)
                    raise ValueError("state must not share memory with params or grads")
                if self.have_state:
                    PyBuffer_Release(&self.pb_state)
                self.pb_state = view
                self.have_state = True
                s.opt_state = <char*>view.buf
            else:
                if self.have_state:
                    PyBuffer_Release(&self.pb_state)
                    self.have_state = False
                s.opt_state = NULL
            free(s.seg_off)
            free(s.seg_len)
            s.seg_off = <Py_ssize_t*>malloc(len(seg) * sizeof(Py_ssize_t))
            s.seg_len = <Py_ssize_t*>malloc(len(seg) * sizeof(Py_ssize_t))
            if s.seg_off == NULL or s.seg_len == NULL:
                raise MemoryError()
            for k in range(len(seg)):
                s.seg_off[k] = seg[k]
                s.seg_len[k] = (seg[k + 1] if k + 1 < len(seg) else s.n_params) - seg[k]
            s.n_seg = len(seg)
            # the backup of params + state (restored after a bad update), the clipped gradient
            bufs = (np.zeros((1 + n_slots) * s.n_params + 1, self._dtype),
                    np.zeros(s.n_params + 1, self._dtype))
            s.backup = _address(bufs[0])
            s.gclip = _address(bufs[1])
            self._optimizer_buffers = bufs + (counter,)
            s.iterations = <int64_t*>_address(counter)
            s.opt, s.n_slots, s.clip, s.clip_c = kind, n_slots, clip, clip_value
            for k in range(N_HYPER):
                s.hyper[k] = hyper[k]
        finally:
            self.busy = False

    def set_regularizers(self, offsets, lengths, l1, l2):
        """Weight regularizers (Keras's L1L2) added to the training loss and its gradient.

        Segment r, ``params[offsets[r]:offsets[r] + lengths[r]]``, adds
        ``l1[r] * sum|w| + l2[r] * sum w**2`` to the loss of every training step
        (``train_step``, ``run_epoch``, ``gradients``; computed on the weights
        before the update) and ``l1*sign(w) + 2*l2*w`` to the gradient, before
        clipping.  ``evaluate`` and ``predict`` are not affected.  Empty
        sequences: no regularizers.

        Parameters
        ----------
        offsets, lengths : sequence of int
            Non-overlapping segments inside params.
        l1, l2 : sequence of float
            Finite, >= 0.
        """
        off = np.ascontiguousarray(offsets, dtype=np.int64).reshape(-1)
        length = np.ascontiguousarray(lengths, dtype=np.int64).reshape(-1)
        a = np.ascontiguousarray(l1, dtype=np.float64).reshape(-1)
        q = np.ascontiguousarray(l2, dtype=np.float64).reshape(-1)
        n = off.shape[0]
        if not (length.shape[0] == a.shape[0] == q.shape[0] == n):
            raise ValueError("offsets, lengths, l1 and l2 must have the same length")
        if n and (off.min() < 0 or length.min() < 0
                  or (off + length).max() > self.s.n_params):
            raise ValueError("regularizer segments must lie inside params")
        order = np.argsort(off, kind="stable")
        if n > 1 and np.any(off[order][1:] < (off + length)[order][:n - 1]):
            raise ValueError("regularizer segments must not overlap")
        if n and not (np.all(np.isfinite(a)) and np.all(np.isfinite(q))
                      and a.min() >= 0 and q.min() >= 0):
            raise ValueError("l1 and l2 must be finite and >= 0")
        self._enter()
        try:
            self._regularizers = (off, length, a, q)
            self.s.reg_off = <int64_t*>_address(off) if n else NULL
            self.s.reg_len = <int64_t*>_address(length) if n else NULL
            self.s.reg_l1 = <double*>_address(a) if n else NULL
            self.s.reg_l2 = <double*>_address(q) if n else NULL
            self.s.n_reg = n
        finally:
            self.busy = False

    def penalty(self):
        """The regularizers' penalty at the current weights (what a step adds to its loss)."""
        if self.itemsize == 8:
            return _penalty(&self.s, <double*>NULL)
        return _penalty(&self.s, <float*>NULL)

    cdef int _enter_training(self) except -1:
        if self.inference:
            raise RuntimeError("this engine was made for inference (no gradient buffers); "
                               "training needs Engine(..., inference=False)")
        return self._enter()

    cdef int _enter(self) except -1:
        if self.busy:
            raise RuntimeError("this engine is in use by another thread; use one engine "
                               "per thread")
        self.busy = True
        return 0

    cdef int _reserve(self, Py_ssize_t B, const Py_ssize_t* T) except -1:
        """(Re)allocate the arena for at least B samples of T[k] steps per input
        (sizes checked before anything is allocated)."""
        cdef State* s = &self.s
        cdef Node* n
        cdef int i, k
        cdef bint grow = B > s.capB
        for k in range(s.n_inputs):
            grow = grow or T[k] > s.capT[k]
        if not grow:
            return 0
        B = max(B, s.capB)
        cap = [max(T[k], s.capT[k]) for k in range(s.n_inputs)]
        for k in range(s.n_inputs):
            s.T_cur[k] = cap[k]
        _set_steps(s, B, s.T_cur)
        # sizes in Python ints: nothing can overflow before the checks
        rows = [int(s.nodes[i].steps) * int(B) for i in range(s.n_nodes)]
        for i in range(s.n_nodes):
            if rows[i] > _INT_MAX:
                raise ValueError(f"a batch of {B} samples x {s.nodes[i].steps} steps has "
                                 f"{rows[i]} rows; the kernels take at most {_INT_MAX}")
        # per output: its targets (up to width values per row) and one weight per row
        total = 0
        targets, weights = [], []
        scratch = 0
        for k in range(s.n_outputs):
            r = rows[s.out_node[k]]
            W = s.nodes[s.out_node[k]].width
            targets.append(total)
            weights.append(total + r * W)
            total += r * W + r
            if s.out_acc[k]:            # a loss gradient that is added goes here first
                scratch = max(scratch, r * W)
        layout = []
        for i in range(s.n_nodes):
            n = &s.nodes[i]
            W = int(n.width)
            r = rows[i]
            sizes = {}
            if n.kind == KIND_INPUT:
                sizes["out"] = r * W
            elif n.kind == KIND_RNN:
                rin = rows[s.in_node[n.first_in]]
                sizes["hs"] = rin * W
                sizes["dz"] = 0 if self.inference else rin * W
                sizes["g"] = 0 if self.inference else int(B) * W
                sizes["wht"] = W * W
                if n.n_in > 1 and not self.inference:
                    sizes["dh0"] = int(B) * W
                if n.stateful:          # the state the batch started from
                    sizes["h0"] = int(B) * W
                if n.real > 0 or n.real2 > 0:
                    # dropout masks (B, D) and (B, H), x * mask (B*T, D), h * mask (B*T, H)
                    sizes["work"] = int(B) * (n.din + W) + rin * (n.din + W)
                sizes["out"] = rin * W if (n.flipped or n.zeroed) else 0
                # the output's gradient: in place in dz for a forward sequence
                sizes["dout"] = (0 if (n.seq and not n.flipped and not n.zeroed)
                                 or self.inference else r * W)
            else:
                sizes["out"] = r * W
                sizes["dout"] = r * W if (n.backprop and not self.inference) else 0
                if n.kind == KIND_DROPOUT or (n.kind == KIND_MULTIPLY and n.n_in > 2):
                    sizes["work"] = r * W
                elif n.kind == KIND_MASKING:
                    sizes["work"] = r       # keep, per row
            if n.mask_op != MASK_NONE:  # its own step mask, as bytes (B*T of them fit)
                sizes["mask"] = r
            if n.kind in (KIND_RNN, KIND_DENSE) and not self.inference:
                for e in range(n.first_in, n.first_in + n.n_in):
                    if s.in_need[e] and s.in_acc[e]:
                        j = s.in_node[e]
                        scratch = max(scratch, rows[j] * s.nodes[j].width)
            for v in sizes.values():
                if v > _INT_MAX * 64:
                    raise ValueError(f"node {i}: a work buffer of {v} elements is too large")
            layout.append(sizes)
            total += sum(sizes.values())
        total += scratch
        nbytes = total * self.itemsize
        if nbytes > 2**46:
            raise ValueError(f"the work buffers for {B} samples x {cap} steps would take "
                             f"{nbytes / 2**30:.0f} GiB")
        arena = np.zeros(total + 1, self._dtype)
        for k in range(s.n_outputs):
            s.o_target[k] = targets[k]
            s.o_weight[k] = weights[k]
        off = weights[s.n_outputs - 1] + rows[s.out_node[s.n_outputs - 1]]
        for i in range(s.n_nodes):
            n = &s.nodes[i]
            sizes = layout[i]
            for key in ("hs", "dz", "g", "wht", "out", "dout", "work", "dh0", "mask", "h0"):
                v = sizes.get(key, 0)
                if key == "hs": n.o_hs = off
                elif key == "dz": n.o_dz = off
                elif key == "g": n.o_g = off
                elif key == "wht": n.o_wht = off
                elif key == "out": n.o_out = off
                elif key == "dout": n.o_dout = off
                elif key == "dh0": n.o_dh0 = off
                elif key == "mask": n.o_mask = off
                elif key == "h0": n.o_h0 = off
                else: n.o_work = off
                off += v
            if n.kind == KIND_RNN and n.seq and not n.flipped and not n.zeroed:
                n.o_dout = n.o_dz
        s.o_scratch = off
        self._arena = arena
        s.arena = _address(arena)
        s.capB = B
        for k in range(s.n_inputs):
            s.capT[k] = cap[k]
        return 0

    def reserve(self, batch_size, timesteps):
        """Size the work buffers for batches of up to ``batch_size`` samples of
        ``timesteps`` steps (an int for every input, or one per input)."""
        cdef Py_ssize_t* T
        cdef int k
        B = _size(batch_size, "batch_size")
        steps = (list(timesteps) if isinstance(timesteps, (list, tuple))
                 else [timesteps] * self.s.n_inputs)
        if len(steps) != self.s.n_inputs:
            raise ValueError(f"timesteps must hold one value per input ({self.s.n_inputs})")
        steps = [_size(t, "timesteps") for t in steps]
        T = <Py_ssize_t*>calloc(self.s.n_inputs + 1, sizeof(Py_ssize_t))
        if T == NULL:
            raise MemoryError()
        self._enter()
        try:
            for k in range(self.s.n_inputs):
                T[k] = steps[k]
            self._reserve(B, T)
        finally:
            free(T)
            self.busy = False

    def set_states(self, states):
        """The state buffers of the stateful recurrent nodes (``FLAG_STATEFUL``).

        Parameters
        ----------
        states : list of ndarray of shape (B, width)
            One per stateful node, in node order: the engine's dtype, writable,
            C-contiguous, all with the same B (the model's fixed batch size).
            Kept referenced, not copied: each batch of such a model has
            exactly B samples, and a stateful node starts it from its buffer
            (row b: sample b of the batch) and writes its last state back,
            in training, evaluation and prediction (not after a step rejected
            as non-finite).  No gradient flows into the state (BPTT is
            truncated at batch boundaries, as in Keras).  The caller may
            zero or set the buffers between calls (``reset_states``).
        """
        cdef State* s = &self.s
        cdef Py_ssize_t shp[2]
        cdef Py_ssize_t B = -1
        cdef int i, j, k
        cdef _Views views
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        if len(states) != s.n_stateful:
            raise ValueError(f"states must hold one array per stateful node ({s.n_stateful}), "
                             f"got {len(states)}")
        views = _Views(s.n_stateful)
        k = 0
        for i in range(s.n_nodes):
            if not s.nodes[i].stateful:
                continue
            shp[0] = B
            shp[1] = s.nodes[i].width
            views.add(states[k], f"states[{k}]", True, self.itemsize, 2, shp)
            B = views.v[k].shape[0]
            if B < 1:
                raise ValueError(f"states[{k}] must hold at least one sample's state")
            bad = _overlaps(&views.v[k], &self.pb_params) or _overlaps(&views.v[k], &self.pb_grads)
            for j in range(k):
                bad = bad or _overlaps(&views.v[k], &views.v[j])
            if bad:
                raise ValueError(f"states[{k}] must not share memory with params, grads or "
                                 f"another state")
            k += 1
        self._enter()
        try:
            k = 0
            for i in range(s.n_nodes):
                if s.nodes[i].stateful:
                    s.nodes[i].state = views.ptr[k]
                    k += 1
            self._states = views
            s.state_B = B if s.n_stateful else 0
        finally:
            self.busy = False

    @property
    def state_batch_size(self):
        """The batch size the state buffers fix (None: no stateful nodes, or no
        buffers given yet)."""
        return self.s.state_B if self.s.n_stateful and self.s.state_B else None

    cdef int _check_state_batches(self, Py_ssize_t N, Py_ssize_t bs, str where) except -1:
        """With stateful nodes, N samples in batches of ``bs`` must all be batches of
        exactly the states' B (a state per sample of the fixed batch)."""
        cdef State* s = &self.s
        if s.n_stateful == 0 or N == 0:
            return 0
        if s.state_B == 0:
            raise RuntimeError("the plan has stateful recurrent nodes: give their state "
                               "buffers with set_states first")
        if min(bs, N) != s.state_B or N % s.state_B:
            last = N % bs if N > bs else N
            raise ValueError(f"batch_size: a stateful model takes batches of exactly "
                             f"{s.state_B} samples (its fixed batch size); {where} has {N} "
                             f"samples in batches of {min(bs, N)}"
                             + (f" (the last one of {last})" if last and last != min(bs, N)
                                else ""))
        return 0

    @property
    def capacity(self):
        """(batch_size, [timesteps of each input]) the arena holds now."""
        return self.s.capB, [self.s.capT[k] for k in range(self.s.n_inputs)]

    @property
    def n_inputs(self):
        return self.s.n_inputs

    @property
    def n_outputs(self):
        return self.s.n_outputs

    @property
    def output_losses(self):
        """Each output's loss (unweighted): of the last batch of ``train_step``/
        ``gradients``, or the sample-weighted mean over the last ``run_epoch``/``evaluate``."""
        return [self.s.out_loss_mean[k] for k in range(self.s.n_outputs)]

    # -- arguments ------------------------------------------------------------------
    cdef _Views _inputs(self, object x, str name, Py_ssize_t* N, bint allow_empty=False):
        """Acquire the model's input arrays; sets s.T_cur and every node's steps."""
        cdef Py_ssize_t shp[3]
        cdef State* s = &self.s
        cdef int k
        cdef Py_ssize_t T
        xs = _as_list(x, s.n_inputs, name)
        views = _Views(s.n_inputs)
        N[0] = -1
        for k in range(s.n_inputs):
            item = _item_name(name, k, s.n_inputs)
            shp[0] = -1
            if self._seq_in[k]:
                shp[1] = self._steps_in[k] if self._steps_in[k] > 0 else -1
                shp[2] = self._width_in[k]
                views.add(xs[k], item, False, self.itemsize, 3, shp)
                T = views.v[k].shape[1]
                if T < 1:
                    raise ValueError(f"{item} must have at least one time step")
            else:
                shp[1] = self._width_in[k]
                views.add(xs[k], item, False, self.itemsize, 2, shp)
                T = 1
            if N[0] < 0:
                N[0] = views.v[k].shape[0]
            elif views.v[k].shape[0] != N[0]:
                raise ValueError(f"{item} has {views.v[k].shape[0]} samples but "
                                 f"{_item_name(name, 0, s.n_inputs)} has {N[0]}")
            s.T_cur[k] = T
        if N[0] < 1 and not allow_empty:
            raise ValueError(f"{name} must hold at least one sample")
        self._check_indices(views, N[0], name)
        self._check_steps(name)
        return views

    cdef int _check_indices(self, _Views views, Py_ssize_t N, str name) except -1:
        """Every value an embedding reads is a row of its table (before any loop runs)."""
        cdef Py_ssize_t bad, count, V
        cdef int k
        for k, vocab in self._vocab.items():
            V = vocab
            count = N * self.s.T_cur[k]
            if self.itemsize == 8:
                bad = first_bad_index(<double*>views.ptr[k], count, V)
                value = (<double*>views.ptr[k])[bad] if bad >= 0 else 0
            else:
                bad = first_bad_index(<float*>views.ptr[k], count, V)
                value = (<float*>views.ptr[k])[bad] if bad >= 0 else 0
            if bad >= 0:
                item = _item_name(name, k, self.s.n_inputs)
                raise ValueError(f"{item} holds {value!r} (sample {bad // self.s.T_cur[k]}, "
                                 f"step {bad % self.s.T_cur[k]}), which is not an index of an "
                                 f"embedding with input_dim={V}: indices must be in [0, {V})")
        return 0

    cdef int _check_steps(self, str name) except -1:
        """Nodes whose inputs must agree in time steps do, for these inputs."""
        cdef State* s = &self.s
        cdef Node* n
        cdef int i, j
        _set_steps(s, 1, s.T_cur)
        for i in range(s.n_nodes):
            n = &s.nodes[i]
            if n.kind in (KIND_CONCAT, KIND_ADD, KIND_SUBTRACT, KIND_MULTIPLY, KIND_AVERAGE):
                for j in range(1, n.n_in):
                    if s.nodes[_in_node(s, i, j)].steps != s.nodes[_in_node(s, i, 0)].steps:
                        raise ValueError(f"{name}: node {i} merges sequences of "
                                         f"{s.nodes[_in_node(s, i, 0)].steps} and "
                                         f"{s.nodes[_in_node(s, i, j)].steps} steps")
            elif n.kind == KIND_RELAYOUT:
                j = _in_node(s, i, 0)
                if s.nodes[j].steps * n.din != n.steps * n.width:
                    raise ValueError(f"{name}: node {i} cannot reshape {s.nodes[j].steps} "
                                     f"steps of {n.din} values into {n.steps} x {n.width}")
        return 0

    cdef _Views _outputs(self, object y, str name, Py_ssize_t N, bint writable,
                         bint targets=False):
        """Acquire one array per model output, shaped as that output for N samples
        (after _inputs: the steps are those of the current inputs); ``targets``:
        Ut values per row (the labels of a sparse loss) instead of the width."""
        cdef Py_ssize_t shp[3]
        cdef State* s = &self.s
        cdef Node* n
        cdef int k
        ys = _as_list(y, s.n_outputs, name)
        views = _Views(s.n_outputs)
        for k in range(s.n_outputs):
            n = &s.nodes[s.out_node[k]]
            item = _item_name(name, k, s.n_outputs)
            shp[0] = N
            if n.seq:
                shp[1] = n.steps
                shp[2] = s.Ut[k] if targets else n.width
                views.add(ys[k], item, writable, self.itemsize, 3, shp)
            else:
                shp[1] = s.Ut[k] if targets else n.width
                views.add(ys[k], item, writable, self.itemsize, 2, shp)
        return views

    cdef _Views _weights(self, object w, str name, Py_ssize_t N):
        """Row weights per output: None (none), one array for every output, or a list
        (None entries: none); (N,), or (N, T) for a per-step output."""
        cdef Py_ssize_t shp[2]
        cdef State* s = &self.s
        cdef Node* n
        cdef int k
        views = _Views(s.n_outputs)
        if w is None:
            return views
        ws = list(w) if isinstance(w, (list, tuple)) else [w] * s.n_outputs
        if len(ws) != s.n_outputs:
            raise ValueError(f"{name} must be one array, or a list of {s.n_outputs} (one per "
                             f"model output), got {len(ws)}")
        for k in range(s.n_outputs):
            if ws[k] is None:
                continue
            n = &s.nodes[s.out_node[k]]
            shp[0] = N
            shp[1] = n.steps
            views.add_at(k, ws[k], _item_name(name, k, s.n_outputs) if isinstance(
                w, (list, tuple)) else name, False, self.itemsize, 2 if n.seq else 1, shp)
        return views

    cdef int _check_out(self, _Views ov, _Views xv) except -1:
        cdef int k, j
        for k in range(ov.acquired):
            if (xv.overlaps(&ov.v[k]) or _overlaps(&ov.v[k], &self.pb_params)
                    or _overlaps(&ov.v[k], &self.pb_grads)
                    or any(_overlaps(&ov.v[k], &ov.v[j]) for j in range(k))):
                raise ValueError("out must not share memory with x, another output "
                                 "or the model's buffers")
        return 0

    # -- calls ----------------------------------------------------------------------
    cdef double _step(self, object xb, object yb, object wb, object out, double learning_rate,
                      bint update) except? -1:
        cdef Py_ssize_t B
        cdef double loss
        cdef State* s = &self.s
        cdef _Views xv, yv, wv, ov
        cdef char** xp
        cdef char** yp
        cdef char** wp
        cdef char** op = NULL
        cdef int k
        self._enter_training()
        try:
            xv = self._inputs(xb, "xb", &B)
            self._check_state_batches(B, B, "xb")
            yv = self._outputs(yb, "yb", B, False, True)
            wv = self._weights(wb, "wb", B)
            if out is not None:
                ov = self._outputs(out, "out", B, True)
                self._check_out(ov, xv)
                op = ov.ptr
            self._reserve(B, s.T_cur)
            xp, yp, wp = xv.ptr, yv.ptr, wv.ptr
            with nogil:
                _set_steps(s, B, s.T_cur)
                if self.itemsize == 8:
                    _gather(s, <double*>NULL, <double**>xp, NULL, 0)
                    _gather_targets(s, <double*>NULL, <double**>yp, <double**>wp, NULL, 0)
                    if update:
                        loss = _train_batch(s, <double*>NULL, learning_rate)
                    else:
                        _forward(s, <double*>NULL, True)
                        loss = _loss(s, <double*>NULL, True)
                        _backward(s, <double*>NULL)
                        if s.n_reg:
                            loss += _penalty(s, <double*>NULL)
                            _penalty_gradient(s, <double*>NULL)
                    if op != NULL:
                        _scatter(s, <double*>NULL, 0, <double**>op)
                else:
                    _gather(s, <float*>NULL, <float**>xp, NULL, 0)
                    _gather_targets(s, <float*>NULL, <float**>yp, <float**>wp, NULL, 0)
                    if update:
                        loss = _train_batch(s, <float*>NULL, learning_rate)
                    else:
                        _forward(s, <float*>NULL, True)
                        loss = _loss(s, <float*>NULL, True)
                        _backward(s, <float*>NULL)
                        if s.n_reg:
                            loss += _penalty(s, <float*>NULL)
                            _penalty_gradient(s, <float*>NULL)
                    if op != NULL:
                        _scatter(s, <float*>NULL, 0, <float**>op)
            for k in range(s.n_outputs):
                s.out_loss_mean[k] = s.out_loss[k]
        finally:
            self.busy = False
        return loss

    def train_step(self, xb, yb, double learning_rate, wb=None, out=None):
        """One training step on a batch; returns the loss before the update.

        xb: the model's inputs (see the class notes); yb: one target per
        output, shaped as that output (Ut = 1 values per row for a sparse
        loss: the labels); wb: row weights, per-sample (B,) or per-step
        (B, T), one array for every output or a list, or None; out
        (optional) receives the batch's outputs (before the update).
        Metrics accumulate.  On a bad step (see ``last_status``) nothing is
        updated and the loss is returned.
        """
        _check_rate(learning_rate)
        return self._step(xb, yb, wb, out, learning_rate, True)

    def gradients(self, xb, yb, wb=None):
        """Forward (training mode), loss and backward on a batch, without an
        update: fills ``grads``.

        Same arguments as :meth:`train_step`; returns the loss.  (For tests
        and for users who want the gradient itself.)  Metrics are not touched.
        """
        cdef int n = self.s.n_metrics
        self.s.n_metrics = 0
        try:
            return self._step(xb, yb, wb, None, 0.0, False)
        finally:
            self.s.n_metrics = n

    @property
    def last_status(self):
        """0 after a good step; 1 non-finite loss, 2 gradient, 3 update (nothing changed)."""
        return self.s.bad

    @property
    def bad_batch(self):
        """run_epoch: the index of the batch that stopped it (with last_status != 0)."""
        return self.s.bad_batch

    def bind_data(self, X, Y, W=None):
        """Bind the training set for :meth:`run_epoch` (kept referenced, not copied).

        W: row weights as for :meth:`train_step`, or None.
        """
        cdef Py_ssize_t N
        cdef State* s = &self.s
        cdef _Views xv, yv, wv
        cdef int k
        self._enter()
        try:
            xv = self._inputs(X, "X", &N)
            yv = self._outputs(Y, "Y", N, False, True)
            wv = self._weights(W, "W", N)
            self._bound = (xv, yv, wv)
            for k in range(s.n_inputs):
                s.X[k] = xv.ptr[k]
                s.T_bound[k] = s.T_cur[k]
            for k in range(s.n_outputs):
                s.Y[k] = yv.ptr[k]
                s.W[k] = wv.ptr[k]
            s.N = N
        finally:
            self.busy = False

    def unbind_data(self):
        """Release the training set bound by :meth:`bind_data`."""
        cdef int k
        self._enter()
        try:
            self._bound = None
            for k in range(self.s.n_inputs):
                self.s.X[k] = NULL
            for k in range(self.s.n_outputs):
                self.s.Y[k] = NULL
                self.s.W[k] = NULL
        finally:
            self.busy = False

    def run_epoch(self, order, batch_size, learning_rates, losses, epochs=1, means=None,
                  metric_totals=None):
        """Train on every batch of the bound set, rows taken in ``order``; or several epochs.

        order: int64 (epochs * L,): each epoch's row order, entries in [0, N);
        learning_rates: float64, one per batch (>= epochs * ceil(L / batch_size));
        losses: float64, receives each batch's loss; means: None, or float64
        (>= epochs) receiving each epoch's sample-weighted mean loss;
        metric_totals: None, or float64 (>= epochs * 2 * n_metrics) receiving
        each epoch's (total, count) per metric (the metrics restart every
        epoch; after the call :meth:`metric_totals` has the last epoch's).
        Returns the mean loss of the last epoch run (each output's in
        ``output_losses``); on a bad batch it stops there (``last_status``,
        ``bad_batch`` within ``bad_epoch``).
        """
        cdef Py_buffer bo, bl, br, bm, bt
        cdef Py_ssize_t shp[1]
        cdef Py_ssize_t L, nb, i, e, bs, E
        cdef const int64_t* o
        cdef double mean = 0
        cdef double* mp = NULL
        cdef double* tp = NULL
        cdef State* s = &self.s
        bs = _size(batch_size, "batch_size")
        E = _size(epochs, "epochs")
        self._enter_training()
        try:
            if self._bound is None:
                raise RuntimeError("no training set bound: call bind_data(X, Y) first")
            _get_index(order, &bo, "order")
            try:
                if bo.shape[0] % E:
                    raise ValueError(f"order has {bo.shape[0]} entries, not a multiple of "
                                     f"epochs={E}")
                L = bo.shape[0] // E
                o = <const int64_t*>bo.buf
                for i in range(bo.shape[0]):
                    if o[i] < 0 or o[i] >= s.N:
                        raise ValueError(f"order[{i}] = {o[i]} is out of range for {s.N} samples")
                nb = (L + bs - 1) // bs if L else 0
                self._check_state_batches(L, bs, "the bound set (one epoch's order)")
                shp[0] = -1
                _get(losses, &bl, "losses", True, 8, 1, shp)
                try:
                    if bl.shape[0] < nb * E:
                        raise ValueError(f"losses must have at least {nb * E} elements (one per "
                                         f"batch), got {bl.shape[0]}")
                    _get(learning_rates, &br, "learning_rates", False, 8, 1, shp)
                    try:
                        if br.shape[0] < nb * E:
                            raise ValueError(f"learning_rates must have at least {nb * E} "
                                             f"elements (one per batch), got {br.shape[0]}")
                        for i in range(nb * E):
                            _check_rate((<double*>br.buf)[i])
                        if means is not None:
                            _get(means, &bm, "means", True, 8, 1, shp)
                            if bm.shape[0] < E:
                                PyBuffer_Release(&bm)
                                raise ValueError(f"means must have at least {E} elements")
                            mp = <double*>bm.buf
                        if metric_totals is not None:
                            try:
                                _get(metric_totals, &bt, "metric_totals", True, 8, 1, shp)
                            except BaseException:
                                if mp != NULL:
                                    PyBuffer_Release(&bm)
                                raise
                            if bt.shape[0] < E * 2 * s.n_metrics:
                                PyBuffer_Release(&bt)
                                if mp != NULL:
                                    PyBuffer_Release(&bm)
                                raise ValueError(f"metric_totals must have at least "
                                                 f"{E * 2 * s.n_metrics} elements")
                            tp = <double*>bt.buf
                        try:
                            if L == 0:
                                return float("nan")
                            self._reserve(min(bs, L), s.T_bound)
                            s.bad = 0
                            with nogil:
                                for e in range(E):
                                    s.bad_epoch = e
                                    _reset_metric_totals(s)
                                    if self.itemsize == 8:
                                        mean = _epoch(s, <double*>NULL, o + e * L, L, bs,
                                                      (<double*>br.buf) + e * nb,
                                                      (<double*>bl.buf) + e * nb)
                                    else:
                                        mean = _epoch(s, <float*>NULL, o + e * L, L, bs,
                                                      (<double*>br.buf) + e * nb,
                                                      (<double*>bl.buf) + e * nb)
                                    if s.bad:
                                        break
                                    if mp != NULL:
                                        mp[e] = mean
                                    if tp != NULL:
                                        _copy_metric_totals(s, tp + e * 2 * s.n_metrics)
                        finally:
                            if mp != NULL:
                                PyBuffer_Release(&bm)
                            if tp != NULL:
                                PyBuffer_Release(&bt)
                    finally:
                        PyBuffer_Release(&br)
                finally:
                    PyBuffer_Release(&bl)
            finally:
                PyBuffer_Release(&bo)
        finally:
            self.busy = False
        return mean

    @property
    def bad_epoch(self):
        """run_epoch over several epochs: the epoch (0-based) of ``bad_batch``."""
        return self.s.bad_epoch

    def evaluate(self, x, y, batch_size, w=None, out=None):
        """The loss on (x, y) in batches: the sample-weighted mean of the batch losses
        (each output's in ``output_losses``).

        w: row weights as for :meth:`train_step`, or None; out (optional)
        receives the outputs.  Metrics accumulate.
        """
        cdef Py_ssize_t N, bs
        cdef double loss
        cdef State* s = &self.s
        cdef _Views xv, yv, wv, ov
        cdef char** xp
        cdef char** yp
        cdef char** wp
        cdef char** op = NULL
        bs = _size(batch_size, "batch_size")
        self._enter()
        try:
            xv = self._inputs(x, "x", &N)
            self._check_state_batches(N, bs, "x")
            yv = self._outputs(y, "y", N, False, True)
            wv = self._weights(w, "w", N)
            if out is not None:
                ov = self._outputs(out, "out", N, True)
                self._check_out(ov, xv)
                op = ov.ptr
            self._reserve(min(bs, N), s.T_cur)
            xp, yp, wp = xv.ptr, yv.ptr, wv.ptr
            with nogil:
                if self.itemsize == 8:
                    loss = _evaluate(s, <double*>NULL, <double**>xp, <double**>yp,
                                     <double**>wp, N, bs, <double**>op)
                else:
                    loss = _evaluate(s, <float*>NULL, <float**>xp, <float**>yp,
                                     <float**>wp, N, bs, <float**>op)
        finally:
            self.busy = False
        return loss

    @property
    def masked_outputs(self):
        """Whether each output carries a step mask (Keras's mask of ``y_pred``)."""
        return [self.s.nodes[self.s.out_node[k]].mask_of >= 0 for k in range(self.s.n_outputs)]

    def predict(self, x, out, chunk, training=False, masks=None):
        """Forward pass: out = the model's outputs for x, ``chunk`` samples at a time.

        out: one writable array per output, not overlapping x or the model's
        buffers.  ``training``: apply dropout (as Keras's ``training=True``).
        masks: None, or one entry per output: None, or a writable C-contiguous
        uint8 array (N, T) that receives a masked output's step mask (1: kept).
        """
        cdef unsigned char** mp = NULL
        cdef Py_ssize_t N, ch
        cdef State* s = &self.s
        cdef _Views xv, ov
        cdef char** xp
        cdef char** op
        cdef int k
        cdef bint train = bool(training)
        ch = _size(chunk, "chunk")
        self._enter()
        try:
            xv = self._inputs(x, "x", &N, True)
            self._check_state_batches(N, ch, "x")
            ov = self._outputs(out, "out", N, True)
            self._check_out(ov, xv)
            if masks is not None:
                masks = _as_list(masks, s.n_outputs, "masks")
                for k in range(s.n_outputs):
                    m = masks[k]
                    if m is None:
                        continue
                    shape = (N, s.nodes[s.out_node[k]].steps)
                    if (not isinstance(m, np.ndarray) or m.dtype != np.uint8
                            or m.shape != shape or not m.flags.c_contiguous
                            or not m.flags.writeable):
                        raise ValueError(f"{_item_name('masks', k, s.n_outputs)} must be a "
                                         f"writable C-contiguous uint8 array of shape {shape}")
                mask_ptrs = np.zeros(s.n_outputs, dtype=np.uintp)
                for k in range(s.n_outputs):
                    if masks[k] is not None:
                        mask_ptrs[k] = masks[k].ctypes.data
                mp = <unsigned char**><size_t>mask_ptrs.ctypes.data
            if N > 0:
                ch = min(ch, N)
                self._reserve(ch, s.T_cur)
                xp, op = xv.ptr, ov.ptr
                with nogil:
                    if self.itemsize == 8:
                        _predict(s, <double*>NULL, <double**>xp, N, ch, <double**>op, train,
                                 mp)
                    else:
                        _predict(s, <float*>NULL, <float**>xp, N, ch, <float**>op, train, mp)
        finally:
            self.busy = False
        return out

    @property
    def iterations(self):
        """Optimizer steps taken (Keras ``optimizer.iterations``): read from, and
        counted in, the counter buffer given to :meth:`set_optimizer`."""
        return self.s.iterations[0]

    @property
    def dtype(self):
        return self._dtype


def _size(value, name, allow_zero=False):
    """A positive int (or >= 0) that fits Py_ssize_t, else a clear error."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = value.__index__()
    if value < (0 if allow_zero else 1) or value > 2**62:
        raise ValueError(f"{name} must be in [{0 if allow_zero else 1}, 2**62], got {value}")
    return value


cdef int _check_rate(double lr) except -1:
    if not (isfinite(lr) and lr >= 0):
        raise ValueError(f"learning_rate must be finite and >= 0, got {lr}")
    return 0


# ------------------------------------------------ many models, one GIL-free call
cdef struct _BitGen:
    # numpy's ``bitgen_t`` (numpy/random/bitgen.h, a stable C API), declared here
    # so that no NumPy header is needed at build time
    void* state
    uint64_t (*next_uint64)(void* st) noexcept nogil
    uint32_t (*next_uint32)(void* st) noexcept nogil
    double (*next_double)(void* st) noexcept nogil
    uint64_t (*next_raw)(void* st) noexcept nogil


cdef inline uint64_t _below_or_at(_BitGen* g, uint64_t top) noexcept nogil:
    """A uniform integer in [0, top], as NumPy's ``random_interval`` draws it:
    masked rejection sampling on 32-bit draws when ``top`` fits in 32 bits."""
    cdef uint64_t mask = top, value
    if top == 0:
        return 0
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    mask |= mask >> 32
    if top <= 0xffffffffUL:
        value = g.next_uint32(g.state) & mask
        while value > top:
            value = g.next_uint32(g.state) & mask
    else:
        value = g.next_uint64(g.state) & mask
        while value > top:
            value = g.next_uint64(g.state) & mask
    return value


def shuffled_orders(rng, orders, bint shuffle=True):
    """Fill each row of ``orders`` with ``0 .. n-1``, shuffled by ``rng``.

    Bitwise what ``for row in orders: row[...] = np.arange(n); rng.shuffle(row)``
    gives (the same draws from ``rng``, in the same order: NumPy's
    ``Generator.shuffle`` swaps element ``i`` with a uniform ``j <= i`` for
    ``i = n-1 .. 1``), in one call that holds the GIL only to start.

    Parameters
    ----------
    rng : numpy.random.Generator
    orders : ndarray of int64, shape (E, n), C-contiguous
        Overwritten.
    shuffle : bool, default True
        False: each row is ``0 .. n-1`` and ``rng`` is not used.
    """
    cdef Py_buffer view
    cdef Py_ssize_t E, n, e, i, j
    cdef int64_t* row
    cdef int64_t tmp
    cdef _BitGen* g = NULL
    if not isinstance(orders, np.ndarray) or orders.dtype != np.int64 or orders.ndim != 2 \
            or not orders.flags.c_contiguous or not orders.flags.writeable:
        raise TypeError("orders must be a writable C-contiguous int64 array of shape (E, n)")
    E, n = orders.shape
    if shuffle:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        g = <_BitGen*>PyCapsule_GetPointer(rng.bit_generator.capsule, "BitGenerator")
    PyObject_GetBuffer(orders, &view, PyBUF_WRITABLE)
    try:
        with rng.bit_generator.lock if shuffle else _NO_LOCK:
            with nogil:
                for e in range(E):
                    row = (<int64_t*>view.buf) + e * n
                    for i in range(n):
                        row[i] = i
                    if g != NULL:
                        for i in range(n - 1, 0, -1):
                            j = <Py_ssize_t>_below_or_at(g, <uint64_t>i)
                            tmp = row[j]
                            row[j] = row[i]
                            row[i] = tmp
    finally:
        PyBuffer_Release(&view)


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_NO_LOCK = _NoLock()


def run_epochs_many(engines, order, batch_size, learning_rates, losses, means):
    """:meth:`Engine.run_epoch` over several epochs for each of K engines, in one GIL-free call.

    Row ``k`` of each array is engine ``k``'s ``run_epoch(order[k], batch_size,
    learning_rates[k], losses[k], epochs=E, means=means[k])``: the same
    computation, bitwise, one engine after the other; the GIL is released
    once for all of them.  An engine whose batch goes bad stops there (its
    ``last_status``, ``bad_batch``, ``bad_epoch``, as after ``run_epoch``);
    the others go on.

    Parameters
    ----------
    engines : sequence of Engine
        K training engines, each with a bound training set of at least as
        many rows as ``order`` names, without compiled metrics, each used by
        nothing else during the call.
    order : ndarray of int64, shape (K, E * L)
        Each engine's row order, epoch after epoch (L rows per epoch, L >= 1).
    batch_size : int
    learning_rates : ndarray of float64, shape (K, E * nb)
        One rate per batch, nb = ceil(L / batch_size).
    losses : ndarray of float64, shape (K, E * nb)
        Receives each batch's loss.
    means : ndarray of float64, shape (K, E)
        Receives each epoch's sample-weighted mean loss (entries from a bad
        epoch on are left as they were).
    """
    cdef Py_ssize_t K, L, E, nb, bs, k, e, i, n_entered = 0, r_stride, l_stride
    cdef State** states = NULL
    cdef int* wide = NULL
    cdef Engine engine
    cdef const int64_t* o
    cdef const double* r
    cdef double* lp
    cdef double* mp
    cdef double mean
    cdef State* s
    bs = _size(batch_size, "batch_size")
    engines = list(engines)
    K = len(engines)
    for name, arr, dt in (("order", order, np.int64), ("learning_rates", learning_rates,
                          np.float64), ("losses", losses, np.float64), ("means", means,
                          np.float64)):
        if not isinstance(arr, np.ndarray) or arr.dtype != dt or arr.ndim != 2 \
                or not arr.flags.c_contiguous or arr.shape[0] != K:
            raise TypeError(f"{name} must be a C-contiguous {np.dtype(dt).name} array with "
                            f"one row per engine ({K})")
    for arr, name in ((losses, "losses"), (means, "means")):
        if not arr.flags.writeable:
            raise ValueError(f"{name} must be writable")
    E = means.shape[1]
    if E < 1 or order.shape[1] % E or order.shape[1] == 0:
        raise ValueError(f"order has {order.shape[1]} columns: not a positive multiple of "
                         f"epochs={E}")
    L = order.shape[1] // E
    nb = (L + bs - 1) // bs
    if learning_rates.shape[1] < nb * E or losses.shape[1] < nb * E:
        raise ValueError(f"learning_rates and losses need {nb * E} columns (one per batch)")
    if K == 0:
        return
    if not np.all(np.isfinite(learning_rates[:, :nb * E])) or np.any(
            learning_rates[:, :nb * E] < 0):
        raise ValueError("learning_rates must be finite and >= 0")
    states = <State**>malloc(K * sizeof(State*))
    wide = <int*>malloc(K * sizeof(int))
    if states == NULL or wide == NULL:
        free(states)
        free(wide)
        raise MemoryError()
    try:
        for k in range(K):
            engine = <Engine?>engines[k]
            if engine.s.n_metrics:
                raise ValueError(f"engines[{k}] has compiled metrics: use run_epoch")
            engine._enter_training()
            n_entered = k + 1
            if engine._bound is None:
                raise RuntimeError(f"engines[{k}]: no training set bound: call bind_data first")
            o = (<const int64_t*><size_t>order.ctypes.data) + k * E * L
            for i in range(E * L):
                if o[i] < 0 or o[i] >= engine.s.N:
                    raise ValueError(f"order[{k}, {i}] = {o[i]} is out of range for "
                                     f"{engine.s.N} samples")
            engine._reserve(min(bs, L), engine.s.T_bound)
            states[k] = &engine.s
            wide[k] = engine.itemsize == 8
        o = <const int64_t*><size_t>order.ctypes.data
        r = <const double*><size_t>learning_rates.ctypes.data
        lp = <double*><size_t>losses.ctypes.data
        mp = <double*><size_t>means.ctypes.data
        r_stride, l_stride = learning_rates.shape[1], losses.shape[1]
        with nogil:
            for k in range(K):
                s = states[k]
                s.bad = 0
                for e in range(E):
                    s.bad_epoch = e
                    if wide[k]:
                        mean = _epoch(s, <double*>NULL, o + k * E * L + e * L, L, bs,
                                      r + k * r_stride + e * nb,
                                      lp + k * l_stride + e * nb)
                    else:
                        mean = _epoch(s, <float*>NULL, o + k * E * L + e * L, L, bs,
                                      r + k * r_stride + e * nb,
                                      lp + k * l_stride + e * nb)
                    if s.bad:
                        break
                    mp[k * E + e] = mean
    finally:
        for k in range(n_entered):
            (<Engine>engines[k]).busy = False
        free(states)
        free(wide)
