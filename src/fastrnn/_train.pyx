# cython: language_level=3
"""Compiled fused training step: SimpleRNN -> Dense -> loss -> BPTT -> Adam.

One call per batch does the whole training step on preallocated buffers with
the GIL released: forward recurrence, Dense output, mse/mae, gradients of
every parameter into the model's flat ``grads`` buffer, optional Keras-style
gradient clipping and a Keras Adam update of the flat ``params``/``m``/``v``.
``run_epoch`` loops over all batches of a bound training set in C.

Two levels, as in ``_kernels``: the ``RNNDenseTrainer`` methods check every
buffer they are given (type, dtype, shape, contiguity, writability) before any
compiled loop, cheaply, via the buffer protocol (typed memoryviews cost
~0.35 us per argument, which matters at tutorial size); the ``cdef ...
noexcept nogil`` functions below work on raw pointers and check nothing.
The friendly, documented entry point is :mod:`fastrnn.fused`.

Internal layout is time-major: row ``t*B + b`` of a (T*B, n) work buffer
belongs to sample ``b`` at step ``t``.  That makes the input projection and
the weight gradients single products over all B*T rows (``dW_h`` pairs rows
``0..(T-1)B`` of the states with rows ``B..TB`` of ``dz``) and every time
slice a contiguous (B, H) block.  Products go through BLAS (``scipy.linalg.cython_blas``,
one fused float/double body); ``kernel="loops"`` selects direct loops written
so that gcc vectorises the innermost loop at -O3, where the recurrent products
``A @ W.T`` become ``A @ WT`` with a transposed copy of the weights.  Measured,
OpenBLAS's small-matrix sgemm beats these loops even at tutorial size, so
"auto" means BLAS (see BLAS_MIN_UNITS).
"""
from libc.math cimport sqrt, sqrtf, fabs, pow as c_pow
from libc.math cimport isfinite
from libc.string cimport memset, memcpy
from libc.stdint cimport int64_t
from cpython.buffer cimport (PyObject_GetBuffer, PyBuffer_Release, PyBUF_STRIDES,
                             PyBUF_FORMAT, PyBUF_WRITABLE)

from scipy.linalg.cython_blas cimport sgemm, dgemm

import numpy as np

from fastrnn.errors import NonFiniteTrainingError

cdef extern from *:
    """
    /* Flush denormals to zero (FTZ) and treat denormal inputs as zero (DAZ) for
       the duration of a call, as TensorFlow/Keras does on the CPU.  Adam's m
       and v decay geometrically and, once gradients are tiny, sit in the
       denormal range where every float operation costs ~100 cycles (measured:
       a tutorial-sized step went from 2.4 us to 40 us).  MXCSR is restored on
       exit.  x86 only; elsewhere a no-op. */
    #if defined(__SSE__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 1)
    #include <xmmintrin.h>
    static inline unsigned int fr_ftz_enter(int on) {
        unsigned int old = _mm_getcsr();
        if (on) _mm_setcsr(old | 0x8040u);
        return old;
    }
    static inline void fr_ftz_exit(unsigned int old) { _mm_setcsr(old); }
    #else
    static inline unsigned int fr_ftz_enter(int on) { (void)on; return 0u; }
    static inline void fr_ftz_exit(unsigned int old) { (void)old; }
    #endif
    """
    unsigned int fr_ftz_enter(int on) noexcept nogil
    void fr_ftz_exit(unsigned int old) noexcept nogil

ctypedef void (*blas_set_fn)(int) noexcept nogil
ctypedef int (*blas_get_fn)() noexcept nogil

ctypedef fused floating:
    float
    double

# kernel="auto" uses BLAS when H > BLAS_MIN_UNITS, direct loops otherwise.  Measured
# (float32, 2-core Xeon, OpenBLAS from scipy): OpenBLAS's small-matrix sgemm beats
# these plain loops 2-3x at every training shape tried (H 8..128, B 8..32, T 3..50);
# the loops only tie at B=1.  So auto is BLAS everywhere until a register-blocked
# small-H kernel exists (phase 2).
BLAS_MIN_UNITS = 0
cdef Py_ssize_t _blas_min_units = BLAS_MIN_UNITS

# On the BLAS path, a product with an inner or output dimension <= SMALL_DIM runs
# as direct loops instead.  Measured in one process, A/B interleaved, float32,
# 1 thread: 0 is best -- at S1 (D=1, U=1) a cut-off of 4 made the step 9.2 ->
# 11.9 us: the direct loops lose even on D=1 / U=1 products.  Kept as a tuning hook.
cdef Py_ssize_t SMALL_DIM = 0


def _set_small_dim(Py_ssize_t n):
    """Tuning hook (benchmarks only): the small-dimension cut-off above."""
    global SMALL_DIM
    SMALL_DIM = n

cdef enum:
    ACT_TANH = 0
    ACT_RELU = 1
    LOSS_MSE = 0
    LOSS_MAE = 1
    CLIP_NONE = 0
    CLIP_NORM = 1
    CLIP_GLOBAL = 2
    CLIP_VALUE = 3
    MAX_SEG = 5


