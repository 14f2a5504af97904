"""Archives as GEO ships them (GSE<n>_RAW.tar): safe, atomic, once-only unpacking.

The archives are made with Python's tarfile, the members' bytes read back with it: the
oracle is tarfile itself, not our unpacking.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

import pytest

from scingest.discovery import discover_samples
from scingest.errors import ScingestError
from scingest.files import archive_stem, unpack_archive

MEMBERS = {
    "GSM1_Ctrl1_counts.csv.gz": b"csv bytes",
    "GSM2_Ctrl2_matrix.mtx.gz": b"mtx bytes",
    "GSM2_Ctrl2_barcodes.tsv.gz": b"barcodes",
}


def make_tar(path: Path, members: dict[str, bytes], *, mode: str = "w", mtime: int = 1_600_000_000):
    """A tar of regular files, as GEO's RAW.tar (flat, one file per member)."""
    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = mtime
            tar.addfile(info, io.BytesIO(data))
    return path


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (hidden ones too), with a file's bytes."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
        for p in sorted(folder.rglob("*"))
    }


def test_archive_stem():
    assert archive_stem("GSE123_RAW.tar") == "GSE123_RAW"
    assert archive_stem("x/GSM1_Ctrl1.tar.gz") == "GSM1_Ctrl1"
    assert archive_stem("a.TGZ") == "a"
    assert archive_stem("GSM1_Ctrl1_counts.csv.gz") is None
    assert archive_stem(".tar") is None


@pytest.mark.parametrize("mode", ["w", "w:gz"], ids=["tar", "tar.gz"])
def test_unpacks_every_member_as_tarfile_reads_it(tmp_path, mode):
    suffix = ".tar" if mode == "w" else ".tar.gz"
    archive = make_tar(tmp_path / f"GSE123_RAW{suffix}", MEMBERS, mode=mode)
    into = tmp_path / "results" / "input"
    folder = unpack_archive(archive, into)
    assert folder == into / "GSE123_RAW"
    with tarfile.open(archive) as tar:
        expected = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    assert tree(folder) == expected
    for name in expected:  # the times the archive holds, as tar keeps them
        assert (folder / name).stat().st_mtime == 1_600_000_000
    # nothing but the folder and its hidden stamp
    assert sorted(p.name for p in into.iterdir()) == [".GSE123_RAW.unpacked.json", "GSE123_RAW"]


def unsafe_members() -> dict[str, tuple[tarfile.TarInfo, str]]:
    """One unsafe member per case, with what the error must say."""

    def info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
        member = tarfile.TarInfo(name)
        member.type = kind
        member.linkname = link
        return member

    return {
        "absolute": (info("/tmp/scingest-escape.csv"), "has an absolute path"),
        "dotdot": (info("../escape.csv"), "has '..' in its path"),
        "dotdot-inner": (info("data/../../escape.csv"), "has '..' in its path"),
        "symlink": (info("GSM9_X1.h5", tarfile.SYMTYPE, "/etc/passwd"), "is a symbolic link"),
        "hardlink": (info("GSM9_X1.h5", tarfile.LNKTYPE, "../outside"), "is a hard link"),
        "chardev": (info("GSM9_null", tarfile.CHRTYPE), "is a device file"),
        "blockdev": (info("GSM9_sda", tarfile.BLKTYPE), "is a device file"),
        "fifo": (info("GSM9_pipe", tarfile.FIFOTYPE), "is a named pipe"),
    }


@pytest.mark.parametrize("case", list(unsafe_members()))
def test_unsafe_members_are_refused_naming_them_and_nothing_is_written(tmp_path, case):
    member, message = unsafe_members()[case]
    work = tmp_path / "work"
    work.mkdir()
    archive = work / "GSE123_RAW.tar"
    with tarfile.open(archive, "w") as tar:
        ok = tarfile.TarInfo("GSM1_Ctrl1_counts.csv.gz")  # a good member before the bad one
        ok.size = 3
        tar.addfile(ok, io.BytesIO(b"abc"))
        tar.addfile(member, io.BytesIO(b"") if member.isfile() else None)
    before = tree(tmp_path)
    into = work / "results" / "input"
    with pytest.raises(ScingestError) as err:
        unpack_archive(archive, into)
    text = str(err.value)
    assert str(archive) in text and repr(member.name) in text and message in text
    assert "nothing was unpacked" in text
    assert tree(tmp_path) == before, "nothing written, inside or outside the results folder"
    assert not Path("/tmp/scingest-escape.csv").exists()
    # the same through discovery, with the archive inside input_dir
    with pytest.raises(ScingestError, match=message):
        discover_samples(work, unpack_into=into)
    assert tree(tmp_path) == before


