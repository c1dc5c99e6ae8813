/*
 * packed_step_impl.h -- the dtype-generic part of packed_step.c, included
 * once per dtype with FT (the float type), SFX(name) (name with the dtype
 * suffix) and FR_ACT / FR_DACT (the activation callback types) defined.
 * Not a public header.
 */

/* A micro-kernel: c[i][j] (+)= sum_k a[i*lda + k] * p[k*nr + j] for i < m <= mr,
 * j < n <= nr, k = 0 .. K-1 in order; the sum is formed first and then added
 * to c (acc) or stored (not acc). */
typedef void (*SFX(kern_fn))(int m, int n, ptrdiff_t K, const FT *a, ptrdiff_t lda,
                             const FT *p, FT *c, ptrdiff_t ldc, int acc);

typedef struct {
    int mr, nr;
    int vw;              /* columns per vector: a thread's columns start at multiples of it */
    SFX(kern_fn) kern;   /* A row-major, read in place: a[i * lda + k] */
    SFX(kern_fn) kern_p; /* A packed k-major: a[k * mr + i] (lda unused) */
} SFX(kern_t);

static SFX(kern_t) SFX(kernel_for)(int isa); /* in packed_step.c */

/* ---- portable C micro-kernel (what a CPU without AVX2 runs; gcc/clang
 * vectorise the j loops with SSE2 or NEON). */
#define FR_GEN_MR 4
#define FR_GEN_NR (64 / (int)sizeof(FT))

static void SFX(kern_generic)(int m, int n, ptrdiff_t K, const FT *a, ptrdiff_t lda,
                              const FT *p, FT *c, ptrdiff_t ldc, int acc)
{
    FT r[FR_GEN_MR][FR_GEN_NR];
    int i, j;
    ptrdiff_t k;
    for (i = 0; i < FR_GEN_MR; i++)
        for (j = 0; j < FR_GEN_NR; j++)
            r[i][j] = 0;
    for (k = 0; k < K; k++) {
        const FT *pk = p + k * FR_GEN_NR;
        for (i = 0; i < m; i++) {
            FT ai = a[i * lda + k];
            for (j = 0; j < FR_GEN_NR; j++)
                r[i][j] += ai * pk[j];
        }
    }
    for (i = 0; i < m; i++) {
        FT *ci = c + i * ldc;
        if (acc)
            for (j = 0; j < n; j++)
                ci[j] += r[i][j];
        else
            for (j = 0; j < n; j++)
                ci[j] = r[i][j];
    }
}

/* The portable tile on an A packed k-major (a[k * FR_GEN_MR + i]). */
static void SFX(kern_generic_p)(int m, int n, ptrdiff_t K, const FT *a, ptrdiff_t lda,
                                const FT *p, FT *c, ptrdiff_t ldc, int acc)
{
    FT r[FR_GEN_MR][FR_GEN_NR];
    int i, j;
    ptrdiff_t k;
    (void)lda;
    for (i = 0; i < FR_GEN_MR; i++)
        for (j = 0; j < FR_GEN_NR; j++)
            r[i][j] = 0;
    for (k = 0; k < K; k++) {
        const FT *pk = p + k * FR_GEN_NR;
        const FT *ak = a + k * FR_GEN_MR;
        for (i = 0; i < m; i++) {
            FT ai = ak[i];
            for (j = 0; j < FR_GEN_NR; j++)
                r[i][j] += ai * pk[j];
        }
    }
    for (i = 0; i < m; i++) {
        FT *ci = c + i * ldc;
        if (acc)
            for (j = 0; j < n; j++)
                ci[j] += r[i][j];
        else
            for (j = 0; j < n; j++)
                ci[j] = r[i][j];
    }
}

/* Pack columns js .. je-1 of op(W) (K x N) into their places in the panel of
 * columns j0 .. j0+nr-1 at dst (K x nr); the columns past N are zeroed by the
 * caller whose range ends at N.  op(W) = W (K x N, rows ld apart) or, with
 * trans, W^T for W stored N x K (rows ld apart): op(W)[k][j] = W[j*ld + k]. */
