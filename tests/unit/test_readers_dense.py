"""The dense text reader through read_counts: every variant real exports have, every error."""

from __future__ import annotations

import gzip
import logging

import numpy as np
import pytest
import scipy.sparse as sp

from scingest.errors import ScingestError
from scingest.readers import read_counts, read_dense
from scingest.readers._features import assemble
from scingest.synthetic import synthetic_counts, write_dense

GENES, CELLS, COUNTS = synthetic_counts(30, 12, seed=7, median_counts=80)


def dense(path, **kwargs):
    """read_dense's counts and names, assembled into AnnData as read_counts does."""
    return assemble(read_dense(path, **kwargs), path)


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
    with pytest.raises(ScingestError, match="unknown format 'gct'"):
        read_counts(path, "gct")


# --- issue 16: orientation from the genes, whitespace text, comments, two name columns ---

PLATE = [f"plate1_{row}{col:03d}" for row in "AB" for col in range(6)]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "simple"])
def test_plate_named_cells_x_genes_read_the_right_way_round(tmp_path, fast):
    """Cells named plate1_A000 (not barcodes): the genes in the header tell the orientation."""
    path = write_dense(tmp_path / "p.csv.gz", GENES, PLATE, COUNTS, orientation="cells_x_genes")
    adata = dense(path, fast=fast)
    check(adata, cells=PLATE)
    with pytest.raises(ScingestError, match="set orientation: cells_x_genes") as err:
        dense(path, orientation="genes_x_cells", fast=fast)
    assert str(err.value).startswith(f"{path}: orientation is genes_x_cells but the gene names")
    # genes x cells with the same names reads as such
    path = write_dense(tmp_path / "q.csv.gz", GENES, PLATE, COUNTS)
    check(dense(path, fast=fast), cells=PLATE)


@pytest.mark.parametrize(
    "genes",
    [
        [f"ENSG{i:011d}" for i in range(30)],
        [f"ENSMUSG{i:011d}.2" for i in range(30)],
        [f"Ss1-{g}" for g in GENES],
        [f"GRCh38_{g}" for g in GENES],
        [g.capitalize() if not g.startswith("MT-") else "mt-" + g[3:].capitalize() for g in GENES],
    ],
    ids=["ensembl", "ensembl-mouse-versioned", "prefixed", "genome-prefix", "mouse-symbols"],
)
def test_gene_naming_styles_tell_the_orientation(tmp_path, genes):
    cells = [f"cell{i}" for i in range(len(CELLS))]
    for orientation in ("genes_x_cells", "cells_x_genes"):
        path = write_dense(tmp_path / "g.csv", genes, cells, COUNTS, orientation=orientation)
        check(read_counts(path), genes=genes, cells=cells)


def test_undecidable_orientation_is_an_error_naming_the_option(tmp_path):
    genes = [f"G{i}" for i in range(30)]
    cells = [f"C{i}" for i in range(12)]
    path = write_dense(tmp_path / "u.csv", genes, cells, COUNTS)
    with pytest.raises(ScingestError) as err:
        read_counts(path)
    message = str(err.value)
    assert message.startswith(f"{path}: cannot tell whether the genes are in the first column")
    assert "orientation: genes_x_cells" in message and "orientation: cells_x_genes" in message
    assert "sheet column" in message
    check(read_counts(path, orientation="genes_x_cells"), genes=genes, cells=cells)


def test_sizes_are_a_weaker_hint(tmp_path):
    # no name says anything, but 3000 rows against 4 columns: the rows are genes
    n_genes = 3000
    genes = [f"G{i}" for i in range(n_genes)]
    cells = ["c1", "c2", "c3", "c4"]
    counts = sp.random(4, n_genes, density=0.1, format="csr", random_state=1) * 10
    counts.data = np.ceil(counts.data)
    path = write_dense(tmp_path / "s.csv", genes, cells, counts)
    adata = read_counts(path)
    assert adata.shape == (4, n_genes) and adata.obs_names.tolist() == cells
    # names outweigh sizes: 3000 plate cells in rows, 30 known genes in the header
    plate = [f"p{i}" for i in range(3000)]
    counts = sp.random(3000, 30, density=0.1, format="csr", random_state=2) * 10
    counts.data = np.ceil(counts.data)
    path = write_dense(tmp_path / "t.csv", GENES, plate, counts, orientation="cells_x_genes")
    adata = read_counts(path)
    assert adata.shape == (3000, 30) and adata.var_names.tolist() == list(GENES)


