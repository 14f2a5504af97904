"""The fast dense parser against the simple one: same matrix and names, same errors."""

from __future__ import annotations

import gzip
import logging
import subprocess
import sys
import threading

import numpy as np
import pytest
import scipy.sparse as sp

from scingest.errors import ScingestError
from scingest.readers import _fastdense, read_dense
from scingest.readers.dense import _parse_simple
from scingest.synthetic import write_dense


def random_case(seed: int) -> tuple[list[str], list[str], sp.csr_matrix, dict[str, object]]:
    """Names, counts (cells x genes) and write_dense options drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    n_genes, n_cells = int(rng.integers(1, 40)), int(rng.integers(2, 30))
    density = rng.choice([0.0, 0.05, 0.3, 1.0])
    counts = sp.random(
        n_cells,
        n_genes,
        density=density,
        format="csr",
        random_state=seed,
        data_rvs=lambda k: rng.integers(1, 3000, k),
    ).astype(np.int32)
    # names with the separator and spaces inside need quoting; unicode is fine
    genes = [f"G{i}{rng.choice(['', '-x', ' a', '.1', 'é'])}" for i in range(n_genes)]
    cells = [f"C{i}-{rng.integers(0, 9)}" for i in range(n_cells)]
    options: dict[str, object] = {
        "sep": str(rng.choice([",", "\t"])),
        "quote_names": bool(rng.integers(2)),
        "first_cell": str(rng.choice(["", "gene"])),
        "line_end": str(rng.choice(["\n", "\r\n"])),
        "float_values": bool(rng.integers(2)),
        "orientation": str(rng.choice(["genes_x_cells", "cells_x_genes"])),
    }
    if options["quote_names"] and rng.integers(2):
        genes = [g.replace("-", options["sep"]) for g in genes]  # separator inside quotes
    return genes, cells, counts, options


@pytest.mark.parametrize("seed", range(60))
def test_fast_equals_simple_on_random_inputs(tmp_path, seed):
    genes, cells, counts, options = random_case(seed)
    rng = np.random.default_rng(seed + 1000)
    name = f"m{'.gz' if rng.integers(2) else ''}"
    path = write_dense(tmp_path / name, genes, cells, counts, **options)
    if rng.integers(2):  # a last line without its line end
        data = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
        data = data.rstrip(b"\r\n")
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    sep, dtype = options["sep"], np.dtype(str(rng.choice(["float32", "int32"])))
    want = _parse_simple(path, sep=sep, dtype=dtype, allow_non_integer=False)
    for block_size in (1, 2, 3, 7, int(rng.integers(4, 200)), 1 << 20):
        header, names, matrix = _fastdense.parse_fast(
            path, sep=sep, dtype=dtype, block_size=block_size
        )
        assert header == want[0]
        assert names == want[1]
        assert matrix.dtype == want[2].dtype == dtype
        assert matrix.shape == want[2].shape
        np.testing.assert_array_equal(matrix.indptr, want[2].indptr)
        np.testing.assert_array_equal(matrix.indices, want[2].indices)
        np.testing.assert_array_equal(matrix.data, want[2].data)
        # the transpose, written straight from the blocks by two threads
        _header, _names, flipped = _fastdense.parse_fast(
            path, sep=sep, dtype=dtype, block_size=block_size, transpose=True
        )
        want_flipped = want[2].T.tocsr()
        assert flipped.format == "csr"
        assert flipped.dtype == dtype
        assert flipped.shape == want_flipped.shape
        np.testing.assert_array_equal(flipped.indptr, want_flipped.indptr)
        np.testing.assert_array_equal(flipped.indices, want_flipped.indices)
        np.testing.assert_array_equal(flipped.data, want_flipped.data)


@pytest.mark.parametrize("sep", [",", "\t"])
def test_zero_runs_skipped_word_at_a_time_at_every_offset(tmp_path, sep):
    """Runs of 0 to 13 zeros between nonzeros, names of 1 to 9 bytes: every alignment of
    the kernel's four-zeros-at-once skip, and runs that end at a line end or a "0.0"."""
    rng = np.random.default_rng(7)
    n_cols = 60
    lines = [sep.join(f"C{j}" for j in range(n_cols))]
    for i in range(120):
        values, run = [], int(rng.integers(0, 14))
        while len(values) < n_cols:
            values += ["0"] * run + [str(rng.choice(["1", "10", "305", "0.0", "7.00"]))]
            run = int(rng.integers(0, 14))
        lines.append(sep.join(["g" * (1 + i % 9) + str(i), *values[:n_cols]]))
    path = tmp_path / "z.csv"
    path.write_text("\n".join(lines) + "\n")
    want = _parse_simple(path, sep=sep, dtype=np.dtype("float32"), allow_non_integer=False)
    for block_size in (1, 5, 64, 1 << 20):
        _header, names, matrix = _fastdense.parse_fast(
            path, sep=sep, dtype=np.dtype("float32"), block_size=block_size
        )
        assert names == want[1]
        np.testing.assert_array_equal(matrix.indptr, want[2].indptr)
        np.testing.assert_array_equal(matrix.indices, want[2].indices)
        np.testing.assert_array_equal(matrix.data, want[2].data)


