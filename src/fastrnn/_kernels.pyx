# cython: language_level=3
"""Compiled kernels of fastrnn: one implementation of each computation.

Two levels in this file:

- ``cdef ... noexcept nogil`` kernels over raw memory (declared in
  ``_kernels.pxd``), shared by the engine (``_engine.pyx``, which runs whole
  models) and by the ``def`` entry points below;
- ``def`` entry points that :mod:`fastrnn.ops` calls with arrays it has
  already validated (dtype, shape, contiguity, sizes that fit BLAS's ``int``)
  and allocated.  Nothing here re-checks its arguments: call it through
  :mod:`fastrnn.ops`.

All matrices are row-major.  The recurrence kernels take a layout flag: the
``ops`` API is batch-major (row ``b*T + t`` of a (B*T, n) array belongs to
sample ``b`` at step ``t``); the engine works time-major (row ``t*B + b``),
where every time slice is one contiguous (B, n) block.  Either way all B*T
rows are contiguous, so the input projection and the weight gradients are
single products over all rows; only the small (B x H)(H x H) step products
are sequential.

The recurrence takes Keras's step mask (a masked step carries the state),
go_backwards (``reverse``), an initial state and the two dropout masks; the
rules are written out above ``rnn_forward_masked_k`` and, readably, in
:mod:`fastrnn.reference.recurrence`, which is their test oracle.
"""
from libc.math cimport sqrt, sqrtf, exp, expf, expm1, expm1f, log1p, log1pf, log, logf
from libc.math cimport fabs, fabsf
from libc.float cimport FLT_MIN, DBL_MIN
from libc.string cimport memcpy, memset
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from operator import index as _as_index
from scipy.linalg.cython_blas cimport dgemm, sgemm

cdef extern from "fastmath.h" nogil:
    void fr_tanhf_inplace(float* a, Py_ssize_t n)
    void fr_tanh_inplace(double* a, Py_ssize_t n)

cdef extern from "packed_step.h" nogil:
    ctypedef void (*fr_act_f32)(int, float*, Py_ssize_t, Py_ssize_t, Py_ssize_t) noexcept nogil
    ctypedef void (*fr_act_f64)(int, double*, Py_ssize_t, Py_ssize_t, Py_ssize_t) noexcept nogil
    ctypedef void (*fr_dact_f32)(int, const float*, float*, Py_ssize_t, Py_ssize_t,
                                 Py_ssize_t) noexcept nogil
    ctypedef void (*fr_dact_f64)(int, const double*, double*, Py_ssize_t, Py_ssize_t,
                                 Py_ssize_t) noexcept nogil
    int FR_ISA_GENERIC, FR_ISA_AVX2, FR_ISA_AVX512
    int fr_isa_supported()
    int fr_get_isa()
    int fr_set_isa(int isa)
    void fr_set_num_threads(int n)
    int fr_get_num_threads()
    void fr_set_load_check(int on)
    int fr_last_threads()
    void fr_set_single_thread_here(int on)
    int fr_blas_local_threads_call "fr_blas_local_threads_public"(int n)
    double fr_now()
    int fr_rnn_forward_f32(fr_act_f32 act_fn, int act, const float* x, const float* w,
                           const float* wh, const float* bias, const float* h0, float* h,
                           const unsigned char* mask, Py_ssize_t mask_b, Py_ssize_t mask_t,
                           Py_ssize_t B, Py_ssize_t T, Py_ssize_t D, Py_ssize_t H,
                           Py_ssize_t ld, Py_ssize_t step, int reverse)
    int fr_rnn_forward_f64(fr_act_f64 act_fn, int act, const double* x, const double* w,
                           const double* wh, const double* bias, const double* h0, double* h,
                           const unsigned char* mask, Py_ssize_t mask_b, Py_ssize_t mask_t,
                           Py_ssize_t B, Py_ssize_t T, Py_ssize_t D, Py_ssize_t H,
                           Py_ssize_t ld, Py_ssize_t step, int reverse)
    int fr_rnn_carry_f32(fr_dact_f32 dact_fn, int act, const float* h, const float* wh,
                         const float* dh_seq, const float* dh_last, float* dz, float* g,
                         const unsigned char* mask, Py_ssize_t mask_b, Py_ssize_t mask_t,
                         const float* rec_mask, Py_ssize_t B, Py_ssize_t T, Py_ssize_t H,
                         Py_ssize_t ld, Py_ssize_t step, int reverse, int want_dh0)
    int fr_rnn_carry_f64(fr_dact_f64 dact_fn, int act, const double* h, const double* wh,
                         const double* dh_seq, const double* dh_last, double* dz, double* g,
                         const unsigned char* mask, Py_ssize_t mask_b, Py_ssize_t mask_t,
                         const double* rec_mask, Py_ssize_t B, Py_ssize_t T, Py_ssize_t H,
                         Py_ssize_t ld, Py_ssize_t step, int reverse, int want_dh0)
    int fr_packed_gemm_f32(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* a,
                           Py_ssize_t lda, const float* w, float* c, Py_ssize_t ldc,
                           int accumulate)
    int fr_packed_gemm_f64(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const double* a,
                           Py_ssize_t lda, const double* w, double* c, Py_ssize_t ldc,
                           int accumulate)
    int fr_find_blas_local_threads(void* blas_function)
    int fr_has_blas_local_threads()
    int fr_team_gemm_f32(int trans_a, int trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                         const float* a, Py_ssize_t lda, const float* b, Py_ssize_t ldb,
                         float* c, Py_ssize_t ldc, int accumulate, Py_ssize_t kgroup,
                         Py_ssize_t a_gstride, Py_ssize_t b_gstride)
    int fr_team_gemm_f64(int trans_a, int trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                         const double* a, Py_ssize_t lda, const double* b, Py_ssize_t ldb,
                         double* c, Py_ssize_t ldc, int accumulate, Py_ssize_t kgroup,
                         Py_ssize_t a_gstride, Py_ssize_t b_gstride)

#: Activation names -> codes of the kernels (see _kernels.pxd).
ACTIVATION_CODES = {
    "linear": ACT_LINEAR, "tanh": ACT_TANH, "relu": ACT_RELU, "sigmoid": ACT_SIGMOID,
    "softmax": ACT_SOFTMAX, "softplus": ACT_SOFTPLUS, "softsign": ACT_SOFTSIGN,
    "elu": ACT_ELU, "selu": ACT_SELU, "exponential": ACT_EXPONENTIAL,
    "hard_sigmoid": ACT_HARD_SIGMOID, "relu6": ACT_RELU6, "leaky_relu": ACT_LEAKY_RELU,
    "log_softmax": ACT_LOG_SOFTMAX,
}

#: The forward step products use a transposed copy of W_h from this many
#: units on; the backward carry uses one below it.  OpenBLAS (measured on a
#: Skylake-X Xeon and a Zen 4 EPYC, float32, 32-64 rows) runs the "TN" form
#: 5-15 % faster than "NN" for H >= 256 and slower at H = 128; the carry's
#: "NN" form on W_h^T beats "NT" on W_h below 256 (10.7 vs 14.5 us at H = 128).
TRANSPOSED_STEP_MIN_UNITS = 256
cdef Py_ssize_t _TRANSPOSED_MIN = TRANSPOSED_STEP_MIN_UNITS

# Keras's SELU constants and leaky_relu's default negative slope.
cdef double SELU_ALPHA = 1.6732632423543772848170429916717
cdef double SELU_SCALE = 1.0507009873554804934193349852946
cdef double LEAKY_SLOPE = 0.2


# ---------------------------------------------------------------- BLAS

#: OpenBLAS runs a product of at most this many multiply-adds (m*n*k) on the
#: calling thread (interface/gemm.c: SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD
#: = 65536 * 4 by default), and wakes its thread pool above it.
SINGLE_THREAD_PRODUCT = 262144
#: Products up to this size are cut into pieces of at most SINGLE_THREAD_PRODUCT,
#: so they run on the calling thread.  Measured on a 2-core Zen 4 with other
#: work running: an epoch of SimpleRNN(64) -> Dense(10) at T = 20 took 0.66 ms
#: with every product on one thread and 4.5-78 ms when OpenBLAS's pool took its
#: 2.6M multiply-add weight gradients (the pool's threads wait for cores).  A
#: few dozen microseconds of work gain nothing from waking threads; bigger
#: products (the step products at H = 512) keep BLAS's own threading.  Per
#: call, so nothing process-wide changes.
SPLIT_PRODUCTS_UP_TO = 2**22
cdef double _SINGLE = SINGLE_THREAD_PRODUCT
cdef double _SPLIT_MAX = SPLIT_PRODUCTS_UP_TO


# BLAS products made so far (tests: a packed recurrence makes none; not exact
# when several threads call at once)
cdef size_t _blas_calls = 0


def _blas_call_count():
    """The number of BLAS products the kernels have made in this process (tests)."""
    return _blas_calls


cdef void _blas_gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                     floating alpha, const floating* a, Py_ssize_t lda, const floating* b,
                     Py_ssize_t ldb, floating beta, floating* c, Py_ssize_t ldc) noexcept nogil:
    # Row-major C = alpha op(A) op(B) + beta C as column-major C^T = op(B)^T op(A)^T:
    # B goes first, A second, each with its own transpose flag.
    global _blas_calls
    _blas_calls += 1
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef int im = <int>n, jn = <int>m, kk = <int>k
    cdef int la = <int>lda, lb = <int>ldb, lc = <int>ldc
    if floating is float:
        sgemm(&tb, &ta, &im, &jn, &kk, &alpha, <float*>b, &lb, <float*>a, &la,
              &beta, c, &lc)
    else:
        dgemm(&tb, &ta, &im, &jn, &kk, &alpha, <double*>b, &lb, <double*>a, &la,
              &beta, c, &lc)


