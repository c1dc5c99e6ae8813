# The engine's losses and metrics (included by _engine.pyx: it shares its State and imports).
#
# Every loss is a per-row function (``_row``): a row is one sample (or one
# time step of one sample, row t*B + b, for a per-step output) of U outputs;
# the function returns the row's loss (Keras's per-sample value: the mean over
# the U outputs for the element-wise losses, the sum over the classes for the
# cross-entropies, KL divergence and the categorical hinge) and, when asked,
# writes scale * d(row loss)/d(output) into the row of dLoss/dy.
#
# Reduction (Keras 3's "sum_over_batch_size", keras/src/losses/loss.py): the
# batch loss is sum_r w_r * loss_r / R, R the number of rows (B, or B*T for a
# per-step output) -- the weighted sum over the *count*, never over the sum of
# the weights.  ``ignore_class`` (sparse cross-entropy) masks rows as Keras's
# mask does: the divisor becomes the number of valid rows.  A row of weight 0
# (or a masked one) is skipped: it adds nothing to the loss or the gradient,
# exactly as if it were not there.  The step mask of a per-step output (from
# Masking or Embedding(mask_zero), passed on as Keras's compute_mask does)
# masks rows the same way (Keras's ``apply_mask``: weights total/valid on the
# kept rows, so the loss is sum_kept w_r * loss_r / n_kept).
#
# Fusion: when the last node is a Dense layer with a sigmoid (softmax)
# activation and the loss is binary (categorical or sparse categorical)
# cross-entropy on probabilities, ``set_loss`` makes that node linear: its
# output is the logits z, ``_loss`` computes the loss and d(loss)/dz directly
# from z (stably: no 1 - p cancellation, no log of an underflowed
# probability), then applies the activation in place so metrics, ``evaluate``
# and ``predict`` see the probabilities.  The numbers are Keras's: inside
# Keras's clip bounds [1e-7, 1 - 1e-7] the loss is the exact value (softplus /
# log-softmax of the logits) and the gradient is p - y; a probability at or
# beyond a bound takes Keras's clipped value and (as jax.grad of Keras's clip)
# no gradient.  See fastrnn.reference.losses for the oracle.
#
# Metrics accumulate like keras.metrics.Mean: per row a value (1/0 for the
# accuracies, the per-sample loss for the error metrics), total += sum_r
# v_r * w_r / T and count += sum_r w_r / T (T = 1 without a time axis; count
# += B without weights), so per-step values are averaged over the time axis
# per sample first, as Keras does.  A masked output's mask multiplies the
# weights (Keras's MeanMetricWrapper: apply_mask with reduction "sum"), for
# weighted and unweighted metrics alike.

from libc.math cimport exp, expf, log, logf, log1p, log1pf, fabsf

cdef double EPS = 1e-7       # keras.backend.epsilon(): the clip bound of probabilities

cdef enum:
    LOSS_MSE = 0
    LOSS_MAE = 1
    LOSS_MAPE = 2
    LOSS_MSLE = 3
    LOSS_HUBER = 4
    LOSS_LOG_COSH = 5
    LOSS_POISSON = 6
    LOSS_KLD = 7
    LOSS_COSINE = 8
    LOSS_HINGE = 9
    LOSS_SQUARED_HINGE = 10
    LOSS_CATEGORICAL_HINGE = 11
    LOSS_BCE = 12
    LOSS_CCE = 13
    LOSS_SCCE = 14
    N_LOSS_CODES = 15
    # metric-only codes (a metric may also use any loss code: the per-sample loss)
    MET_ACCURACY = 32
    MET_BINARY_ACCURACY = 33
    MET_CATEGORICAL_ACCURACY = 34
    MET_SPARSE_CATEGORICAL_ACCURACY = 35
    MET_TOP_K = 36
    MET_SPARSE_TOP_K = 37
    MET_COSINE_SIMILARITY = 38    # + cosine similarity (the loss is its negative)

