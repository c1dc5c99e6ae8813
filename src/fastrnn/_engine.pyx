# cython: language_level=3
"""The compiled engine: runs a lowered model (a plan of nodes) on flat buffers.

A model is lowered once (:mod:`fastrnn.engine`) to a plan: an int64 array
with one row per node (kind, input node, activation, flags, sizes, offsets of
its weights in the flat ``params``/``grads`` buffers).  :class:`Engine` owns
one arena of work buffers sized for a batch capacity and runs, with the GIL
released and no allocation per step:

- ``train_step``: forward through every node in order, the loss at the last
  node, backward through every node in reverse order into ``grads``,
  gradient clipping, the optimizer's update of ``params``;
- ``run_epoch``: every batch of a bound training set in a given order;
- ``predict`` / ``evaluate``: the forward pass (and loss) in chunks.

Every node kind is one forward/backward pair of kernels from ``_kernels``
(the same ones :mod:`fastrnn.ops` exposes); work is time-major: row
``t*B + b`` of a (T*B, n) buffer is sample ``b`` at step ``t``, so every time
slice is one contiguous (B, n) block.

The Python methods check every buffer they are given (dtype, shape,
contiguity, writability) through the buffer protocol before any compiled
loop runs; the ``cdef ... nogil`` functions check nothing.

Non-finite values never reach the weights: a step whose loss or gradient is
inf/NaN, or whose update would make a weight or optimizer state inf/NaN
(e.g. a huge learning rate), leaves params, optimizer state and the step
counter exactly as before and is reported to the caller.
"""
from libc.math cimport sqrt, sqrtf, pow as c_pow, fabs, isfinite
from libc.string cimport memcpy, memset
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free
from cpython.buffer cimport (PyObject_GetBuffer, PyBuffer_Release, PyBUF_STRIDES,
                             PyBUF_FORMAT, PyBUF_WRITABLE)

import numpy as np

from fastrnn._kernels cimport (
    floating, gemm, activate_rows, column_sums, rnn_forward_k, rnn_backward_k,
    dense_forward_k, dense_backward_k, adam_k, ACT_LINEAR, ACT_SIGMOID, ACT_SOFTMAX)

# ---------------------------------------------------------------- plan codes
# (fastrnn.engine writes plans with these; keep the two in step)

cdef enum:
    KIND_RNN = 0
    KIND_DENSE = 1

    F_KIND = 0        # node record fields
    F_INPUT = 1       # index of the node feeding this one, -1: the model input
    F_ACT = 2
    F_FLAGS = 3
    F_DIN = 4         # input features
    F_UNITS = 5       # output features
    F_KERNEL = 6      # offsets in params/grads (-1: absent)
    F_RECURRENT = 7
    F_BIAS = 8
    N_FIELDS = 9

    FLAG_SEQ_IN = 1       # the input has a time axis
    FLAG_SEQ_OUT = 2      # the output has a time axis (return_sequences / per-step Dense)
    FLAG_BACKWARDS = 4    # go_backwards

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
KINDS = {"simple_rnn": KIND_RNN, "dense": KIND_DENSE}
FLAGS = {"seq_in": FLAG_SEQ_IN, "seq_out": FLAG_SEQ_OUT, "backwards": FLAG_BACKWARDS}
OPTIMIZERS = {"sgd": OPT_SGD, "adam": OPT_ADAM, "rmsprop": OPT_RMSPROP, "adagrad": OPT_ADAGRAD}
CLIPS = {None: CLIP_NONE, "clipnorm": CLIP_NORM, "global_clipnorm": CLIP_GLOBAL,
         "clipvalue": CLIP_VALUE}
HYPER = {"beta_1": H_BETA_1, "beta_2": H_BETA_2, "epsilon": H_EPSILON,
         "momentum": H_MOMENTUM, "rho": H_RHO, "weight_decay": H_WEIGHT_DECAY,
         "flag": H_FLAG}
N_HYPERPARAMETERS = N_HYPER


