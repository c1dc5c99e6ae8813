# The engine's node kinds: forward and backward of every node of the graph,
# gather (user arrays -> time-major work rows) and scatter (included by
# _engine.pyx: it shares its State and imports).
#
# Every node has one output tensor, (steps*B, width) time-major in the arena
# (row t*B + b is sample b at step t; steps is 1 without a time axis).  A
# node reads the outputs of the nodes in its slice of the input table; its
# backward turns d(output) into d(input) for every input that needs one,
# overwriting the input's output-gradient buffer when it is the first writer
# in backward order and adding to it otherwise (in_acc).

cdef inline floating* _buf(State* s, floating* tag, Py_ssize_t off) noexcept nogil:
    return (<floating*>s.arena) + off


cdef inline int _in_node(State* s, int i, int slot) noexcept nogil:
    return s.in_node[s.nodes[i].first_in + slot]


cdef floating* _output(State* s, floating* tag, int i) noexcept nogil:
    """Where node i's output lives for the current batch."""
    cdef Node* n = &s.nodes[i]
    if n.kind == KIND_RNN:
        if not n.seq:
            # the last processed state: position T-1, or 0 with go_backwards
            return _buf(s, tag, n.o_hs) + (0 if n.backwards else
                                           (s.nodes[_in_node(s, i, 0)].steps - 1)
                                           * s.B * n.width)
        if not n.flipped and not n.zeroed:
            return _buf(s, tag, n.o_hs)
    return _buf(s, tag, n.o_out)


cdef inline floating* _in(State* s, floating* tag, int i, int slot) noexcept nogil:
    return _output(s, tag, _in_node(s, i, slot))


cdef inline floating* _dx(State* s, floating* tag, int i, int slot, bint* acc) noexcept nogil:
    """Where node i writes dLoss/d(its input ``slot``): the input's output
    gradient (``acc`` set when it must add), or NULL when none is needed."""
    cdef Py_ssize_t e = s.nodes[i].first_in + slot
    if not s.in_need[e]:
        return NULL
    acc[0] = s.in_acc[e]
    return _buf(s, tag, s.nodes[s.in_node[e]].o_dout)


cdef inline Py_ssize_t _rows(State* s, int i) noexcept nogil:
    return s.nodes[i].steps * s.B


cdef void _reverse_steps(const floating* a, floating* out, Py_ssize_t T,
                         Py_ssize_t block) noexcept nogil:
    """out[t] = a[T-1-t] for T time-major blocks of ``block`` elements."""
    cdef Py_ssize_t t
    for t in range(T):
        memcpy(out + t * block, a + (T - 1 - t) * block, block * sizeof(floating))


cdef void _set_steps(State* s, Py_ssize_t B, const Py_ssize_t* T) noexcept nogil:
    """The batch size and every node's time steps for inputs of T[k] steps."""
    cdef int i, j
    cdef Node* n
    cdef Py_ssize_t total
    s.B = B
    for i in range(s.n_nodes):
        n = &s.nodes[i]
        if n.kind == KIND_INPUT:
            n.steps = T[n.arg] if n.seq else 1
        elif n.fixed_steps > 0:
            n.steps = n.fixed_steps
        elif n.kind == KIND_CONCAT_TIME:
            total = 0
            for j in range(n.n_in):
                total += s.nodes[_in_node(s, i, j)].steps
            n.steps = total
        elif ((n.kind == KIND_RNN and not n.seq) or n.kind == KIND_LAST_STEP
              or n.kind == KIND_POOL_TIME):
            n.steps = 1
        else:
            n.steps = s.nodes[_in_node(s, i, 0)].steps


cdef inline bint _rnn_dropout(Node* n) noexcept nogil:
    return n.real > 0 or n.real2 > 0


cdef void _rnn_masks(State* s, floating* tag, Node* n, Py_ssize_t T, floating** in_mask,
                     floating** rec_mask, floating** xd, floating** hd) noexcept nogil:
    """Where a recurrent node's dropout masks and work live in its work buffer
    (NULL for a rate of 0): in_mask (B, D), rec_mask (B, H), x * in_mask
    (B*T, D), h * rec_mask (B*T, H)."""
    cdef Py_ssize_t B = s.B
    cdef floating* w = _buf(s, tag, n.o_work)
    in_mask[0] = w if n.real > 0 else NULL
    rec_mask[0] = w + B * n.din if n.real2 > 0 else NULL
    xd[0] = w + B * (n.din + n.width) if n.real > 0 else NULL
    hd[0] = w + B * (n.din + n.width) + B * T * n.din if n.real2 > 0 else NULL


