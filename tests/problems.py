"""Random test problems shared by the reference and kernel tests."""
import numpy as np


def make_rnn_problem(B, T, D, H, seed, with_h0=True, radius=0.9):
    """Random float64 recurrence problem.

    ``recurrent_kernel`` is scaled to spectral radius ``radius`` so long
    sequences neither explode nor vanish; ``dh`` is a random upstream gradient.
    Returns a dict with keys x, kernel, recurrent_kernel, bias, h0 (None
    unless ``with_h0``) and dh.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, D))
    kernel = rng.uniform(-1, 1, (D, H)) / np.sqrt(D)
    w = rng.standard_normal((H, H))
    recurrent_kernel = w * (radius / max(np.max(np.abs(np.linalg.eigvals(w))), 1e-12))
    bias = rng.uniform(-0.5, 0.5, H)
    h0 = rng.standard_normal((B, H)) * 0.5 if with_h0 else None
    dh = rng.standard_normal((B, T, H))
    return dict(x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h0=h0, dh=dh)
