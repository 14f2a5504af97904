"""Reader situations of issue 16 through the real workflow: right results or clear errors.

Each sample's file is written here the way the tool that makes it in the wild writes it:
a cells x genes matrix with plate-style cell names, R's ``write.table`` output, a comment
line above the header, two gene name columns, an h5ad with normalised X, a 10x names file
given as the path, and a matrix whose names say nothing about its orientation.
"""

from __future__ import annotations

import gzip

import anndata as ad
import numpy as np

from conftest import run_workflow
from helpers.formats import make_cells, write_10x, write_h5ad
from scingest.synthetic import synthetic_counts, write_dense


def _write(path, text: str) -> None:
    data = text.encode()
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)


def _lines(rows, header, *, sep=",", quote=False):
    q = (lambda s: f'"{s}"') if quote else (lambda s: s)
    out = [sep.join(q(h) if h else h for h in header)]
    out += [sep.join([*map(q, names), *map(str, values)]) for names, values in rows]
    return "\n".join(out) + "\n"


def test_reader_situations_of_issue_16(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    genes, cells, counts = synthetic_counts(40, 16, seed=3, median_counts=300)
    dense = counts.toarray()  # cells x genes
    plate = [f"plate1_{r}{c:03d}" for r in "AB" for c in range(8)]
    # 2. cells x genes, cells named by plate well: read the right way round
    write_dense(data / "plate.csv.gz", genes, plate, counts, orientation="cells_x_genes")
    # 3. R's write.table: spaces, quoted names, a header one field short
    _write(
        data / "GSM35_Space1_count_matrix.txt.gz",
        _lines([([g], dense[:, j]) for j, g in enumerate(genes)], cells, sep=" ", quote=True),
    )
    # 4. a comment line above the header
    _write(
        data / "comment.csv",
        "# exported 2024-01-01 by CountTool\n"
        + _lines([([g], dense[:, j]) for j, g in enumerate(genes)], ["", *cells]),
    )
    # 4. two name columns: gene id and gene name
    ids = [f"ENSG{i:011d}" for i in range(len(genes))]
    _write(
        data / "twonames.csv.gz",
        _lines(
            [([i, g], dense[:, j]) for j, (i, g) in enumerate(zip(ids, genes, strict=True))],
            ["gene_id", "gene_name", *cells],
        ),
    )
    # 6. h5ad: log-normalised X, raw counts in layers["counts"]
    h5 = make_cells(seed=4)
    write_h5ad(data / "norm.h5ad", h5, layer="counts")
    # 4. a 10x names file given as the path
    write_10x(data / "tenx", make_cells(seed=5))
    # 2. names that say nothing, sizes that say nothing: an error, not a guess
    write_dense(data / "undecided.csv", [f"G{i}" for i in range(20)], plate, counts[:, :20])
    sheet = {
        "Plate1": "data/plate.csv.gz",
        "Space1": "data/GSM35_Space1_count_matrix.txt.gz",
        "Comment1": "data/comment.csv",
        "Twonames1": "data/twonames.csv.gz",
        "Norm1": "data/norm.h5ad",
        "Feat1": "data/tenx/features.tsv.gz",
        "Undecided1": "data/undecided.csv",
    }
    (tmp_path / "sheet.tsv").write_text(
        "sample\tpath\n" + "".join(f"{s}\t{p}\n" for s, p in sheet.items())
    )
    run = run_workflow(tmp_path, "--keep-going", config={"samples": "sheet.tsv"}, check=False)
    assert run.returncode != 0
    samples, logs = tmp_path / "results" / "samples", tmp_path / "logs" / "ingest_sample"

    def checkpoint(sample):
        return ad.read_h5ad(samples / f"{sample}.h5ad")

    plate1 = checkpoint("Plate1")
    assert plate1.obs["barcode"].tolist() == plate and plate1.var_names.tolist() == genes
    np.testing.assert_array_equal(plate1.layers["counts"].toarray(), dense)
    for sample in ("Space1", "Comment1", "Twonames1"):
        got = checkpoint(sample)
        assert got.obs["barcode"].tolist() == cells, sample
        assert got.var_names.tolist() == genes, sample
        np.testing.assert_array_equal(got.layers["counts"].toarray(), dense)
    assert checkpoint("Twonames1").var["gene_ids"].tolist() == ids
    assert "read as whitespace-separated" in (logs / "Space1.log").read_text()
    assert "skipped 1 comment line(s)" in (logs / "Comment1.log").read_text()

    expected = {
        "Norm1": ["norm.h5ad: X holds", "layers['counts'] holds integer counts",
                  "set h5ad_layer: counts"],
        "Feat1": ["features.tsv.gz is part of a 10x matrix", "give the folder",
                  "data/tenx"],
        "Undecided1": ["undecided.csv: cannot tell whether the genes are in the first column",
                       "orientation: genes_x_cells", "orientation: cells_x_genes"],
    }  # fmt: skip
    for sample, messages in expected.items():
        log = (logs / f"{sample}.log").read_text()
        assert not (samples / f"{sample}.h5ad").exists(), sample
        assert "Traceback" not in log
        for message in messages:
            assert message in log, f"{sample}: {message!r} not in {log}"
    assert "allow_non_integer" not in (logs / "Norm1.log").read_text()

    # the fix the message names works: h5ad_layer counts reads the raw counts
    (tmp_path / "sheet.tsv").write_text("sample\tpath\nNorm1\tdata/norm.h5ad\n")
    run_workflow(tmp_path, config={"samples": "sheet.tsv", "h5ad_layer": "counts"})
    norm = checkpoint("Norm1")
    gex = np.flatnonzero(h5.gex)
    np.testing.assert_array_equal(norm.layers["counts"].toarray(), h5.counts[:, gex].toarray())