cdef struct State:
    int dbl                     # 1: double, 0: float
    int act, loss, clip
    bint use_bias, dense_bias, seq, blas, ftz
    Py_ssize_t D, H, U
    Py_ssize_t capB, capT       # work buffers hold capB*capT rows
    # the model's flat buffers (held by Py_buffer views in the owner)
    char* params
    char* grads
    char* m
    char* v
    Py_ssize_t n_params
    Py_ssize_t off_k, off_rk, off_b, off_dk, off_db   # -1: absent
    int n_seg
    Py_ssize_t seg_off[MAX_SEG]
    Py_ssize_t seg_len[MAX_SEG]
    # work buffers (owned by numpy arrays in the owner)
    char* xs     # (T, B, D)
    char* hs     # (T, B, H)
    char* dz     # (T, B, H)
    char* g      # (B, H)   carry dz_{t+1} W_h^T
    char* yp     # (T*B or B, U) prediction
    char* yt     # (T*B or B, U) target
    char* dy     # (T*B or B, U) dLoss/dy
    char* whT    # (H, H) W_h^T  (loop path)
    char* wdT    # (U, H) W_d^T  (loop path)
    # Adam
    double lr, beta_1, beta_2, epsilon, clip_c
    long long iterations
    int bad                     # last step: 0 ok, 1 non-finite loss, 2 non-finite gradient
    Py_ssize_t bad_batch        # run_epoch: index of the batch that set bad
    double bad_loss             # its loss
    # BLAS threads for the compiled calls (blas_threads 0: leave BLAS alone)
    int blas_threads
    int blas_outer              # the caller's count while inside a call (0: not changed)
    blas_set_fn blas_set
    blas_get_fn blas_get
    # the training set bound for run_epoch
    char* X      # (N, T, D)
    char* Y      # (N, U) or (N, T, U)
    Py_ssize_t N, T


cdef inline int _threads_enter(State* s) noexcept nogil:
    # set BLAS to s.blas_threads for this call; returns the count to restore (0: none)
    cdef int old
    if s.blas_threads <= 0 or s.blas_set == NULL or s.blas_get == NULL:
        return 0
    old = s.blas_get()
    if old == s.blas_threads:
        return 0
    s.blas_set(s.blas_threads)
    s.blas_outer = old
    return old


cdef inline void _threads_exit(State* s, int old) noexcept nogil:
    s.blas_outer = 0
    if old > 0:
        s.blas_set(old)


# A product over all B*T rows with at least BIG_PRODUCT_FLOPS runs on the caller's
# BLAS thread count even while the call has lowered it (the merged products gain
# from a second thread where the ~T small recurrent ones lose).
# The BPTT carry uses a transposed copy of W_h below this many units (see _backward).
cdef Py_ssize_t CARRY_COPY_UNITS = 256

cdef double BIG_PRODUCT_FLOPS = 4e6


def _set_big_product_flops(double n):
    """Tuning hook (benchmarks only): the threshold above."""
    global BIG_PRODUCT_FLOPS
    BIG_PRODUCT_FLOPS = n


cdef inline bint _big_enter(State* s, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K) noexcept nogil:
    if s.blas_outer > 1 and 2.0 * M * N * K >= BIG_PRODUCT_FLOPS:
        s.blas_set(s.blas_outer)
        return True
    return False


cdef inline void _big_exit(State* s, bint raised) noexcept nogil:
    if raised:
        s.blas_set(s.blas_threads)


# The activation: fastmath.h's branch-free tanh, vectorised (and AVX2-dispatched
# at load time) over a whole time slice; libm's scalar tanhf cost ~23 ns/element.
cdef extern from "fastmath.h" nogil:
    void fr_tanhf_inplace(float* a, Py_ssize_t n)
    void fr_tanh_inplace(double* a, Py_ssize_t n)


cdef inline floating _sqrt(floating z) noexcept nogil:
    if floating is float:
        return sqrtf(z)
    else:
        return sqrt(z)


cdef inline void _activate(int act, floating* h, Py_ssize_t n) noexcept nogil:
    # h_t = act(z_t), in place
    cdef Py_ssize_t i
    if act == ACT_TANH:
        if floating is float:
            fr_tanhf_inplace(h, n)
        else:
            fr_tanh_inplace(h, n)
    else:
        for i in range(n):
            if h[i] < 0:
                h[i] = 0


cdef inline void _gemm(char ta, char tb, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                       const floating* A, Py_ssize_t lda, const floating* Bm,
                       Py_ssize_t ldb, floating beta, floating* C,
                       Py_ssize_t ldc) noexcept nogil:
    # Row-major C(M,N) = op(A) op(B) + beta C, as column-major C^T = op(B)^T op(A)^T.
    cdef int m = <int>N, n = <int>M, k = <int>K
    cdef int la = <int>lda, lb = <int>ldb, lc = <int>ldc
    cdef floating one = 1
    if floating is float:
        sgemm(&tb, &ta, &m, &n, &k, &one, <float*>Bm, &lb, <float*>A, &la, &beta, C, &lc)
    else:
        dgemm(&tb, &ta, &m, &n, &k, &one, <double*>Bm, &lb, <double*>A, &la, &beta, C, &lc)


cdef inline void _mm_nn(bint blas, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                        const floating* A, Py_ssize_t lda, const floating* Bm,
                        Py_ssize_t ldb, bint accumulate, floating* C,
                        Py_ssize_t ldc) noexcept nogil:
    # C(M,N) (+)= A(M,K) @ B(K,N), all row-major
    cdef Py_ssize_t i, j, k
    cdef floating a
    cdef floating* c
    cdef const floating* b
    if M == 0 or N == 0:
        return
    if blas and K > SMALL_DIM and N > SMALL_DIM:
        _gemm(c'N', c'N', M, N, K, A, lda, Bm, ldb, <floating>(1 if accumulate else 0), C, ldc)
        return
    for i in range(M):
        c = C + i * ldc
        if not accumulate:
            for j in range(N):
                c[j] = 0
        for k in range(K):
            a = A[i * lda + k]
            b = Bm + k * ldb
            for j in range(N):            # axpy: vectorised over j
                c[j] += a * b[j]


cdef inline void _mm_tn(bint blas, Py_ssize_t M, Py_ssize_t K, Py_ssize_t N,
                        const floating* A, Py_ssize_t lda, const floating* Bm,
                        Py_ssize_t ldb, floating* C, Py_ssize_t ldc) noexcept nogil:
    # C(K,N) = A(M,K)^T @ B(M,N): a weight gradient summed over M rows
    cdef Py_ssize_t r, j, k
    cdef floating a
    cdef floating* c
    cdef const floating* b
    if K == 0 or N == 0:
        return
    if blas and M > 0 and K > SMALL_DIM and N > SMALL_DIM:
        _gemm(c'T', c'N', K, N, M, A, lda, Bm, ldb, <floating>0, C, ldc)
        return
    for k in range(K):
        memset(C + k * ldc, 0, N * sizeof(floating))
    for r in range(M):
        b = Bm + r * ldb
        for k in range(K):
            a = A[r * lda + k]
            c = C + k * ldc
            for j in range(N):            # rank-1 update, vectorised over j
                c[j] += a * b[j]


