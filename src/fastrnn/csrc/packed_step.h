/*
 * packed_step.h -- the packed-weight recurrence kernel of fastrnn (large H).
 *
 * For the step products h_{t-1} W_h (forward) and dz_t W_h^T (the BPTT
 * carry), OpenBLAS re-packs the H x H weight at every step; at large H and a
 * small batch that repacking is a large part of the work.  This kernel packs
 * the weight once per call into column panels (NR columns each, every panel
 * K x NR contiguous, zero-padded), keeps an MR x NR register tile per
 * micro-kernel call, and applies the activation (or its derivative) to the
 * columns it just produced.  The input projection x W_x + b of the forward
 * runs on the same panels and threads, and the backward's merged products
 * (dW_x, dW_h, dx) on the same team through fr_team_gemm_*, so no BLAS
 * thread pool wakes beside the team.
 *
 * Threads: a persistent team (pthreads) of fr_get_num_threads() threads,
 * the caller being thread 0.  Each thread owns a contiguous range of columns
 * (whole vectors of the ISA, so a panel may be shared by two threads) and
 * meets the others at one barrier per step (spin briefly, then
 * sleep on a condition variable).  Every output element is summed in one
 * fixed order (k = 0 .. K-1, by the micro-kernel of its panel) whatever the
 * number of threads, so results are bitwise identical for any thread count.
 * When another thread already uses the team, a call runs on its caller only.
 *
 * ISA: AVX-512 (MR x NR = 8 x 48 float, 8 x 24 double), AVX2+FMA (4 x 24,
 * 4 x 12) or portable C (4 x 16, 4 x 8), chosen at run time
 * (__builtin_cpu_supports); the build uses no -march flag.
 *
 * Activations are not implemented here: the caller passes its own
 * row-block functions (fastrnn's one implementation of each activation).
 */
#ifndef FASTRNN_PACKED_STEP_H
#define FASTRNN_PACKED_STEP_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { FR_ISA_GENERIC = 0, FR_ISA_AVX2 = 1, FR_ISA_AVX512 = 2 };

/* z = act(z) on `rows` rows of `cols` elements, `ld` apart. */
typedef void (*fr_act_f32)(int act, float *z, ptrdiff_t rows, ptrdiff_t cols, ptrdiff_t ld);
typedef void (*fr_act_f64)(int act, double *z, ptrdiff_t rows, ptrdiff_t cols, ptrdiff_t ld);
/* g = g * act'(z) from h = act(z), both `ld` apart. */
typedef void (*fr_dact_f32)(int act, const float *h, float *g, ptrdiff_t rows, ptrdiff_t cols,
                            ptrdiff_t ld);
typedef void (*fr_dact_f64)(int act, const double *h, double *g, ptrdiff_t rows,
                            ptrdiff_t cols, ptrdiff_t ld);

/* The best ISA path this CPU (and OS) can run. */
int fr_isa_supported(void);
/* The path in use; fr_set_isa clamps to what is supported and returns the result. */
int fr_get_isa(void);
int fr_set_isa(int isa);

/* Threads the kernel may use (>= 1); cores: the cores the process may use. */
void fr_set_num_threads(int n);
int fr_get_num_threads(void);
/* 1: reduce the team to the idle CPUs of the machine at each call (Linux). */
void fr_set_load_check(int on);
/* 1: calls from this thread run on it alone (the calibration). */
void fr_set_single_thread_here(int on);
/* Threads the last call ran on (for tests). */
int fr_last_threads(void);

/* Seconds on a monotonic clock (for the one-time calibration). */
double fr_now(void);

/*
 * Forward: h = states of the recurrence (see rnn_forward_masked_k):
 *     z_t = x_t W + b + h_p W_h,  h_t = act(z_t),  masked rows: h_t = h_p.
 * x: B*T rows of D (NULL when D == 0), h: B*T rows of H, both in one layout:
 * rows of a step `ld` apart, steps `step` apart (time-major: ld = H,
 * step = B*H; batch-major: ld = T*H, step = H).  bias, h0, mask may be NULL;
 * mask[b * mask_b + t * mask_t] != 0: step t of sample b is processed.
 * Returns 1 when done, 0 when it could not run (out of memory): the caller
 * then takes its other path.
 */
int fr_rnn_forward_f32(fr_act_f32 act_fn, int act, const float *x, const float *w,
                       const float *wh, const float *bias, const float *h0, float *h,
                       const unsigned char *mask, ptrdiff_t mask_b, ptrdiff_t mask_t,
                       ptrdiff_t B, ptrdiff_t T, ptrdiff_t D, ptrdiff_t H, ptrdiff_t ld,
                       ptrdiff_t step, int reverse);