def test_read_dense_fast_and_simple_agree(tmp_path):
    genes, cells, counts, options = random_case(3)
    path = write_dense(tmp_path / "m.csv.gz", genes, cells, counts, **options)
    orientation = str(options["orientation"])
    fast = read_dense(path, sep=str(options["sep"]), orientation=orientation, block_size=5)
    simple = read_dense(path, sep=str(options["sep"]), orientation=orientation, fast=False)
    assert fast.barcodes.tolist() == simple.barcodes.tolist()
    assert fast.symbols.tolist() == simple.symbols.tolist()
    assert fast.counts.format == simple.counts.format == "csr"
    assert (fast.counts != simple.counts).nnz == 0


@pytest.mark.parametrize(
    "text",
    [
        ',A-1,B-1\n"G""1",1,2\n',  # doubled quote in a name
        ',A-1,B-1\n"G\n1",1,2\n',  # newline in a quoted name
        ',A-1,B-1\nG1,"1",2\n',  # quoted number
        ",A-1,B-1\nG1, 1,2\n",  # space before a number
        ",A-1,B-1\nG1,1e1,2\n",  # exponent
        ",A-1,B-1\nG1,+1,2\n",  # sign
        ",A-1,B-1\nG1,1,2\rG2,3,4\r",  # old Mac line ends
        "\n\n,A-1,B-1\nG1,1,2\n",  # blank lines before the header
        ",A-1,B-1\nG1,1,2\n   \nG2,0,4\n",  # a whitespace-only line
        ",A-1,B-1\nG1,1,12345678901234567\n",  # more digits than float64 holds exactly
    ],
    ids=[
        "doubled-quote",
        "quoted-newline",
        "quoted-number",
        "space",
        "exponent",
        "sign",
        "cr-only",
        "leading-blank",
        "blank-spaces",
        "long-integer",
    ],
)
def test_unusual_but_valid_input_falls_back_and_reads_the_same(tmp_path, text, caplog):
    path = tmp_path / "u.csv"
    path.write_text(text, newline="")
    with pytest.raises(_fastdense.Fallback):
        _fastdense.parse_fast(path, sep=",", dtype=np.dtype("float32"))
    with caplog.at_level(logging.INFO):
        fast = read_dense(path, orientation="genes_x_cells")
    assert "the fast one stepped aside" in caplog.text
    simple = read_dense(path, orientation="genes_x_cells", fast=False)
    assert fast.barcodes.tolist() == simple.barcodes.tolist()
    assert fast.symbols.tolist() == simple.symbols.tolist()
    assert (fast.counts != simple.counts).nnz == 0


def test_int32_overflow_falls_back(tmp_path):
    path = tmp_path / "o.csv"
    path.write_text(",A-1\nG1,3000000000\n")
    with pytest.raises(_fastdense.Fallback):
        _fastdense.parse_fast(path, sep=",", dtype=np.dtype("int32"))
    _header, _names, matrix = _fastdense.parse_fast(path, sep=",", dtype=np.dtype("float32"))
    assert matrix.toarray().tolist() == [[3e9]]