def test_unpacks_once_and_a_touched_archive_is_not_unpacked_again(tmp_path):
    archive = make_tar(tmp_path / "GSE123_RAW.tar", MEMBERS)
    into = tmp_path / "results" / "input"
    folder = unpack_archive(archive, into)
    first = {n: (folder / n).stat() for n in MEMBERS}
    assert unpack_archive(archive, into) == folder
    os.utime(archive, (2_000_000_000, 2_000_000_000))  # touched, not changed
    assert unpack_archive(archive, into) == folder
    for name, st in first.items():
        now = (folder / name).stat()
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), name


def test_a_changed_archive_keeps_the_times_of_unchanged_files(tmp_path):
    archive = make_tar(tmp_path / "GSE123_RAW.tar", MEMBERS)
    into = tmp_path / "results" / "input"
    folder = unpack_archive(archive, into)
    before = {n: (folder / n).stat().st_mtime_ns for n in MEMBERS}
    changed = {**MEMBERS, "GSM1_Ctrl1_counts.csv.gz": b"new csv bytes", "GSM3_Pre1.h5ad": b"h5"}
    # re-packed with other (older) member times, one member changed, one added
    make_tar(archive, changed, mtime=1_500_000_000)
    start = time.time()
    assert unpack_archive(archive, into) == folder
    assert tree(folder) == changed
    for name in ("GSM2_Ctrl2_matrix.mtx.gz", "GSM2_Ctrl2_barcodes.tsv.gz"):
        assert (folder / name).stat().st_mtime_ns == before[name], f"{name} unchanged: same time"
    # the changed file is newer than anything made from the old one (Snakemake reruns it)
    assert (folder / "GSM1_Ctrl1_counts.csv.gz").stat().st_mtime >= int(start)
    assert (folder / "GSM3_Pre1.h5ad").stat().st_mtime == 1_500_000_000  # new: as archived
    assert sorted(p.name for p in into.iterdir()) == [".GSE123_RAW.unpacked.json", "GSE123_RAW"]


def test_a_file_removed_from_the_unpacked_folder_is_restored(tmp_path):
    archive = make_tar(tmp_path / "GSE123_RAW.tar", MEMBERS)
    into = tmp_path / "results" / "input"
    folder = unpack_archive(archive, into)
    (folder / "GSM1_Ctrl1_counts.csv.gz").unlink()
    unpack_archive(archive, into)
    assert tree(folder) == MEMBERS


def test_a_failed_unpacking_leaves_nothing_behind(tmp_path, monkeypatch):
    archive = make_tar(tmp_path / "GSE123_RAW.tar", MEMBERS)
    into = tmp_path / "results" / "input"

    def full_disk(self, path, *args, **kwargs):
        (Path(path) / "partial").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tarfile.TarFile, "extractall", full_disk)
    with pytest.raises(ScingestError, match=r"GSE123_RAW\.tar: unpacking .* No space left"):
        unpack_archive(archive, into)
    assert list(into.iterdir()) == [], "no half-unpacked folder, no stamp"


def test_a_killed_unpacking_leaves_a_hidden_folder_the_next_run_removes(tmp_path):
    archive = make_tar(tmp_path / "GSE123_RAW.tar", MEMBERS)
    into = tmp_path / "results" / "input"
    killed = into / ".GSE123_RAW.abc123.tmp"  # what a SIGKILL mid-extract leaves
    killed.mkdir(parents=True)
    (killed / "GSM1_Ctrl1_counts.csv.gz").write_bytes(b"cs")
    folder = unpack_archive(archive, into)
    assert tree(folder) == MEMBERS
    assert not killed.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"not a tar at all, just text" * 40, "cannot read it as a tar archive"),
    ],
    ids=["empty", "not-tar"],
)
def test_unreadable_archives_are_refused(tmp_path, content, message):
    archive = tmp_path / "GSE123_RAW.tar"
    archive.write_bytes(content)
    into = tmp_path / "results" / "input"
    with pytest.raises(ScingestError, match=message):
        unpack_archive(archive, into)
    assert not into.exists()


def test_a_truncated_archive_is_refused(tmp_path):
    big = {"GSM1_Ctrl1_counts.csv.gz": os.urandom(20_000), "GSM2_Ctrl2.h5ad": os.urandom(20_000)}
    archive = make_tar(tmp_path / "GSE123_RAW.tar", big)
    archive.write_bytes(archive.read_bytes()[:25_000])  # cut inside the second member
    into = tmp_path / "results" / "input"
    with pytest.raises(ScingestError, match=r"GSE123_RAW\.tar: .*truncated download"):
        unpack_archive(archive, into)
    assert not into.exists() or list(into.iterdir()) == []
