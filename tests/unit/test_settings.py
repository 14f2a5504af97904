"""scingest.settings: --config values read as YAML, and one clear message per config error."""

from __future__ import annotations

import importlib
import sys
from importlib import metadata

import pytest
import yaml

from conftest import REPO
from helpers.collection import fake_distribution
from scingest.settings import (
    collection_problem,
    config_error,
    doc_line,
    unmet_requirements,
    yaml_cli_values,
)

SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
DEFAULTS = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
DOC = REPO / "config" / "README.md"


def cli(**given):
    """The config as Snakemake hands it over: defaults, then --config values as it parsed them."""
    return {**DEFAULTS, **given}, list(given)


def test_yaml_spellings_become_booleans_nulls_and_lists():
    # what Snakemake's parse_config makes of filter_merged=true qc_max_pct_mt=null ...
    config, keys = cli(
        filter_merged="true",
        ignore_unmatched="false",
        qc_max_pct_mt="null",
        genome="null",
        percent_top=["10", "20"],
        qc_group_by="~",
    )
    changed = yaml_cli_values(config, keys, SCHEMA)
    assert config["filter_merged"] is True and config["ignore_unmatched"] is False
    assert config["qc_max_pct_mt"] is None and config["genome"] is None
    assert config["percent_top"] == [10, 20]
    assert config["qc_group_by"] is None
    assert set(changed) == set(keys)
    assert config_error(config, SCHEMA, DOC) is None


def test_text_keys_stay_text():
    pattern = r"^(?P<sample>[a-z]+)_rep(?P<replicate>\d+)\.csv\.gz$"
    config, keys = cli(
        input_dir="true", filename_pattern=pattern, samples="[a].tsv", h5ad_layer="counts"
    )
    assert yaml_cli_values(config, keys, SCHEMA) == {}
    assert config["input_dir"] == "true" and config["filename_pattern"] == pattern
    assert config["samples"] == "[a].tsv"


def test_only_command_line_keys_are_read_again():
    config, _ = cli(filter_merged="true")
    assert yaml_cli_values(config, [], SCHEMA) == {}
    assert config["filter_merged"] == "true"
    assert "'filter_merged': 'true' is not of type 'boolean'" in config_error(config, SCHEMA, DOC)


def test_a_value_that_fits_no_reading_keeps_its_error():
    config, keys = cli(join="sideways", percent_top=["10", "x"])
    yaml_cli_values(config, keys, SCHEMA)
    message = config_error(config, SCHEMA, DOC)
    assert message.startswith("config key 'join': 'sideways' is not one of ['inner', 'outer']")
    assert "config/README.md line" in message and "| `join` |" in message


def test_typo_names_the_closest_key_and_its_doc_line():
    config, _ = cli(input_dri="data")
    message = config_error(config, SCHEMA, DOC)
    assert message.startswith("unknown config key 'input_dri': did you mean input_dir?")
    lines = DOC.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("| `input_dir` |"))
    assert f"config/README.md line {number}:" in message
    config, _ = cli(zzzz=1)
    assert "unknown config key 'zzzz'. The keys are listed in config/README.md" in config_error(
        config, SCHEMA, DOC
    )


def test_every_schema_key_has_a_doc_line():
    for key in SCHEMA["properties"]:
        assert doc_line(DOC, key), key


def test_what_snakemake_parses_from_the_command_line_validates():
    """The README's spellings, through Snakemake's own --config parser."""
    from snakemake.cli import parse_config

    given = parse_config(
        [
            "filter_merged=true",
            "ignore_unmatched=True",
            "qc_max_pct_mt=null",
            "percent_top=[10, 20]",
            "genome=null",
            "input_dir=/data/GSE174188",
            r"filename_pattern=^(?P<sample>[a-z]+)_rep(?P<replicate>\d+)\.csv\.gz$",
        ]
    )
    assert given["filter_merged"] == "true" and given["percent_top"] == ["10", "20"]
    config = {**DEFAULTS, **given}
    assert config_error(config, SCHEMA, DOC) is not None  # as Snakemake leaves them
    yaml_cli_values(config, list(given), SCHEMA)
    assert config_error(config, SCHEMA, DOC) is None
    assert config["filter_merged"] is True and config["ignore_unmatched"] is True
    assert config["percent_top"] == [10, 20] and config["qc_max_pct_mt"] is None
    assert config["filename_pattern"] == given["filename_pattern"]


