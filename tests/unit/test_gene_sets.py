"""The QC gene sets: by symbol, by Ensembl id, and with a multi-genome reference's prefixes."""

from __future__ import annotations

import io
import os
import shutil
import subprocess

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scingest.gene_ids import HUMAN_HB, HUMAN_MT, HUMAN_RIBO, MOUSE_MT
from scingest.qc import bare_names, flag_genes, gene_set_patterns

#: The 13 mitochondrially encoded protein-coding genes and their Ensembl stable ids, written
#: out here rather than taken from scingest.gene_ids (human: as org.Hs.eg.db gives them, see
#: below; mouse: as published analyses list them, e.g. Bgee's and scater's examples).
ENSEMBL_HUMAN_MT = {
    "MT-ND1": "ENSG00000198888",
    "MT-ND2": "ENSG00000198763",
    "MT-CO1": "ENSG00000198804",
    "MT-CO2": "ENSG00000198712",
    "MT-ATP8": "ENSG00000228253",
    "MT-ATP6": "ENSG00000198899",
    "MT-CO3": "ENSG00000198938",
    "MT-ND3": "ENSG00000198840",
    "MT-ND4L": "ENSG00000212907",
    "MT-ND4": "ENSG00000198886",
    "MT-ND5": "ENSG00000198786",
    "MT-ND6": "ENSG00000198695",
    "MT-CYB": "ENSG00000198727",
}
ENSEMBL_MOUSE_MT = {
    "mt-Nd1": "ENSMUSG00000064341",
    "mt-Nd2": "ENSMUSG00000064345",
    "mt-Co1": "ENSMUSG00000064351",
    "mt-Co2": "ENSMUSG00000064354",
    "mt-Atp8": "ENSMUSG00000064356",
    "mt-Atp6": "ENSMUSG00000064357",
    "mt-Co3": "ENSMUSG00000064358",
    "mt-Nd3": "ENSMUSG00000064360",
    "mt-Nd4l": "ENSMUSG00000065947",
    "mt-Nd4": "ENSMUSG00000064363",
    "mt-Nd5": "ENSMUSG00000064367",
    "mt-Nd6": "ENSMUSG00000064368",
    "mt-Cytb": "ENSMUSG00000064370",
}

ORG_DB = r"""
suppressMessages(library(org.Hs.eg.db))
m <- suppressWarnings(suppressMessages(select(org.Hs.eg.db, keys = keys(org.Hs.eg.db),
  keytype = "ENTREZID", columns = c("CHR", "ENSEMBL", "SYMBOL", "GENETYPE"))))
m <- m[!is.na(m$ENSEMBL), ]
pc <- m[m$GENETYPE == "protein-coding", ]
out <- rbind(
  data.frame(set = "mt", id = pc$ENSEMBL[!is.na(pc$CHR) & pc$CHR == "MT"]),
  data.frame(set = "ribo", id = pc$ENSEMBL[grepl("^RP[SL]", pc$SYMBOL)]),
  data.frame(set = "hb", id = pc$ENSEMBL[grepl("^HB[^P]", pc$SYMBOL)])
)
write.table(unique(out), stdout(), sep = "\t", row.names = FALSE, quote = FALSE)
"""


def test_the_mito_ids_are_ensembls():
    assert set(ENSEMBL_HUMAN_MT.values()) == HUMAN_MT
    assert set(ENSEMBL_MOUSE_MT.values()) == MOUSE_MT


def test_the_human_ids_are_org_hs_eg_dbs():
    """The shipped human tables equal Bioconductor's org.Hs.eg.db (Debian
    r-bioc-org.hs.eg.db): chromosome MT, and the protein-coding genes the regexes name."""
    found = shutil.which("Rscript") and subprocess.run(
        ["Rscript", "-e", "library(org.Hs.eg.db)"], capture_output=True
    )
    if not found or found.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("Rscript with org.Hs.eg.db (Debian r-bioc-org.hs.eg.db) missing in CI")
        pytest.skip("needs Rscript and org.Hs.eg.db (Debian r-bioc-org.hs.eg.db)")
    out = subprocess.run(["Rscript", "-e", ORG_DB], capture_output=True, text=True, check=True)
    table = pd.read_csv(io.StringIO(out.stdout), sep="\t")
    for key, ours in (("mt", HUMAN_MT), ("ribo", HUMAN_RIBO), ("hb", HUMAN_HB)):
        assert set(table.loc[table["set"] == key, "id"]) == ours, key


def _sample(var_names, **columns) -> ad.AnnData:
    adata = ad.AnnData(sp.csr_matrix((2, len(var_names)), dtype=np.float32))
    adata.var_names = var_names
    for key, values in columns.items():
        adata.var[key] = values
    return adata


def test_ids_only_find_the_mito_genes():
    human = list(ENSEMBL_HUMAN_MT.values())
    names = [*(f"{i}.5" for i in human[:5]), *human[5:], "ENSG00000141510", "ENSG00000111640"]
    adata = _sample(names)
    found = flag_genes(adata, gene_set_patterns("human"))
    assert found["mt"] == 13
    assert adata.var["mt"].tolist() == [True] * 13 + [False, False]


def test_ids_in_gene_ids_column_or_as_var_names():
    symbols = ["ND1", "TP53", "GAPDH"]  # a GTF without the MT- prefix: only the ids tell
    ids = [ENSEMBL_HUMAN_MT["MT-ND1"], "ENSG00000141510", "ENSG00000111640"]
    by_symbol = _sample(symbols, gene_ids=ids)
    flag_genes(by_symbol, gene_set_patterns("human"))
    assert by_symbol.var["mt"].tolist() == [True, False, False]
    by_id = _sample(ids, gene_symbols=symbols)
    flag_genes(by_id, gene_set_patterns("human"), symbols="gene_symbols")
    assert by_id.var["mt"].tolist() == [True, False, False]


def test_barnyard_prefixes_and_both_organisms():
    names = ["GRCh38_MT-ND1", "GRCh38_RPL13", "GRCh38_ACTB", "mm10___mt-Co1", "mm10___Rps3"]
    genomes = ["GRCh38"] * 3 + ["mm10"] * 2
    assert bare_names(names, genomes) == ["MT-ND1", "RPL13", "ACTB", "mt-Co1", "Rps3"]
    adata = _sample(names, genome=genomes)
    flag_genes(adata, gene_set_patterns("human", several_genomes=True))
    assert adata.var["mt"].tolist() == [True, False, False, True, False]
    assert adata.var["ribo"].tolist() == [False, True, False, False, True]
    # an override stays the user's: only what it matches
    flag_genes(adata, gene_set_patterns("human", overrides={"mt": "^MT-"}, several_genomes=True))
    assert adata.var["mt"].tolist() == [True, False, False, False, False]