cdef inline void _mm_nt(State* s, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                        const floating* A, const floating* W, const floating* WT,
                        floating* C) noexcept nogil:
    # C(M,N) = A(M,K) @ W(N,K)^T; the loop path uses the transposed copy WT (K,N)
    if M == 0 or N == 0:
        return
    if s.blas and K > SMALL_DIM and N > SMALL_DIM:
        _gemm(c'N', c'T', M, N, K, A, K, W, K, <floating>0, C, N)
    else:
        _mm_nn(0, M, N, K, A, K, WT, N, 0, C, N)


cdef inline void _transpose(const floating* W, Py_ssize_t rows, Py_ssize_t cols,
                            floating* WT) noexcept nogil:
    cdef Py_ssize_t i, j
    for i in range(rows):
        for j in range(cols):
            WT[j * rows + i] = W[i * cols + j]


cdef void _gather(State* s, floating* tag, const floating* X, const floating* Y,
                  const int64_t* order, Py_ssize_t start, Py_ssize_t B,
                  Py_ssize_t T) noexcept nogil:
    # xs[t, i, :] = X[order[start+i], t, :]; yt likewise (time-major). Y may be NULL.
    cdef Py_ssize_t i, t, n
    cdef Py_ssize_t D = s.D, U = s.U
    cdef floating* xs = <floating*>s.xs
    cdef floating* yt = <floating*>s.yt
    for i in range(B):
        n = order[start + i] if order != NULL else start + i
        for t in range(T):
            memcpy(xs + (t * B + i) * D, X + (n * T + t) * D, D * sizeof(floating))
        if Y != NULL:
            if s.seq:
                for t in range(T):
                    memcpy(yt + (t * B + i) * U, Y + (n * T + t) * U, U * sizeof(floating))
            else:
                memcpy(yt + i * U, Y + n * U, U * sizeof(floating))


cdef void _forward(State* s, floating* tag, Py_ssize_t B, Py_ssize_t T) noexcept nogil:
    # hs <- states for xs; yp <- Dense output (last state, or every state)
    cdef Py_ssize_t D = s.D, H = s.H, U = s.U, R = T * B, BH = B * H
    cdef Py_ssize_t r, j, t, rows
    cdef floating* P = <floating*>s.params
    cdef floating* hs = <floating*>s.hs
    cdef floating* yp = <floating*>s.yp
    cdef const floating* bias
    cdef const floating* hsel
    cdef bint big
    # z = x W_x (+ b) for all T*B rows in one product
    big = _big_enter(s, R, H, D)
    _mm_nn(s.blas, R, H, D, <floating*>s.xs, D, P + s.off_k, H, 0, hs, H)
    _big_exit(s, big)
    if s.use_bias:
        bias = P + s.off_b
        for r in range(R):
            for j in range(H):
                hs[r * H + j] += bias[j]
    # h_0 = act(z_0);  h_t = act(z_t + h_{t-1} W_h)   (h_{-1} = 0)
    _activate(s.act, hs, BH)
    for t in range(1, T):
        _mm_nn(s.blas, B, H, H, hs + (t - 1) * BH, H, P + s.off_rk, H, 1, hs + t * BH, H)
        _activate(s.act, hs + t * BH, BH)
    # y = h W_d + b_d  on the last state (or on every state)
    rows = R if s.seq else B
    hsel = hs if s.seq else hs + (T - 1) * BH
    _mm_nn(s.blas, rows, U, H, hsel, H, P + s.off_dk, U, 0, yp, U)
    if s.dense_bias:
        bias = P + s.off_db
        for r in range(rows):
            for j in range(U):
                yp[r * U + j] += bias[j]


cdef inline void _column_sums(const floating* a, Py_ssize_t rows, Py_ssize_t cols,
                              floating* out) noexcept nogil:
    # out[j] = sum_r a[r, j], four rows per pass: a quarter of the load->add->store
    # round trips on out that bound the one-row loop (~1600 rows at S2)
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


cdef double _loss_grad(State* s, floating* tag, Py_ssize_t n) noexcept nogil:
    # loss = mean(f(yp - yt)); dy = f'(yp - yt) / n   (n: all output elements)
    cdef Py_ssize_t i
    cdef floating d, nf = <floating>n
    cdef double acc = 0
    cdef const floating* yp = <floating*>s.yp
    cdef const floating* yt = <floating*>s.yt
    cdef floating* dy = <floating*>s.dy
    if s.loss == LOSS_MSE:
        for i in range(n):
            d = yp[i] - yt[i]
            acc += d * d
            dy[i] = (2 * d) / nf
    else:
        for i in range(n):
            d = yp[i] - yt[i]
            acc += fabs(d)
            dy[i] = <floating>((d > 0) - (d < 0)) / nf
    return acc / n


