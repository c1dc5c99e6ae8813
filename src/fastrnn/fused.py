"""Fused training step for SimpleRNN -> Dense (checked API over ``_train``).

The model layer trains a ``SimpleRNN(H) -> Dense(U)`` model with mse or mae
and Adam through :class:`FusedTrainer`: one compiled call per batch
(:meth:`FusedTrainer.step`) or per epoch (:meth:`FusedTrainer.run_epoch`) does
the forward pass, the loss, BPTT into the flat ``grads`` buffer, optional
gradient clipping and the Adam update of the flat ``params``, ``m`` and ``v``
buffers, with the GIL released and no allocation.

Layout of the flat buffers (Keras ``get_weights`` order, each C-ordered)::

    kernel (D, H) | recurrent_kernel (H, H) | bias (H,)      [if use_bias]
    | dense kernel (H, U) | dense bias (U,)                  [if dense_use_bias]

Adam follows Keras: ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``,
``m += (1-b1)(g-m)``, ``v += (1-b2)(g^2-v)``, ``p -= lr_t m / (sqrt(v)+eps)``
with ``t = iterations + 1``; ``clipnorm`` (per variable), ``global_clipnorm``
or ``clipvalue`` are applied to the gradients first, as Keras does.  The
``grads`` buffer keeps the unclipped gradients.

Like TensorFlow on the CPU, the compiled calls flush denormal floats to zero
(``flush_denormals=True``), which keeps Adam's decaying moments out of the
~100x slower denormal range; pass False for strict IEEE behaviour.

BLAS threads: OpenBLAS on 2 threads was measured 2x slower than on 1 for the
small products of a training step (S3: 2.4 vs 1.2 ms; S1/S2 alike), and
faster for large ones (L forward+backward 60 vs 92 ms).  With
``blas_threads="auto"`` the compiled calls therefore run the BLAS behind
``scipy.linalg.cython_blas`` on 1 thread when H < AUTO_ONE_THREAD_UNITS and
leave it alone otherwise, restoring its thread count on exit (OpenBLAS only;
with another BLAS nothing is changed).  Inside such a call the merged products
over all B*T rows of at least 4 MFLOP (the input projection and the weight
gradients) still run on the caller's thread count: at S3 that took the step
from 1.11 to 1.03 ms.

This module checks the configuration and every buffer once, at construction
and in :meth:`bind_data`; the per-batch calls :meth:`step` and
:meth:`predict` are the compiled methods themselves, which still check their
arguments' dtype, shape and contiguity (cheaply) and raise
``TypeError``/``ValueError`` naming the argument.  A trainer is not
thread-safe: use one per thread (a concurrent call raises ``RuntimeError``).
"""
import math

import numpy as np

from . import _train

__all__ = ["FusedTrainer", "param_count", "AUTO_ONE_THREAD_UNITS"]

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: blas_threads="auto" uses 1 BLAS thread below this many units (see the module notes).
AUTO_ONE_THREAD_UNITS = 256


def _find_blas_thread_functions():
    """Addresses of (set, get) num-threads of the OpenBLAS behind cython_blas, or (0, 0).

    The library is the one that holds ``scipy.linalg.cython_blas.sgemm``
    (found with ``dladdr``); its ``*openblas_set_num_threads*`` /
    ``*openblas_get_num_threads*`` are looked up by name.
    """
    try:
        import ctypes

        from scipy.linalg import cython_blas
        capsule = cython_blas.__pyx_capi__["sgemm"]
        api = ctypes.pythonapi
        api.PyCapsule_GetName.restype = ctypes.c_char_p
        api.PyCapsule_GetName.argtypes = [ctypes.py_object]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        addr = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))

        class _DlInfo(ctypes.Structure):
            _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                        ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]

        info = _DlInfo()
        if not ctypes.CDLL(None).dladdr(ctypes.c_void_p(addr), ctypes.byref(info)):
            return 0, 0
        lib = ctypes.CDLL(info.dli_fname.decode())
        for prefix in ("openblas", "scipy_openblas"):
            for suffix in ("", "64_"):
                fset = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                fget = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if fset is not None and fget is not None:
                    return (ctypes.cast(fset, ctypes.c_void_p).value,
                            ctypes.cast(fget, ctypes.c_void_p).value)
    except Exception:     # no dladdr, no OpenBLAS, another BLAS: leave threads alone
        pass
    return 0, 0


