"""The documentation's commands, run as written, and its links, kept inside the repository.

Every ``snakemake`` command in a ``bash`` block of README.md and docs/ runs here with the
block's paths pointed at data made by the test (``/data/GSE174188`` a GEO-style folder,
``/data/GSE174188_RAW.tar`` an archive of it, ``my_sheet.tsv`` a sheet, ...): a real run
first, then each command as written, a dry run (``-n``) where it would start jobs, for real
where it reads a run's outputs (``--report``, ``python -m scingest.flatten``). A command
that no longer parses, names a config key or profile that is gone, or points at a file
that moved fails here.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import REPO, make_geo_folder, snakemake_cmd

DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
#: What the docs' example paths stand for here (filled by the project fixture)
PLACEHOLDERS = (
    "/data/GSE174188_RAW.tar",
    "/data/GSE174188",
    "~/src/scingest/Snakefile",
    "~/projects/lung",
)


def bash_blocks(path: Path) -> list[list[str]]:
    """The command lines of each ``bash`` block (comments dropped, ``\\`` lines joined)."""
    blocks, current = [], None
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if current is None and stripped.startswith("```bash"):
            current = []
        elif current is not None and stripped.startswith("```"):
            text = "\n".join(current).replace("\\\n", " ")
            blocks.append(
                [c for c in (ln.strip() for ln in text.splitlines()) if c and not c.startswith("#")]
            )
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def doc_commands() -> list[tuple[str, str, str]]:
    """(doc, working folder, command) of every snakemake or scingest command in the docs."""
    found = []
    for doc in DOCS:
        for block in bash_blocks(doc):
            cwd = "."
            for command in block:
                command = command.split("  #")[0].strip()
                if command.startswith("cd "):
                    cwd = command[3:].strip()
                elif command.startswith(("snakemake ", "python -m scingest.")):
                    found.append((str(doc.relative_to(REPO)), cwd, command))
    return found


COMMANDS = doc_commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 10, COMMANDS
    assert any("--report" in c for _, _, c in COMMANDS)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> dict[str, Path]:
    """A working folder ("this folder") with the data the docs' examples name, after one real
    run of the README's first command."""
    root = tmp_path_factory.mktemp("docs")
    work = root / "clone"
    work.mkdir()
    # "this folder" is a clone: config/config.yaml's input_dir (example/data) is there
    (work / "example").symlink_to(REPO / "example", target_is_directory=True)
    series = root / "GSE174188"
    make_geo_folder(series)
    with tarfile.open(root / "GSE174188_RAW.tar", "w") as tar:
        for f in sorted(series.iterdir()):
            tar.add(f, arcname=f.name)
    lung = root / "lung"
    make_geo_folder(lung / "rawdata")
    (lung / "my_config.yaml").write_text("input_dir: rawdata\n")
    make_geo_folder(work / "rawdata")
    files = sorted(series.iterdir())
    (work / "my_sheet.tsv").write_text(
        "sample\tpath\tcondition\n" + "".join(f"S{i}\t{f}\tCtrl\n" for i, f in enumerate(files))
    )
    data = work / "data"  # the custom pattern's example: ctrl_rep1.csv.gz
    data.mkdir()
    for i, f in enumerate(files[:2], start=1):
        (data / f"ctrl_rep{i}.csv.gz").write_bytes(f.read_bytes())
    paths = {
        "/data/GSE174188_RAW.tar": root / "GSE174188_RAW.tar",
        "/data/GSE174188": series,
        "~/src/scingest/Snakefile": REPO / "Snakefile",
        "~/projects/lung": lung,
    }
    # the runs the docs' --report commands report on, as the docs run them
    for command, cwd in (
        ("snakemake --cores 2 --config input_dir=/data/GSE174188", "."),
        (
            "snakemake --snakefile ~/src/scingest/Snakefile --cores 2 --config input_dir=rawdata",
            "~/projects/lung",
        ),
    ):
        done = run_doc_command(command, cwd, work, paths, dry=False)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {"work": work, **paths}


def run_doc_command(
    command: str, cwd: str, work: Path, paths: dict[str, Path], *, dry: bool
) -> subprocess.CompletedProcess:
    for placeholder in PLACEHOLDERS:
        command = command.replace(placeholder, str(paths[placeholder]))
    for placeholder in PLACEHOLDERS:
        cwd = cwd.replace(placeholder, str(paths[placeholder]))
    args = shlex.split(command)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(REPO / "scripts")}
    if args[0] == "python":
        args[0] = sys.executable
    else:
        args = [*snakemake_cmd(), *args[1:]]
        if "--snakefile" not in args:  # "from this folder": the clone's workflow
            args += ["--snakefile", str(REPO / "Snakefile")]
        if "--profile" in args:
            at = args.index("--profile") + 1
            args[at] = str(REPO / args[at])
        if dry and "-n" not in args and "--report" not in args:
            args.append("-n")
    folder = work if cwd == "." else Path(cwd)
    return subprocess.run(args, cwd=folder, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize(
    ("doc", "cwd", "command"), COMMANDS, ids=[f"{d}: {c}" for d, _, c in COMMANDS]
)
def test_doc_command_runs_as_written(project, doc, cwd, command):
    if (
        "profiles/slurm" in command
        and importlib.util.find_spec("snakemake_executor_plugin_slurm") is None
    ):
        pytest.skip("the SLURM executor plugin is not installed (CI's Python 3.13 run has it)")
    if "collection=soma" in command and importlib.util.find_spec("tiledbsoma") is None:
        pytest.skip("the collection extra is not installed here (CI's other runs have it)")
    dry = not (command.startswith("python") or "--report" in command)
    done = run_doc_command(command, cwd, project["work"], project, dry=dry)
    assert done.returncode == 0, f"{doc}: {command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    if "--report" in command:
        folder = project["work"] if cwd == "." else project["~/projects/lung"]
        assert (folder / "report.html").stat().st_size > 0


LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


@pytest.mark.parametrize(
    "doc",
    [*DOCS, REPO / "config" / "README.md", REPO / "CONTRIBUTING.md", REPO / "bench" / "README.md"],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_links_stay_inside_the_repository(doc):
    """Every relative link names a file of the repository (a user's clone has nothing else)."""
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)  # code is not links
    text = re.sub(r"`[^`]*`", "", text)
    for target, _ in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        resolved = (doc.parent / target).resolve()
        assert REPO in resolved.parents or resolved == REPO, (
            f"{doc.name}: {target} leaves the repository"
        )
        assert resolved.exists(), f"{doc.name}: {target} does not exist"