int fr_rnn_forward_f64(fr_act_f64 act_fn, int act, const double *x, const double *w,
                       const double *wh, const double *bias, const double *h0, double *h,
                       const unsigned char *mask, ptrdiff_t mask_b, ptrdiff_t mask_t,
                       ptrdiff_t B, ptrdiff_t T, ptrdiff_t D, ptrdiff_t H, ptrdiff_t ld,
                       ptrdiff_t step, int reverse);

/*
 * BPTT carry (the sequential part of rnn_backward_masked_k): walking the
 * processed steps backwards,
 *     dz_t = (dh_t + g) * act'(z_t)       (g: dh_last at the last processed step)
 *     g    = (dz_t W_h^T) * rec_mask
 * with a step mask, masked rows pass dh_t + g on in g and get dz_t = 0.
 * dh_seq may be dz (in place) or NULL; dh_last, mask, rec_mask may be NULL.
 * g (B x H, contiguous) holds dLoss/dh0 at the end when want_dh0.
 * Returns 1 when done, 0 when it could not run.
 */
int fr_rnn_carry_f32(fr_dact_f32 dact_fn, int act, const float *h, const float *wh,
                     const float *dh_seq, const float *dh_last, float *dz, float *g,
                     const unsigned char *mask, ptrdiff_t mask_b, ptrdiff_t mask_t,
                     const float *rec_mask, ptrdiff_t B, ptrdiff_t T, ptrdiff_t H,
                     ptrdiff_t ld, ptrdiff_t step, int reverse, int want_dh0);
int fr_rnn_carry_f64(fr_dact_f64 dact_fn, int act, const double *h, const double *wh,
                     const double *dh_seq, const double *dh_last, double *dz, double *g,
                     const unsigned char *mask, ptrdiff_t mask_b, ptrdiff_t mask_t,
                     const double *rec_mask, ptrdiff_t B, ptrdiff_t T, ptrdiff_t H,
                     ptrdiff_t ld, ptrdiff_t step, int reverse, int want_dh0);

/* One product C (+)= A P on one thread, P = W (K x N, row-major) packed
 * inside (the calibration and the tests of tile edges use it).  0: no memory. */
int fr_packed_gemm_f32(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a, ptrdiff_t lda,
                       const float *w, float *c, ptrdiff_t ldc, int accumulate);
int fr_packed_gemm_f64(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const double *a, ptrdiff_t lda,
                       const double *w, double *c, ptrdiff_t ldc, int accumulate);

/* The BLAS's per-thread thread-count setter, or NULL (the calibration uses it): MKL's
 * mkl_set_num_threads_local, or OpenBLAS's openblas_set_num_threads_local
 * only in its OpenMP builds (get_parallel() == 2; in the pthreads builds it
 * sets the whole process's count, which fastrnn never does). */
void fr_set_blas_local_threads(int (*setter)(int));
int fr_has_blas_local_threads(void);
/* Set this thread's BLAS thread count through the setter (no setter: nothing,
 * returns 0); returns the previous count. */
int fr_blas_local_threads_public(int n);
/* Look the setter up in the library that defines `blas_function` (a function
 * of the BLAS the kernels call) and the libraries it loaded (Linux, macOS);
 * returns whether one was found. */
int fr_find_blas_local_threads(void *blas_function);

/*
 * The team GEMM, no BLAS: C (M x N) = op(A) op(B), or C += op(A) op(B) with
 * accumulate.  op(A) = A (M x K, rows lda apart) or, with trans_a, A^T for A
 * stored K x M (rows lda apart); op(B) = B (K x N, rows ldb apart) or, with
 * trans_b, B^T for B stored N x K.  Both operands are packed (blocks of 256
 * along k) by the team, which then splits C's tiles; each element is summed
 * in one fixed order, so results are bitwise the same on any thread count.
 * kgroup > 0: the k index runs in groups of kgroup, group g starting
 * g * a_gstride (b_gstride) elements after the start of A (B), e.g. the rows
 * of each sequence but its last in a batch-major layout; kgroup <= 0: plain.
 * Returns 1 when done, 0 when out of memory (nothing done).
 */
int fr_team_gemm_f32(int trans_a, int trans_b, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                     const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float *c,
                     ptrdiff_t ldc, int accumulate, ptrdiff_t kgroup, ptrdiff_t a_gstride,
                     ptrdiff_t b_gstride);
int fr_team_gemm_f64(int trans_a, int trans_b, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                     const double *a, ptrdiff_t lda, const double *b, ptrdiff_t ldb,
                     double *c, ptrdiff_t ldc, int accumulate, ptrdiff_t kgroup,
                     ptrdiff_t a_gstride, ptrdiff_t b_gstride);

#ifdef __cplusplus
}
#endif
#endif
