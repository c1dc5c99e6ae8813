"""Lowering a model to the compiled engine, and running it.

``lower(layers, input_shape, offsets)`` turns a chain of built layers into
the engine's plan (see :mod:`fastrnn._engine`): one int64 row per layer with
its kind, activation code, flags, sizes and the offsets of its weights in the
model's flat ``params``.  :class:`Runner` keeps, for one model, the plan and
the engines made from it: one for training (used by one ``fit`` at a time,
under the model's lock) and one per thread for prediction, each re-lowered
only when the structure, dtype or buffers change.  Every model fastrnn can
build trains and predicts through this one path.

BLAS threads: for models whose largest layer has fewer than
``ONE_BLAS_THREAD_BELOW_UNITS`` units the engine runs BLAS on one thread *of
the calling thread* during its calls (OpenBLAS's thread-local setting,
``openblas_set_num_threads_local``, found at run time; without it BLAS is
left alone).  Small products lose more to waking a second BLAS thread than
they gain from it; no process-wide setting is ever changed.
"""
import threading

import numpy as np

from . import _engine, _kernels

__all__ = ["lower", "Runner", "ONE_BLAS_THREAD_BELOW_UNITS"]

#: Below this many units in every layer, BLAS runs on one thread during engine calls.
ONE_BLAS_THREAD_BELOW_UNITS = 256


def _find_blas_local_setter():
    """Address of ``openblas_set_num_threads_local`` in the BLAS behind cython_blas, or 0.

    The library is the one holding ``scipy.linalg.cython_blas.sgemm``
    (found with ``dladdr``); the setter exists from OpenBLAS 0.3.27 on.
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
            return 0
        lib = ctypes.CDLL(info.dli_fname.decode())
        for name in ("openblas_set_num_threads_local", "scipy_openblas_set_num_threads_local",
                     "openblas_set_num_threads_local64_"):
            fn = getattr(lib, name, None)
            if fn is not None:
                return ctypes.cast(fn, ctypes.c_void_p).value or 0
    except Exception:     # no dladdr, no OpenBLAS, another BLAS: leave threads alone
        pass
    return 0


_BLAS_LOCAL = None


def blas_local_setter():
    """The cached address of the thread-local BLAS thread setter (0: none)."""
    global _BLAS_LOCAL
    if _BLAS_LOCAL is None:
        _BLAS_LOCAL = _find_blas_local_setter()
    return _BLAS_LOCAL


def lower(layers, input_shape, offsets):
    """The engine plan of a chain of built layers.

    Parameters
    ----------
    layers : list of fastrnn.layers.Layer
        Built, in order; each describes its node with ``_node()``.
    input_shape : tuple
        The model's input shape with the batch axis, e.g. ``(None, T, D)``.
    offsets : list of int
        Offset of each layer's first weight in the flat ``params``.

    Returns
    -------
    plan : ndarray of int64, shape (len(layers), PLAN_FIELDS)
    signature : tuple
        ``(input_dim, output_units, seq_in, seq_out)`` of the whole model.
    """
    seq = len(input_shape) == 3
    plan = np.full((len(layers), _engine.PLAN_FIELDS), -1, dtype=np.int64)
    din = input_shape[-1]
    for i, (layer, base) in enumerate(zip(layers, offsets)):
        node = layer._node()
        kind = _engine.KINDS[node["kind"]]
        seq_out = node.get("seq_out", seq)
        flags = ((_engine.FLAGS["seq_in"] if seq else 0)
                 | (_engine.FLAGS["seq_out"] if seq_out else 0)
                 | (_engine.FLAGS["backwards"] if node.get("backwards") else 0))
        weights = {name: base + off for name, off in layer._weight_offsets().items()}
        plan[i] = (kind, i - 1, _kernels.ACTIVATION_CODES[node["activation"]], flags, din,
                   node["units"], weights["kernel"], weights.get("recurrent_kernel", -1),
                   weights.get("bias", -1))
        din, seq = node["units"], seq_out
    return plan, (int(input_shape[-1]), int(din), len(input_shape) == 3, seq)


class Runner:
    """The engines of one model: training (one at a time) and prediction (one per thread).

    Parameters
    ----------
    plan, signature
        From :func:`lower`.
    params, grads : ndarray of shape (P,)
        The model's flat buffers.
    """

    def __init__(self, plan, signature, params, grads):
        self.plan = plan
        self.signature = signature
        self.params = params
        self.grads = grads
        units = plan[:, 5]
        self.one_blas_thread = bool(units.max() < ONE_BLAS_THREAD_BELOW_UNITS)
        self._trainer = None
        self._trainer_key = None
        self._predictors = {}

    def _new_engine(self, grads=None):
        return _engine.Engine(self.plan, self.params, self.grads if grads is None else grads,
                              *self.signature, blas_local_address=blas_local_setter(),
                              one_blas_thread=self.one_blas_thread)

    def trainer(self, loss, optimizer):
        """The training engine, configured for ``loss`` and ``optimizer`` (built).

        Re-configured only when the loss, the optimizer object, its settings
        or its state buffer changed (e.g. ``compile`` from a callback).
        """
        hyper = {"beta_1": 0.0, "beta_2": 0.0, "epsilon": 1e-7, "momentum": 0.0, "rho": 0.0,
                 "weight_decay": optimizer.weight_decay or 0.0, "flag": 0.0}
        hyper.update(optimizer._hyper())
        clip, clip_value = optimizer._clip()
        key = (loss._engine_name, id(optimizer), tuple(sorted(hyper.items())), clip, clip_value,
               id(optimizer.state), optimizer._layout)
        if self._trainer is None:
            self._trainer = self._new_engine()
        if key != self._trainer_key:
            values = [0.0] * _engine.N_HYPERPARAMETERS
            for name, value in hyper.items():
                values[_engine.HYPER[name]] = value
            self._trainer.set_loss(_engine.LOSSES[loss._engine_name])
            self._trainer.set_optimizer(_engine.OPTIMIZERS[optimizer._engine_name], values,
                                        optimizer.state, len(optimizer._slots()),
                                        _engine.CLIPS[clip], clip_value,
                                        list(optimizer._layout[2]))
            self._trainer_key = key
        return self._trainer

    def predictor(self):
        """This thread's prediction engine (its own work buffers; never writes params)."""
        tid = threading.get_ident()
        engine = self._predictors.get(tid)
        if engine is None:
            if len(self._predictors) >= 64:     # threads come and go: forget old ones
                self._predictors = {}
            # a private grads buffer: prediction never touches the model's
            engine = self._new_engine(grads=np.zeros(self.params.size, self.params.dtype))
            self._predictors[tid] = engine
        return engine
