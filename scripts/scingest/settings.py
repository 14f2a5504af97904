"""The workflow's configuration: command-line values read as YAML, and clear config errors.

Snakemake parses ``--config key=value`` with YAML's BaseLoader after trying ``int``,
``float`` and Python's ``True``/``False``, so ``true``, ``null`` and the items of ``[10,20]``
arrive as strings. :func:`yaml_cli_values` reads such values again as YAML, as they would be
read from a config file, when the key's schema asks for it. :func:`config_error` turns a
schema violation into one message naming the key, the closest valid key for a typo and the
line of config/README.md that documents it. :func:`check_config` does both, after filling
defaults; :func:`reader_options` and :func:`qc_options` turn the config and a sample's sheet
row into the options of its job. :func:`collection_problem` says, before any job runs, when
the environment cannot run the collection job that ``collection`` asks for.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
from collections.abc import Iterable, Mapping, MutableMapping
from importlib import metadata
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from .options import QcOptions, ReaderOptions


def _reparse(value: Any) -> Any:
    """``value`` read as YAML where it is text (also the items of a list)."""
    if isinstance(value, str):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    if isinstance(value, list):
        return [_reparse(v) for v in value]
    return value


def _is_valid(value: Any, spec: Mapping[str, Any]) -> bool:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(spec).is_valid(value)


def yaml_cli_values(
    config: MutableMapping[str, Any], cli_keys: Iterable[str], schema: Mapping[str, Any]
) -> dict[str, Any]:
    """Read the ``--config`` values of ``cli_keys`` as YAML where their schema asks for it.

    A value is replaced by its YAML reading (``true`` -> True, ``null`` -> None,
    ``[10,20]`` -> [10, 20]) when that reading fits the key's schema and either the value as
    given does not (a boolean, number or list given as text) or the reading is null (so
    ``genome=null`` means no genome, not a genome named "null"). Anything else is left as
    Snakemake gave it: a regex or a path stays text.

    Parameters
    ----------
    config
        The workflow's config, changed in place.
    cli_keys
        The keys given with ``--config`` (``workflow.config_settings.config``).
    schema
        The config JSON Schema (its ``properties``).

    Returns
    -------
    The keys replaced, with their new values.
    """
    properties = schema.get("properties", {})
    changed = {}
    for key in cli_keys:
        if key not in config or key not in properties:
            continue
        value = config[key]
        reading = _reparse(value)
        if reading == value and type(reading) is type(value):
            continue
        spec = properties[key]
        if _is_valid(reading, spec) and (reading is None or not _is_valid(value, spec)):
            config[key] = reading
            changed[key] = reading
    return changed


def doc_line(doc: str | PathLike[str], key: str) -> str | None:
    """Where ``doc`` documents a config key, to show beside an error about it.

    Parameters
    ----------
    doc
        The config documentation (config/README.md).
    key
        A config key.

    Returns
    -------
    ``config/README.md line N: | `key` | ...``, the row of a ``| key | default | meaning |``
    table documenting ``key`` (cut at 160 characters); None when there is none, or the
    file cannot be read.
    """
    path = Path(doc)
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    row = re.compile(rf"^\|\s*`{re.escape(key)}`\s*\|")
    in_key_table = False  # rows of `| key | default | meaning |` tables, not sheet columns
    for number, line in enumerate(lines, start=1):
        if not line.startswith("|"):
            in_key_table = False
        elif "`" not in line and set(line) - set("|-: "):  # a header line
            in_key_table = line.replace(" ", "").startswith("|key|")
        if in_key_table and row.match(line):
            shown = line if len(line) <= 160 else line[:157] + "..."
            return f"{path.parent.name}/{path.name} line {number}: {shown}"
    return None


def check_config(
    config: MutableMapping[str, Any], cli_keys: Iterable[str], *, repo: str | PathLike[str]
) -> str | None:
    """Complete the workflow's config and return its first problem, or None.

    Keys not set take the defaults of the workflow's ``config/config.yaml`` (so the workflow
    used as a module, or run where no config/config.yaml is, has every key); ``--config``
    values are read as YAML (:func:`yaml_cli_values`); the result is checked against
    ``workflow/schemas/config.schema.yaml`` (:func:`config_error`).

    Parameters
    ----------
    config
        The workflow's config, changed in place.
    cli_keys
        The keys given with ``--config``.
    repo
        The workflow's folder (holding ``config/`` and ``workflow/schemas/``).

    Returns
    -------
    One message for the first problem, naming the key and its documentation; None when
    the config is valid.
    """
    repo = Path(repo)
    schema = yaml.safe_load((repo / "workflow" / "schemas" / "config.schema.yaml").read_text())
    defaults = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    for key, value in defaults.items():
        config.setdefault(key, value)
    yaml_cli_values(config, cli_keys, schema)
    return config_error(config, schema, repo / "config" / "README.md")


def config_error(
    config: Mapping[str, Any], schema: Mapping[str, Any], doc: str | PathLike[str]
) -> str | None:
    """One message for the first problem of ``config`` against ``schema``, or None.

    An unknown key (``input_dri``) is named with the closest valid key ("did you mean
    input_dir?"); a wrong value with the key, the value, what the schema expected. Both
    end with the line of ``doc`` (config/README.md) that documents the key.

    Parameters
    ----------
    config
        The workflow's config.
    schema
        The config JSON Schema.
    doc
        The config documentation (config/README.md).

    Returns
    -------
    The message, or None when ``config`` is valid.
    """
    from jsonschema import Draft202012Validator

    properties = schema.get("properties", {})
    unknown = [k for k in config if k not in properties]
    if unknown and schema.get("additionalProperties") is False:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(properties), n=1, cutoff=0.6)
        message = f"unknown config key {key!r}"
        if close:
            message += f": did you mean {close[0]}?"
            where = doc_line(doc, close[0])
            if where:
                message += f" ({where})"
        else:
            message += f". The keys are listed in {Path(doc).parent.name}/{Path(doc).name}"
        return message
    errors = sorted(Draft202012Validator(schema).iter_errors(dict(config)), key=str)
    if not errors:
        return None
    error = min(errors, key=lambda e: len(e.path))
    key = str(error.path[0]) if error.path else None
    if key is None:
        return f"config: {error.message}"
    message = f"config key {key!r}: {error.message}"
    description = properties.get(key, {}).get("description")
    if description:
        message += f" (expected: {description})"
    where = doc_line(doc, key)
    if where:
        message += f"; see {where}"
    return message


def reader_options(config: Mapping[str, Any], overrides: Mapping[str, Any]) -> ReaderOptions:
    """The reader options of one sample: the config's, with its sheet row's overrides.

    Parameters
    ----------
    config
        The workflow's validated config.
    overrides
        The sample's reader options from the sheet
        (:func:`scingest.sheet.sample_reader_overrides`).

    Returns
    -------
    The options (:meth:`~scingest.options.ReaderOptions.params` gives the rule's params).
    """
    return ReaderOptions(**{key: config[key] for key in ReaderOptions.names(config=True)}).replace(
        **overrides
    )


def qc_options(config: Mapping[str, Any], overrides: Mapping[str, float]) -> QcOptions:
    """The QC options of one sample: the config's, with its sheet row's ``qc_*`` overrides.

    Parameters
    ----------
    config
        The workflow's validated config.
    overrides
        The sample's QC limits from the sheet
        (:func:`scingest.sheet.sample_qc_overrides`).

    Returns
    -------
    The options (:meth:`~scingest.options.QcOptions.params` gives the rule's params).
    """
    return QcOptions(**{key: config[key] for key in QcOptions.names(config=True)}).replace(
        **overrides
    )


#: The package each collection store needs (the ``collection`` extra), by config value.
COLLECTION_PACKAGES = {"soma": "tiledbsoma", "cellarr": "cellarr"}


def unmet_requirements(dist: metadata.Distribution) -> list[str]:
    """The requirements of an installed distribution that this environment does not meet.

    Only its own (not its dependencies'), without extras; markers are evaluated here.

    Parameters
    ----------
    dist
        An installed distribution.

    Returns
    -------
    One text per unmet requirement: the requirement and what is installed instead.
    """
    from packaging.requirements import Requirement

    unmet = []
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            unmet.append(f"{req} (not installed)")
            continue
        if not req.specifier.contains(installed, prereleases=True):
            unmet.append(f"{req} (installed: {installed})")
    return unmet


def collection_problem(kind: str) -> str | None:
    """Why the collection job (config ``collection``) cannot run in this environment.

    Checked when the workflow is parsed, so the run stops before any job: TileDB-SOMA
    2.3 and cellarr 0.6 (the newest) require pandas < 3, so the ``collection`` extra does
    not install beside pandas 3, and an installed one may have been left behind by an
    upgrade. From the installed metadata only: importing TileDB-SOMA or cellarr takes
    more than a second, at every parse.

    Parameters
    ----------
    kind
        The config's ``collection``: ``none``, ``soma`` or ``cellarr``.

    Returns
    -------
    One message (what is missing or unmet, and the ways out); None when ``kind`` is
    ``none`` or its package is installed with its requirements met.
    """
    package = COLLECTION_PACKAGES.get(kind)
    if package is None:
        return None
    try:
        found = importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a parent that fails, or None in sys.modules
        found = False
    dist = None
    if found:
        try:
            dist = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            dist = None
    if not found:
        reason = f"{package} cannot be imported here (not installed)"
    elif dist is None:
        return None  # importable without metadata (a source folder): nothing to check
    else:
        unmet = unmet_requirements(dist)
        if not unmet:
            return None
        reason = f"{package} {dist.version} is installed, but needs {'; '.join(unmet)}"
    return (
        f"collection: {kind} needs {package} (the collection extra), and {reason}. "
        "TileDB-SOMA 2.3 and cellarr 0.6 require pandas < 3. Ways out: run the collection "
        "job in its own environment, with "
        "--software-deployment-method conda (rule build_collection uses "
        "envs/collection.yaml); or install scingest with its collection extra into an "
        "environment with pandas < 3, e.g. Python 3.11 (pip install -e '.[collection]'; "
        "make install); or set collection: none"
    )