LOSSES = {
    "mean_squared_error": LOSS_MSE, "mean_absolute_error": LOSS_MAE,
    "mean_absolute_percentage_error": LOSS_MAPE, "mean_squared_logarithmic_error": LOSS_MSLE,
    "huber": LOSS_HUBER, "log_cosh": LOSS_LOG_COSH, "poisson": LOSS_POISSON,
    "kl_divergence": LOSS_KLD, "cosine_similarity": LOSS_COSINE, "hinge": LOSS_HINGE,
    "squared_hinge": LOSS_SQUARED_HINGE, "categorical_hinge": LOSS_CATEGORICAL_HINGE,
    "binary_crossentropy": LOSS_BCE, "categorical_crossentropy": LOSS_CCE,
    "sparse_categorical_crossentropy": LOSS_SCCE,
    # the engine's short names of round 1
    "mse": LOSS_MSE, "mae": LOSS_MAE,
}
METRICS = dict(LOSSES, **{
    "accuracy": MET_ACCURACY, "binary_accuracy": MET_BINARY_ACCURACY,
    "categorical_accuracy": MET_CATEGORICAL_ACCURACY,
    "sparse_categorical_accuracy": MET_SPARSE_CATEGORICAL_ACCURACY,
    "top_k_categorical_accuracy": MET_TOP_K,
    "sparse_top_k_categorical_accuracy": MET_SPARSE_TOP_K,
    "cosine_similarity_metric": MET_COSINE_SIMILARITY,
})
#: codes whose targets are one integer label per row (the others: one value per output)
SPARSE_CODES = frozenset({LOSS_SCCE, MET_SPARSE_CATEGORICAL_ACCURACY, MET_SPARSE_TOP_K})
MAX_METRIC_COUNT = MAX_METRICS


# ---------------------------------------------------------------- float helpers

cdef inline floating _lexp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)

cdef inline floating _llog(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)

cdef inline floating _llog1p(floating x) noexcept nogil:
    if floating is float:
        return log1pf(x)
    else:
        return log1p(x)

cdef inline floating _labs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)

cdef inline floating _lsqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)

cdef inline floating _softplus(floating x) noexcept nogil:
    """log(1 + e^x) without overflow."""
    return (x if x > 0 else 0) + _llog1p(_lexp(-_labs(x)))

cdef inline floating _sigmoid(floating x) noexcept nogil:
    cdef floating e
    if x >= 0:
        return 1 / (1 + _lexp(-x))
    e = _lexp(x)
    return e / (1 + e)

cdef inline floating _abs_slope(floating x) noexcept nogil:
    """d|x|/dx as jax.grad takes it: +1 at 0."""
    return 1 if x >= 0 else -1

cdef inline floating _max0_slope(floating x) noexcept nogil:
    """d max(x, 0)/dx as jax.grad takes it: 1/2 at the tie."""
    return 1 if x > 0 else (<floating>0.5 if x == 0 else 0)

cdef inline floating _clip_slope(floating x, floating lo, floating hi) noexcept nogil:
    """d clip(x, lo, hi)/dx as jax.grad takes it: 1 inside, 1/2 on a bound, 0 outside."""
    if x > lo and x < hi:
        return 1
    if x == lo or x == hi:
        return <floating>0.5
    return 0

cdef inline floating _clip(floating x, floating lo, floating hi) noexcept nogil:
    return lo if x < lo else (hi if x > hi else x)

cdef inline Py_ssize_t _argmax(const floating* a, Py_ssize_t n) noexcept nogil:
    """First index of the largest entry (np.argmax, NaN aside)."""
    cdef Py_ssize_t j, best = 0
    for j in range(1, n):
        if a[j] > a[best]:
            best = j
    return best


# ---------------------------------------------------------------- one row

