/*
 * packed_step.c -- the packed-weight recurrence kernel (see packed_step.h):
 * the thread team, the run-time ISA choice, the micro-kernels, and (from
 * packed_step_impl.h, once per dtype) the forward and BPTT-carry drivers.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif
#include "packed_step.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#define FR_THREADS 0
#include <windows.h>
#else
#define FR_THREADS 1
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#endif
#if defined(__linux__) || defined(__APPLE__)
#include <dlfcn.h>
#endif

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FR_X86 1
#include <immintrin.h>
#else
#define FR_X86 0
#endif

/* ================================================================ clock */

double fr_now(void)
{
#if defined(_WIN32)
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart / (double)f.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
}

/* ================================================================ the thread team
 *
 * Workers 1 .. n-1 are created on first need and kept; the caller of a
 * call is thread 0.  A job is posted by bumping job_gen; each worker with an
 * id below the job's thread count runs it and bumps `done`.  Every wait
 * spins for a few tens of microseconds (a step's barrier is usually met
 * within that) and then sleeps on the team's condition variable; whoever
 * changes a watched counter wakes the sleepers.  All atomics are
 * sequentially consistent: a counter change publishes the data written
 * before it.
 */

typedef void (*fr_job_fn)(void *arg, int tid, int nthreads);

#if FR_THREADS
typedef struct {
    atomic_uint gen;
    atomic_uint count;
} fr_sync;

#define FR_MAX_THREADS 256
#define FR_SPIN 4000 /* pause instructions before sleeping: ~20-100 us */

static struct {
    pthread_mutex_t use;      /* held by the call that runs on the team */
    pthread_mutex_t mu;       /* guards the sleep on cv */
    pthread_cond_t cv;
    atomic_int sleepers;
    atomic_uint job_gen;
    atomic_uint done;
    fr_job_fn job_fn;
    void *job_arg;
    int job_threads;
    int workers; /* created so far (ids 1 .. workers) */
} team = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
          0, 0, 0, NULL, NULL, 0, 0};

static atomic_int num_threads = 1;
static atomic_int load_check = 1;
static atomic_int last_threads = 1;
static _Thread_local int single_thread_here = 0;

static inline void fr_relax(void)
{
#if FR_X86
    _mm_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Wait while *v == old. */
static void fr_wait(atomic_uint *v, unsigned old)
{
    int i;
    for (i = 0; i < FR_SPIN; i++) {
        if (atomic_load(v) != old)
            return;
        fr_relax();
    }
    pthread_mutex_lock(&team.mu);
    atomic_fetch_add(&team.sleepers, 1);
    while (atomic_load(v) == old)
        pthread_cond_wait(&team.cv, &team.mu);
    atomic_fetch_sub(&team.sleepers, 1);
    pthread_mutex_unlock(&team.mu);
}

/* *v += 1 and wake the sleepers.  A sleeper registers before it checks *v
 * and this reads the count after changing *v, so one of the two sees the
 * other (no lost wake-up). */
static void fr_bump(atomic_uint *v)
{
    atomic_fetch_add(v, 1);
    if (atomic_load(&team.sleepers) > 0) {
        pthread_mutex_lock(&team.mu);
        pthread_cond_broadcast(&team.cv);
        pthread_mutex_unlock(&team.mu);
    }
}

static void fr_sync_init(fr_sync *s)
{
    atomic_init(&s->gen, 0);
    atomic_init(&s->count, 0);
}

static void fr_barrier(fr_sync *s, int nth)
{
    unsigned g;
    if (nth <= 1)
        return;
    g = atomic_load(&s->gen);
    if (atomic_fetch_add(&s->count, 1) == (unsigned)nth - 1) {
        atomic_store(&s->count, 0);
        fr_bump(&s->gen);
    } else {
        fr_wait(&s->gen, g);
    }
}

/* The job generation each worker starts from (the one current when it was
 * created, so that it does not take the job before it for a new one). */
static unsigned start_gen[FR_MAX_THREADS];

/* Every worker acknowledges every job (running it when its id is below the
 * job's thread count), and the caller waits for all acknowledgements before
 * it returns: so each worker sees each generation exactly once, and the job
 * fields never change while a worker reads them. */
static void *fr_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    unsigned seen = start_gen[id];
    for (;;) {
        fr_wait(&team.job_gen, seen);
        seen = atomic_load(&team.job_gen);
        if (id < team.job_threads)
            team.job_fn(team.job_arg, id, team.job_threads);
        fr_bump(&team.done);
    }
    return NULL;
}