def test_check_config_fills_defaults_and_names_the_first_problem():
    from scingest.settings import check_config

    config = {"input_dir": "elsewhere", "filter_merged": "true"}
    assert check_config(config, ["filter_merged"], repo=REPO) is None
    assert config["input_dir"] == "elsewhere" and config["filter_merged"] is True
    assert set(config) == set(DEFAULTS)  # every key not given takes its default
    wrong = {"input_dri": "data"}
    assert "did you mean input_dir?" in check_config(wrong, [], repo=REPO)


def test_options_of_a_sample_are_the_configs_with_its_rows_overrides():
    from scingest.options import QC_OVERRIDE_COLUMNS, ReaderOptions
    from scingest.settings import qc_options, reader_options

    reader = reader_options(DEFAULTS, {"orientation": "cells_x_genes", "genome": "GRCh38"})
    reader = reader.params()
    assert set(reader) == set(ReaderOptions.names(config=True))
    assert reader["orientation"] == "cells_x_genes" and reader["genome"] == "GRCh38"
    assert reader["dtype"] == DEFAULTS["dtype"]
    qc = qc_options(DEFAULTS, {"qc_nmads": 3.5})
    limits = qc.outlier_limits()
    assert set(limits) == {c.removeprefix("qc_") for c in QC_OVERRIDE_COLUMNS}
    assert limits["nmads"] == 3.5 and limits["nmads_mt"] == DEFAULTS["qc_nmads_mt"]
    assert qc.gene_set_regex() == {
        "mt": DEFAULTS["mito_regex"],
        "ribo": DEFAULTS["ribo_regex"],
        "hb": DEFAULTS["hb_regex"],
    }
    assert list(qc.percent_top) == list(DEFAULTS["percent_top"])


# --- the collection's packages (collection_problem) ------------------------------------------


def test_collection_none_is_never_a_problem(monkeypatch):
    monkeypatch.setitem(sys.modules, "tiledbsoma", None)
    assert collection_problem("none") is None


@pytest.mark.parametrize(("kind", "package"), [("soma", "tiledbsoma"), ("cellarr", "cellarr")])
def test_a_collection_package_that_cannot_be_imported_is_named_with_the_ways_out(
    monkeypatch, kind, package
):
    monkeypatch.setitem(sys.modules, package, None)  # Python's import block
    with pytest.raises(ImportError):
        importlib.import_module(package)
    problem = collection_problem(kind)
    assert problem is not None
    assert problem.startswith(f"collection: {kind} needs {package} (the collection extra)")
    assert f"{package} cannot be imported here" in problem
    for way in ("--software-deployment-method conda", "pandas < 3", "collection: none"):
        assert way in problem


def test_unmet_requirements_follow_the_installed_versions(tmp_path, monkeypatch):
    """Each Requires-Dist line checked against what importlib.metadata finds installed;
    extras' requirements and those whose marker does not hold left out."""
    pandas = metadata.version("pandas")
    major = int(pandas.split(".")[0])
    fake_distribution(
        tmp_path,
        "tiledbsoma",
        "2.3.0",
        [
            f"pandas<{major}",  # unmet
            f"pandas>={major}",  # met
            "numpy",  # met
            "surely-not-installed-scingest-test>=1",  # not installed
            'pytest-cov; extra == "dev"',  # an extra's: left out
            'importlib-metadata; python_version < "3.8"',  # marker false: left out
        ],
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    dist = metadata.distribution("tiledbsoma")
    assert dist.version == "2.3.0"
    assert unmet_requirements(dist) == [
        f"pandas<{major} (installed: {pandas})",
        "surely-not-installed-scingest-test>=1 (not installed)",
    ]
    problem = collection_problem("soma")
    assert problem is not None
    assert f"tiledbsoma 2.3.0 is installed, but needs pandas<{major} (installed: {pandas})" in (
        problem
    )


def test_installed_collection_packages_with_their_requirements_met_pass(tmp_path, monkeypatch):
    fake_distribution(tmp_path, "cellarr", "0.6.2", ["pandas", "numpy>=1"])
    monkeypatch.syspath_prepend(str(tmp_path))
    assert collection_problem("cellarr") is None