cdef double _cross_entropy_row(const LossSpec* L, const floating* yp, const floating* yt,
                               floating* dy, floating scale, Py_ssize_t U,
                               bint fused) noexcept nogil:
    """Categorical (yt one value per class) or sparse (yt[0] the label) cross-entropy.

    ``yp`` is the logits when ``fused`` or ``from_logits``, else probabilities.
    """
    cdef bint sparse = L.code == LOSS_SCCE
    cdef Py_ssize_t j, label = -1
    cdef floating lo = <floating>EPS, hi = <floating>(1.0 - EPS)
    cdef floating smooth = <floating>L.smoothing, cls = <floating>U
    cdef floating y, mx, se, lse, total = 1, q, c, g, sy, gq, p, slope
    cdef double value = 0
    if sparse:
        y = yt[0]
        if not (y >= 0 and y < U):     # JAX one-hot: a zero row (fit rejects such labels)
            if dy != NULL:
                memset(dy, 0, U * sizeof(floating))
            return 0
        label = <Py_ssize_t>y
    if fused or L.from_logits:
        mx = yp[0]
        for j in range(1, U):
            if yp[j] > mx:
                mx = yp[j]
        se = 0
        for j in range(U):
            se = se + _lexp(yp[j] - mx)
        lse = _llog(se)
        if fused:
            total = 0                   # Keras renormalises p before clipping it
            for j in range(U):
                total = total + _lexp(yp[j] - mx) / se
        sy = 0                          # sum of the (smoothed) labels, each weighted by
        for j in range(U):              # its clip slope in the fused form
            y = <floating>(1 if j == label else 0) if sparse else yt[j]
            if smooth != 0:
                y = y * (1 - smooth) + smooth / cls
            if y == 0:
                slope = 1
            elif fused:
                p = _lexp(yp[j] - mx) / se
                q = p / total
                slope = _clip_slope(q, lo, hi)
                if q <= lo or q >= hi:
                    value -= y * _llog(_clip(q, lo, hi))
                else:
                    value -= y * (yp[j] - mx - lse)
            else:
                slope = 1
                value -= y * (yp[j] - mx - lse)
            sy = sy + y * slope
        if dy != NULL:
            for j in range(U):
                y = <floating>(1 if j == label else 0) if sparse else yt[j]
                if smooth != 0:
                    y = y * (1 - smooth) + smooth / cls
                p = _lexp(yp[j] - mx) / se
                if fused and y != 0:
                    q = p / total
                    y = y * _clip_slope(q, lo, hi)
                dy[j] = scale * (sy * p - y)
        return value
    # probabilities: p / sum(p), clipped to [eps, 1 - eps]
    total = 0
    for j in range(U):
        total = total + yp[j]
    gq = 0                              # sum_j g_j q_j, g = d loss / d q
    for j in range(U):
        y = <floating>(1 if j == label else 0) if sparse else yt[j]
        if smooth != 0:
            y = y * (1 - smooth) + smooth / cls
        if y != 0:
            q = yp[j] / total
            c = _clip(q, lo, hi)
            value -= y * _llog(c)
            gq = gq + (-y / c * _clip_slope(q, lo, hi)) * q
    if dy != NULL:
        for j in range(U):
            y = <floating>(1 if j == label else 0) if sparse else yt[j]
            if smooth != 0:
                y = y * (1 - smooth) + smooth / cls
            g = 0
            if y != 0:
                q = yp[j] / total
                g = -y / _clip(q, lo, hi) * _clip_slope(q, lo, hi)
            dy[j] = scale * (g - gq) / total
    return value


cdef double _cosine_row(const floating* yp, const floating* yt, floating* dy, floating scale,
                        Py_ssize_t U) noexcept nogil:
    """-sum(normalize(yt) * normalize(yp)), Keras's normalize x * min(1/|x|, 1/eps).

    The gradient at a zero ``yp`` is taken as 0 (jax.grad gives NaN there).
    """
    cdef Py_ssize_t j
    cdef floating st = 0, sp = 0, mt, mp, cap = 1 / <floating>EPS, inv_p, dm, inner = 0
    cdef double value = 0
    for j in range(U):
        st = st + yt[j] * yt[j]
        sp = sp + yp[j] * yp[j]
    mt = cap if st == 0 else 1 / _lsqrt(st)
    mt = cap if mt > cap else mt
    inv_p = cap if sp == 0 else 1 / _lsqrt(sp)
    mp = cap if inv_p > cap else inv_p
    for j in range(U):
        value -= (yt[j] * mt) * (yp[j] * mp)
        inner = inner + (yt[j] * mt) * yp[j]
    if dy != NULL:
        if sp == 0:
            memset(dy, 0, U * sizeof(floating))
        else:
            dm = 0
            if inv_p < cap:
                dm = -inv_p * inv_p * inv_p
            elif inv_p == cap:
                dm = -<floating>0.5 * inv_p * inv_p * inv_p
            for j in range(U):
                dy[j] = -scale * ((yt[j] * mt) * mp + inner * dm * yp[j])
    return value


