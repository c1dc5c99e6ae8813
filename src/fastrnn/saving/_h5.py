"""HDF5 access for Keras weight files, with h5py as an optional dependency.

Reading treats the file as untrusted: every step of a dataset's path must be
a hard link inside the file (no soft or external links), the dataset must
keep its data inside the file (no external storage, no virtual dataset), use
no filter beyond gzip/shuffle/fletcher32, have the expected shape and a
floating-point dtype, and have its data really stored (all of it, or at
least 1/100 of it when gzip-compressed) before a single element is read.
So what a read allocates is bounded by what the file holds.
"""
import io

import numpy as np

from ._files import FileFormatError

__all__ = ["require_h5py", "write_h5_bytes", "H5WeightReader", "INSTALL_HINT"]

INSTALL_HINT = 'pip install "fastrnn[keras-io]"'

# HDF5 filters a weights file may use (deflate, shuffle, fletcher32): those
# every HDF5 build has.  Anything else would need a plugin, which HDF5 would
# look for (and load) from disk.
_ALLOWED_FILTERS = {1: "gzip", 2: "shuffle", 3: "fletcher32"}
_GZIP = 1
_MAX_COMPRESSION = 100


def require_h5py(what):
    """The ``h5py`` module, or an ImportError that says how to install it."""
    try:
        import h5py
    except ImportError:
        raise ImportError(f"{what} needs h5py, which is not installed: "
                          f"{INSTALL_HINT}") from None
    return h5py


def write_h5_bytes(datasets, group_names, what):
    """An HDF5 file, as bytes, in the layout Keras 3 writes.

    Parameters
    ----------
    datasets : dict of str -> ndarray
        Dataset path (``"layers/dense/vars/0"``) to data.
    group_names : dict of str -> str
        Group path (``"layers/dense/vars"``) to the value of its ``name``
        attribute; these groups are created even when they hold no dataset.
    what : str
        The calling function's name, for the install hint.

    Returns
    -------
    bytes
    """
    h5py = require_h5py(what)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for path, name in group_names.items():
            group = f.require_group(path)
            group.attrs["name"] = name
        for path, value in datasets.items():
            f.create_dataset(path, data=np.ascontiguousarray(value))
    return buffer.getvalue()


class H5WeightReader:
    """Checked reads from a Keras weights file.

    Parameters
    ----------
    source : str or bytes
        A path, or the file's bytes (a ``.keras`` archive's member).
    what : str
        Names the file in error messages.

    Use as a context manager.  Errors from h5py/HDF5 on a malformed file
    surface as :class:`FileFormatError` from the methods (and the constructor).
    """

    def __init__(self, source, what, caller):
        self._h5py = require_h5py(caller)
        self.what = what
        self._buffer = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else None
        try:
            self._file = self._h5py.File(self._buffer if self._buffer is not None else source, "r")
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except Exception as e:  # HDF5 reports a non-HDF5 or damaged file many ways
            raise FileFormatError(f"{what} is not a readable HDF5 file "
                                  f"({type(e).__name__}: {e})") from e

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self._file.close()
        except Exception:
            pass

    def _node(self, path, kind):
        """The object at ``path`` after checking that each step is a hard link."""
        h5py = self._h5py
        node = self._file
        for part in path.split("/"):
            if not isinstance(node, h5py.Group) or part not in node:
                return None
            link = node.get(part, getlink=True)
            if not isinstance(link, h5py.HardLink):
                raise FileFormatError(f"{self.what}: {path!r} goes through a "
                                      f"{type(link).__name__}; only plain groups and "
                                      f"datasets are accepted")
            node = node[part]
        if kind is not None and not isinstance(node, kind):
            raise FileFormatError(f"{self.what}: {path!r} is not a {kind.__name__}")
        return node

    def _guard(self, action, path):
        try:
            return action()
        except FileFormatError:
            raise
        except Exception as e:
            raise FileFormatError(f"{self.what}: cannot read {path!r} "
                                  f"({type(e).__name__}: {e})") from e

    def has(self, path):
        """True if ``path`` names a group or dataset (reached by hard links)."""
        return self._guard(lambda: self._node(path, None) is not None, path)

    def dataset_paths(self, group_path):
        """Paths of every dataset under a group (walking hard links only), sorted."""
        def walk():
            root = self._node(group_path, self._h5py.Group)
            if root is None:
                return []
            found, stack = [], [group_path]
            while stack:
                path = stack.pop()
                group = self._node(path, self._h5py.Group)
                for key in group:
                    child = f"{path}/{key}"
                    if len(found) > 100_000:
                        raise FileFormatError(f"{self.what} holds too many datasets")
                    node = self._node(child, None)
                    if isinstance(node, self._h5py.Group):
                        stack.append(child)
                    else:
                        found.append(child)
            return sorted(found)
        return self._guard(walk, group_path)

    def check(self, path, shape):
        """Check that the dataset at ``path`` has ``shape`` and a float dtype (reads no data)."""
        def run():
            ds = self._node(path, self._h5py.Dataset)
            if ds is None:
                raise FileFormatError(f"{self.what} has no weight {path!r}")
            if ds.is_virtual or ds.external:
                raise FileFormatError(f"{self.what}: weight {path!r} keeps its data "
                                      f"outside the file")
            plist = ds.id.get_create_plist()
            filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
            other = [f for f in filters if f not in _ALLOWED_FILTERS]
            if other:
                raise FileFormatError(f"{self.what}: weight {path!r} uses HDF5 filters "
                                      f"{other}; only {sorted(_ALLOWED_FILTERS.values())} "
                                      f"are accepted")
            dtype = ds.dtype
            if dtype.kind != "f" or dtype.itemsize not in (2, 4, 8) or dtype.fields:
                raise FileFormatError(f"{self.what}: weight {path!r} has dtype {dtype}; "
                                      f"expected float16, float32 or float64")
            if tuple(ds.shape) != tuple(shape):
                raise FileFormatError(f"{self.what}: weight {path!r} has shape "
                                      f"{tuple(ds.shape)}, expected {tuple(shape)}")
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            stored = ds.id.get_storage_size()
            if stored < nbytes and not (_GZIP in filters and
                                        stored * _MAX_COMPRESSION >= nbytes):
                raise FileFormatError(f"{self.what}: weight {path!r} stores {stored} bytes "
                                      f"of its {nbytes}; its data is missing")
            return ds
        return self._guard(run, path)

    def read(self, path, shape):
        """The dataset at ``path`` as an ndarray, after :meth:`check`."""
        ds = self.check(path, shape)

        def run():
            value = np.asarray(ds[()])
            if value.shape != tuple(shape):
                raise FileFormatError(f"{self.what}: weight {path!r} read with shape "
                                      f"{value.shape}, expected {tuple(shape)}")
            return value
        return self._guard(run, path)
