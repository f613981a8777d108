"""YAML text to typed `Config`, with one-line errors that name the field path.

The YAML dialect follows what Go's sigs.k8s.io/yaml gives `flux mirror` users: a `null` value means
"unset" (the zero value), timestamps stay strings, and duplicate keys are refused rather than
silently resolved to the last one.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import yaml

from fluxmirror.api.config import API_VERSION, KIND, Config
from fluxmirror.api.duration import Duration
from fluxmirror.errors import ConfigError

__all__ = ["decode_config", "join_path"]

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ConfigLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader without timestamp resolution and with duplicate-key detection."""


_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f'mapping key "{key}" is defined more than once', key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_ConfigLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

_MSGSPEC_ERROR = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>.*)`)?$", re.DOTALL)
_REWRITES = (
    (re.compile(r"^Object contains unknown field `(.*)`$"), r'unknown field "\1"'),
    (re.compile(r"^Object missing required field `(.*)`$"), r'missing required field "\1"'),
    (re.compile(r"^Expected `(.*)`, got `(.*)`$"), r"expected \1, got \2"),
)


def join_path(*segments: str) -> str:
    """Join field-path segments the way `flux mirror` messages do: `artifacts[0]: selector: limit`."""
    return ": ".join(segment for segment in segments if segment)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _decode_hook(kind: type, value: Any) -> Any:
    if kind is Duration:
        if isinstance(value, str):
            return Duration.parse(value)
        raise TypeError(f'expected a duration string such as "60s", got {type(value).__name__}')
    raise NotImplementedError(kind)


def _field_error(error: msgspec.ValidationError) -> str:
    match = _MSGSPEC_ERROR.match(str(error))
    assert match is not None  # the pattern matches any text
    message = match["message"]
    for pattern, replacement in _REWRITES:
        message = pattern.sub(replacement, message)
    if message in ("expected str, got int", "expected str, got float", "expected str, got bool"):
        message += " (quote the value in YAML)"
    raw_path = (match["path"] or "").lstrip(".")
    return join_path(*raw_path.replace("[", ".[").replace(".[", "[").split("."), message)


def _parse_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"parse config: yaml: {where}{exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"parse config: yaml: {' '.join(str(exc).split())}") from None


def decode_config(text: str) -> Config:
    """Parse and type-check a config document; semantic rules are left to `validate`."""
    document = _parse_yaml(text)
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"parse config: the document must be a mapping, got {type(document).__name__}")
    document = _without_nulls(document)
    for field, expected in (("apiVersion", API_VERSION), ("kind", KIND)):
        found = document.get(field, "")
        if found != expected:
            raise ConfigError(f'{field} must be "{expected}", got "{found}"')
    try:
        return msgspec.convert(document, Config, strict=True, dec_hook=_decode_hook)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"parse config: {_field_error(exc)}") from None
