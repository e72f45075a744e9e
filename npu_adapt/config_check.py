"""Config errors in one sentence each, raised before any job runs (the Snakefile calls these).

Snakemake alone says "Config file is not valid JSON or YAML" without a line, and prints the
whole JSON schema (hundreds of lines) with a schema violation. Here a YAML syntax error
names the file, line and column, and a schema violation names the key and the rule broken,
in the words of the schema's own ``description`` where it has one.
"""

from __future__ import annotations

from pathlib import Path

from npu_adapt.config_types import ConfigError

PREFIX = "Error validating config file"


def check_yaml_syntax(path: str | Path):
    """Raise :class:`ConfigError` with line and column when ``path`` is not valid YAML; else
    return its document (None for a missing file)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        return None  # Snakemake names a missing config file itself
    try:
        return yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        what = ": ".join(filter(None, [exc.context, exc.problem]))
        raise ConfigError(f"{path}: YAML syntax error at {where}: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def describe(error) -> str:
    """One sentence for a jsonschema ValidationError."""
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "required" and not path:
        return f"{PREFIX}: {error.message}; the config needs a `models:` mapping with at least one model"
    if path == "models" and error.validator in ("type", "minProperties"):
        return f"{PREFIX}: `models:` is empty; list at least one model under it (see config.yaml for the form)"
    if error.validator in ("anyOf", "oneOf") and error.context:
        # Name what is wrong inside the alternative of the value's own kind (a misspelt key of a
        # mapping), not "is not valid under any of the given schemas".
        specific = [sub for sub in error.context if sub.validator not in ("type", "const")]
        if len(specific) == 1:
            return describe(specific[0])
        alternatives = "; or ".join(sub.message for sub in specific or error.context)
        return f"{PREFIX}: {path or 'config'}: {error.instance!r} is not valid: {alternatives}"
    if error.validator == "not" and error.schema.get("description"):
        # propertyNames: the instance is the offending key itself.
        return (
            f"{PREFIX}: {path or 'config'}: the name {error.instance!r} is not allowed: {error.schema['description']}"
        )
    return f"{PREFIX}: {path or 'config'}: {error.message}"


def validate_config(config: dict, schema_path: str | Path) -> None:
    """snakemake.utils.validate (fills the schema's defaults), with a one-sentence error; a
    config still using the single ``target:`` is refused with its ``targets:`` equivalent."""
    import jsonschema
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    from npu_adapt.config import legacy_target_message

    if message := legacy_target_message(config):
        raise ConfigError(message)

    try:
        validate(config, str(Path(schema_path).resolve()))
    except WorkflowError as exc:
        # Snakemake raises it inside `except ValidationError`: the schema error is its context.
        error = exc.__cause__ or exc.__context__
        if not isinstance(error, jsonschema.ValidationError):
            raise
        raise ConfigError(describe(error)) from None
