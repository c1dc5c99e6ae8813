"""Weight initializers in Keras 3's formulation, and the global random seed.

The classes, names, arguments, defaults and ``get_config`` keys are Keras 3's
(``keras/src/initializers/``); the random numbers come from NumPy, so the
values are distributed as Keras's but are not Keras's values.

==========================  =====================================================
name (``get``)              draws
==========================  =====================================================
``zeros``, ``ones``         0, 1
``constant``                ``value`` (broadcast to the shape)
``random_uniform``          U[minval, maxval), defaults -0.05, 0.05
``random_normal``           N(mean, stddev^2), defaults 0, 0.05
``truncated_normal``        N(mean, stddev^2) redrawn beyond 2 stddev
``variance_scaling``        scale / n with n = fan_in, fan_out or their mean:
                            uniform on +-sqrt(3 scale / n), or a normal of std
                            sqrt(scale / n) (``"untruncated_normal"``), or that
                            truncated at 2 std and divided by .87962566103423978
                            (the std of a unit normal cut there) so the variance
                            stays scale / n (``"truncated_normal"``, the default;
                            ``"normal"`` is an alias)
``glorot_uniform/normal``   variance_scaling(1, "fan_avg", uniform/truncated)
``he_uniform/normal``       variance_scaling(2, "fan_in", uniform/truncated)
``lecun_uniform/normal``    variance_scaling(1, "fan_in", uniform/truncated)
``orthogonal``              ``gain`` * Q of the QR decomposition of a normal
                            matrix (columns' signs from diag R); leading axes
                            are flattened into rows; wide shapes get Q^T
``identity``                ``gain`` * the (possibly rectangular) identity; 2-D only
==========================  =====================================================

Fans (``compute_fans``): a 2-D shape (in, out) has fan_in = in and fan_out = out;
1-D both the length; more axes multiply the leading ones (the receptive field)
into both; a scalar 1 and 1.

Names are looked up as Keras does: the class name (``"GlorotUniform"``), its
snake_case form (``"glorot_uniform"``), and the aliases ``"uniform"``,
``"normal"``, ``"zero"``, ``"one"``, ``"IdentityInitializer"``,
``"OrthogonalInitializer"``; a ``{"class_name": ..., "config": ...}`` dict
(:func:`serialize`'s output), a class, an instance, a callable
``f(shape, dtype=None)`` or an array (used as the value, its shape checked)
are accepted too.

Seeds.  An initializer is called as ``init(shape, dtype=None, rng=None)``
(Keras's ``init(shape, dtype)`` works).  One constructed with a ``seed``
draws from a NumPy generator seeded with it, so it gives the same values at
every call (as a Keras initializer with an integer seed does).  Without a
seed it draws from ``rng`` -- the generator of the layer being built -- or,
when that is None, from a generator seeded from the process-wide one that
:func:`set_random_seed` resets.  Layers draw in the order they are built,
which is what makes a whole seeded run bit-for-bit reproducible.

Inside :func:`_seed_scope` the current thread (strictly: the current
:mod:`contextvars` context) draws from a generator of its own instead, so
models built and trained in parallel threads (:func:`fastrnn.fit_many`, the
scikit-learn estimators) each get the stream a lone seeded run would get,
whatever the scheduling.
"""
import contextlib
import contextvars
import inspect
import math
import random as _pyrandom

import numpy as np

__all__ = [
    "Initializer", "Zeros", "Ones", "Constant", "RandomUniform", "RandomNormal",
    "TruncatedNormal", "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeUniform",
    "HeNormal", "LecunUniform", "LecunNormal", "Orthogonal", "Identity",
    "IdentityInitializer", "OrthogonalInitializer",
    "zeros", "ones", "constant", "random_uniform", "random_normal", "truncated_normal",
    "variance_scaling", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "lecun_uniform", "lecun_normal", "orthogonal", "identity",
    "compute_fans", "get", "serialize", "deserialize", "set_random_seed",
]

_global_rng = np.random.default_rng()

# The standard deviation of a unit normal truncated to [-2, 2] (Keras's constant).
_TRUNCATED_STD = 0.87962566103423978

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


def _next_seed():
    """The seed of :func:`_next_generator`'s next generator, drawn from the current one."""
    rng = _scoped_rng.get()
    return (_global_rng if rng is None else rng).integers(0, 2**63)


def _next_generator():
    """A fresh generator whose seed is drawn from the current one (scoped or global)."""
    return np.random.default_rng(_next_seed())


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


