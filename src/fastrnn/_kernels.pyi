"""Type stub for the compiled kernels (``_kernels.pyx``).

The functions take C-contiguous float32 or float64 arrays of one dtype that
:mod:`fastrnn.ops` has already checked; they do no checking of their own.
``activation`` is a code of ``ACTIVATION_CODES``.
"""
from typing import Optional, TypeVar

import numpy as np
import numpy.typing as npt

_F = TypeVar("_F", np.float32, np.float64)
_Array = npt.NDArray[_F]

TRANSPOSED_STEP_MIN_UNITS: int
ACTIVATION_CODES: dict[str, int]
PACKED_CALIBRATION_FLOOR: int
PACKED_CALIBRATION_UNITS: tuple[int, ...]

def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...

def rnn_forward(x: _Array[_F], kernel: _Array[_F], recurrent_kernel: _Array[_F],
                bias: _Array[_F], h0: Optional[_Array[_F]], h: _Array[_F],
                recurrent_kernel_t: Optional[_Array[_F]], activation: int,
                mask: Optional[npt.NDArray[np.uint8]] = ...,
                dropout_mask: Optional[_Array[_F]] = ...,
                recurrent_dropout_mask: Optional[_Array[_F]] = ...,
                x_work: Optional[_Array[_F]] = ..., h_work: Optional[_Array[_F]] = ...,
                time_major: bool = ..., reverse: bool = ...) -> None: ...
def rnn_backward(x: _Array[_F], h: _Array[_F], kernel: _Array[_F],
                 recurrent_kernel: _Array[_F], dh: _Array[_F], h0: Optional[_Array[_F]],
                 dz: _Array[_F], dx: Optional[_Array[_F]], dkernel: _Array[_F],
                 drecurrent_kernel: _Array[_F], dbias: _Array[_F], dh0: _Array[_F],
                 carry: _Array[_F], recurrent_kernel_t: _Array[_F], activation: int,
                 mask: Optional[npt.NDArray[np.uint8]] = ...,
                 dropout_mask: Optional[_Array[_F]] = ...,
                 recurrent_dropout_mask: Optional[_Array[_F]] = ...,
                 x_work: Optional[_Array[_F]] = ..., h_work: Optional[_Array[_F]] = ...,
                 time_major: bool = ..., reverse: bool = ...) -> None: ...
def zero_unstarted_steps(a: _Array[_F], mask: npt.NDArray[np.uint8], time_major: bool = ...,
                         reverse: bool = ...) -> None: ...
def dense_forward(x: _Array[_F], kernel: _Array[_F], bias: _Array[_F],
                  y: _Array[_F]) -> None: ...
def dense_backward(x: _Array[_F], kernel: _Array[_F], dy: _Array[_F], dx: _Array[_F],
                   dkernel: _Array[_F], dbias: _Array[_F]) -> None: ...
def tanh_inplace(a: _Array[_F]) -> None: ...
def adam_update(param: _Array[_F], grad: _Array[_F], m: _Array[_F], v: _Array[_F],
                lr_t: float, beta_1: float, beta_2: float, epsilon: float) -> None: ...
