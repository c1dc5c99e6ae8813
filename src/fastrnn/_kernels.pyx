# cython: language_level=3
"""Compiled kernels of fastrnn.

Two levels in this file: ``def`` entry points that the checked API in
``fastrnn.ops`` calls with arrays it has already validated (dtype, shape,
contiguity, sizes that fit BLAS's ``int``) and allocated, and
``cdef ... noexcept nogil`` loops over raw memory.  Nothing here re-checks its
arguments: call it through ``fastrnn.ops``.

All arrays are C-contiguous and row-major; every ``def`` releases the GIL for
all of its compiled work.  Activation codes: 0 = tanh, 1 = relu.
"""
from libc.math cimport sqrt
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport dgemm, sgemm

cdef extern from "fastmath.h" nogil:
    float fr_tanhf(float x)
    double fr_tanh(double x)
    void fr_tanhf_inplace(float* a, Py_ssize_t n)
    void fr_tanh_inplace(double* a, Py_ssize_t n)

ctypedef fused floating:
    float
    double

cdef enum:
    TANH = 0
    RELU = 1

#: rnn_forward's step products use a transposed copy of W_h from this many
#: units on (the caller passes the work array; see _rnn_forward).
TRANSPOSED_STEP_MIN_UNITS = 256


# ---------------------------------------------------------------- helpers

cdef void _gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
                const floating* a, int lda, const floating* b, int ldb,
                floating beta, floating* c, int ldc) noexcept nogil:
    """Row-major ``C = alpha op(A) op(B) + beta C``; C is m x n, op(A) m x k.

    ``beta`` must be 0 or 1.  BLAS is column-major and sees every row-major
    matrix transposed, so it is asked for ``C^T = op(B)^T op(A)^T``: B goes
    first, A second, each with its own transpose flag.
    """
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef int i
    if m <= 0 or n <= 0:
        return
    if k <= 0:  # empty sum: BLAS would reject lda = 0
        if beta == 0:
            for i in range(m):
                memset(c + <Py_ssize_t>i * ldc, 0, n * sizeof(floating))
        return
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>b, &ldb, <float*>a, &lda,
              &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>b, &ldb, <double*>a, &lda,
              &beta, c, &ldc)


cdef inline void _activate(floating* z, Py_ssize_t n, int activation) noexcept nogil:
    """z = act(z) in place over n contiguous elements."""
    cdef Py_ssize_t i
    if activation == TANH:
        if floating is float:
            fr_tanhf_inplace(z, n)
        else:
            fr_tanh_inplace(z, n)
    else:
        for i in range(n):
            z[i] = 0 if z[i] < 0 else z[i]  # NaN stays NaN, as np.maximum


cdef inline void _dz_step(floating* dz, const floating* dh, const floating* h,
                          Py_ssize_t n, bint has_carry, int activation) noexcept nogil:
    """dz = (dh + carry) * act'(h), where dz holds the carry on entry if has_carry.

    act' is written in h = act(z): tanh' = 1 - h^2, relu' = [h > 0].
    """
    cdef Py_ssize_t i
    cdef floating g
    if activation == TANH:
        for i in range(n):
            g = dh[i] + dz[i] if has_carry else dh[i]
            dz[i] = g * (1 - h[i] * h[i])
    else:
        for i in range(n):
            g = dh[i] + dz[i] if has_carry else dh[i]
            dz[i] = g if h[i] > 0 else 0


cdef void _column_sums(const floating* a, Py_ssize_t rows, Py_ssize_t cols,
                       floating* out) noexcept nogil:
    """out[j] = sum_r a[r, j] (out is overwritten)."""
    cdef Py_ssize_t r, j
    cdef const floating* row
    memset(out, 0, cols * sizeof(floating))
    for r in range(rows):
        row = a + r * cols
        for j in range(cols):
            out[j] += row[j]


# ---------------------------------------------------------------- recurrence

cdef void _transpose(const floating* a, Py_ssize_t n, floating* out) noexcept nogil:
    """out = a^T for a square n x n matrix, in 32 x 32 tiles (both stay in cache)."""
    cdef Py_ssize_t i0, j0, i, j, i1, j1
    for i0 in range(0, n, 32):
        i1 = i0 + 32 if i0 + 32 < n else n
        for j0 in range(0, n, 32):
            j1 = j0 + 32 if j0 + 32 < n else n
            for i in range(i0, i1):
                for j in range(j0, j1):
                    out[j * n + i] = a[i * n + j]


