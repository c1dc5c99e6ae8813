# The engine's node kinds: forward and backward of every node, gather and scatter (included by _engine.pyx: it shares its State and imports).

# ---------------------------------------------------------------- forward / backward

cdef inline floating* _buf(State* s, floating* tag, Py_ssize_t off) noexcept nogil:
    return (<floating*>s.arena) + off


cdef floating* _output(State* s, floating* tag, int i, Py_ssize_t B, Py_ssize_t T) noexcept nogil:
    """Where node i's output lives for a batch of B samples of T steps."""
    cdef Node* n = &s.nodes[i]
    if n.kind == KIND_RNN and not n.seq_out:
        # the last processed state: position T-1, or 0 with go_backwards
        return _buf(s, tag, n.o_hs) + (0 if n.backwards else (T - 1) * B * n.units)
    if n.kind == KIND_RNN and not n.backwards:
        return _buf(s, tag, n.o_hs)
    return _buf(s, tag, n.o_out)


cdef floating* _input(State* s, floating* tag, int i, Py_ssize_t B, Py_ssize_t T) noexcept nogil:
    cdef int src = s.nodes[i].inp
    return _buf(s, tag, 0) if src < 0 else _output(s, tag, src, B, T)


cdef void _reverse_steps(const floating* a, floating* out, Py_ssize_t T,
                         Py_ssize_t block) noexcept nogil:
    """out[t] = a[T-1-t] for T time-major blocks of ``block`` elements."""
    cdef Py_ssize_t t
    for t in range(T):
        memcpy(out + t * block, a + (T - 1 - t) * block, block * sizeof(floating))


cdef void _forward(State* s, floating* tag, Py_ssize_t B, Py_ssize_t T) noexcept nogil:
    cdef int i
    cdef Node* n
    cdef floating* P = <floating*>s.params
    cdef floating* x
    cdef Py_ssize_t rows
    for i in range(s.n_nodes):
        n = &s.nodes[i]
        x = _input(s, tag, i, B, T)
        if n.kind == KIND_RNN:
            rnn_forward_k(x, P + n.p_kernel, P + n.p_rec,
                          P + n.p_bias if n.p_bias >= 0 else NULL, NULL,
                          _buf(s, tag, n.o_hs), _buf(s, tag, n.o_wht),
                          B, T, n.din, n.units, n.act, True, n.backwards)
            if n.seq_out and n.backwards:     # Keras: the sequence in processing order
                _reverse_steps(_buf(s, tag, n.o_hs), _buf(s, tag, n.o_out), T, B * n.units)
        else:
            rows = B * T if n.seq_in else B
            dense_forward_k(x, P + n.p_kernel, P + n.p_bias if n.p_bias >= 0 else NULL,
                            _buf(s, tag, n.o_out), rows, n.din, n.units, n.act)


cdef void _backward(State* s, floating* tag, Py_ssize_t B, Py_ssize_t T) noexcept nogil:
    """Gradients of every weight into grads, from d(output) of the last node."""
    cdef int i
    cdef Node* n
    cdef floating* P = <floating*>s.params
    cdef floating* G = <floating*>s.grads
    cdef floating* dx
    cdef floating* dh_seq
    cdef floating* dh_last
    cdef Py_ssize_t rows
    for i in range(s.n_nodes - 1, -1, -1):
        n = &s.nodes[i]
        # dLoss/d(input) goes to the feeding node's output gradient (none for the model input)
        dx = NULL if n.inp < 0 else _buf(s, tag, s.nodes[n.inp].o_dout)
        if n.kind == KIND_RNN:
            dh_seq = NULL
            dh_last = NULL
            if not n.seq_out:
                dh_last = _buf(s, tag, n.o_dout)
            elif n.backwards:       # the gradient arrives in processing order
                _reverse_steps(_buf(s, tag, n.o_dout), _buf(s, tag, n.o_dz), T, B * n.units)
                dh_seq = _buf(s, tag, n.o_dz)
            else:
                dh_seq = _buf(s, tag, n.o_dz)      # o_dout is o_dz: computed in place
            rnn_backward_k(_input(s, tag, i, B, T), _buf(s, tag, n.o_hs), P + n.p_kernel,
                           P + n.p_rec, dh_seq, dh_last, NULL, _buf(s, tag, n.o_dz),
                           _buf(s, tag, n.o_g), _buf(s, tag, n.o_wht), dx,
                           G + n.p_kernel, G + n.p_rec,
                           G + n.p_bias if n.p_bias >= 0 else NULL, NULL,
                           B, T, n.din, n.units, n.act, True, n.backwards)
        else:
            rows = B * T if n.seq_in else B
            dense_backward_k(_input(s, tag, i, B, T), P + n.p_kernel, _buf(s, tag, n.o_out),
                             _buf(s, tag, n.o_dout), dx, G + n.p_kernel,
                             G + n.p_bias if n.p_bias >= 0 else NULL,
                             rows, n.din, n.units, n.act)


cdef void _gather(State* s, floating* tag, const floating* X, const floating* Y,
                  const int64_t* order, Py_ssize_t start, Py_ssize_t B,
                  Py_ssize_t T) noexcept nogil:
    """Input rows (and targets, Y non-NULL) of samples order[start:start+B], time-major."""
    cdef Py_ssize_t i, t, r
    cdef Py_ssize_t D = s.D, U = s.U
    cdef floating* xs = _buf(s, tag, 0)
    cdef floating* yt = _target(s, tag)
    for i in range(B):
        r = order[start + i] if order != NULL else start + i
        for t in range(T):
            memcpy(xs + (t * B + i) * D, X + (r * T + t) * D, D * sizeof(floating))
        if Y != NULL:
            if s.seq_out:
                for t in range(T):
                    memcpy(yt + (t * B + i) * U, Y + (r * T + t) * U, U * sizeof(floating))
            else:
                memcpy(yt + i * U, Y + r * U, U * sizeof(floating))


cdef void _scatter(State* s, floating* tag, Py_ssize_t start, Py_ssize_t B, Py_ssize_t T,
                   floating* out) noexcept nogil:
    """out[start:start+B] = the last node's output (batch-major)."""
    cdef Py_ssize_t i, t, U = s.U
    cdef const floating* y = _output(s, tag, s.n_nodes - 1, B, T)
    if s.seq_out:
        for i in range(B):
            for t in range(T):
                memcpy(out + ((start + i) * T + t) * U, y + (t * B + i) * U, U * sizeof(floating))
    else:
        memcpy(out + start * U, y, B * U * sizeof(floating))
