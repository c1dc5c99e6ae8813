"""Finite differences, the independent check of every gradient, kinks included.

A central difference ``(f(w + eps) - f(w - eps)) / (2 eps)`` estimates
``f'(w)`` only where ``f`` is smooth on ``[w - eps, w + eps]``.  Through relu
(and every other activation with a kink) it is not smooth there when the
step moves some pre-activation across the kink: the difference then mixes
the slopes of two pieces and disagrees with a correct gradient.  Which
examples hit a kink depends on the random problem, so a plain check fails
on some seeds and not others.

:func:`check_gradient` therefore takes ``regions``: a function, read like
``f`` (it sees the perturbed arrays in place), that returns a region key:
any array(s) that stay equal while ``f`` stays on one smooth piece.  For
activations that key is :func:`kink_regions` of the pre-activations.  Per
coordinate the key is compared at ``w``, ``w + eps`` and ``w - eps``:

- the same at all three: the central difference, as without ``regions``;
- the same on one side only: a second-order one-sided difference on that
  side (``w, w +- eps, w +- 2 eps``, all in the point's own region), which
  is what the analytic gradient, evaluated on that piece, must match;
- changed on both sides: the coordinate is skipped.

A check that skips everything proves nothing, so more than ``max_skipped``
of the coordinates skipped (or none left) fails the check.
"""
from typing import NamedTuple

import numpy as np

# Where each activation is not differentiable (its derivative jumps, or the
# function itself does).  Smooth activations have none.  An activation that
# is not listed is an error, so a new one cannot silently skip the kink
# handling: add it here with its kinks.  Extra points would be harmless
# (a few more one-sided checks); missing ones make seed-dependent tests.
KINKS = {
    "linear": (),
    "tanh": (),
    "sigmoid": (),
    "softmax": (),
    "softplus": (),
    "softsign": (),
    "silu": (),
    "swish": (),
    "gelu": (),
    "mish": (),
    "exponential": (),
    "relu": (0.0,),
    "leaky_relu": (0.0,),
    "elu": (0.0,),
    "selu": (0.0,),
    "relu6": (0.0, 6.0),
    "hard_sigmoid": (-3.0, 3.0),  # Keras 3: x / 6 + 1/2 clipped to [0, 1]
    "hard_silu": (-3.0, 3.0),     # x * hard_sigmoid(x)
    "hard_swish": (-3.0, 3.0),
    "hard_tanh": (-1.0, 1.0),
    "abs": (0.0,),                # e.g. the residual of an mae loss
}


def kinks(activation):
    """The pre-activation values where ``activation`` has a kink.

    Parameters
    ----------
    activation : str or None
        A Keras activation name; None means linear.

    Returns
    -------
    tuple of float
        Sorted; empty for a smooth activation.
    """
    key = "linear" if activation is None else activation
    if key not in KINKS:
        raise ValueError(f"activation {activation!r} has no entry in finite_diff.KINKS; "
                         f"add it with the points where it is not differentiable")
    return KINKS[key]


