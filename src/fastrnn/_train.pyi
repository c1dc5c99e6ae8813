"""Type stub for the compiled fused trainer (``_train.pyx``).

Use it through :class:`fastrnn.fused.FusedTrainer`, which checks every
argument; the model layer never calls this module directly.  Buffers are
flat, C-contiguous, writeable and all float32 or all float64, laid out in
Keras ``get_weights()`` order (see :func:`fastrnn.fused.param_count`).
"""
from typing import Optional

import numpy as np
import numpy.typing as npt

_Array = npt.NDArray[np.floating]

def _set_small_dim(n: int) -> None: ...
def _set_big_product_flops(n: float) -> None: ...

class RNNDenseTrainer:
    def __init__(self, params: _Array, grads: _Array, m: _Array, v: _Array,
                 input_dim: int, units: int, output_units: int, activation: str = ...,
                 use_bias: bool = ..., dense_use_bias: bool = ...,
                 return_sequences: bool = ..., loss: str = ..., learning_rate: float = ...,
                 beta_1: float = ..., beta_2: float = ..., epsilon: float = ...,
                 clip: str = ..., clip_value: float = ..., iterations: int = ...,
                 batch_size: int = ..., timesteps: int = ..., kernel: str = ...,
                 flush_denormals: bool = ..., blas_threads: int = ...,
                 blas_set_addr: int = ..., blas_get_addr: int = ...) -> None: ...
    def reserve(self, batch_size: int, timesteps: int) -> None: ...
    def step(self, xb: _Array, yb: _Array) -> float: ...
    def bind_data(self, X: _Array, Y: _Array) -> None: ...
    def unbind_data(self) -> None: ...
    def run_epoch(self, order: npt.NDArray[np.int64], batch_size: int,
                  losses: npt.NDArray[np.float64]) -> float: ...
    def predict(self, x: _Array, out: Optional[_Array] = ...) -> _Array: ...
    iterations: int
    learning_rate: float
    @property
    def uses_blas(self) -> bool: ...
    @property
    def n_params(self) -> int: ...
    @property
    def dtype(self) -> np.dtype: ...