cdef void _unit_gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                     floating alpha, const floating* a, Py_ssize_t lda, const floating* b,
                     Py_ssize_t ldb, floating beta, floating* c, Py_ssize_t ldc) noexcept nogil:
    """:func:`gemm` for a product with a dimension of 1 (m, n >= 1, k >= 1), as plain loops
    (which products: see :func:`gemm`).

    At tutorial size these are the input projection (D = 1: k = 1), the
    Dense output layer (U = 1: n = 1) and their weight gradients (m = 1 or
    n = 1): BLAS spends several thousand instructions per call packing such
    operands, for a few hundred multiply-adds.  k = 1 (an outer product)
    rounds as BLAS does (one product, then ``beta C +``); the sums over k
    are taken in order, where BLAS's blocking may group them differently.
    """
    cdef Py_ssize_t i, j, p
    cdef floating acc, ap, bp
    cdef floating* cr
    cdef const floating* row
    if alpha == 0:                        # BLAS: C = beta C, A and B not read
        for i in range(m):
            cr = c + i * ldc
            for j in range(n):
                cr[j] = 0 if beta == 0 else beta * cr[j]
        return
    # a vector operand read with stride 1 either way: take the plain loops' form
    if k == 1 and trans_b and ldb == 1:
        trans_b = False
    if n == 1 and k > 1 and not trans_b and ldb == 1:
        trans_b = True
    if m == 1 and k > 1 and trans_a and lda == 1:
        trans_a = False
    if k == 1:                            # C = beta C + alpha a b^T
        for i in range(m):
            ap = a[i] if trans_a else a[i * lda]
            cr = c + i * ldc
            if not trans_b:
                if beta == 0:
                    for j in range(n):
                        cr[j] = alpha * (ap * b[j])
                elif beta == 1:
                    for j in range(n):
                        cr[j] = cr[j] + alpha * (ap * b[j])
                else:
                    for j in range(n):
                        cr[j] = beta * cr[j] + alpha * (ap * b[j])
            else:
                for j in range(n):
                    acc = alpha * (ap * b[j * ldb])
                    cr[j] = acc if beta == 0 else beta * cr[j] + acc
        return
    if n == 1 and trans_a and beta == 0 and ldc == 1:
        # c = sum_p a[p, :] b[p]: rows of A^T added in order (vectorises over i)
        for i in range(m):
            c[i] = 0
        for p in range(k):
            bp = b[p] if trans_b else b[p * ldb]
            row = a + p * lda
            for i in range(m):
                c[i] += row[i] * bp
        if alpha != 1:
            for i in range(m):
                c[i] = alpha * c[i]
        return
    if m == 1 and n > 1 and not trans_b and beta == 0:
        # c = sum_p a[p] b[p, :]: rows of B added in order (vectorises over j)
        for j in range(n):
            c[j] = 0
        for p in range(k):
            ap = a[p * lda] if trans_a else a[p]
            row = b + p * ldb
            for j in range(n):
                c[j] += ap * row[j]
        if alpha != 1:
            for j in range(n):
                c[j] = alpha * c[j]
        return
    if n == 1 and not trans_a:            # one dot product per row of A
        for i in range(m):
            row = a + i * lda
            acc = 0
            if trans_b:
                for p in range(k):
                    acc += row[p] * b[p]
            else:
                for p in range(k):
                    acc += row[p] * b[p * ldb]
            c[i * ldc] = alpha * acc if beta == 0 else beta * c[i * ldc] + alpha * acc
        return
    # dot products: C[i, j] = beta C[i, j] + alpha sum_p op(A)[i, p] op(B)[p, j]
    for i in range(m):
        cr = c + i * ldc
        for j in range(n):
            acc = 0
            for p in range(k):
                acc += ((a[p * lda + i] if trans_a else a[i * lda + p])
                        * (b[j * ldb + p] if trans_b else b[p * ldb + j]))
            cr[j] = alpha * acc if beta == 0 else beta * cr[j] + alpha * acc


cdef void gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
               floating alpha, const floating* a, Py_ssize_t lda, const floating* b,
               Py_ssize_t ldb, floating beta, floating* c, Py_ssize_t ldc) noexcept nogil:
    """Row-major ``C = alpha op(A) op(B) + beta C``; C is m x n, op(A) m x k.

    Mid-sized products (see SPLIT_PRODUCTS_UP_TO) run as single-thread
    pieces along their largest dimension (pieces of the summed dimension k
    accumulate, beta = 1 after the first).  Callers guarantee every size
    fits BLAS's int.
    """
    cdef Py_ssize_t i, j, p, step
    cdef double mnk = <double>m * <double>n * <double>k
    cdef floating one = 1
    if m <= 0 or n <= 0:
        return
    if k <= 0:  # empty sum: C = beta C (BLAS would reject lda = 0)
        if beta == 0:
            for i in range(m):
                memset(c + i * ldc, 0, n * sizeof(floating))
        elif beta != 1:
            for i in range(m):
                for j in range(n):
                    c[i * ldc + j] *= beta
        return
    # A row's result must not depend on how many rows share the product (a
    # sequence alone gives bitwise what it gives in a batch): the plain loops
    # take every product with k = 1 (each element one product, as BLAS rounds
    # it) or n = 1 (one output column, whatever the rows), and m = 1 only in a
    # weight gradient (op(A) = A^T: m is a weight dimension, never the rows).
    if k == 1 or n == 1 or (m == 1 and trans_a):
        _unit_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    if mnk <= _SINGLE or mnk > _SPLIT_MAX:
        _blas_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    if k >= m and k >= n:                 # split the sum: C = beta C + sum of pieces
        step = max(1, <Py_ssize_t>(_SINGLE / (<double>m * n)))
        p = 0
        while p < k:
            _blas_gemm(trans_a, trans_b, m, n, min(step, k - p), alpha,
                       a + (p * lda if trans_a else p), lda,
                       b + (p if trans_b else p * ldb), ldb,
                       beta if p == 0 else one, c, ldc)
            p += step
    elif m >= n:                          # blocks of rows of C and op(A)
        step = max(1, <Py_ssize_t>(_SINGLE / (<double>n * k)))
        p = 0
        while p < m:
            _blas_gemm(trans_a, trans_b, min(step, m - p), n, k, alpha,
                       a + (p if trans_a else p * lda), lda, b, ldb, beta, c + p * ldc, ldc)
            p += step
    else:                                 # blocks of columns of C and op(B)
        step = max(1, <Py_ssize_t>(_SINGLE / (<double>m * k)))
        p = 0
        while p < n:
            _blas_gemm(trans_a, trans_b, m, min(step, n - p), k, alpha, a, lda,
                       b + (p * ldb if trans_b else p), ldb, beta, c + p, ldc)
            p += step


cdef void _team_gemm(bint team, bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n,
                     Py_ssize_t k, floating alpha, const floating* a, Py_ssize_t lda,
                     const floating* b, Py_ssize_t ldb, floating beta, floating* c,
                     Py_ssize_t ldc, Py_ssize_t kgroup=0, Py_ssize_t a_gstride=0,
                     Py_ssize_t b_gstride=0) noexcept nogil:
    """:func:`gemm` for the merged products of a recurrence that ran on the packed
    kernel's team (``team`` True, alpha = 1, beta 0 or 1): on the same team, in
    csrc/packed_step.c's own GEMM, so no BLAS thread pool wakes beside the team.
    ``kgroup`` > 0: the summed index runs in groups of ``kgroup`` rows, group g
    starting ``g * a_gstride`` (``b_gstride``) elements in (see fr_team_gemm_f32;
    op(A) must then be A^T and op(B) B, the groups running over their rows).
    ``team`` False (or no memory for the packed operands): :func:`gemm`, one
    call per group."""
    cdef int done = 0
    cdef Py_ssize_t g, groups
    if team and alpha == 1 and (beta == 0 or beta == 1):
        if floating is float:
            done = fr_team_gemm_f32(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc,
                                    beta != 0, kgroup, a_gstride, b_gstride)
        else:
            done = fr_team_gemm_f64(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc,
                                    beta != 0, kgroup, a_gstride, b_gstride)
    if done:
        return
    if 0 < kgroup < k:
        groups = (k + kgroup - 1) // kgroup
        for g in range(groups):
            gemm(trans_a, trans_b, m, n, min(kgroup, k - g * kgroup), alpha, a + g * a_gstride,
                 lda, b + g * b_gstride, ldb, beta if g == 0 else <floating>1, c, ldc)
    else:
        gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)


fr_find_blas_local_threads(<void*>sgemm)


# ---------------------------------------------------------------- activations

cdef inline floating _exp(floating z) noexcept nogil:
    if floating is float:
        return expf(z)
    else:
        return exp(z)

cdef inline floating _expm1(floating z) noexcept nogil:
    if floating is float:
        return expm1f(z)
    else:
        return expm1(z)

cdef inline floating _log1p(floating z) noexcept nogil:
    if floating is float:
        return log1pf(z)
    else:
        return log1p(z)

cdef inline floating _log(floating z) noexcept nogil:
    if floating is float:
        return logf(z)
    else:
        return log(z)

cdef inline floating _sqrt(floating z) noexcept nogil:
    if floating is float:
        return sqrtf(z)
    else:
        return sqrt(z)

cdef inline floating _abs(floating z) noexcept nogil:
    if floating is float:
        return fabsf(z)
    else:
        return fabs(z)


cdef void _activate_contiguous(int act, floating* z, Py_ssize_t n) noexcept nogil:
    """z = act(z) in place over n contiguous elements (elementwise activations)."""
    cdef Py_ssize_t i
    cdef floating v, e
    cdef floating six = 6, zero = 0
    if act == ACT_LINEAR:
        return
    if act == ACT_TANH:
        if floating is float:
            fr_tanhf_inplace(z, n)
        else:
            fr_tanh_inplace(z, n)
    elif act == ACT_RELU:
        for i in range(n):
            z[i] = 0 if z[i] < 0 else z[i]          # NaN stays NaN, as np.maximum
    elif act == ACT_SIGMOID:
        for i in range(n):                            # exp of a non-positive number only
            v = z[i]
            if v >= 0:
                z[i] = 1 / (1 + _exp(-v))
            else:
                e = _exp(v)
                z[i] = e / (1 + e)
    elif act == ACT_SOFTPLUS:
        for i in range(n):                            # log(1 + e^v), no overflow
            v = z[i]
            z[i] = (v if v > 0 else zero) + _log1p(_exp(-_abs(v)))
    elif act == ACT_SOFTSIGN:
        for i in range(n):
            z[i] = z[i] / (1 + _abs(z[i]))
    elif act == ACT_ELU:
        for i in range(n):
            if not z[i] > 0:
                z[i] = _expm1(z[i])
    elif act == ACT_SELU:
        for i in range(n):
            v = z[i]
            z[i] = <floating>SELU_SCALE * (v if v > 0 else <floating>SELU_ALPHA * _expm1(v))
    elif act == ACT_EXPONENTIAL:
        for i in range(n):
            z[i] = _exp(z[i])
    elif act == ACT_HARD_SIGMOID:
        for i in range(n):                            # Keras 3: relu6(v + 3) / 6
            v = z[i] + 3
            v = zero if v < 0 else v
            v = six if v > 6 else v
            z[i] = v / six
    elif act == ACT_RELU6:
        for i in range(n):
            v = z[i]
            v = zero if v < 0 else v
            z[i] = six if v > 6 else v
    elif act == ACT_LEAKY_RELU:
        for i in range(n):
            if z[i] < 0:
                z[i] = z[i] * <floating>LEAKY_SLOPE