cdef void _rnn_forward(const floating* x, const floating* w, const floating* wh,
                       const floating* bias, const floating* h0, floating* h,
                       floating* wh_t, int B, int T, int D, int H,
                       int activation) noexcept nogil:
    cdef Py_ssize_t r, b, t
    cdef int TH = T * H
    cdef floating one = 1
    # z = x W_x + b for all B*T rows at once, written into h
    for r in range(<Py_ssize_t>B * T):
        memcpy(h + r * H, bias, H * sizeof(floating))
    _gemm(False, False, B * T, H, D, one, x, D, w, H, one, h, H)
    # Given wh_t (H x H work space), the step products take W_h as (W_h^T)^T:
    # BLAS then reads both operands along the summed dimension ("TN" in its
    # column-major terms), which OpenBLAS runs 5-15 % faster than "NN" for a
    # few dozen rows and H >= 256 (and slower at H = 128): see
    # TRANSPOSED_STEP_MIN_UNITS.  Same products; the sums may round differently.
    cdef bint trans = wh_t != NULL
    cdef const floating* wh_op = wh
    if trans:
        _transpose(wh, H, wh_t)
        wh_op = wh_t
    for t in range(T):
        # z_t += h_{t-1} W_h; the slices h[:, t] are B rows, T*H apart
        if t > 0:
            _gemm(False, trans, B, H, H, one, h + (t - 1) * H, TH, wh_op, H, one, h + t * H, TH)
        elif h0 != NULL:
            _gemm(False, trans, B, H, H, one, h0, H, wh_op, H, one, h, TH)
        # h_t = act(z_t), in place
        for b in range(B):
            _activate(h + b * TH + t * H, H, activation)


cdef void _rnn_backward(const floating* x, const floating* h, const floating* w,
                        const floating* wh, const floating* dh, const floating* h0,
                        floating* dz, floating* dx, floating* dw,
                        floating* dwh, floating* db, floating* dh0,
                        int B, int T, int D, int H, int activation) noexcept nogil:
    cdef Py_ssize_t b, t
    cdef int TH = T * H
    cdef floating one = 1, zero = 0
    # Walk time backwards.  h_t feeds the loss directly (dh_t) and through
    # z_{t+1} = ... + h_t W_h, so with carry_t = dz_{t+1} W_h^T:
    #     dz_t = (dh_t + carry_t) * act'(z_t)       (inverts h_t = act(z_t))
    for t in range(T - 1, -1, -1):
        if t < T - 1:
            # carry_t = dz_{t+1} W_h^T  (inverts z_{t+1} += h_t W_h), into dz_t
            _gemm(False, True, B, H, H, one, dz + (t + 1) * H, TH, wh, H, zero, dz + t * H, TH)
        for b in range(B):
            _dz_step(dz + b * TH + t * H, dh + b * TH + t * H, h + b * TH + t * H,
                     H, t < T - 1, activation)
    # dh0 = dz_0 W_h^T  (z_0 += h0 W_h)
    _gemm(False, True, B, H, H, one, dz, TH, wh, H, zero, dh0, H)
    # z = x W_x + b over all B*T rows:  dW_x = x^T dz,  db = sum dz,  dx = dz W_x^T
    _gemm(True, False, D, H, B * T, one, x, D, dz, H, zero, dw, H)
    _column_sums(dz, <Py_ssize_t>B * T, H, db)
    if dx != NULL:                    # dx = NULL: not wanted (e.g. a first layer)
        _gemm(False, True, B * T, D, H, one, dz, H, w, H, zero, dx, D)
    # z_t += h_{t-1} W_h:  dW_h = sum_t h_{t-1}^T dz_t
    #     = h0^T dz_0  +  sum over rows r of h[r]^T dz[r + 1],
    # pairing every row of h with the next row of dz (one GEMM over B*T - 1
    # rows, no shifted copy of h), where the pairs that cross from one
    # sequence to the next, h[b, T-1] with dz[b+1, 0], must not count.  dz is
    # not needed any more, so those dz rows are set to zero: the pairs then add
    # exact zeros (no subtraction, which would cancel catastrophically once
    # gradients grow along the sequence) -- unless h[b, T-1] is inf or NaN,
    # where 0 * h is NaN; then one GEMM per sequence pairs the rows instead.
    cdef floating beta = zero
    if h0 != NULL:
        _gemm(True, False, H, H, B, one, h0, H, dz, TH, zero, dwh, H)
        beta = one
    if _rows_finite(h + TH - H, B - 1, TH, H):
        for b in range(1, B):
            memset(dz + b * TH, 0, H * sizeof(floating))
        _gemm(True, False, H, H, B * T - 1, one, h, H, dz + H, H, beta, dwh, H)
    else:
        for b in range(B):
            _gemm(True, False, H, H, T - 1, one, h + b * TH, H, dz + b * TH + H, H,
                  beta, dwh, H)
            beta = one


