"""scingest.options: each option defined once, and everything that states it again kept in step.

The reader and QC options are dataclass fields (type, default, sheet role); the config
schema, config/config.yaml, config/README.md, the sheet schema, read_counts' signature and
the QC criteria table each restate part of them, and are checked against the fields here.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing

import pytest
import yaml

from conftest import REPO
from scingest.errors import ScingestError
from scingest.options import (
    OVERRIDE,
    RUN_WIDE,
    QcOptions,
    ReaderOptions,
    split_options,
)

CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
DOC = (REPO / "config" / "README.md").read_text()
SHEET_SCHEMA = yaml.safe_load(
    (REPO / "scripts" / "scingest" / "schemas" / "samples.schema.yaml").read_text()
)
CLASSES = (ReaderOptions, QcOptions)
#: JSON Schema type names of the Python types a field may take.
JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}


def config_fields():
    for cls in CLASSES:
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if field.metadata.get("config", True):
                yield cls, field, hints[field.name]


def json_types(kind) -> set[str]:
    """The JSON types of a field's type: ``str | None`` -> string, null; a tuple -> array."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(json_types(k) for k in typing.get_args(kind)))
    if origin is typing.Literal:
        return {JSON_TYPES[type(v)] for v in typing.get_args(kind)}
    if origin is tuple:
        return {"array"}
    found = {JSON_TYPES[kind]}
    return found | ({"integer"} if kind is float else set())  # a number may be written 5


def same(a, b) -> bool:
    """Equal as config values: a tuple default and a YAML list, 5 and 5.0."""
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return list(a) == list(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def doc_default(key: str) -> object:
    """The default column of the key's row in config/README.md, read as YAML."""
    row = re.search(rf"^\| `{key}` \| `([^`]*)` \|", DOC, re.M)
    assert row, f"no `| key | default | meaning |` row for {key} in config/README.md"
    return yaml.safe_load(row[1])


@pytest.mark.parametrize(
    ("cls", "field", "kind"), list(config_fields()), ids=[f.name for _, f, _ in config_fields()]
)
def test_every_option_is_a_config_key_with_its_default_type_and_doc(cls, field, kind):
    key = field.name
    assert key in CONFIG, f"{key} not in config/config.yaml"
    assert key in SCHEMA["properties"], f"{key} not in config.schema.yaml"
    spec = SCHEMA["properties"][key]
    assert same(CONFIG[key], field.default), (key, CONFIG[key], field.default)
    assert same(spec["default"], field.default), (key, spec["default"], field.default)
    assert same(doc_default(key), field.default), (key, doc_default(key), field.default)
    schema_types = set(spec["type"] if isinstance(spec["type"], list) else [spec["type"]])
    assert schema_types <= json_types(kind), (key, schema_types, kind)
    if typing.get_origin(kind) is typing.Literal:
        assert spec["enum"] == list(typing.get_args(kind)), key
    doc = inspect.getdoc(cls)
    assert re.search(rf"^{key}\b|, {key}\b", doc, re.M), f"{cls.__name__} does not document {key}"


def test_every_config_key_of_a_sample_job_is_an_option():
    """The keys of the other stages (discovery, merge, plots, collection) are no options."""
    options = {f.name for _, f, _ in config_fields()}
    others = {
        "input_dir",
        "filename_pattern",
        "ignore_unmatched",
        "samples",
        "qc_group_by",
        "filter_merged",
        "filter_min_cells",
        "join",
        "compression",
        "collection",
    }
    assert set(SCHEMA["properties"]) == options | others
    assert not options & others


def test_the_sheet_schema_has_a_column_for_every_override_and_none_else():
    properties = SHEET_SCHEMA["properties"]
    overrides = {
        name: cls for cls in CLASSES for name in cls.names(sheet=OVERRIDE)
    }  # reader and QC options a sheet column sets for one sample
    assert set(properties) == {"sample", "path", "format", *overrides}
    for name in overrides:
        config = SCHEMA["properties"][name]
        sheet = properties[name]
        config_types = set(config["type"] if isinstance(config["type"], list) else [config["type"]])
        assert {sheet["type"]} == config_types - {"null"}, name  # an empty cell: the config's
        assert set(sheet.get("enum", [])) <= set(config.get("enum", [])), name
        assert name in sheet["description"], name
    for cls in CLASSES:
        assert not set(cls.names(sheet=RUN_WIDE)) & set(properties)


def test_read_counts_takes_every_reader_option_with_its_default():
    from scingest.readers import read_counts

    parameters = inspect.signature(read_counts).parameters
    keywords = {n: p.default for n, p in parameters.items() if p.kind is p.KEYWORD_ONLY}
    assert keywords == {f.name: f.default for f in dataclasses.fields(ReaderOptions)}


def test_every_qc_limit_belongs_to_a_criterion_and_every_criterion_names_known_limits():
    from scingest.qc import QC_METRICS

    used = set()
    for m in QC_METRICS:
        named = {m.nmads, m.lower, m.upper} - {None}
        assert named <= set(QcOptions.limit_names()), m.flag
        used |= named
    assert used == set(QcOptions.limit_names())


def test_values_are_checked_when_the_options_are_made():
    with pytest.raises(ScingestError, match=r"^orientation must be one of auto, genes_x_cells"):
        ReaderOptions(orientation="rows")
    with pytest.raises(ScingestError, match=r"^loom_layers must be keep or drop, not 'all'"):
        ReaderOptions(loom_layers="all")
    with pytest.raises(ScingestError, match="needs dtype float32"):
        ReaderOptions(dtype="int32").replace(allow_non_integer=True)
    with pytest.raises(ScingestError, match=r"^doublets must be none or scrublet"):
        QcOptions(doublets="solo")
    assert QcOptions(percent_top=[10, 20]).percent_top == (10, 20)


def test_params_give_the_options_back_and_leave_the_jobs_own_out():
    reader = ReaderOptions(genome="GRCh38", threads=2, make_unique=False)
    assert "threads" not in reader.params() and "make_unique" not in reader.params()
    assert ReaderOptions(**reader.params()) == reader.replace(threads=None, make_unique=True)
    qc = QcOptions(qc_nmads=3.0, organism="mouse")
    assert QcOptions(**qc.params()) == qc
    assert qc.outlier_limits()["nmads"] == 3.0
    assert qc.gene_set_regex() == {"mt": None, "ribo": None, "hb": None}


def test_split_options_sends_each_keyword_to_its_class():
    reader, qc = split_options({"genome": "mm10", "qc_max_genes": 5000.0})
    assert reader.genome == "mm10" and qc.qc_max_genes == 5000.0
    with pytest.raises(TypeError, match=r"unknown option.*gene_set_regex"):
        split_options({"gene_set_regex": {"mt": "^MT-"}})