cdef void _softmax_row(floating* z, Py_ssize_t n, bint log_form) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating mx = z[0], s = 0
    for i in range(1, n):
        if z[i] > mx:
            mx = z[i]
    for i in range(n):
        s += _exp(z[i] - mx)
    if log_form:                       # z - max - log(sum exp(z - max))
        s = _log(s)
        for i in range(n):
            z[i] = z[i] - mx - s
    else:
        for i in range(n):
            z[i] = _exp(z[i] - mx) / s


cdef void activate_rows(int act, floating* z, Py_ssize_t rows, Py_ssize_t cols,
                        Py_ssize_t ld) noexcept nogil:
    """z = act(z) in place on ``rows`` rows of ``cols`` elements, ``ld`` apart."""
    cdef Py_ssize_t r
    if act == ACT_LINEAR or rows <= 0 or cols <= 0:
        return
    if act == ACT_SOFTMAX or act == ACT_LOG_SOFTMAX:
        for r in range(rows):
            _softmax_row(z + r * ld, cols, act == ACT_LOG_SOFTMAX)
    elif ld == cols:
        _activate_contiguous(act, z, rows * cols)
    else:
        for r in range(rows):
            _activate_contiguous(act, z + r * ld, cols)


cdef void _slope_contiguous(int act, const floating* h, floating* g, Py_ssize_t n) noexcept nogil:
    """g = g * act'(z), act' written in terms of the output h = act(z) (elementwise)."""
    cdef Py_ssize_t i
    cdef floating v, one = 1, zero = 0
    if act == ACT_TANH:
        for i in range(n):
            g[i] = g[i] * (one - h[i] * h[i])
    elif act == ACT_RELU:
        for i in range(n):
            g[i] = g[i] if h[i] > 0 else zero
    elif act == ACT_SIGMOID:
        for i in range(n):
            g[i] = g[i] * (h[i] * (one - h[i]))
    elif act == ACT_SOFTPLUS:
        for i in range(n):                 # sigmoid(z) = 1 - e^-softplus(z)
            g[i] = g[i] * -_expm1(-h[i])
    elif act == ACT_SOFTSIGN:
        for i in range(n):                 # 1 / (1 + |z|)^2 = (1 - |h|)^2
            v = one - _abs(h[i])
            g[i] = g[i] * (v * v)
    elif act == ACT_ELU:
        for i in range(n):                 # z <= 0: e^z = h + 1
            g[i] = g[i] if h[i] > 0 else g[i] * (h[i] + one)
    elif act == ACT_SELU:
        for i in range(n):                 # z <= 0: scale alpha e^z = h + scale alpha
            if h[i] > 0:
                g[i] = g[i] * <floating>SELU_SCALE
            else:
                g[i] = g[i] * (h[i] + <floating>(SELU_SCALE * SELU_ALPHA))
    elif act == ACT_EXPONENTIAL:
        for i in range(n):
            g[i] = g[i] * h[i]
    elif act == ACT_HARD_SIGMOID:
        for i in range(n):                 # 1/6 on -3 < z < 3, i.e. 0 < h < 1
            g[i] = g[i] / 6 if (h[i] > 0 and h[i] < 1) else zero
    elif act == ACT_RELU6:
        for i in range(n):
            g[i] = g[i] if (h[i] > 0 and h[i] < 6) else zero
    elif act == ACT_LEAKY_RELU:
        for i in range(n):                 # slope 1 at z = 0 (h = 0), as Keras's z >= 0 branch
            g[i] = g[i] if h[i] >= 0 else g[i] * <floating>LEAKY_SLOPE


cdef void activation_backward_rows(int act, const floating* h, floating* g, Py_ssize_t rows,
                                   Py_ssize_t cols, Py_ssize_t ld) noexcept nogil:
    """g = dLoss/dz from g = dLoss/dh in place, h = act(z); rows ``ld`` apart (both).

    Softmax:     dz = h * (g - sum(g * h))      per row
    log_softmax: dz = g - e^h * sum(g)          per row (e^h is the softmax)
    """
    cdef Py_ssize_t r, i
    cdef floating s
    cdef const floating* hr
    cdef floating* gr
    if act == ACT_LINEAR or rows <= 0 or cols <= 0:
        return
    if act == ACT_SOFTMAX or act == ACT_LOG_SOFTMAX:
        for r in range(rows):
            hr = h + r * ld
            gr = g + r * ld
            s = 0
            if act == ACT_SOFTMAX:
                for i in range(cols):
                    s += gr[i] * hr[i]
                for i in range(cols):
                    gr[i] = hr[i] * (gr[i] - s)
            else:
                for i in range(cols):
                    s += gr[i]
                for i in range(cols):
                    gr[i] = gr[i] - _exp(hr[i]) * s
    elif ld == cols:
        _slope_contiguous(act, h, g, rows * cols)
    else:
        for r in range(rows):
            _slope_contiguous(act, h + r * ld, g + r * ld, cols)


# ---------------------------------------------------------------- helpers

cdef void fill_rows(floating* out, const floating* row, Py_ssize_t rows,
                    Py_ssize_t cols) noexcept nogil:
    """out[r, :] = row for ``rows`` contiguous rows of ``cols``.

    A plain loop, not a memcpy per row: rows are short (a bias of 1-100
    units), where a library call per row costs more than the copy
    (measured: 7 % of a tutorial training step went to memmove).
    """
    cdef Py_ssize_t r, j
    for r in range(rows):
        for j in range(cols):
            out[r * cols + j] = row[j]


cdef void column_sums(const floating* a, Py_ssize_t rows, Py_ssize_t cols,
                      floating* out) noexcept nogil:
    """out[j] = sum_r a[r, j] (out is overwritten), four rows per pass."""
    cdef Py_ssize_t r = 0, j
    cdef const floating* a0
    memset(out, 0, cols * sizeof(floating))
    while r + 4 <= rows:
        a0 = a + r * cols
        for j in range(cols):
            out[j] += (a0[j] + a0[cols + j]) + (a0[2 * cols + j] + a0[3 * cols + j])
        r += 4
    while r < rows:
        a0 = a + r * cols
        for j in range(cols):
            out[j] += a0[j]
        r += 1


cdef void transpose_square(const floating* a, Py_ssize_t n, floating* out) noexcept nogil:
    """out = a^T for a square n x n matrix, in 32 x 32 tiles (both stay in cache)."""
    cdef Py_ssize_t i0, j0, i, j, i1, j1
    for i0 in range(0, n, 32):
        i1 = i0 + 32 if i0 + 32 < n else n
        for j0 in range(0, n, 32):
            j1 = j0 + 32 if j0 + 32 < n else n
            for i in range(i0, i1):
                for j in range(j0, j1):
                    out[j * n + i] = a[i * n + j]


cdef void _add_rows(floating* out, const floating* a, const floating* b, Py_ssize_t rows,
                    Py_ssize_t cols, Py_ssize_t ld) noexcept nogil:
    """out = a + b over ``rows`` rows; out and a are ``ld`` apart (a may be out),
    b is contiguous (rows x cols); a NULL operand counts as zero."""
    cdef Py_ssize_t r, j
    cdef floating* o
    cdef const floating* ar
    cdef const floating* br
    if ld == cols:               # contiguous (time-major): one row of rows * cols
        cols = rows * cols
        rows = 1
    for r in range(rows):
        o = out + r * ld
        ar = a + r * ld if a != NULL else NULL
        br = b + r * cols if b != NULL else NULL
        if ar != NULL and br != NULL:
            for j in range(cols):
                o[j] = ar[j] + br[j]
        elif ar != NULL:
            if ar != o:
                memcpy(o, ar, cols * sizeof(floating))
        elif br != NULL:
            memcpy(o, br, cols * sizeof(floating))
        else:
            memset(o, 0, cols * sizeof(floating))


cdef bint _rows_finite(const floating* a, Py_ssize_t rows, Py_ssize_t stride,
                       Py_ssize_t cols) noexcept nogil:
    """All of a[r * stride + j] (r < rows, j < cols) finite (not inf or NaN)."""
    cdef Py_ssize_t r, j
    cdef floating acc = 0
    for r in range(rows):
        for j in range(cols):
            acc += a[r * stride + j] * 0   # NaN once any element is inf or NaN
    return acc == 0


# ---------------------------------------------------------------- packed step kernel: dispatch
#
# Large H runs the recurrence's sequential part (and the forward's input
# projection) on the packed-weight kernel of csrc/packed_step.c, on a team
# of threads; small H keeps the BLAS path below, where OpenBLAS's
# small-matrix code is faster.  The choice costs one integer comparison
# (``H >= _packed_min``) on the small-H path.
#
# _packed_min: "never" -> no H; "always" -> every H (tests); "auto" -> at
# first use from PACKED_CALIBRATION_FLOOR units on, a one-time measurement
# (_calibrate) replaces it by the measured crossover.

#: Below this many units the packed kernel is never used in "auto" mode (and
#: nothing is measured): tutorial-sized layers never reach the dispatch.
PACKED_CALIBRATION_FLOOR = 64
#: The unit counts the calibration compares the two paths at: a float32
#: forward recurrence of CALIBRATION_STEPS steps over 32 sequences with
#: D = H, tanh, each path on one thread when the BLAS has a per-thread
#: setting to hold it there, else each on its threads (BLAS's pool, the
#: team), the least of 5 interleaved runs:
#: the kernels' own speed, which a loaded machine disturbs least (thread
#: pools under load are what it must not measure).  The crossover is the
#: first size where the packed run is faster, else the last (512): from there
#: on the packed path runs at the machine's one-thread sgemm rate, forward and
#: backward (its own GEMM for the weight gradients), which no BLAS path beats,
#: while this small 8-step problem is dominated by the team's per-call and
#: per-step costs (without a per-thread BLAS setting, measured on a 2-core Zen
#: 4: crossover 64 or "none up to 512" from run to run; the L backward then
#: took 47 ms packed vs 75 ms on BLAS).  The team's threads come on top.  (The
#: bare step product alone misleads: on a Zen 4 core OpenBLAS's is as fast as
#: the packed one up to 512 units, while the whole recurrence at L (H = 512)
#: took 20 % less CPU time on the packed kernel.)
PACKED_CALIBRATION_UNITS = (64, 128, 256, 512)
CALIBRATION_STEPS = 8
cdef Py_ssize_t _CALIBRATION_STEPS = CALIBRATION_STEPS
cdef Py_ssize_t _NEVER = <Py_ssize_t>(((<size_t>-1) >> 1))
cdef Py_ssize_t _packed_min = _NEVER
cdef bint _calibrated = False
cdef bint _auto = True          # the mode is "auto"
cdef Py_ssize_t _crossover = -1
cdef double[4][2] _calibration_times     # (BLAS, packed) seconds per size
_PACKED_MODES = ("auto", "always", "never")
_packed_mode = "auto"


