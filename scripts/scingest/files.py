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
import logging
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

logger = logging.getLogger(__name__)


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


def open_hdf5(path: str | PathLike[str], expected: str):
    """Open an HDF5 file for reading, or say in one error which file and what it should be.

    Parameters
    ----------
    path
        The file.
    expected
        What it should be, for the error (``"a loom file (truncated download?)"``).

    Returns
    -------
    The open ``h5py.File`` (a context manager).

    Raises
    ------
    ScingestError
        When h5py cannot open it, naming the file, h5py's reason and what was expected.
    """
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as err:
        message = f"cannot open as HDF5 ({err}): expected {expected}"
        raise ScingestError(message, path=path) from None


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


#: Names of the archives discovery unpacks: GEO ships a series' supplementary files as one
#: ``GSE<n>_RAW.tar``; a gzipped tar is read the same way.
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
_STAMP_VERSION = 1


def archive_stem(path: str | PathLike[str]) -> str | None:
    """The name of an archive without its suffix (``GSE123_RAW`` for ``GSE123_RAW.tar``).

    Parameters
    ----------
    path
        A file name or path.

    Returns
    -------
    The name without :data:`ARCHIVE_SUFFIXES`' suffix; None when it has none of them.
    """
    name = Path(path).name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def _archive_members(archive: Path) -> list:
    """The members of a tar archive, every one checked to be a plain file or folder whose
    name stays inside the folder it is unpacked into."""
    import tarfile
    import zlib

    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise ScingestError(
            f"cannot read it as a tar archive ({err or type(err).__name__}): a truncated "
            "download? Expected a tar file such as GEO's GSE<n>_RAW.tar; re-download it and "
            "check its size or md5",
            path=archive,
        ) from None
    for member in members:
        problem = _unsafe_member(member)
        if problem:
            raise ScingestError(
                f"member {member.name!r} {problem}: refused, nothing was unpacked. A GEO "
                "series archive holds only plain files; unpack this one yourself if you "
                "trust it, and point input_dir at the result",
                path=archive,
            )
    return members


def _unsafe_member(member) -> str | None:
    """Why a tar member may not be unpacked, or None when it is a plain file or folder
    whose name stays inside the folder it is unpacked into."""
    name = member.name
    if member.issym():
        return f"is a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"is a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "is a device file"
    if member.isfifo():
        return "is a named pipe (FIFO)"
    if not (member.isfile() or member.isdir()):
        return f"is not a plain file or folder (tar type {member.type!r})"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "has an absolute path"
    parts = re.split(r"[/\\]", name)
    if ".." in parts:
        return "has '..' in its path (it would be written outside the folder it is unpacked into)"
    if "\0" in name:
        return "has a NUL character in its name"
    return None


def _read_stamp(stamp: Path) -> dict | None:
    import json

    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == _STAMP_VERSION else None


def _files_beside(folder: Path, files: dict[str, int]) -> bool:
    """Whether every file of ``files`` (name -> size) is in ``folder`` with that size."""
    for name, size in files.items():
        try:
            if (folder / name).stat().st_size != size:
                return False
        except OSError:
            return False
    return bool(files)


def _refuse_partly_beside(archive: Path, folder: Path, files: dict[str, int]) -> None:
    """Refuse an archive some of whose files, not all, are in ``folder`` as it holds them:
    reading both would give each of those samples twice, reading either alone is a guess."""
    there = [name for name in files if (folder / name).exists()]
    if not there:
        return
    differ = [n for n in there if (folder / n).stat().st_size != files[n]]
    missing = [n for n in files if n not in there]
    what = (
        f"{len(differ)} of them differ in size from the archive's ({', '.join(differ[:5])})"
        if differ
        else f"{len(missing)} are missing there ({', '.join(missing[:5])})"
    )
    raise ScingestError(
        f"{len(there)} of its {len(files)} files are unpacked beside it, and {what}: move "
        "the archive away to read only the files beside it, or remove them to read the "
        "archive",
        path=archive,
    )