cdef inline unsigned char* _mask(State* s, floating* tag, int i) noexcept nogil:
    """The step mask of node i's output (B*T bytes, time-major rows; nonzero:
    the step is kept), or NULL when it has none."""
    cdef int m = s.nodes[i].mask_of
    return <unsigned char*>_buf(s, tag, s.nodes[m].o_mask) if m >= 0 else NULL


cdef inline unsigned char* _step_mask(State* s, floating* tag, int i) noexcept nogil:
    """A recurrent node's step mask: its input's mask, or NULL."""
    return _mask(s, tag, _in_node(s, i, 0)) if s.nodes[i].masked else NULL


cdef void _fill_mask(State* s, floating* tag, int i) noexcept nogil:
    """Node i's own step mask (after its forward), by its MASK_* rule."""
    cdef Node* n = &s.nodes[i]
    cdef unsigned char* m = <unsigned char*>_buf(s, tag, n.o_mask)
    cdef unsigned char* a
    cdef const floating* v
    cdef Py_ssize_t r, rows = _rows(s, i), off
    cdef int j
    if n.mask_op == MASK_KEEP or n.mask_op == MASK_INDEX:
        # Masking's keep values, or an embedding's indices (truncated as the lookup does)
        v = _buf(s, tag, n.o_work) if n.mask_op == MASK_KEEP else _in(s, tag, i, 0)
        for r in range(rows):
            m[r] = 1 if <long long>v[r] != 0 else 0
    elif n.mask_op == MASK_OR:
        memset(m, 0, rows)
        for j in range(n.n_in):
            a = _mask(s, tag, _in_node(s, i, j))
            for r in range(rows):
                m[r] |= a[r]
    elif n.mask_op == MASK_CONCAT_TIME:
        off = 0
        for j in range(n.n_in):
            a = _mask(s, tag, _in_node(s, i, j))
            rows = _rows(s, _in_node(s, i, j))
            if a != NULL:
                memcpy(m + off, a, rows)
            else:
                memset(m + off, 1, rows)
            off += rows


cdef inline floating* _h0(State* s, floating* tag, int i) noexcept nogil:
    """A recurrent node's initial state (its second input, (B, H)), or a stateful
    node's state at the start of the batch, or NULL for zeros."""
    if s.nodes[i].n_in > 1:
        return _in(s, tag, i, 1)
    if s.nodes[i].stateful:
        return _buf(s, tag, s.nodes[i].o_h0)
    return NULL


cdef inline floating* _last_state(State* s, floating* tag, int i) noexcept nogil:
    """A recurrent node's state after the last processed step (B, H): position
    T-1 of its states, or 0 with go_backwards (masked steps carry the state)."""
    cdef Node* n = &s.nodes[i]
    return _buf(s, tag, n.o_hs) + (0 if n.backwards else
                                   (s.nodes[_in_node(s, i, 0)].steps - 1) * s.B * n.width)


cdef void _restore_states(State* s, floating* tag) noexcept nogil:
    """Every stateful node's state back to what the current batch started from."""
    cdef int i
    cdef Node* n
    if s.n_stateful == 0:
        return
    for i in range(s.n_nodes):
        n = &s.nodes[i]
        if n.stateful:
            memcpy(n.state, _buf(s, tag, n.o_h0), s.B * n.width * sizeof(floating))