cdef struct Node:
    int kind, act, inp
    bint seq_in, seq_out, backwards
    Py_ssize_t din, units
    Py_ssize_t p_kernel, p_rec, p_bias
    # arena offsets (elements): outputs, gradients of the outputs, node work
    Py_ssize_t o_out, o_dout, o_hs, o_dz, o_g, o_wht


cdef struct LossSpec:
    # a loss or a metric (codes and meaning in engine_losses.pxi)
    int code
    bint from_logits
    double smoothing              # label_smoothing
    double param                  # huber: delta; binary_accuracy: threshold; top-k: k
    bint has_ignore               # sparse cross-entropy: ignore_class
    double ignore
    bint weighted                 # a metric that sees the sample weights


cdef struct State:
    int n_nodes
    Node* nodes
    Py_ssize_t D, U               # model input features, output units
    bint seq_in, seq_out          # model input / output has a time axis
    Py_ssize_t capB, capT         # the arena holds capB * capT rows
    char* arena
    char* params
    char* grads
    Py_ssize_t n_params
    # loss and metrics (engine_losses.pxi)
    LossSpec loss
    int out_act                   # the last node's activation in the plan
    bint fused                    # ... computed with the loss from the logits
    Py_ssize_t Ut                 # target values per row: U, or 1 (integer labels)
    bint has_w                    # the gathered batch has per-row weights
    int n_metrics
    LossSpec metrics[MAX_METRICS]
    double m_total[MAX_METRICS]
    double m_count[MAX_METRICS]
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
    int64_t* iterations          # the optimizer's step counter (its own int64 buffer)
    int bad
    Py_ssize_t bad_batch, bad_epoch
    double bad_loss
    # the training set bound for run_epoch
    char* X
    char* Y
    char* W                       # per-sample or per-step weights, or NULL
    Py_ssize_t N, T


include "engine_nodes.pxi"
include "engine_losses.pxi"
include "engine_optimizers.pxi"


cdef double _train_batch(State* s, floating* tag, Py_ssize_t B, Py_ssize_t T,
                         double lr) noexcept nogil:
    """Inputs and targets already gathered: forward, loss, backward, update.

    Sets s.bad (and leaves params, state and iterations alone) on a
    non-finite loss, gradient or update.
    """
    cdef double loss
    s.bad = 0
    _forward(s, tag, B, T)
    loss = _loss(s, tag, B, T, True)
    s.bad_loss = loss
    if not isfinite(loss):
        s.bad = BAD_LOSS
        return loss
    _metrics(s, tag, B, T)
    _backward(s, tag, B, T)
    s.bad = _update(s, tag, lr)
    return loss


cdef double _epoch(State* s, floating* tag, const int64_t* order, Py_ssize_t L,
                   Py_ssize_t batch_size, const double* lrs, double* losses) noexcept nogil:
    """Every batch of the bound set in the given order; the sample-weighted mean loss.

    Stops at the first bad batch (s.bad set, s.bad_batch its index).
    """
    cdef Py_ssize_t start = 0, B, k = 0
    cdef double total = 0
    while start < L:
        B = L - start if L - start < batch_size else batch_size
        _gather(s, tag, <floating*>s.X, NULL, order, start, B, s.T)
        _gather_targets(s, tag, <floating*>s.Y, <floating*>s.W, order, start, B, s.T)
        losses[k] = _train_batch(s, tag, B, s.T, lrs[k])
        if s.bad:
            s.bad_batch = k
            return total / start if start else losses[k]
        total += losses[k] * B
        start += B
        k += 1
    return total / L


cdef double _evaluate(State* s, floating* tag, const floating* X, const floating* Y,
                      const floating* W, Py_ssize_t N, Py_ssize_t T, Py_ssize_t batch_size,
                      floating* out) noexcept nogil:
    """The loss over N samples in batches: the sample-weighted mean of batch losses.

    Metrics accumulate; ``out`` (if not NULL) receives the outputs.
    """
    cdef Py_ssize_t start = 0, B
    cdef double total = 0
    while start < N:
        B = N - start if N - start < batch_size else batch_size
        _gather(s, tag, X, NULL, NULL, start, B, T)
        _gather_targets(s, tag, Y, W, NULL, start, B, T)
        _forward(s, tag, B, T)
        total += _loss(s, tag, B, T, False) * B
        _metrics(s, tag, B, T)
        if out != NULL:
            _scatter(s, tag, start, B, T, out)
        start += B
    return total / N