static void SFX(pack_cols)(const FT *w, ptrdiff_t ld, int trans, ptrdiff_t K, ptrdiff_t N,
                           ptrdiff_t j0, int nr, FT *dst, ptrdiff_t js, ptrdiff_t je)
{
    ptrdiff_t k, j, z0 = N - j0, w0 = js - j0, w1 = je - j0;
    if (!trans) {
        for (k = 0; k < K; k++) {
            const FT *src = w + k * ld + j0;
            FT *d = dst + k * nr;
            for (j = w0; j < w1; j++)
                d[j] = src[j];
            if (je >= N)
                for (j = z0; j < nr; j++)
                    d[j] = 0;
        }
    } else {
        /* blocks of 64 k so that the source rows and the destination stay in cache */
        ptrdiff_t k0, k1;
        for (k0 = 0; k0 < K; k0 += 64) {
            k1 = k0 + 64 < K ? k0 + 64 : K;
            for (j = w0; j < w1; j++) {
                const FT *src = w + (j0 + j) * ld;
                for (k = k0; k < k1; k++)
                    dst[k * nr + j] = src[k];
            }
            if (je >= N)
                for (j = z0; j < nr; j++)
                    for (k = k0; k < k1; k++)
                        dst[k * nr + j] = 0;
        }
    }
}

/* Pack the whole panel of columns j0 .. j0+nr-1 (zero past N). */
static void SFX(pack_panel)(const FT *w, ptrdiff_t ld, int trans, ptrdiff_t K, ptrdiff_t N,
                            ptrdiff_t j0, int nr, FT *dst)
{
    SFX(pack_cols)(w, ld, trans, K, N, j0, nr, dst, j0, N - j0 < nr ? N : j0 + nr);
}

/* The columns [c0, c1) a thread of nth owns out of N: a share of the vectors
 * of vw columns (so the pieces of one panel may belong to two threads). */
static void SFX(thread_cols)(const SFX(kern_t) *kt, ptrdiff_t N, int tid, int nth,
                             ptrdiff_t *c0, ptrdiff_t *c1)
{
    ptrdiff_t u = (N + kt->vw - 1) / kt->vw;
    *c0 = kt->vw * (u * tid / nth);
    *c1 = kt->vw * (u * (tid + 1) / nth);
    if (*c1 > N)
        *c1 = N;
}

/* Walk the pieces of [c0, c1) panel by panel: PIECE runs with p (panel), js,
 * nb (the piece's first column and width) and off = js - p * nr. */
#define FR_FOR_PIECES(c0, c1, nr, p, js, nb, off)                                            \
    for (js = (c0); js < (c1) && ((p = js / (nr)), (off = js - p * (nr)),                    \
                                  (nb = (int)((c1) - js < (nr) - off ? (c1) - js : (nr) - off)), 1); \
         js += nb)

/* C[0:M, c0:c1) (+)= A (M x K, rows lda apart) times the packed panels
 * (each K x nr); row blocks of FR_ROW_BLOCK rows outermost, so a block of A
 * stays in cache while the panels pass. */
#define FR_ROW_BLOCK 64
static void SFX(product)(const SFX(kern_t) *kt, ptrdiff_t M, ptrdiff_t K, ptrdiff_t c0,
                         ptrdiff_t c1, const FT *a, ptrdiff_t lda, const FT *packed, FT *c,
                         ptrdiff_t ldc, int acc)
{
    ptrdiff_t r0, r1, i0, p, js, off;
    int mr = kt->mr, nr = kt->nr, nb;
    for (r0 = 0; r0 < M; r0 = r1) {
        r1 = r0 + FR_ROW_BLOCK < M ? r0 + FR_ROW_BLOCK : M;
        FR_FOR_PIECES(c0, c1, nr, p, js, nb, off) {
            const FT *panel = packed + p * K * nr + off;
            for (i0 = r0; i0 < r1; i0 += mr) {
                int m = (int)(r1 - i0 < mr ? r1 - i0 : mr);
                kt->kern(m, nb, K, a + i0 * lda, lda, panel, c + i0 * ldc + js, ldc, acc);
            }
        }
    }
}

