"""YAML text to plain values (dict, list, str, int, float, bool, None) at a bounded cost.

PyYAML parses the syntax (with libyaml when it is installed); the values are built here from the
parser's events rather than by PyYAML's composer and constructor, so that a hostile document is
refused before it costs anything, the way go-yaml (under sigs.k8s.io/yaml) refuses it
(docs/config.md#yaml-limits):

* Aliases are counted as the nodes they stand for, and go-yaml's rule against alias bombs applies:
  once more than 100 of more than 1000 nodes come from aliases, their share may be at most 99% for
  a document of up to 400,000 nodes, falling linearly to 10% at 4,000,000. Past it, the document
  "contains excessive aliasing". The check runs as the document is read, so a "billion laughs"
  fails after a few thousand nodes instead of expanding.
* An alias to an anchor that is still being read (`a: &x [*x]`) is refused: the anchor "value
  contains itself".
* At most `MAX_NODES` nodes (aliases expanded) and `MAX_DEPTH` levels of nesting.

What the values are follows the config dialect of docs/config.md: plain scalars mean what YAML 1.1
says, as PyYAML resolves them, except that timestamps stay text; a key written twice in one mapping
is refused, and so is a key that is itself a mapping or a sequence; `<<` merges mappings, the keys
written in the mapping winning over merged ones and earlier merged mappings over later ones. Only
the first document of a stream is read, as sigs.k8s.io/yaml does.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any, Final

import yaml
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

__all__ = ["MAX_DEPTH", "MAX_NODES", "read_document"]

MAX_DEPTH: Final = 100
"""Nesting levels a document may have; a config needs fewer than ten."""
MAX_NODES: Final = 1_000_000
"""Nodes (scalars, mappings, sequences; aliases counted as what they stand for) a document may have:
some 90,000 artifact entries, about what fits in the 10 MiB a config may have (config.load)."""

_YAML: Final = "tag:yaml.org,2002:"
_STR: Final = _YAML + "str"
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# go-yaml's alias-ratio rule: the share of alias-made nodes allowed at a given document size.
_RATIO_SMALL: Final = 400_000
_RATIO_LARGE: Final = 4_000_000


def _allowed_alias_share(decoded: int) -> float:
    if decoded <= _RATIO_SMALL:
        return 0.99
    if decoded >= _RATIO_LARGE:
        return 0.10
    return 0.99 - 0.89 * (decoded - _RATIO_SMALL) / (_RATIO_LARGE - _RATIO_SMALL)


def _refuse(message: str, mark: Any = None) -> yaml.MarkedYAMLError:
    """The error PyYAML's own constructor would raise, so callers handle one kind of failure."""
    return yaml.constructor.ConstructorError(None, None, message, mark)


class _Events(_BaseLoader):  # type: ignore[valid-type,misc]
    """The parser and resolver; its composer and constructor are never used."""


# Timestamps stay strings, as with Go's sigs.k8s.io/yaml decoding into the config types.
_Events.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _YAML + "timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_BOOLS: Final = {"yes": True, "no": False, "true": True, "false": False, "on": True, "off": False}
# YAML 1.1 integers as PyYAML reads them, checked again for values tagged `!!int` explicitly.
_INT: Final = re.compile(r"[-+]?(?:0b[01_]+|0x[0-9a-fA-F_]+|0[0-7_]+|0|[1-9][0-9_]*(?::[0-5]?[0-9])*)")
# More significant digits than this in a base can only be out of the 64-bit range, so the number is
# not computed (Python refuses int() past 4300 decimal digits, and base 60 grows quadratically).
_DIGITS_PAST_64_BITS: Final = {2: 64, 8: 22, 10: 20, 16: 16}
_PAST_64_BITS: Final = 1 << 64
_SEXAGESIMAL_PARTS: Final = 12


class _Merge:
    """The `<<` key."""


_MERGE: Final = _Merge()
_OPEN: Final = object()  # an anchored collection still being read


def _short(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML) if tag.startswith(_YAML) else tag


def _excerpt(text: str) -> str:
    return text if len(text) <= 64 else text[:64] + "…"


def _parse_int(text: str) -> int | None:
    if _INT.fullmatch(text) is None:
        return None
    plain = text.replace("_", "")
    sign = -1 if plain[0] == "-" else 1
    body = plain.lstrip("+-")
    if ":" in body:
        parts = body.split(":")
        if len(parts) > _SEXAGESIMAL_PARTS or len(parts[0]) > _DIGITS_PAST_64_BITS[10]:
            return sign * _PAST_64_BITS
        value = 0
        for part in parts:
            value = value * 60 + int(part)
        return sign * value
    base = {"0b": 2, "0x": 16}.get(body[:2], 8 if len(body) > 1 and body[0] == "0" else 10)
    digits = (body[2:] if base in (2, 16) else body).lstrip("0") or "0"
    if len(digits) > _DIGITS_PAST_64_BITS[base]:
        return sign * _PAST_64_BITS
    return sign * int(digits, base)


def _parse_float(text: str) -> float | None:
    plain = text.replace("_", "").lower()
    sign = -1.0 if plain[:1] == "-" else 1.0
    body = plain.lstrip("+-")
    if body == ".inf":
        return sign * math.inf
    if body == ".nan":
        return math.nan
    try:
        if ":" in body:
            value = 0.0
            for part in body.split(":"):
                value = value * 60 + float(part)
            return sign * value
        return sign * float(body)
    except ValueError:
        return None


def _parse_binary(text: str) -> str | None:
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return data.decode("utf-8", "replace")


