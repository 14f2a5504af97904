"""scingest.formats: one registry entry per format, kept in step with the sheet schema and the
docs; each format gets the reader options it takes, and only those."""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from conftest import REPO
from scingest.formats import EVERY_FORMAT, FORMATS, Fit, Read, read_raw
from scingest.formats._format import one_file
from scingest.options import ReaderOptions

SHEET_SCHEMA = yaml.safe_load(
    (REPO / "scripts" / "scingest" / "schemas" / "samples.schema.yaml").read_text()
)
#: Where the docs may hold a formats table (a table whose first header cell is ``format``).
DOCS = [REPO / "README.md", REPO / "config" / "README.md", *sorted(REPO.glob("docs/**/*.md"))]


def formats_tables(text: str) -> list[set[str]]:
    """The format names in the first column of each formats table of a Markdown text: a
    table whose header's first cell is ``format``."""
    lines = text.splitlines()

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip().strip("|").split("|")]

    tables = []
    for i, line in enumerate(lines[:-1]):
        separator = re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[i + 1].strip())
        if line.startswith("|") and separator and cells(line)[0].strip("`") == "format":
            names: set[str] = set()
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                names.update(re.findall(r"`([^`]+)`", cells(row)[0]))
            tables.append(names)
    return tables


def test_the_registry_and_the_sheet_schema_name_the_same_formats_in_one_order():
    assert SHEET_SCHEMA["properties"]["format"]["enum"] == ["auto", *FORMATS]


def test_every_formats_table_of_the_docs_lists_every_format():
    found = {}
    for doc in DOCS:
        if doc.is_file():
            for i, names in enumerate(formats_tables(doc.read_text())):
                found[f"{doc.relative_to(REPO)} table {i + 1}"] = names
    assert any(k.startswith("config") for k in found), "no formats table in config/README.md"
    for where, names in found.items():
        assert names == set(FORMATS), (where, names ^ set(FORMATS))


def test_every_format_says_what_it_is_and_takes_known_options():
    taken = set(EVERY_FORMAT)
    for name, fmt in FORMATS.items():
        assert fmt.name == name
        assert fmt.description and "\n" not in fmt.description, name
        assert fmt.options <= set(ReaderOptions.names()) - EVERY_FORMAT, name
        taken |= fmt.options
    assert taken == set(ReaderOptions.names()), "a reader option no format takes"


def test_a_reader_gets_the_options_its_format_takes_and_defaults_for_the_rest(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("x")
    given = ReaderOptions(
        orientation="cells_x_genes",
        genome="GRCh38",
        h5ad_layer="counts",
        loom_layers="keep",
        threads=2,
        dtype="int32",
        var_names="gene_ids",
    )
    for name, fmt in FORMATS.items():
        seen = []
        probe = dataclasses.replace(
            fmt, resolve=one_file, read=lambda source, options, seen=seen: seen.append(options)
        )
        FORMATS[name] = probe
        try:
            read_raw(path, name, given)
        except AttributeError:  # the probe returns no Read
            pass
        finally:
            FORMATS[name] = fmt
        (options,) = seen
        for field in ReaderOptions.names():
            expected = getattr(
                given if field in EVERY_FORMAT | fmt.options else ReaderOptions(), field
            )
            assert getattr(options, field) == expected, (name, field)


def test_detection_prefers_a_tools_files_to_a_name(tmp_path):
    """A probe .h5 is an .h5 by its name, a probe file by CellRanger's naming: the latter."""
    probe = tmp_path / "Flex1_raw_probe_bc_matrix.h5"
    probe.write_bytes(b"\x89HDF")
    fits = {name: fmt.detect(probe) for name, fmt in FORMATS.items()}
    assert fits["10x_h5"] == Fit.NAME and fits["10x_probe_h5"] == Fit.FILES
    assert {n for n, f in fits.items() if f} == {"10x_h5", "10x_probe_h5"}


def test_read_raw_returns_what_the_format_read(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text(",AAACCTGAGAAACCAT-1\nMT-ND1,3\nACTB,5\n")
    read = read_raw(path, "csv", ReaderOptions(orientation="genes_x_cells"))
    assert isinstance(read, Read) and read.raw is None and read.layers == {}
    assert read.counts.counts.toarray().tolist() == [[3.0, 5.0]]
    assert list(read.counts.symbols) == ["MT-ND1", "ACTB"]


@pytest.mark.parametrize("name", list(FORMATS))
def test_a_missing_path_fits_no_format(tmp_path, name):
    assert FORMATS[name].detect(tmp_path / "missing" / "x.csv") == Fit.NONE