def unpack_archive(
    archive: str | PathLike[str],
    into: str | PathLike[str],
    *,
    beside: str | PathLike[str] | None = None,
) -> Path | None:
    """Unpack a tar archive (GEO's ``GSE<n>_RAW.tar``) into ``into/<name>/``, once.

    Every member is checked before anything is written: absolute paths, ``..``, symbolic
    and hard links, devices and FIFOs are refused, naming the member, and nothing is
    unpacked. The archive is unpacked into a hidden temporary folder beside the result and
    renamed into place when complete, so a killed run never leaves a half-unpacked folder
    that looks finished. A stamp file (``into/.<name>.unpacked.json``: the archive's path,
    size, modification time and sha256) makes later calls return at once while the archive
    is unchanged (an archive touched but not changed, found by its sha256, is not unpacked
    again). When a changed archive is unpacked again, a file whose bytes did not change
    keeps its earlier modification time, so Snakemake reruns only the samples whose files
    changed; a changed file gets the time of unpacking, so its sample does rerun.

    Parameters
    ----------
    archive
        The tar file (gzipped or not).
    into
        The folder the archive's folder is made in (the workflow's ``results/input``).
    beside
        A folder that may already hold the archive's files, unpacked there by the user: when
        every file of the archive is there with its size, nothing is unpacked.

    Returns
    -------
    The folder holding the archive's files; None when they are already in ``beside``.

    Raises
    ------
    ScingestError
        When the archive is empty, unreadable or holds a member that may not be unpacked, or
        the file system refuses the write (full disk, permissions): nothing is left behind.
    """
    import json
    import shutil
    import tarfile
    import zlib

    archive = Path(archive)
    into = Path(into)
    stem = archive_stem(archive) or archive.name
    dest = into / stem
    stamp_path = into / f".{stem}.unpacked.json"
    st = archive.stat()
    if st.st_size == 0:
        raise empty_file_error(archive)
    source = str(archive.resolve())
    stamp = _read_stamp(stamp_path)
    if stamp is not None and stamp.get("archive") == source and stamp.get("size") == st.st_size:
        same = stamp.get("mtime_ns") == st.st_mtime_ns
        if not same and stamp.get("sha256") == sha256sum(archive):
            same = True  # touched, not changed: remember the new time
            stamp["mtime_ns"] = st.st_mtime_ns
            write_text_atomic(stamp_path, json.dumps(stamp, indent=1))
        if same:
            files = stamp.get("files", {})
            if stamp.get("beside") and beside is not None and _files_beside(Path(beside), files):
                return None
            if not stamp.get("beside") and _files_beside(dest, files):
                return dest  # still all there (else unpacked again)
    members = _archive_members(archive)
    files = {m.name: m.size for m in members if m.isfile()}
    record = {
        "version": _STAMP_VERSION,
        "archive": source,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": sha256sum(archive),
        "files": files,
    }
    if beside is not None and _files_beside(Path(beside), files):
        into.mkdir(parents=True, exist_ok=True)
        write_text_atomic(stamp_path, json.dumps({**record, "beside": True}, indent=1))
        logger.info("%s: its files are already unpacked beside it; reading those", archive)
        return None
    if beside is not None:
        _refuse_partly_beside(archive, Path(beside), files)
    into.mkdir(parents=True, exist_ok=True)
    for stale in into.glob(f".{glob.escape(stem)}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed earlier attempt
    tmp = Path(tempfile.mkdtemp(prefix=f".{stem}.", suffix=".tmp", dir=into))
    try:
        with tarfile.open(archive, "r:*") as tar:
            # the members were checked; the data filter (Python 3.11.4+) checks again
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, members=tar.getmembers(), **extra)
        _keep_unchanged_times(tmp, dest, files)
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{stem}.", suffix=".old.tmp", dir=into))
            os.replace(dest, old / stem)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
        write_text_atomic(stamp_path, json.dumps({**record, "beside": False}, indent=1))
    except (OSError, tarfile.TarError, EOFError, zlib.error) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = _write_failure(err)
        if reason is not None:
            raise ScingestError(
                f"unpacking into {into} failed: {reason}. Nothing was left behind; free "
                "space (df -h) or fix the folder's permissions, then rerun",
                path=archive,
            ) from err
        raise ScingestError(
            f"cannot unpack it ({err or type(err).__name__}): a truncated download? "
            "Re-download it and check its size or md5",
            path=archive,
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("%s: unpacked %d files into %s", archive, len(files), dest)
    return dest


def _keep_unchanged_times(new: Path, old: Path, files: dict[str, int]) -> None:
    """Give each file unpacked in ``new`` whose bytes equal its counterpart's in ``old``
    that file's modification time, and each changed file the time now (Snakemake reruns a
    job whose input is newer than its output)."""
    if not old.is_dir():
        return  # first unpacking: the archive's own times, as tar keeps them
    for name, size in files.items():
        fresh, earlier = new / name, old / name
        try:
            previous = earlier.stat()
        except OSError:
            continue  # a file new in this archive: no output of it exists yet
        if previous.st_size == size and sha256sum(earlier) == sha256sum(fresh):
            os.utime(fresh, ns=(previous.st_atime_ns, previous.st_mtime_ns))
        else:
            os.utime(fresh)