def compute_fans(shape, input_axes=None, output_axes=None):
    """Keras's (fan_in, fan_out) of a weight shape.

    Parameters
    ----------
    shape : tuple of int
    input_axes, output_axes : sequence of int, optional
        Both given: the fans are the products of those axes' sizes.

    Returns
    -------
    (int, int)
    """
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        return (int(math.prod(shape[a] for a in input_axes)),
                int(math.prod(shape[a] for a in output_axes)))
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return int(shape[0]), int(shape[0])
    receptive = int(math.prod(shape[:-2])) if len(shape) > 2 else 1
    return int(shape[-2]) * receptive, int(shape[-1]) * receptive


def _check_seed(seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    return None if seed is None else int(seed)


def _real(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


class Initializer:
    """Base class: subclasses implement ``_draw(shape, rng) -> float64 array``.

    Instances are called as ``init(shape, dtype=None, rng=None)`` and return
    a new array of that shape and dtype (float32 when None).
    """

    def __call__(self, shape, dtype=None, rng=None):
        """Return a new array of ``shape`` and ``dtype``.

        Parameters
        ----------
        shape : tuple of int
        dtype : str or numpy dtype, optional
            float32 when None (Keras's floatx).
        rng : numpy.random.Generator, optional
            Used when the initializer has no seed of its own; a generator
            seeded from the global one when None.
        """
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"shape must have non-negative sizes, got {shape}")
        seed = getattr(self, "seed", None)
        if seed is not None:
            rng = np.random.default_rng(seed)
        elif rng is None:
            # the draw always advances the current stream; the generator itself
            # (~25 us to seed) only for initializers that use it
            rng = _next_generator() if self._random else _next_seed()
        values = np.asarray(self._draw(shape, rng), dtype=np.float64)
        return values.astype(np.float32 if dtype is None else dtype)

    #: whether ``_draw`` uses its generator (False: a constant, e.g. zeros)
    _random = True

    def _draw(self, shape, rng):
        raise NotImplementedError

    def get_config(self):
        """The constructor arguments, as Keras's ``get_config`` gives them."""
        return {}

    @classmethod
    def from_config(cls, config):
        """An instance from :meth:`get_config`'s output."""
        return cls(**config)

    def clone(self):
        """A new instance with the same configuration."""
        return type(self).from_config(self.get_config())

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    """All zeros."""

    _random = False

    def _draw(self, shape, rng):
        return np.zeros(shape)


class Ones(Initializer):
    """All ones."""

    _random = False

    def _draw(self, shape, rng):
        return np.ones(shape)


class Constant(Initializer):
    """Every element equal to ``value`` (a number, or an array broadcast to the shape)."""

    _random = False

    def __init__(self, value=0.0):
        array = np.asarray(value, dtype=np.float64)
        self.value = float(array) if array.ndim == 0 else array

    def _draw(self, shape, rng):
        try:
            return np.broadcast_to(np.asarray(self.value, dtype=np.float64), shape).copy()
        except ValueError:
            raise ValueError(f"Constant: value of shape {np.shape(self.value)} does not "
                             f"broadcast to the weight shape {shape}") from None

    def get_config(self):
        value = self.value
        return {"value": value.tolist() if isinstance(value, np.ndarray) else value}


class RandomInitializer(Initializer):
    """Base of the initializers that draw random numbers (they take a ``seed``)."""

    def __init__(self, seed=None):
        self.seed = _check_seed(seed)

    def get_config(self):
        return {"seed": self.seed}


class RandomUniform(RandomInitializer):
    """Uniform on [minval, maxval)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval = _real("minval", minval)
        self.maxval = _real("maxval", maxval)
        super().__init__(seed)

    def _draw(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, shape)

    def get_config(self):
        return {**super().get_config(), "minval": self.minval, "maxval": self.maxval}


class RandomNormal(RandomInitializer):
    """Normal with the given mean and standard deviation."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean = _real("mean", mean)
        self.stddev = _real("stddev", stddev)
        super().__init__(seed)

    def _draw(self, shape, rng):
        return rng.normal(self.mean, self.stddev, shape)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


def _truncated_unit_normal(shape, rng):
    """Unit normal draws, those beyond 2 redrawn (so all lie in [-2, 2])."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while np.any(bad):
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out


class TruncatedNormal(RandomInitializer):
    """Normal with the given mean and standard deviation, redrawn beyond 2 stddev."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean = _real("mean", mean)
        self.stddev = _real("stddev", stddev)
        super().__init__(seed)

    def _draw(self, shape, rng):
        return self.mean + self.stddev * _truncated_unit_normal(shape, rng)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class VarianceScaling(RandomInitializer):
    """Draws with variance ``scale / n``, n from the fans (see the module docstring).

    Parameters
    ----------
    scale : float, default 1.0
        Positive.
    mode : {"fan_in", "fan_out", "fan_avg"}
    distribution : {"truncated_normal", "untruncated_normal", "uniform"}
        ``"normal"`` means ``"truncated_normal"`` (as in Keras).
    seed : int, optional
    input_axes, output_axes : sequence of int, optional
        Which axes make the fans (both, or neither: then :func:`compute_fans`).
    """

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None,
                 input_axes=None, output_axes=None):
        scale = _real("scale", scale)
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        modes = ("fan_in", "fan_out", "fan_avg")
        if mode not in modes:
            raise ValueError(f"mode must be one of {modes}, got {mode!r}")
        if not isinstance(distribution, str):
            raise TypeError(f"distribution must be a str, got {type(distribution).__name__}")
        distribution = distribution.lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        distributions = ("uniform", "truncated_normal", "untruncated_normal")
        if distribution not in distributions:
            raise ValueError(f"distribution must be one of {distributions}, "
                             f"got {distribution!r}")
        self.scale, self.mode, self.distribution = scale, mode, distribution
        self.input_axes = None if input_axes is None else list(input_axes)
        self.output_axes = None if output_axes is None else list(output_axes)
        super().__init__(seed)

    def _variance(self, shape):
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        return self.scale / max(1.0, n)

    def _draw(self, shape, rng):
        variance = self._variance(shape)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, shape)
        if self.distribution == "untruncated_normal":
            return math.sqrt(variance) * rng.standard_normal(shape)
        return (math.sqrt(variance) / _TRUNCATED_STD) * _truncated_unit_normal(shape, rng)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "mode": self.mode,
                "distribution": self.distribution, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class _Preset(VarianceScaling):
    """A VarianceScaling with fixed scale, mode and distribution (Glorot, He, LeCun)."""

    _preset = (1.0, "fan_avg", "uniform")

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        scale, mode, distribution = self._preset
        super().__init__(scale, mode, distribution, seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class GlorotUniform(_Preset):
    """Uniform on +-sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""

    _preset = (1.0, "fan_avg", "uniform")

    def _draw(self, shape, rng):
        # the limit as fastrnn always computed it: the same bits for the same seed
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        limit = np.sqrt(6.0 / max(1, fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)


class GlorotNormal(_Preset):
    """Truncated normal of variance 2 / (fan_in + fan_out)."""

    _preset = (1.0, "fan_avg", "truncated_normal")


class HeUniform(_Preset):
    """Uniform on +-sqrt(6 / fan_in) (He et al. 2015)."""

    _preset = (2.0, "fan_in", "uniform")


class HeNormal(_Preset):
    """Truncated normal of variance 2 / fan_in."""

    _preset = (2.0, "fan_in", "truncated_normal")


class LecunUniform(_Preset):
    """Uniform on +-sqrt(3 / fan_in)."""

    _preset = (1.0, "fan_in", "uniform")


class LecunNormal(_Preset):
    """Truncated normal of variance 1 / fan_in."""

    _preset = (1.0, "fan_in", "truncated_normal")


class Orthogonal(RandomInitializer):
    """A (semi-)orthogonal matrix: Q of the QR decomposition of a normal matrix.

    The signs of Q's columns are fixed by the diagonal of R, so the result is
    uniformly distributed over orthogonal matrices; multiplied by ``gain``.
    For more than two axes, the leading axes are flattened into rows.
    """

    def __init__(self, gain=1.0, seed=None):
        self.gain = _real("gain", gain)
        super().__init__(seed)

    def _draw(self, shape, rng):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a shape with at least 2 axes, got {shape}")
        rows = int(math.prod(shape[:-1]))
        cols = shape[-1]
        a = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.where(np.diag(r) == 0, 1.0, np.diag(r)))
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)

    def get_config(self):
        return {**super().get_config(), "gain": self.gain}


class Identity(Initializer):
    """``gain`` times the identity matrix (rectangular shapes: ones on the diagonal)."""

    _random = False

    def __init__(self, gain=1.0):
        self.gain = _real("gain", gain)

    def _draw(self, shape, rng):
        if len(shape) != 2:
            raise ValueError(f"Identity can only initialize 2-D weights, got shape {shape}")
        return self.gain * np.eye(*shape)

    def get_config(self):
        return {"gain": self.gain}


# Keras's other spellings of the same classes.
IdentityInitializer = Identity
OrthogonalInitializer = Orthogonal
zeros, ones, constant = Zeros, Ones, Constant
random_uniform, random_normal, truncated_normal = RandomUniform, RandomNormal, TruncatedNormal
variance_scaling = VarianceScaling
glorot_uniform, glorot_normal = GlorotUniform, GlorotNormal
he_uniform, he_normal = HeUniform, HeNormal
lecun_uniform, lecun_normal = LecunUniform, LecunNormal
orthogonal, identity = Orthogonal, Identity

_CLASSES = (Zeros, Ones, Constant, RandomUniform, RandomNormal, TruncatedNormal,
            VarianceScaling, GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform,
            LecunNormal, Orthogonal, Identity)


def _snake_case(name):
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


_BY_NAME = {cls.__name__: cls for cls in _CLASSES}
_BY_NAME.update({_snake_case(cls.__name__): cls for cls in _CLASSES})
_BY_NAME.update({"IdentityInitializer": Identity, "OrthogonalInitializer": Orthogonal,
                 "uniform": RandomUniform, "normal": RandomNormal, "zero": Zeros, "one": Ones})


def serialize(initializer):
    """Keras's dict form of an initializer: ``{"module", "class_name", "config", ...}``."""
    if not isinstance(initializer, Initializer):
        raise TypeError(f"initializer must be an Initializer, got {type(initializer).__name__}")
    return {"module": "keras.initializers", "class_name": type(initializer).__name__,
            "config": initializer.get_config(), "registered_name": None}


def deserialize(config, argument="initializer"):
    """An initializer from :func:`serialize`'s dict (only ``class_name`` and ``config`` are read)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"{argument}: a dict initializer needs a 'class_name' key, got {config!r}")
    name = config["class_name"]
    if not isinstance(name, str) or name not in _BY_NAME:
        raise ValueError(f"{argument}: unknown initializer {name!r}; known: "
                         f"{', '.join(sorted(_BY_NAME))}")
    options = config.get("config") or {}
    try:
        return _BY_NAME[name].from_config(dict(options))
    except TypeError as e:
        raise TypeError(f"{argument}: bad config for {name}: {e}") from None


class _FunctionInitializer:
    """A plain function ``f(shape, dtype=None)`` (or ``f(shape, dtype, rng)``) as an initializer."""

    def __init__(self, fn):
        self.fn = fn
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = {}
        positional = [p for p in params.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        self._takes_rng = "rng" in params or len(positional) >= 3 or any(
            p.kind == p.VAR_POSITIONAL for p in params.values())

    def __call__(self, shape, dtype=None, rng=None):
        if self._takes_rng:
            return self.fn(shape, dtype, rng)
        return self.fn(shape, dtype)

    def __repr__(self):
        return f"<initializer {self.fn!r}>"


def _array_initializer(value, argument):
    value = np.array(value, copy=True)
    if value.dtype.kind not in "fiub":
        raise TypeError(f"{argument}: an array initializer must be numeric, got dtype "
                        f"{value.dtype}")

    def initialize(shape, dtype=None, rng=None):
        if tuple(shape) != value.shape:
            raise ValueError(f"{argument}: the array given as initializer has shape "
                             f"{value.shape}, but the weight has shape {tuple(shape)}")
        return value.astype(np.float32 if dtype is None else dtype)
    return initialize


def get(identifier, argument="initializer"):
    """An initializer from a name, a config dict, a class, an instance, a callable or an array.

    Parameters
    ----------
    identifier : str, dict, Initializer, type, callable, ndarray or None
        See the module docstring for the names.  None gives None, as in
        Keras -- except for a layer's weight (``argument`` naming it), where
        it means the default Keras's ``add_weight`` picks for a float
        weight: ``glorot_uniform``.
    argument : str
        The argument name used in error messages (``"kernel_initializer"``).

    Returns
    -------
    callable
        ``init(shape, dtype=None, rng=None)``.
    """
    if identifier is None:
        return None if argument == "initializer" else GlorotUniform()
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"{argument}: unknown initializer {identifier!r}; "
                             f"known: {', '.join(sorted(_BY_NAME))}")
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict):
        return deserialize(identifier, argument)
    if isinstance(identifier, (np.ndarray, np.generic)):
        return _array_initializer(identifier, argument)
    if isinstance(identifier, Initializer):
        return identifier
    if inspect.isclass(identifier):
        if issubclass(identifier, Initializer):
            return identifier()
        raise TypeError(f"{argument}: a class given as initializer must subclass "
                        f"fastrnn.initializers.Initializer, got {identifier.__name__}")
    if callable(identifier):
        return _FunctionInitializer(identifier)
    raise TypeError(f"{argument} must be a name, a dict, an Initializer or a callable, "
                    f"got {type(identifier).__name__}")
