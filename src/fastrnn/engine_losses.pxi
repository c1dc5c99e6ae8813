# The engine's losses (included by _engine.pyx: it shares its State and imports).

cdef double _loss(State* s, floating* tag, Py_ssize_t B, Py_ssize_t T, bint grad) noexcept nogil:
    """The batch loss (mean over all output elements); with ``grad`` dLoss/dy too."""
    cdef Py_ssize_t i, n = (B * T if s.seq_out else B) * s.U
    cdef floating d, nf = <floating>n
    cdef double acc = 0
    cdef int last = s.n_nodes - 1
    cdef const floating* yp = _output(s, tag, last, B, T)
    cdef const floating* yt = _target(s, tag)
    cdef floating* dy = _buf(s, tag, s.nodes[last].o_dout)
    if s.loss == LOSS_MSE:
        for i in range(n):
            d = yp[i] - yt[i]
            acc += d * d
            if grad:
                dy[i] = (2 * d) / nf
    else:
        for i in range(n):
            d = yp[i] - yt[i]
            acc += fabs(d)
            if grad:
                dy[i] = <floating>((d > 0) - (d < 0)) / nf
    return acc / n


# The arena starts with the input gather buffer (capB*capT*D), then the targets.
cdef inline floating* _target(State* s, floating* tag) noexcept nogil:
    return _buf(s, tag, s.capB * s.capT * s.D)