def r_write_table(path, genes, cells, counts, *, spaces=" ") -> None:
    """What R's write.table(m, file) writes: quoted names, spaces, header one field short."""
    dense = counts.toarray().T
    lines = [spaces.join(f'"{c}"' for c in cells)]
    lines += [spaces.join([f'"{g}"', *map(str, row)]) for g, row in zip(genes, dense, strict=True)]
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


@pytest.mark.parametrize("spaces", [" ", "   "], ids=["one-space", "aligned"])
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "simple"])
def test_space_separated_text_is_read(tmp_path, spaces, fast, caplog):
    path = tmp_path / "GSM35_Space1_count_matrix.txt.gz"
    r_write_table(path, GENES, CELLS, COUNTS, spaces=spaces)
    with caplog.at_level(logging.INFO):
        check(dense(path, sep="\t", fast=fast))
    assert "read as whitespace-separated" in caplog.text
    # R's single spaces keep the fast path; aligned columns take the simple one
    assert ("stepped aside" in caplog.text) == (fast and spaces != " ")
    check(read_counts(path))


def test_one_field_lines_are_refused_not_returned(tmp_path):
    # no separator at all: whole lines would become names; the reader refuses the file
    path = tmp_path / "one.txt"
    path.write_text("AAAC-1;AAAG-1\nMT-ND1;1;2\nACTB;0;3\n")
    with pytest.raises(ScingestError, match="line 2: this line has one field"):
        read_counts(path)


def test_empty_result_is_never_returned(tmp_path):
    import anndata as ad

    from scingest.readers import check_parsed

    empty = ad.AnnData(sp.csr_matrix((0, 2)))
    empty.var_names = ["a b c", "d e f"]
    with pytest.raises(ScingestError, match=r"f\.txt: read 0 cells x 2 genes \(.*'a b c'"):
        check_parsed(empty, "f.txt")
    no_genes = ad.AnnData(sp.csr_matrix((3, 0)))
    with pytest.raises(ScingestError, match=r"read 3 cells x 0 genes"):
        check_parsed(no_genes, "f.txt")


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "simple"])
def test_comment_lines_above_the_header_are_skipped(tmp_path, fast, caplog):
    body = write_dense(tmp_path / "b.csv", GENES, CELLS, COUNTS).read_text()
    path = tmp_path / "c.csv"
    path.write_text("# exported by CellSuite 2.1, counts\n#\n" + body)
    with caplog.at_level(logging.INFO):
        check(dense(path, fast=fast))
    assert "stepped aside" not in caplog.text  # comments keep the fast path
    assert "skipped 2 comment line(s) before the header" in caplog.text
    # a header whose first cell starts with # is a header, not a comment
    path.write_text("#gene" + body)
    check(dense(path, fast=fast))


@pytest.mark.parametrize(
    "labels",
    [["gene_id", "gene_name"], ["Geneid", "Symbol"], ["", ""], [""], []],
    ids=["gene_id-gene_name", "Geneid-Symbol", "empty-labels", "one-empty-label", "no-labels"],
)
def test_two_name_columns_give_ids_and_symbols(tmp_path, labels):
    ids = [f"ENSG{i:011d}" for i in range(len(GENES))]
    dense = COUNTS.toarray().T
    lines = [",".join([*labels, *CELLS])]
    lines += [",".join([i, g, *map(str, r)]) for i, g, r in zip(ids, GENES, dense, strict=True)]
    path = tmp_path / "two.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    adata = read_counts(path)
    check(adata)
    assert adata.var["gene_ids"].tolist() == ids
    by_id = read_counts(path, var_names="gene_ids")
    assert by_id.var_names.tolist() == ids and by_id.var["gene_symbols"].tolist() == GENES
    with pytest.raises(ScingestError, match="two names"):
        read_counts(path, orientation="cells_x_genes")


def test_symbols_first_then_ids(tmp_path):
    ids = [f"ENSMUSG{i:011d}" for i in range(len(GENES))]
    dense = COUNTS.toarray().T
    lines = [",".join(["symbol", "ensembl_id", *CELLS])]
    lines += [",".join([g, i, *map(str, r)]) for i, g, r in zip(ids, GENES, dense, strict=True)]
    path = tmp_path / "two.csv"
    path.write_text("\n".join(lines) + "\n")
    adata = read_counts(path)
    check(adata)
    assert adata.var["gene_ids"].tolist() == ids
