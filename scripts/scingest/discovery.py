"""Sample discovery: the samples in a folder, a tar archive of them, or a tool's run folder,
as a sample sheet.

Entries are matched by name against the filename pattern (its named groups become the
metadata columns), grouped with the files that belong to them (a 10x triplet's, a
``.mtx``'s name files), their formats detected (:mod:`scingest.formats`); the table then
passes through :func:`scingest.sheet.finalize_sheet`, as a sheet given by the user does.
"""

from __future__ import annotations

import logging
import re
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ScingestError
from .files import archive_stem, unpack_archive
from .formats import FORMATS, detect_format, group_companions, tool_layouts
from .formats.cellranger import multi_samples
from .sheet import finalize_sheet

logger = logging.getLogger(__name__)

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