static FT *SFX(alloc)(size_t n, void **base)
{
    /* 64-byte aligned, with the base kept for free() */
    char *raw = (char *)malloc(n * sizeof(FT) + 64);
    *base = raw;
    if (raw == NULL)
        return NULL;
    return (FT *)(void *)(raw + (64 - ((uintptr_t)raw & 63)));
}

/* ---------------------------------------------------------------- forward */

typedef struct {
    SFX(kern_t) kt;
    FR_ACT act_fn;
    int act, reverse;
    const FT *x, *w, *wh, *bias, *h0;
    FT *h, *pw, *pwh;
    const unsigned char *mask;
    ptrdiff_t mask_b, mask_t, B, T, D, H, ld, step, npanels;
    fr_sync sync;
} SFX(fwd_args);

static void SFX(forward_job)(void *arg, int tid, int nth)
{
    SFX(fwd_args) *A = (SFX(fwd_args) *)arg;
    const SFX(kern_t) *kt = &A->kt;
    int nr = kt->nr, mr = kt->mr, nb;
    ptrdiff_t B = A->B, T = A->T, D = A->D, H = A->H, ld = A->ld;
    ptrdiff_t c0, c1, p, r, j, k, b, i0, js, off;
    SFX(thread_cols)(kt, H, tid, nth, &c0, &c1);
    /* this thread's columns of the panels of W and W_h (they stay in its caches) */
    FR_FOR_PIECES(c0, c1, nr, p, js, nb, off) {
        if (D > 0)
            SFX(pack_cols)(A->w, H, 0, D, H, p * nr, nr, A->pw + p * D * nr, js, js + nb);
        SFX(pack_cols)(A->wh, H, 0, H, H, p * nr, nr, A->pwh + p * H * nr, js, js + nb);
    }
    /* its columns of z = x W + b over all B*T rows (one layout for x and h) */
    for (r = 0; r < B * T; r++) {
        FT *hr = A->h + r * H;
        if (A->bias != NULL)
            for (j = c0; j < c1; j++)
                hr[j] = A->bias[j];
        else
            for (j = c0; j < c1; j++)
                hr[j] = 0;
    }
    if (D > 0)
        SFX(product)(kt, B * T, D, c0, c1, A->x, D, A->pw, A->h, H, 1);
    /* the steps: z_t += h_p W_h, h_t = act(z_t) on this thread's columns */
    for (k = 0; k < T; k++) {
        ptrdiff_t t = A->reverse ? T - 1 - k : k;
        FT *ht = A->h + t * A->step;
        const FT *hp;
        ptrdiff_t ldp;
        if (k > 0) {
            hp = A->h + (A->reverse ? t + 1 : t - 1) * A->step;
            ldp = ld;
        } else {
            hp = A->h0;
            ldp = H;
        }
        FR_FOR_PIECES(c0, c1, nr, p, js, nb, off) {
            if (hp != NULL) {
                const FT *panel = A->pwh + p * H * nr + off;
                for (i0 = 0; i0 < B; i0 += mr) {
                    int m = (int)(B - i0 < mr ? B - i0 : mr);
                    kt->kern(m, nb, H, hp + i0 * ldp, ldp, panel, ht + i0 * ld + js, ld, 1);
                }
            }
            A->act_fn(A->act, ht + js, B, nb, ld);
            if (A->mask != NULL) /* masked steps carry the state */
                for (b = 0; b < B; b++)
                    if (!A->mask[b * A->mask_b + t * A->mask_t]) {
                        if (hp != NULL)
                            memcpy(ht + b * ld + js, hp + b * ldp + js, nb * sizeof(FT));
                        else
                            memset(ht + b * ld + js, 0, nb * sizeof(FT));
                    }
        }
        if (k < T - 1)
            fr_barrier(&A->sync, nth);
    }
}

