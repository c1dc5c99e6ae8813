"""Weight initializers in Keras's formulation, and the global random seed.

An initializer is called as ``init(shape, dtype, rng)`` and returns a new
array of that shape and dtype.  ``rng`` is the :class:`numpy.random.Generator`
of the layer being built; an initializer constructed with its own ``seed``
ignores it and draws from a generator seeded with that seed instead, so the
same seed always gives the same values.

Layers built without a seed draw from the process-wide generator that
:func:`set_random_seed` resets, in the order the layers are built, which is
what makes a whole seeded run bit-for-bit reproducible.

Inside :func:`_seed_scope` the current thread (strictly: the current
:mod:`contextvars` context) draws from a generator of its own instead, so
models built and trained in parallel threads (:func:`fastrnn.fit_many`, the
scikit-learn estimators) each get the stream a lone seeded run would get,
whatever the scheduling.
"""
import contextlib
import contextvars
import random as _pyrandom

import numpy as np

__all__ = [
    "Initializer", "Zeros", "Ones", "Constant", "RandomUniform", "RandomNormal",
    "GlorotUniform", "GlorotNormal", "Orthogonal", "get", "set_random_seed",
]

_global_rng = np.random.default_rng()

# The generator of a _seed_scope, for the context (thread) that opened it; None outside.
_scoped_rng = contextvars.ContextVar("fastrnn_scoped_rng", default=None)


def set_random_seed(seed):
    """Seed everything fastrnn draws at random, for bit-for-bit reproducible runs.

    Resets fastrnn's own generator (weight initialisation of layers without a
    ``seed``, the shuffling in :meth:`fastrnn.Sequential.fit`) and, as Keras
    does, Python's :mod:`random` and NumPy's legacy global state.  Called
    inside a :func:`_seed_scope` (e.g. by a ``build_fn`` that
    :func:`fastrnn.fit_many` runs), it reseeds that scope's generator instead
    of the process-wide one.

    Parameters
    ----------
    seed : int
        A non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    global _global_rng
    if _scoped_rng.get() is not None:
        _scoped_rng.set(np.random.default_rng(int(seed)))
    else:
        _global_rng = np.random.default_rng(int(seed))
    _pyrandom.seed(int(seed))
    np.random.seed(int(seed) % 2**32)


def _next_generator():
    """A fresh generator whose seed is drawn from the current one (scoped or global)."""
    rng = _scoped_rng.get()
    return np.random.default_rng((_global_rng if rng is None else rng).integers(0, 2**63))


@contextlib.contextmanager
def _seed_scope(seed):
    """Within the block, this thread draws from its own generator seeded with ``seed``.

    Everything fastrnn draws through :func:`_next_generator` (initial weights
    of layers without a seed, ``fit``'s shuffling) inside the block then
    equals what a run after ``set_random_seed(seed)`` draws, and other
    threads neither see nor disturb it.  The process-wide generator is left
    untouched; on exit the previous scope (if any) is back.  Python's
    :mod:`random` and NumPy's legacy global state are not scoped.

    Parameters
    ----------
    seed : int
        A non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    token = _scoped_rng.set(np.random.default_rng(int(seed)))
    try:
        yield
    finally:
        _scoped_rng.reset(token)


def _fans(shape):
    """Keras's (fan_in, fan_out): the last two axes, times any leading receptive field."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: subclasses implement ``_draw(shape, rng) -> float64 array``."""

    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        self.seed = seed

    def __call__(self, shape, dtype="float32", rng=None):
        """Return a new array of ``shape`` and ``dtype``.

        Parameters
        ----------
        shape : tuple of int
        dtype : str or numpy dtype
        rng : numpy.random.Generator, optional
            Used when the initializer has no seed of its own; the global
            generator when None.
        """
        shape = tuple(int(s) for s in shape)
        if self.seed is not None:
            rng = np.random.default_rng(self.seed)
        elif rng is None:
            rng = _next_generator()
        return np.asarray(self._draw(shape, rng), dtype=np.float64).astype(dtype)

    def _draw(self, shape, rng):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class Zeros(Initializer):
    """All zeros."""

    def _draw(self, shape, rng):
        return np.zeros(shape)


class Ones(Initializer):
    """All ones."""

    def _draw(self, shape, rng):
        return np.ones(shape)


class Constant(Initializer):
    """Every element equal to ``value``."""

    def __init__(self, value=0.0):
        super().__init__()
        self.value = float(value)

    def _draw(self, shape, rng):
        return np.full(shape, self.value)


class RandomUniform(Initializer):
    """Uniform on [minval, maxval)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = float(minval), float(maxval)

    def _draw(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, shape)


class RandomNormal(Initializer):
    """Normal with the given mean and standard deviation."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def _draw(self, shape, rng):
        return rng.normal(self.mean, self.stddev, shape)


class GlorotUniform(Initializer):
    """Uniform on [-limit, limit] with ``limit = sqrt(6 / (fan_in + fan_out))``."""

    def _draw(self, shape, rng):
        fan_in, fan_out = _fans(shape)
        limit = np.sqrt(6.0 / max(1, fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)


class GlorotNormal(Initializer):
    """Truncated normal (at two standard deviations) with variance 2 / (fan_in + fan_out)."""

    def _draw(self, shape, rng):
        fan_in, fan_out = _fans(shape)
        # 0.8796... is the std of a standard normal truncated to [-2, 2].
        stddev = np.sqrt(2.0 / max(1, fan_in + fan_out)) / 0.87962566103423978
        out = rng.standard_normal(shape)
        bad = np.abs(out) > 2
        while np.any(bad):
            out[bad] = rng.standard_normal(int(bad.sum()))
            bad = np.abs(out) > 2
        return out * stddev


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix: Q of the QR decomposition of a normal matrix.

    The signs of Q's columns are fixed by the diagonal of R, so the result is
    uniformly distributed over orthogonal matrices; multiplied by ``gain``.
    For more than two axes, the leading axes are flattened into rows.
    """

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = float(gain)

    def _draw(self, shape, rng):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a shape with at least 2 axes, got {shape}")
        rows = int(np.prod(shape[:-1]))
        cols = shape[-1]
        a = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.where(np.diag(r) == 0, 1.0, np.diag(r)))
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)


_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant,
    "random_uniform": RandomUniform, "random_normal": RandomNormal,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
    "orthogonal": Orthogonal,
}


def get(identifier, argument="initializer"):
    """An initializer from a name (``"glorot_uniform"``, ...) or an instance/callable.

    Parameters
    ----------
    identifier : str or callable
        A name from ``zeros, ones, constant, random_uniform, random_normal,
        glorot_uniform, glorot_normal, orthogonal`` (CamelCase accepted), or a
        callable ``f(shape, dtype, rng) -> ndarray``.
    argument : str
        The argument name used in error messages.
    """
    if isinstance(identifier, str):
        key = identifier
        if any(c.isupper() for c in key):  # GlorotUniform -> glorot_uniform
            key = "".join("_" + c.lower() if c.isupper() else c for c in key).lstrip("_")
        if key not in _BY_NAME:
            raise ValueError(f"{argument}: unknown initializer {identifier!r}; "
                             f"known: {', '.join(sorted(_BY_NAME))}")
        return _BY_NAME[key]()
    if callable(identifier):
        return identifier
    raise TypeError(f"{argument} must be a name or a callable, got {type(identifier).__name__}")