static void fr_after_fork_child(void)
{
    /* the child has none of the workers: start over */
    pthread_mutex_init(&team.use, NULL);
    pthread_mutex_init(&team.mu, NULL);
    pthread_cond_init(&team.cv, NULL);
    atomic_store(&team.sleepers, 0);
    atomic_store(&team.job_gen, 0);
    atomic_store(&team.done, 0);
    team.workers = 0;
}

static int fr_online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Runnable threads of the machine other than this call's (Linux: the
 * instantaneous count in /proc/loadavg); -1 when unknown. */
static int fr_runnable_others(void)
{
#if defined(__linux__)
    char buf[128];
    int running = -1, total, n;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f == NULL)
        return -1;
    n = (int)fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    if (sscanf(buf, "%*f %*f %*f %d/%d", &running, &total) != 2)
        return -1;
    /* this thread, and the workers that are not asleep (spinning ones count) */
    running -= 1 + (team.workers - atomic_load(&team.sleepers));
    return running < 0 ? 0 : running;
#else
    return -1;
#endif
}

static pthread_once_t fr_once = PTHREAD_ONCE_INIT;
static void fr_init_once(void) { pthread_atfork(NULL, NULL, fr_after_fork_child); }

/* Run fn on up to min(num_threads, useful) threads; returns the count used. */
static int fr_team_run(fr_job_fn fn, void *arg, ptrdiff_t useful)
{
    int n = single_thread_here ? 1 : atomic_load(&num_threads), i;
    if (useful < n)
        n = useful < 1 ? 1 : (int)useful;
    if (n > 1 && pthread_mutex_trylock(&team.use) != 0)
        n = 1; /* another call has the team: this one runs on its caller */
    else if (n > 1) {
        pthread_once(&fr_once, fr_init_once);
        if (atomic_load(&load_check)) {
            int others = fr_runnable_others();
            if (others >= 0) {
                int idle = fr_online_cpus() - others;
                if (idle < n)
                    n = idle < 1 ? 1 : idle;
            }
        }
        while (team.workers < n - 1) {
            pthread_t th;
            pthread_attr_t attr;
            pthread_attr_init(&attr);
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            start_gen[team.workers + 1] = atomic_load(&team.job_gen);
            i = pthread_create(&th, &attr, fr_worker, (void *)(intptr_t)(team.workers + 1));
            pthread_attr_destroy(&attr);
            if (i != 0)
                break;
            team.workers++;
        }
        if (n > team.workers + 1)
            n = team.workers + 1;
        if (n <= 1)
            pthread_mutex_unlock(&team.use);
    }
    atomic_store(&last_threads, n);
    if (n <= 1) {
        fn(arg, 0, 1);
        return 1;
    }
    team.job_fn = fn;
    team.job_arg = arg;
    team.job_threads = n;
    atomic_store(&team.done, 0);
    fr_bump(&team.job_gen);
    fn(arg, 0, n);
    for (;;) { /* every worker's acknowledgement, not only the n - 1 that ran it */
        unsigned d = atomic_load(&team.done);
        if (d == (unsigned)team.workers)
            break;
        fr_wait(&team.done, d);
    }
    pthread_mutex_unlock(&team.use);
    return n;
}

void fr_set_num_threads(int n) { atomic_store(&num_threads, n < 1 ? 1 : (n > FR_MAX_THREADS ? FR_MAX_THREADS : n)); }
int fr_get_num_threads(void) { return atomic_load(&num_threads); }
void fr_set_load_check(int on) { atomic_store(&load_check, on != 0); }
int fr_last_threads(void) { return atomic_load(&last_threads); }
void fr_set_single_thread_here(int on) { single_thread_here = on != 0; }

#else /* no threads (Windows builds): every call runs on its caller */

typedef struct {
    int unused;
} fr_sync;
static int num_threads_requested = 1;
static void fr_sync_init(fr_sync *s) { s->unused = 0; }
static void fr_barrier(fr_sync *s, int nth) { (void)s; (void)nth; }
static int fr_team_run(fr_job_fn fn, void *arg, ptrdiff_t useful)
{
    (void)useful;
    fn(arg, 0, 1);
    return 1;
}
void fr_set_num_threads(int n) { num_threads_requested = n < 1 ? 1 : n; }
int fr_get_num_threads(void) { return num_threads_requested; }
void fr_set_load_check(int on) { (void)on; }
int fr_last_threads(void) { return 1; }
void fr_set_single_thread_here(int on) { (void)on; }
#endif