int SFX(fr_rnn_forward)(FR_ACT act_fn, int act, const FT *x, const FT *w, const FT *wh,
                        const FT *bias, const FT *h0, FT *h, const unsigned char *mask,
                        ptrdiff_t mask_b, ptrdiff_t mask_t, ptrdiff_t B, ptrdiff_t T,
                        ptrdiff_t D, ptrdiff_t H, ptrdiff_t ld, ptrdiff_t step, int reverse)
{
    SFX(fwd_args) A;
    void *base;
    FT *buf;
    if (B <= 0 || T <= 0 || H <= 0)
        return 1;
    A.kt = SFX(kernel_for)(fr_get_isa());
    A.npanels = (H + A.kt.nr - 1) / A.kt.nr;
    buf = SFX(alloc)((size_t)A.npanels * A.kt.nr * (size_t)(D + H), &base);
    if (buf == NULL)
        return 0;
    A.pw = buf;
    A.pwh = buf + A.npanels * A.kt.nr * D;
    A.act_fn = act_fn;
    A.act = act;
    A.reverse = reverse;
    A.x = x;
    A.w = w;
    A.wh = wh;
    A.bias = bias;
    A.h0 = h0;
    A.h = h;
    A.mask = mask;
    A.mask_b = mask_b;
    A.mask_t = mask_t;
    A.B = B;
    A.T = T;
    A.D = D;
    A.H = H;
    A.ld = ld;
    A.step = step;
    fr_sync_init(&A.sync);
    fr_team_run(SFX(forward_job), &A, (H + A.kt.vw - 1) / A.kt.vw);
    free(base);
    return 1;
}

/* ---------------------------------------------------------------- BPTT carry */

typedef struct {
    SFX(kern_t) kt;
    FR_DACT dact_fn;
    int act, reverse, want_dh0;
    const FT *h, *wh, *dh_seq, *dh_last, *rec_mask;
    FT *dz, *g, *pwt;
    const unsigned char *mask;
    ptrdiff_t mask_b, mask_t, B, T, H, ld, step, npanels;
    fr_sync sync;
} SFX(carry_args);

/* dz_t = (dh_t + carry) * act'(z_t) on columns c0..c1 (carry B x H or NULL);
 * with a step mask, masked rows move dz_t into g and get dz_t = 0, kept rows
 * get g = 0 (the product then adds to g). */
static void SFX(carry_epilogue)(const SFX(carry_args) *A, ptrdiff_t t, const FT *carry,
                                ptrdiff_t c0, ptrdiff_t c1)
{
    int nr = A->kt.nr, nb;
    ptrdiff_t p, b, j, j0, off, H = A->H, ld = A->ld;
    FT *dzt = A->dz + t * A->step;
    const FT *dht = A->dh_seq != NULL ? A->dh_seq + t * A->step : NULL;
    FR_FOR_PIECES(c0, c1, nr, p, j0, nb, off) {
        for (b = 0; b < A->B; b++) {
            FT *d = dzt + b * ld + j0;
            const FT *s = dht != NULL ? dht + b * ld + j0 : NULL;
            const FT *c = carry != NULL ? carry + b * H + j0 : NULL;
            if (s != NULL && c != NULL)
                for (j = 0; j < nb; j++)
                    d[j] = s[j] + c[j];
            else if (s != NULL) {
                if (s != d)
                    memcpy(d, s, nb * sizeof(FT));
            } else if (c != NULL)
                memcpy(d, c, nb * sizeof(FT));
            else
                memset(d, 0, nb * sizeof(FT));
            if (A->mask != NULL) {
                FT *gb = A->g + b * H + j0;
                if (A->mask[b * A->mask_b + t * A->mask_t])
                    memset(gb, 0, nb * sizeof(FT));
                else {
                    memcpy(gb, d, nb * sizeof(FT));
                    memset(d, 0, nb * sizeof(FT));
                }
            }
        }
        A->dact_fn(A->act, A->h + t * A->step + j0, dzt + j0, A->B, nb, ld);
    }
}

