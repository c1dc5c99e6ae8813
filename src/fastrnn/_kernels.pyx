# cython: language_level=3
"""Compiled kernels of fastrnn.

Two levels in this file: ``def`` entry points that the checked API in
``fastrnn.ops`` calls with arrays it has already validated (dtype, shape,
contiguity), and ``cdef ... noexcept nogil`` loops over raw memory.
Nothing here re-checks its arguments: call it through ``fastrnn.ops``.
"""
from libc.math cimport sqrt

ctypedef fused floating:
    float
    double


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
    with nogil:
        _adam_loop(&param[0], &grad[0], &m[0], &v[0], param.shape[0],
                   <floating>lr_t, <floating>beta_1, <floating>beta_2,
                   <floating>epsilon)