cdef bint _rows_finite(const floating* a, Py_ssize_t rows, Py_ssize_t stride,
                       Py_ssize_t cols) noexcept nogil:
    """All of a[r * stride + j] (r < rows, j < cols) finite (not inf or NaN)."""
    cdef Py_ssize_t r, j
    cdef floating acc = 0
    for r in range(rows):
        for j in range(cols):
            acc += a[r * stride + j] * 0   # NaN once any element is inf or NaN
    return acc == 0


def rnn_forward(const floating[:, :, ::1] x, const floating[:, ::1] kernel,
                const floating[:, ::1] recurrent_kernel, const floating[::1] bias,
                h0, floating[:, :, ::1] h, recurrent_kernel_t, int activation):
    """Fill ``h`` (B, T, H) with the forward recurrence; ``h0`` (B, H) or None.

    ``recurrent_kernel_t``: None, or an (H, H) work array of the dtype of
    ``h`` (it receives W_h^T and the steps use it; worth it for
    H >= TRANSPOSED_STEP_MIN_UNITS).
    All shapes are checked by the caller; B, T >= 1.
    """
    cdef int B = x.shape[0], T = x.shape[1], D = x.shape[2], H = h.shape[2]
    cdef const floating[:, ::1] h0v
    cdef const floating* h0p = NULL
    cdef floating[:, ::1] whtv
    cdef floating* whtp = NULL
    if recurrent_kernel_t is not None and H > 0:
        whtv = recurrent_kernel_t
        if whtv.shape[0] != H or whtv.shape[1] != H:
            raise ValueError(f"recurrent_kernel_t must have shape ({H}, {H}), "
                             f"got {tuple(recurrent_kernel_t.shape)}")
        whtp = &whtv[0, 0]
    if h0 is not None:
        h0v = h0
        if H > 0:
            h0p = &h0v[0, 0]
    if H == 0:
        return
    with nogil:
        _rnn_forward(_ptr3(x), _ptr2(kernel), &recurrent_kernel[0, 0], &bias[0],
                     h0p, &h[0, 0, 0], whtp, B, T, D, H, activation)


def rnn_backward(const floating[:, :, ::1] x, const floating[:, :, ::1] h,
                 const floating[:, ::1] kernel, const floating[:, ::1] recurrent_kernel,
                 const floating[:, :, ::1] dh, h0, floating[:, :, ::1] dz, dx,
                 floating[:, ::1] dkernel, floating[:, ::1] drecurrent_kernel, floating[::1] dbias,
                 floating[:, ::1] dh0, int activation):
    """BPTT into the preallocated gradients.

    ``dz`` (B, T, H) is work space.  ``dx`` may be None:
    the input gradient is then not computed (one GEMM less).

    All shapes are checked by the caller; B, T >= 1.  Every output is
    overwritten.
    """
    cdef int B = x.shape[0], T = x.shape[1], D = x.shape[2], H = h.shape[2]
    cdef const floating[:, ::1] h0v
    cdef const floating* h0p = NULL
    cdef floating[:, :, ::1] dxv
    cdef floating* dxp = NULL
    if dx is not None:
        dxv = dx
        dxp = _wptr3(dxv)
    if h0 is not None:
        h0v = h0
        if H > 0:
            h0p = &h0v[0, 0]
    if H == 0:
        if D > 0 and dx is not None:
            dxv[:, :, :] = 0
        return
    with nogil:
        _rnn_backward(_ptr3(x), &h[0, 0, 0], _ptr2(kernel), &recurrent_kernel[0, 0],
                      &dh[0, 0, 0], h0p, &dz[0, 0, 0], dxp,
                      _wptr2(dkernel), &drecurrent_kernel[0, 0], &dbias[0], &dh0[0, 0],
                      B, T, D, H, activation)


# Pointers to possibly empty arrays (D = 0): indexing [0] would be out of
# bounds, and the kernels never dereference them when a dimension is 0.
cdef inline const floating* _ptr3(const floating[:, :, ::1] a) noexcept nogil:
    if a.shape[0] == 0 or a.shape[1] == 0 or a.shape[2] == 0:
        return NULL
    return &a[0, 0, 0]