def kink_regions(activation, z):
    """Which piece of ``activation`` each pre-activation lies on.

    Parameters
    ----------
    activation : str or None
    z : ndarray of any shape
        Pre-activations.

    Returns
    -------
    ndarray of int, shape of z
        ``2 k`` between the k-th and (k+1)-th kink, ``2 k + 1`` exactly on
        the k-th kink (a point of its own: no one-sided slope is assumed
        there); all zeros for a smooth activation.
    """
    points = np.asarray(kinks(activation), dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    return np.searchsorted(points, z, side="left") + np.searchsorted(points, z, side="right")


class Differences(NamedTuple):
    """What :func:`numeric_gradient` measured.

    indices : ndarray of int
        Flat indices that were differenced (skipped ones excluded).
    values : ndarray of float64
        The numeric derivatives at ``indices``.
    one_sided : ndarray of int
        Those of ``indices`` that were differenced on one side of a kink.
    skipped : int
        Coordinates left out: a kink within the step on both sides.
    """

    indices: np.ndarray
    values: np.ndarray
    one_sided: np.ndarray
    skipped: int


def _region_key(regions):
    key = regions()
    if isinstance(key, (list, tuple)):
        return [np.array(k, copy=True) for k in key]
    return [np.array(key, copy=True)]


def _same_region(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def numeric_gradient(f, array, eps=1e-6, max_coords=64, rng=None, regions=None):
    """d f() / d array by finite differences; f reads ``array`` in place.

    Parameters
    ----------
    f : callable () -> float
        The scalar function, reading ``array`` (and anything else) in place.
    array : ndarray, C-contiguous
        Perturbed one coordinate at a time and restored exactly.
    eps : float
        The step.
    max_coords : int
        Arrays with more elements are checked at a random subset of this many
        coordinates.
    rng : numpy.random.Generator, optional
        Picks that subset; ``default_rng(0)`` when None.
    regions : callable () -> ndarray or list of ndarray, optional
        The region key of the current point (see the module docstring), e.g.
        ``lambda: kink_regions("relu", preactivations())``.  None: ``f`` is
        taken to be smooth and every difference is central.

    Returns
    -------
    Differences
    """
    flat = array.reshape(-1)
    assert np.shares_memory(flat, array), "array must be contiguous"
    if flat.size > max_coords:
        rng = rng or np.random.default_rng(0)
        candidates = np.sort(rng.choice(flat.size, size=max_coords, replace=False))
    else:
        candidates = np.arange(flat.size)

    def at(i, value):  # f and the region key with flat[i] = value
        flat[i] = value
        return f(), (_region_key(regions) if regions is not None else None)

    if regions is not None:
        f0, key0 = f(), _region_key(regions)
    indices, values, one_sided = [], [], []
    for i in candidates:
        saved = flat[i]
        try:
            up, key_up = at(i, saved + eps)
            down, key_down = at(i, saved - eps)
            if regions is None or (_same_region(key_up, key0) and _same_region(key_down, key0)):
                value = (up - down) / (2 * eps)
            else:
                # Second order on the side that stays on the point's piece:
                # f'(w) = (-3 f(w) + 4 f(w + s) - f(w + 2 s)) / (2 s), s = +-eps.
                value = None
                for step, near, key_near in ((eps, up, key_up), (-eps, down, key_down)):
                    if not _same_region(key_near, key0):
                        continue
                    far, key_far = at(i, saved + 2 * step)
                    if _same_region(key_far, key0):
                        value = (-3 * f0 + 4 * near - far) / (2 * step)
                        one_sided.append(i)
                        break
        finally:
            flat[i] = saved
        if value is not None:
            indices.append(i)
            values.append(value)
    return Differences(np.asarray(indices, dtype=np.intp), np.asarray(values, dtype=np.float64),
                       np.asarray(one_sided, dtype=np.intp), len(candidates) - len(indices))


def relative_error(analytic, numeric):
    """||a - n|| / max(||a||, ||n||): the usual gradient-check measure."""
    analytic = np.asarray(analytic, dtype=np.float64).ravel()
    numeric = np.asarray(numeric, dtype=np.float64).ravel()
    scale = max(np.linalg.norm(analytic), np.linalg.norm(numeric))
    if scale == 0:
        return 0.0
    return float(np.linalg.norm(analytic - numeric) / scale)


#: absolute agreement that counts as exact for a central difference of step 1e-6
#: (rounding noise ~1e-16 * |f| / 1e-6 = 1e-10 |f| per coordinate, with margin)
NOISE_FLOOR = 1e-8


def check_gradient(f, array, analytic, rel, name="", regions=None, max_skipped=0.25, **kwargs):
    """Assert the analytic gradient of f w.r.t. array matches differences.

    Parameters
    ----------
    f, array, regions
        As for :func:`numeric_gradient`; pass ``regions`` whenever ``f``
        goes through an activation (or loss) with a kink.
    analytic : ndarray, shape of array
        The gradient under test.
    rel : float
        Largest relative error (:func:`relative_error`) accepted.
    name : str
        Names the array in the failure message.
    max_skipped : float
        Largest fraction of coordinates that may be skipped at kinks; more,
        or none left to compare, fails the check.
    **kwargs
        ``eps``, ``max_coords``, ``rng`` for :func:`numeric_gradient`.

    Notes
    -----
    A central difference carries rounding noise of about
    ``machine epsilon * |f| / eps`` per coordinate, whatever the gradient's
    size: where the whole gradient is that small (a weight that barely
    matters, e.g. behind tanh_shrink's flat start), its relative error says
    nothing.  So the check also passes when every difference is within
    ``NOISE_FLOOR * max(1, |f|)`` of the analytic value -- far below any
    real error in a derivative (a 1e-4 mistake in tanh' on an O(0.1)
    gradient is 1e-5 off, a thousand times the floor).

    Returns
    -------
    Differences
        What was measured, for tests of the check itself.
    """
    diffs = numeric_gradient(f, array, regions=regions, **kwargs)
    total = diffs.indices.size + diffs.skipped
    assert total == 0 or (diffs.indices.size > 0 and diffs.skipped <= max_skipped * total), (
        f"d/d{name}: {diffs.skipped} of {total} coordinates skipped at kinks "
        f"(more than {max_skipped:.0%}); the check would prove too little")
    picked = np.asarray(analytic).reshape(-1)[diffs.indices]
    err = relative_error(picked, diffs.values)
    floor = NOISE_FLOOR * max(1.0, abs(float(f())))
    within_noise = picked.size > 0 and float(np.max(np.abs(picked - diffs.values))) <= floor
    assert err <= rel or within_noise, (
        f"d/d{name}: relative error {err:.3g} > {rel:g}, and differences up to "
        f"{float(np.max(np.abs(picked - diffs.values))):.3g} > the noise floor {floor:.3g} "
        f"({diffs.one_sided.size} one-sided, {diffs.skipped} skipped at kinks)")
    return diffs