cdef void _forward(State* s, floating* tag, bint training) noexcept nogil:
    cdef int i, j
    cdef Node* n
    cdef floating* P = <floating*>s.params
    cdef floating* x
    cdef floating* out
    cdef Py_ssize_t B = s.B, rows, size, off, T, w
    cdef floating* in_mask
    cdef floating* rec_mask
    cdef floating* xd
    cdef floating* hd
    for i in range(s.n_nodes):
        n = &s.nodes[i]
        if n.kind == KIND_INPUT:
            continue                # gathered
        x = _in(s, tag, i, 0)
        out = _buf(s, tag, n.o_out)
        rows = n.steps * B
        size = rows * n.width
        if n.kind == KIND_RNN:
            T = s.nodes[_in_node(s, i, 0)].steps
            if n.stateful:          # start from the kept state (a copy: it is overwritten)
                memcpy(_buf(s, tag, n.o_h0), n.state, B * n.width * sizeof(floating))
            if (training and _rnn_dropout(n)) or n.masked:
                in_mask = rec_mask = xd = hd = NULL
                # Keras's masks: one per sequence for this batch, reused at every step
                if training and _rnn_dropout(n):
                    _rnn_masks(s, tag, n, T, &in_mask, &rec_mask, &xd, &hd)
                if in_mask != NULL:
                    dropout_mask_k(in_mask, B, 1, n.din, <unsigned long long>n.arg, n.rng,
                                   n.real)
                    n.rng += <unsigned long long>(B * n.din)
                if rec_mask != NULL:
                    dropout_mask_k(rec_mask, B, 1, n.width, <unsigned long long>n.arg, n.rng,
                                   n.real2)
                    n.rng += <unsigned long long>(B * n.width)
                rnn_forward_masked_k(x, P + n.p0, P + n.p1, P + n.p2 if n.p2 >= 0 else NULL,
                                     _h0(s, tag, i), _buf(s, tag, n.o_hs), _buf(s, tag, n.o_wht),
                                     _step_mask(s, tag, i),
                                     in_mask, rec_mask, xd, hd, B, T, n.din, n.width, n.act,
                                     True, n.backwards)
            else:
                rnn_forward_k(x, P + n.p0, P + n.p1, P + n.p2 if n.p2 >= 0 else NULL,
                              _h0(s, tag, i), _buf(s, tag, n.o_hs), _buf(s, tag, n.o_wht),
                              B, T, n.din, n.width, n.act, True, n.backwards)
            if n.flipped:     # Keras: the sequence in processing order
                _reverse_steps(_buf(s, tag, n.o_hs), out, T, B * n.width)
            elif n.zeroed:
                memcpy(out, _buf(s, tag, n.o_hs), T * B * n.width * sizeof(floating))
            if n.zeroed:      # zero_output_for_mask: 0 at the masked steps
                _zero_masked_rows(out, _step_mask(s, tag, i), T, B, n.width, n.flipped)
            if n.stateful:          # the next batch starts here
                memcpy(n.state, _last_state(s, tag, i), B * n.width * sizeof(floating))
        elif n.kind == KIND_DENSE:
            dense_forward_k(x, P + n.p0, P + n.p2 if n.p2 >= 0 else NULL, out, rows,
                            n.din, n.width, n.act)
        elif n.kind == KIND_ACTIVATION:
            memcpy(out, x, size * sizeof(floating))
            activate_rows(n.act, out, rows, n.width, n.width)
        elif n.kind == KIND_DROPOUT:
            if training and n.real > 0:
                dropout_mask_k(_buf(s, tag, n.o_work), B, n.steps, n.width,
                               <unsigned long long>n.arg, n.rng, n.real)
                n.rng += <unsigned long long>size
                multiply_into(out, x, _buf(s, tag, n.o_work), size, False)
            else:
                memcpy(out, x, size * sizeof(floating))
        elif n.kind == KIND_RELAYOUT:
            relayout_k(x, s.nodes[_in_node(s, i, 0)].steps, n.din, out, n.steps, n.width,
                       B, False)
        elif n.kind == KIND_REPEAT:
            repeat_forward_k(x, out, B * n.width, n.steps)
        elif n.kind == KIND_POOL_TIME:
            _pool_forward(x, out, s.nodes[_in_node(s, i, 0)].steps, B * n.width, n.arg,
                          _mask(s, tag, _in_node(s, i, 0)) if n.arg else NULL, n.width)
        elif n.kind == KIND_SCALE:         # y = a x + b
            scale_into(out, x, size, <floating>n.real, False)
            if n.real2 != 0:
                for off in range(size):
                    out[off] += <floating>n.real2
        elif n.kind == KIND_CONCAT:
            off = 0
            for j in range(n.n_in):
                w = s.nodes[_in_node(s, i, j)].width
                copy_columns(_in(s, tag, i, j), w, out + off, n.width, rows, w, False)
                off += w
        elif n.kind == KIND_CONCAT_TIME:
            off = 0
            for j in range(n.n_in):
                w = _rows(s, _in_node(s, i, j)) * n.width
                memcpy(out + off, _in(s, tag, i, j), w * sizeof(floating))
                off += w
        elif n.kind == KIND_ADD or n.kind == KIND_AVERAGE:
            copy_or_add(out, x, size, False)
            for j in range(1, n.n_in):
                copy_or_add(out, _in(s, tag, i, j), size, True)
            if n.kind == KIND_AVERAGE:
                scale_into(out, out, size, <floating>(1.0 / n.n_in), False)
        elif n.kind == KIND_SUBTRACT:
            copy_or_add(out, x, size, False)
            scale_into(out, _in(s, tag, i, 1), size, <floating>-1, True)
        elif n.kind == KIND_MULTIPLY:
            if n.n_in == 1:
                copy_or_add(out, x, size, False)
            else:
                multiply_into(out, x, _in(s, tag, i, 1), size, False)
                for j in range(2, n.n_in):
                    multiply_into(out, out, _in(s, tag, i, j), size, False)
        elif n.kind == KIND_EMBEDDING:
            embedding_forward_k(x, P + n.p0, out, rows, <Py_ssize_t>n.arg, n.width)
        elif n.kind == KIND_LAST_STEP:
            T = s.nodes[_in_node(s, i, 0)].steps
            memcpy(out, x + (T - 1) * B * n.width, B * n.width * sizeof(floating))
        elif n.kind == KIND_MASKING:
            _masking_forward(x, out, _buf(s, tag, n.o_work), rows, n.width, n.real)
        if n.mask_op != MASK_NONE:
            _fill_mask(s, tag, i)