static void SFX(carry_job)(void *arg, int tid, int nth)
{
    SFX(carry_args) *A = (SFX(carry_args) *)arg;
    const SFX(kern_t) *kt = &A->kt;
    int nr = kt->nr, mr = kt->mr, nb;
    ptrdiff_t B = A->B, T = A->T, H = A->H, ld = A->ld;
    ptrdiff_t c0, c1, p, k, b, j, i0, j0, off;
    SFX(thread_cols)(kt, H, tid, nth, &c0, &c1);
    FR_FOR_PIECES(c0, c1, nr, p, j0, nb, off) /* this thread's columns of W_h^T */
        SFX(pack_cols)(A->wh, H, 1, H, H, p * nr, nr, A->pwt + p * H * nr, j0, j0 + nb);
    SFX(carry_epilogue)(A, A->reverse ? 0 : T - 1, A->dh_last, c0, c1);
    fr_barrier(&A->sync, nth);
    for (k = 0; k < T; k++) {
        ptrdiff_t t = A->reverse ? k : T - 1 - k;
        const FT *dzt = A->dz + t * A->step;
        if (k < T - 1 || A->want_dh0) {
            /* g (+)= dz_t W_h^T on this thread's columns (+ with a mask: g holds
             * the carried gradient of the masked rows, zero elsewhere) */
            FR_FOR_PIECES(c0, c1, nr, p, j0, nb, off) {
                const FT *panel = A->pwt + p * H * nr + off;
                for (i0 = 0; i0 < B; i0 += mr) {
                    int m = (int)(B - i0 < mr ? B - i0 : mr);
                    kt->kern(m, nb, H, dzt + i0 * ld, ld, panel, A->g + i0 * H + j0, H,
                             A->mask != NULL);
                }
                if (A->rec_mask != NULL) /* times rm, on the product only */
                    for (b = 0; b < B; b++)
                        if (A->mask == NULL || A->mask[b * A->mask_b + t * A->mask_t]) {
                            FT *gb = A->g + b * H + j0;
                            const FT *rm = A->rec_mask + b * H + j0;
                            for (j = 0; j < nb; j++)
                                gb[j] = gb[j] * rm[j];
                        }
            }
        }
        if (k < T - 1) {
            SFX(carry_epilogue)(A, A->reverse ? t + 1 : t - 1, A->g, c0, c1);
            fr_barrier(&A->sync, nth);
        }
    }
}

int SFX(fr_rnn_carry)(FR_DACT dact_fn, int act, const FT *h, const FT *wh, const FT *dh_seq,
                      const FT *dh_last, FT *dz, FT *g, const unsigned char *mask,
                      ptrdiff_t mask_b, ptrdiff_t mask_t, const FT *rec_mask, ptrdiff_t B,
                      ptrdiff_t T, ptrdiff_t H, ptrdiff_t ld, ptrdiff_t step, int reverse,
                      int want_dh0)
{
    SFX(carry_args) A;
    void *base;
    if (B <= 0 || T <= 0 || H <= 0)
        return 1;
    A.kt = SFX(kernel_for)(fr_get_isa());
    A.npanels = (H + A.kt.nr - 1) / A.kt.nr;
    A.pwt = SFX(alloc)((size_t)A.npanels * A.kt.nr * (size_t)H, &base);
    if (A.pwt == NULL)
        return 0;
    A.dact_fn = dact_fn;
    A.act = act;
    A.reverse = reverse;
    A.want_dh0 = want_dh0;
    A.h = h;
    A.wh = wh;
    A.dh_seq = dh_seq;
    A.dh_last = dh_last;
    A.rec_mask = rec_mask;
    A.dz = dz;
    A.g = g;
    A.mask = mask;
    A.mask_b = mask_b;
    A.mask_t = mask_t;
    A.B = B;
    A.T = T;
    A.H = H;
    A.ld = ld;
    A.step = step;
    fr_sync_init(&A.sync);
    fr_team_run(SFX(carry_job), &A, (H + A.kt.vw - 1) / A.kt.vw);
    free(base);
    return 1;
}

/* ---------------------------------------------------------------- the team GEMM
 *
 * C (M x N) (+)= op(A) op(B) with no BLAS: both operands are packed by the
 * team into the micro-kernel's layouts (op(A) in micro-panels of mr rows,
 * k-major; op(B) in panels of nr columns), in blocks of FR_KC along k, then
 * one barrier, then each thread computes its own tiles of C: a contiguous
 * range of column panels (or of row micro-panels, whichever divides more
 * evenly), over all k blocks in order.  An element of C is the sum of its
 * k blocks in order (each block summed by the micro-kernel, k in order),
 * added to C, so results do not depend on the thread count.
 */