cdef double _row(const LossSpec* L, const floating* yp, const floating* yt, floating* dy,
                 floating scale, Py_ssize_t U, bint fused, bint hinge01) noexcept nogil:
    """The per-sample value of loss/metric ``L`` on one row; ``dy`` (if not NULL) gets
    ``scale`` * its gradient.  ``hinge01``: the batch's labels are all 0/1 (hinge)."""
    cdef Py_ssize_t j
    cdef floating d, a, b, m, y, p, c, g, lo, hi, eps = <floating>EPS, delta, one = 1
    cdef floating inv = one / <floating>U, smooth
    cdef floating pos, neg, ties, value_f
    cdef double v = 0
    cdef int code = L.code
    if code == LOSS_MSE:
        for j in range(U):
            d = yp[j] - yt[j]
            v += d * d
            if dy != NULL:
                dy[j] = scale * (2 * d) * inv
        return v / U
    if code == LOSS_MAE:
        for j in range(U):
            d = yp[j] - yt[j]
            v += _labs(d)
            if dy != NULL:
                dy[j] = scale * -_abs_slope(-d) * inv
        return v / U
    if code == LOSS_MAPE:
        for j in range(U):
            a = _labs(yt[j])
            a = eps if a < eps else a
            d = (yt[j] - yp[j]) / a
            v += 100 * _labs(d)
            if dy != NULL:
                dy[j] = scale * (-100 * _abs_slope(d) / a) * inv
        return v / U
    if code == LOSS_MSLE:
        for j in range(U):
            a = (eps if yp[j] < eps else yp[j]) + one
            b = (eps if yt[j] < eps else yt[j]) + one
            d = _llog(a) - _llog(b)
            v += d * d
            if dy != NULL:
                g = 1 if yp[j] > eps else (<floating>0.5 if yp[j] == eps else 0)
                dy[j] = scale * (2 * d * g / a) * inv
        return v / U
    if code == LOSS_HUBER:
        delta = <floating>L.param
        for j in range(U):
            d = yp[j] - yt[j]
            if _labs(d) <= delta:
                v += <floating>0.5 * d * d
                g = d
            else:
                v += delta * _labs(d) - <floating>0.5 * delta * delta
                g = delta * _abs_slope(d)
            if dy != NULL:
                dy[j] = scale * g * inv
        return v / U
    if code == LOSS_LOG_COSH:
        for j in range(U):
            d = yp[j] - yt[j]
            v += d + _softplus(-2 * d) - <floating>0.6931471805599453
            if dy != NULL:
                dy[j] = scale * (1 - 2 * _sigmoid(-2 * d)) * inv
        return v / U
    if code == LOSS_POISSON:
        for j in range(U):
            v += yp[j] - yt[j] * _llog(yp[j] + eps)
            if dy != NULL:
                dy[j] = scale * (1 - yt[j] / (yp[j] + eps)) * inv
        return v / U
    if code == LOSS_KLD:
        for j in range(U):
            a = _clip(yt[j], eps, one)
            b = _clip(yp[j], eps, one)
            v += a * _llog(a / b)
            if dy != NULL:
                dy[j] = scale * (-a / b * _clip_slope(yp[j], eps, one))
        return v
    if code == LOSS_COSINE:
        return _cosine_row(yp, yt, dy, scale, U)
    if code == MET_COSINE_SIMILARITY:
        return -_cosine_row(yp, yt, <floating*>NULL, scale, U)
    if code == LOSS_HINGE or code == LOSS_SQUARED_HINGE:
        for j in range(U):
            y = 2 * yt[j] - 1 if hinge01 else yt[j]
            m = 1 - y * yp[j]
            if code == LOSS_HINGE:
                v += m if m > 0 else 0
                g = -y * _max0_slope(m)
            else:
                m = m if m > 0 else 0
                v += m * m
                g = -2 * m * y
            if dy != NULL:
                dy[j] = scale * g * inv
        return v / U
    if code == LOSS_CATEGORICAL_HINGE:
        pos = 0
        neg = (1 - yt[0]) * yp[0]
        for j in range(U):
            pos = pos + yt[j] * yp[j]
            a = (1 - yt[j]) * yp[j]
            neg = a if a > neg else neg
        value_f = neg - pos + 1
        if dy != NULL:
            # (each product rounded to the dtype before comparing: a float32
            # expression may be compared in double and miss the maximum)
            ties = 0
            for j in range(U):
                a = (1 - yt[j]) * yp[j]
                if a == neg:
                    ties = ties + 1
            g = _max0_slope(value_f)
            for j in range(U):
                a = (1 - yt[j]) * yp[j]
                a = (1 / ties) * (1 - yt[j]) if a == neg else 0
                dy[j] = scale * g * (a - yt[j])
        return value_f if value_f > 0 else 0
    if code == LOSS_BCE:
        lo = eps
        hi = <floating>(1.0 - EPS)
        smooth = <floating>L.smoothing
        for j in range(U):
            y = yt[j]
            if smooth != 0:
                y = y * (1 - smooth) + <floating>0.5 * smooth
            p = yp[j]
            if fused or L.from_logits:
                # -y log sigmoid(z) - (1 - y) log sigmoid(-z); d/dz = sigmoid(z) - y
                g = (1 - y) * _sigmoid(p) - y * _sigmoid(-p)
                if fused:
                    a = _sigmoid(p)
                    if a <= lo or a >= hi:        # Keras's clipped value, no slope beyond
                        c = _clip(a, lo, hi)
                        v -= y * _llog(c) + (1 - y) * _llog(1 - c)
                        g = g * _clip_slope(a, lo, hi)
                    else:
                        v += y * _softplus(-p) + (1 - y) * _softplus(p)
                else:
                    v += y * _softplus(-p) + (1 - y) * _softplus(p)
            else:
                c = _clip(p, lo, hi)
                v -= y * _llog(c) + (1 - y) * _llog(1 - c)
                g = (-(y / c) + (1 - y) / (1 - c)) * _clip_slope(p, lo, hi)
            if dy != NULL:
                dy[j] = scale * g * inv
        return v / U
    if code == LOSS_CCE or code == LOSS_SCCE:
        return _cross_entropy_row(L, yp, yt, dy, scale, U, fused)
    # metrics (no gradient)
    if code == MET_ACCURACY:
        for j in range(U):
            v += 1 if yt[j] == yp[j] else 0
        return v / U
    if code == MET_BINARY_ACCURACY:
        a = <floating>L.param
        for j in range(U):
            v += 1 if yt[j] == (1 if yp[j] > a else 0) else 0
        return v / U
    if code == MET_CATEGORICAL_ACCURACY:
        return 1 if _argmax(yt, U) == _argmax(yp, U) else 0
    if code == MET_SPARSE_CATEGORICAL_ACCURACY:
        return 1 if yt[0] == <floating>_argmax(yp, U) else 0
    if code == MET_TOP_K or code == MET_SPARSE_TOP_K:
        if code == MET_TOP_K:
            j = _argmax(yt, U)
        else:
            if not (yt[0] >= 0 and yt[0] < U):
                return 0
            j = <Py_ssize_t>yt[0]
        a = yp[j]
        if a != a:                  # a NaN score at the label: never found (as JAX)
            return 0
        c = 1
        for j in range(U):
            if yp[j] > a:
                c = c + 1
        return 1 if c <= <floating>L.param else 0
    return 0


