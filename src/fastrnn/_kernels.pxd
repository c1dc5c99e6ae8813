# The compiled kernels shared by fastrnn.ops (checked functional API) and the
# engine (_engine.pyx): one implementation of each computation.  Every
# function here works on raw, already-checked memory and checks nothing.

ctypedef fused floating:
    float
    double

# Activation codes (fastrnn.activations maps Keras's names to them).
cdef enum:
    ACT_LINEAR = 0
    ACT_TANH = 1
    ACT_RELU = 2
    ACT_SIGMOID = 3
    ACT_SOFTMAX = 4          # over each row (the last axis)
    ACT_SOFTPLUS = 5
    ACT_SOFTSIGN = 6
    ACT_ELU = 7
    ACT_SELU = 8
    ACT_EXPONENTIAL = 9
    ACT_HARD_SIGMOID = 10
    ACT_RELU6 = 11
    ACT_LEAKY_RELU = 12
    ACT_LOG_SOFTMAX = 13     # over each row
    N_ACTIVATIONS = 14

cdef void gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
               floating alpha, const floating* a, Py_ssize_t lda, const floating* b,
               Py_ssize_t ldb, floating beta, floating* c, Py_ssize_t ldc) noexcept nogil

cdef void activate_rows(int act, floating* z, Py_ssize_t rows, Py_ssize_t cols,
                        Py_ssize_t ld) noexcept nogil

cdef void activation_backward_rows(int act, const floating* h, floating* g, Py_ssize_t rows,
                                   Py_ssize_t cols, Py_ssize_t ld) noexcept nogil

cdef void fill_rows(floating* out, const floating* row, Py_ssize_t rows,
                    Py_ssize_t cols) noexcept nogil

cdef void column_sums(const floating* a, Py_ssize_t rows, Py_ssize_t cols,
                      floating* out) noexcept nogil

cdef void transpose_square(const floating* a, Py_ssize_t n, floating* out) noexcept nogil

# The recurrence, with Keras's step mask (B*T bytes, NULL: none) and dropout
# masks (in_mask (B, D), rec_mask (B, H), NULL: none); see _kernels.pyx for
# the rules and the work space (xd: B*T*D with in_mask; hd: B*H forward,
# B*T*H backward, with rec_mask).
cdef void rnn_forward_masked_k(const floating* x, const floating* w, const floating* wh,
                               const floating* bias, const floating* h0, floating* h,
                               floating* wh_t, const unsigned char* mask,
                               const floating* in_mask, const floating* rec_mask,
                               floating* xd, floating* hd, Py_ssize_t B, Py_ssize_t T,
                               Py_ssize_t D, Py_ssize_t H, int act, bint time_major,
                               bint reverse) noexcept nogil

cdef void rnn_backward_masked_k(const floating* x, const floating* h, const floating* w,
                                const floating* wh, const floating* dh_seq,
                                const floating* dh_last, const floating* h0, floating* dz,
                                floating* g, floating* wh_t, const unsigned char* mask,
                                const floating* in_mask, const floating* rec_mask,
                                floating* xd, floating* hd, floating* dx, floating* dw,
                                floating* dwh, floating* db, floating* dh0, Py_ssize_t B,
                                Py_ssize_t T, Py_ssize_t D, Py_ssize_t H, int act,
                                bint time_major, bint reverse) noexcept nogil

# Zero the steps before each sequence's first unmasked one (TensorFlow's outputs there).
cdef void rnn_zero_unstarted_k(const unsigned char* mask, floating* a, Py_ssize_t B,
                               Py_ssize_t T, Py_ssize_t H, bint time_major,
                               bint reverse) noexcept nogil

# The same without masks (kept for the engine's current calls).
cdef void rnn_forward_k(const floating* x, const floating* w, const floating* wh,
                        const floating* bias, const floating* h0, floating* h,
                        floating* wh_t, Py_ssize_t B, Py_ssize_t T, Py_ssize_t D,
                        Py_ssize_t H, int act, bint time_major, bint reverse) noexcept nogil

cdef void rnn_backward_k(const floating* x, const floating* h, const floating* w,
                         const floating* wh, const floating* dh_seq, const floating* dh_last,
                         const floating* h0, floating* dz, floating* g, floating* wh_t,
                         floating* dx, floating* dw, floating* dwh, floating* db,
                         floating* dh0, Py_ssize_t B, Py_ssize_t T, Py_ssize_t D, Py_ssize_t H,
                         int act, bint time_major, bint reverse) noexcept nogil

cdef void dense_forward_k(const floating* x, const floating* w, const floating* bias,
                          floating* y, Py_ssize_t N, Py_ssize_t D, Py_ssize_t U,
                          int act) noexcept nogil

cdef void dense_backward_k(const floating* x, const floating* w, const floating* y,
                           floating* dz, floating* dx, floating* dw, floating* db,
                           Py_ssize_t N, Py_ssize_t D, Py_ssize_t U, int act) noexcept nogil

cdef bint adam_k(floating* p, const floating* g, floating* m, floating* v, floating* vhat,
                 Py_ssize_t n, floating scale, floating lr_t, floating one_minus_beta_1,
                 floating one_minus_beta_2, floating epsilon, floating* backup) noexcept nogil

# ---- layers without weights, Embedding, Dropout (the engine's graph nodes).
# Work layout is time-major: row t*B + b of a (steps*B, width) buffer is sample
# b at step t.  ``acc``: add into the destination instead of overwriting it.

cdef void copy_or_add(floating* dst, const floating* src, Py_ssize_t n, bint acc) noexcept nogil

cdef void scale_into(floating* dst, const floating* src, Py_ssize_t n, floating alpha,
                     bint acc) noexcept nogil

cdef void multiply_into(floating* dst, const floating* a, const floating* b, Py_ssize_t n,
                        bint acc) noexcept nogil

cdef void copy_columns(const floating* src, Py_ssize_t src_ld, floating* dst, Py_ssize_t dst_ld,
                       Py_ssize_t rows, Py_ssize_t cols, bint acc) noexcept nogil

cdef void relayout_k(const floating* src, Py_ssize_t src_steps, Py_ssize_t src_width,
                     floating* dst, Py_ssize_t dst_steps, Py_ssize_t dst_width,
                     Py_ssize_t B, bint acc) noexcept nogil

cdef void repeat_forward_k(const floating* x, floating* out, Py_ssize_t block,
                           Py_ssize_t n) noexcept nogil

cdef void repeat_backward_k(const floating* dout, floating* dx, Py_ssize_t block,
                            Py_ssize_t n, bint acc) noexcept nogil

cdef void embedding_forward_k(const floating* idx, const floating* table, floating* out,
                              Py_ssize_t rows, Py_ssize_t V, Py_ssize_t E) noexcept nogil

cdef void embedding_backward_k(const floating* idx, const floating* dout, floating* dtable,
                               Py_ssize_t rows, Py_ssize_t V, Py_ssize_t E) noexcept nogil

cdef Py_ssize_t first_bad_index(const floating* idx, Py_ssize_t n, Py_ssize_t V) noexcept nogil

cdef void dropout_mask_k(floating* mask, Py_ssize_t B, Py_ssize_t steps, Py_ssize_t width,
                         unsigned long long seed, unsigned long long counter,
                         double rate) noexcept nogil