cdef void _blas_forward(const float* x, const float* w, const float* wh, const float* bias,
                        float* h, Py_ssize_t B, Py_ssize_t T, Py_ssize_t H) noexcept nogil:
    """The BLAS path of the forward (time-major, D = H, tanh), for the calibration."""
    cdef Py_ssize_t t
    cdef float one = 1
    fill_rows(h, bias, B * T, H)
    gemm(False, False, B * T, H, H, one, x, H, w, H, one, h, H)
    for t in range(T):
        if t > 0:
            gemm(False, False, B, H, H, one, h + (t - 1) * B * H, H, wh, H, one, h + t * B * H, H)
        activate_rows(ACT_TANH, h + t * B * H, B, H, H)


cdef void _calibrate() noexcept nogil:
    """Measure the crossover once (~10-30 ms) and set _packed_min."""
    global _packed_min, _calibrated, _crossover
    cdef Py_ssize_t[4] units = [64, 128, 256, 512]
    cdef Py_ssize_t i, j, r, n, B = 32, T = _CALIBRATION_STEPS, H
    cdef Py_ssize_t cross = units[3]
    cdef double tb, tp, t0, dt
    cdef float* buf
    for i in range(4):
        _calibration_times[i][0] = -1
        _calibration_times[i][1] = -1
    # one thread each where the BLAS can be held to one thread without touching
    # other threads; else both on their threads (a fair race, if a noisier one)
    cdef bint single = fr_has_blas_local_threads()
    cdef int old_blas = fr_blas_local_threads_call(1)
    fr_set_single_thread_here(single)
    for i in range(4):
        H = units[i]
        n = 2 * B * T * H + 2 * H * H + H
        buf = <float*>malloc(n * sizeof(float))
        if buf == NULL:
            break
        for j in range(n):
            buf[j] = (<float>((j * 7919) % 1000) * 1e-3 - 0.5) * 0.05
        tb = tp = -1
        for r in range(5):
            t0 = fr_now()
            _blas_forward(buf, buf + B * T * H, buf + B * T * H + H * H, buf + n - H,
                          buf + B * T * H + 2 * H * H, B, T, H)
            dt = fr_now() - t0
            tb = dt if tb < 0 or dt < tb else tb
            t0 = fr_now()
            fr_rnn_forward_f32(activate_rows[float], ACT_TANH, buf, buf + B * T * H,
                               buf + B * T * H + H * H, buf + n - H, NULL,
                               buf + B * T * H + 2 * H * H, NULL, 0, 0, B, T, H, H, H,
                               B * H, False)
            dt = fr_now() - t0
            tp = dt if tp < 0 or dt < tp else tp
        free(buf)
        _calibration_times[i][0] = tb
        _calibration_times[i][1] = tp
        if tp < tb:
            cross = H
            break
    fr_set_single_thread_here(0)
    fr_blas_local_threads_call(old_blas)
    _crossover = cross
    _calibrated = True
    if _auto:
        _packed_min = cross


cdef inline bint _use_packed(int act, Py_ssize_t H) noexcept nogil:
    """Whether this recurrence runs on the packed kernel (H is checked first)."""
    if H < _packed_min:
        return False
    if act == ACT_SOFTMAX or act == ACT_LOG_SOFTMAX:   # over whole rows: not per column
        return False
    if _auto and not _calibrated:
        _calibrate()
        return H >= _packed_min
    return True


def set_num_threads(n):
    """Set the number of threads the large-layer kernels may use.

    Parameters
    ----------
    n : int
        At least 1.  The default is ``FASTRNN_NUM_THREADS`` if set, else the
        number of cores this process may run on.

    Notes
    -----
    Results do not depend on the thread count.  A call runs on fewer
    threads when the machine's other runnable threads leave fewer cores
    idle (Linux), and on one thread when another call already uses the team.
    """
    if isinstance(n, bool) or not hasattr(type(n), "__index__"):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    n = _as_index(n)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    fr_set_num_threads(<int>min(n, 256))


def get_num_threads():
    """The number of threads the large-layer kernels may use (see set_num_threads)."""
    return fr_get_num_threads()


_ISA_NAMES = {FR_ISA_GENERIC: "generic", FR_ISA_AVX2: "avx2", FR_ISA_AVX512: "avx512"}


def _set_isa(name):
    """Force the kernel's ISA path ("avx512", "avx2", "generic"); a path the CPU
    cannot run falls back to the best one it can.  Returns the path in use."""
    codes = {v: k for k, v in _ISA_NAMES.items()}
    if name not in codes:
        raise ValueError(f"isa must be one of {sorted(codes)}, got {name!r}")
    return _ISA_NAMES[fr_set_isa(codes[name])]


def _set_packed_mode(mode):
    """"auto" (measured crossover), "always" or "never" (for tests)."""
    global _packed_min, _packed_mode, _auto
    if mode not in _PACKED_MODES:
        raise ValueError(f"mode must be one of {_PACKED_MODES}, got {mode!r}")
    _packed_mode = mode
    _auto = mode == "auto"
    if mode == "always":
        _packed_min = 1
    elif mode == "never":
        _packed_min = _NEVER
    else:
        _packed_min = _crossover if _calibrated else PACKED_CALIBRATION_FLOOR


def _set_load_check(bint on):
    """Whether a call fits its team to the machine's idle cores (default on)."""
    fr_set_load_check(on)


def _packed_info():
    """The dispatch state: ISA paths, mode, crossover (None until measured),
    thread setting, the threads the last packed call ran on, and whether the
    BLAS's per-thread thread setter was found (then the calibration times BLAS
    on one thread)."""
    return {"isa": _ISA_NAMES[fr_get_isa()], "isa_supported": _ISA_NAMES[fr_isa_supported()],
            "mode": _packed_mode, "crossover": _crossover if _calibrated else None,
            "num_threads": fr_get_num_threads(), "last_threads": fr_last_threads(),
            "blas_local_threads": bool(fr_has_blas_local_threads()),
            "calibration": {u: tuple(_calibration_times[i]) for i, u in
                            enumerate(PACKED_CALIBRATION_UNITS)} if _calibrated else None}


def _packed_gemm(const floating[:, ::1] a, const floating[:, ::1] w, floating[:, ::1] c,
                 bint accumulate):
    """``c (+)= a @ w`` on the packed micro-kernels, one thread (tests of tile edges);
    shapes (M, K), (K, N), (M, N) checked by the caller."""
    cdef Py_ssize_t M = a.shape[0], K = a.shape[1], N = w.shape[1]
    cdef int ok
    if M == 0 or N == 0:
        return
    with nogil:
        if floating is float:
            ok = fr_packed_gemm_f32(M, N, K, &a[0, 0] if K > 0 else NULL, K,
                                    &w[0, 0] if K > 0 else NULL, &c[0, 0], N, accumulate)
        else:
            ok = fr_packed_gemm_f64(M, N, K, &a[0, 0] if K > 0 else NULL, K,
                                    &w[0, 0] if K > 0 else NULL, &c[0, 0], N, accumulate)
    if not ok:
        raise MemoryError("packed_gemm: no memory for the packed panels")


def _team_gemm_run(bint trans_a, bint trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                   const floating[::1] a, Py_ssize_t lda, const floating[::1] b,
                   Py_ssize_t ldb, floating[::1] c, Py_ssize_t ldc, bint accumulate,
                   Py_ssize_t kgroup=0, Py_ssize_t a_gstride=0, Py_ssize_t b_gstride=0):
    """``C (+)= op(A) op(B)`` on the packed kernel's team GEMM (tests): flat buffers
    with the row distances and k groups of fr_team_gemm_f32, which the caller makes
    fit the buffers (nothing is checked here)."""
    cdef int ok
    with nogil:
        if floating is float:
            ok = fr_team_gemm_f32(trans_a, trans_b, M, N, K, &a[0], lda, &b[0], ldb, &c[0],
                                  ldc, accumulate, kgroup, a_gstride, b_gstride)
        else:
            ok = fr_team_gemm_f64(trans_a, trans_b, M, N, K, &a[0], lda, &b[0], ldb, &c[0],
                                  ldc, accumulate, kgroup, a_gstride, b_gstride)
    if not ok:
        raise MemoryError("team_gemm: no memory for the packed operands")


def _configure_from_environment():
    """Read FASTRNN_NUM_THREADS, FASTRNN_ISA and FASTRNN_PACKED (at import)."""
    import os
    import warnings
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    n = cores
    value = os.environ.get("FASTRNN_NUM_THREADS", "").strip()
    if value:
        try:
            n = int(value)
            if n < 1:
                raise ValueError
        except ValueError:
            warnings.warn(f"FASTRNN_NUM_THREADS={value!r} is not a positive integer; "
                          f"using {cores}", RuntimeWarning, stacklevel=2)
            n = cores
    fr_set_num_threads(<int>min(n, 256))
    value = os.environ.get("FASTRNN_ISA", "").strip().lower()
    if value:
        if value not in ("avx512", "avx2", "generic"):
            warnings.warn(f"FASTRNN_ISA={value!r} is not one of avx512, avx2, generic; "
                          f"ignored", RuntimeWarning, stacklevel=2)
        elif _set_isa(value) != value:
            warnings.warn(f"FASTRNN_ISA={value!r}: this CPU cannot run it; using "
                          f"{_ISA_NAMES[fr_get_isa()]}", RuntimeWarning, stacklevel=2)
    value = os.environ.get("FASTRNN_PACKED", "").strip().lower() or "auto"
    if value not in _PACKED_MODES:
        warnings.warn(f"FASTRNN_PACKED={value!r} is not one of auto, always, never; "
                      f"using auto", RuntimeWarning, stacklevel=2)
        value = "auto"
    _set_packed_mode(value)


_configure_from_environment()


# ---------------------------------------------------------------- recurrence
#
# Keras's rules (verified against Keras 3; see fastrnn.reference.recurrence):
#
# - step mask m (B, T), read at the input position being processed: at a
#   masked step the state is carried unchanged, h_t = h_prev, and so is the
#   output (the JAX and NumPy backends' rule: the output at a masked step is
#   the previous state, h0 before the first unmasked step; the TensorFlow
#   and torch backends output zeros before the first unmasked step, which
#   rnn_zero_unstarted_k makes of a copy of the states); the input of a
#   masked step reaches nothing and gets a zero gradient;
# - go_backwards (``reverse``): the steps are taken from position T-1 to 0;
#   h stays indexed by input position (the caller reverses a returned
#   sequence into Keras's processing order);
# - dropout (training only; the caller passes NULL otherwise): one mask per
#   sequence, reused at every step, inverted scaling (0 or 1/(1-rate)):
#       z_t = (x_t * dm) W + (h_prev * rm) W_h + b
#   where the state carried to the next step is h_t itself, never h_t * rm.