cdef inline const floating* _ptr2(const floating[:, ::1] a) noexcept nogil:
    if a.shape[0] == 0 or a.shape[1] == 0:
        return NULL
    return &a[0, 0]

cdef inline floating* _wptr3(floating[:, :, ::1] a) noexcept nogil:
    if a.shape[0] == 0 or a.shape[1] == 0 or a.shape[2] == 0:
        return NULL
    return &a[0, 0, 0]

cdef inline floating* _wptr2(floating[:, ::1] a) noexcept nogil:
    if a.shape[0] == 0 or a.shape[1] == 0:
        return NULL
    return &a[0, 0]


# ---------------------------------------------------------------- dense

def dense_forward(const floating[:, ::1] x, const floating[:, ::1] kernel,
                  const floating[::1] bias, floating[:, ::1] y):
    """``y = x kernel + bias`` for x (N, D), kernel (D, U), y (N, U); N >= 0."""
    cdef int N = x.shape[0], D = x.shape[1], U = kernel.shape[1]
    cdef Py_ssize_t r
    cdef floating one = 1
    if N == 0 or U == 0:
        return
    cdef floating* yp = &y[0, 0]
    cdef const floating* bp = &bias[0]
    with nogil:
        for r in range(N):
            memcpy(yp + r * U, bp, U * sizeof(floating))
        _gemm(False, False, N, U, D, one, _ptr2(x), D, _ptr2(kernel), U, one, yp, U)


def dense_backward(const floating[:, ::1] x, const floating[:, ::1] kernel,
                   const floating[:, ::1] dy, floating[:, ::1] dx,
                   floating[:, ::1] dkernel, floating[::1] dbias):
    """dx = dy kernel^T, dkernel = x^T dy, dbias = sum dy (all overwritten)."""
    cdef int N = x.shape[0], D = x.shape[1], U = kernel.shape[1]
    cdef floating one = 1, zero = 0
    with nogil:
        # y = x W + b:  dx = dy W^T,  dW = x^T dy,  db = sum_rows dy
        _gemm(False, True, N, D, U, one, _ptr2(dy), U, _ptr2(kernel), U, zero, _wptr2(dx), D)
        _gemm(True, False, D, U, N, one, _ptr2(x), D, _ptr2(dy), U, zero, _wptr2(dkernel), U)
        if U > 0:
            _column_sums(_ptr2(dy), N, U, &dbias[0])


# ---------------------------------------------------------------- activation

def tanh_inplace(floating[::1] a):
    """``a = tanh(a)`` in place with the fast vectorised tanh of fastmath.h.

    Exposed for testing the approximation; the kernels call it directly.
    """
    if a.shape[0] == 0:
        return
    with nogil:
        if floating is float:
            fr_tanhf_inplace(&a[0], a.shape[0])
        else:
            fr_tanh_inplace(&a[0], a.shape[0])


# ---------------------------------------------------------------- Adam

cdef void _adam_loop(floating* param, const floating* grad, floating* m, floating* v,
                     Py_ssize_t n, floating lr_t, floating beta_1, floating beta_2,
                     floating epsilon) noexcept nogil:
    # m += (1-b1)(g-m);  v += (1-b2)(g^2-v);  p -= lr_t m / (sqrt(v)+eps)
    cdef Py_ssize_t i
    cdef floating g
    cdef floating one_minus_b1 = 1 - beta_1
    cdef floating one_minus_b2 = 1 - beta_2
    for i in range(n):
        g = grad[i]
        m[i] += one_minus_b1 * (g - m[i])
        v[i] += one_minus_b2 * (g * g - v[i])
        param[i] -= lr_t * m[i] / (sqrt(v[i]) + epsilon)


def adam_update(floating[::1] param, const floating[::1] grad, floating[::1] m,
                floating[::1] v, double lr_t, double beta_1, double beta_2,
                double epsilon):
    """Fused Adam over flat, contiguous, equally long buffers (in place).

    ``lr_t`` is the bias-corrected step size computed by the caller.
    """
    if param.shape[0] == 0:
        return
    with nogil:
        _adam_loop(&param[0], &grad[0], &m[0], &v[0], param.shape[0],
                   <floating>lr_t, <floating>beta_1, <floating>beta_2,
                   <floating>epsilon)
