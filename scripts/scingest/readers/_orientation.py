"""Which axis of a matrix holds the genes: the orientation of dense and mtx input.

A text matrix (or a Matrix Market file with its two names files) does not say whether its
rows are genes or cells. The names do: gene symbols (``MT-ND1``, ``Actb``, ribosomal
``RPL13A``, common genes such as ``GAPDH``), Ensembl-like ids (``ENSG...``, ``ENSMUSG...``)
and other organisms' ids mark genes; 10x barcodes (``AAACCTGAGAAACCAT-1``) mark cells.
The sizes of the two axes are a weaker hint, used only when the names say nothing.
:func:`resolve` works on names alone, so the fast dense parser keeps its speed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from os import PathLike

from ..errors import ScingestError

logger = logging.getLogger(__name__)


#: Gene ids of Ensembl (any species: ENSG, ENSMUSG, ENSDARG...), FlyBase, WormBase, TAIR, SGD.
_GENE_ID = re.compile(
    r"^(?:ENS[A-Z]{0,6}G\d{5,}|FBgn\d{5,}|WBGene\d{5,}|AT[1-5CM]G\d{5}|Y[A-P][LR]\d{3}[WC])"
    r"(?:\.\d+)?$"
)
#: Mitochondrial (MT-ND1, mt-Co1) and ribosomal protein (RPL13A, Rps4x) gene symbols.
_GENE_FAMILY = re.compile(r"^(?:MT-[A-Z0-9]+|R[Pp][LlSs]\d+[A-Za-z]?\d*)$", re.IGNORECASE)
#: Genes expressed in nearly every single-cell data set, human or mouse spelling.
_COMMON_GENES = frozenset(
    re.split(
        r"\s+",
        """ACTB ACTG1 GAPDH MALAT1 NEAT1 B2M TMSB4X TMSB10 FTL FTH1 EEF1A1 EEF2 TPT1 UBC UBB PTMA
    MYL6 VIM XIST HBB HBA1 HBA2 CD74 PFN1 CFL1 SRGN LYZ S100A4 S100A6 S100A9 CD3E CD14 CD19
    MS4A1 NKG7 GNLY CST3 TYROBP IL7R CCR7 LTB PPIA HSP90AA1 HSPA8 NPM1 ALB APOE SPARC COL1A1
    COL1A2 COL3A1 KRT8 KRT18 EPCAM PTPRC TOP2A MKI67 JUN FOS DUSP1 IGKC JCHAIN""",
    )
)
#: A 10x barcode, possibly with a sample prefix or suffix (``S1_AAACCTGAGAAACCAT-1``).
_BARCODE = re.compile(r"(?:^|[^A-Za-z])[ACGTN]{10,}(?:$|[^A-Za-z])")
#: Parts a gene name may carry around the symbol: genome prefixes (GRCh38_, mm10___),
#: species or set prefixes (Ss1-MT-ND1) and id versions.
_PREFIX = re.compile(r"^[^_|:]*[_|:]+|^[A-Za-z0-9]+-(?=[A-Za-z])")
#: Names looked at per axis: the first ones and an even spread of the rest.
_SAMPLE = 2000
#: The size hint: an axis this many times larger than the other, and at least this large,
#: is taken to be the genes' when no name says anything.
_SIZE_RATIO, _SIZE_MIN = 5, 2000


def _sample(names: Sequence[str]) -> list[str]:
    if len(names) <= _SAMPLE:
        return [str(n) for n in names]
    step = len(names) / _SAMPLE
    return [str(names[int(i * step)]) for i in range(_SAMPLE)]


def _is_gene(name: str) -> bool:
    name = name.strip().strip('"')
    for candidate in (name, _PREFIX.sub("", name, count=1)):
        if (
            _GENE_ID.match(candidate)
            or _GENE_FAMILY.match(candidate)
            or candidate.upper() in _COMMON_GENES
        ):
            return True
    return False


def gene_hits(names: Sequence[str]) -> tuple[int, int]:
    """How many of a sample of ``names`` look like genes.

    Parameters
    ----------
    names
        Names along one axis.

    Returns
    -------
    The names that look like genes, and the sample's size.
    """
    sample = _sample(names)
    return sum(_is_gene(n) for n in sample), len(sample)


def id_hits(names: Sequence[str]) -> int:
    """How many of a sample of ``names`` are gene ids (Ensembl-like) rather than symbols.

    Parameters
    ----------
    names
        Names along one axis.

    Returns
    -------
    The number of gene ids in the sample.
    """
    return sum(bool(_GENE_ID.match(n.strip().strip('"'))) for n in _sample(names))


def looks_like_barcodes(names: Sequence[str]) -> bool:
    """Whether most names hold a 10x barcode.

    Parameters
    ----------
    names
        Names along one axis.

    Returns
    -------
    True when more than 80% of a sample of the names hold one.
    """
    sample = _sample(names)[:500]
    return bool(sample) and sum(bool(_BARCODE.search(n)) for n in sample) > 0.8 * len(sample)


def _genes_by_names(rows: Sequence[str], cols: Sequence[str]) -> tuple[str | None, str]:
    """``"rows"`` or ``"cols"`` as the genes' axis by the names alone (None: they don't say)."""
    (row_hits, n_rows), (col_hits, n_cols) = gene_hits(rows), gene_hits(cols)

    def strong(hits: int, n: int) -> bool:
        return hits >= 3 or (n > 0 and hits / n >= 0.3 and hits > 0)

    row_genes = strong(row_hits, n_rows) and row_hits >= 10 * col_hits
    col_genes = strong(col_hits, n_cols) and col_hits >= 10 * row_hits
    row_cells, col_cells = looks_like_barcodes(rows), looks_like_barcodes(cols)
    rows_vote = row_genes or col_cells
    cols_vote = col_genes or row_cells
    why = (
        f"{row_hits} of {n_rows} sampled row names and {col_hits} of {n_cols} column names "
        "look like genes; "
        f"row names {'are' if row_cells else 'are not'} barcodes, column names "
        f"{'are' if col_cells else 'are not'}"
    )
    if rows_vote and not cols_vote:
        return "rows", why
    if cols_vote and not rows_vote:
        return "cols", why
    return None, why


def _example(names: Sequence[str]) -> str:
    shown = ", ".join(repr(str(n)) for n in list(names[:3]))
    return shown + (", ..." if len(names) > 3 else "") if shown else "none"


def resolve(
    path: str | PathLike[str],
    *,
    rows: Sequence[str],
    cols: Sequence[str],
    orientation: str,
    row_label: str = "the first column",
    col_label: str = "the header",
) -> str:
    """``genes_x_cells`` (rows are genes) or ``cells_x_genes`` for a matrix with these names.

    ``auto`` decides from the names, then from the sizes, and raises when neither tells.
    An explicit orientation is kept unless the names clearly say the opposite (then it
    raises, naming the orientation to set).

    Parameters
    ----------
    path
        The input, named in errors and in the log.
    rows, cols
        The names along the matrix's rows and columns.
    orientation
        The option, checked already (:class:`scingest.options.ReaderOptions`).
    row_label, col_label
        Where the row and column names are, for the messages.

    Returns
    -------
    ``genes_x_cells`` or ``cells_x_genes``.

    Raises
    ------
    ScingestError
        When ``auto`` cannot tell, or the names contradict an explicit orientation.
    """
    genes_axis, why = _genes_by_names(rows, cols)
    hint = "in the config, or for one sample in a sheet column of the same name (orientation)"
    if orientation != "auto":
        expected = "rows" if orientation == "genes_x_cells" else "cols"
        if genes_axis is not None and genes_axis != expected:
            other = "cells_x_genes" if orientation == "genes_x_cells" else "genes_x_cells"
            genes_where, cells_where = (
                (row_label, col_label) if genes_axis == "rows" else (col_label, row_label)
            )
            genes = rows if genes_axis == "rows" else cols
            raise ScingestError(
                f"orientation is {orientation} but the gene names are in {genes_where} "
                f"(e.g. {_example(genes)}) and the cells in {cells_where} ({why}): the "
                f"file is probably {other}; set orientation: {other} (or auto) {hint}",
                path=path,
            )
        return orientation
    if genes_axis is None:
        big, small = max(len(rows), len(cols)), min(len(rows), len(cols))
        if big >= _SIZE_MIN and big >= _SIZE_RATIO * small:
            genes_axis = "rows" if len(rows) >= len(cols) else "cols"
            why = (
                f"no name looks like a gene or a barcode; taken from the sizes ({len(rows)} "
                f"rows, {len(cols)} columns: the larger axis holds the genes)"
            )
        else:
            raise ScingestError(
                f"cannot tell whether the genes are in {row_label} (e.g. {_example(rows)}) "
                f"or in {col_label} (e.g. {_example(cols)}): {why}, and the sizes "
                f"({len(rows)} x {len(cols)}) do not tell. Expected gene symbols (MT-ND1, "
                "Actb), Ensembl ids (ENSG..., ENSMUSG...) or 10x barcodes on one axis; set "
                f"orientation: genes_x_cells (genes in {row_label}) or orientation: "
                f"cells_x_genes (genes in {col_label}) {hint}",
                path=path,
            )
    found = "genes_x_cells" if genes_axis == "rows" else "cells_x_genes"
    logger.info("%s: orientation %s (%s)", path, found, why)
    return found
