"""go-yaml v2 (gopkg.in/yaml.v2), the YAML library under sigs.k8s.io/yaml: how it reads a document and
how it quotes strings when it writes one.

Helm reads `Chart.yaml` through it, and `flux mirror` writes its YAML report through it, so both the
published chart config and the report bytes depend on its rules. PyYAML parses and emits the syntax;
only the meaning of plain scalars differs: go-yaml v2 takes `y`/`n` (besides yes/no/on/off) for
booleans, `1_000`, `0x1f`, `0o17` and `017` for ints, `1e3` (no dot needed) for a float, and leaves
dates as text. Only the first document of a stream is read, as go-yaml's Unmarshal does.

`resolve_plain` is go-yaml v2's own resolver; `dump` asks it which strings need quotes, so both
directions share one table.
"""

from __future__ import annotations

import calendar
import math
import re
from typing import Any, Final

import yaml

from fluxmirror.gocompat.strconv import parse_int, parse_uint, underscores_ok

__all__ = ["STR_TAG", "DecodeError", "dump", "parse", "reads_as_non_string", "resolve_plain"]

STR_TAG: Final = "tag:yaml.org,2002:str"
_INT: Final = "tag:yaml.org,2002:int"
_FLOAT: Final = "tag:yaml.org,2002:float"
_BOOL: Final = "tag:yaml.org,2002:bool"
_NULL: Final = "tag:yaml.org,2002:null"
_MERGE: Final = "tag:yaml.org,2002:merge"
_TIMESTAMP: Final = "tag:yaml.org,2002:timestamp"

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
# go-yaml v2's allowedTimestampFormats (Go time layouts with one- or two-digit fields).
_TIMESTAMP_FORMAT: Final = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?:[Tt](?P<hms>[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2})(?:[.,][0-9]+)?(?:Z|[-+][0-9]{2}:[0-9]{2}))"
    r"|(?: (?P<hms2>[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2})(?:[.,][0-9]+)?))?"
)


# go-yaml's yamlStyleFloat, applied after underscores were removed.
_YAML_FLOAT: Final = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
# What strconv.ParseFloat accepts for a scalar starting with ".", underscores checked separately.
_DOT_FLOAT: Final = re.compile(r"\.[0-9_]+(?:[eE][-+]?[0-9_]+)?")


class DecodeError(ValueError):
    """The document cannot be decoded into the target; the text is what sigs.k8s.io/yaml reports."""


def _is_timestamp(text: str) -> bool:
    """Whether Go's time.Parse accepts `text` in one of the layouts, a real date and clock included."""
    match = _TIMESTAMP_FORMAT.fullmatch(text)
    if match is None:
        return False
    year, month, day = int(match["y"]), int(match["mo"]), int(match["d"])
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        return False
    clock = match["hms"] or match["hms2"]
    if clock is None:
        return True
    hour, minute, second = (int(part) for part in clock.split(":"))
    return hour < 24 and minute < 60 and second < 60


def _parse_float(text: str, *, leading_dot: bool) -> float | None:
    """go-yaml's float test: `.5`-style scalars go to ParseFloat as written, others after dropping `_`.

    Overflow is not a float for go-yaml (ParseFloat reports a range error), so the scalar stays a string.
    """
    if leading_dot:
        if _DOT_FLOAT.fullmatch(text) is None or not underscores_ok(text):
            return None
        text = text.replace("_", "")
    elif _YAML_FLOAT.fullmatch(text) is None:
        return None
    value = float(text)
    return None if math.isinf(value) else value


def resolve_plain(value: str) -> str:
    """The tag go-yaml v2 gives `value` written as a plain scalar (its `resolve("", value)`)."""
    if value in _NULLS:
        return _NULL
    hint = _HINTS.get(value[0])
    if hint is None:
        return STR_TAG
    if value in _BOOLS:
        return _BOOL
    if value in _SPECIAL_FLOATS:
        return _FLOAT
    if hint == ".":
        return _FLOAT if _parse_float(value, leading_dot=True) is not None else STR_TAG
    if hint in "DS":
        if _is_timestamp(value):
            return _TIMESTAMP
        plain = value.replace("_", "")
        if parse_int(plain) is not None or parse_uint(plain) is not None:
            return _INT
        if _parse_float(plain, leading_dot=False) is not None:
            return _FLOAT
    return STR_TAG


# ---- reading -----------------------------------------------------------------------------------


class _GoLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML with go-yaml v2's idea of what a plain scalar is."""

    def resolve(self, kind: type[yaml.Node], value: str | None, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0] and value is not None:
            # go-yaml spots merge keys apart from its resolver; PyYAML needs them tagged.
            return _MERGE if value == "<<" else resolve_plain(value)
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
    value = _parse_float(text, leading_dot=True) if text.startswith(".") else None
    if value is None:
        integer = _construct_int(loader, node) if resolve_plain(text) == _INT else None
        value = float(integer) if integer is not None else _parse_float(text.replace("_", ""), leading_dot=False)
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
_GoLoader.add_constructor(_TIMESTAMP, _construct_text)  # go-yaml hands an interface{} a timestamp's text
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


# ---- writing -----------------------------------------------------------------------------------

# go-yaml v2's isBase60Float: its resolver no longer reads these as numbers, but its encoder still
# quotes them for YAML 1.1 readers.
_BASE60: Final = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")


def reads_as_non_string(text: str) -> bool:
    """Whether go-yaml v2's encoder quotes `text`: its resolver would read it, written plain, as
    anything but a string (the same resolver Helm's chart decoding goes through), or it is a
    base-60 float."""
    return resolve_plain(text) != STR_TAG or _BASE60.fullmatch(text) is not None


def _style(text: str) -> str | None:
    """The scalar style go-yaml v2 asks for; None lets the emitter choose plain or single quotes.

    The emitter still downgrades a style the text cannot take (e.g. a literal block with trailing
    spaces becomes double-quoted), by the same libyaml rules go-yaml ported.
    """
    if "\n" in text:
        return "|"
    return '"' if reads_as_non_string(text) else None


# go-yaml v2's emitter is a port of libyaml's, so libyaml (bundled with PyYAML's wheels) folds and
# escapes exactly like the reference; PyYAML's pure-Python emitter differs only in how it folds
# long double-quoted strings and in treating non-BMP characters as printable.
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _GoStyleDumper(_BaseDumper):  # type: ignore[valid-type,misc]
    """A safe dumper whose string quoting follows go-yaml v2 instead of PyYAML's YAML 1.1 rules."""

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0] and isinstance(value, str) and not reads_as_non_string(value):
            return STR_TAG
        return str(super().resolve(kind, value, implicit))


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(STR_TAG, data, style=_style(data))


_GoStyleDumper.add_representer(str, _represent_str)


def dump(data: Any) -> str:
    """go-yaml v2's `Marshal` of a generic tree (dict/list/str/int/float/bool/None), as
    sigs.k8s.io/yaml calls it: sorted keys, block style, indentless sequences, 80-column folding,
    and double quotes for strings that would otherwise read back as something else."""
    return yaml.dump(data, Dumper=_GoStyleDumper, sort_keys=True, default_flow_style=False, allow_unicode=True)
