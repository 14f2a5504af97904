"""The header line: found after ``#`` comment lines, split as the csv module splits it.

Only the header (and any comment lines above it) goes through Python's csv module; the
lines after it are the kernel's. Anything the simple path might read differently (a
quoted newline, a lone CR, bytes that are not UTF-8) raises
:class:`~scingest.readers._fastdense.fallback.Fallback`.
"""

from __future__ import annotations

import csv
from typing import IO

from .fallback import Fallback


def read_header(raw: IO[bytes], sep: str, block_size: int) -> tuple[list[str], bytes, int]:
    """Read up to and including the header line of a dense matrix.

    Lines starting with ``#`` before the header are skipped as comments, unless their
    fields fit the next line's (then the ``#`` line is the header), as the simple path does.

    Parameters
    ----------
    raw
        The (decompressing) binary stream, at its start.
    sep
        The separator.
    block_size
        Bytes read from ``raw`` at a time.

    Returns
    -------
    The header's fields (stripped), the bytes read after the header line, and the number
    of comment lines skipped.

    Raises
    ------
    Fallback
        For no complete header line, or one the simple path might split differently.
    """
    line, rest = _first_line(raw, block_size)
    comments = 0
    while line.lstrip().startswith(b"#"):
        # a comment unless its fields fit the next line's (a header starting with #)
        next_line, after = _first_line(raw, block_size, rest)
        if _n_fields(line, sep) in (_n_fields(next_line, sep), _n_fields(next_line, sep) - 1):
            break
        line, rest = next_line, after
        comments += 1
    return _split(line, sep), rest, comments


def _first_line(raw: IO[bytes], block_size: int, pending: bytes = b"") -> tuple[bytes, bytes]:
    """Read until the first line (of ``pending`` and then ``raw``) is complete; return it
    (without LF) and the bytes after it."""
    while True:
        block = raw.read(block_size)
        pending += block
        end = pending.find(b"\n")
        if end >= 0:
            break
        if not block:
            raise Fallback("no complete header line")
    if pending.startswith(b"\xef\xbb\xbf"):
        pending, end = pending[3:], end - 3  # UTF-8 byte-order mark
    return pending[:end], pending[end + 1 :]


def _n_fields(line: bytes, sep: str) -> int:
    """The number of fields of a line as the csv module splits it."""
    if line.count(b'"') % 2:
        raise Fallback("a quoted newline before the header")
    text = line.rstrip(b"\r").decode("utf-8", errors="replace")
    return len(next(csv.reader([text], delimiter=sep, quotechar='"'), []))


def _split(line: bytes, sep: str) -> list[str]:
    """The header's fields, stripped, as the csv module splits them."""
    if line.endswith(b"\r"):
        line = line[:-1]
    if b"\r" in line or line.count(b'"') % 2:
        raise Fallback("header with a lone CR or a quoted newline")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise Fallback("header not UTF-8") from None
    fields = next(csv.reader([text], delimiter=sep, quotechar='"'), [])
    header = [h.strip() for h in fields]
    if len(header) <= 1 or not any(header):
        raise Fallback("blank or one-field header")
    return header
