/*
 * fastmath.h -- a fast, vectorisable tanh for the fastrnn kernels.
 *
 * Self-contained (C99, no Python headers): include it from any C or Cython
 * module that needs it.
 *
 *   float  fr_tanhf(float x);                        scalar, static inline
 *   double fr_tanh(double x);
 *   void   fr_tanhf_inplace(float *a, ptrdiff_t n);  a[i] = tanh(a[i])
 *   void   fr_tanh_inplace(double *a, ptrdiff_t n);
 *   int    fr_all_finitef(const float *a, ptrdiff_t n);   no inf or NaN in a[0..n)
 *   int    fr_all_finite(const double *a, ptrdiff_t n);
 *
 * Why: libm's scalar tanhf costs ~23 ns per element and blocks vectorisation.
 * These functions are branch-free straight-line code, so gcc/clang at -O3
 * turn the in-place loops into SIMD code; no -ffast-math is needed.
 *
 * Method.  With y = 2|x|,
 *
 *     tanh|x| = expm1(y) / (expm1(y) + 2),
 *
 * and the sign is copied back from x.  expm1 (not exp - 1) keeps full
 * relative accuracy for small |x|, where tanh x ~ x.  expm1 is evaluated by
 * the reduction y = k ln2 + r, |r| <= ln2/2 (k an integer >= 0):
 *
 *     expm1(y) = 2^k expm1(r) + (2^k - 1),
 *
 * with expm1(r) = r + r^2 q(r) from its Taylor series (degree 13 in double,
 * 7 in float: the first omitted term is below half an ulp).  2^k and
 * 2^k - 1 are exact, so only a few roundings remain: the measured error is a
 * few ulp over the whole range (see tests/test_ops_fastmath.py).
 *
 * k is rounded with the "add 1.5*2^52" trick and 2^k is built from the bits
 * of that sum, so no float->int conversion (which SSE2 cannot vectorise for
 * 64-bit integers) and no undefined behaviour for NaN.  y is clamped where
 * tanh already rounds to +-1 (|x| > 19.06 in double, > 9.01 in float), which
 * also maps +-inf to +-1.  NaN propagates (the clamp keeps NaN), and the
 * result keeps the sign of zero.
 *
 * On x86-64 Linux with GCC the in-place functions are compiled three times
 * (target_clones): baseline x86-64, x86-64-v3 (AVX2+FMA) and x86-64-v4
 * (AVX-512; 3 % off the S2 training step on a Skylake-X Xeon), picked at load
 * time, so the installed code stays portable.  Define FR_NO_TARGET_CLONES to
 * turn that off.  Results of the clones may differ in the last bits
 * (FMA contraction); each is deterministic.
 */
#ifndef FASTRNN_FASTMATH_H
#define FASTRNN_FASTMATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if !defined(FR_NO_TARGET_CLONES) && defined(__GNUC__) && !defined(__clang__) && \
    defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && (__GNUC__ >= 11)
#define FR_TARGET_CLONES \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FR_TARGET_CLONES
#endif

#if defined(_MSC_VER) && !defined(__cplusplus)
#define FR__INLINE __inline /* MSVC's C mode before C11 */
#else
#define FR__INLINE inline
#endif

#if defined(__GNUC__)
#define FR__UNUSED __attribute__((unused)) /* no warning where a function is not used */
#else
#define FR__UNUSED
#endif

/* ---- double ---------------------------------------------------------- */

/* tanh(x) rounds to +-1 in double once |x| > 19.06; clamp y = 2|x| at 44. */
#define FR__Y_MAX_D 44.0
#define FR__MAGIC_D 6755399441055744.0 /* 1.5 * 2^52: adding it rounds to an integer */
#define FR__LOG2E_D 1.4426950408889634
/* ln2 split in two: FR__LN2_HI_D has its low 32 mantissa bits zero, so k*hi is exact. */
#define FR__LN2_HI_D 6.93147180369123816490e-01
#define FR__LN2_LO_D 1.90821492927058770002e-10

static FR__INLINE double fr__tanh_core(double x, double y_max)
{
    double y = 2.0 * fabs(x);
    y = (y > y_max) ? y_max : y; /* keeps NaN */

    /* k = round(y / ln2), 0 <= k <= 64; t holds k in its low mantissa bits */
    double t = y * FR__LOG2E_D + FR__MAGIC_D;
    double k = t - FR__MAGIC_D;
    double r = (y - k * FR__LN2_HI_D) - k * FR__LN2_LO_D; /* |r| <= ln2/2 */

    /* expm1(r) = r + r^2 (1/2! + r/3! + ... + r^11/13!) */
    double q = 1.0 / 6227020800.0;           /* 1/13! */
    q = q * r + 1.0 / 479001600.0;           /* 1/12! */
    q = q * r + 1.0 / 39916800.0;            /* 1/11! */
    q = q * r + 1.0 / 3628800.0;             /* 1/10! */
    q = q * r + 1.0 / 362880.0;              /* 1/9!  */
    q = q * r + 1.0 / 40320.0;               /* 1/8!  */
    q = q * r + 1.0 / 5040.0;                /* 1/7!  */
    q = q * r + 1.0 / 720.0;                 /* 1/6!  */
    q = q * r + 1.0 / 120.0;                 /* 1/5!  */
    q = q * r + 1.0 / 24.0;                  /* 1/4!  */
    q = q * r + 1.0 / 6.0;                   /* 1/3!  */
    q = q * r + 0.5;                         /* 1/2!  */
    double p = r + (r * r) * q;

    /* 2^k from the bits of t: bits(t) = bits(MAGIC) + k */
    uint64_t bits, magic_bits;
    double magic = FR__MAGIC_D, scale;
    memcpy(&bits, &t, sizeof bits);
    memcpy(&magic_bits, &magic, sizeof magic_bits);
    bits = (bits - magic_bits + 1023u) << 52;
    memcpy(&scale, &bits, sizeof scale);

    double e = scale * p + (scale - 1.0); /* expm1(y) */
    return copysign(e / (e + 2.0), x);
}

