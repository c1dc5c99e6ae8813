"""File helpers shared by the savers: atomic replacement and bounded reads.

A save never leaves a half-written file where a good one was: the bytes go
to a new file in the same directory (same file system, so the final
:func:`os.replace` is atomic), which is flushed to disk and then renamed over
the target.  If anything fails before the rename, the old file is untouched
and the temporary file is removed.
"""
import os
import secrets
import stat
import zipfile

__all__ = ["FileFormatError", "atomic_write_bytes", "check_path", "read_zip_member",
           "require_regular_file"]

# Largest expansion accepted for a compressed archive member (beyond 1 MiB):
# Keras stores members uncompressed; float weights compress little.
_MAX_RATIO = 100


class FileFormatError(ValueError):
    """A model or weights file that is malformed, hostile, or does not fit."""


def check_path(filepath, suffix, argument="filepath"):
    """``filepath`` as a str, required to end in ``suffix``.

    Parameters
    ----------
    filepath : str or os.PathLike
    suffix : str
        Such as ``".keras"`` or ``".weights.h5"``.
    argument : str
        The argument name used in error messages.
    """
    try:
        path = os.fspath(filepath)
    except TypeError:
        raise TypeError(f"{argument} must be a str or os.PathLike, "
                        f"got {type(filepath).__name__}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path.endswith(suffix):
        raise ValueError(f"{argument} must end in {suffix!r}, got {path!r}")
    return path


def require_regular_file(path, what):
    """Refuse what is not a regular file before opening it (a FIFO would block forever).

    Raises FileNotFoundError/PermissionError as :func:`os.stat` does,
    IsADirectoryError for a directory, ValueError for anything else.
    """
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"{what}: {path!r} is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{what}: {path!r} is not a regular file")


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` through a temporary file and :func:`os.replace`.

    The new file gets the permissions an ordinary ``open(path, "wb")`` would
    (0o666 less the umask), since it is created with :func:`os.open`.

    Parameters
    ----------
    path : str
    data : bytes-like
    """
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_zip_member(zf, name, limit, what):
    """The bytes of one archive member, refusing members that claim more than ``limit``.

    Parameters
    ----------
    zf : zipfile.ZipFile
    name : str
    limit : int
        The largest uncompressed size accepted, in bytes.
    what : str
        Names the file in error messages.

    Raises
    ------
    FileFormatError
        The member is missing, too large, compressed suspiciously well (a
        "zip bomb"), or fails its CRC check.
    """
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise FileFormatError(f"{what} has no {name!r}") from None
    if info.file_size > limit:
        raise FileFormatError(f"{what}: {name!r} claims {info.file_size} bytes, more than "
                              f"the {limit} this file can need")
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > _MAX_RATIO * max(
            info.compress_size, 1) + (1 << 20):
        raise FileFormatError(f"{what}: {name!r} expands {info.file_size} bytes from "
                              f"{info.compress_size}; refusing a likely zip bomb")
    with zf.open(info) as f:
        data = f.read(limit + 1)   # zipfile checks the CRC at the end of the member
    if len(data) != info.file_size:
        raise FileFormatError(f"{what}: {name!r} holds {len(data)} bytes, "
                              f"its header says {info.file_size}")
    return data