cdef inline bint _kept(const unsigned char* mask, Py_ssize_t b, Py_ssize_t t, Py_ssize_t B,
                       Py_ssize_t T, bint time_major) noexcept nogil:
    """Whether step t of sample b is processed (mask NULL: every step is)."""
    if mask == NULL:
        return True
    return mask[t * B + b] != 0 if time_major else mask[b * T + t] != 0


cdef void _scale_samples(const floating* a, const floating* scale, floating* out,
                         Py_ssize_t B, Py_ssize_t T, Py_ssize_t n,
                         bint time_major) noexcept nogil:
    """out = a * scale[sample] row by row: a and out (B*T, n) in the given
    layout, scale (B, n) one row per sample; out may be a."""
    cdef Py_ssize_t b, t, j, r
    cdef const floating* ar
    cdef const floating* sr
    cdef floating* orow
    for b in range(B):
        sr = scale + b * n
        for t in range(T):
            r = t * B + b if time_major else b * T + t
            ar = a + r * n
            orow = out + r * n
            for j in range(n):
                orow[j] = ar[j] * sr[j]


cdef void _scale_rows(const floating* a, Py_ssize_t lda, const floating* scale,
                      floating* out, Py_ssize_t ldo, Py_ssize_t rows,
                      Py_ssize_t cols) noexcept nogil:
    """out[r] = a[r] * scale[r] for ``rows`` rows (a, out ``lda``/``ldo`` apart,
    scale contiguous); out may be a (with lda == ldo)."""
    cdef Py_ssize_t r, j
    cdef const floating* ar
    cdef const floating* sr
    cdef floating* orow
    for r in range(rows):
        ar = a + r * lda
        sr = scale + r * cols
        orow = out + r * ldo
        for j in range(cols):
            orow[j] = ar[j] * sr[j]


cdef void rnn_forward_masked_k(const floating* x, const floating* w, const floating* wh,
                               const floating* bias, const floating* h0, floating* h,
                               floating* wh_t, const unsigned char* mask,
                               const floating* in_mask, const floating* rec_mask,
                               floating* xd, floating* hd, Py_ssize_t B, Py_ssize_t T,
                               Py_ssize_t D, Py_ssize_t H, int act, bint time_major,
                               bint reverse) noexcept nogil:
    """States of the recurrence for every step, with Keras's masks.

    With p the previous *processed* step (t-1, or t+1 when ``reverse``)::

        z_t = (x_t * in_mask) W + (h_p * rec_mask) W_h + b
        h_t = act(z_t)   where mask[t] is set,   h_t = h_p   where it is not

    x (B*T, D) and h (B*T, H) in the layout chosen by ``time_major`` (rows
    t*B + b, or b*T + t); h stays indexed by input position when ``reverse``
    (Keras's go_backwards), so the last state is at position 0.  ``h0``
    (B, H) or NULL for zeros; ``bias`` NULL for none; ``wh_t`` NULL or H*H
    work space for the transposed copy of W_h (used from
    TRANSPOSED_STEP_MIN_UNITS on).

    ``mask``: NULL, or B*T bytes in the layout of x (nonzero: the step is
    processed).  ``in_mask`` (B, D) and ``rec_mask`` (B, H): NULL, or one
    dropout mask per sample applied at every step; with ``in_mask``, ``xd``
    is B*T*D work space, with ``rec_mask``, ``hd`` is B*H work space.
    """
    cdef Py_ssize_t r, k, t, prev, b
    cdef Py_ssize_t ld = H if time_major else T * H        # between rows of a step
    cdef Py_ssize_t step = B * H if time_major else H      # between steps
    cdef Py_ssize_t ldp = 0
    cdef floating one = 1, beta = 0
    cdef const floating* xs = x
    cdef const floating* hp
    cdef floating* ht
    cdef int done = 0
    if B <= 0 or T <= 0 or H <= 0:
        return
    if in_mask != NULL and D > 0:           # the input as the kernel sees it: x * in_mask
        _scale_samples(x, in_mask, xd, B, T, D, time_major)
        xs = xd
    # large H: the packed kernel (input projection and steps), unless recurrent dropout
    if _use_packed(act, H) and rec_mask == NULL:
        if floating is float:
            done = fr_rnn_forward_f32(activate_rows[float], act, xs if D > 0 else NULL, w, wh,
                                      bias, h0, h, mask, 1 if time_major else T,
                                      B if time_major else 1, B, T, D, H, ld, step, reverse)
        else:
            done = fr_rnn_forward_f64(activate_rows[double], act, xs if D > 0 else NULL, w, wh,
                                      bias, h0, h, mask, 1 if time_major else T,
                                      B if time_major else 1, B, T, D, H, ld, step, reverse)
        if done:
            return
    # z = x W_x + b for all B*T rows at once, written into h
    if bias != NULL:
        fill_rows(h, bias, B * T, H)
        beta = 1
    gemm(False, False, B * T, H, D, one, xs, D, w, H, beta, h, H)
    cdef bint trans = wh_t != NULL and H >= _TRANSPOSED_MIN
    cdef const floating* wh_op = wh
    if trans:                    # the step products take W_h as (W_h^T)^T
        transpose_square(wh, H, wh_t)
        wh_op = wh_t
    for k in range(T):
        t = T - 1 - k if reverse else k
        ht = h + t * step
        # h_p: the previous processed state (rows ldp apart), or NULL for zeros
        if k > 0:
            prev = t + 1 if reverse else t - 1
            hp = h + prev * step
            ldp = ld
        else:
            hp = h0
            ldp = H
        # z_t += (h_p * rec_mask) W_h
        if hp != NULL:
            if rec_mask != NULL:
                _scale_rows(hp, ldp, rec_mask, hd, H, B, H)
                gemm(False, trans, B, H, H, one, hd, H, wh_op, H, one, ht, ld)
            else:
                gemm(False, trans, B, H, H, one, hp, ldp, wh_op, H, one, ht, ld)
        # h_t = act(z_t), in place
        activate_rows(act, ht, B, H, ld)
        # masked steps carry the state: h_t = h_p
        if mask != NULL:
            for b in range(B):
                if not _kept(mask, b, t, B, T, time_major):
                    if hp != NULL:
                        memcpy(ht + b * ld, hp + b * ldp, H * sizeof(floating))
                    else:
                        memset(ht + b * ld, 0, H * sizeof(floating))


cdef void rnn_forward_k(const floating* x, const floating* w, const floating* wh,
                        const floating* bias, const floating* h0, floating* h,
                        floating* wh_t, Py_ssize_t B, Py_ssize_t T, Py_ssize_t D,
                        Py_ssize_t H, int act, bint time_major, bint reverse) noexcept nogil:
    """:func:`rnn_forward_masked_k` without masks (every step, no dropout)."""
    rnn_forward_masked_k(x, w, wh, bias, h0, h, wh_t, NULL, <const floating*>NULL,
                         <const floating*>NULL, <floating*>NULL, <floating*>NULL,
                         B, T, D, H, act, time_major, reverse)


