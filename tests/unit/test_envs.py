"""envs/*.yaml stay in step with pyproject.toml, and every rule names its env file.

envs/scingest.yaml holds the library's dependencies; envs/collection.yaml, the environment of
rule build_collection alone, adds the collection extra (TileDB-SOMA and cellarr require
pandas < 3, which the rest of the workflow does not). Conda channels cannot be reached from
here, so the env files are never solved in CI; this keeps their packages and version ranges
equal to the pip dependencies that are tested.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[2]
ENV_FILE = REPO / "envs" / "scingest.yaml"
#: env file -> the pyproject extras it holds besides the dependencies
ENV_EXTRAS = {ENV_FILE: (), REPO / "envs" / "collection.yaml": ("collection",)}
#: rules that name another env file than ENV_FILE
RULE_ENVS = {"build_collection": REPO / "envs" / "collection.yaml"}

#: PyPI name -> conda-forge/bioconda name where they differ
CONDA_NAME = {
    "snakemake": "snakemake-minimal",
    "isal": "python-isal",
    "matplotlib": "matplotlib-base",
    "tiledbsoma": "tiledbsoma-py",
}
#: conda packages that are no pip dependency of the library
CONDA_ONLY = {"python", "pip"}


def pip_dependencies(extras: tuple[str, ...] = ()) -> dict[str, SpecifierSet]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    optional = project["optional-dependencies"]
    reqs += [Requirement(r) for extra in extras for r in optional[extra]]
    return {CONDA_NAME.get(r.name.lower(), r.name.lower()): r.specifier for r in reqs}


def conda_dependencies(env_file: Path = ENV_FILE) -> dict[str, SpecifierSet]:
    env = yaml.safe_load(env_file.read_text())
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):  # the pip: section: packages conda does not have
            for line in dep["pip"]:
                if not line.startswith("-e"):
                    req = Requirement(line)
                    out[req.name.lower()] = req.specifier
            continue
        name, _, spec = dep.strip().partition(" ")
        # conda's "a,b" is an AND of ranges as in pip; "=1.2" (conda's prefix match) is not
        # used here on purpose
        out[name.lower()] = SpecifierSet(spec.replace(" ", ""))
    return out


ENV_IDS = [path.name for path in ENV_EXTRAS]


@pytest.mark.parametrize(("env_file", "extras"), ENV_EXTRAS.items(), ids=ENV_IDS)
def test_env_file_has_every_pip_dependency_with_the_same_range(env_file, extras):
    pip, conda = pip_dependencies(extras), conda_dependencies(env_file)
    missing = sorted(set(pip) - set(conda))
    extra = sorted(set(conda) - set(pip) - CONDA_ONLY)
    differ = {name: (str(pip[name]), str(conda[name])) for name in set(pip) & set(conda)}
    differ = {k: v for k, v in differ.items() if SpecifierSet(v[0]) != SpecifierSet(v[1])}
    assert not missing, f"{env_file.name} lacks {missing} (pyproject.toml dependencies)"
    assert not extra, f"{env_file.name} has {extra}, which pyproject.toml does not list"
    assert not differ, f"version ranges differ (pyproject, conda): {differ}"


@pytest.mark.parametrize("env_file", ENV_EXTRAS, ids=ENV_IDS)
def test_env_file_python_matches_requires_python(env_file):
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert conda_dependencies(env_file)["python"] == SpecifierSet(project["requires-python"])


@pytest.mark.parametrize("env_file", ENV_EXTRAS, ids=ENV_IDS)
def test_env_file_installs_the_library_from_this_checkout(env_file):
    env = yaml.safe_load(env_file.read_text())
    pip_section = [d for d in env["dependencies"] if isinstance(d, dict)]
    assert pip_section, "no pip: section installing scingest"
    # paths in a conda env file are relative to the file itself
    (target,) = [p for p in pip_section[0]["pip"] if p.startswith("-e")]
    root = (env_file.parent / target.removeprefix("-e").strip()).resolve()
    assert (root / "pyproject.toml").is_file() and root == REPO


def rule_blocks() -> list[tuple[str, str, str]]:
    """(file, rule name, body) of every rule in the workflow's rule files."""
    blocks = []
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        starts = list(re.finditer(r"^(?:rule|checkpoint) (\w+):\n", text, re.MULTILINE))
        for i, m in enumerate(starts):
            body = text[m.end() : starts[i + 1].start() if i + 1 < len(starts) else None]
            body = re.split(r"^\S", body, maxsplit=1, flags=re.MULTILINE)[0]
            blocks.append((smk.name, m.group(1), body))
    return blocks


RULES = rule_blocks()


def test_the_workflow_has_rules():
    names = {name for _, name, _ in RULES}
    assert {"ingest_sample", "merge_samples"} <= names


@pytest.mark.parametrize(("smk", "rule", "body"), RULES, ids=[r[1] for r in RULES])
def test_every_rule_names_the_env(smk, rule, body):
    match = re.search(r"^\s+conda:\s*\n\s+\"([^\"]+)\"", body, re.MULTILINE)
    assert match, f"{smk}: rule {rule} has no conda: directive"
    env = (REPO / "workflow" / "rules" / match.group(1)).resolve()
    expected = RULE_ENVS.get(rule, ENV_FILE)
    assert env == expected, f"{smk}: rule {rule} names {env}, not {expected}"


@pytest.mark.parametrize(("smk", "rule", "body"), RULES, ids=[r[1] for r in RULES])
def test_every_cluster_rule_declares_threads_and_resources(smk, rule, body):
    if re.search(r"^\s+localrule:\s*True", body, re.MULTILINE):
        pytest.skip("local rule: runs on the submitting host, never submitted")
    for key in ("threads:", "mem_mb=", "runtime="):
        assert key in body, f"{smk}: rule {rule} declares no {key.rstrip(':=')}"
