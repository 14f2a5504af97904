"""Blocks of complete lines, inflated ahead by a background thread.

A *block* is a buffer of whole lines of text: what one kernel call parses. ISA-L inflates
with the GIL released, and so does the kernel, so with a second CPU the thread inflates
the next block while the kernel parses this one (``bench/run.py reader`` compares the whole
read with ``gzip -dc``).

**Buffer ownership.** :class:`LineBlocks` owns :data:`N_BUFFERS` buffers and hands one to
the caller per iteration. The caller owns it only until it asks for the next block: then
the buffer goes back to the inflating thread, which refills it and may grow it
(``bytearray.extend``, which fails while any numpy view of the buffer is alive). So a
caller copies out what it keeps and drops its views of a buffer before the next
iteration; :func:`scingest.readers._fastdense.kernel.scan` makes its views inside the call.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import IO

#: Bytes inflated per kernel call: large enough that the Python work per block (decoding
#: row names, copying out the nonzeros) is small beside the kernel's, small enough that
#: the buffers stay small beside the matrix (``bench/run.py reader`` prints the peak RSS).
BLOCK_SIZE = 8 << 20

#: One buffer parsed, one being filled, one ready: more never ran faster (the kernel is
#: the slower of the two).
N_BUFFERS = 3


class LineBlocks:
    """Iterate over blocks of complete lines of ``raw`` (after ``rest``, read already).

    Iterating yields ``(buffer, end)``: ``buffer[:end]`` holds whole lines (the file's
    last line gets the LF it may lack). A line split across reads is carried to the front
    of the next buffer; a line longer than a buffer grows it. See the module docstring for
    who owns a buffer when.

    Parameters
    ----------
    raw
        The (decompressing) binary stream.
    rest
        Bytes already read from ``raw`` that come first (what followed the header).
    block_size
        Bytes read from ``raw`` per block.
    threaded
        Inflate in a background thread; False inflates each block when it is asked for.

    Use as a context manager: leaving it stops and joins the thread before the caller
    closes the file it reads. An error in the thread is raised in the iterating one.
    """

    def __init__(
        self, raw: IO[bytes], rest: bytes, block_size: int, *, threaded: bool = True
    ) -> None:
        self._raw, self._block_size = raw, block_size
        self._free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
        self._full: queue.SimpleQueue[tuple[bytearray, int] | BaseException | None] = (
            queue.SimpleQueue()
        )
        self._stop = threading.Event()
        for _ in range(N_BUFFERS):
            self._free.put(bytearray(2 * block_size))
        self._thread: threading.Thread | None = None
        self._steps: Iterator[None] | None = None
        if threaded:
            self._thread = threading.Thread(
                target=self._inflate, args=(rest,), name="scingest-inflate", daemon=True
            )
            self._thread.start()
        else:
            self._steps = self._fill(rest)

    def __enter__(self) -> LineBlocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._free.put(None)  # wakes the thread if it waits for a buffer
        if self._thread is not None:
            self._thread.join()

    def __iter__(self) -> Iterator[tuple[bytearray, int]]:
        held = None
        while True:
            if held is not None:
                self._free.put(held)  # the caller's turn with it is over
            if self._steps is not None and self._full.empty():
                next(self._steps, None)  # inflate the next block here (errors raise here)
            item = self._full.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            held = item[0]
            yield item

    def _inflate(self, tail: bytes) -> None:
        """The thread: fill free buffers with whole lines until the end of the file."""
        try:
            for _ in self._fill(tail):
                pass
        except BaseException as err:  # handed to the parsing thread, which raises it
            self._full.put(err)

    def _fill(self, tail: bytes) -> Iterator[None]:
        """Fill free buffers with whole lines until the end of the file, one per step."""
        block_size = self._block_size
        while not self._stop.is_set():
            text = self._free.get()
            if text is None:
                return
            if len(text) < len(tail) + block_size:
                text.extend(bytes(len(tail) + block_size - len(text)))
            text[: len(tail)] = tail
            stop, end, got = len(tail), 0, 1
            while got and not end:
                if len(text) - stop < block_size:
                    text.extend(bytes(len(text)))
                got = self._raw.readinto(memoryview(text)[stop : stop + block_size])
                stop += got
                end = text.rfind(b"\n", 0, stop) + 1  # complete lines end here
            if not got:  # end of file
                if stop and text[stop - 1] != 10:
                    text[stop] = 10  # csv ends the last line at the end of the file
                    stop += 1
                end = stop
            tail = bytes(text[end:stop])
            if end:
                self._full.put((text, end))
            if not got:
                self._full.put(None)
                return
            yield
