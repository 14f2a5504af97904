"""The sample sheet: reading it, typing its columns from its schema, validating it, and one
sample's metadata and option overrides; checkpoints left by samples it no longer names.

Every sheet, read (:func:`read_sample_sheet`) or discovered
(:func:`scingest.discovery.discover_samples`), passes through :func:`finalize_sheet` and is
checked against ``scingest/schemas/samples.schema.yaml`` (package data: the library reads no
file outside its own package, so it works installed from a wheel). The schema types the
sheet's own columns (``sample``, ``path``, ``format`` and the option overrides, whose names
and roles come from :mod:`scingest.options`); any other column is sample metadata.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .checkpoint import is_reserved_obs
from .errors import ScingestError
from .formats import FORMATS, detect_format, input_files
from .options import QC_OVERRIDE_COLUMNS, READER_OVERRIDE_COLUMNS, RUN_WIDE_READER_KEYS

#: The columns every sheet has (``format`` filled with ``auto`` when absent).
SHEET_COLUMNS = ("sample", "path", "format")
#: Sheet cells read as missing values (besides empty cells).
MISSING_VALUES = frozenset({"", "NA", "N/A", "n/a", "NaN", "nan", "null"})
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
#: The JSON Schema of one sheet row, the one statement of the sheet's rules (shipped in the
#: package; tests and docs name it through this constant).
SHEET_SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "samples.schema.yaml"
SHEET_SCHEMA: dict[str, Any] = yaml.safe_load(SHEET_SCHEMA_PATH.read_text())
#: The sample-name rule, the schema's (a sample name becomes a file name).
SAMPLE_NAME = re.compile(SHEET_SCHEMA["properties"]["sample"]["pattern"])
#: The sheet's own columns, the schema's properties: :data:`SHEET_COLUMNS` and the option
#: override columns (:mod:`scingest.options`); any other column is sample metadata.
OWN_COLUMNS = frozenset(SHEET_SCHEMA["properties"])
_INTEGER = re.compile(r"^-?(0|[1-9]\d*)$")


def is_reserved_column(name: str) -> bool:
    """Whether an obs column name is one the workflow writes itself (QC, barcode, sample).

    The per-sample QC override columns (:data:`scingest.options.QC_OVERRIDE_COLUMNS`) are
    not: a sheet may have them. Reader option columns are: they are options, never obs
    columns.

    Parameters
    ----------
    name
        A sheet column's name.

    Returns
    -------
    True when a metadata column may not take this name.
    """
    if name in QC_OVERRIDE_COLUMNS:
        return False
    if name in READER_OVERRIDE_COLUMNS or name in RUN_WIDE_READER_KEYS:
        return True
    return is_reserved_obs(name)


def read_sample_sheet(path: str | PathLike[str]) -> pd.DataFrame:
    """Read a sample sheet (TSV, or CSV when the name ends in .csv) as strings.

    Empty cells become missing values; metadata columns that hold only integers become
    integer columns (as the filename pattern's groups do).

    Parameters
    ----------
    path
        The config's ``samples``.

    Returns
    -------
    The sheet, validated and typed by :func:`finalize_sheet`, sorted by sample name.

    Raises
    ------
    ScingestError
        When the file is missing or unreadable, lacks the ``sample`` or ``path`` column, or
        a row is invalid (naming its line and column).
    """
    path = Path(path)
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    try:
        sheet = pd.read_csv(
            path, sep=sep, dtype=str, keep_default_na=False, na_values=[""], comment=None
        )
    except FileNotFoundError:
        raise ScingestError("sample sheet not found", path=path) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ScingestError(
            f"cannot read the sample sheet: {err}. Expected a "
            f"{'comma' if sep == ',' else 'tab'}-separated table with a header line "
            "(sample, path, optional format, metadata columns)",
            path=path,
        ) from None
    sheet.columns = [str(c).strip() for c in sheet.columns]
    for column in ("sample", "path"):
        if column not in sheet.columns:
            raise ScingestError(
                f"sample sheet has no column {column!r}; its columns are "
                f"{', '.join(sheet.columns)}. Expected columns sample, path, optional format "
                f"and metadata (separator: {'comma' if sep == ',' else 'tab'})",
                path=path,
            )
    return finalize_sheet(sheet, source=str(path))


def finalize_sheet(sheet: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """Validate a sheet and give metadata columns their types: the one validation path.

    Every sheet, read (:func:`read_sample_sheet`) or discovered (:func:`discover_samples`),
    ends here. Checks first what a JSON Schema cannot see across rows or say as clearly
    (reserved column names, sample names, formats, existing paths, unique names also
    ignoring case, a triplet's or .mtx's files), then types the columns, then checks each
    row against ``samples.schema.yaml`` (:func:`validate_rows`).

    Parameters
    ----------
    sheet
        The sheet as read: ``sample``, ``path``, optional ``format``, metadata and override
        columns, as text.
    source
        The sheet or folder, named in error messages.

    Returns
    -------
    A new sheet: ``format`` resolved (``auto`` detected), the override columns typed as
    the schema types them (numbers as floats, booleans, text), metadata columns typed once
    for the whole sheet (:func:`_coerce_column`), sorted by sample name.

    Raises
    ------
    ScingestError
        For the first problem, naming the line (and column) where there is one.
    """
    sheet = sheet.copy()
    if "format" not in sheet.columns:
        sheet.insert(2, "format", "auto")
    sheet["format"] = sheet["format"].fillna("auto").astype(str).str.strip()
    sheet["sample"] = sheet["sample"].astype(str).str.strip()
    sheet["path"] = sheet["path"].astype(str).str.strip()
    run_wide = [c for c in sheet.columns if c in RUN_WIDE_READER_KEYS]
    if run_wide:
        raise ScingestError(
            f"sheet column(s) {', '.join(map(repr, run_wide))} name reader settings that must "
            "be the same for every sample (the merge joins on them): set them in the config "
            "and remove the column",
            path=source,
        )
    bad_columns = [
        c
        for c in sheet.columns
        if c not in SHEET_COLUMNS and c not in READER_OVERRIDE_COLUMNS and is_reserved_column(c)
    ]
    if bad_columns:
        raise ScingestError(
            f"metadata column(s) {', '.join(map(repr, bad_columns))} clash with columns the "
            "workflow writes (sample, barcode and the QC metrics): rename them",
            path=source,
        )
    for i, row in enumerate(sheet.itertuples(index=False), start=2):
        where = f"{source}, line {i}"
        if not SAMPLE_NAME.match(row.sample):
            other = [c for c in row.sample if not (c.isascii() and (c.isalnum() or c in "._-"))]
            found = f" (found {', '.join(map(repr, dict.fromkeys(other)))})" if other else ""
            raise ScingestError(
                f"sample name {row.sample!r} may contain only ASCII letters (A-Z, a-z), "
                f"digits, '.', '_' and '-'{found}, and may not start with '.' (it becomes a "
                "file name)",
                path=where,
            )
        if row.format != "auto" and row.format not in FORMATS:
            raise ScingestError(
                f"unknown format {row.format!r} for sample {row.sample!r}: expected one of "
                f"auto, {', '.join(FORMATS)}",
                path=where,
            )
        if not Path(row.path).exists():
            raise ScingestError(
                f"path {row.path!r} of sample {row.sample!r} does not exist "
                "(relative paths are taken from the working directory)",
                path=where,
            )
    duplicated = sheet["sample"][sheet["sample"].duplicated(keep=False)]
    if not duplicated.empty:
        name = duplicated.iloc[0]
        paths = sheet.loc[sheet["sample"] == name, "path"].tolist()
        raise ScingestError(
            f"sample name {name!r} is given by more than one input: {', '.join(paths)}. "
            "Each sample needs its own name",
            path=source,
        )
    folded = sheet["sample"].str.casefold()
    if folded.duplicated().any():
        names = sheet.loc[folded == folded[folded.duplicated()].iloc[0], "sample"].tolist()
        raise ScingestError(
            f"sample names {' and '.join(map(repr, names))} differ only by case: they would "
            "name the same checkpoint file on a case-insensitive file system (macOS, Windows). "
            "Rename one of them",
            path=source,
        )
    auto = sheet["format"] == "auto"
    sheet.loc[auto, "format"] = [detect_format(p) for p in sheet.loc[auto, "path"]]
    for i, row in enumerate(sheet.itertuples(index=False), start=2):
        if row.format in ("10x_triplet", "mtx"):  # files beside the path: all present?
            try:
                input_files(row.path, row.format)
            except ScingestError as err:
                raise ScingestError(
                    f"sample {row.sample!r} ({row.format}): {err}", path=f"{source}, line {i}"
                ) from None
    for column in sheet.columns:
        if column in SHEET_COLUMNS:
            continue
        values = _strip_missing(sheet[column])
        kind = SHEET_SCHEMA["properties"].get(column, {}).get("type")  # None: metadata
        if kind == "number":
            sheet[column] = _numeric_column(sheet, values, column, source=source)
        elif kind == "boolean":
            sheet[column] = _boolean_column(sheet, values, column, source=source)
        elif kind == "string":
            sheet[column] = values
        else:
            sheet[column] = _coerce_column(values)
    validate_rows(sheet, source=source)
    return sheet.sort_values("sample", kind="stable").reset_index(drop=True)


def _strip_missing(values: pd.Series) -> pd.Series:
    """Values as stripped text, with empty cells and NA spellings (MISSING_VALUES) as NaN."""
    out = values.astype(object).where(values.notna(), None)
    out = out.map(lambda v: None if v is None else str(v).strip())
    return out.map(lambda v: float("nan") if v is None or v in MISSING_VALUES else v)


def _coerce_column(values: pd.Series) -> pd.Series:
    """Type one metadata column for the whole sheet.

    Integers with no missing value stay integers (``donor=1``); a column whose present
    values are all numbers becomes float (missing values NaN); anything else stays text
    (missing values NaN).
    """
    present = values.dropna().astype(str)
    if present.empty:
        return values
    if len(present) == len(values) and present.str.match(_INTEGER).all():
        return present.astype("int64")
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.notna().all():
        return pd.to_numeric(values, errors="coerce").astype("float64")
    return values


def _numeric_column(sheet: pd.DataFrame, text: pd.Series, column: str, *, source: str) -> pd.Series:
    """A number column of the schema as floats (empty cells missing); a non-number is an
    error."""
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna() & text.notna()
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise ScingestError(
            f"{column} of sample {sheet['sample'].iloc[i]!r} is {text.iloc[i]!r}: "
            "expected a number, or an empty cell for the config value",
            path=f"{source}, line {i + 2}, column {column}",
        )
    return values.astype("float64")


def _boolean_column(sheet: pd.DataFrame, text: pd.Series, column: str, *, source: str) -> pd.Series:
    """A yes/no override column as True/False/None; anything else is an error."""
    out = []
    for i, value in enumerate(text):
        if not isinstance(value, str):
            out.append(None)
            continue
        if value.lower() not in _BOOLEANS:
            raise ScingestError(
                f"{column} of sample {sheet['sample'].iloc[i]!r} is {value!r}: expected true "
                "or false, or an empty cell for the config value",
                path=f"{source}, line {i + 2}, column {column}",
            )
        out.append(_BOOLEANS[value.lower()])
    return pd.Series(out, index=text.index, dtype=object)


def _sample_row(sheet: pd.DataFrame, sample: str) -> pd.Series:
    """One sample's row of the sheet; a clear error for a name it does not hold."""
    row = sheet.loc[sheet["sample"] == sample]
    if row.empty:
        raise ScingestError(f"no sample {sample!r} in the sample sheet")
    return row.iloc[0]


def sample_overrides(sheet: pd.DataFrame, sample: str, columns: Iterable[str]) -> dict[str, Any]:
    """The cells of ``columns`` one sample's sheet row fills (its per-sample settings).

    Parameters
    ----------
    sheet
        The validated sheet.
    sample
        A sample name.
    columns
        The override columns to look at (:data:`scingest.options.QC_OVERRIDE_COLUMNS`,
        :data:`~scingest.options.READER_OVERRIDE_COLUMNS`).

    Returns
    -------
    Column -> value, for the non-empty cells of its row among ``columns``.

    Raises
    ------
    ScingestError
        When the sheet has no such sample.
    """
    record = _sample_row(sheet, sample)
    return {
        column: record[column]
        for column in columns
        if column in sheet.columns and not _is_missing(record[column])
    }


def sample_qc_overrides(sheet: pd.DataFrame, sample: str) -> dict[str, float]:
    """:func:`sample_overrides` of :data:`QC_OVERRIDE_COLUMNS`, as numbers."""
    overrides = sample_overrides(sheet, sample, QC_OVERRIDE_COLUMNS)
    return {column: float(value) for column, value in overrides.items()}


def sample_reader_overrides(sheet: pd.DataFrame, sample: str) -> dict[str, Any]:
    """:func:`sample_overrides` of :data:`READER_OVERRIDE_COLUMNS`."""
    return sample_overrides(sheet, sample, READER_OVERRIDE_COLUMNS)


def validate_rows(
    sheet: pd.DataFrame, schema: Mapping[str, Any] = SHEET_SCHEMA, *, source: str
) -> None:
    """Check each sheet row against the sample sheet's JSON Schema.

    ``snakemake.utils.validate`` names the row index but not the file line or column; this
    does the same jsonschema validation and says ``sheet.tsv, line 3, column sample: ...``.
    :func:`finalize_sheet` calls it on every sheet, read or discovered.

    Parameters
    ----------
    sheet
        The sheet, its rows in the order of the file (row ``i`` is line ``i + 2``).
    schema
        The JSON Schema of one row (default: :data:`SHEET_SCHEMA`).
    source
        The sheet or folder, named in the error.

    Raises
    ------
    ScingestError
        For the first row that breaks the schema, naming its line and column.
    """
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    for i, record in enumerate(sheet.to_dict("records"), start=2):
        record = {k: v for k, v in record.items() if not _is_missing(v)}
        for error in sorted(validator.iter_errors(record), key=lambda e: list(e.path)):
            column = error.path[0] if error.path else None
            col = f", column {column}" if column else ""
            raise ScingestError(f"{error.message}", path=f"{source}, line {i}{col}")


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def sample_metadata(sheet: pd.DataFrame, sample: str) -> dict[str, Any]:
    """The metadata columns of one sample as plain Python values.

    Every metadata column of the sheet is there, so every checkpoint has the same obs
    columns: a missing value is NaN in a numeric column and None in a text one.

    Parameters
    ----------
    sheet
        The validated sheet.
    sample
        A sample name.

    Returns
    -------
    Column -> value, without ``sample``, ``path``, ``format`` and the override columns.

    Raises
    ------
    ScingestError
        When the sheet has no such sample.
    """
    record = _sample_row(sheet, sample).to_dict()
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in OWN_COLUMNS:
            continue
        if _is_missing(value):
            numeric = pd.api.types.is_numeric_dtype(sheet[key])
            out[key] = float("nan") if numeric else None
            continue
        out[key] = value.item() if hasattr(value, "item") else value
    return out


def stale_checkpoints(results: str | PathLike[str], samples: list[str]) -> list[str]:
    """The checkpoints left by samples the sheet no longer names.

    Parameters
    ----------
    results
        The workflow's ``results`` folder.
    samples
        The sheet's sample names.

    Returns
    -------
    Sorted names of the checkpoints in ``results/samples`` not among ``samples`` (jobs'
    hidden temporary files skipped).
    """
    folder = Path(results) / "samples"
    if not folder.is_dir():
        return []
    named = set(samples)
    return sorted(
        p.stem
        for p in folder.glob("*.h5ad")
        if p.stem not in named and not p.name.startswith(".")  # not a job's temporary file
    )


def stale_checkpoints_warning(results: str | PathLike[str], samples: list[str]) -> str | None:
    """What to tell a user whose ``results/samples`` holds checkpoints of samples the sheet
    no longer names (:func:`stale_checkpoints`), or ``None``.

    Parameters
    ----------
    results
        The workflow's ``results`` folder.
    samples
        The sheet's sample names.

    Returns
    -------
    The warning's text, or ``None`` when there is nothing to say.
    """
    stale = stale_checkpoints(results, samples)
    if not stale:
        return None
    more = " ..." if len(stale) > 10 else ""
    return (
        f"results/samples holds {len(stale)} checkpoint(s) of samples the current sheet "
        f"does not name ({', '.join(stale[:10])}{more}); they are not part of this run's "
        "merge or QC, and are left in place (delete results/samples/<name>.h5ad and "
        "results/qc/samples/<name>_qc.png to remove them)"
    )