#define FR_KC 256
#define FR_NC_BYTES (192 * 1024) /* a thread's block of B panels: stays in its L2 */

typedef struct {
    SFX(kern_t) kt;
    int ta, tb, acc;
    ptrdiff_t M, N, K, lda, ldb, ldc, kg, ags, bgs;
    const FT *a, *b;
    FT *c, *pa, *pb;
    ptrdiff_t npa, npb, nkb;
    fr_sync sync;
} SFX(tgemm_args);

/* Offsets of steps k0 .. k0+kc-1 along an operand's k dimension: k = g * kg + r
 * sits at g * gs + r * ks (ks: the rows' distance when k runs over rows, else 1). */
static void SFX(koffs)(ptrdiff_t *offs, ptrdiff_t k0, ptrdiff_t kc, ptrdiff_t kg, ptrdiff_t gs,
                       ptrdiff_t ks)
{
    ptrdiff_t kk, g = kg > 0 ? k0 / kg : 0, r = kg > 0 ? k0 % kg : k0;
    for (kk = 0; kk < kc; kk++) {
        offs[kk] = g * gs + r * ks;
        if (++r == kg) {
            r = 0;
            g++;
        }
    }
}

/* Pack k block kb of micro-panels ip0 .. ip1-1 of op(A):
 * dst_ip[kk * mr + i] = op(A)[ip * mr + i][k0 + kk]. */
#define FR_PACK_GROUP 8 /* micro-panels per unit of packing work: whole cache lines of A^T rows */
#define FR_PREFETCH 4   /* rows of A^T read ahead (rows far apart defeat the prefetchers) */
static void SFX(tgemm_pack_a)(const SFX(tgemm_args) *G, ptrdiff_t kb, ptrdiff_t ip0,
                              ptrdiff_t ip1)
{
    int mr = G->kt.mr;
    ptrdiff_t k0 = kb * FR_KC, kc = G->K - k0 < FR_KC ? G->K - k0 : FR_KC;
    ptrdiff_t ip, i, kk;
    FT *dst0 = G->pa + k0 * G->npa * mr;
    ptrdiff_t offs[FR_KC];
    SFX(koffs)(offs, k0, kc, G->kg, G->ags, G->ta ? G->lda : 1);
    if (G->ta) { /* A stored K x M: row k holds op(A)[.][k] */
        ptrdiff_t c0 = ip0 * mr, c1 = ip1 * mr < G->M ? ip1 * mr : G->M;
        for (kk = 0; kk < kc; kk++) {
            const FT *src = G->a + offs[kk];
            if (kk + FR_PREFETCH < kc) {
                const char *ahead = (const char *)(G->a + offs[kk + FR_PREFETCH] + c0);
                ptrdiff_t bytes = (c1 - c0) * (ptrdiff_t)sizeof(FT), o;
                for (o = 0; o < bytes; o += 64)
                    __builtin_prefetch(ahead + o);
            }
            for (ip = ip0; ip < ip1; ip++) {
                ptrdiff_t i0 = ip * mr, m = G->M - i0 < mr ? G->M - i0 : mr;
                FT *d = dst0 + ip * mr * kc + kk * mr;
                const FT *sr = src + i0;
                if (m == 8 && mr == 8)
                    for (i = 0; i < 8; i++)
                        d[i] = sr[i];
                else {
                    for (i = 0; i < m; i++)
                        d[i] = sr[i];
                    for (; i < mr; i++)
                        d[i] = 0;
                }
            }
        }
    } else { /* A stored M x K */
        for (ip = ip0; ip < ip1; ip++) {
            ptrdiff_t i0 = ip * mr, m = G->M - i0 < mr ? G->M - i0 : mr;
            FT *dst = dst0 + ip * mr * kc;
            for (i = 0; i < m; i++) {
                const FT *src = G->a + (i0 + i) * G->lda;
                for (kk = 0; kk < kc; kk++)
                    dst[kk * mr + i] = src[offs[kk]];
            }
            for (; i < mr; i++)
                for (kk = 0; kk < kc; kk++)
                    dst[kk * mr + i] = 0;
        }
    }
}

