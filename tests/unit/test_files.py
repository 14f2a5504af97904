"""scingest.files: writes that leave nothing half-written behind."""

from __future__ import annotations

import pytest

from scingest.errors import ScingestError
from scingest.files import atomic_path


def test_atomic_write_error_is_clear_and_leaves_nothing(tmp_path):
    target = tmp_path / "x.h5ad"
    with (
        pytest.raises(ScingestError, match=r"x\.h5ad: writing failed: No space left"),
        atomic_path(target) as tmp,
    ):
        raise OSError(28, "No space left on device", str(tmp))
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_renames_only_on_success(tmp_path):
    target = tmp_path / "x.h5ad"
    with atomic_path(target) as tmp:
        tmp.write_text("complete")
        assert not target.exists(), "nothing under the final name while writing"
    assert target.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["x.h5ad"]
