"""Export trained models for deployment elsewhere.

- :func:`to_onnx`: a standard ONNX graph using ONNX's ``RNN`` operator, for
  ONNX Runtime and other ONNX runtimes (needs ``pip install "fastrnn[onnx]"``).

Importing this package does not import onnx.
"""
from ._onnx import to_onnx

__all__ = ["to_onnx"]