/* ================================================================ BLAS threads */

static int (*blas_local_setter)(int) = NULL;

void fr_set_blas_local_threads(int (*setter)(int)) { blas_local_setter = setter; }
int fr_has_blas_local_threads(void) { return blas_local_setter != NULL; }

int fr_find_blas_local_threads(void *blas_function)
{
#if defined(__linux__) || defined(__APPLE__)
    static const char *names[] = {"openblas_set_num_threads_local",
                                  "scipy_openblas_set_num_threads_local",
                                  "scipy_openblas_set_num_threads_local64_",
                                  "mkl_set_num_threads_local", NULL};
    Dl_info info;
    void *handle;
    int i;
    if (blas_function == NULL || !dladdr(blas_function, &info) || info.dli_fname == NULL)
        return 0;
    handle = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (handle == NULL)
        return 0;
    for (i = 0; names[i] != NULL; i++) {
        void *sym = dlsym(handle, names[i]); /* this library and what it loaded */
        if (sym != NULL) {
            *(void **)(&blas_local_setter) = sym;
            break;
        }
    }
    /* OpenBLAS's setter is per thread only in its OpenMP builds (get_parallel() == 2):
       in the pthreads builds NumPy and SciPy ship it sets the count of the whole
       process (measured: a worker thread's call changed what the main thread read),
       which fastrnn must never do.  MKL's setter is per thread by its contract. */
    if (blas_local_setter != NULL && names[i] != NULL && strncmp(names[i], "mkl_", 4) != 0) {
        static const char *parallel_names[] = {"openblas_get_parallel",
                                               "scipy_openblas_get_parallel",
                                               "scipy_openblas_get_parallel64_", NULL};
        int (*get_parallel)(void) = NULL;
        int j;
        for (j = 0; parallel_names[j] != NULL && get_parallel == NULL; j++)
            *(void **)(&get_parallel) = dlsym(handle, parallel_names[j]);
        if (get_parallel == NULL || get_parallel() != 2)
            blas_local_setter = NULL;
    }
    dlclose(handle);
    return blas_local_setter != NULL;
#else
    (void)blas_function;
    return 0;
#endif
}

/* Set this thread's BLAS thread count; returns the previous one (0: unknown). */
static int fr_blas_local_threads(int n) { return blas_local_setter ? blas_local_setter(n) : 0; }

int fr_blas_local_threads_public(int n) { return fr_blas_local_threads(n); }

/* ================================================================ ISA */

static int isa_in_use = -1;

int fr_isa_supported(void)
{
#if FR_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq"))
        return FR_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return FR_ISA_AVX2;
#endif
    return FR_ISA_GENERIC;
}

int fr_set_isa(int isa)
{
    int best = fr_isa_supported();
    if (isa < FR_ISA_GENERIC)
        isa = FR_ISA_GENERIC;
    isa_in_use = isa > best ? best : isa;
    return isa_in_use;
}

int fr_get_isa(void)
{
    if (isa_in_use < 0)
        isa_in_use = fr_isa_supported();
    return isa_in_use;
}

/* ================================================================ micro-kernels
 *
 * Each computes an m x NR tile (m <= MR a compile-time constant after the
 * switch) in registers over the whole K, then adds it to C (or stores it);
 * columns past n go through a masked store (AVX-512) or a stack tile.
 */

#if FR_X86
#define FR_AVX512 __attribute__((target("avx512f,avx512dq")))
#define FR_AVX2 __attribute__((target("avx2,fma")))
#define FR_ALWAYS_INLINE inline __attribute__((always_inline))

/* ---- AVX-512, float: 8 x 48 (NV = 1..3 vectors of 16 columns: a tile narrower
 * than 48 columns costs only its vectors) */