# ---------------------------------------------------------------- batch loss and metrics
# Per model output o: its targets (Ut[o] values per row) and row weights live in
# the arena at o_target[o] and o_weight[o]; its loss is losses[o], weighted by
# loss_weight[o] in the total (Keras's sum over the outputs).

cdef inline floating* _target(State* s, floating* tag, int o) noexcept nogil:
    return _buf(s, tag, s.o_target[o])

cdef inline floating* _row_weights(State* s, floating* tag, int o) noexcept nogil:
    return _buf(s, tag, s.o_weight[o])


cdef void _gather_targets(State* s, floating* tag, floating** Y, floating** W,
                          const int64_t* order, Py_ssize_t start) noexcept nogil:
    """Targets (Ut per row) and weights (W NULL or W[o] NULL: none) of samples
    order[start:start+B] for every output: time-major rows of a per-step
    output, one row per sample otherwise (_set_steps first)."""
    cdef Py_ssize_t i, t, r, Ut, steps, B = s.B
    cdef floating* yt
    cdef floating* w
    cdef const floating* Yo
    cdef const floating* Wo
    cdef int o
    for o in range(s.n_outputs):
        Ut = s.Ut[o]
        steps = s.nodes[s.out_node[o]].steps
        yt = _target(s, tag, o)
        w = _row_weights(s, tag, o)
        Yo = Y[o]
        Wo = W[o] if W != NULL else NULL
        for i in range(B):
            r = order[start + i] if order != NULL else start + i
            for t in range(steps):
                _copy(yt + (t * B + i) * Ut, Yo + (r * steps + t) * Ut, Ut)
                if Wo != NULL:
                    w[t * B + i] = Wo[r * steps + t]
        s.has_w[o] = Wo != NULL


cdef bint _labels01(const floating* yt, Py_ssize_t n) noexcept nogil:
    """Every label 0 or 1 (Keras's hinge converts them to -1/+1 then, batch-wide)."""
    cdef Py_ssize_t i
    for i in range(n):
        if yt[i] != 0 and yt[i] != 1:
            return False
    return True


cdef inline bint _is_hinge(int code) noexcept nogil:
    return code == LOSS_HINGE or code == LOSS_SQUARED_HINGE