cdef void rnn_backward_masked_k(const floating* x, const floating* h, const floating* w,
                                const floating* wh, const floating* dh_seq,
                                const floating* dh_last, const floating* h0, floating* dz,
                                floating* g, floating* wh_t, const unsigned char* mask,
                                const floating* in_mask, const floating* rec_mask,
                                floating* xd, floating* hd, floating* dx, floating* dw,
                                floating* dwh, floating* db, floating* dh0, Py_ssize_t B,
                                Py_ssize_t T, Py_ssize_t D, Py_ssize_t H, int act,
                                bint time_major, bint reverse) noexcept nogil:
    """BPTT for :func:`rnn_forward_masked_k` (same layout, direction and masks).

    dLoss/dh arrives as ``dh_seq`` (B*T, H) for every step (NULL: none; it may
    be ``dz`` itself, the gradient is then computed in place) plus ``dh_last``
    (B, H) for the last processed step (NULL: none).  ``dz`` (B*T, H) receives
    dLoss/dz (zero at masked steps); ``g`` is (B, H) work space; ``wh_t`` NULL
    or H*H work space.  ``mask``, ``in_mask``, ``rec_mask`` as in the forward;
    with ``in_mask``, ``xd`` is B*T*D work space; with ``rec_mask``, ``hd`` is
    B*T*H work space (the forward's B*H is its beginning).
    Outputs (each overwritten; ``dx``, ``db``, ``dh0`` may be NULL when not
    wanted): dx (B*T, D), dw (D, H), dwh (H, H), db (H,), dh0 (B, H).
    """
    cdef Py_ssize_t b, i, k, t, first, prev, j, r
    cdef Py_ssize_t ld = H if time_major else T * H
    cdef Py_ssize_t step = B * H if time_major else H
    cdef floating one = 1, zero = 0, beta = 0, carry_beta
    cdef floating* dzt
    cdef floating* gb
    cdef const floating* xs = x
    cdef const floating* hp
    cdef const floating* rm
    if B <= 0 or T <= 0 or H <= 0:
        if dx != NULL and B > 0 and T > 0 and D > 0:
            memset(dx, 0, B * T * D * sizeof(floating))
        return
    # The carry g = dz_t W_h^T: "NN" on a transposed copy below
    # TRANSPOSED_STEP_MIN_UNITS, "NT" on W_h itself from there on.
    # Large H: the carry loop below runs on the packed kernel instead.
    cdef int done = 0
    if _use_packed(act, H):
        if floating is float:
            done = fr_rnn_carry_f32(activation_backward_rows[float], act, h, wh, dh_seq, dh_last,
                                    dz, g, mask, 1 if time_major else T, B if time_major else 1,
                                    rec_mask, B, T, H, ld, step, reverse, dh0 != NULL)
        else:
            done = fr_rnn_carry_f64(activation_backward_rows[double], act, h, wh, dh_seq,
                                    dh_last, dz, g, mask, 1 if time_major else T,
                                    B if time_major else 1, rec_mask, B, T, H, ld, step,
                                    reverse, dh0 != NULL)
    cdef Py_ssize_t blas_steps = 0 if done else T
    cdef bint carry_copy = not done and wh_t != NULL and H < _TRANSPOSED_MIN
    if carry_copy:
        transpose_square(wh, H, wh_t)
    # With a step mask, a masked row passes its whole gradient to h_p (h_t =
    # h_p there): it is kept in g and the product is added to it (beta = 1).
    carry_beta = one if mask != NULL else zero
    # Walk the processed steps backwards.  h_t feeds the loss (dh_t) and the
    # next processed step (z_next = ... + (h_t * rm) W_h, or h_next = h_t), so
    # with G_t = dh_t + g the whole gradient reaching h_t:
    #     dz_t = G_t * act'(z_t)                          (inverts h_t = act(z_t))
    #     g    = (dz_t W_h^T) * rm                        (inverts z_t += (h_p * rm) W_h)
    # and at masked rows dz_t = 0, g = G_t               (inverts h_t = h_p)
    for k in range(blas_steps):
        t = k if reverse else T - 1 - k
        dzt = dz + t * step
        # dz_t = G_t = dh_t + (g, or dh_last at the last processed step)
        _add_rows(dzt, dh_seq + t * step if dh_seq != NULL else NULL,
                  g if k > 0 else dh_last, B, H, ld)
        if mask != NULL:
            for b in range(B):
                gb = g + b * H
                if _kept(mask, b, t, B, T, time_major):
                    memset(gb, 0, H * sizeof(floating))
                else:
                    memcpy(gb, dzt + b * ld, H * sizeof(floating))
                    memset(dzt + b * ld, 0, H * sizeof(floating))
        activation_backward_rows(act, h + t * step, dzt, B, H, ld)
        if k < T - 1 or dh0 != NULL:
            # g (+)= dz_t W_h^T; after the first step, dh0
            if carry_copy:
                gemm(False, False, B, H, H, one, dzt, ld, wh_t, H, carry_beta, g, H)
            else:
                gemm(False, True, B, H, H, one, dzt, ld, wh, H, carry_beta, g, H)
            if rec_mask != NULL:       # times rm, on the product only (masked rows: none)
                for b in range(B):
                    if _kept(mask, b, t, B, T, time_major):
                        gb = g + b * H
                        rm = rec_mask + b * H
                        for j in range(H):
                            gb[j] = gb[j] * rm[j]
    if dh0 != NULL:
        memcpy(dh0, g, B * H * sizeof(floating))
    # z = (x * in_mask) W_x + b over all B*T rows:
    #     dW_x = (x * in_mask)^T dz,  db = sum dz,  dx = (dz W_x^T) * in_mask
    if in_mask != NULL and D > 0:
        _scale_samples(x, in_mask, xd, B, T, D, time_major)
        xs = xd
    _team_gemm(done, True, False, D, H, B * T, one, xs, D, dz, H, zero, dw, H)
    if db != NULL:
        column_sums(dz, B * T, H, db)
    if dx != NULL:
        _team_gemm(done, False, True, B * T, D, H, one, dz, H, w, H, zero, dx, D)
        if in_mask != NULL and D > 0:
            _scale_samples(dx, in_mask, dx, B, T, D, time_major)
    # z_t += (h_p * rm) W_h:  dW_h = sum_t (h_p * rm)^T dz_t  (h_p of the first step: h0)
    if rec_mask != NULL:
        # hd = h_p * rm for every step, in the layout of dz: then one product
        for k in range(T):
            t = T - 1 - k if reverse else k
            if k > 0:
                prev = t + 1 if reverse else t - 1
                _scale_rows(h + prev * step, ld, rec_mask, hd + t * step, ld, B, H)
            elif h0 != NULL:
                _scale_rows(h0, H, rec_mask, hd + t * step, ld, B, H)
            else:
                for b in range(B):
                    memset(hd + t * step + b * ld, 0, H * sizeof(floating))
        _team_gemm(done, True, False, H, H, B * T, one, hd, H, dz, H, zero, dwh, H)
        return
    first = T - 1 if reverse else 0
    if h0 != NULL:
        _team_gemm(done, True, False, H, H, B, one, h0, H, dz + first * step, ld, zero, dwh, H)
        beta = one
    if T == 1:
        if beta == 0:
            memset(dwh, 0, H * H * sizeof(floating))
        return
    if time_major:
        # one product over (T-1)*B rows: each block of B rows of h with the
        # block of dz of the step it feeds
        if reverse:
            _team_gemm(done, True, False, H, H, (T - 1) * B, one, h + B * H, H, dz, H, beta,
                       dwh, H)
        else:
            _team_gemm(done, True, False, H, H, (T - 1) * B, one, h, H, dz + B * H, H, beta,
                       dwh, H)
    elif done:
        # Batch-major on the team: one product whose summed index runs over the
        # T - 1 (h_p, dz_t) row pairs of each sequence in turn (groups of T - 1
        # rows, T*H apart): no rows to zero, any h
        if reverse:
            _team_gemm(done, True, False, H, H, B * (T - 1), one, h + H, H, dz, H, beta, dwh,
                       H, T - 1, T * H, T * H)
        else:
            _team_gemm(done, True, False, H, H, B * (T - 1), one, h, H, dz + H, H, beta, dwh,
                       H, T - 1, T * H, T * H)
    elif not reverse and _rows_finite(h + (T - 1) * H, B - 1, T * H, H):
        # Batch-major: pair every row of h with the next row of dz (one
        # product over B*T - 1 rows, no shifted copy of h), where the pairs
        # that cross from one sequence to the next, h[b, T-1] with dz[b+1, 0],
        # must not count: dz is not needed any more, so those rows are set to
        # zero and the pairs add exact zeros (unless h[b, T-1] is inf or NaN,
        # where 0 * h is NaN: then the per-step products below).
        for b in range(1, B):
            memset(dz + b * T * H, 0, H * sizeof(floating))
        _team_gemm(done, True, False, H, H, B * T - 1, one, h, H, dz + H, H, beta, dwh, H)
    else:
        for j in range(1, T):
            t = T - 1 - j if reverse else j
            prev = t + 1 if reverse else t - 1
            _team_gemm(done, True, False, H, H, B, one, h + prev * step, ld, dz + t * step, ld,
                       beta, dwh, H)
            beta = one


cdef void rnn_zero_unstarted_k(const unsigned char* mask, floating* a, Py_ssize_t B,
                               Py_ssize_t T, Py_ssize_t H, bint time_major,
                               bint reverse) noexcept nogil:
    """Zero the rows of ``a`` (B*T, H) at the steps a sequence takes before its
    first unmasked one (all of them for a sequence masked entirely).

    ``a`` and ``mask`` (B*T bytes) in the layout chosen by ``time_major``,
    indexed by input position; ``reverse``: the steps are taken from T-1 down.
    Keras's TensorFlow and torch backends output zeros there, where the
    states (and the JAX backend's outputs) hold h0: applied to a copy of the
    states it gives those outputs, and applied to dLoss/d(states) it drops
    the gradient of those constant outputs before :func:`rnn_backward_masked_k`.
    Nothing to do without a mask (NULL).
    """
    cdef Py_ssize_t b, k, t
    if mask == NULL:
        return
    for b in range(B):
        for k in range(T):
            t = T - 1 - k if reverse else k
            if _kept(mask, b, t, B, T, time_major):
                break
            memset(a + ((t * B + b) if time_major else (b * T + t)) * H, 0,
                   H * sizeof(floating))


cdef void rnn_backward_k(const floating* x, const floating* h, const floating* w,
                         const floating* wh, const floating* dh_seq, const floating* dh_last,
                         const floating* h0, floating* dz, floating* g, floating* wh_t,
                         floating* dx, floating* dw, floating* dwh, floating* db,
                         floating* dh0, Py_ssize_t B, Py_ssize_t T, Py_ssize_t D, Py_ssize_t H,
                         int act, bint time_major, bint reverse) noexcept nogil:
    """:func:`rnn_backward_masked_k` without masks (every step, no dropout)."""
    rnn_backward_masked_k(x, h, w, wh, dh_seq, dh_last, h0, dz, g, wh_t, NULL,
                          <const floating*>NULL, <const floating*>NULL, <floating*>NULL,
                          <floating*>NULL, dx, dw, dwh, db, dh0, B, T, D, H, act,
                          time_major, reverse)


# ---------------------------------------------------------------- dense

cdef void dense_forward_k(const floating* x, const floating* w, const floating* bias,
                          floating* y, Py_ssize_t N, Py_ssize_t D, Py_ssize_t U,
                          int act) noexcept nogil:
    """y = act(x W + b) for x (N, D), W (D, U), y (N, U); ``bias`` NULL for none."""
    cdef Py_ssize_t r
    cdef floating one = 1, beta = 0
    if N <= 0 or U <= 0:
        return
    if bias != NULL:
        fill_rows(y, bias, N, U)
        beta = 1
    gemm(False, False, N, U, D, one, x, D, w, U, beta, y, U)
    activate_rows(act, y, N, U, U)


cdef void dense_backward_k(const floating* x, const floating* w, const floating* y,
                           floating* dz, floating* dx, floating* dw, floating* db,
                           Py_ssize_t N, Py_ssize_t D, Py_ssize_t U, int act) noexcept nogil:
    """Backward of :func:`dense_forward_k`; ``dz`` holds dLoss/dy on entry, dLoss/dz after.

    dx = dz W^T (N, D) (NULL: not wanted), dw = x^T dz (D, U), db = sum dz
    (U,) (NULL: no bias); all overwritten.
    """
    cdef floating one = 1, zero = 0
    if U <= 0:
        if dx != NULL and N > 0 and D > 0:
            memset(dx, 0, N * D * sizeof(floating))
        return
    # y = act(z):  dz = dy * act'(z)
    activation_backward_rows(act, y, dz, N, U, U)
    # z = x W + b:  dW = x^T dz,  db = sum_rows dz,  dx = dz W^T
    gemm(True, False, D, U, N, one, x, D, dz, U, zero, dw, U)
    if db != NULL:
        column_sums(dz, N, U, db)
    if dx != NULL:
        gemm(False, True, N, D, U, one, dz, U, w, U, zero, dx, D)


# ---------------------------------------------------------------- Adam

cdef extern from *:
    """
    /* bit 31 (float) or 63 (double) of the result is set exactly when x is
       inf or NaN (its exponent bits all ones): an OR of these over a loop is
       a reduction without compares, which gcc vectorises */
    static inline uint32_t fr__nonfinite_bit_f(float x)
    { uint32_t u; memcpy(&u, &x, sizeof u); return (u & 0x7f800000u) + 0x00800000u; }
    static inline uint64_t fr__nonfinite_bit_d(double x)
    { uint64_t u; memcpy(&u, &x, sizeof u);
      return (u & 0x7ff0000000000000ull) + 0x0010000000000000ull; }
    """
    uint32_t fr__nonfinite_bit_f(float x) noexcept nogil
    uint64_t fr__nonfinite_bit_d(double x) noexcept nogil