FR_AVX512 static FR_ALWAYS_INLINE void k512s_tile(const int PK, const int M, const int NV, int n,
                                                  ptrdiff_t K, const float *a, ptrdiff_t lda,
                                                  const float *p, float *c, ptrdiff_t ldc, int acc)
{
    __m512 r0[8], r1[8], r2[8];
    ptrdiff_t k;
    int i;
#pragma GCC unroll 8
    for (i = 0; i < M; i++)
        r0[i] = r1[i] = r2[i] = _mm512_setzero_ps();
    for (k = 0; k < K; k++) {
        __m512 b0 = _mm512_loadu_ps(p), b1 = b0, b2 = b0;
        if (NV > 1)
            b1 = _mm512_loadu_ps(p + 16);
        if (NV > 2)
            b2 = _mm512_loadu_ps(p + 32);
        p += 48;
#pragma GCC unroll 8
        for (i = 0; i < M; i++) {
            __m512 ai = _mm512_set1_ps(PK ? a[k * lda + i] : a[i * lda + k]);
            r0[i] = _mm512_fmadd_ps(ai, b0, r0[i]);
            if (NV > 1)
                r1[i] = _mm512_fmadd_ps(ai, b1, r1[i]);
            if (NV > 2)
                r2[i] = _mm512_fmadd_ps(ai, b2, r2[i]);
        }
    }
    {
        __mmask16 m0 = n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
        __mmask16 m1 = n >= 32 ? 0xFFFF : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
        __mmask16 m2 = n >= 48 ? 0xFFFF : n <= 32 ? 0 : (__mmask16)((1u << (n - 32)) - 1);
#pragma GCC unroll 8
        for (i = 0; i < M; i++) {
            float *ci = c + i * ldc;
            if (acc) {
                r0[i] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, ci), r0[i]);
                if (NV > 1)
                    r1[i] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, ci + 16), r1[i]);
                if (NV > 2)
                    r2[i] = _mm512_add_ps(_mm512_maskz_loadu_ps(m2, ci + 32), r2[i]);
            }
            _mm512_mask_storeu_ps(ci, m0, r0[i]);
            if (NV > 1)
                _mm512_mask_storeu_ps(ci + 16, m1, r1[i]);
            if (NV > 2)
                _mm512_mask_storeu_ps(ci + 32, m2, r2[i]);
        }
    }
}

