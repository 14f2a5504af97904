"""Sample discovery (file names -> sample sheet) and sample sheet loading and validation.

Both routes end in the same table: one row per sample with ``sample``, ``path``, ``format``
and any metadata columns, validated against ``scingest/schemas/samples.schema.yaml`` (package
data: the library reads no file outside its own package, so it works installed from a wheel).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .checkpoint import is_reserved_obs
from .errors import ScingestError
from .files import archive_stem, unpack_archive
from .formats import FORMATS, detect_format, group_companions, input_files, tool_layouts
from .formats.cellranger import multi_samples
from .options import QC_OVERRIDE_COLUMNS, READER_OVERRIDE_COLUMNS, RUN_WIDE_READER_KEYS

logger = logging.getLogger(__name__)

#: Columns of a sheet that are not sample metadata.
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
_INTEGER = re.compile(r"^-?(0|[1-9]\d*)$")

#: The default ``filename_pattern`` (config/config.yaml holds the same text): GEO's
#: supplementary file names, ``GSM<n>_<condition><donor>`` and then one of the names GEO
#: series commonly use for a sample's counts (CellRanger's .h5 files and matrix folders,
#: a prefixed 10x triplet's matrix file, dense text, .h5ad, .h5, .loom). Verbose syntax:
#: spaces are ignored and ``#`` starts a comment.
DEFAULT_PATTERN = r"""(?x)
^(?P<sample_id>GSM\d+)_                                  # GEO's sample accession, then _
(?P<sample>(?P<condition>[A-Za-z]+)[_-]?(?P<donor>\d+))  # Ctrl1 or Ctrl_1: Ctrl, donor 1
(?:                                                      # then one of GEO's common names:
  [._-](?i:(?:sample_)?(?:filtered|raw)_(?:feature|gene|probe)_bc_matri(?:x|ces)(?:_h5)?)
  (?:\.h5)?                                              # CellRanger .h5 or matrix folder
| [._-](?i:(?:(?:filtered|raw)_)?(?:(?:feature|gene)_bc_)?matrix\.mtx)(?:\.gz)?
                                                         # 10x triplet's matrix file
| (?:[._-](?i:(?:raw_|filtered_|umi_|gene_|read_)?counts?(?:_matrix)?
     |umifm_counts|(?:star_)?(?:gene_exon_tagged[._])?dge|digital_expression
     |(?:gene_)?expression(?:_matrix)?|(?:raw_|filtered_)?matrix))?
  \.(?i:csv|tsv|txt)(?:\.gz)?                            # dense text
| (?:[._-](?i:raw|filtered|counts|raw_counts|adata))?
  \.(?i:h5ad|h5|loom)                                    # AnnData, 10x HDF5, loom
)?$                                                      # or nothing: a folder
"""
#: With the default pattern, a tool's run folder that it does not match (``runs/Ctrl1``,
#: a CellRanger multi run's ``per_sample_outs/Pool1``) is named after itself, its name read
#: as the default pattern reads a sample (condition and donor) when it fits.
_FOLDER_NAME = re.compile(r"^(?P<condition>[A-Za-z]+)[_-]?(?P<donor>\d+)$")
#: Nested archives unpacked at most this deep (a series archive holding sample archives).
_ARCHIVE_DEPTH = 3


def is_reserved_column(name: str) -> bool:
    """Whether an obs column name is one the workflow writes itself (QC, barcode, sample).

    The per-sample QC override columns (:data:`QC_OVERRIDE_COLUMNS`) are not: a sheet may
    have them. Reader option columns are: they are options, never obs columns.

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


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a filename pattern and check it has the named groups discovery needs.

    Parameters
    ----------
    pattern
        The config's ``filename_pattern``.

    Returns
    -------
    The compiled pattern.

    Raises
    ------
    ScingestError
        When it is no valid regular expression or has no named group ``sample``.
    """
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise ScingestError(
            f"filename_pattern {pattern!r} is not a valid regular expression: {err}"
        ) from None
    if "sample" not in regex.groupindex:
        raise ScingestError(
            f"filename_pattern {pattern!r} has no named group 'sample': "
            "expected a regex like '^(?P<sample>[A-Za-z0-9]+)_counts\\.csv\\.gz$' whose named "
            "groups become the sample name and metadata columns"
        )
    return regex


def discover_samples(
    input_dir: str | PathLike[str],
    pattern: str = DEFAULT_PATTERN,
    *,
    ignore_unmatched: bool = False,
    unpack_into: str | PathLike[str] | None = None,
) -> pd.DataFrame:
    """Build a sample sheet from the file and folder names in ``input_dir``.

    Parameters
    ----------
    input_dir
        Folder holding one count file (or 10x folder, or tool run folder) per sample; or a
        tar archive of such files (GEO's ``GSE<n>_RAW.tar``). Hidden entries are skipped.
    pattern
        Regular expression matched against each entry's name (not its path). It must have a
        named group ``sample``; every named group becomes a metadata column. Files that
        belong to another entry (a prefixed 10x triplet's barcodes and features files, a
        Matrix Market file's ``_rows``/``_cols``) are grouped with it and not matched: the
        pattern sees only the matrix file's name, which is the sample's ``path``. With
        :data:`DEFAULT_PATTERN`, a tool's run folder it does not match (CellRanger count,
        STARsolo, kb, alevin-fry, a 10x matrix folder, a CellRanger multi run's
        ``per_sample_outs/<name>``) is a sample named after its folder.
    ignore_unmatched
        Skip entries that match no pattern (logged) instead of raising.
    unpack_into
        Folder where archives are unpacked (:func:`scingest.files.unpack_archive`; the
        workflow's ``results/input``). An archive (``.tar``, ``.tar.gz``, ``.tgz``) whose
        name without the suffix matches ``pattern`` is one sample, the folder it unpacks
        to; any other archive is a series, its files are entries (GEO's
        ``GSE<n>_RAW.tar``), unless they are already unpacked beside it. None: an archive
        is an error.

    Returns
    -------
    The sheet: ``sample``, ``path``, ``format`` and one column per other named group,
    sorted by sample name, validated and typed by :func:`finalize_sheet`. When two
    entries give one sample and they are a raw matrix and its filtered sibling (names
    equal but for ``raw``/``filtered``: CellRanger's ``raw_feature_bc_matrix.h5`` beside
    ``filtered_feature_bc_matrix.h5``), the filtered one is kept (logged).

    Raises
    ------
    ScingestError
        When the folder is missing, an entry matches no pattern or belongs to no matrix
        (unless ``ignore_unmatched``), nothing matches, an archive may not be unpacked, or
        the sheet is invalid.
    """
    regex = compile_pattern(pattern)
    label = pattern_label(pattern)
    given = Path(input_dir)
    runs: set[Path] = set()  # the samples of one tool run given as input_dir
    if given.is_file() and archive_stem(given) is not None:
        entries = _expand_archives([given], regex, unpack_into=unpack_into, beside=None)
    elif not given.is_dir():
        raise ScingestError(
            "input_dir does not exist or is not a folder: expected a folder of per-sample "
            "count files, or a tar archive of them (GEO's GSE<n>_RAW.tar)",
            path=given,
        )
    elif (layout := layout_entries(given)) is not None:
        entries, runs = layout, set(layout)
    else:
        children = sorted(p for p in given.iterdir() if not p.name.startswith("."))
        run = None if any(regex.search(c.name) for c in children) else one_run(given)
        if run is not None:
            entries, runs = [run], {run}
        else:
            entries = _expand_archives(children, regex, unpack_into=unpack_into, beside=given)
    companions, orphans = group_companions(entries)
    if orphans and not ignore_unmatched:
        shown = "; ".join(f"{p.name} (expected {want} beside it)" for p, want in orphans.items())
        raise ScingestError(
            f"file(s) that belong to no matrix: {shown}. Restore the missing matrix, move "
            "them away, or set ignore_unmatched: true",
            path=given,
        )
    if orphans:
        logger.warning("ignoring %d files of %s that belong to no matrix", len(orphans), given)
    entries = [p for p in entries if p not in companions and p not in orphans]
    rows: list[dict[str, Any]] = []
    unmatched: list[str] = []
    for entry in entries:
        match = regex.search(entry.name)
        if match is None:
            if pattern == DEFAULT_PATTERN and (entry in runs or _is_run_folder(entry)):
                folder_match = _FOLDER_NAME.match(entry.name)
                groups = folder_match.groupdict() if folder_match else {}
                rows.append({"sample": entry.name, "path": str(entry), **groups})
                continue
            unmatched.append(entry.name)
            continue
        groups = {k: v for k, v in match.groupdict().items() if v is not None}
        rows.append({"sample": groups.pop("sample"), "path": str(entry), **groups})
    if unmatched and not ignore_unmatched:
        shown = ", ".join(unmatched[:20]) + (" ..." if len(unmatched) > 20 else "")
        raise ScingestError(
            f"{len(unmatched)} entries match no {label}: {shown}. "
            "Fix the pattern, move the files away, or set ignore_unmatched: true",
            path=given,
        )
    if unmatched:
        logger.warning("ignoring %d entries of %s that match no pattern", len(unmatched), given)
    if not rows:
        raise ScingestError(
            f"no file or folder matches {label}: "
            "expected per-sample count files such as GSM5320459_Ctrl1_count_matrix.csv.gz",
            path=given,
        )
    rows = _prefer_filtered(rows)
    sheet = pd.DataFrame(rows)
    sheet.insert(2, "format", [detect_format(p) for p in sheet["path"]])
    return finalize_sheet(sheet, source=f"{given} ({label})")


def pattern_label(pattern: str) -> str:
    """How messages name a filename pattern: the default one by what it reads (its text is
    long), another by its text.

    Parameters
    ----------
    pattern
        The config's ``filename_pattern``.

    Returns
    -------
    ``filename_pattern (the default: ...)`` or ``filename_pattern '<regex>'``.
    """
    if pattern == DEFAULT_PATTERN:
        return (
            "filename_pattern (the default: GEO names GSM<n>_<condition><donor> then "
            "_matrix.mtx.gz, _filtered_feature_bc_matrix.h5, _counts.csv.gz, .h5ad, ...; "
            "config/README.md lists them)"
        )
    return f"filename_pattern {pattern!r}"


def _expand_archives(
    paths: list[Path],
    regex: re.Pattern[str],
    *,
    unpack_into: str | PathLike[str] | None,
    beside: Path | None,
    depth: int = 0,
) -> list[Path]:
    """``paths`` with every archive among them unpacked: a sample archive (its name without
    the suffix matches ``regex``) becomes the folder it unpacks to, a series archive the
    entries it holds (its archives unpacked in turn), or nothing when its files are already
    in ``beside``."""
    out: list[Path] = []
    for path in paths:
        stem = archive_stem(path) if path.is_file() else None
        if stem is None:
            out.append(path)
            continue
        if unpack_into is None:
            raise ScingestError(
                "an archive: give discover_samples unpack_into (the folder to unpack it in; "
                "the workflow unpacks into results/input), or unpack it yourself",
                path=path,
            )
        if depth >= _ARCHIVE_DEPTH:
            raise ScingestError(
                f"an archive nested {depth} deep in other archives: unpack it yourself",
                path=path,
            )
        if regex.search(stem):  # one sample's files, e.g. a 10x folder as .tar.gz
            folder = unpack_archive(path, unpack_into)
            assert folder is not None
            out.append(folder)
            continue
        folder = unpack_archive(path, unpack_into, beside=beside)
        if folder is None:
            continue  # its files are among the entries already
        inner = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        out.extend(
            _expand_archives(inner, regex, unpack_into=unpack_into, beside=None, depth=depth + 1)
        )
    return out


def _is_run_folder(entry: Path) -> bool:
    """Whether ``entry`` is a folder holding one sample as a counting tool wrote it."""
    if not entry.is_dir():
        return False
    try:
        return FORMATS[detect_format(entry)].run_folder
    except ScingestError:
        return False


_RAW_OR_FILTERED = re.compile(r"(?i)(?<![A-Za-z0-9])(raw|filtered)(?![A-Za-z0-9])")


def _raw_or_filtered(path: str) -> str | None:
    """``raw`` or ``filtered`` when a file name holds that word (and not the other)."""
    words = {m.lower() for m in _RAW_OR_FILTERED.findall(Path(path).name)}
    return words.pop() if len(words) == 1 else None


def _prefer_filtered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with a raw matrix left out where its filtered sibling gives the same sample.

    Two or more entries of one sample whose names hold ``raw`` or ``filtered`` as a word
    (``GSM1_Ctrl1_raw_feature_bc_matrix.h5``, ``GSM1_Ctrl1_filtered_feature_bc_matrix.h5``),
    exactly one of them ``filtered``, keep that one: it holds the cells the tool called.
    Any other repetition is left for :func:`finalize_sheet` to refuse.
    """
    by_sample: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_sample.setdefault(row["sample"], []).append(row)
    out = []
    for sample, group in by_sample.items():
        if len(group) > 1:
            filtered = [r for r in group if _raw_or_filtered(r["path"]) == "filtered"]
            raw = [r for r in group if _raw_or_filtered(r["path"]) == "raw"]
            if len(filtered) == 1 and len(filtered) + len(raw) == len(group):
                for r in raw:
                    logger.info(
                        "sample %s: reading %s, not its raw sibling %s (all barcodes, mostly "
                        "empty droplets); give a sample sheet to read the raw one",
                        sample,
                        Path(filtered[0]["path"]).name,
                        Path(r["path"]).name,
                    )
                group = filtered
        out.extend(group)
    return out


def one_run(folder: Path) -> Path | None:
    """The run folder when ``folder`` is one sample's tool run, or None.

    A CellRanger/Space Ranger ``count`` run, a STAR run with ``Solo.out``, a ``kb count``
    or alevin-fry output given as ``input_dir`` is one sample, named after its folder (the
    run folder holding it when ``folder`` is ``outs`` or ``Solo.out``). Discovery asks only
    when no entry of ``folder`` matches the pattern, so a folder of per-sample files that
    happens to hold a tool's files too is never taken for one run.

    Parameters
    ----------
    folder
        The config's ``input_dir``.

    Returns
    -------
    The folder to read as the one sample; None when ``folder`` is not one run.
    """
    layouts = tool_layouts(folder)
    if len(layouts) != 1 or not FORMATS[layouts[0]].run_folder:
        return None
    run = folder
    if folder.name in ("outs", "Solo.out"):  # the run folder holding it
        run = folder.parent if folder.parent.name else folder.resolve().parent
    logger.info("%s: one %s run, sample %s", folder, layouts[0], run.name)
    return run


def layout_entries(folder: Path) -> list[Path] | None:
    """The entries of a folder that is one tool run holding several samples, or None.

    A CellRanger ``multi`` run (its ``outs/`` or the run folder) holds one sample per
    ``outs/per_sample_outs/<name>``: those folders are the entries, and the pattern is
    matched against ``<name>``.

    Parameters
    ----------
    folder
        The config's ``input_dir``.

    Returns
    -------
    The per-sample folders of a multi run; None when ``folder`` is not one.

    Raises
    ------
    ScingestError
        When the run's ``per_sample_outs/`` is empty.
    """
    samples = multi_samples(folder)
    if samples is None:
        return None
    if not samples:
        raise ScingestError(
            "a CellRanger multi run whose per_sample_outs/ is empty: expected one folder "
            "per sample there",
            path=folder,
        )
    logger.info("%s: CellRanger multi run with samples %s", folder, ", ".join(samples))
    return list(samples.values())


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
    A new sheet: ``format`` resolved (``auto`` detected), QC override columns as floats,
    ``allow_non_integer`` as booleans, metadata columns typed once for the whole sheet,
    sorted by sample name.

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
        if column in QC_OVERRIDE_COLUMNS:
            sheet[column] = _numeric_column(sheet, values, column, source=source)
        elif column == "allow_non_integer":
            sheet[column] = _boolean_column(sheet, values, column, source=source)
        elif column in READER_OVERRIDE_COLUMNS:
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
    """A QC override column as floats (empty cells missing); a non-number is an error."""
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
        The override columns to look at (:data:`QC_OVERRIDE_COLUMNS`,
        :data:`READER_OVERRIDE_COLUMNS`).

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
        if key in SHEET_COLUMNS or key in QC_OVERRIDE_COLUMNS or key in READER_OVERRIDE_COLUMNS:
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
