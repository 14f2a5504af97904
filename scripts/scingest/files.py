"""File handling shared by readers and writers: gzip detection, atomic writes, hashing.

:func:`is_gzip` is the one test of whether a file is gzip (:func:`open_binary`, through which
the readers open files, and the resource model's text sizes use it).
"""

from __future__ import annotations

import contextlib
import errno
import glob
import gzip
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import IO

from .errors import ScingestError

# ISA-L inflates gzip faster than zlib, with the same interface: most of a dense read is
# inflating (bench/run.py reader compares it with gzip -dc).
try:
    from isal import igzip as _gzip
except ImportError:  # pragma: no cover - isal is a declared dependency
    _gzip = gzip

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: str | PathLike[str]) -> bool:
    """Whether a file is gzip-compressed, by its content rather than its name.

    Parameters
    ----------
    path
        A file.

    Returns
    -------
    True when the file starts with the gzip magic bytes.
    """
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_binary(path: str | PathLike[str]) -> IO[bytes]:
    """Open a possibly gzipped file for binary reading, by content rather than by name.

    A name ending in ``.gz`` whose content is not gzip is refused: it is most often a
    download that went wrong, and the user should know.

    Parameters
    ----------
    path
        A file, gzipped (inflated with ISA-L where installed) or not.

    Returns
    -------
    A binary file object yielding the uncompressed bytes.

    Raises
    ------
    ScingestError
        When the file is missing, a folder, empty, or named .gz without being gzip.
    """
    path = Path(path)
    try:
        gz = is_gzip(path)
    except FileNotFoundError:
        raise ScingestError("file not found", path=path) from None
    except IsADirectoryError:
        raise ScingestError("expected a file, found a folder", path=path) from None
    if not gz and path.stat().st_size == 0:
        raise empty_file_error(path)
    if path.name.lower().endswith(".gz") and not gz:
        raise ScingestError(
            "the name ends in .gz but the content is not gzip-compressed: "
            "re-download the file or rename it without .gz",
            path=path,
        )
    if gz:
        return _gzip.open(path, "rb")
    return open(path, "rb")


def empty_file_error(path: str | PathLike[str]) -> ScingestError:
    """The error for a 0-byte input: most often an interrupted download.

    Parameters
    ----------
    path
        The empty file.

    Returns
    -------
    The error to raise, naming the file and what to do.
    """
    return ScingestError(
        "the file is empty (0 bytes): an interrupted download? Re-download it and check its "
        "size or md5",
        path=path,
    )


def check_not_empty(paths: list[Path]) -> None:
    """Refuse empty files before any reading starts.

    Parameters
    ----------
    paths
        The files of an input (:func:`scingest.formats.input_files`).

    Raises
    ------
    ScingestError
        :func:`empty_file_error` of the first 0-byte file among ``paths``.
    """
    for path in paths:
        if path.is_file() and path.stat().st_size == 0:
            raise empty_file_error(path)


@contextlib.contextmanager
def decompression_errors(path: str | PathLike[str]) -> Iterator[None]:
    """Turn the inflater's errors within into one clear error naming the file.

    Parameters
    ----------
    path
        The file being read.

    Raises
    ------
    ScingestError
        For a truncated gzip stream or corrupt compressed data; other errors pass unchanged.
    """
    try:
        yield
    except EOFError:
        raise ScingestError(
            "the gzip stream ends early (truncated download?): expected a complete gzip "
            "file; re-download it and check its size or md5",
            path=path,
        ) from None
    except (gzip.BadGzipFile, OSError, ValueError) as err:
        if isinstance(err, ScingestError):
            raise
        if isinstance(err, OSError | ValueError) and not _is_compression_error(err):
            raise
        raise ScingestError(f"corrupt gzip data ({err}): re-download the file", path=path) from None


def _is_compression_error(err: Exception) -> bool:
    text = f"{type(err).__name__} {err}".lower()
    return any(w in text for w in ("gzip", "crc", "deflate", "compressed", "igzip", "zlib"))


def sha256sum(path: str | PathLike[str], *, chunk: int = 1 << 20) -> str:
    """The sha256 of a file's bytes.

    Parameters
    ----------
    path
        A file.
    chunk
        Bytes read at a time.

    Returns
    -------
    The digest as hex text.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A job killed mid-write leaves at most a hidden ``.NAME.*.tmp.*`` file that nothing reads,
    never a truncated ``path``. On error the temporary file is removed.

    Parameters
    ----------
    path
        The output to write. Its folder is made if missing; temporary files a killed
        earlier attempt left beside it are removed.

    Yields
    ------
    The temporary path to write, ending in ``path``'s suffix (anndata picks its writer by it).

    Raises
    ------
    ScingestError
        When the file system refuses the write (full disk, quota, permissions), with what to
        do; nothing is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp{path.suffix}"):
        stale.unlink(missing_ok=True)  # left by a killed earlier attempt at this output
    # keep the real suffix last: anndata picks h5ad vs zarr by it
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except (OSError, RuntimeError) as err:
        tmp_path.unlink(missing_ok=True)
        reason = _write_failure(err)
        if reason is None:
            raise
        raise ScingestError(
            f"writing failed: {reason}. Nothing was left behind; free space (df -h) or "
            "fix the folder's permissions, then rerun",
            path=path,
        ) from err
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EFBIG, errno.EPERM}


def _write_failure(err: BaseException) -> str | None:
    """The OS reason behind a failed write, or None when the error is not the file system's.

    h5py reports a full disk as a RuntimeError whose text carries ``errno = 28``.
    """
    if isinstance(err, OSError) and err.errno in _WRITE_ERRNOS:
        return err.strerror or str(err)
    match = re.search(r"errno = (\d+), error message = '([^']*)'", str(err))
    if match and int(match.group(1)) in _WRITE_ERRNOS:
        return match.group(2)
    return None


def write_text_atomic(path: str | PathLike[str], text: str) -> None:
    """Write a small text file atomically (:func:`atomic_path`).

    Parameters
    ----------
    path
        The file to write.
    text
        Its content, written as UTF-8 with the line endings as given.
    """
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
