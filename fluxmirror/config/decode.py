"""YAML text to typed `Config`, with one-line errors that name the field path.

The YAML dialect follows what Go's sigs.k8s.io/yaml gives `flux mirror` users: a `null` value means
"unset" (the zero value), timestamps stay strings, and duplicate keys are refused rather than
silently resolved to the last one. `config.yamldoc` reads the YAML within bounds (aliases, size,
depth); integers are then held to Go's int64, as JSON decoding into the Go types would.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec
import yaml

from fluxmirror.api.config import API_VERSION, KIND, Config
from fluxmirror.api.duration import Duration
from fluxmirror.config.yamldoc import read_document
from fluxmirror.errors import ConfigError
from fluxmirror.gocompat.strconv import format_float32_g, go_quote

__all__ = ["decode_config", "join_path", "one_line"]

_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_CONTROL_ESCAPES: Final = str.maketrans({code: go_quote(chr(code))[1:-1] for code in [*range(0x20), 0x7F]})
_MSGSPEC_ERROR = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>.*)`)?$", re.DOTALL)
_REWRITES = (
    (re.compile(r"^Object contains unknown field `(.*)`$", re.DOTALL), r'unknown field "\1"'),
    (re.compile(r"^Object missing required field `(.*)`$", re.DOTALL), r'missing required field "\1"'),
    (re.compile(r"^Expected `(.*)`, got `(.*)`$", re.DOTALL), r"expected \1, got \2"),
)


def join_path(*segments: str) -> str:
    """Join field-path segments the way `flux mirror` messages do: `artifacts[0]: selector: limit`."""
    return ": ".join(segment for segment in segments if segment)


def one_line(message: str) -> str:
    """`message` with control characters written as Go escapes (`\\n`, `\\x00`), so a value quoted in
    it (a `source` with a newline, a key with a tab) cannot break the one line an error prints as."""
    return message.translate(_CONTROL_ESCAPES)


def _key_text(key: Any) -> Any:
    """A scalar key as the text sigs.k8s.io/yaml turns it into before JSON decoding (`1: x` has the
    key "1"); the config has no field such a key could name, so it ends up an unknown field."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        text = format_float32_g(key)
        return {"+Inf": ".inf", "-Inf": "-.inf", "NaN": ".nan"}.get(text, text)
    if key is None:
        return "null"
    return key


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {_key_text(key): _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _out_of_range(value: Any, path: str) -> str | None:
    """The path of the first integer (in field order) that Go's int64 could not hold."""
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            found = _out_of_range(getattr(value, name), join_path(path, name))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _out_of_range(item, f"{path}[{index}]")
            if found is not None:
                return found
    elif isinstance(value, int) and not isinstance(value, bool) and not _INT64_MIN <= value <= _INT64_MAX:
        return path
    return None


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
        return read_document(text)
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
        config = msgspec.convert(document, Config, strict=True, dec_hook=_decode_hook)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"parse config: {_field_error(exc)}") from None
    path = _out_of_range(config, "")
    if path is not None:
        raise ConfigError(f"parse config: {path}: number out of range for a 64-bit integer")
    return config