FR_AVX512 static void k512s(int m, int n, ptrdiff_t K, const float *a, ptrdiff_t lda,
                           const float *p, float *c, ptrdiff_t ldc, int acc)
{
    int nv = n > 32 ? 3 : n > 16 ? 2 : 1;
    switch (m * 4 + nv) {
    case 35: k512s_tile(0, 8, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 34: k512s_tile(0, 8, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 33: k512s_tile(0, 8, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 31: k512s_tile(0, 7, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 30: k512s_tile(0, 7, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 29: k512s_tile(0, 7, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 27: k512s_tile(0, 6, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 26: k512s_tile(0, 6, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 25: k512s_tile(0, 6, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 23: k512s_tile(0, 5, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 22: k512s_tile(0, 5, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 21: k512s_tile(0, 5, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 19: k512s_tile(0, 4, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 18: k512s_tile(0, 4, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 17: k512s_tile(0, 4, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 15: k512s_tile(0, 3, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 14: k512s_tile(0, 3, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 13: k512s_tile(0, 3, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 11: k512s_tile(0, 2, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 10: k512s_tile(0, 2, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 9: k512s_tile(0, 2, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 7: k512s_tile(0, 1, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 6: k512s_tile(0, 1, 2, n, K, a, lda, p, c, ldc, acc); break;
    default: k512s_tile(0, 1, 1, n, K, a, lda, p, c, ldc, acc); break;
    }
}

/* ---- AVX-512, double: 8 x 24 */
FR_AVX512 static FR_ALWAYS_INLINE void k512d_tile(const int PK, const int M, const int NV, int n,
                                                  ptrdiff_t K, const double *a, ptrdiff_t lda,
                                                  const double *p, double *c, ptrdiff_t ldc, int acc)
{
    __m512d r0[8], r1[8], r2[8];
    ptrdiff_t k;
    int i;
#pragma GCC unroll 8
    for (i = 0; i < M; i++)
        r0[i] = r1[i] = r2[i] = _mm512_setzero_pd();
    for (k = 0; k < K; k++) {
        __m512d b0 = _mm512_loadu_pd(p), b1 = b0, b2 = b0;
        if (NV > 1)
            b1 = _mm512_loadu_pd(p + 8);
        if (NV > 2)
            b2 = _mm512_loadu_pd(p + 16);
        p += 24;
#pragma GCC unroll 8
        for (i = 0; i < M; i++) {
            __m512d ai = _mm512_set1_pd(PK ? a[k * lda + i] : a[i * lda + k]);
            r0[i] = _mm512_fmadd_pd(ai, b0, r0[i]);
            if (NV > 1)
                r1[i] = _mm512_fmadd_pd(ai, b1, r1[i]);
            if (NV > 2)
                r2[i] = _mm512_fmadd_pd(ai, b2, r2[i]);
        }
    }
    {
        __mmask8 m0 = n >= 8 ? 0xFF : (__mmask8)((1u << n) - 1);
        __mmask8 m1 = n >= 16 ? 0xFF : n <= 8 ? 0 : (__mmask8)((1u << (n - 8)) - 1);
        __mmask8 m2 = n >= 24 ? 0xFF : n <= 16 ? 0 : (__mmask8)((1u << (n - 16)) - 1);
#pragma GCC unroll 8
        for (i = 0; i < M; i++) {
            double *ci = c + i * ldc;
            if (acc) {
                r0[i] = _mm512_add_pd(_mm512_maskz_loadu_pd(m0, ci), r0[i]);
                if (NV > 1)
                    r1[i] = _mm512_add_pd(_mm512_maskz_loadu_pd(m1, ci + 8), r1[i]);
                if (NV > 2)
                    r2[i] = _mm512_add_pd(_mm512_maskz_loadu_pd(m2, ci + 16), r2[i]);
            }
            _mm512_mask_storeu_pd(ci, m0, r0[i]);
            if (NV > 1)
                _mm512_mask_storeu_pd(ci + 8, m1, r1[i]);
            if (NV > 2)
                _mm512_mask_storeu_pd(ci + 16, m2, r2[i]);
        }
    }
}

FR_AVX512 static void k512d(int m, int n, ptrdiff_t K, const double *a, ptrdiff_t lda,
                           const double *p, double *c, ptrdiff_t ldc, int acc)
{
    int nv = n > 16 ? 3 : n > 8 ? 2 : 1;
    switch (m * 4 + nv) {
    case 35: k512d_tile(0, 8, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 34: k512d_tile(0, 8, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 33: k512d_tile(0, 8, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 31: k512d_tile(0, 7, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 30: k512d_tile(0, 7, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 29: k512d_tile(0, 7, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 27: k512d_tile(0, 6, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 26: k512d_tile(0, 6, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 25: k512d_tile(0, 6, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 23: k512d_tile(0, 5, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 22: k512d_tile(0, 5, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 21: k512d_tile(0, 5, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 19: k512d_tile(0, 4, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 18: k512d_tile(0, 4, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 17: k512d_tile(0, 4, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 15: k512d_tile(0, 3, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 14: k512d_tile(0, 3, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 13: k512d_tile(0, 3, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 11: k512d_tile(0, 2, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 10: k512d_tile(0, 2, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 9: k512d_tile(0, 2, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 7: k512d_tile(0, 1, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 6: k512d_tile(0, 1, 2, n, K, a, lda, p, c, ldc, acc); break;
    default: k512d_tile(0, 1, 1, n, K, a, lda, p, c, ldc, acc); break;
    }
}

/* ---- AVX2 + FMA, float: 4 x 24 (12 accumulators, 3 panel rows, 1 broadcast) */
FR_AVX2 static FR_ALWAYS_INLINE void k2s_tile(const int PK, const int M, const int NV, int n,
                                              ptrdiff_t K, const float *a, ptrdiff_t lda,
                                              const float *p, float *c, ptrdiff_t ldc, int acc)
{
    __m256 r0[4], r1[4], r2[4];
    ptrdiff_t k;
    int i, j;
#pragma GCC unroll 4
    for (i = 0; i < M; i++)
        r0[i] = r1[i] = r2[i] = _mm256_setzero_ps();
    for (k = 0; k < K; k++) {
        __m256 b0 = _mm256_loadu_ps(p), b1 = b0, b2 = b0;
        if (NV > 1)
            b1 = _mm256_loadu_ps(p + 8);
        if (NV > 2)
            b2 = _mm256_loadu_ps(p + 16);
        p += 24;
#pragma GCC unroll 4
        for (i = 0; i < M; i++) {
            __m256 ai = _mm256_broadcast_ss(PK ? a + k * lda + i : a + i * lda + k);
            r0[i] = _mm256_fmadd_ps(ai, b0, r0[i]);
            if (NV > 1)
                r1[i] = _mm256_fmadd_ps(ai, b1, r1[i]);
            if (NV > 2)
                r2[i] = _mm256_fmadd_ps(ai, b2, r2[i]);
        }
    }
#pragma GCC unroll 4
    for (i = 0; i < M; i++) {
        float *ci = c + i * ldc;
        if (n == NV * 8) {
            if (acc) {
                r0[i] = _mm256_add_ps(_mm256_loadu_ps(ci), r0[i]);
                if (NV > 1)
                    r1[i] = _mm256_add_ps(_mm256_loadu_ps(ci + 8), r1[i]);
                if (NV > 2)
                    r2[i] = _mm256_add_ps(_mm256_loadu_ps(ci + 16), r2[i]);
            }
            _mm256_storeu_ps(ci, r0[i]);
            if (NV > 1)
                _mm256_storeu_ps(ci + 8, r1[i]);
            if (NV > 2)
                _mm256_storeu_ps(ci + 16, r2[i]);
        } else {
            float tile[24];
            _mm256_storeu_ps(tile, r0[i]); /* r1, r2: zero past NV */
            _mm256_storeu_ps(tile + 8, r1[i]);
            _mm256_storeu_ps(tile + 16, r2[i]);
            if (acc)
                for (j = 0; j < n; j++)
                    ci[j] = ci[j] + tile[j];
            else
                for (j = 0; j < n; j++)
                    ci[j] = tile[j];
        }
    }
}

FR_AVX2 static void k2s(int m, int n, ptrdiff_t K, const float *a, ptrdiff_t lda,
                       const float *p, float *c, ptrdiff_t ldc, int acc)
{
    int nv = n > 16 ? 3 : n > 8 ? 2 : 1;
    switch (m * 4 + nv) {
    case 19: k2s_tile(0, 4, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 18: k2s_tile(0, 4, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 17: k2s_tile(0, 4, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 15: k2s_tile(0, 3, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 14: k2s_tile(0, 3, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 13: k2s_tile(0, 3, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 11: k2s_tile(0, 2, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 10: k2s_tile(0, 2, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 9: k2s_tile(0, 2, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 7: k2s_tile(0, 1, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 6: k2s_tile(0, 1, 2, n, K, a, lda, p, c, ldc, acc); break;
    default: k2s_tile(0, 1, 1, n, K, a, lda, p, c, ldc, acc); break;
    }
}

/* ---- AVX2 + FMA, double: 4 x 12 */
FR_AVX2 static FR_ALWAYS_INLINE void k2d_tile(const int PK, const int M, const int NV, int n,
                                              ptrdiff_t K, const double *a, ptrdiff_t lda,
                                              const double *p, double *c, ptrdiff_t ldc, int acc)
{
    __m256d r0[4], r1[4], r2[4];
    ptrdiff_t k;
    int i, j;
#pragma GCC unroll 4
    for (i = 0; i < M; i++)
        r0[i] = r1[i] = r2[i] = _mm256_setzero_pd();
    for (k = 0; k < K; k++) {
        __m256d b0 = _mm256_loadu_pd(p), b1 = b0, b2 = b0;
        if (NV > 1)
            b1 = _mm256_loadu_pd(p + 4);
        if (NV > 2)
            b2 = _mm256_loadu_pd(p + 8);
        p += 12;
#pragma GCC unroll 4
        for (i = 0; i < M; i++) {
            __m256d ai = _mm256_broadcast_sd(PK ? a + k * lda + i : a + i * lda + k);
            r0[i] = _mm256_fmadd_pd(ai, b0, r0[i]);
            if (NV > 1)
                r1[i] = _mm256_fmadd_pd(ai, b1, r1[i]);
            if (NV > 2)
                r2[i] = _mm256_fmadd_pd(ai, b2, r2[i]);
        }
    }
#pragma GCC unroll 4
    for (i = 0; i < M; i++) {
        double *ci = c + i * ldc;
        if (n == NV * 4) {
            if (acc) {
                r0[i] = _mm256_add_pd(_mm256_loadu_pd(ci), r0[i]);
                if (NV > 1)
                    r1[i] = _mm256_add_pd(_mm256_loadu_pd(ci + 4), r1[i]);
                if (NV > 2)
                    r2[i] = _mm256_add_pd(_mm256_loadu_pd(ci + 8), r2[i]);
            }
            _mm256_storeu_pd(ci, r0[i]);
            if (NV > 1)
                _mm256_storeu_pd(ci + 4, r1[i]);
            if (NV > 2)
                _mm256_storeu_pd(ci + 8, r2[i]);
        } else {
            double tile[12];
            _mm256_storeu_pd(tile, r0[i]); /* r1, r2: zero past NV */
            _mm256_storeu_pd(tile + 4, r1[i]);
            _mm256_storeu_pd(tile + 8, r2[i]);
            if (acc)
                for (j = 0; j < n; j++)
                    ci[j] = ci[j] + tile[j];
            else
                for (j = 0; j < n; j++)
                    ci[j] = tile[j];
        }
    }
}

FR_AVX2 static void k2d(int m, int n, ptrdiff_t K, const double *a, ptrdiff_t lda,
                       const double *p, double *c, ptrdiff_t ldc, int acc)
{
    int nv = n > 8 ? 3 : n > 4 ? 2 : 1;
    switch (m * 4 + nv) {
    case 19: k2d_tile(0, 4, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 18: k2d_tile(0, 4, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 17: k2d_tile(0, 4, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 15: k2d_tile(0, 3, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 14: k2d_tile(0, 3, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 13: k2d_tile(0, 3, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 11: k2d_tile(0, 2, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 10: k2d_tile(0, 2, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 9: k2d_tile(0, 2, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 7: k2d_tile(0, 1, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 6: k2d_tile(0, 1, 2, n, K, a, lda, p, c, ldc, acc); break;
    default: k2d_tile(0, 1, 1, n, K, a, lda, p, c, ldc, acc); break;
    }
}

/* ---- the same tiles on an A packed k-major (a[k * MR + i], the team GEMM's layout) */
FR_AVX512 static void k512s_p(int m, int n, ptrdiff_t K, const float *a, ptrdiff_t lda,
                             const float *p, float *c, ptrdiff_t ldc, int acc)
{
    lda = 8; /* packed: rows of 8 */
    int nv = n > 32 ? 3 : n > 16 ? 2 : 1;
    switch (m * 4 + nv) {
    case 35: k512s_tile(1, 8, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 34: k512s_tile(1, 8, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 33: k512s_tile(1, 8, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 31: k512s_tile(1, 7, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 30: k512s_tile(1, 7, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 29: k512s_tile(1, 7, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 27: k512s_tile(1, 6, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 26: k512s_tile(1, 6, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 25: k512s_tile(1, 6, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 23: k512s_tile(1, 5, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 22: k512s_tile(1, 5, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 21: k512s_tile(1, 5, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 19: k512s_tile(1, 4, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 18: k512s_tile(1, 4, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 17: k512s_tile(1, 4, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 15: k512s_tile(1, 3, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 14: k512s_tile(1, 3, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 13: k512s_tile(1, 3, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 11: k512s_tile(1, 2, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 10: k512s_tile(1, 2, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 9: k512s_tile(1, 2, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 7: k512s_tile(1, 1, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 6: k512s_tile(1, 1, 2, n, K, a, lda, p, c, ldc, acc); break;
    default: k512s_tile(1, 1, 1, n, K, a, lda, p, c, ldc, acc); break;
    }
}

FR_AVX512 static void k512d_p(int m, int n, ptrdiff_t K, const double *a, ptrdiff_t lda,
                             const double *p, double *c, ptrdiff_t ldc, int acc)
{
    lda = 8; /* packed: rows of 8 */
    int nv = n > 16 ? 3 : n > 8 ? 2 : 1;
    switch (m * 4 + nv) {
    case 35: k512d_tile(1, 8, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 34: k512d_tile(1, 8, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 33: k512d_tile(1, 8, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 31: k512d_tile(1, 7, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 30: k512d_tile(1, 7, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 29: k512d_tile(1, 7, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 27: k512d_tile(1, 6, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 26: k512d_tile(1, 6, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 25: k512d_tile(1, 6, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 23: k512d_tile(1, 5, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 22: k512d_tile(1, 5, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 21: k512d_tile(1, 5, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 19: k512d_tile(1, 4, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 18: k512d_tile(1, 4, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 17: k512d_tile(1, 4, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 15: k512d_tile(1, 3, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 14: k512d_tile(1, 3, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 13: k512d_tile(1, 3, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 11: k512d_tile(1, 2, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 10: k512d_tile(1, 2, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 9: k512d_tile(1, 2, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 7: k512d_tile(1, 1, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 6: k512d_tile(1, 1, 2, n, K, a, lda, p, c, ldc, acc); break;
    default: k512d_tile(1, 1, 1, n, K, a, lda, p, c, ldc, acc); break;
    }
}

FR_AVX2 static void k2s_p(int m, int n, ptrdiff_t K, const float *a, ptrdiff_t lda,
                         const float *p, float *c, ptrdiff_t ldc, int acc)
{
    lda = 4; /* packed: rows of 4 */
    int nv = n > 16 ? 3 : n > 8 ? 2 : 1;
    switch (m * 4 + nv) {
    case 19: k2s_tile(1, 4, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 18: k2s_tile(1, 4, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 17: k2s_tile(1, 4, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 15: k2s_tile(1, 3, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 14: k2s_tile(1, 3, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 13: k2s_tile(1, 3, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 11: k2s_tile(1, 2, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 10: k2s_tile(1, 2, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 9: k2s_tile(1, 2, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 7: k2s_tile(1, 1, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 6: k2s_tile(1, 1, 2, n, K, a, lda, p, c, ldc, acc); break;
    default: k2s_tile(1, 1, 1, n, K, a, lda, p, c, ldc, acc); break;
    }
}

FR_AVX2 static void k2d_p(int m, int n, ptrdiff_t K, const double *a, ptrdiff_t lda,
                         const double *p, double *c, ptrdiff_t ldc, int acc)
{
    lda = 4; /* packed: rows of 4 */
    int nv = n > 8 ? 3 : n > 4 ? 2 : 1;
    switch (m * 4 + nv) {
    case 19: k2d_tile(1, 4, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 18: k2d_tile(1, 4, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 17: k2d_tile(1, 4, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 15: k2d_tile(1, 3, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 14: k2d_tile(1, 3, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 13: k2d_tile(1, 3, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 11: k2d_tile(1, 2, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 10: k2d_tile(1, 2, 2, n, K, a, lda, p, c, ldc, acc); break;
    case 9: k2d_tile(1, 2, 1, n, K, a, lda, p, c, ldc, acc); break;
    case 7: k2d_tile(1, 1, 3, n, K, a, lda, p, c, ldc, acc); break;
    case 6: k2d_tile(1, 1, 2, n, K, a, lda, p, c, ldc, acc); break;
    default: k2d_tile(1, 1, 1, n, K, a, lda, p, c, ldc, acc); break;
    }
}

#endif /* FR_X86 */

/* ================================================================ the drivers, per dtype */

#define FT float
#define SFX(name) name##_f32
#define FR_ACT fr_act_f32
#define FR_DACT fr_dact_f32
#include "packed_step_impl.h"
#undef FT
#undef SFX
#undef FR_ACT
#undef FR_DACT

#define FT double
#define SFX(name) name##_f64
#define FR_ACT fr_act_f64
#define FR_DACT fr_dact_f64
#include "packed_step_impl.h"
#undef FT
#undef SFX
#undef FR_ACT
#undef FR_DACT

static kern_t_f32 kernel_for_f32(int isa)
{
    kern_t_f32 k;
    (void)isa;
#if FR_X86
    if (isa >= FR_ISA_AVX512) {
        k.mr = 8; k.nr = 48; k.kern = k512s; k.kern_p = k512s_p; k.vw = 16;
        return k;
    }
    if (isa >= FR_ISA_AVX2) {
        k.mr = 4; k.nr = 24; k.kern = k2s; k.kern_p = k2s_p; k.vw = 8;
        return k;
    }
#endif
    k.mr = 4; k.nr = 16; k.kern = kern_generic_f32; k.kern_p = kern_generic_p_f32; k.vw = 16;
    return k;
}

static kern_t_f64 kernel_for_f64(int isa)
{
    kern_t_f64 k;
    (void)isa;
#if FR_X86
    if (isa >= FR_ISA_AVX512) {
        k.mr = 8; k.nr = 24; k.kern = k512d; k.kern_p = k512d_p; k.vw = 8;
        return k;
    }
    if (isa >= FR_ISA_AVX2) {
        k.mr = 4; k.nr = 12; k.kern = k2d; k.kern_p = k2d_p; k.vw = 4;
        return k;
    }
#endif
    k.mr = 4; k.nr = 8; k.kern = kern_generic_f64; k.kern_p = kern_generic_p_f64; k.vw = 8;
    return k;
}
