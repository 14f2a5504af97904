"""Clearer words (issue 23): inputs with no cells, an inner join that drops many genes."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from scingest.errors import ScingestError
from scingest.merge import LARGE_DROP, merge_checkpoints
from scingest.readers import read_counts
from scingest.sample import build_sample, write_h5ad
from scingest.synthetic import write_dense


@pytest.mark.parametrize(
    "text",
    ['""\n"MT-ND1"\n"ACTB"\n', "gene\nMT-ND1\nACTB\n", "gene\r\nMT-ND1\r\nACTB\r\n"],
    ids=["R-quoted", "labelled", "crlf"],
)
@pytest.mark.parametrize("name", ["g.csv", "g.csv.gz", "g.tsv"])
def test_a_genes_only_text_file_holds_no_cells(tmp_path, text, name):
    import gzip

    path = tmp_path / name
    data = text.encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(ScingestError, match=r"the file holds no cells") as err:
        read_counts(path)
    assert "separates its values" not in str(err.value)
    assert str(path) in str(err.value)


def test_one_field_lines_with_another_separator_still_name_the_separator(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("AAAC-1;AAAG-1\nMT-ND1;1;2\nACTB;0;3\n")
    with pytest.raises(ScingestError, match=r"line 2: this line has one field: no ','"):
        read_counts(path)


@pytest.mark.parametrize("layout", ["h5ad", "10x_h5"])
def test_a_binary_input_with_zero_cells_holds_no_cells(tmp_path, layout):
    genes = ["MT-ND1", "ACTB", "GAPDH"]
    if layout == "h5ad":
        path = tmp_path / "empty.h5ad"
        empty = ad.AnnData(sp.csr_matrix((0, 3), dtype=np.float32))
        empty.var_names = genes
        empty.write_h5ad(path)  # written by anndata itself
    else:
        from helpers.formats import Cells, write_10x_h5

        path = write_10x_h5(
            tmp_path / "empty.h5",
            Cells(sp.csr_matrix((0, 3), dtype=np.int64), [], genes, genes, ["Gene Expression"] * 3),
        )
    with pytest.raises(ScingestError) as err:
        read_counts(path)
    text = str(err.value)
    assert text.startswith(f"{path}: the file holds no cells (0 cells x 3 genes)"), text
    assert "separator" not in text


def _checkpoint(tmp_path, name, genes, seed):
    rng = np.random.default_rng(seed)
    counts = sp.csr_matrix(rng.poisson(2, (6, len(genes))).astype(np.int64))
    path = tmp_path / f"{name}.csv"
    write_dense(path, genes, [f"C{i}-1" for i in range(6)], counts)
    out = tmp_path / f"{name}.h5ad"
    write_h5ad(build_sample(path, sample=name, orientation="genes_x_cells"), out)
    return out


def test_an_inner_join_dropping_many_genes_says_how_many_and_the_way_out(tmp_path, caplog):
    genes = [f"GENE{i}" for i in range(40)]
    renamed = [f"NEW{i}" if i < 8 else g for i, g in enumerate(genes)]  # 8 of 40 renamed
    paths = {
        "Old1": _checkpoint(tmp_path, "Old1", genes, 1),
        "New1": _checkpoint(tmp_path, "New1", renamed, 2),
    }
    with caplog.at_level(logging.WARNING):
        report = merge_checkpoints(paths, tmp_path / "m.h5ad", join="inner")
    # the naive count: a sample's genes that are not in every sample
    common = set(genes) & set(renamed)
    assert len(set(genes) - common) == len(set(renamed) - common) == 8
    assert report.set_index("sample")["genes_dropped"].to_dict() == {"Old1": 8, "New1": 8}
    assert LARGE_DROP <= 8 / 40
    for sample in ("Old1", "New1"):
        (line,) = [r.message for r in caplog.records if r.message.startswith(f"{sample}:")]
        assert "the inner join drops 8 of its 40 genes (20.0%, not in every sample)" in line
        assert "var_names: gene_ids when the samples' gene ids agree" in line
        assert "join: outer" in line


def test_a_small_drop_is_logged_without_advice(tmp_path, caplog):
    genes = [f"GENE{i}" for i in range(40)]
    paths = {
        "A1": _checkpoint(tmp_path, "A1", genes, 1),
        "B1": _checkpoint(tmp_path, "B1", genes[:39], 2),
    }
    with caplog.at_level(logging.WARNING):
        merge_checkpoints(paths, tmp_path / "m.h5ad", join="inner")
    assert LARGE_DROP > 1 / 40
    (line,) = [r.message for r in caplog.records if r.message.startswith("A1:")]
    assert line == "A1: the inner join drops 1 of its 40 genes (2.5%, not in every sample)"
