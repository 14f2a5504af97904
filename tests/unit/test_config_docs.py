"""Config, schemas and docs stay in step: every key has a default, a description, a doc row."""

from __future__ import annotations

import re

import yaml

from conftest import REPO
from scingest.formats import FORMATS
from scingest.sheet import SHEET_SCHEMA_PATH

CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
SHEET_SCHEMA = yaml.safe_load(SHEET_SCHEMA_PATH.read_text())
CONFIG_DOC = (REPO / "config" / "README.md").read_text()


def test_every_config_key_is_in_the_schema_and_documented():
    assert set(CONFIG) == set(SCHEMA["properties"])
    for key, spec in SCHEMA["properties"].items():
        assert spec.get("description"), f"schema property {key} has no description"
        assert re.search(rf"^\| `{key}` \|", CONFIG_DOC, re.M), f"{key} not in config/README.md"


def test_every_config_key_has_a_comment():
    lines = (REPO / "config" / "config.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z_]+:", line):
            assert lines[i - 1].startswith("#"), f"no comment above {line!r}"


def test_sheet_schema_formats_match_the_readers():
    assert set(SHEET_SCHEMA["properties"]["format"]["enum"]) == {"auto", *FORMATS}
    for name in FORMATS:
        assert f"`{name}`" in CONFIG_DOC, f"format {name} not documented in config/README.md"


def test_config_validates_against_schema():
    from jsonschema import Draft202012Validator

    Draft202012Validator(SCHEMA).validate(CONFIG)


def test_every_sheet_column_is_documented():
    table = CONFIG_DOC.split("## Sample sheet columns", 1)[1].split("\n## ", 1)[0]
    for column in SHEET_SCHEMA["properties"]:
        assert f"`{column}`" in table, f"sheet column {column} not in config/README.md"
        assert SHEET_SCHEMA["properties"][column].get("description"), column