_BLAS_THREAD_FUNCTIONS = None


def _blas_thread_functions():
    global _BLAS_THREAD_FUNCTIONS
    if _BLAS_THREAD_FUNCTIONS is None:
        _BLAS_THREAD_FUNCTIONS = _find_blas_thread_functions()
    return _BLAS_THREAD_FUNCTIONS


def param_count(input_dim, units, output_units=1, use_bias=True, dense_use_bias=True):
    """Length of the flat parameter buffer of a SimpleRNN -> Dense model.

    Parameters
    ----------
    input_dim, units, output_units : int
        D, H and U.
    use_bias, dense_use_bias : bool

    Returns
    -------
    int
        ``D*H + H*H + H*use_bias + H*U + U*dense_use_bias``
    """
    D, H, U = (_positive_int(v, n) for v, n in ((input_dim, "input_dim"), (units, "units"),
                                                 (output_units, "output_units")))
    return D * H + H * H + H * bool(use_bias) + H * U + U * bool(dense_use_bias)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _float(value, name, low=None, high=None, low_open=False, high_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return value


def _flat_buffer(arr, name, n, dtype):
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(arr).__name__}")
    if arr.dtype not in _DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {arr.dtype}")
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} like params, got {arr.dtype}")
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous: the trainer updates it in place")
    if not arr.flags.writeable:
        raise ValueError(f"{name} must be writable: the trainer updates it in place")
    return arr


