# The engine's losses (included by _engine.pyx: it shares its State and imports).

cdef double _output_loss(int code, const floating* yp, const floating* yt, floating* dy,
                         Py_ssize_t n, double scale, bint acc) noexcept nogil:
    """The loss of one output (mean over its n elements); with ``dy`` non-NULL
    also dy = scale * dLoss/dy (added to dy with ``acc``)."""
    cdef Py_ssize_t i
    cdef floating d, g, c = <floating>(scale / n)
    cdef double total = 0
    if code == LOSS_MSE:
        for i in range(n):
            d = yp[i] - yt[i]
            total += d * d
            if dy != NULL:
                g = (2 * d) * c
                dy[i] = dy[i] + g if acc else g
    else:
        for i in range(n):
            d = yp[i] - yt[i]
            total += fabs(d)
            if dy != NULL:
                g = <floating>((d > 0) - (d < 0)) * c
                dy[i] = dy[i] + g if acc else g
    return total / n


cdef double _loss(State* s, floating* tag, bint grad) noexcept nogil:
    """The batch loss: sum over the outputs of loss_weight * loss (Keras's total);
    with ``grad`` each output's d(total)/dy into its output gradient.  Each
    output's own loss goes to s.out_loss."""
    cdef int o, node
    cdef double total = 0, value
    cdef floating* dy
    for o in range(s.n_outputs):
        node = s.out_node[o]
        dy = _buf(s, tag, s.nodes[node].o_dout) if (grad and s.nodes[node].backprop) else NULL
        value = _output_loss(s.loss_code[o], _output(s, tag, node),
                             _buf(s, tag, s.o_target[o]), dy,
                             _rows(s, node) * s.nodes[node].width, s.loss_weight[o],
                             s.out_acc[o])
        s.out_loss[o] = value
        total += s.loss_weight[o] * value
    return total