class _Reader:
    """Builds one document's values from the parser's events, counting what it builds."""

    def __init__(self, events: _Events) -> None:
        self._events = events
        self._anchors: dict[str, tuple[Any, int] | object] = {}
        self._depth = 0
        self._decoded = 0
        self._aliased = 0

    def document(self) -> Any:
        events = self._events
        events.get_event()  # stream start
        if events.check_event(StreamEndEvent):
            return None
        events.get_event()  # document start
        value, _ = self._node(key=False)
        return value

    def _count(self, nodes: int, *, aliased: bool, mark: Any) -> None:
        self._decoded += nodes
        if aliased:
            self._aliased += nodes
        decoded, share = self._decoded, self._aliased
        if share > 100 and decoded > 1000 and share / decoded > _allowed_alias_share(decoded):
            raise _refuse("document contains excessive aliasing")
        if decoded > MAX_NODES:
            if share:
                raise _refuse("document contains excessive aliasing")
            raise _refuse(f"document has more than {MAX_NODES} nodes", mark)

    def _node(self, *, key: bool) -> tuple[Any, int]:
        """The next node's value and how many nodes it counts for."""
        event: Event = self._events.get_event()
        self._count(1, aliased=False, mark=event.start_mark)
        if isinstance(event, AliasEvent):
            return self._alias(event)
        assert isinstance(event, NodeEvent)
        anchor = event.anchor
        if isinstance(event, ScalarEvent):
            result: tuple[Any, int] = (self._scalar(event, key=key), 1)
        else:
            assert isinstance(event, CollectionStartEvent)
            if anchor is not None:
                self._anchors[anchor] = _OPEN
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _refuse(f"exceeded max depth of {MAX_DEPTH}", event.start_mark)
            result = self._mapping(event) if isinstance(event, MappingStartEvent) else self._sequence(event)
            self._depth -= 1
        if anchor is not None:
            self._anchors[anchor] = result
        return result

    def _alias(self, event: AliasEvent) -> tuple[Any, int]:
        target = self._anchors.get(str(event.anchor))
        if target is None:
            raise _refuse(f"unknown anchor '{event.anchor}' referenced", event.start_mark)
        if target is _OPEN:
            raise _refuse(f"anchor '{event.anchor}' value contains itself", event.start_mark)
        assert isinstance(target, tuple)
        value, nodes = target
        self._count(nodes, aliased=True, mark=event.start_mark)
        return value, 1 + nodes

    def _check_tag(self, event: CollectionStartEvent, kind: str) -> None:
        tag = event.tag or "!"
        if tag.startswith(_YAML) and tag != _YAML + kind:
            name = "mapping" if kind == "map" else "sequence"
            raise _refuse(f"cannot decode a {name} as a {_short(tag)}", event.start_mark)

    def _sequence(self, start: CollectionStartEvent) -> tuple[list[Any], int]:
        self._check_tag(start, "seq")
        items: list[Any] = []
        nodes = 1
        while not self._events.check_event(SequenceEndEvent):
            value, count = self._node(key=False)
            items.append(value)
            nodes += count
        self._events.get_event()
        return items, nodes

    def _mapping(self, start: CollectionStartEvent) -> tuple[dict[Any, Any], int]:
        self._check_tag(start, "map")
        mapping: dict[Any, Any] = {}
        merged: dict[Any, Any] = {}
        nodes = 1
        while not self._events.check_event(MappingEndEvent):
            key_mark = self._events.peek_event().start_mark
            key, key_nodes = self._node(key=True)
            value, value_nodes = self._node(key=False)
            nodes += key_nodes + value_nodes
            if key is _MERGE:
                for source in self._merge_sources(value, key_mark):
                    for name, item in source.items():
                        merged.setdefault(name, item)
                continue
            try:
                written = key in mapping
            except TypeError:
                kind = "mapping" if isinstance(key, dict) else "sequence"
                raise _refuse(f"invalid map key: a {kind} cannot be a key", key_mark) from None
            if written:
                raise _refuse(f'mapping key "{_excerpt(str(key))}" is defined more than once', key_mark)
            mapping[key] = value
        self._events.get_event()
        if merged:
            mapping = {**{name: item for name, item in merged.items() if name not in mapping}, **mapping}
        return mapping, nodes

    @staticmethod
    def _merge_sources(value: Any, mark: Any) -> list[dict[Any, Any]]:
        sources = value if isinstance(value, list) else [value]
        if not all(isinstance(source, dict) for source in sources):
            raise _refuse("map merge requires map or sequence of maps as the value", mark)
        return sources

    def _scalar(self, event: ScalarEvent, *, key: bool) -> Any:
        text = event.value
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._events.resolve(ScalarNode, text, event.implicit)
        if not tag.startswith(_YAML):
            return text  # a local tag (`!foo`) is ignored, as go-yaml does
        kind = tag.removeprefix(_YAML)
        value: Any
        if kind in ("str", "value", "timestamp"):
            return text
        if kind == "null":
            return None
        if kind == "merge":
            return _MERGE if key else text
        if kind == "bool":
            value = _BOOLS.get(text.lower())
        elif kind == "int":
            value = _parse_int(text)
        elif kind == "float":
            value = _parse_float(text)
        elif kind == "binary":
            value = _parse_binary(text)
            if value is None:
                raise _refuse("!!binary value contains invalid base64 data", event.start_mark)
        else:
            raise _refuse(f"cannot decode a scalar as a {_short(tag)}", event.start_mark)
        if value is None:
            raise _refuse(f"cannot decode !!str `{_excerpt(text)}` as a {_short(tag)}", event.start_mark)
        return value


def read_document(text: str) -> Any:
    """The first document of `text` as plain values; None for an empty stream.

    Raises yaml.YAMLError: a MarkedYAMLError (with the position when there is one) for what this
    module refuses, as PyYAML's parser does for a syntax error.
    """
    events = _Events(text)
    try:
        return _Reader(events).document()
    finally:
        events.dispose()
