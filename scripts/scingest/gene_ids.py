"""Ensembl gene ids of the QC gene sets, for inputs whose genes are named by id only.

Many GEO uploads and kallisto|bustools outputs name genes by Ensembl id (``ENSG00000198888``)
without symbols, where the gene-set regexes of :data:`scingest.qc.GENE_SETS` find nothing.
These sets name the same genes by id: a gene is in a set when its symbol matches the set's
regex *or* its id (version and genome prefix stripped) is listed here.

- ``mt``: the 13 protein-coding genes of the mitochondrial genome, human and mouse: fixed
  ids, the same in every Ensembl release.
- ``ribo``, ``hb``: human only: the protein-coding genes whose symbols match the human
  regexes (``^RP[SL]``, ``^HB[^P]``), as the scanpy tutorial's regexes select them. No mouse
  table is available offline here; mouse ribosomal and haemoglobin genes named by id only
  are not recognised (the log says how many genes each set found).

Human ids are those of Bioconductor's ``org.Hs.eg.db`` (Entrez Gene 2022-09-12, Ensembl
2022-06-28; chromosome ``MT`` for ``mt``); ``tests/unit/test_gene_sets.py`` checks them
against it where R has the package (Debian ``r-bioc-org.hs.eg.db``). Mouse ``mt`` ids are
Ensembl's (GRCm38/GRCm39: ``mt-Nd1`` ... ``mt-Cytb``).
"""

from __future__ import annotations

#: Human mitochondrially encoded protein-coding genes (MT-ND1 ... MT-CYB).
HUMAN_MT = frozenset(
    {
        "ENSG00000198695",
        "ENSG00000198712",
        "ENSG00000198727",
        "ENSG00000198763",
        "ENSG00000198786",
        "ENSG00000198804",
        "ENSG00000198840",
        "ENSG00000198886",
        "ENSG00000198888",
        "ENSG00000198899",
        "ENSG00000198938",
        "ENSG00000212907",
        "ENSG00000228253",
    }
)
#: Mouse mitochondrially encoded protein-coding genes (mt-Nd1 ... mt-Cytb).
MOUSE_MT = frozenset(
    {
        "ENSMUSG00000064341",
        "ENSMUSG00000064345",
        "ENSMUSG00000064351",
        "ENSMUSG00000064354",
        "ENSMUSG00000064356",
        "ENSMUSG00000064357",
        "ENSMUSG00000064358",
        "ENSMUSG00000064360",
        "ENSMUSG00000065947",
        "ENSMUSG00000064363",
        "ENSMUSG00000064367",
        "ENSMUSG00000064368",
        "ENSMUSG00000064370",
    }
)
#: Human protein-coding genes whose symbols match ``^RP[SL]``.
HUMAN_RIBO = frozenset(
    {
        "ENSG00000008988",
        "ENSG00000037241",
        "ENSG00000063177",
        "ENSG00000071082",
        "ENSG00000071242",
        "ENSG00000072133",
        "ENSG00000083845",
        "ENSG00000089009",
        "ENSG00000089157",
        "ENSG00000096150",
        "ENSG00000100316",
        "ENSG00000100784",
        "ENSG00000105193",
        "ENSG00000105372",
        "ENSG00000105640",
        "ENSG00000108107",
        "ENSG00000108298",
        "ENSG00000108443",
        "ENSG00000109475",
        "ENSG00000110700",
        "ENSG00000112306",
        "ENSG00000114391",
        "ENSG00000115268",
        "ENSG00000116251",
        "ENSG00000117676",
        "ENSG00000118181",
        "ENSG00000122026",
        "ENSG00000122406",
        "ENSG00000124614",
        "ENSG00000125691",
        "ENSG00000129824",
        "ENSG00000130255",
        "ENSG00000131469",
        "ENSG00000134419",
        "ENSG00000136643",
        "ENSG00000136942",
        "ENSG00000137154",
        "ENSG00000137818",
        "ENSG00000138326",
        "ENSG00000140986",
        "ENSG00000140988",
        "ENSG00000142534",
        "ENSG00000142541",
        "ENSG00000142676",
        "ENSG00000142937",
        "ENSG00000143947",
        "ENSG00000144713",
        "ENSG00000145425",
        "ENSG00000145592",
        "ENSG00000146223",
        "ENSG00000147403",
        "ENSG00000147604",
        "ENSG00000148303",
        "ENSG00000149273",
        "ENSG00000156482",
        "ENSG00000161016",
        "ENSG00000161970",
        "ENSG00000162244",
        "ENSG00000162302",
        "ENSG00000163584",
        "ENSG00000163682",
        "ENSG00000163923",
        "ENSG00000164587",
        "ENSG00000165496",
        "ENSG00000165502",
        "ENSG00000166441",
        "ENSG00000167526",
        "ENSG00000168028",
        "ENSG00000170889",
        "ENSG00000171858",
        "ENSG00000171863",
        "ENSG00000172809",
        "ENSG00000174444",
        "ENSG00000174748",
        "ENSG00000175634",
        "ENSG00000177189",
        "ENSG00000177600",
        "ENSG00000177954",
        "ENSG00000182774",
        "ENSG00000182899",
        "ENSG00000185088",
        "ENSG00000186468",
        "ENSG00000187051",
        "ENSG00000188846",
        "ENSG00000197728",
        "ENSG00000197756",
        "ENSG00000197958",
        "ENSG00000198034",
        "ENSG00000198208",
        "ENSG00000198242",
        "ENSG00000198755",
        "ENSG00000198918",
        "ENSG00000213741",
        "ENSG00000215472",
        "ENSG00000223367",
        "ENSG00000226225",
        "ENSG00000227794",
        "ENSG00000229117",
        "ENSG00000231500",
        "ENSG00000233927",
        "ENSG00000235650",
        "ENSG00000241343",
        "ENSG00000257529",
        "ENSG00000265681",
        "ENSG00000270800",
        "ENSG00000274005",
        "ENSG00000274626",
        "ENSG00000274646",
        "ENSG00000274950",
        "ENSG00000275323",
        "ENSG00000277079",
        "ENSG00000277359",
        "ENSG00000278081",
        "ENSG00000278229",
        "ENSG00000278270",
        "ENSG00000280831",
        "ENSG00000280858",
        "ENSG00000280969",
        "ENSG00000281877",
        "ENSG00000288920",
    }
)
#: Human protein-coding genes whose symbols match ``^HB[^P]``.
HUMAN_HB = frozenset(
    {
        "ENSG00000086506",
        "ENSG00000112339",
        "ENSG00000113070",
        "ENSG00000130656",
        "ENSG00000188536",
        "ENSG00000196565",
        "ENSG00000206172",
        "ENSG00000206177",
        "ENSG00000213931",
        "ENSG00000213934",
        "ENSG00000223609",
        "ENSG00000244734",
    }
)

#: Gene set -> the Ensembl ids (unversioned) known to belong to it.
KNOWN_IDS: dict[str, frozenset[str]] = {
    "mt": HUMAN_MT | MOUSE_MT,
    "ribo": HUMAN_RIBO,
    "hb": HUMAN_HB,
}
