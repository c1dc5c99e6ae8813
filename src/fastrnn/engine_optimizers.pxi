# The engine's optimizers: clipping, the update rules, the finiteness guard (included by _engine.pyx: it shares its State and imports).


cdef double _sumsq(const floating* a, Py_ssize_t n) noexcept nogil:
    """Sum of squares accumulated in double (4 partial sums, so it vectorises)."""
    cdef Py_ssize_t i, n4 = n - n % 4
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0
    for i in range(0, n4, 4):
        s0 += <double>a[i] * a[i]
        s1 += <double>a[i + 1] * a[i + 1]
        s2 += <double>a[i + 2] * a[i + 2]
        s3 += <double>a[i + 3] * a[i + 3]
    for i in range(n4, n):
        s0 += <double>a[i] * a[i]
    return (s0 + s1) + (s2 + s3)


cdef extern from "fastmath.h" nogil:
    int fr_all_finitef(const float* a, Py_ssize_t n)
    int fr_all_finite(const double* a, Py_ssize_t n)


cdef inline bint _all_finite(const floating* a, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return fr_all_finitef(a, n)
    else:
        return fr_all_finite(a, n)


cdef inline floating _sqrt(floating z) noexcept nogil:
    if floating is float:
        return sqrtf(z)
    else:
        return sqrt(z)


cdef const floating* _clipped(State* s, floating* tag, double l2) noexcept nogil:
    """The gradient after Keras's clipping (the grads buffer keeps the raw one)."""
    cdef floating* g = <floating*>s.grads
    cdef floating* out = <floating*>s.gclip
    cdef Py_ssize_t i, k, off, n
    cdef floating c = <floating>s.clip_c, scale
    cdef double norm
    if s.clip == CLIP_NONE:
        return g
    if s.clip == CLIP_VALUE:              # elementwise into [-c, c]
        for i in range(s.n_params):
            out[i] = -c if g[i] < -c else (c if g[i] > c else g[i])
    elif s.clip == CLIP_GLOBAL:           # all together to joint norm <= c
        norm = sqrt(l2)
        scale = <floating>(s.clip_c / norm) if norm > s.clip_c else 1
        for i in range(s.n_params):
            out[i] = g[i] * scale
    else:                                  # each variable to its own norm <= c
        for k in range(s.n_seg):
            off = s.seg_off[k]
            n = s.seg_len[k]
            norm = sqrt(_sumsq(g + off, n))
            scale = <floating>(s.clip_c / norm) if norm > s.clip_c else 1
            for i in range(off, off + n):
                out[i] = g[i] * scale
    return out


cdef void _sgd(State* s, floating* tag, const floating* g, floating lr) noexcept nogil:
    # m = momentum m - lr g;  p += m  (nesterov: p += momentum m - lr g);  no momentum: p -= lr g
    cdef Py_ssize_t i, n = s.n_params
    cdef floating* p = <floating*>s.params
    cdef floating* m = <floating*>s.opt_state
    cdef floating mu = <floating>s.hyper[H_MOMENTUM]
    if s.n_slots == 0:
        for i in range(n):
            p[i] -= g[i] * lr
    elif s.hyper[H_FLAG] != 0:
        for i in range(n):
            m[i] = m[i] * mu - g[i] * lr
            p[i] += m[i] * mu - g[i] * lr
    else:
        for i in range(n):
            m[i] = m[i] * mu - g[i] * lr
            p[i] += m[i]


cdef void _rmsprop(State* s, floating* tag, const floating* g, floating lr) noexcept nogil:
    # v = rho v + (1-rho) g^2;  centered: a = rho a + (1-rho) g, den = v - a^2 + eps,
    # else den = v + eps;  inc = lr g / sqrt(den);  momentum: mom = mu mom + inc, p -= mom
    cdef Py_ssize_t i, n = s.n_params
    cdef floating* p = <floating*>s.params
    cdef floating* v = <floating*>s.opt_state
    cdef floating* mom = NULL
    cdef floating* avg = NULL
    cdef floating rho = <floating>s.hyper[H_RHO], eps = <floating>s.hyper[H_EPSILON]
    cdef floating mu = <floating>s.hyper[H_MOMENTUM], den, inc
    cdef floating one_minus_rho = <floating>(1 - s.hyper[H_RHO])   # in double, as Keras
    cdef int slot = 1
    if mu > 0:
        mom = v + slot * n
        slot += 1
    if s.hyper[H_FLAG] != 0:
        avg = v + slot * n
    for i in range(n):
        v[i] = rho * v[i] + one_minus_rho * (g[i] * g[i])
        if avg != NULL:
            avg[i] = rho * avg[i] + one_minus_rho * g[i]
            den = v[i] - avg[i] * avg[i] + eps
        else:
            den = v[i] + eps
        inc = lr * g[i] / _sqrt(den)
        if mom != NULL:
            mom[i] = mu * mom[i] + inc
            p[i] -= mom[i]
        else:
            p[i] -= inc


cdef void _adagrad(State* s, floating* tag, const floating* g, floating lr) noexcept nogil:
    # acc += g^2;  p -= lr g / sqrt(acc + eps)
    cdef Py_ssize_t i, n = s.n_params
    cdef floating* p = <floating*>s.params
    cdef floating* acc = <floating*>s.opt_state
    cdef floating eps = <floating>s.hyper[H_EPSILON]
    for i in range(n):
        acc[i] = acc[i] + g[i] * g[i]
        p[i] -= lr * g[i] / _sqrt(acc[i] + eps)


cdef void _zero_frozen(State* s, floating* g) noexcept nogil:
    """A frozen weight's gradient counts as 0 (Keras computes none)."""
    cdef int r
    for r in range(s.n_frozen):
        memset(g + s.frz_off[r], 0, s.frz_len[r] * sizeof(floating))


cdef void _restore_frozen(State* s, floating* p, const floating* backup) noexcept nogil:
    """Put back the frozen weights and their optimizer slots as they were before the
    step (undoes weight decay and any momentum the slots carried)."""
    cdef int r, k
    cdef Py_ssize_t n = s.n_params, off, length
    cdef floating* state = <floating*>s.opt_state
    for r in range(s.n_frozen):
        off, length = s.frz_off[r], s.frz_len[r]
        memcpy(p + off, backup + off, length * sizeof(floating))
        for k in range(s.n_slots):
            memcpy(state + k * n + off, backup + (k + 1) * n + off, length * sizeof(floating))


cdef int _update(State* s, floating* tag, double lr) noexcept nogil:
    """Clip, then the optimizer step on params; returns 0 (done) or a BAD_* code.

    Nothing changes when the gradient is not finite, nor when the update
    would leave a non-finite weight or state (everything is restored).

    Adam without weight decay backs up and checks in its own pass (adam_k
    with a backup); without clipping, the gradient is then not checked
    beforehand either: a non-finite gradient makes m non-finite, and after
    the restore the gradient's norm says which of the two it was.
    """
    cdef Py_ssize_t i, n = s.n_params
    cdef floating* p = <floating*>s.params
    cdef floating* backup = <floating*>s.backup
    cdef Py_ssize_t n_state = s.n_slots * n
    # Adam without weight decay or frozen weights backs up and checks in its own pass
    cdef bint fused = (s.opt == OPT_ADAM and s.hyper[H_WEIGHT_DECAY] == 0 and not s.n_frozen
                       and s.n_slots == (3 if s.hyper[H_FLAG] != 0 else 2))
    cdef double l2 = 0
    cdef double t, lr_t
    cdef floating wd
    cdef const floating* g
    if s.n_frozen:
        _zero_frozen(s, <floating*>s.grads)
    if s.clip != CLIP_NONE or not fused:
        l2 = _sumsq(<floating*>s.grads, n)
        if not isfinite(l2):
            return BAD_GRADIENT
    g = _clipped(s, tag, l2)
    if not fused:
        memcpy(backup, p, n * sizeof(floating))
        if n_state:
            memcpy(backup + n, s.opt_state, n_state * sizeof(floating))
    s.iterations[0] += 1
    # decoupled weight decay first, with the step's learning rate: p -= p wd lr
    if s.hyper[H_WEIGHT_DECAY] != 0:
        wd = <floating>(s.hyper[H_WEIGHT_DECAY] * lr)
        for i in range(n):
            p[i] -= p[i] * wd
    if s.opt == OPT_ADAM:
        t = <double>s.iterations[0]
        lr_t = lr * sqrt(1 - c_pow(s.hyper[H_BETA_2], t)) / (1 - c_pow(s.hyper[H_BETA_1], t))
        if adam_k(p, g, <floating*>s.opt_state, (<floating*>s.opt_state) + n,
                  (<floating*>s.opt_state) + 2 * n if s.hyper[H_FLAG] != 0 else NULL,
                  n, <floating>1, <floating>lr_t, <floating>(1 - s.hyper[H_BETA_1]),
                  <floating>(1 - s.hyper[H_BETA_2]), <floating>s.hyper[H_EPSILON],
                  backup if fused else NULL) and fused:
            return 0
    elif s.opt == OPT_SGD:
        _sgd(s, tag, g, <floating>lr)
    elif s.opt == OPT_RMSPROP:
        _rmsprop(s, tag, g, <floating>lr)
    else:
        _adagrad(s, tag, g, <floating>lr)
    if s.n_frozen:
        _restore_frozen(s, p, backup)
    if not fused and _all_finite(p, n) and _all_finite(<floating*>s.opt_state, n_state):
        return 0
    memcpy(p, backup, n * sizeof(floating))
    if n_state:
        memcpy(s.opt_state, backup + n, n_state * sizeof(floating))
    s.iterations[0] -= 1
    if fused and s.clip == CLIP_NONE and not isfinite(_sumsq(<floating*>s.grads, n)):
        return BAD_GRADIENT
    return BAD_UPDATE
