"""YAML read as go-yaml v2 reads it, which is how Helm (through sigs.k8s.io/yaml) sees `Chart.yaml`.

PyYAML parses the syntax; only the meaning of plain scalars differs, and it shows in the published
bytes: go-yaml v2 takes `y`/`n` (besides yes/no/on/off) for booleans, `1_000`, `0x1f`, `0o17` and
`017` for ints, `1e3` (no dot needed) for a float, and leaves dates as text. Only the first document
of a stream is read, as go-yaml's Unmarshal does.
"""

from __future__ import annotations

import math
from typing import Any, Final

import yaml

from fluxmirror.helm.gonum import parse_float, parse_int, parse_uint

__all__ = ["DecodeError", "parse"]

_STR: Final = "tag:yaml.org,2002:str"
_INT: Final = "tag:yaml.org,2002:int"
_FLOAT: Final = "tag:yaml.org,2002:float"
_BOOL: Final = "tag:yaml.org,2002:bool"
_NULL: Final = "tag:yaml.org,2002:null"
_MERGE: Final = "tag:yaml.org,2002:merge"

# go-yaml v2's resolve table: the first byte hints what a plain scalar may be; the map is exact.
_HINTS: Final = {"+": "S", "-": "S", ".": "."} | dict.fromkeys("0123456789", "D") | dict.fromkeys("yYnNtTfFoO~", "M")
_BOOLS: Final = dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True) | (
    dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False)
)
_SPECIAL_FLOATS: Final = (
    dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan)
    | dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf)
    | dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf)
)
_NULLS: Final = frozenset({"", "~", "null", "Null", "NULL"})


class DecodeError(ValueError):
    """The document cannot be decoded into the target; the text is what sigs.k8s.io/yaml reports."""


def _resolve_plain(value: str) -> str:
    if value in _NULLS:
        return _NULL
    if value == "<<":
        return _MERGE
    hint = _HINTS.get(value[0])
    if hint is None:
        return _STR
    if value in _BOOLS:
        return _BOOL
    if value in _SPECIAL_FLOATS:
        return _FLOAT
    if hint == ".":
        return _FLOAT if parse_float(value, leading_dot=True) is not None else _STR
    if hint in "DS":
        plain = value.replace("_", "")
        if parse_int(plain) is not None or parse_uint(plain) is not None:
            return _INT
        if parse_float(plain, leading_dot=False) is not None:
            return _FLOAT
    return _STR  # dates too: go-yaml hands timestamps to an interface{} as their text


class _GoLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML with go-yaml v2's idea of what a plain scalar is."""

    def resolve(self, kind: type[yaml.Node], value: str | None, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0] and value is not None:
            return _resolve_plain(value)
        return str(super().resolve(kind, value, implicit))


def _scalar_text(loader: _GoLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))


def _fail(tag: str, node: yaml.Node, text: str) -> yaml.constructor.ConstructorError:
    return yaml.constructor.ConstructorError(None, None, f"cannot decode `{text}` as a {tag}", node.start_mark)


def _construct_int(loader: _GoLoader, node: yaml.Node) -> int:
    text = _scalar_text(loader, node)
    plain = text.replace("_", "")
    value = parse_int(plain)
    if value is None:
        value = parse_uint(plain)
    if value is None:
        raise _fail("!!int", node, text)
    return value


def _construct_float(loader: _GoLoader, node: yaml.Node) -> float:
    text = _scalar_text(loader, node)
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    value = parse_float(text, leading_dot=True) if text.startswith(".") else None
    if value is None:
        integer = _construct_int(loader, node) if _resolve_plain(text) == _INT else None
        value = float(integer) if integer is not None else parse_float(text.replace("_", ""), leading_dot=False)
    if value is None:
        raise _fail("!!float", node, text)
    return value


def _construct_bool(loader: _GoLoader, node: yaml.Node) -> bool:
    text = _scalar_text(loader, node)
    if text not in _BOOLS:
        raise _fail("!!bool", node, text)
    return _BOOLS[text]


def _construct_null(loader: _GoLoader, node: yaml.Node) -> None:
    return None


def _construct_text(loader: _GoLoader, node: yaml.Node) -> str:
    return _scalar_text(loader, node)


def _construct_unknown(loader: _GoLoader, node: yaml.Node) -> Any:
    """A local tag (`!foo`) is ignored by go-yaml: the node decodes as if untagged."""
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return _scalar_text(loader, node)


_GoLoader.add_constructor(_INT, _construct_int)
_GoLoader.add_constructor(_FLOAT, _construct_float)
_GoLoader.add_constructor(_BOOL, _construct_bool)
_GoLoader.add_constructor(_NULL, _construct_null)
_GoLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_text)
_GoLoader.add_constructor(None, _construct_unknown)


def _first_document(data: bytes) -> Any:
    """The first YAML document, as go-yaml's Unmarshal reads only that one; an empty stream is null."""
    loader = _GoLoader(data)
    try:
        return loader.construct_document(loader.get_node()) if loader.check_node() else None
    finally:
        loader.dispose()


def _yaml_message(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        line = f"line {exc.problem_mark.line + 1}: " if exc.problem_mark is not None else ""
        return f"yaml: {line}{exc.problem}"
    if isinstance(exc, yaml.reader.ReaderError):
        return f"yaml: {exc.reason}"
    return f"yaml: {str(exc).splitlines()[0]}"


def parse(data: bytes) -> Any:
    """The first document of `data` as a tree of dict/list/str/int/float/bool/None."""
    try:
        return _first_document(data)
    except yaml.YAMLError as exc:
        raise DecodeError(f"error converting YAML to JSON: {_yaml_message(exc)}") from None
    except RecursionError:
        raise DecodeError("error converting YAML to JSON: yaml: exceeded max depth") from None
