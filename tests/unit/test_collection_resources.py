"""The collection job's resource request (get_collection_mem_mb / get_collection_runtime in
common.smk) follows its inputs and grows with the attempt."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from conftest import REPO


def collection_functions(kind: str):
    source = (REPO / "workflow" / "rules" / "common.smk").read_text()
    blocks = re.split(r"\n(?=[^\s)\]}])", source)
    wanted = ("def get_collection_mem_mb(", "def get_collection_runtime(", "INGEST_MEM_BASE_MB")
    namespace = {"Path": Path, "config": {"collection": kind}}
    exec("\n".join(b for b in blocks if b.startswith(wanted)), namespace)
    return namespace["get_collection_mem_mb"], namespace["get_collection_runtime"]


def test_collection_request_follows_the_checkpoints(tmp_path):
    small, huge = tmp_path / "a.h5ad", tmp_path / "c.h5ad"
    small.write_bytes(b"\0" * 10**5)
    with open(huge, "wb") as fh:
        fh.truncate(3 * 10**9)  # a sparse file: 3 GB by its size, nothing on disk
    mem, runtime = collection_functions("soma")
    few = SimpleNamespace(h5ads=[str(small)])
    one_big = SimpleNamespace(h5ads=[str(huge)])
    many = SimpleNamespace(h5ads=[str(small)] * 50 + [str(huge)])
    assert mem(None, few, 1) == 2000  # the floor
    assert mem(None, few, 2) == 4000
    assert mem(None, one_big, 1) == 800 + 2 * 3000
    # soma holds one checkpoint at a time: the request does not grow with their number
    assert mem(None, many, 1) == mem(None, one_big, 1)
    assert runtime(None, few, 1) == 30
    assert runtime(None, many, 1) > runtime(None, few, 1)
    assert runtime(None, many, 2) == 2 * runtime(None, many, 1)
    # cellarr holds all of them
    mem_c, _ = collection_functions("cellarr")
    assert mem_c(None, SimpleNamespace(h5ads=[str(huge)] * 2), 1) == 800 + 2500 + 4 * 6000