cdef void _backward(State* s, floating* tag, Py_ssize_t B, Py_ssize_t T) noexcept nogil:
    # every gradient segment of the flat grads buffer, from dy
    cdef Py_ssize_t D = s.D, H = s.H, U = s.U, R = T * B, BH = B * H
    cdef Py_ssize_t r, i, j, t, rows
    cdef floating* P = <floating*>s.params
    cdef floating* G = <floating*>s.grads
    cdef floating* hs = <floating*>s.hs
    cdef floating* dz = <floating*>s.dz
    cdef floating* g = <floating*>s.g
    cdef floating* dy = <floating*>s.dy
    cdef floating* whT = <floating*>s.whT
    cdef floating* wdT = <floating*>s.wdT
    cdef floating* dzt
    cdef const floating* ht
    cdef const floating* Wh = P + s.off_rk
    cdef const floating* Wd = P + s.off_dk
    cdef floating* gb
    cdef const floating* hsel
    cdef bint big
    rows = R if s.seq else B
    hsel = hs if s.seq else hs + (T - 1) * BH
    # The carry g = dz_t W_h^T runs as dz_t @ (a transposed copy of W_h) below
    # CARRY_COPY_UNITS: OpenBLAS's "NN" form beats its "TN" form there (one
    # thread, B = 32: 10.7 vs 14.5 us at H = 128, 1.05 vs 1.21 us at H = 20);
    # from 256 units on "TN", the product on W_h itself, is the faster one.
    cdef bint carry_copy = not s.blas or H <= SMALL_DIM or H < CARRY_COPY_UNITS
    if carry_copy:
        _transpose(Wh, H, H, whT)
    if not s.blas or H <= SMALL_DIM or U <= SMALL_DIM:
        _transpose(Wd, H, U, wdT)
    # Dense: dW_d = h^T dy;  db_d = sum dy;  dh = dy W_d^T
    _mm_tn(s.blas, rows, H, U, hsel, H, dy, U, G + s.off_dk, U)
    if s.dense_bias:
        gb = G + s.off_db
        memset(gb, 0, U * sizeof(floating))
        for r in range(rows):
            for j in range(U):
                gb[j] += dy[r * U + j]
    if s.seq:
        _mm_nt(s, R, H, U, dy, Wd, wdT, dz)       # dh_t for every step, into dz
        memset(g, 0, BH * sizeof(floating))
    else:
        _mm_nt(s, B, H, U, dy, Wd, wdT, g)        # dh_{T-1}: only the last state
    # BPTT, walking time backwards (inverts h_t = act(z_t + h_{t-1} W_h)):
    #   dz_t = (dh_t + g) * act'(h_t);   g = dz_t W_h^T
    for t in range(T - 1, -1, -1):
        ht = hs + t * BH
        dzt = dz + t * BH
        if s.act == ACT_TANH:
            if s.seq:
                for i in range(BH):
                    dzt[i] = (dzt[i] + g[i]) * (<floating>1 - ht[i] * ht[i])
            else:
                for i in range(BH):
                    dzt[i] = g[i] * (<floating>1 - ht[i] * ht[i])
        else:
            if s.seq:
                for i in range(BH):
                    dzt[i] = (dzt[i] + g[i]) * (<floating>(ht[i] > 0))
            else:
                for i in range(BH):
                    dzt[i] = g[i] * (<floating>(ht[i] > 0))
        if t > 0:
            if carry_copy:
                _mm_nn(s.blas, B, H, H, dzt, H, whT, H, 0, g, H)
            else:
                _mm_nt(s, B, H, H, dzt, Wh, whT, g)
    # merged weight gradients over all rows (inverts z = x W_x + h_prev W_h + b)
    big = _big_enter(s, R, D, H)
    _mm_tn(s.blas, R, D, H, <floating*>s.xs, D, dz, H, G + s.off_k, H)
    _big_exit(s, big)
    if T > 1:
        big = _big_enter(s, R - B, H, H)
        _mm_tn(s.blas, R - B, H, H, hs, H, dz + BH, H, G + s.off_rk, H)
        _big_exit(s, big)
    else:
        memset(G + s.off_rk, 0, H * H * sizeof(floating))
    if s.use_bias:
        gb = G + s.off_b
        _column_sums(dz, R, H, gb)


cdef inline void _adam_seg(floating* p, const floating* gr, floating* m, floating* v,
                           Py_ssize_t n, floating scale, floating lr_t, floating b1c,
                           floating b2c, floating eps) noexcept nogil:
    # m += (1-b1)(g-m);  v += (1-b2)(g^2-v);  p -= lr_t m / (sqrt(v)+eps),  g = scale*grad
    # Branch-free: gcc vectorises it at -O3 (sqrt needs -fno-math-errno, see setup.py).
    # scale == 1 leaves g bit-for-bit unchanged.
    cdef Py_ssize_t i
    cdef floating gi, mi, vi
    for i in range(n):
        gi = gr[i] * scale
        mi = m[i] + b1c * (gi - m[i])
        vi = v[i] + b2c * (gi * gi - v[i])
        m[i] = mi
        v[i] = vi
        p[i] -= lr_t * mi / (_sqrt(vi) + eps)


cdef inline double _sumsq(const floating* a, Py_ssize_t n) noexcept nogil:
    # sum of squares accumulated in double (4 partial sums, so it vectorises)
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


cdef int _adam(State* s, floating* tag) noexcept nogil:
    # Keras Adam on the flat buffers, gradients clipped first (Keras order).
    #   lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)
    #   m += (1-b1)(g-m);  v += (1-b2)(g^2-v);  p -= lr_t m / (sqrt(v)+eps)
    # Returns 0 without touching params/m/v/iterations when the gradient is not
    # finite (its squared norm, summed in double, is inf or NaN); 1 after the update.
    cdef Py_ssize_t i, k, off, n
    cdef floating* p = <floating*>s.params
    cdef floating* gr = <floating*>s.grads
    cdef floating* m = <floating*>s.m
    cdef floating* v = <floating*>s.v
    cdef floating gi, scale = 1, c = <floating>s.clip_c
    cdef double l2, norm, step
    cdef floating lr_t, b1c, b2c, eps
    l2 = _sumsq(gr, s.n_params)
    if not isfinite(l2):
        return 0
    s.iterations += 1
    step = <double>s.iterations
    lr_t = <floating>(s.lr * sqrt(1 - c_pow(s.beta_2, step)) / (1 - c_pow(s.beta_1, step)))
    b1c = <floating>(1 - s.beta_1)
    b2c = <floating>(1 - s.beta_2)
    eps = <floating>s.epsilon
    if s.clip == CLIP_GLOBAL:
        # rescale everything when the joint norm exceeds c; below it, g is untouched
        norm = sqrt(l2)
        if norm > s.clip_c:
            scale = <floating>(s.clip_c / norm)
    elif s.clip == CLIP_VALUE:
        # elementwise, on the fly: the grads buffer keeps the raw gradients
        for i in range(s.n_params):
            gi = gr[i]
            if gi < -c:
                gi = -c
            elif gi > c:
                gi = c
            m[i] += b1c * (gi - m[i])
            v[i] += b2c * (gi * gi - v[i])
            p[i] -= lr_t * m[i] / (_sqrt(v[i]) + eps)
        return 1
    for k in range(s.n_seg):
        off = s.seg_off[k]
        n = s.seg_len[k]
        if s.clip == CLIP_NORM:
            # per variable: rescale to norm c when its own norm exceeds c
            norm = sqrt(_sumsq(gr + off, n))
            scale = <floating>(s.clip_c / norm) if norm > s.clip_c else 1
        _adam_seg(p + off, gr + off, m + off, v + off, n, scale, lr_t, b1c, b2c, eps)
    return 1