/* Pack k block kb of panel jp of op(B): dst[kk * nr + j] = op(B)[k0 + kk][j0 + j]. */
static void SFX(tgemm_pack_b)(const SFX(tgemm_args) *G, ptrdiff_t kb, ptrdiff_t jp)
{
    int nr = G->kt.nr;
    ptrdiff_t k0 = kb * FR_KC, kc = G->K - k0 < FR_KC ? G->K - k0 : FR_KC;
    ptrdiff_t j0 = jp * nr, nb = G->N - j0 < nr ? G->N - j0 : nr, j, kk;
    FT *dst = G->pb + k0 * G->npb * nr + jp * nr * kc;
    ptrdiff_t offs[FR_KC];
    SFX(koffs)(offs, k0, kc, G->kg, G->bgs, G->tb ? 1 : G->ldb);
    if (!G->tb) { /* B stored K x N */
        for (kk = 0; kk < kc; kk++) {
            const FT *src = G->b + offs[kk] + j0;
            FT *d = dst + kk * nr;
            if (kk + FR_PREFETCH < kc) {
                const char *ahead = (const char *)(G->b + offs[kk + FR_PREFETCH] + j0);
                ptrdiff_t o, bytes = nb * (ptrdiff_t)sizeof(FT);
                for (o = 0; o < bytes; o += 64)
                    __builtin_prefetch(ahead + o);
            }
            for (j = 0; j < nb; j++)
                d[j] = src[j];
            for (; j < nr; j++)
                d[j] = 0;
        }
    } else { /* B stored N x K */
        for (j = 0; j < nb; j++) {
            const FT *src = G->b + (j0 + j) * G->ldb;
            for (kk = 0; kk < kc; kk++)
                dst[kk * nr + j] = src[offs[kk]];
        }
        for (; j < nr; j++)
            for (kk = 0; kk < kc; kk++)
                dst[kk * nr + j] = 0;
    }
}

static void SFX(tgemm_job)(void *arg, int tid, int nth)
{
    SFX(tgemm_args) *G = (SFX(tgemm_args) *)arg;
    const SFX(kern_t) *kt = &G->kt;
    int mr = kt->mr, nr = kt->nr;
    ptrdiff_t npa = G->npa, npb = G->npb, nkb = G->nkb, u, u0, u1, ng;
    ptrdiff_t r0 = 0, r1 = npa, q0 = 0, q1 = npb, jb, je, kb, ip, jp;
    ptrdiff_t ncp = FR_NC_BYTES / ((ptrdiff_t)FR_KC * nr * (ptrdiff_t)sizeof(FT));
    if (ncp < 1)
        ncp = 1;
    /* this thread's share of the packing (A's micro-panels, then B's panels) */
    ng = (npa + FR_PACK_GROUP - 1) / FR_PACK_GROUP;
    u0 = ng * nkb * tid / nth;
    u1 = ng * nkb * (tid + 1) / nth;
    for (u = u0; u < u1; u++) {
        ptrdiff_t g0 = (u % ng) * FR_PACK_GROUP;
        SFX(tgemm_pack_a)(G, u / ng, g0, g0 + FR_PACK_GROUP < npa ? g0 + FR_PACK_GROUP : npa);
    }
    u0 = npb * nkb * tid / nth;
    u1 = npb * nkb * (tid + 1) / nth;
    for (u = u0; u < u1; u++)
        SFX(tgemm_pack_b)(G, u / npb, u % npb);
    fr_barrier(&G->sync, nth);
    /* its tiles: split the dimension whose largest share is the smaller */
    if (nth > 1) {
        ptrdiff_t by_rows = (npa + nth - 1) / nth * npb, by_cols = (npb + nth - 1) / nth * npa;
        if (by_rows < by_cols) {
            r0 = npa * tid / nth;
            r1 = npa * (tid + 1) / nth;
        } else {
            q0 = npb * tid / nth;
            q1 = npb * (tid + 1) / nth;
        }
    }
    for (jb = q0; jb < q1; jb = je) {
        je = jb + ncp < q1 ? jb + ncp : q1;
        for (kb = 0; kb < nkb; kb++) {
            ptrdiff_t k0 = kb * FR_KC, kc = G->K - k0 < FR_KC ? G->K - k0 : FR_KC;
            const FT *pa = G->pa + k0 * npa * mr, *pb = G->pb + k0 * npb * nr;
            int acc = G->acc || kb > 0;
            for (ip = r0; ip < r1; ip++) {
                ptrdiff_t i0 = ip * mr;
                int m = (int)(G->M - i0 < mr ? G->M - i0 : mr);
                for (jp = jb; jp < je; jp++) {
                    ptrdiff_t j0 = jp * nr;
                    int nb = (int)(G->N - j0 < nr ? G->N - j0 : nr);
                    kt->kern_p(m, nb, kc, pa + ip * mr * kc, 0, pb + jp * nr * kc,
                               G->c + i0 * G->ldc + j0, G->ldc, acc);
                }
            }
        }
    }
}