cdef double _output_loss(State* s, floating* tag, int o, bint grad) noexcept nogil:
    """Output o's batch loss (Keras's "sum_over_batch_size"); with ``grad``
    loss_weight * dLoss/dy (dLoss/dz for a fused output) into its output
    gradient (added to it when another writer came first).  A fused output is
    activated in place afterwards."""
    cdef int node = s.out_node[o]
    cdef LossSpec* L = &s.losses[o]
    cdef Py_ssize_t r, R = _rows(s, node), U = s.nodes[node].width, Ut = s.Ut[o], valid = R
    cdef floating* yp = _output(s, tag, node)
    cdef const floating* yt = _target(s, tag, o)
    cdef const floating* w = _row_weights(s, tag, o) if s.has_w[o] else NULL
    cdef bint want = grad and s.nodes[node].backprop
    cdef bint acc = s.out_acc[o]
    cdef floating* dout = _buf(s, tag, s.nodes[node].o_dout) if want else NULL
    # a gradient that must be added is written to the scratch buffer first
    cdef floating* dy = (_buf(s, tag, s.o_scratch) if acc else dout) if want else NULL
    cdef floating wr, ignore = <floating>L.ignore, lw = <floating>s.loss_weight[o]
    cdef bint masking = L.has_ignore
    cdef const unsigned char* keep = _mask(s, tag, node)     # the output's step mask
    cdef bint hinge01 = _is_hinge(L.code) and _labels01(yt, R * Ut)
    cdef double total = 0
    cdef Py_ssize_t i, n = R * U
    cdef floating d, nf
    if L.code == LOSS_MSE and w == NULL and keep == NULL:
        # the common case as one flat loop over all elements, without a call per row: the
        # mean over rows of the row means, rounded as before this file had weights
        nf = <floating>n
        if dy == NULL:
            for i in range(n):
                d = yp[i] - yt[i]
                total += d * d
        elif lw == 1:
            for i in range(n):
                d = yp[i] - yt[i]
                total += d * d
                dy[i] = (2 * d) / nf
        else:
            for i in range(n):
                d = yp[i] - yt[i]
                total += d * d
                dy[i] = lw * ((2 * d) / nf)
        if acc and dy != NULL:
            copy_or_add(dout, dy, n, True)
        return total / n
    if masking or keep != NULL:
        valid = 0
        for r in range(R):
            if (not masking or yt[r * Ut] != ignore) and (keep == NULL or keep[r]):
                valid += 1
    for r in range(R):
        wr = w[r] if w != NULL else 1
        if wr == 0 or (masking and yt[r * Ut] == ignore) or (keep != NULL and not keep[r]):
            if dy != NULL:
                memset(dy + r * U, 0, U * sizeof(floating))
            continue
        total += wr * _row(L, yp + r * U, yt + r * Ut, dy + r * U if dy != NULL else NULL,
                           lw * wr / <floating>valid, U, s.fused[o], hinge01)
    if acc and dy != NULL:
        copy_or_add(dout, dy, n, True)
    if s.fused[o]:
        activate_rows(s.out_act[o], yp, R, U, U)
    return total / valid if valid > 0 else 0


cdef double _loss(State* s, floating* tag, bint grad) noexcept nogil:
    """The batch loss: the sum over the outputs of loss_weight * loss (Keras's total);
    with ``grad`` each output's d(total)/dy into its output gradient.  Each
    output's own loss goes to s.out_loss."""
    cdef int o
    cdef double total = 0, value
    for o in range(s.n_outputs):
        value = _output_loss(s, tag, o, grad)
        s.out_loss[o] = value
        total += s.loss_weight[o] * value
    return total


cdef void _finish_output(State* s, floating* tag) noexcept nogil:
    """Fused outputs without a loss (predict): logits -> the layer's activation."""
    cdef int o, node
    for o in range(s.n_outputs):
        if s.fused[o]:
            node = s.out_node[o]
            activate_rows(s.out_act[o], _output(s, tag, node), _rows(s, node),
                          s.nodes[node].width, s.nodes[node].width)


cdef void _metrics(State* s, floating* tag) noexcept nogil:
    """Add the batch to every metric's running total and count (outputs are probabilities)."""
    cdef int k, o, node
    cdef Py_ssize_t r, steps, R, U, Ut, B = s.B
    cdef const floating* yp
    cdef const floating* yt
    cdef const floating* w
    cdef double total, count, wr
    cdef bint hinge01
    cdef LossSpec* m
    cdef const unsigned char* keep
    for k in range(s.n_metrics):
        m = &s.metrics[k]
        o = m.output
        node = s.out_node[o]
        steps = s.nodes[node].steps
        R = B * steps
        U = s.nodes[node].width
        Ut = s.Ut[o]
        yp = _output(s, tag, node)
        yt = _target(s, tag, o)
        hinge01 = _is_hinge(m.code) and _labels01(yt, R * Ut)
        w = _row_weights(s, tag, o) if (s.has_w[o] and m.weighted) else NULL
        keep = _mask(s, tag, node)
        total = 0
        count = 0
        for r in range(R):
            wr = w[r] if w != NULL else 1
            if wr == 0 or (keep != NULL and not keep[r]):
                continue
            total += wr * _row(m, yp + r * U, yt + r * Ut, <floating*>NULL, 1, U, False,
                               hinge01)
            count += wr
        s.m_total[k] += total / steps
        s.m_count[k] += count / steps if (w != NULL or keep != NULL) else B


