"""The dense text reader through read_counts: every variant real exports have, every error."""

from __future__ import annotations

import gzip
import logging

import numpy as np
import pytest
import scipy.sparse as sp

from scingest.errors import ScingestError
from scingest.readers import read_counts
from scingest.synthetic import synthetic_counts, write_dense

GENES, CELLS, COUNTS = synthetic_counts(30, 12, seed=7, median_counts=80)


def check(adata, genes=GENES, cells=CELLS, counts=COUNTS):
    assert sp.issparse(adata.X) and adata.X.format == "csr"
    assert adata.X.dtype == np.float32
    assert adata.obs_names.tolist() == list(cells)
    assert adata.var_names.tolist() == list(genes)
    np.testing.assert_array_equal(adata.X.toarray(), counts.toarray())


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"quote_names": True},
        {"first_cell": "gene"},
        {"line_end": "\r\n"},
        {"float_values": True},
        {"sep": "\t"},
        {"orientation": "cells_x_genes"},
    ],
    ids=["plain", "quoted", "named-first-cell", "crlf", "floats", "tsv", "cells-x-genes"],
)
def test_variants_read_the_same(tmp_path, variant, gz):
    ext = ".tsv" if variant.get("sep") == "\t" else ".csv"
    path = write_dense(tmp_path / f"m{ext}{'.gz' if gz else ''}", GENES, CELLS, COUNTS, **variant)
    check(read_counts(path, orientation=variant.get("orientation", "genes_x_cells")))


def test_header_one_field_short_and_bom(tmp_path):
    dense = COUNTS.toarray().T
    lines = [",".join(CELLS)] + [
        ",".join([g, *map(str, row)]) for g, row in zip(GENES, dense, strict=True)
    ]
    path = tmp_path / "r.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join(lines) + "\n").encode())
    check(read_counts(path))


def test_int32_dtype(tmp_path):
    path = write_dense(tmp_path / "m.csv", GENES, CELLS, COUNTS)
    adata = read_counts(path, dtype="int32")
    assert adata.X.dtype == np.int32
    np.testing.assert_array_equal(adata.X.toarray(), COUNTS.toarray())


def test_duplicate_genes_stay_distinct_with_a_warning(tmp_path, caplog):
    path = tmp_path / "d.csv"
    path.write_text(",A-1,B-1\nGAPDH,1,2\nGAPDH,3,4\nACTB,0,1\n")
    with caplog.at_level(logging.WARNING):
        adata = read_counts(path)
    assert adata.var_names.tolist() == ["GAPDH", "GAPDH-1", "ACTB"]
    np.testing.assert_array_equal(adata.X.toarray(), [[1, 3, 0], [2, 4, 1]])
    assert "1 gene name(s) occur more than once" in caplog.text


def test_non_integer_allowed_with_warning(tmp_path, caplog):
    path = tmp_path / "n.csv"
    path.write_text(",A-1,B-1\nGAPDH,1.5,2\n")
    with caplog.at_level(logging.WARNING):
        adata = read_counts(path, allow_non_integer=True)
    assert adata.X.toarray().tolist() == [[1.5], [2.0]]
    assert "1 non-integer value(s) accepted" in caplog.text
    with pytest.raises(ScingestError, match="needs dtype float32"):
        read_counts(path, allow_non_integer=True, dtype="int32")


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (",A-1,B-1\nG1,1,2\nG2,3,2.5\n", "line 3, column 3", "'2.5' is not an integer count"),
        (",A-1,B-1\nG1,1,-2\n", "line 2, column 3", "'-2' is not a count"),
        (",A-1,B-1\nG1,nan,2\n", "line 2, column 2", "'nan' is not a count"),
        (",A-1,B-1\nG1,1,inf\n", "line 2, column 3", "'inf' is not a count"),
        (",A-1,B-1\nG1,1,abc\n", "line 2, column 3", "'abc' is not a number"),
        (",A-1,B-1\nG1,1,\n", "line 2, column 3", "'' is not a number"),
        (",A-1,B-1\nG1,1,2\nG2,1\n", "line 3", "expected 3 fields like the lines before, found 2"),
        (",A-1,B-1,C-1,D-1\nG1,1,2\n", "line 2", "the header has 5 fields but this line has 3"),
        ("", "", "the file is empty"),
        (",A-1,B-1\n", "", "header but no data lines"),
        ("\tA-1\tB-1\nG1\t1\t2\n", "line 1", "looks tab-separated; set format: tsv"),
        (",A-1,A-1\nGAPDH,1,2\n", "", "1 barcode(s) occur more than once: A-1"),
    ],
    ids=[
        "non-integer",
        "negative",
        "nan",
        "inf",
        "non-numeric",
        "empty-field",
        "ragged",
        "header-too-long",
        "empty",
        "header-only",
        "wrong-separator",
        "duplicate-barcodes",
    ],
)
def test_bad_values_name_file_line_column(tmp_path, text, where, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ScingestError) as err:
        read_counts(path)
    assert str(err.value).startswith(f"{path}{', ' + where if where else ''}: ")
    assert message in str(err.value)


def test_truncated_and_fake_gzip(tmp_path):
    good = write_dense(tmp_path / "g.csv.gz", GENES, CELLS, COUNTS)
    truncated = tmp_path / "t.csv.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ScingestError, match="gzip stream ends early") as err:
        read_counts(truncated)
    assert str(truncated) in str(err.value)
    fake = tmp_path / "f.csv.gz"
    fake.write_text(",A-1\nG1,1\n")
    with pytest.raises(ScingestError, match="not gzip-compressed"):
        read_counts(fake)


def test_not_utf8(tmp_path):
    path = tmp_path / "b.csv.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b",A-1\n\xff\xfeG1,1\n")
    with pytest.raises(ScingestError, match="not UTF-8 text"):
        read_counts(path)


def test_orientation_mistake_is_detected(tmp_path):
    # a cells x genes file said to be genes x cells: barcodes in the first column
    path = write_dense(tmp_path / "m.csv", GENES, CELLS, COUNTS, orientation="cells_x_genes")
    with pytest.raises(ScingestError, match="set orientation: cells_x_genes"):
        read_counts(path, orientation="genes_x_cells")
    check(read_counts(path))  # auto reads it the right way round


def test_unknown_format_and_undetectable_name(tmp_path):
    path = tmp_path / "m.xyz"
    path.write_text("x")
    with pytest.raises(ScingestError, match="cannot tell the format"):
        read_counts(path)
    with pytest.raises(ScingestError, match="unknown format 'loom'"):
        read_counts(path, "loom")