int SFX(fr_team_gemm)(int trans_a, int trans_b, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                      const FT *a, ptrdiff_t lda, const FT *b, ptrdiff_t ldb, FT *c,
                      ptrdiff_t ldc, int accumulate, ptrdiff_t kgroup, ptrdiff_t a_gstride,
                      ptrdiff_t b_gstride)
{
    SFX(tgemm_args) G;
    void *base;
    size_t na, nb;
    if (M <= 0 || N <= 0)
        return 1;
    if (K <= 0) { /* an empty sum */
        ptrdiff_t i;
        if (!accumulate)
            for (i = 0; i < M; i++)
                memset(c + i * ldc, 0, (size_t)N * sizeof(FT));
        return 1;
    }
    G.kt = SFX(kernel_for)(fr_get_isa());
    G.npa = (M + G.kt.mr - 1) / G.kt.mr;
    G.npb = (N + G.kt.nr - 1) / G.kt.nr;
    G.nkb = (K + FR_KC - 1) / FR_KC;
    na = (size_t)G.npa * G.kt.mr * (size_t)K;
    nb = (size_t)G.npb * G.kt.nr * (size_t)K;
    G.pa = SFX(alloc)(na + nb + 64 / sizeof(FT), &base);
    if (G.pa == NULL)
        return 0;
    G.pb = G.pa + (na + 64 / sizeof(FT) - 1) / (64 / sizeof(FT)) * (64 / sizeof(FT));
    G.ta = trans_a != 0;
    G.tb = trans_b != 0;
    G.acc = accumulate != 0;
    G.M = M;
    G.N = N;
    G.K = K;
    G.a = a;
    G.lda = lda;
    G.b = b;
    G.ldb = ldb;
    G.c = c;
    G.ldc = ldc;
    G.kg = kgroup > 0 && kgroup < K ? kgroup : 0;
    G.ags = a_gstride;
    G.bgs = b_gstride;
    fr_sync_init(&G.sync);
    fr_team_run(SFX(tgemm_job), &G, G.npa > G.npb ? G.npa : G.npb);
    free(base);
    return 1;
}

/* ---------------------------------------------------------------- single products */

int SFX(fr_packed_gemm)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const FT *a, ptrdiff_t lda,
                        const FT *w, FT *c, ptrdiff_t ldc, int accumulate)
{
    SFX(kern_t) kt = SFX(kernel_for)(fr_get_isa());
    ptrdiff_t p, npanels = (N + kt.nr - 1) / kt.nr;
    void *base;
    FT *packed;
    if (M <= 0 || N <= 0)
        return 1;
    if (K <= 0) {
        ptrdiff_t i, j;
        if (!accumulate)
            for (i = 0; i < M; i++)
                for (j = 0; j < N; j++)
                    c[i * ldc + j] = 0;
        return 1;
    }
    packed = SFX(alloc)((size_t)npanels * kt.nr * (size_t)K, &base);
    if (packed == NULL)
        return 0;
    for (p = 0; p < npanels; p++)
        SFX(pack_panel)(w, N, 0, K, N, p * kt.nr, kt.nr, packed + p * K * kt.nr);
    SFX(product)(&kt, M, K, 0, N, a, lda, packed, c, ldc, accumulate);
    free(base);
    return 1;
}

#undef FR_GEN_MR
#undef FR_GEN_NR
