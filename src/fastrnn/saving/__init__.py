"""Model and weight files in Keras 3's formats.

- :func:`save_model` / :func:`load_model`: ``.keras`` archives (config,
  metadata and weights) that Keras 3 writes and reads;
- :func:`save_weights_h5` / :func:`load_weights_h5`: ``.weights.h5`` files in
  Keras 3's HDF5 layout.

These need h5py (``pip install "fastrnn[keras-io]"``); importing this package
does not.  Every file is untrusted input: a malformed or hostile one raises
:class:`FileFormatError` (a ValueError) and changes nothing.  Writes go to a
temporary file that replaces the target only once complete.

The layers these files can hold are listed in
:data:`fastrnn.saving.keras_layers.LAYER_FORMATS`, one entry each.
"""
from ._files import FileFormatError
from ._h5 import INSTALL_HINT
from .keras_file import (KERAS_FORMAT_VERSION, load_model, load_weights_h5, save_model,
                         save_weights_h5)

__all__ = ["save_model", "load_model", "save_weights_h5", "load_weights_h5", "FileFormatError",
           "KERAS_FORMAT_VERSION", "INSTALL_HINT"]
