"""Logging, error reporting and process start and end for the workflow's script adapters."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import time
from collections.abc import Iterator
from os import PathLike
from typing import NoReturn

from .errors import ScingestError

#: The line format of a job's log.
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def workflow_step(log: str | PathLike[str] | None) -> Iterator[logging.Logger]:
    """Log to the job's log file (and stderr); end a job on bad input with one clear line.

    A :class:`~scingest.ScingestError` is logged and the process exits with status 1 and
    the message on stderr, without a traceback: the message is the whole story. Anything
    else is a bug: logged with its traceback too (so the job's log ends with the error,
    not only Snakemake's output), then raised on.

    Parameters
    ----------
    log
        The job's log file (``snakemake.log[0]``), rewritten; None logs to stderr only.

    Yields
    ------
    The ``scingest`` logger.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log:
        handlers.append(logging.FileHandler(log, mode="w", encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format=FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)
    logger = logging.getLogger("scingest")
    try:
        yield logger
    except ScingestError as err:
        logger.error("%s", err)
        logging.shutdown()
        sys.exit(1)
    except Exception as err:
        logger.exception(
            "unexpected %s: %s (a scingest bug: please report it with this log)",
            type(err).__name__,
            err,
        )
        raise


@contextlib.contextmanager
def frozen_imports() -> Iterator[None]:
    """Import a job's modules (the ``import`` statements in the block) with Python's cyclic
    garbage collector paused, then keep what they created out of its later passes.

    Why: importing anndata, numba and matplotlib creates some hundred thousand objects that
    live as long as the process, and the collector's full passes over them while they were
    being created were a tenth of an ingest job (bench/README, "Issue 13, job start-up,
    second pass"); frozen (:func:`gc.freeze`), later passes skip them. The job's own work
    runs with the collector on as usual. Logs how long the imports took and how many
    objects were frozen.
    """
    start = time.perf_counter()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
    logging.getLogger("scingest").info(
        "imports: %.2f s (%d objects kept out of garbage collection)",
        time.perf_counter() - start,
        gc.get_freeze_count(),
    )


def end_job() -> NoReturn:
    """End a job's process once its outputs are written, closed and renamed, without the
    interpreter's shutdown.

    Why: at exit Python tears down every module and object the job imported (anndata,
    scanpy, numba, matplotlib), which took about as long as drawing a sample's QC figure
    in every job, on the critical path of every run (``bench/run.py demo``). Nothing is
    left to do by then: files are closed by their ``with`` blocks, logs are flushed here.
    Called as an adapter script's last line, so that an error still ends the usual way.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
