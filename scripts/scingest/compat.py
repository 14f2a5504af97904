"""What differs between the two scverse generations scingest supports, in one place.

anndata 0.12 / scanpy 1.11 (Python 3.11+) and anndata 0.13 / scanpy 1.12 (Python 3.12+)
write the same files through these helpers:

- anndata 0.13 lists ``X`` among the layers as ``layers[None]``; code that iterates or
  writes layers takes :func:`named_layers`, so no layer called ``"None"`` reaches a file.
- Strings are written in the legacy encoding (``string-array``, categoricals of it), which
  every reader opens: R's anndataR, Seurat's converters and anndata < 0.11 read pandas'
  nullable strings (``nullable-string-array``) as nothing. anndata 0.12 refuses to write a
  pandas ``string`` column unless nullable strings are allowed; 0.13 decides from
  ``pd.options.future.infer_string`` (so pandas 3 would switch it). :func:`legacy_strings`
  sets the choice explicitly for every write; :func:`plain_strings` turns ``string``
  columns (under pandas 3 every column of text, its default ``str`` dtype) into object ones.
  No pandas option is set or read: pandas 3.1 deprecates both that anndata reads.
- scipy >= 1.15 asks :func:`scipy.io.mmread` whether to return a sparse matrix or array
  (1.18 warns without it); 1.13 and 1.14 have no such argument: :func:`mmread`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike
from typing import Any

import anndata as ad
import pandas as pd
import scipy.io

#: The anndata settings of every scingest write (0.12.0 knows no other we would set).
WRITE_SETTINGS = {"allow_write_nullable_strings": False}


def named_layers(adata: ad.AnnData) -> dict[str, Any]:
    """The layers of ``adata`` by name, without anndata 0.13's ``layers[None]`` (``X``).

    Parameters
    ----------
    adata
        Any AnnData.

    Returns
    -------
    Layer name -> matrix.
    """
    return {k: v for k, v in adata.layers.items() if k is not None}


@contextmanager
def legacy_strings() -> Iterator[None]:
    """Write strings in the legacy encoding within (anndata's writers, ``write_elem``).

    Yields
    ------
    Nothing; anndata's settings are restored on leaving.
    """
    with ad.settings.override(**WRITE_SETTINGS):
        yield


def plain_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with pandas ``string`` columns and index as object (legacy) strings.

    A missing value in such a column makes it categorical, which stores missing values
    in a form every reader knows (category code -1).

    Parameters
    ----------
    frame
        An obs or var table.

    Returns
    -------
    ``frame`` itself when it has no ``string`` column or index, else a changed copy.
    """
    out = frame
    if isinstance(frame.index.dtype, pd.StringDtype):
        out = out.copy()
        # dtype stated: pandas 3 would infer ``str`` again from an object array of text
        out.index = pd.Index(
            frame.index.to_numpy(dtype=object), dtype=object, name=frame.index.name
        )
    for column in frame.columns:
        values = frame[column]
        if not isinstance(values.dtype, pd.StringDtype):
            continue
        if out is frame:
            out = frame.copy()
        if values.isna().any():
            out[column] = pd.Categorical(values.astype(object))
        else:
            out[column] = pd.Series(values.to_numpy(dtype=object), index=out.index, dtype=object)
    return out


_MMREAD_TAKES_SPMATRIX = "spmatrix" in inspect.signature(scipy.io.mmread).parameters


def mmread(path: str | PathLike[str]) -> Any:
    """:func:`scipy.io.mmread`, asking for a sparse array where scipy lets one ask.

    Parameters
    ----------
    path
        A Matrix Market file (plain or gzipped).

    Returns
    -------
    The matrix: a sparse array (scipy >= 1.15), else what scipy returns.
    """
    if _MMREAD_TAKES_SPMATRIX:
        return scipy.io.mmread(str(path), spmatrix=False)
    return scipy.io.mmread(str(path))