cdef double _train_batch(State* s, floating* tag, Py_ssize_t B, Py_ssize_t T) noexcept nogil:
    # xs and yt already gathered: forward, loss, backward, Adam.  A non-finite loss
    # or gradient sets s.bad (1 loss, 2 gradient) and leaves params/m/v/iterations alone.
    cdef Py_ssize_t n = (T * B if s.seq else B) * s.U
    cdef double loss
    s.bad = 0
    _forward(s, tag, B, T)
    loss = _loss_grad(s, tag, n)
    s.bad_loss = loss
    if not isfinite(loss):
        s.bad = 1
        return loss
    _backward(s, tag, B, T)
    if not _adam(s, tag):
        s.bad = 2
    return loss


cdef double _epoch(State* s, floating* tag, const int64_t* order, Py_ssize_t L,
                   Py_ssize_t batch_size, double* losses) noexcept nogil:
    # every batch of the bound set in the given order; returns the sample-weighted
    # mean.  Stops at the first non-finite batch: s.bad set, s.bad_batch its index.
    cdef Py_ssize_t start = 0, B, k = 0
    cdef double total = 0
    while start < L:
        B = min(batch_size, L - start)
        _gather(s, tag, <floating*>s.X, <floating*>s.Y, order, start, B, s.T)
        losses[k] = _train_batch(s, tag, B, s.T)
        if s.bad:
            s.bad_batch = k
            return total / start if start else losses[k]
        total += losses[k] * B
        start += B
        k += 1
    return total / L


cdef void _predict(State* s, floating* tag, const floating* x, Py_ssize_t N,
                   Py_ssize_t T, floating* out) noexcept nogil:
    # forward only, in chunks of at most capB samples
    cdef Py_ssize_t start = 0, B, i, t, U = s.U
    cdef floating* yp = <floating*>s.yp
    while start < N:
        B = min(s.capB, N - start)
        _gather(s, tag, x, NULL, NULL, start, B, T)
        _forward(s, tag, B, T)
        if s.seq:
            for i in range(B):
                for t in range(T):
                    memcpy(out + ((start + i) * T + t) * U, yp + (t * B + i) * U,
                           U * sizeof(floating))
        else:
            memcpy(out + start * U, yp, B * U * sizeof(floating))
        start += B