cdef bint adam_k(floating* p, const floating* g, floating* m, floating* v, floating* vhat,
                 Py_ssize_t n, floating scale, floating lr_t, floating one_minus_beta_1,
                 floating one_minus_beta_2, floating epsilon, floating* backup) noexcept nogil:
    """Keras's Adam on flat buffers, in place (``vhat`` non-NULL: AMSGrad).

    With gi = scale * g[i] (scale 1 leaves g bit for bit), and 1 - beta_1,
    1 - beta_2 given as computed in double (as Keras computes them)::

        m += (1 - beta_1) (gi - m);   v += (1 - beta_2) (gi^2 - v)
        vhat = max(vhat, v)                                     (AMSGrad)
        p -= lr_t m / (sqrt(v or vhat) + epsilon)

    m and v below the smallest normal float are flushed to zero: they decay
    geometrically where a gradient stays 0, and denormal arithmetic costs
    ~100 cycles an operation (a tutorial step went from 2.4 to 40 us).
    Branch-free, so gcc vectorises it at -O3 (sqrt needs -fno-math-errno).

    ``backup`` (NULL: none) receives a copy of the values before the update
    in the engine's layout: p, m, v (and vhat) one after another, n each.
    Returns whether every updated p, m, v (and vhat) is finite: the
    engine's update check, taken in the update's own pass (an OR of the
    exponent bits, see fr__nonfinite_bit_f) instead of a pass over the
    buffers after it.
    """
    cdef Py_ssize_t i
    cdef floating gi, mi, vi, hi, pi
    cdef floating b1c = one_minus_beta_1, b2c = one_minus_beta_2
    cdef floating tiny = FLT_MIN if floating is float else DBL_MIN
    cdef uint32_t bad_f = 0             # float: bit 31 set once a value is not finite
    cdef uint64_t bad_d = 0             # double: bit 63
    if backup != NULL:
        memcpy(backup, p, n * sizeof(floating))
        memcpy(backup + n, m, n * sizeof(floating))
        memcpy(backup + 2 * n, v, n * sizeof(floating))
        if vhat != NULL:
            memcpy(backup + 3 * n, vhat, n * sizeof(floating))
    if vhat == NULL:
        for i in range(n):
            gi = g[i] * scale
            mi = m[i] + b1c * (gi - m[i])
            vi = v[i] + b2c * (gi * gi - v[i])
            mi = mi if _abs(mi) >= tiny else 0
            vi = vi if vi >= tiny else 0
            m[i] = mi
            v[i] = vi
            pi = p[i] - lr_t * mi / (_sqrt(vi) + epsilon)
            p[i] = pi
            if floating is float:
                bad_f |= (fr__nonfinite_bit_f(mi) | fr__nonfinite_bit_f(vi)
                          | fr__nonfinite_bit_f(pi))
            else:
                bad_d |= (fr__nonfinite_bit_d(mi) | fr__nonfinite_bit_d(vi)
                          | fr__nonfinite_bit_d(pi))
    else:                                           # AMSGrad
        for i in range(n):
            gi = g[i] * scale
            mi = m[i] + b1c * (gi - m[i])
            vi = v[i] + b2c * (gi * gi - v[i])
            mi = mi if _abs(mi) >= tiny else 0
            vi = vi if vi >= tiny else 0
            m[i] = mi
            v[i] = vi
            hi = vi if vi > vhat[i] else vhat[i]
            vhat[i] = hi
            pi = p[i] - lr_t * mi / (_sqrt(hi) + epsilon)
            p[i] = pi
            if floating is float:
                bad_f |= (fr__nonfinite_bit_f(mi) | fr__nonfinite_bit_f(vi)
                          | fr__nonfinite_bit_f(hi) | fr__nonfinite_bit_f(pi))
            else:
                bad_d |= (fr__nonfinite_bit_d(mi) | fr__nonfinite_bit_d(vi)
                          | fr__nonfinite_bit_d(hi) | fr__nonfinite_bit_d(pi))
    if floating is float:
        return (bad_f >> 31) == 0
    else:
        return (bad_d >> 63) == 0


# ---------------------------------------------------------------- def entry points (ops)

def rnn_forward(const floating[:, :, ::1] x, const floating[:, ::1] kernel,
                const floating[:, ::1] recurrent_kernel, const floating[::1] bias,
                h0, floating[:, :, ::1] h, recurrent_kernel_t, int activation,
                mask=None, dropout_mask=None, recurrent_dropout_mask=None,
                x_work=None, h_work=None, bint time_major=False, bint reverse=False):
    """Fill ``h`` with the forward recurrence; ``h0`` (B, H) or None.

    ``x`` (B, T, D) and ``h`` (B, T, H), or (T, B, .) when ``time_major``;
    ``reverse`` is Keras's go_backwards.  ``recurrent_kernel_t``: None, or an
    (H, H) work array of the dtype of ``h``.  ``mask``: None or a uint8 array
    laid out as x's first two axes; ``dropout_mask`` (B, D) and
    ``recurrent_dropout_mask`` (B, H): None or arrays of h's dtype, which then
    need the flat work arrays ``x_work`` (B*T*D) and ``h_work`` (B*H).
    Shapes are checked by the caller (work sizes again here); B, T >= 1.
    """
    cdef Py_ssize_t B = x.shape[1] if time_major else x.shape[0]
    cdef Py_ssize_t T = x.shape[0] if time_major else x.shape[1]
    cdef Py_ssize_t D = x.shape[2], H = h.shape[2]
    cdef const floating* h0p = NULL
    cdef floating* whtp = NULL
    cdef const unsigned char* maskp = NULL
    cdef const floating* dmp = NULL
    cdef const floating* rmp = NULL
    cdef floating* xdp = NULL
    cdef floating* hdp = NULL
    if H == 0:
        return
    if recurrent_kernel_t is not None:
        _check_work("recurrent_kernel_t", recurrent_kernel_t, H * H)
        whtp = _work_ptr(recurrent_kernel_t, bias)
    h0p = _opt_ptr(h0, bias)
    maskp = _mask_ptr(mask)
    if dropout_mask is not None:
        dmp = _opt_ptr(dropout_mask, bias)
        _check_work("x_work", x_work, B * T * D)
        xdp = _work_ptr(x_work, bias)
    if recurrent_dropout_mask is not None:
        rmp = _opt_ptr(recurrent_dropout_mask, bias)
        _check_work("h_work", h_work, B * H)
        hdp = _work_ptr(h_work, bias)
    with nogil:
        rnn_forward_masked_k(_ptr3(x), _ptr2(kernel), &recurrent_kernel[0, 0], &bias[0], h0p,
                             &h[0, 0, 0], whtp, maskp, dmp, rmp, xdp, hdp, B, T, D, H,
                             activation, time_major, reverse)


def rnn_backward(const floating[:, :, ::1] x, const floating[:, :, ::1] h,
                 const floating[:, ::1] kernel, const floating[:, ::1] recurrent_kernel,
                 const floating[:, :, ::1] dh, h0, floating[:, :, ::1] dz, dx,
                 floating[:, ::1] dkernel, floating[:, ::1] drecurrent_kernel, floating[::1] dbias,
                 floating[:, ::1] dh0, floating[:, ::1] carry, floating[:, ::1] recurrent_kernel_t,
                 int activation, mask=None, dropout_mask=None, recurrent_dropout_mask=None,
                 x_work=None, h_work=None, bint time_major=False, bint reverse=False):
    """BPTT into the preallocated gradients (every output overwritten).

    Layout, direction and masks as for :func:`rnn_forward`, except that
    ``h_work`` must hold B*T*H elements.  ``dz`` (shaped like h), ``carry``
    (B, H) and ``recurrent_kernel_t`` (H, H) are work space.  ``dx`` may be
    None: the input gradient is then not computed.  Shapes are checked by
    the caller (work sizes again here); B, T >= 1.
    """
    cdef Py_ssize_t B = x.shape[1] if time_major else x.shape[0]
    cdef Py_ssize_t T = x.shape[0] if time_major else x.shape[1]
    cdef Py_ssize_t D = x.shape[2], H = h.shape[2]
    cdef const floating* h0p = NULL
    cdef floating[:, :, ::1] dxv
    cdef floating* dxp = NULL
    cdef const unsigned char* maskp = NULL
    cdef const floating* dmp = NULL
    cdef const floating* rmp = NULL
    cdef floating* xdp = NULL
    cdef floating* hdp = NULL
    if dx is not None:
        dxv = dx
        dxp = _wptr3(dxv)
    if H == 0:
        if dxp != NULL:
            dxv[:, :, :] = 0
        return
    h0p = _opt_ptr(h0, dbias)
    if (recurrent_kernel_t.shape[0] != H or recurrent_kernel_t.shape[1] != H
            or carry.shape[0] != B or carry.shape[1] != H):
        raise ValueError(f"carry must have shape ({B}, {H}) and recurrent_kernel_t ({H}, {H})")
    maskp = _mask_ptr(mask)
    if dropout_mask is not None:
        dmp = _opt_ptr(dropout_mask, dbias)
        _check_work("x_work", x_work, B * T * D)
        xdp = _work_ptr(x_work, dbias)
    if recurrent_dropout_mask is not None:
        rmp = _opt_ptr(recurrent_dropout_mask, dbias)
        _check_work("h_work", h_work, B * T * H)
        hdp = _work_ptr(h_work, dbias)
    with nogil:
        rnn_backward_masked_k(_ptr3(x), &h[0, 0, 0], _ptr2(kernel), &recurrent_kernel[0, 0],
                              &dh[0, 0, 0], NULL, h0p, &dz[0, 0, 0], &carry[0, 0],
                              &recurrent_kernel_t[0, 0], maskp, dmp, rmp, xdp, hdp, dxp,
                              _wptr2(dkernel), &drecurrent_kernel[0, 0], &dbias[0], &dh0[0, 0],
                              B, T, D, H, activation, time_major, reverse)


def zero_unstarted_steps(floating[:, :, ::1] a, const unsigned char[:, ::1] mask,
                         bint time_major=False, bint reverse=False):
    """:func:`rnn_zero_unstarted_k` in place on ``a`` (B, T, H), or (T, B, H)
    when ``time_major``; ``mask`` shaped like a's first two axes (checked)."""
    cdef Py_ssize_t B = a.shape[1] if time_major else a.shape[0]
    cdef Py_ssize_t T = a.shape[0] if time_major else a.shape[1]
    if mask.shape[0] != a.shape[0] or mask.shape[1] != a.shape[1]:
        raise ValueError(f"mask must have shape {(a.shape[0], a.shape[1])}, "
                         f"got {(mask.shape[0], mask.shape[1])}")
    if a.shape[0] == 0 or a.shape[1] == 0 or a.shape[2] == 0:
        return
    with nogil:
        rnn_zero_unstarted_k(&mask[0, 0], &a[0, 0, 0], B, T, a.shape[2], time_major, reverse)


def _check_work(name, array, Py_ssize_t size):
    """A C-contiguous work array of at least ``size`` elements."""
    if array is None or not array.flags.c_contiguous or array.size < size:
        raise ValueError(f"{name} must be a C-contiguous work array of at least {size} "
                         f"elements, got {None if array is None else array.shape}")


cdef const floating* _opt_ptr(array, const floating[::1] like):
    """Pointer to the data of a C-contiguous array of like's dtype (None or empty: NULL)."""
    cdef const floating[::1] flat
    if array is None or array.size == 0:
        return NULL
    flat = array.reshape(-1)
    return &flat[0]