cdef void _reset_metric_totals(State* s) noexcept nogil:
    cdef int k
    for k in range(s.n_metrics):
        s.m_total[k] = 0
        s.m_count[k] = 0


cdef void _copy_metric_totals(State* s, double* out) noexcept nogil:
    """out = [total_0, count_0, total_1, count_1, ...]."""
    cdef int k
    for k in range(s.n_metrics):
        out[2 * k] = s.m_total[k]
        out[2 * k + 1] = s.m_count[k]

# ---------------------------------------------------------------- a checked entry for tests

def loss_and_gradient(y_true, y_pred, sample_weight=None, *, int code, bint from_logits=False,
                      double label_smoothing=0.0, double param=0.0, ignore_class=None,
                      fused_activation=None, metrics=(), mask=None):
    """The engine's own loss code on given outputs: (loss, dLoss/dy_pred, outputs, metrics).

    Runs ``_loss`` (with the gradient) and ``_metrics`` exactly as a training
    step does, on a batch whose last-layer output is ``y_pred``.

    Parameters
    ----------
    y_true : ndarray
        (B, Ut) or (B, T, Ut): Ut = U, or 1 for sparse codes.
    y_pred : ndarray of shape (B, U) or (B, T, U), float32 or float64
        The output (the logits when ``fused_activation`` is given).
    sample_weight : ndarray of shape (B,) or (B, T), optional
    code : int
        An entry of LOSSES.
    fused_activation : {"sigmoid", "softmax"}, optional
        Compute as the engine does for a sigmoid/softmax Dense output fused
        with its cross-entropy: ``y_pred`` is the logits.
    metrics : sequence of dict
        As :meth:`Engine.set_metrics`.
    mask : ndarray of bool, shape (B,) or (B, T), optional
        The output's step mask (Keras's mask of ``y_pred``): rows where it is
        False count in neither the loss nor the metrics.

    Returns
    -------
    loss : float
    grad : ndarray, shape of y_pred
        d loss / d y_pred (the logits when fused).
    output : ndarray, shape of y_pred
        The output after the loss (the probabilities when fused).
    totals : list of (total, count)
    """
    cdef State s
    cdef Node node
    cdef LossSpec* m
    cdef Py_ssize_t B, T, U, Ut, R, k
    cdef double loss
    y_pred = np.asarray(y_pred)
    dtype = y_pred.dtype
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"y_pred must be float32 or float64, got {dtype}")
    seq = y_pred.ndim == 3
    if y_pred.ndim not in (2, 3) or 0 in y_pred.shape:
        raise ValueError(f"y_pred must have shape (B, U) or (B, T, U), got {y_pred.shape}")
    lead = tuple(y_pred.shape)[:y_pred.ndim - 1]     # (B,) or (B, T); no negative indices
    B, U = y_pred.shape[0], y_pred.shape[y_pred.ndim - 1]
    T = y_pred.shape[1] if seq else 1
    R = B * T
    sparse = code in SPARSE_CODES
    Ut = 1 if sparse else U
    y_true = np.array(y_true, dtype=dtype, copy=True)
    if y_true.shape != lead + (Ut,):
        raise ValueError(f"y_true must have shape {lead + (Ut,)}, got {y_true.shape}")
    if not 0 <= code < N_LOSS_CODES:
        raise ValueError(f"unknown loss code {code}")
    if sparse:
        bad = (y_true < 0) | (y_true >= U) | (y_true != np.floor(y_true))
        if ignore_class is not None:
            bad &= y_true != ignore_class
        if bad.any():
            raise ValueError("sparse labels must be whole numbers in [0, U)")
    w = None
    if sample_weight is not None:
        w = np.ascontiguousarray(sample_weight, dtype=dtype)
        if w.shape != lead:
            raise ValueError(f"sample_weight must have shape {lead}, got {w.shape}")
    metrics = list(metrics)
    if len(metrics) > MAX_METRICS:
        raise ValueError(f"at most {MAX_METRICS} metrics")
    for spec in metrics:
        if spec["code"] not in set(METRICS.values()):
            raise ValueError(f"unknown metric code {spec['code']}")
        if (spec["code"] in SPARSE_CODES) != sparse and U > 1:
            raise ValueError("metrics must take the loss's kind of targets")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != lead:
            raise ValueError(f"mask must have shape {lead}, got {mask.shape}")
        # time-major bytes, as the engine keeps a step mask
        mask = np.ascontiguousarray((mask.T if seq else mask) != 0, dtype=np.uint8).ravel()
    acts = {None: -1, "sigmoid": ACT_SIGMOID, "softmax": ACT_SOFTMAX}
    if fused_activation not in acts:
        raise ValueError(f"fused_activation must be None, 'sigmoid' or 'softmax'")
    # arena: targets (R*Ut, in a block of R*U), row weights (R), output (R*U), d output
    # (R*U), the step mask (R bytes)
    arena = np.zeros(R * U + R + 3 * R * U + R + 1, dtype)
    cdef int out_node = 0
    cdef Py_ssize_t o_target = 0, o_weight = R * U
    cdef double loss_weight = 1.0, out_loss = 0
    cdef bint out_acc = False, has_w = False, fused = fused_activation is not None
    cdef int out_act
    cdef Py_ssize_t ut = Ut
    cdef LossSpec lspec
    memset(&s, 0, sizeof(State))
    memset(&node, 0, sizeof(Node))
    memset(&lspec, 0, sizeof(LossSpec))
    node.kind = KIND_DENSE
    node.width = U
    node.seq = seq
    node.steps = T
    node.backprop = True
    node.o_out = R * U + R
    node.o_dout = node.o_out + R * U
    node.o_mask = node.o_dout + R * U
    node.mask_of = -1 if mask is None else 0
    s.n_nodes = 1
    s.nodes = &node
    s.B = B
    s.n_outputs = 1
    s.out_node = &out_node
    s.out_acc = &out_acc
    s.o_target = &o_target
    s.o_weight = &o_weight
    s.loss_weight = &loss_weight
    s.out_loss = &out_loss
    s.has_w = &has_w
    s.fused = &fused
    out_act = acts[fused_activation]
    s.out_act = &out_act
    s.Ut = &ut
    s.arena = _address(arena)
    lspec.code = code
    lspec.from_logits = from_logits
    lspec.smoothing = label_smoothing
    lspec.param = param
    lspec.has_ignore = ignore_class is not None
    lspec.ignore = float(ignore_class) if ignore_class is not None else 0.0
    s.losses = &lspec
    s.n_metrics = len(metrics)
    for k, spec_k in enumerate(metrics):
        m = &s.metrics[k]
        m.code = spec_k["code"]
        m.weighted = bool(spec_k.get("weighted", False))
        m.param = float(spec_k.get("param", 0.0))
        m.from_logits = bool(spec_k.get("from_logits", False))
        m.smoothing = float(spec_k.get("label_smoothing", 0.0))
        m.output = 0
    # the output, time-major rows as the engine keeps them
    rows = (np.transpose(y_pred, (1, 0, 2)) if seq else y_pred).reshape(R, U)
    arena[node.o_out:node.o_out + R * U] = rows.ravel()
    if mask is not None:
        arena[node.o_mask:].view(np.uint8)[:R] = mask
    yt = np.array(y_true, dtype=dtype, copy=True)
    cdef char* yp_ = _address(yt)
    cdef char* wp_ = NULL
    if w is not None:
        w = np.array(w, dtype=dtype, copy=True)
        wp_ = _address(w)
    if dtype == np.float64:
        _gather_targets(&s, <double*>NULL, <double**>&yp_, <double**>&wp_, NULL, 0)
        loss = _loss(&s, <double*>NULL, True)
        _metrics(&s, <double*>NULL)
    else:
        _gather_targets(&s, <float*>NULL, <float**>&yp_, <float**>&wp_, NULL, 0)
        loss = _loss(&s, <float*>NULL, True)
        _metrics(&s, <float*>NULL)

    grad = arena[node.o_dout:node.o_dout + R * U].copy()
    out = arena[node.o_out:node.o_out + R * U].copy()
    if seq:
        grad = np.ascontiguousarray(grad.reshape(int(T), int(B), int(U)).transpose(1, 0, 2))
        out = np.ascontiguousarray(out.reshape(int(T), int(B), int(U)).transpose(1, 0, 2))
    else:
        grad = grad.reshape(int(B), int(U))
        out = out.reshape(int(B), int(U))
    totals = [(s.m_total[k], s.m_count[k]) for k in range(s.n_metrics)]
    return loss, grad, out, totals