# ---------------------------------------------------------------------------
# Buffer checks (with the GIL), cheap: the buffer protocol, no memoryviews.

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
    """Acquire a C-contiguous buffer of `itemsize` floats with the given shape
    (shape[k] < 0: any).  Raises TypeError/ValueError naming `name`."""
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
            want = ("float32 or float64" if itemsize == 0 else
                    ("float32" if itemsize == 4 else "float64"))
            raise TypeError(f"{name} must have dtype {want} (the trainer's dtype), "
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


cdef inline bint _overlaps(Py_buffer* a, Py_buffer* b):
    cdef char* a0 = <char*>a.buf
    cdef char* b0 = <char*>b.buf
    return a0 < b0 + b.len and b0 < a0 + a.len and a.len > 0 and b.len > 0


cdef class RNNDenseTrainer:
    """Fused training step for SimpleRNN -> Dense -> mse/mae -> Adam.

    Low level: use :class:`fastrnn.fused.FusedTrainer`, which documents the
    arguments and validates the configuration.  Every method here checks the
    buffers it is given; nothing unchecked reaches a compiled loop.
    """
    cdef State s
    cdef Py_buffer pb_params, pb_grads, pb_m, pb_v, pb_X, pb_Y
    cdef bint have_model, have_data, busy
    cdef int itemsize
    cdef object _work, _dtype

    def __cinit__(self):
        self.have_model = False
        self.have_data = False
        self.busy = False

    def __init__(self, params, grads, m, v, Py_ssize_t input_dim, Py_ssize_t units,
                 Py_ssize_t output_units, str activation="tanh", bint use_bias=True,
                 bint dense_use_bias=True, bint return_sequences=False, str loss="mse",
                 double learning_rate=0.001, double beta_1=0.9, double beta_2=0.999,
                 double epsilon=1e-7, str clip="none", double clip_value=0.0,
                 long long iterations=0, Py_ssize_t batch_size=32,
                 Py_ssize_t timesteps=1, str kernel="auto", bint flush_denormals=True,
                 int blas_threads=0, size_t blas_set_addr=0, size_t blas_get_addr=0):
        cdef Py_ssize_t shp[1]
        cdef Py_ssize_t D = input_dim, H = units, U = output_units, off
        cdef State* s
        cdef Py_buffer* views[4]
        cdef int i, j
        if self.have_model:
            raise RuntimeError("RNNDenseTrainer is already initialised")
        if D < 1 or H < 1 or U < 1:
            raise ValueError(f"input_dim, units and output_units must be >= 1, "
                             f"got {D}, {H}, {U}")
        if batch_size < 1 or timesteps < 1:
            raise ValueError(f"batch_size and timesteps must be >= 1, got "
                             f"{batch_size}, {timesteps}")
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu', got {activation!r}")
        if loss not in ("mse", "mae"):
            raise ValueError(f"loss must be 'mse' or 'mae', got {loss!r}")
        if clip not in ("none", "clipnorm", "global_clipnorm", "clipvalue"):
            raise ValueError(f"clip must be 'none', 'clipnorm', 'global_clipnorm' or "
                             f"'clipvalue', got {clip!r}")
        if kernel not in ("auto", "loops", "blas"):
            raise ValueError(f"kernel must be 'auto', 'loops' or 'blas', got {kernel!r}")
        if clip != "none" and not clip_value > 0:
            raise ValueError(f"clip_value must be > 0, got {clip_value}")
        s = &self.s
        memset(s, 0, sizeof(State))
        s.D, s.H, s.U = D, H, U
        s.act = ACT_TANH if activation == "tanh" else ACT_RELU
        s.loss = LOSS_MSE if loss == "mse" else LOSS_MAE
        s.clip = {"none": CLIP_NONE, "clipnorm": CLIP_NORM,
                  "global_clipnorm": CLIP_GLOBAL, "clipvalue": CLIP_VALUE}[clip]
        s.clip_c = clip_value
        s.use_bias, s.dense_bias, s.seq = use_bias, dense_use_bias, return_sequences
        s.ftz = flush_denormals
        s.blas_threads = blas_threads
        s.blas_set = <blas_set_fn>blas_set_addr
        s.blas_get = <blas_get_fn>blas_get_addr
        s.blas = (H > _blas_min_units) if kernel == "auto" else (kernel == "blas")
        s.lr, s.beta_1, s.beta_2, s.epsilon = learning_rate, beta_1, beta_2, epsilon
        if iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {iterations}")
        s.iterations = iterations
        # segments in Keras get_weights order
        off = 0
        s.n_seg = 0
        for name, size, present in (("kernel", D * H, True), ("recurrent_kernel", H * H, True),
                                     ("bias", H, use_bias), ("dense_kernel", H * U, True),
                                     ("dense_bias", U, dense_use_bias)):
            if not present:
                continue
            s.seg_off[s.n_seg] = off
            s.seg_len[s.n_seg] = size
            s.n_seg += 1
            if name == "kernel":
                s.off_k = off
            elif name == "recurrent_kernel":
                s.off_rk = off
            elif name == "bias":
                s.off_b = off
            elif name == "dense_kernel":
                s.off_dk = off
            else:
                s.off_db = off
            off += size
        s.n_params = off
        shp[0] = off
        _get(params, &self.pb_params, "params", True, 0, 1, shp)
        self.itemsize = <int>self.pb_params.itemsize
        try:
            _get(grads, &self.pb_grads, "grads", True, self.itemsize, 1, shp)
            try:
                _get(m, &self.pb_m, "m", True, self.itemsize, 1, shp)
                try:
                    _get(v, &self.pb_v, "v", True, self.itemsize, 1, shp)
                except BaseException:
                    PyBuffer_Release(&self.pb_m)
                    raise
            except BaseException:
                PyBuffer_Release(&self.pb_grads)
                raise
        except BaseException:
            PyBuffer_Release(&self.pb_params)
            raise
        self.have_model = True
        views[0] = &self.pb_params; views[1] = &self.pb_grads
        views[2] = &self.pb_m; views[3] = &self.pb_v
        names = ("params", "grads", "m", "v")
        for i in range(4):
            for j in range(i + 1, 4):
                if _overlaps(views[i], views[j]):
                    raise ValueError(f"{names[i]} and {names[j]} must not share memory")
        s.dbl = self.itemsize == 8
        self._dtype = np.dtype(np.float64 if s.dbl else np.float32)
        s.params = <char*>self.pb_params.buf
        s.grads = <char*>self.pb_grads.buf
        s.m = <char*>self.pb_m.buf
        s.v = <char*>self.pb_v.buf
        self._reserve(batch_size, timesteps)

    def __dealloc__(self):
        if self.have_model:
            PyBuffer_Release(&self.pb_params)
            PyBuffer_Release(&self.pb_grads)
            PyBuffer_Release(&self.pb_m)
            PyBuffer_Release(&self.pb_v)
        if self.have_data:
            PyBuffer_Release(&self.pb_X)
            PyBuffer_Release(&self.pb_Y)

    cdef int _reserve(self, Py_ssize_t B, Py_ssize_t T) except -1:
        # (re)allocate the work buffers for at least B samples of T steps
        cdef State* s = &self.s
        cdef Py_ssize_t R, H = s.H, U = s.U
        if B <= s.capB and T <= s.capT:
            return 0
        B = max(B, s.capB)
        T = max(T, s.capT)
        R = B * T
        dt = self._dtype
        work = {
            "xs": np.zeros(R * s.D, dt), "hs": np.zeros(R * H, dt),
            "dz": np.zeros(R * H, dt), "g": np.zeros(B * H, dt),
            "yp": np.zeros(R * U, dt), "yt": np.zeros(R * U, dt),
            "dy": np.zeros(R * U, dt), "whT": np.zeros(H * H, dt),
            "wdT": np.zeros(U * H, dt),
        }
        s.xs = _ptr(work["xs"]); s.hs = _ptr(work["hs"]); s.dz = _ptr(work["dz"])
        s.g = _ptr(work["g"]); s.yp = _ptr(work["yp"]); s.yt = _ptr(work["yt"])
        s.dy = _ptr(work["dy"]); s.whT = _ptr(work["whT"]); s.wdT = _ptr(work["wdT"])
        self._work = work
        s.capB, s.capT = B, T
        return 0

    cdef int _enter(self) except -1:
        if not self.have_model:
            raise RuntimeError("RNNDenseTrainer is not initialised")
        if self.busy:
            raise RuntimeError("this trainer is in use by another thread; "
                               "use one trainer per thread")
        self.busy = True
        return 0

    def reserve(self, Py_ssize_t batch_size, Py_ssize_t timesteps):
        """Size the work buffers for batches of up to (batch_size, timesteps)."""
        if batch_size < 1 or timesteps < 1:
            raise ValueError(f"batch_size and timesteps must be >= 1, got "
                             f"{batch_size}, {timesteps}")
        self._enter()
        try:
            self._reserve(batch_size, timesteps)
        finally:
            self.busy = False

    def step(self, xb, yb):
        """One training step on a batch; returns the loss before the update.

        xb (B, T, D); yb (B, U) -- or (B,) when U == 1 -- or, with
        return_sequences, (B, T, U) / (B, T).  C-contiguous, the trainer's dtype.
        """
        cdef Py_buffer bx, by
        cdef Py_ssize_t shp[3]
        cdef Py_ssize_t B, T
        cdef double loss
        cdef State* s = &self.s
        cdef unsigned int csr
        cdef int nthr
        self._enter()
        try:
            shp[0] = -1; shp[1] = -1; shp[2] = s.D
            _get(xb, &bx, "xb", False, self.itemsize, 3, shp)
            B = bx.shape[0]
            T = bx.shape[1]
            try:
                if B < 1 or T < 1:
                    raise ValueError(f"xb must hold at least one sample of at least one "
                                     f"step, got shape ({B}, {T}, {s.D})")
                _get_target(yb, &by, "yb", self.itemsize, B, T, s.U, s.seq)
                try:
                    self._reserve(B, T)
                    with nogil:
                        csr = fr_ftz_enter(s.ftz)
                        nthr = _threads_enter(s)
                        if s.dbl:
                            _gather(s, <double*>NULL, <double*>bx.buf, <double*>by.buf,
                                    NULL, 0, B, T)
                            loss = _train_batch(s, <double*>NULL, B, T)
                        else:
                            _gather(s, <float*>NULL, <float*>bx.buf, <float*>by.buf,
                                    NULL, 0, B, T)
                            loss = _train_batch(s, <float*>NULL, B, T)
                        _threads_exit(s, nthr)
                        fr_ftz_exit(csr)
                finally:
                    PyBuffer_Release(&by)
            finally:
                PyBuffer_Release(&bx)
        finally:
            self.busy = False
        if s.bad:
            _raise_bad(s.bad, loss, None)
        return loss

    def bind_data(self, X, Y):
        """Bind the training set for :meth:`run_epoch` (kept referenced, not copied).

        X (N, T, D); Y (N, U) / (N,) or, with return_sequences, (N, T, U) / (N, T).
        """
        cdef Py_buffer bx, by
        cdef Py_ssize_t shp[3]
        cdef State* s = &self.s
        self._enter()
        try:
            shp[0] = -1; shp[1] = -1; shp[2] = s.D
            _get(X, &bx, "X", False, self.itemsize, 3, shp)
            try:
                if bx.shape[0] < 1 or bx.shape[1] < 1:
                    raise ValueError(f"X must hold at least one sample of at least one "
                                     f"step, got shape ({bx.shape[0]}, {bx.shape[1]}, {s.D})")
                _get_target(Y, &by, "Y", self.itemsize, bx.shape[0], bx.shape[1], s.U, s.seq)
            except BaseException:
                PyBuffer_Release(&bx)
                raise
            if self.have_data:
                PyBuffer_Release(&self.pb_X)
                PyBuffer_Release(&self.pb_Y)
            self.pb_X = bx
            self.pb_Y = by
            self.have_data = True
            s.X = <char*>bx.buf
            s.Y = <char*>by.buf
            s.N = bx.shape[0]
            s.T = bx.shape[1]
        finally:
            self.busy = False

    def unbind_data(self):
        """Release the training set bound by :meth:`bind_data`."""
        self._enter()
        try:
            if self.have_data:
                PyBuffer_Release(&self.pb_X)
                PyBuffer_Release(&self.pb_Y)
                self.have_data = False
                self.s.X = NULL
                self.s.Y = NULL
        finally:
            self.busy = False

    def run_epoch(self, order, Py_ssize_t batch_size, losses):
        """Train on every batch of the bound set, rows taken in ``order``.

        order: int64 (L,), entries in [0, N); losses: float64 (>= ceil(L/batch_size),),
        receives each batch's loss.  Returns the sample-weighted mean loss.
        """
        cdef Py_buffer bo, bl
        cdef Py_ssize_t shp[1]
        cdef Py_ssize_t L, nb, i
        cdef const int64_t* o
        cdef double mean
        cdef State* s = &self.s
        cdef unsigned int csr
        cdef int nthr
        self._enter()
        try:
            if not self.have_data:
                raise RuntimeError("no training set bound: call bind_data(X, Y) first")
            if batch_size < 1:
                raise ValueError(f"batch_size must be >= 1, got {batch_size}")
            _get_index(order, &bo, "order")
            try:
                L = bo.shape[0]
                o = <const int64_t*>bo.buf
                for i in range(L):
                    if o[i] < 0 or o[i] >= s.N:
                        raise ValueError(f"order[{i}] = {o[i]} is out of range for "
                                         f"{s.N} samples")
                nb = (L + batch_size - 1) // batch_size
                shp[0] = -1
                _get(losses, &bl, "losses", True, 8, 1, shp)
                try:
                    if bl.shape[0] < nb:
                        raise ValueError(f"losses must have at least {nb} elements "
                                         f"(one per batch), got {bl.shape[0]}")
                    if L == 0:
                        return float("nan")
                    self._reserve(min(batch_size, L), s.T)
                    with nogil:
                        csr = fr_ftz_enter(s.ftz)
                        nthr = _threads_enter(s)
                        if s.dbl:
                            mean = _epoch(s, <double*>NULL, o, L, batch_size, <double*>bl.buf)
                        else:
                            mean = _epoch(s, <float*>NULL, o, L, batch_size, <double*>bl.buf)
                        _threads_exit(s, nthr)
                        fr_ftz_exit(csr)
                finally:
                    PyBuffer_Release(&bl)
            finally:
                PyBuffer_Release(&bo)
        finally:
            self.busy = False
        if s.bad:
            _raise_bad(s.bad, s.bad_loss, s.bad_batch)
        return mean

    def predict(self, x, out=None):
        """Forward pass only: x (N, T, D) -> (N, U), or (N, T, U) with return_sequences."""
        cdef Py_buffer bx, bo
        cdef Py_ssize_t shp[3]
        cdef Py_ssize_t N, T
        cdef State* s = &self.s
        cdef unsigned int csr
        cdef int nthr
        self._enter()
        try:
            shp[0] = -1; shp[1] = -1; shp[2] = s.D
            _get(x, &bx, "x", False, self.itemsize, 3, shp)
            try:
                N = bx.shape[0]
                T = bx.shape[1]
                if T < 1:
                    raise ValueError(f"x must have at least one time step, got shape "
                                     f"({N}, {T}, {s.D})")
                if out is None:
                    if s.seq:
                        out = np.empty((N, T, s.U), self._dtype)
                    else:
                        out = np.empty((N, s.U), self._dtype)
                if s.seq:
                    shp[0] = N; shp[1] = T; shp[2] = s.U
                    _get(out, &bo, "out", True, self.itemsize, 3, shp)
                else:
                    shp[0] = N; shp[1] = s.U
                    _get(out, &bo, "out", True, self.itemsize, 2, shp)
                try:
                    if _overlaps(&bx, &bo):
                        raise ValueError("out must not share memory with x")
                    if (_overlaps(&bo, &self.pb_params) or _overlaps(&bo, &self.pb_grads)
                            or _overlaps(&bo, &self.pb_m) or _overlaps(&bo, &self.pb_v)):
                        raise ValueError("out must not share memory with the model's buffers")
                    if N > 0:
                        self._reserve(1, T)
                        with nogil:
                            csr = fr_ftz_enter(s.ftz)
                            nthr = _threads_enter(s)
                            if s.dbl:
                                _predict(s, <double*>NULL, <double*>bx.buf, N, T,
                                         <double*>bo.buf)
                            else:
                                _predict(s, <float*>NULL, <float*>bx.buf, N, T,
                                         <float*>bo.buf)
                            _threads_exit(s, nthr)
                            fr_ftz_exit(csr)
                finally:
                    PyBuffer_Release(&bo)
            finally:
                PyBuffer_Release(&bx)
        finally:
            self.busy = False
        return out

    @property
    def iterations(self):
        """Adam steps taken so far (Keras ``optimizer.iterations``)."""
        return self.s.iterations

    @iterations.setter
    def iterations(self, long long value):
        if value < 0:
            raise ValueError(f"iterations must be >= 0, got {value}")
        self.s.iterations = value

    @property
    def learning_rate(self):
        return self.s.lr

    @learning_rate.setter
    def learning_rate(self, double value):
        self.s.lr = value

    @property
    def uses_blas(self):
        """True when the products go through BLAS, False for the direct loops."""
        return bool(self.s.blas)

    @property
    def n_params(self):
        return self.s.n_params

    @property
    def dtype(self):
        return self._dtype


cdef _raise_bad(int bad, double loss, object batch):
    where = "" if batch is None else f" at batch {batch}"
    what = (f"the loss is {loss}" if bad == 1 else
            "the gradient is not finite (inf or NaN)")
    raise NonFiniteTrainingError(f"training diverged{where}: {what}; the parameters and "
                                 f"the optimizer state were left as before this batch",
                                 batch=batch, kind="loss" if bad == 1 else "gradient")


cdef char* _ptr(object arr):
    cdef Py_buffer b
    PyObject_GetBuffer(arr, &b, PyBUF_WRITABLE)
    cdef char* p = <char*>b.buf
    PyBuffer_Release(&b)      # the owner keeps arr alive
    return p


cdef int _get_target(object y, Py_buffer* view, str name, int itemsize, Py_ssize_t B,
                     Py_ssize_t T, Py_ssize_t U, bint seq) except -1:
    # (B, U) or (B,) with U == 1; with seq (B, T, U) or (B, T) with U == 1
    cdef Py_ssize_t shp[3]
    cdef int nd = getattr(y, "ndim", -1)
    shp[0] = B
    if seq:
        shp[1] = T; shp[2] = U
        if nd == 2 and U == 1:
            return _get(y, view, name, False, itemsize, 2, shp)
        return _get(y, view, name, False, itemsize, 3, shp)
    shp[1] = U
    if nd == 1 and U == 1:
        return _get(y, view, name, False, itemsize, 1, shp)
    return _get(y, view, name, False, itemsize, 2, shp)


cdef int _get_index(object order, Py_buffer* view, str name) except -1:
    cdef Py_ssize_t k
    try:
        PyObject_GetBuffer(order, view, PyBUF_STRIDES | PyBUF_FORMAT)
    except (BufferError, TypeError):
        raise TypeError(f"{name} must be a numpy int64 array, got {type(order).__name__}") from None
    try:
        fmt = view.format.decode() if view.format != NULL else "B"
        if view.itemsize != 8 or fmt.lstrip("@=<") not in ("q", "l"):
            raise TypeError(f"{name} must have dtype int64, got "
                            f"{getattr(order, 'dtype', fmt)}")
        if view.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got {view.ndim} dimensions")
        if view.shape[0] > 1 and view.strides[0] != 8:
            raise ValueError(f"{name} must be contiguous")
    except BaseException:
        PyBuffer_Release(view)
        raise
    return 0