cdef floating* _work_ptr(array, const floating[::1] like):
    """Pointer to a writeable C-contiguous work array of like's dtype (empty: NULL)."""
    cdef floating[::1] flat = array.reshape(-1)
    if flat.shape[0] == 0:
        return NULL
    return &flat[0]


cdef const unsigned char* _mask_ptr(mask):
    """Pointer to a C-contiguous uint8 mask (None or empty: NULL)."""
    cdef const unsigned char[::1] flat
    if mask is None or mask.size == 0:
        return NULL
    flat = mask.reshape(-1)
    return &flat[0]


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


def dense_forward(const floating[:, ::1] x, const floating[:, ::1] kernel,
                  const floating[::1] bias, floating[:, ::1] y):
    """``y = x kernel + bias`` for x (N, D), kernel (D, U), y (N, U); N >= 0."""
    cdef Py_ssize_t N = x.shape[0], D = x.shape[1], U = kernel.shape[1]
    if N == 0 or U == 0:
        return
    with nogil:
        dense_forward_k(_ptr2(x), _ptr2(kernel), &bias[0], &y[0, 0], N, D, U, ACT_LINEAR)


def dense_backward(const floating[:, ::1] x, const floating[:, ::1] kernel,
                   floating[:, ::1] dy, floating[:, ::1] dx,
                   floating[:, ::1] dkernel, floating[::1] dbias):
    """dx = dy kernel^T, dkernel = x^T dy, dbias = sum dy (all overwritten).

    ``dy`` must be the caller's own copy (the kernel works on it in place).
    """
    cdef Py_ssize_t N = x.shape[0], D = x.shape[1], U = kernel.shape[1]
    cdef floating* dbp = &dbias[0] if U > 0 else NULL
    with nogil:
        dense_backward_k(_ptr2(x), _ptr2(kernel), NULL, _wptr2(dy), _wptr2(dx),
                         _wptr2(dkernel), dbp, N, D, U, ACT_LINEAR)


def activate(floating[:, ::1] z, int activation):
    """``z = act(z)`` in place over the rows of z (softmax-like ones per row)."""
    if z.shape[0] == 0 or z.shape[1] == 0:
        return
    with nogil:
        activate_rows(activation, &z[0, 0], z.shape[0], z.shape[1], z.shape[1])


def activation_backward(const floating[:, ::1] h, floating[:, ::1] g, int activation):
    """``g = dLoss/dz`` from ``g = dLoss/dh`` in place, ``h = act(z)``."""
    if h.shape[0] == 0 or h.shape[1] == 0:
        return
    with nogil:
        activation_backward_rows(activation, &h[0, 0], &g[0, 0], h.shape[0], h.shape[1],
                                 h.shape[1])


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


def adam_update(floating[::1] param, const floating[::1] grad, floating[::1] m,
                floating[::1] v, double lr_t, double beta_1, double beta_2,
                double epsilon):
    """Fused Adam over flat, contiguous, equally long buffers (in place).

    ``lr_t`` is the bias-corrected step size computed by the caller.
    """
    if param.shape[0] == 0:
        return
    with nogil:
        adam_k(&param[0], &grad[0], &m[0], &v[0], <floating*>NULL, param.shape[0],
               <floating>1, <floating>lr_t, <floating>(1 - beta_1), <floating>(1 - beta_2),
               <floating>epsilon, <floating*>NULL)


# ---------------------------------------------------------------- graph nodes without BLAS
# (Activation, Dropout, Flatten/Reshape, RepeatVector, Concatenate, the merges,
# Embedding).  Time-major buffers; ``acc`` adds into the destination (a
# gradient buffer that another consumer already wrote) instead of overwriting.

cdef void copy_or_add(floating* dst, const floating* src, Py_ssize_t n, bint acc) noexcept nogil:
    """dst = src, or dst += src with ``acc``."""
    cdef Py_ssize_t i
    if acc:
        for i in range(n):
            dst[i] += src[i]
    elif dst != src:
        memcpy(dst, src, n * sizeof(floating))


cdef void scale_into(floating* dst, const floating* src, Py_ssize_t n, floating alpha,
                     bint acc) noexcept nogil:
    """dst = alpha src, or dst += alpha src with ``acc`` (dst may be src)."""
    cdef Py_ssize_t i
    if acc:
        for i in range(n):
            dst[i] += alpha * src[i]
    else:
        for i in range(n):
            dst[i] = alpha * src[i]


cdef void multiply_into(floating* dst, const floating* a, const floating* b, Py_ssize_t n,
                        bint acc) noexcept nogil:
    """dst = a * b elementwise, or dst += a * b with ``acc`` (dst may be a or b)."""
    cdef Py_ssize_t i
    if acc:
        for i in range(n):
            dst[i] += a[i] * b[i]
    else:
        for i in range(n):
            dst[i] = a[i] * b[i]


cdef void copy_columns(const floating* src, Py_ssize_t src_ld, floating* dst, Py_ssize_t dst_ld,
                       Py_ssize_t rows, Py_ssize_t cols, bint acc) noexcept nogil:
    """``cols`` columns of ``rows`` rows from src (rows ``src_ld`` apart) to dst
    (rows ``dst_ld`` apart): Concatenate's forward (into a column block of
    its output) and backward (out of it)."""
    cdef Py_ssize_t r
    for r in range(rows):
        copy_or_add(dst + r * dst_ld, src + r * src_ld, cols, acc)


cdef void relayout_k(const floating* src, Py_ssize_t src_steps, Py_ssize_t src_width,
                     floating* dst, Py_ssize_t dst_steps, Py_ssize_t dst_width,
                     Py_ssize_t B, bint acc) noexcept nogil:
    """Re-cut every sample's values, read in row-major order, from
    (src_steps, src_width) into (dst_steps, dst_width) (time-major buffers,
    the same number of values per sample): Flatten and Reshape, and with the
    roles swapped their backward."""
    cdef Py_ssize_t b, n = src_steps * src_width, k, ts, fs, td, fd, run
    if src_width == dst_width:          # the same layout (static, or one width)
        copy_or_add(dst, src, B * n, acc)
        return
    for b in range(B):
        k = 0
        ts = 0
        fs = 0
        td = 0
        fd = 0
        while k < n:
            run = src_width - fs if src_width - fs < dst_width - fd else dst_width - fd
            copy_or_add(dst + (td * B + b) * dst_width + fd,
                        src + (ts * B + b) * src_width + fs, run, acc)
            k += run
            fs += run
            fd += run
            if fs == src_width:
                fs = 0
                ts += 1
            if fd == dst_width:
                fd = 0
                td += 1


cdef void repeat_forward_k(const floating* x, floating* out, Py_ssize_t block,
                           Py_ssize_t n) noexcept nogil:
    """RepeatVector: out[t] = x for n time-major blocks of ``block`` (= B*F) values."""
    cdef Py_ssize_t t
    for t in range(n):
        memcpy(out + t * block, x, block * sizeof(floating))


cdef void repeat_backward_k(const floating* dout, floating* dx, Py_ssize_t block,
                            Py_ssize_t n, bint acc) noexcept nogil:
    """dx = sum_t dout[t] (out[t] = x for every t), or dx += it with ``acc``."""
    cdef Py_ssize_t t, i
    cdef const floating* d
    if not acc:
        memset(dx, 0, block * sizeof(floating))
    for t in range(n):
        d = dout + t * block
        for i in range(block):
            dx[i] += d[i]


cdef inline bint _valid_index(floating v, Py_ssize_t V) noexcept nogil:
    # Keras casts indices to int32 (truncation toward zero): v in (-1, V)
    # gives a row in [0, V); NaN fails both comparisons.
    return v > -1 and v < V


cdef Py_ssize_t first_bad_index(const floating* idx, Py_ssize_t n, Py_ssize_t V) noexcept nogil:
    """The position of the first value that is not a valid row of a V-row
    table after truncation (NaN included), or -1 when all are valid."""
    cdef Py_ssize_t i
    for i in range(n):
        if not _valid_index(idx[i], V):
            return i
    return -1


cdef void embedding_forward_k(const floating* idx, const floating* table, floating* out,
                              Py_ssize_t rows, Py_ssize_t V, Py_ssize_t E) noexcept nogil:
    """out[r] = table[int(idx[r])] for ``rows`` rows; table (V, E).

    Callers check the indices first (:func:`first_bad_index`); an invalid one
    still reads nothing outside the table: its row is zeros.
    """
    cdef Py_ssize_t r
    cdef floating v
    for r in range(rows):
        v = idx[r]
        if _valid_index(v, V):
            memcpy(out + r * E, table + (<Py_ssize_t>v) * E, E * sizeof(floating))
        else:
            memset(out + r * E, 0, E * sizeof(floating))


cdef void embedding_backward_k(const floating* idx, const floating* dout, floating* dtable,
                               Py_ssize_t rows, Py_ssize_t V, Py_ssize_t E) noexcept nogil:
    """dtable (V, E) = the scatter-add of the rows of dout at their indices
    (overwritten; rows never indexed get zeros)."""
    cdef Py_ssize_t r, j
    cdef floating v
    cdef floating* row
    cdef const floating* d
    memset(dtable, 0, V * E * sizeof(floating))
    for r in range(rows):
        v = idx[r]
        if _valid_index(v, V):
            row = dtable + (<Py_ssize_t>v) * E
            d = dout + r * E
            for j in range(E):
                row[j] += d[j]


cdef inline unsigned long long _mix64(unsigned long long z) noexcept nogil:
    # splitmix64's finaliser: a bijection that scrambles every bit
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef void dropout_mask_k(floating* mask, Py_ssize_t B, Py_ssize_t steps, Py_ssize_t width,
                         unsigned long long seed, unsigned long long counter,
                         double rate) noexcept nogil:
    """Keras's inverted-dropout mask for a (B, steps, width) batch, time-major:
    1/(1 - rate) where kept, 0 where dropped (all 0 for rate 1).

    Element i (in batch-major order, i = (b*steps + t)*width + f) draws
    u = mix64(mix64(seed) + (counter + i + 1) * golden) / 2**64, the
    splitmix64 stream of the seed from position ``counter``, and is kept
    when u < 1 - rate (the NumPy reference draws the same numbers).
    """
    cdef Py_ssize_t b, t, f, i
    cdef unsigned long long key = _mix64(seed), golden = 0x9E3779B97F4A7C15ULL
    cdef double keep = 1.0 - rate, u
    cdef floating scale = <floating>(1.0 / keep) if keep > 0 else 0
    cdef floating* row
    for t in range(steps):
        for b in range(B):
            row = mask + (t * B + b) * width
            i = (b * steps + t) * width
            for f in range(width):
                u = <double>(_mix64(key + (counter + <unsigned long long>(i + f) + 1) * golden)
                             >> 11) * (1.0 / 9007199254740992.0)
                row[f] = scale if u < keep else 0
