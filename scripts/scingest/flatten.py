"""A copy of an h5ad file without HDF5 virtual datasets, for readers that do not follow them.

``merged.h5ad`` joins each sample's stored part of ``X`` (and of ``obs`` columns) with HDF5
virtual datasets (``_parts`` groups hold the parts). Readers built on libhdf5 (h5py, anndata,
R's hdf5r and rhdf5, HDF5.jl) read them as ordinary arrays; readers that are not (pure
JavaScript or Rust HDF5 readers) may not follow the mapping and can read zeros without an
error. :func:`flatten_h5ad` writes a copy where every virtual dataset is an ordinary one,
block by block (memory: one block, whatever the file's size), and every other object is
copied as stored (compressed chunks unchanged; hard links, as ``layers/counts`` -> ``X``,
kept). Run it as::

    python -m scingest.flatten results/merged.h5ad results/merged_flat.h5ad
"""

from __future__ import annotations

import sys
from os import PathLike
from pathlib import Path

from .errors import ScingestError
from .files import atomic_path, open_hdf5
from .h5concat import PARTS

#: Values copied at once from a virtual dataset (8 MiB of float32).
BLOCK = 2**21


def flatten_h5ad(path: str | PathLike[str], out: str | PathLike[str]) -> int:
    """Copy ``path`` to ``out`` with every virtual dataset written as an ordinary one.

    Parameters
    ----------
    path
        An h5ad file (e.g. ``merged.h5ad``).
    out
        The copy; written under a temporary name and renamed when complete.

    Returns
    -------
    How many virtual datasets were written out.

    Raises
    ------
    ScingestError
        When ``path`` is not an HDF5 file, or ``out`` is ``path``.
    """
    import h5py

    path, out = Path(path), Path(out)
    if out.resolve() == path.resolve():
        raise ScingestError("the flat copy must be another file than the input", path=path)
    source = open_hdf5(path, "an h5ad file")
    written = 0
    with source, atomic_path(out) as tmp, h5py.File(tmp, "w") as target:
        seen: dict[object, str] = {}  # object id (equal for hard links) -> its path in the copy
        for key, value in source.attrs.items():
            target.attrs[key] = value

        def copy(group: h5py.Group, into: h5py.Group) -> None:
            nonlocal written
            for name, item in group.items():
                if name == PARTS:
                    continue  # the parts are read through the virtual datasets below
                if item.id in seen:  # a hard link: the same object again
                    into[name] = into.file[seen[item.id]]
                    continue
                seen[item.id] = f"{into.name.rstrip('/')}/{name}"
                if isinstance(item, h5py.Dataset) and item.is_virtual:
                    _write_out(item, into, name)
                    written += 1
                elif isinstance(item, h5py.Group) and _holds_virtual(item):
                    sub = into.create_group(name)
                    for key, value in item.attrs.items():
                        sub.attrs[key] = value
                    copy(item, sub)
                else:
                    group.copy(item, into, name=name)

        copy(source, target)
    return written


def _holds_virtual(group) -> bool:
    import h5py

    found = []
    group.visititems(
        lambda _, item: (
            found.append(True) if isinstance(item, h5py.Dataset) and item.is_virtual else None
        )
    )
    return bool(found)


def _write_out(dataset, into, name: str) -> None:
    """An ordinary dataset of a virtual one's values, written block by block."""
    length = dataset.shape[0] if dataset.shape else 0
    target = into.create_dataset(
        name,
        shape=dataset.shape,
        dtype=dataset.dtype,
        chunks=True if length else None,
        compression="gzip" if length else None,
        compression_opts=1 if length else None,
    )
    for start in range(0, length, BLOCK):
        target[start : start + BLOCK] = dataset[start : start + BLOCK]
    for key, value in dataset.attrs.items():
        target.attrs[key] = value


def main(argv: list[str] | None = None) -> int:
    """``python -m scingest.flatten IN OUT``: :func:`flatten_h5ad`, saying what it did."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m scingest.flatten IN.h5ad OUT.h5ad", file=sys.stderr)
        return 2
    try:
        n = flatten_h5ad(args[0], args[1])
    except ScingestError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args[1]}: a copy of {args[0]} with {n} virtual dataset(s) written out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