cdef double _kept_steps(const unsigned char* keep, Py_ssize_t T, Py_ssize_t B,
                        Py_ssize_t b) noexcept nogil:
    """How many of sample b's T steps the step mask keeps."""
    cdef Py_ssize_t t
    cdef double count = 0
    for t in range(T):
        if keep[t * B + b]:
            count += 1
    return count


cdef void _pool_forward(const floating* x, floating* out, Py_ssize_t T, Py_ssize_t block,
                        int64_t mean, const unsigned char* keep, Py_ssize_t width) noexcept nogil:
    """GlobalMaxPooling1D / GlobalAveragePooling1D: out[j] = max_t (or mean_t) of
    x[t*block + j], over T time-major blocks of ``block`` = B*F values.  With a step
    mask ``keep`` (B*T bytes, time-major) the mean is over the kept steps only
    (Keras's); the max ignores masks, as Keras's."""
    cdef Py_ssize_t t, j, B = block // width
    cdef floating v
    if mean and keep != NULL:
        memset(out, 0, block * sizeof(floating))
        for t in range(T):
            for j in range(block):
                if keep[t * B + j // width]:
                    out[j] += x[t * block + j]
        for j in range(block):
            out[j] /= <floating>_kept_steps(keep, T, B, j // width)
        return
    memcpy(out, x, block * sizeof(floating))
    for t in range(1, T):
        for j in range(block):
            v = x[t * block + j]
            if mean:
                out[j] += v
            elif v > out[j]:
                out[j] = v
    if mean:
        for j in range(block):
            out[j] /= <floating>T


cdef void _pool_backward(const floating* x, const floating* out, const floating* dout,
                         floating* dx, Py_ssize_t T, Py_ssize_t block, int64_t mean,
                         bint acc, const unsigned char* keep, Py_ssize_t width) noexcept nogil:
    """d(input) of _pool_forward: the mean spreads dout/T over the steps (dout/kept over
    the kept ones with a mask); the max gives dout to the steps equal to the maximum,
    shared equally among ties (JAX's rule)."""
    cdef Py_ssize_t t, j, B = block // width
    cdef floating share, count, v
    if mean and keep != NULL:
        for j in range(block):
            share = dout[j] / <floating>_kept_steps(keep, T, B, j // width)
            for t in range(T):
                v = share if keep[t * B + j // width] else 0
                if acc:
                    dx[t * block + j] += v
                else:
                    dx[t * block + j] = v
        return
    for j in range(block):
        if mean:
            share = dout[j] / <floating>T
        else:
            count = 0
            for t in range(T):
                if x[t * block + j] == out[j]:
                    count += 1
            share = dout[j] / count
        for t in range(T):
            if mean or x[t * block + j] == out[j]:
                if acc:
                    dx[t * block + j] += share
                else:
                    dx[t * block + j] = share
            elif not acc:
                dx[t * block + j] = 0


cdef void _masking_forward(const floating* x, floating* out, floating* keep, Py_ssize_t rows,
                           Py_ssize_t width, double value) noexcept nogil:
    """Keras's Masking: a row (one step of one sample) is kept when any feature
    differs from ``value``; out = x * keep (masked steps are zeros)."""
    cdef Py_ssize_t r, f
    cdef bint k
    for r in range(rows):
        k = False
        for f in range(width):
            if x[r * width + f] != value:
                k = True
                break
        keep[r] = 1 if k else 0
        for f in range(width):
            out[r * width + f] = x[r * width + f] if k else 0


cdef void _zero_masked_rows(floating* a, const unsigned char* mask, Py_ssize_t T,
                           Py_ssize_t B, Py_ssize_t width, bint flipped) noexcept nogil:
    """Zero the (t*B + b) rows of ``a`` whose step is masked; ``flipped``: ``a``
    is in processing order of a backwards recurrence (row t is input step T-1-t)."""
    cdef Py_ssize_t t, b
    for t in range(T):
        for b in range(B):
            if not mask[(T - 1 - t if flipped else t) * B + b]:
                memset(a + (t * B + b) * width, 0, width * sizeof(floating))


cdef void _add_scratch(State* s, floating* tag, floating* dx, Py_ssize_t n,
                       bint acc) noexcept nogil:
    # a kernel that can only overwrite wrote into the scratch buffer: add it
    if acc:
        copy_or_add(dx, _buf(s, tag, s.o_scratch), n, True)


cdef void _backward(State* s, floating* tag) noexcept nogil:
    """Gradients of every weight into grads, from d(output) of the model's outputs
    (already written by the loss)."""
    cdef int i, j, k
    cdef Node* n
    cdef floating* P = <floating*>s.params
    cdef floating* G = <floating*>s.grads
    cdef floating* dx
    cdef floating* dout
    cdef floating* target
    cdef floating* dh_seq
    cdef floating* dh_last
    cdef floating* dh0
    cdef bint acc = False, acc_h0 = False
    cdef Py_ssize_t B = s.B, rows, size, off, T, w
    cdef floating* in_mask
    cdef floating* rec_mask
    cdef floating* xd
    cdef floating* hd
    for i in range(s.n_nodes - 1, -1, -1):
        n = &s.nodes[i]
        if not n.backprop:
            continue                # no weights here or upstream (inputs included)
        rows = n.steps * B
        size = rows * n.width
        dout = _buf(s, tag, n.o_dout)
        if n.kind == KIND_RNN:
            T = s.nodes[_in_node(s, i, 0)].steps
            dx = _dx(s, tag, i, 0, &acc)
            target = _buf(s, tag, s.o_scratch) if (dx != NULL and acc) else dx
            dh_seq = NULL
            dh_last = NULL
            dh0 = NULL
            if n.n_in > 1 and _dx(s, tag, i, 1, &acc_h0) != NULL:
                dh0 = _buf(s, tag, n.o_dh0)
            if not n.seq:
                dh_last = dout
            elif n.flipped:         # the gradient arrives in processing order
                _reverse_steps(dout, _buf(s, tag, n.o_dz), T, B * n.width)
                dh_seq = _buf(s, tag, n.o_dz)
            elif n.zeroed:
                memcpy(_buf(s, tag, n.o_dz), dout, T * B * n.width * sizeof(floating))
                dh_seq = _buf(s, tag, n.o_dz)
            else:
                dh_seq = _buf(s, tag, n.o_dz)      # o_dout is o_dz: computed in place
            if n.zeroed:            # the zeroed steps pass no gradient to the states
                _zero_masked_rows(dh_seq, _step_mask(s, tag, i), T, B, n.width, False)
            if _rnn_dropout(n) or n.masked:     # (after a training forward)
                in_mask = rec_mask = xd = hd = NULL
                if _rnn_dropout(n):
                    _rnn_masks(s, tag, n, T, &in_mask, &rec_mask, &xd, &hd)
                rnn_backward_masked_k(_in(s, tag, i, 0), _buf(s, tag, n.o_hs), P + n.p0,
                                      P + n.p1, dh_seq, dh_last, _h0(s, tag, i),
                                      _buf(s, tag, n.o_dz),
                                      _buf(s, tag, n.o_g), _buf(s, tag, n.o_wht),
                                      _step_mask(s, tag, i), in_mask, rec_mask, xd, hd, target, G + n.p0, G + n.p1,
                                      G + n.p2 if n.p2 >= 0 else NULL, dh0,
                                      B, T, n.din, n.width, n.act, True, n.backwards)
            else:
                rnn_backward_k(_in(s, tag, i, 0), _buf(s, tag, n.o_hs), P + n.p0, P + n.p1,
                               dh_seq, dh_last, _h0(s, tag, i), _buf(s, tag, n.o_dz),
                               _buf(s, tag, n.o_g), _buf(s, tag, n.o_wht), target,
                               G + n.p0, G + n.p1, G + n.p2 if n.p2 >= 0 else NULL, dh0,
                               B, T, n.din, n.width, n.act, True, n.backwards)
            if dx != NULL:
                _add_scratch(s, tag, dx, B * T * n.din, acc)
            if dh0 != NULL:         # the initial state's gradient to its input
                copy_or_add(_dx(s, tag, i, 1, &acc_h0), dh0, B * n.width, acc_h0)
        elif n.kind == KIND_DENSE:
            dx = _dx(s, tag, i, 0, &acc)
            target = _buf(s, tag, s.o_scratch) if (dx != NULL and acc) else dx
            dense_backward_k(_in(s, tag, i, 0), P + n.p0, _buf(s, tag, n.o_out), dout, target,
                             G + n.p0, G + n.p2 if n.p2 >= 0 else NULL,
                             rows, n.din, n.width, n.act)
            if dx != NULL:
                _add_scratch(s, tag, dx, rows * n.din, acc)
        elif n.kind == KIND_ACTIVATION:
            dx = _dx(s, tag, i, 0, &acc)
            if dx != NULL:          # y = act(x):  dx = dy * act'(x), from y
                activation_backward_rows(n.act, _buf(s, tag, n.o_out), dout, rows, n.width,
                                         n.width)
                copy_or_add(dx, dout, size, acc)
        elif n.kind == KIND_DROPOUT:
            dx = _dx(s, tag, i, 0, &acc)
            if dx != NULL:          # y = x * mask
                if n.real > 0:
                    multiply_into(dx, dout, _buf(s, tag, n.o_work), size, acc)
                else:
                    copy_or_add(dx, dout, size, acc)
        elif n.kind == KIND_RELAYOUT:
            dx = _dx(s, tag, i, 0, &acc)
            if dx != NULL:
                relayout_k(dout, n.steps, n.width, dx, s.nodes[_in_node(s, i, 0)].steps,
                           n.din, B, acc)
        elif n.kind == KIND_REPEAT:
            dx = _dx(s, tag, i, 0, &acc)
            if dx != NULL:
                repeat_backward_k(dout, dx, B * n.width, n.steps, acc)
        elif n.kind == KIND_CONCAT:
            off = 0
            for j in range(n.n_in):
                w = s.nodes[_in_node(s, i, j)].width
                dx = _dx(s, tag, i, j, &acc)
                if dx != NULL:
                    copy_columns(dout + off, n.width, dx, w, rows, w, acc)
                off += w
        elif n.kind == KIND_CONCAT_TIME:
            off = 0
            for j in range(n.n_in):
                w = _rows(s, _in_node(s, i, j)) * n.width
                dx = _dx(s, tag, i, j, &acc)
                if dx != NULL:
                    copy_or_add(dx, dout + off, w, acc)
                off += w
        elif n.kind == KIND_ADD or n.kind == KIND_AVERAGE or n.kind == KIND_SUBTRACT:
            for j in range(n.n_in):
                dx = _dx(s, tag, i, j, &acc)
                if dx == NULL:
                    continue
                if n.kind == KIND_ADD:
                    copy_or_add(dx, dout, size, acc)
                elif n.kind == KIND_AVERAGE:
                    scale_into(dx, dout, size, <floating>(1.0 / n.n_in), acc)
                else:
                    scale_into(dx, dout, size, <floating>(1 if j == 0 else -1), acc)
        elif n.kind == KIND_MULTIPLY:
            # y = prod_k x_k:  dx_j = dy * prod_{k != j} x_k
            for j in range(n.n_in):
                dx = _dx(s, tag, i, j, &acc)
                if dx == NULL:
                    continue
                if n.n_in == 1:
                    copy_or_add(dx, dout, size, acc)
                elif n.n_in == 2:
                    multiply_into(dx, dout, _in(s, tag, i, 1 - j), size, acc)
                else:
                    target = _buf(s, tag, n.o_work)
                    memcpy(target, dout, size * sizeof(floating))
                    for k in range(n.n_in):
                        if k != j:
                            multiply_into(target, target, _in(s, tag, i, k), size, False)
                    copy_or_add(dx, target, size, acc)
        elif n.kind == KIND_MASKING:
            dx = _dx(s, tag, i, 0, &acc)
            if dx != NULL:          # y = x * keep (per row)
                for off in range(rows):
                    scale_into(dx + off * n.width, dout + off * n.width, n.width,
                               _buf(s, tag, n.o_work)[off], acc)
        elif n.kind == KIND_SCALE:
            dx = _dx(s, tag, i, 0, &acc)
            if dx != NULL:          # y = a x + b
                scale_into(dx, dout, size, <floating>n.real, acc)
        elif n.kind == KIND_POOL_TIME:
            dx = _dx(s, tag, i, 0, &acc)
            if dx != NULL:
                _pool_backward(_in(s, tag, i, 0), _output(s, tag, i), dout, dx,
                               s.nodes[_in_node(s, i, 0)].steps, B * n.width, n.arg, acc,
                               _mask(s, tag, _in_node(s, i, 0)) if n.arg else NULL, n.width)
        elif n.kind == KIND_LAST_STEP:
            dx = _dx(s, tag, i, 0, &acc)
            if dx != NULL:          # only the last step was read
                T = s.nodes[_in_node(s, i, 0)].steps
                if not acc:
                    memset(dx, 0, (T - 1) * B * n.width * sizeof(floating))
                copy_or_add(dx + (T - 1) * B * n.width, dout, B * n.width, acc)
        elif n.kind == KIND_EMBEDDING:
            embedding_backward_k(_in(s, tag, i, 0), dout, G + n.p0, rows,
                                 <Py_ssize_t>n.arg, n.width)
            dx = _dx(s, tag, i, 0, &acc)
            if dx != NULL and not acc:      # indices are not differentiable
                memset(dx, 0, rows * sizeof(floating))


cdef void _gather(State* s, floating* tag, floating** X, const int64_t* order,
                  Py_ssize_t start) noexcept nogil:
    """Rows order[start:start+B] (or start:start+B) of every input, batch-major
    (N, T, width) -> time-major (_set_steps first; targets: _gather_targets)."""
    cdef Py_ssize_t i, t, r, k, W, T, B = s.B
    cdef floating* dst
    cdef const floating* src
    cdef Node* n
    for k in range(s.n_inputs):
        n = &s.nodes[s.input_node[k]]
        dst = _buf(s, tag, n.o_out)
        src = X[k]
        W = n.width
        T = n.steps
        for i in range(B):
            r = order[start + i] if order != NULL else start + i
            if T == 1:
                _copy(dst + i * W, src + r * W, W)
            else:
                for t in range(T):
                    _copy(dst + (t * B + i) * W, src + (r * T + t) * W, W)


cdef inline void _copy(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    """dst[:n] = src[:n]: a loop for the few features of a step, memcpy beyond."""
    cdef Py_ssize_t j
    if n > 64:
        memcpy(dst, src, n * sizeof(floating))
    else:
        for j in range(n):
            dst[j] = src[j]


cdef void _scatter(State* s, floating* tag, Py_ssize_t start, floating** out) noexcept nogil:
    """out[o][start:start+B] = output o (batch-major) for every model output."""
    cdef Py_ssize_t i, t, W, T, B = s.B
    cdef int o
    cdef const floating* y
    cdef floating* dst
    for o in range(s.n_outputs):
        y = _output(s, tag, s.out_node[o])
        W = s.nodes[s.out_node[o]].width
        T = s.nodes[s.out_node[o]].steps
        dst = out[o]
        if T == 1:
            memcpy(dst + start * W, y, B * W * sizeof(floating))
        else:
            for i in range(B):
                for t in range(T):
                    memcpy(dst + ((start + i) * T + t) * W, y + (t * B + i) * W,
                           W * sizeof(floating))
