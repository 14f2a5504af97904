"""Input formats: their names and detection from a path."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from .errors import ScingestError

#: Every format name a sheet's ``format`` column may hold (besides ``auto``), with what it is.
FORMATS: dict[str, str] = {
    "csv": "dense comma-separated text matrix (.csv, .csv.gz), GEO style",
    "tsv": "dense tab-separated text matrix (.tsv, .txt, optionally .gz)",
}

_DENSE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".tab": "tsv"}


def detect_format(path: str | PathLike[str]) -> str:
    """Guess a format name from a path; raise when the guess would be unsure."""
    path = Path(path)
    name = path.name.lower()
    stem = name[: -len(".gz")] if name.endswith(".gz") else name
    suffix = Path(stem).suffix
    if path.is_file() and suffix in _DENSE_SUFFIXES:
        return _DENSE_SUFFIXES[suffix]
    considered = ", ".join(f"{k} ({v})" for k, v in FORMATS.items())
    raise ScingestError(
        f"cannot tell the format from the name: considered {considered}. "
        "Set the sheet's format column",
        path=path,
    )