def error_message(path, **kwargs) -> str:
    with pytest.raises(ScingestError) as err:
        read_dense(path, **kwargs)
    return str(err.value)


@pytest.mark.parametrize(
    "data",
    [
        b",A-1,B-1\nG1,1,2\nG2,3,2.5\n",
        b",A-1,B-1\nG1,1,-2\n",
        b",A-1,B-1\nG1,nan,2\n",
        b",A-1,B-1\nG1,1,inf\n",
        b",A-1,B-1\nG1,1,abc\n",
        b",A-1,B-1\nG1,1,\n",
        b",A-1,B-1\nG1,1,2\nG2,1\n",
        b",A-1,B-1\r\nG1,1,2\r\nG2,1,2,3\r\n",
        b",A-1,B-1,C-1,D-1\nG1,1,2\n",
        b"",
        b"\n\n",
        b",A-1,B-1\n",
        b",A-1,B-1",
        b"\tA-1\tB-1\nG1\t1\t2\n",
        b",A-1\n\xff\xfeG1,1\n",
        b"\xff,A-1\nG1,1\n",
    ],
    ids=[
        "non-integer",
        "negative",
        "nan",
        "inf",
        "non-numeric",
        "empty-field",
        "ragged-short",
        "ragged-long-crlf",
        "header-too-long",
        "empty",
        "blank",
        "header-only",
        "header-only-no-newline",
        "wrong-separator",
        "bad-utf8-name",
        "bad-utf8-header",
    ],
)
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_errors_match_the_simple_path(tmp_path, data, gz):
    path = tmp_path / ("bad.csv.gz" if gz else "bad.csv")
    path.write_bytes(gzip.compress(data) if gz else data)
    simple = error_message(path, fast=False)
    assert error_message(path) == simple
    assert error_message(path, block_size=3) == simple


def test_nul_byte_error_passes_through_the_same(tmp_path):
    # the csv module's own error, not a ScingestError: whatever it is, both paths agree
    path = tmp_path / "nul.csv"
    path.write_bytes(b",A-1,B-1\nG1,1,2\x00\n")
    with pytest.raises(Exception) as simple:
        read_dense(path, fast=False)
    with pytest.raises(type(simple.value)) as fast:
        read_dense(path)
    assert str(fast.value) == str(simple.value)


@pytest.mark.parametrize("kind", ["truncated", "fake", "missing"])
def test_file_errors_match_the_simple_path(tmp_path, kind):
    genes, cells, counts, _options = random_case(5)
    good = write_dense(tmp_path / "g.csv.gz", genes, cells, counts, sep=",")
    path = tmp_path / "x.csv.gz"
    if kind == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "fake":
        path.write_bytes(gzip.decompress(good.read_bytes()))
    assert error_message(path, block_size=16) == error_message(path, fast=False)


def test_reader_threads_end_with_the_read(tmp_path):
    """The inflating and importing threads are joined on success, fallback and error."""
    good = tmp_path / "g.csv.gz"
    good.write_bytes(gzip.compress(b",A-1,B-1\nG1,0,3\nG2,1,0\n"))
    unusual = tmp_path / "u.csv"
    unusual.write_text(",A-1\nG1,1e3\n")
    bad = tmp_path / "b.csv"
    bad.write_text(",A-1,B-1\nG1,1,x\n")
    assert read_dense(good, orientation="genes_x_cells").counts.nnz == 2
    assert read_dense(unusual, orientation="genes_x_cells").counts.nnz == 1
    with pytest.raises(ScingestError, match="line 2"):
        read_dense(bad)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("scingest-")]


def test_importing_the_readers_leaves_anndata_to_the_first_read(tmp_path):
    """anndata loads while the first dense file is parsed, not when the package is imported."""
    path = tmp_path / "m.csv"
    path.write_text(",A-1,B-1\nG1,0,3\n")
    code = (
        "import sys; import scingest.readers as r; "
        "assert 'anndata' not in sys.modules and 'pandas' not in sys.modules, 'imported early'; "
        f"a = r.read_counts({str(path)!r}, orientation='genes_x_cells'); "
        "assert type(a).__module__.startswith('anndata'); "
        "assert r.read_mtx.__module__ == 'scingest.formats.mtx'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
