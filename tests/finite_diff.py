"""Central finite differences, the independent check of every gradient."""
import numpy as np


def numeric_gradient(f, array, eps=1e-6, max_coords=64, rng=None):
    """d f() / d array by central differences; f reads ``array`` in place.

    Arrays with more than ``max_coords`` elements are checked at a random
    subset of that many coordinates. Returns ``(indices, values)``: the flat
    indices that were differenced and the numeric derivatives there.
    """
    flat = array.reshape(-1)
    assert np.shares_memory(flat, array), "array must be contiguous"
    if flat.size > max_coords:
        rng = rng or np.random.default_rng(0)
        indices = np.sort(rng.choice(flat.size, size=max_coords, replace=False))
    else:
        indices = np.arange(flat.size)
    values = np.empty(indices.size)
    for k, i in enumerate(indices):
        saved = flat[i]
        flat[i] = saved + eps
        up = f()
        flat[i] = saved - eps
        down = f()
        flat[i] = saved
        values[k] = (up - down) / (2 * eps)
    return indices, values


def relative_error(analytic, numeric):
    """||a - n|| / max(||a||, ||n||): the usual gradient-check measure."""
    analytic = np.asarray(analytic, dtype=np.float64).ravel()
    numeric = np.asarray(numeric, dtype=np.float64).ravel()
    scale = max(np.linalg.norm(analytic), np.linalg.norm(numeric))
    if scale == 0:
        return 0.0
    return float(np.linalg.norm(analytic - numeric) / scale)


def check_gradient(f, array, analytic, rel, name="", **kwargs):
    """Assert the analytic gradient of f w.r.t. array matches differences."""
    indices, numeric = numeric_gradient(f, array, **kwargs)
    picked = np.asarray(analytic).reshape(-1)[indices]
    err = relative_error(picked, numeric)
    assert err <= rel, f"d/d{name}: relative error {err:.3g} > {rel:g}"