cdef void _predict(State* s, floating* tag, const floating* X, Py_ssize_t N, Py_ssize_t T,
                   Py_ssize_t chunk, floating* out) noexcept nogil:
    cdef Py_ssize_t start = 0, B
    while start < N:
        B = N - start if N - start < chunk else chunk
        _gather(s, tag, X, NULL, NULL, start, B, T)
        _forward(s, tag, B, T)
        _finish_output(s, tag, B, T)
        _scatter(s, tag, start, B, T, out)
        start += B


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
    params, grads : ndarray of shape (P,)
        The model's flat buffers, float32 or float64 (the engine's dtype).
    input_dim, output_units : int
    seq_in, seq_out : bool
        The model's input / output has a time axis.

    Notes
    -----
    The engine never changes BLAS's thread count or the floating-point
    control flags: both are process- or thread-wide state the caller owns.
    """
    cdef State s
    cdef Py_buffer pb_params, pb_grads, pb_state, pb_X, pb_Y, pb_W
    cdef bint have_params, have_state, have_data, have_w, busy, inference
    cdef int itemsize
    cdef object _arena, _optimizer_buffers, _dtype, _plan

    def __cinit__(self):
        memset(&self.s, 0, sizeof(State))

    def __init__(self, plan, params, grads, Py_ssize_t input_dim, Py_ssize_t output_units,
                 bint seq_in, bint seq_out, bint inference=False):
        cdef Py_ssize_t shp[1]
        cdef int i
        cdef Node* n
        if self.have_params:
            raise RuntimeError("Engine is already initialised")
        plan = np.ascontiguousarray(plan, dtype=np.int64)
        if plan.ndim != 2 or plan.shape[1] != N_FIELDS or plan.shape[0] < 1:
            raise ValueError(f"plan must have shape (n_nodes >= 1, {N_FIELDS}), got {plan.shape}")
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
        self._plan = plan
        s = &self.s
        s.params = <char*>self.pb_params.buf
        s.grads = <char*>self.pb_grads.buf
        s.n_params = self.pb_params.shape[0]
        s.D, s.U, s.seq_in, s.seq_out = input_dim, output_units, seq_in, seq_out
        self.inference = inference
        self._check_plan(plan)
        s.nodes = <Node*>malloc(plan.shape[0] * sizeof(Node))
        if s.nodes == NULL:
            raise MemoryError()
        s.n_nodes = plan.shape[0]
        for i in range(s.n_nodes):
            n = &s.nodes[i]
            memset(n, 0, sizeof(Node))
            n.kind = plan[i, F_KIND]
            n.inp = plan[i, F_INPUT]
            n.act = plan[i, F_ACT]
            n.seq_in = (plan[i, F_FLAGS] & FLAG_SEQ_IN) != 0
            n.seq_out = (plan[i, F_FLAGS] & FLAG_SEQ_OUT) != 0
            n.backwards = (plan[i, F_FLAGS] & FLAG_BACKWARDS) != 0
            n.din = plan[i, F_DIN]
            n.units = plan[i, F_UNITS]
            n.p_kernel = plan[i, F_KERNEL]
            n.p_rec = plan[i, F_RECURRENT]
            n.p_bias = plan[i, F_BIAS]
        s.opt = OPT_SGD
        s.hyper[H_EPSILON] = 1e-7
        s.Ut = s.U
        s.out_act = plan[s.n_nodes - 1, F_ACT]
        self._optimizer_buffers = (np.zeros(1, np.int64),)
        s.iterations = <int64_t*>_address(self._optimizer_buffers[0])
        self.reserve(1, 1)

    def _check_plan(self, plan):
        """Every size and offset of the plan against the buffers (no trust in the caller)."""
        cdef State* s = &self.s
        rows = plan.tolist()
        for i, r in enumerate(rows):
            kind, inp, act, flags, din, units, pk, pr, pb = r
            where = f"plan node {i}"
            if kind not in (KIND_RNN, KIND_DENSE):
                raise ValueError(f"{where}: unknown kind {kind}")
            if not -1 <= inp < i or (i > 0 and inp != i - 1) or (i == 0 and inp != -1):
                raise ValueError(f"{where}: input must be the previous node (chains only), got {inp}")
            if not 0 <= act < 14:
                raise ValueError(f"{where}: unknown activation code {act}")
            if din < 1 or units < 1 or din > _INT_MAX or units > _INT_MAX:
                raise ValueError(f"{where}: sizes must be in [1, {_INT_MAX}], got {din}, {units}")
            want_din = s.D if inp < 0 else rows[inp][5]
            if din != want_din:
                raise ValueError(f"{where}: input features {din} != {want_din}")
            seq_in = bool(flags & FLAG_SEQ_IN)
            prev_seq = s.seq_in if inp < 0 else bool(rows[inp][3] & FLAG_SEQ_OUT)
            if seq_in != prev_seq:
                raise ValueError(f"{where}: seq_in flag does not match its input")
            if kind == KIND_RNN and not seq_in:
                raise ValueError(f"{where}: a recurrent node needs a time axis")
            if kind == KIND_DENSE and bool(flags & FLAG_SEQ_OUT) != seq_in:
                raise ValueError(f"{where}: a Dense node keeps its input's time axis")
            spans = [(pk, din * units)]
            if kind == KIND_RNN:
                spans.append((pr, units * units))
            elif pr != -1:
                raise ValueError(f"{where}: a Dense node has no recurrent kernel")
            if pb != -1:
                spans.append((pb, units))
            for off, size in spans:
                if off < 0 or off + size > s.n_params:
                    raise ValueError(f"{where}: weights at [{off}, {off + size}) are outside "
                                     f"params ({s.n_params} elements)")
        last = rows[len(rows) - 1]
        if last[5] != s.U or bool(last[3] & FLAG_SEQ_OUT) != s.seq_out:
            raise ValueError("the last node's output does not match output_units/seq_out")

    def __dealloc__(self):
        if self.have_params:
            PyBuffer_Release(&self.pb_params)
            PyBuffer_Release(&self.pb_grads)
        if self.have_state:
            PyBuffer_Release(&self.pb_state)
        if self.have_data:
            PyBuffer_Release(&self.pb_X)
            PyBuffer_Release(&self.pb_Y)
        if self.have_w:
            PyBuffer_Release(&self.pb_W)
        free(self.s.nodes)
        free(self.s.seg_off)
        free(self.s.seg_len)

    # -- configuration ---------------------------------------------------------
    def set_loss(self, int code, bint from_logits=False, double label_smoothing=0.0,
                 double param=0.0, ignore_class=None):
        """Choose the loss (an entry of LOSSES) and its options.

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

        Notes
        -----
        A last Dense node with a sigmoid (softmax) activation under binary
        (categorical, sparse categorical) cross-entropy on probabilities is
        fused with the loss (see engine_losses.pxi); ``fused`` tells.  Sparse
        cross-entropy takes one label per row as targets (shape (N, 1) or
        (N, T, 1)); changing between sparse and dense targets clears the
        metrics.
        """
        cdef State* s = &self.s
        cdef Node* last = &s.nodes[s.n_nodes - 1]
        if not 0 <= code < N_LOSS_CODES:
            raise ValueError(f"unknown loss code {code}")
        if not (0 <= label_smoothing <= 1):
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        if code == LOSS_HUBER and not (param > 0 and isfinite(param)):
            raise ValueError(f"huber delta must be finite and > 0, got {param}")
        if ignore_class is not None and code != LOSS_SCCE:
            raise ValueError("ignore_class is an option of sparse categorical cross-entropy")
        self._enter()
        try:
            ut = 1 if code == LOSS_SCCE else s.U
            if ut != s.Ut:
                s.n_metrics = 0
            s.Ut = ut
            memset(&s.loss, 0, sizeof(LossSpec))
            s.loss.code = code
            s.loss.from_logits = from_logits
            s.loss.smoothing = label_smoothing
            s.loss.param = param
            s.loss.has_ignore = ignore_class is not None
            s.loss.ignore = float(ignore_class) if ignore_class is not None else 0.0
            last.act = s.out_act
            s.fused = (last.kind == KIND_DENSE and not from_logits
                       and ((code == LOSS_BCE and s.out_act == ACT_SIGMOID)
                            or ((code == LOSS_CCE or code == LOSS_SCCE)
                                and s.out_act == ACT_SOFTMAX)))
            if s.fused:
                last.act = ACT_LINEAR      # the node computes logits; the loss does the rest
        finally:
            self.busy = False

    @property
    def fused(self):
        """Whether the last node's sigmoid/softmax is computed with the loss."""
        return bool(self.s.fused)

    @property
    def target_width(self):
        """Target values per output row: the output units, or 1 for integer labels."""
        return self.s.Ut

    def set_metrics(self, specs):
        """Choose the metrics computed with every batch (and reset their totals).

        Parameters
        ----------
        specs : sequence of dict
            Each ``{"code": METRICS entry, "weighted": bool, "param": float,
            "from_logits": bool, "label_smoothing": float}`` (all but code optional).
            Sparse metrics need sparse targets (a sparse loss) and the others
            dense ones.
        """
        cdef State* s = &self.s
        cdef LossSpec* m
        cdef int k
        specs = list(specs)
        if len(specs) > MAX_METRICS:
            raise ValueError(f"at most {MAX_METRICS} metrics run in the engine, got {len(specs)}")
        codes = set(METRICS.values())
        for spec in specs:
            code = spec["code"]
            if code not in codes:
                raise ValueError(f"unknown metric code {code}")
            sparse = code in SPARSE_CODES
            if (sparse and s.Ut != 1) or (not sparse and s.Ut != s.U):
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

    cdef int _reserve(self, Py_ssize_t B, Py_ssize_t T) except -1:
        """(Re)allocate the arena for at least B samples of T steps (sizes checked)."""
        cdef State* s = &self.s
        cdef Node* n
        cdef int i
        if B <= s.capB and T <= s.capT:
            return 0
        B = max(B, s.capB)
        T = max(T, s.capT)
        # sizes in Python ints: nothing can overflow before the check
        rows = int(B) * int(T)
        if rows > _INT_MAX:
            raise ValueError(f"a batch of {B} samples x {T} steps has {rows} rows; the kernels "
                             f"take at most {_INT_MAX}")
        offsets = []
        total = rows * s.D + rows * s.U + rows  # input gather, target gather, row weights
        for i in range(s.n_nodes):
            n = &s.nodes[i]
            width = n.units
            rows_i = rows if (n.seq_in or n.kind == KIND_RNN) else int(B)
            out_rows = rows if n.seq_out else int(B)
            sizes = {}
            if n.kind == KIND_RNN:
                sizes["hs"] = rows * width
                sizes["dz"] = 0 if self.inference else rows * width
                sizes["g"] = 0 if self.inference else int(B) * width
                sizes["wht"] = width * width
                sizes["out"] = rows * width if (n.seq_out and n.backwards) else 0
                # the output's gradient: in place in dz for a forward sequence
                sizes["dout"] = (0 if (n.seq_out and not n.backwards) or self.inference
                                 else out_rows * width)
            else:
                sizes["out"] = rows_i * width
                sizes["dout"] = 0 if self.inference else rows_i * width
            for v in sizes.values():
                if v > _INT_MAX * 64:
                    raise ValueError(f"node {i}: a work buffer of {v} elements is too large")
            offsets.append(sizes)
            total += sum(sizes.values())
        nbytes = total * self.itemsize
        if nbytes > 2**46:
            raise ValueError(f"the work buffers for {B} samples x {T} steps would take "
                             f"{nbytes / 2**30:.0f} GiB")
        arena = np.zeros(total + 1, self._dtype)
        off = rows * s.D + rows * s.U + rows
        for i in range(s.n_nodes):
            n = &s.nodes[i]
            sizes = offsets[i]
            for key in ("hs", "dz", "g", "wht", "out", "dout"):
                v = sizes.get(key, 0)
                if key == "hs": n.o_hs = off
                elif key == "dz": n.o_dz = off
                elif key == "g": n.o_g = off
                elif key == "wht": n.o_wht = off
                elif key == "out": n.o_out = off
                else: n.o_dout = off
                off += v
            if n.kind == KIND_RNN and n.seq_out and not n.backwards:
                n.o_dout = n.o_dz
        self._arena = arena
        s.arena = _address(arena)
        s.capB, s.capT = B, T
        return 0

    def reserve(self, batch_size, timesteps):
        """Size the work buffers for batches of up to (batch_size, timesteps)."""
        B, T = _size(batch_size, "batch_size"), _size(timesteps, "timesteps")
        self._enter()
        try:
            self._reserve(B, T)
        finally:
            self.busy = False

    @property
    def capacity(self):
        """(batch_size, timesteps) the arena holds now."""
        return self.s.capB, self.s.capT

    # -- calls ----------------------------------------------------------------------
    cdef int _get_x(self, object x, Py_buffer* view, str name) except -1:
        cdef Py_ssize_t shp[3]
        cdef State* s = &self.s
        shp[0] = -1
        if s.seq_in:
            shp[1] = -1; shp[2] = s.D
            _get(x, view, name, False, self.itemsize, 3, shp)
        else:
            shp[1] = s.D
            _get(x, view, name, False, self.itemsize, 2, shp)
        if s.seq_in and view.shape[1] < 1:
            PyBuffer_Release(view)
            raise ValueError(f"{name} must have at least one time step")
        return 0

    cdef int _get_y(self, object y, Py_buffer* view, str name, Py_ssize_t N,
                    Py_ssize_t T) except -1:
        cdef Py_ssize_t shp[3]
        cdef State* s = &self.s
        shp[0] = N
        if s.seq_out:
            shp[1] = T; shp[2] = s.Ut
            return _get(y, view, name, False, self.itemsize, 3, shp)
        shp[1] = s.Ut
        return _get(y, view, name, False, self.itemsize, 2, shp)

    cdef const void* _get_w(self, object w, Py_buffer* view, str name, Py_ssize_t N,
                            Py_ssize_t T) except? NULL:
        """Per-row weights: (N,) or (N, T) for a per-step output; None: NULL."""
        cdef Py_ssize_t shp[2]
        if w is None:
            return NULL
        shp[0] = N
        shp[1] = T
        _get(w, view, name, False, self.itemsize, 2 if self.s.seq_out else 1, shp)
        return view.buf

    cdef inline Py_ssize_t _steps(self, Py_buffer* x):
        return x.shape[1] if self.s.seq_in else 1

    cdef int _get_out(self, object out, Py_buffer* view, Py_buffer* x, Py_ssize_t N,
                      Py_ssize_t T) except -1:
        """A writable output array (N, U) or (N, T, U) not overlapping x or the model."""
        cdef Py_ssize_t shp[3]
        cdef State* s = &self.s
        shp[0] = N
        if s.seq_out:
            shp[1] = T; shp[2] = s.U
            _get(out, view, "out", True, self.itemsize, 3, shp)
        else:
            shp[1] = s.U
            _get(out, view, "out", True, self.itemsize, 2, shp)
        if (_overlaps(x, view) or _overlaps(view, &self.pb_params)
                or _overlaps(view, &self.pb_grads)):
            PyBuffer_Release(view)
            raise ValueError("out must not share memory with x or the model's buffers")
        return 0

    def train_step(self, xb, yb, double learning_rate, wb=None, out=None):
        """One training step on a batch; returns the loss before the update.

        xb (B, T, D) (or (B, D) without a time axis); yb the output's shape
        ((B, U) or (B, T, U); U is 1 for a sparse loss: the labels); wb
        per-sample (B,) or per-step (B, T) weights or None; out (optional)
        receives the batch's outputs (before the update).  C-contiguous, the
        engine's dtype.  Metrics accumulate.  On a bad step (see
        ``last_status``) nothing is updated and the loss is returned.
        """
        return self._step(xb, yb, wb, out, learning_rate, True)

    def gradients(self, xb, yb, wb=None):
        """Forward, loss and backward on a batch, without an update: fills ``grads``.

        Same arguments as :meth:`train_step`; returns the loss.  (For tests
        and for users who want the gradient itself.)  Metrics are not touched.
        """
        return self._step(xb, yb, wb, None, 0.0, False)

    cdef double _step(self, xb, yb, wb, out, double learning_rate, bint update) except? -1:
        cdef Py_buffer bx, by, bw, bo
        cdef Py_ssize_t B, T
        cdef double loss
        cdef const void* w
        cdef void* o = NULL
        cdef State* s = &self.s
        _check_rate(learning_rate)
        self._enter_training()
        try:
            self._get_x(xb, &bx, "xb")
            try:
                B = bx.shape[0]
                T = self._steps(&bx)
                if B < 1:
                    raise ValueError("xb must hold at least one sample")
                self._get_y(yb, &by, "yb", B, T)
                try:
                    w = self._get_w(wb, &bw, "wb", B, T)
                    try:
                        if out is not None:
                            self._get_out(out, &bo, &bx, B, T)
                            o = bo.buf
                        try:
                            self._reserve(B, T)
                            with nogil:
                                if self.itemsize == 8:
                                    _gather(s, <double*>NULL, <double*>bx.buf, NULL, NULL, 0, B, T)
                                    _gather_targets(s, <double*>NULL, <double*>by.buf,
                                                    <double*>w, NULL, 0, B, T)
                                    if update:
                                        loss = _train_batch(s, <double*>NULL, B, T, learning_rate)
                                    else:
                                        _forward(s, <double*>NULL, B, T)
                                        loss = _loss(s, <double*>NULL, B, T, True)
                                        _backward(s, <double*>NULL, B, T)
                                    if o != NULL:
                                        _scatter(s, <double*>NULL, 0, B, T, <double*>o)
                                else:
                                    _gather(s, <float*>NULL, <float*>bx.buf, NULL, NULL, 0, B, T)
                                    _gather_targets(s, <float*>NULL, <float*>by.buf,
                                                    <float*>w, NULL, 0, B, T)
                                    if update:
                                        loss = _train_batch(s, <float*>NULL, B, T, learning_rate)
                                    else:
                                        _forward(s, <float*>NULL, B, T)
                                        loss = _loss(s, <float*>NULL, B, T, True)
                                        _backward(s, <float*>NULL, B, T)
                                    if o != NULL:
                                        _scatter(s, <float*>NULL, 0, B, T, <float*>o)
                        finally:
                            if o != NULL:
                                PyBuffer_Release(&bo)
                    finally:
                        if w != NULL:
                            PyBuffer_Release(&bw)
                finally:
                    PyBuffer_Release(&by)
            finally:
                PyBuffer_Release(&bx)
        finally:
            self.busy = False
        return loss

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

        W: per-sample (N,) or per-step (N, T) weights, or None.
        """
        cdef Py_buffer bx, by, bw
        cdef const void* w = NULL
        cdef State* s = &self.s
        self._enter()
        try:
            self._get_x(X, &bx, "X")
            try:
                if bx.shape[0] < 1:
                    raise ValueError("X must hold at least one sample")
                self._get_y(Y, &by, "Y", bx.shape[0], self._steps(&bx))
                try:
                    w = self._get_w(W, &bw, "W", bx.shape[0], self._steps(&bx))
                except BaseException:
                    PyBuffer_Release(&by)
                    raise
            except BaseException:
                PyBuffer_Release(&bx)
                raise
            self._release_data()
            self.pb_X = bx
            self.pb_Y = by
            self.have_data = True
            if w != NULL:
                self.pb_W = bw
                self.have_w = True
            s.X = <char*>bx.buf
            s.Y = <char*>by.buf
            s.W = <char*>w
            s.N = bx.shape[0]
            s.T = self._steps(&bx)
        finally:
            self.busy = False

    cdef void _release_data(self):
        if self.have_data:
            PyBuffer_Release(&self.pb_X)
            PyBuffer_Release(&self.pb_Y)
            self.have_data = False
        if self.have_w:
            PyBuffer_Release(&self.pb_W)
            self.have_w = False
        self.s.X = NULL
        self.s.Y = NULL
        self.s.W = NULL

    def unbind_data(self):
        """Release the training set bound by :meth:`bind_data`."""
        self._enter()
        try:
            self._release_data()
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
        Returns the mean loss of the last epoch run; on a bad batch it stops
        there (``last_status``, ``bad_batch`` within ``bad_epoch``).
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
            if not self.have_data:
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
                            self._reserve(min(bs, L), s.T)
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
        """The loss on (x, y) in batches: the sample-weighted mean of the batch losses.

        w: per-sample (N,) or per-step (N, T) weights, or None; out (optional)
        receives the outputs.  Metrics accumulate.
        """
        cdef Py_buffer bx, by, bw, bo
        cdef Py_ssize_t N, T, bs
        cdef double loss
        cdef const void* wp
        cdef void* o = NULL
        cdef State* s = &self.s
        bs = _size(batch_size, "batch_size")
        self._enter()
        try:
            self._get_x(x, &bx, "x")
            try:
                N = bx.shape[0]
                T = self._steps(&bx)
                if N < 1:
                    raise ValueError("x must hold at least one sample")
                self._get_y(y, &by, "y", N, T)
                try:
                    wp = self._get_w(w, &bw, "w", N, T)
                    try:
                        if out is not None:
                            self._get_out(out, &bo, &bx, N, T)
                            o = bo.buf
                        try:
                            self._reserve(min(bs, N), T)
                            with nogil:
                                if self.itemsize == 8:
                                    loss = _evaluate(s, <double*>NULL, <double*>bx.buf,
                                                     <double*>by.buf, <double*>wp, N, T, bs,
                                                     <double*>o)
                                else:
                                    loss = _evaluate(s, <float*>NULL, <float*>bx.buf,
                                                     <float*>by.buf, <float*>wp, N, T, bs,
                                                     <float*>o)
                        finally:
                            if o != NULL:
                                PyBuffer_Release(&bo)
                    finally:
                        if wp != NULL:
                            PyBuffer_Release(&bw)
                finally:
                    PyBuffer_Release(&by)
            finally:
                PyBuffer_Release(&bx)
        finally:
            self.busy = False
        return loss

    def predict(self, x, out, chunk):
        """Forward pass: out = the model's output for x, ``chunk`` samples at a time.

        x (N, T, D) or (N, D); out (N, U) or (N, T, U), writable, not
        overlapping x or the model's buffers.
        """
        cdef Py_buffer bx, bo
        cdef Py_ssize_t shp[3]
        cdef Py_ssize_t N, T, ch
        cdef State* s = &self.s
        ch = _size(chunk, "chunk")
        self._enter()
        try:
            self._get_x(x, &bx, "x")
            try:
                N = bx.shape[0]
                T = self._steps(&bx)
                shp[0] = N
                if s.seq_out:
                    shp[1] = T; shp[2] = s.U
                    _get(out, &bo, "out", True, self.itemsize, 3, shp)
                else:
                    shp[1] = s.U
                    _get(out, &bo, "out", True, self.itemsize, 2, shp)
                try:
                    if (_overlaps(&bx, &bo) or _overlaps(&bo, &self.pb_params)
                            or _overlaps(&bo, &self.pb_grads)):
                        raise ValueError("out must not share memory with x or the model's buffers")
                    if N > 0:
                        ch = min(ch, N)
                        self._reserve(ch, T)
                        with nogil:
                            if self.itemsize == 8:
                                _predict(s, <double*>NULL, <double*>bx.buf, N, T, ch,
                                         <double*>bo.buf)
                            else:
                                _predict(s, <float*>NULL, <float*>bx.buf, N, T, ch,
                                         <float*>bo.buf)
                finally:
                    PyBuffer_Release(&bo)
            finally:
                PyBuffer_Release(&bx)
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