static FR__INLINE double fr_tanh(double x) { return fr__tanh_core(x, FR__Y_MAX_D); }

/* ---- float ----------------------------------------------------------- */

/* tanhf(x) rounds to +-1 once |x| > 9.01; clamp y = 2|x| at 20. */
#define FR__Y_MAX_F 20.0f
#define FR__MAGIC_F 12582912.0f /* 1.5 * 2^23 */
#define FR__LOG2E_F 1.44269504f
#define FR__LN2_HI_F 0.693145751953125f /* 0x1.62e4p-1: low bits zero */
#define FR__LN2_LO_F 1.42860676533018704e-06f

static FR__INLINE float fr__tanhf_core(float x, float y_max)
{
    float y = 2.0f * fabsf(x);
    y = (y > y_max) ? y_max : y; /* keeps NaN */

    float t = y * FR__LOG2E_F + FR__MAGIC_F;
    float k = t - FR__MAGIC_F; /* 0 <= k <= 29 */
    float r = (y - k * FR__LN2_HI_F) - k * FR__LN2_LO_F;

    /* expm1(r) = r + r^2 (1/2! + r/3! + ... + r^5/7!) */
    float q = 1.0f / 5040.0f;
    q = q * r + 1.0f / 720.0f;
    q = q * r + 1.0f / 120.0f;
    q = q * r + 1.0f / 24.0f;
    q = q * r + 1.0f / 6.0f;
    q = q * r + 0.5f;
    float p = r + (r * r) * q;

    uint32_t bits, magic_bits;
    float magic = FR__MAGIC_F, scale;
    memcpy(&bits, &t, sizeof bits);
    memcpy(&magic_bits, &magic, sizeof magic_bits);
    bits = (bits - magic_bits + 127u) << 23;
    memcpy(&scale, &bits, sizeof scale);

    float e = scale * p + (scale - 1.0f);
    return copysignf(e / (e + 2.0f), x);
}

static FR__INLINE float fr_tanhf(float x) { return fr__tanhf_core(x, FR__Y_MAX_F); }

/* ---- arrays, in place ------------------------------------------------ */

/* The clamp bound is hidden from the optimiser in the loops: with a known
 * constant, gcc splits the loop body on the clamp branch (the clamped path
 * constant-folds), and the resulting control flow blocks vectorisation. */
#if defined(__GNUC__)
#define FR__OPAQUE(v) __asm__("" : "+m"(v))
#else
#define FR__OPAQUE(v) ((void)0)
#endif

FR_TARGET_CLONES FR__UNUSED
static void fr_tanh_inplace(double *a, ptrdiff_t n)
{
    double y_max = FR__Y_MAX_D;
    FR__OPAQUE(y_max);
    for (ptrdiff_t i = 0; i < n; i++)
        a[i] = fr__tanh_core(a[i], y_max);
}

FR_TARGET_CLONES FR__UNUSED
static void fr_tanhf_inplace(float *a, ptrdiff_t n)
{
    float y_max = FR__Y_MAX_F;
    FR__OPAQUE(y_max);
    for (ptrdiff_t i = 0; i < n; i++)
        a[i] = fr__tanhf_core(a[i], y_max);
}

/* ---- finiteness checks ---------------------------------------------- */

/* Non-finite (inf or NaN) exactly when every exponent bit is set.  Testing
 * the bits (read with memcpy, which is well defined and compiles to a load)
 * makes the loop an integer OR-reduction that vectorises; a floating-point
 * test such as "acc += a[i] * 0" is a serial chain of dependent additions
 * (about 4 cycles an element: 5 us over a tutorial model's weights and Adam
 * state, more than its whole update). */
static FR__INLINE int fr_all_finitef(const float *a, ptrdiff_t n)
{
    uint32_t bad = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, a + i, sizeof u);
        bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

static FR__INLINE int fr_all_finite(const double *a, ptrdiff_t n)
{
    uint64_t bad = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        uint64_t u;
        memcpy(&u, a + i, sizeof u);
        bad |= (uint64_t)((u & 0x7ff0000000000000ull) == 0x7ff0000000000000ull);
    }
    return bad == 0;
}

#endif /* FASTRNN_FASTMATH_H */