class FusedTrainer:
    """Compiled training step of ``SimpleRNN(H) -> Dense(U)`` with mse/mae and Adam.

    Parameters
    ----------
    params, grads, m, v : ndarray of shape (P,), float32 or float64
        The model's flat parameter, gradient and Adam moment buffers
        (P = :func:`param_count`), one shared dtype, C-contiguous, writable,
        not overlapping.  Updated in place and kept referenced (not copied):
        the layers' weight views stay valid.
    input_dim : int
        D, features per time step.
    units : int
        H, SimpleRNN units.
    output_units : int, default 1
        U, Dense units (linear activation).
    activation : {"tanh", "relu"}
        The SimpleRNN activation.
    use_bias, dense_use_bias : bool
        Whether the SimpleRNN / Dense layer has a bias segment in ``params``.
    return_sequences : bool
        False: Dense on the last state, outputs (B, U).  True: Dense on every
        state, outputs (B, T, U).
    loss : {"mse", "mae"}
        Mean over all output elements.
    learning_rate, beta_1, beta_2, epsilon : float
        Keras Adam hyper-parameters.
    clipnorm, clipvalue, global_clipnorm : float or None
        Keras gradient clipping; at most one may be set.
    iterations : int
        Adam steps already taken (Keras ``optimizer.iterations``); the next
        step uses ``t = iterations + 1``.
    batch_size, timesteps : int
        Size the work buffers for batches up to (batch_size, timesteps); a
        larger batch later grows them once (an allocation, then none).
    kernel : {"auto", "blas", "loops"}
        Products through BLAS or direct loops; "auto" picks the measured faster.
    flush_denormals : bool
        Flush denormals to zero inside the compiled calls (as TensorFlow does).
    blas_threads : "auto", int or None, default "auto"
        BLAS threads during the compiled calls (restored after each call):
        "auto" is 1 when ``units < AUTO_ONE_THREAD_UNITS``, else unchanged;
        an int >= 1 that many; None leaves BLAS as it is.  Only an OpenBLAS
        found behind ``scipy.linalg.cython_blas`` is changed.

    Attributes
    ----------
    iterations : int
        Read/write; incremented by every step.
    learning_rate : float
        Read/write, e.g. for a learning-rate schedule.
    n_params : int
    dtype : numpy.dtype
    """

    def __init__(self, params, grads, m, v, *, input_dim, units, output_units=1,
                 activation="tanh", use_bias=True, dense_use_bias=True,
                 return_sequences=False, loss="mse", learning_rate=0.001, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-7, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, iterations=0, batch_size=32, timesteps=1,
                 kernel="auto", flush_denormals=True, blas_threads="auto"):
        D = _positive_int(input_dim, "input_dim")
        H = _positive_int(units, "units")
        U = _positive_int(output_units, "output_units")
        batch_size = _positive_int(batch_size, "batch_size")
        timesteps = _positive_int(timesteps, "timesteps")
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu', got {activation!r}")
        if loss not in ("mse", "mae"):
            raise ValueError(f"loss must be 'mse' or 'mae', got {loss!r}")
        if kernel not in ("auto", "blas", "loops"):
            raise ValueError(f"kernel must be 'auto', 'blas' or 'loops', got {kernel!r}")
        for flag, name in ((use_bias, "use_bias"), (dense_use_bias, "dense_use_bias"),
                           (return_sequences, "return_sequences"),
                           (flush_denormals, "flush_denormals")):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        learning_rate = _float(learning_rate, "learning_rate", 0.0)
        beta_1 = _float(beta_1, "beta_1", 0.0, 1.0, high_open=True)
        beta_2 = _float(beta_2, "beta_2", 0.0, 1.0, high_open=True)
        epsilon = _float(epsilon, "epsilon", 0.0)
        clips = {k: val for k, val in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                                       ("global_clipnorm", global_clipnorm))
                 if val is not None}
        if len(clips) > 1:
            raise ValueError(f"at most one of clipnorm, clipvalue and global_clipnorm can be "
                             f"set, got {', '.join(clips)}")
        clip, clip_value = "none", 0.0
        if clips:
            clip, raw = next(iter(clips.items()))
            clip_value = _float(raw, clip, 0.0, low_open=True)
        if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)):
            raise TypeError(f"iterations must be an int, got {type(iterations).__name__}")
        if iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {iterations}")
        if blas_threads is None:
            nthreads = 0
        elif isinstance(blas_threads, str) and blas_threads == "auto":
            nthreads = 1 if H < AUTO_ONE_THREAD_UNITS else 0
        else:
            nthreads = _positive_int(blas_threads, "blas_threads")
        fset, fget = _blas_thread_functions() if nthreads else (0, 0)
        n = param_count(D, H, U, use_bias, dense_use_bias)
        params = _flat_buffer(params, "params", n, None)
        grads = _flat_buffer(grads, "grads", n, params.dtype)
        m = _flat_buffer(m, "m", n, params.dtype)
        v = _flat_buffer(v, "v", n, params.dtype)
        named = (("params", params), ("grads", grads), ("m", m), ("v", v))
        for i, (na, a) in enumerate(named):
            for nb, b in named[i + 1:]:
                if np.may_share_memory(a, b):
                    raise ValueError(f"{na} and {nb} must not share memory")
        self._core = _train.RNNDenseTrainer(
            params, grads, m, v, D, H, U, activation=activation, use_bias=bool(use_bias),
            dense_use_bias=bool(dense_use_bias), return_sequences=bool(return_sequences),
            loss=loss, learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, clip=clip, clip_value=clip_value, iterations=int(iterations),
            batch_size=batch_size, timesteps=timesteps, kernel=kernel,
            flush_denormals=bool(flush_denormals), blas_threads=nthreads,
            blas_set_addr=fset or 0, blas_get_addr=fget or 0)
        self.params, self.grads, self.m, self.v = params, grads, m, v
        self.input_dim, self.units, self.output_units = D, H, U
        self.return_sequences = bool(return_sequences)
        self._X = self._Y = None
        # The per-batch calls are the compiled methods themselves (they check
        # their arguments): no Python frame in between.
        self.step = self._core.step
        self.predict = self._core.predict

    # The two methods below are documentation: __init__ binds the compiled ones.
    def step(self, xb, yb):  # pragma: no cover - replaced per instance
        """One training step on a batch; returns the loss before the update.

        Parameters
        ----------
        xb : ndarray of shape (B, T, D)
            C-contiguous, the trainer's dtype; B and T >= 1.
        yb : ndarray of shape (B, U), or (B,) when U == 1
            With ``return_sequences``: (B, T, U), or (B, T) when U == 1.

        Returns
        -------
        float
            The batch loss at the parameters before this step's update.
        """
        return self._core.step(xb, yb)

    def predict(self, x, out=None):  # pragma: no cover - replaced per instance
        """Forward pass only (no state is changed).

        Parameters
        ----------
        x : ndarray of shape (N, T, D)
            C-contiguous, the trainer's dtype.
        out : ndarray of shape (N, U) (or (N, T, U) with return_sequences), optional
            Written and returned; allocated when None.

        Returns
        -------
        ndarray of shape (N, U), or (N, T, U) with return_sequences
        """
        return self._core.predict(x, out)

    def bind_data(self, X, Y):
        """Bind the training set that :meth:`run_epoch` draws batches from.

        Parameters
        ----------
        X : ndarray of shape (N, T, D)
        Y : ndarray of shape (N, U) or (N,) when U == 1; with return_sequences
            (N, T, U) or (N, T) when U == 1.
            Both C-contiguous in the trainer's dtype (as ``fit`` has cast them);
            kept referenced, not copied, until the next ``bind_data``.
        """
        for arr, name in ((X, "X"), (Y, "Y")):
            if not isinstance(arr, np.ndarray):
                raise TypeError(f"{name} must be a numpy array, got {type(arr).__name__}")
        self._core.bind_data(X, Y)
        self._X, self._Y = X, Y

    def unbind_data(self):
        """Release the arrays bound by :meth:`bind_data`."""
        self._core.unbind_data()
        self._X = self._Y = None

    def run_epoch(self, order, batch_size, losses=None):
        """Train on every batch of the bound set in one compiled call.

        Batch ``k`` is rows ``order[k*batch_size:(k+1)*batch_size]`` of the
        bound X and Y (the last one may be smaller); each is one :meth:`step`,
        bitwise the same as calling :meth:`step` on the gathered batch.

        Parameters
        ----------
        order : ndarray of shape (L,), integer
            Row indices into the bound set, each in [0, N) (a permutation for
            a shuffled epoch).  Converted to int64 if needed.
        batch_size : int
        losses : ndarray of shape (>= ceil(L / batch_size),), float64, optional
            Receives each batch's loss; allocated when None.

        Returns
        -------
        epoch_loss : float
            The sample-weighted mean of the batch losses (Keras's epoch loss).
        losses : ndarray of shape (ceil(L / batch_size),), float64
            The batch losses (a view of ``losses`` when given).
        """
        batch_size = _positive_int(batch_size, "batch_size")
        order = np.asarray(order)
        if order.dtype.kind not in "iu":
            raise TypeError(f"order must be an integer array, got dtype {order.dtype}")
        if order.ndim != 1:
            raise ValueError(f"order must be 1-D, got shape {order.shape}")
        order = np.ascontiguousarray(order, dtype=np.int64)
        nb = -(-len(order) // batch_size)
        if losses is None:
            losses = np.empty(nb, np.float64)
        elif not isinstance(losses, np.ndarray):
            raise TypeError(f"losses must be a numpy array, got {type(losses).__name__}")
        mean = self._core.run_epoch(order, batch_size, losses)
        return mean, losses[:nb]

    def reserve(self, batch_size, timesteps):
        """Size the work buffers for batches up to (batch_size, timesteps) now."""
        self._core.reserve(_positive_int(batch_size, "batch_size"),
                           _positive_int(timesteps, "timesteps"))

    @property
    def iterations(self):
        return self._core.iterations

    @iterations.setter
    def iterations(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"iterations must be an int, got {type(value).__name__}")
        self._core.iterations = int(value)

    @property
    def learning_rate(self):
        return self._core.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._core.learning_rate = _float(value, "learning_rate", 0.0)

    @property
    def n_params(self):
        return self._core.n_params

    @property
    def dtype(self):
        return self._core.dtype

    @property
    def uses_blas(self):
        return self._core.uses_blas
