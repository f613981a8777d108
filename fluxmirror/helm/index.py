"""A Helm repository's `index.yaml`: which versions of a chart exist and where each one lives.

Real indexes run to several megabytes (thousands of charts × versions) and a full YAML parse of
one takes seconds in Python, yet a chart entry needs one chart's block. When the index has the
layout `helm repo index` writes (block style, each chart a key of `entries`), only the header line
and that block are parsed; anything unusual (JSON, flow style, aliases, a name listed twice) falls
back to parsing the whole document, so the shortcut never changes the answer, only its cost.

Parsing uses libyaml's base loader, which keeps every scalar as the text written. Helm's decoder
differs for an unquoted number in a string field (`version: 1.10` becomes "1.1", see `gocompat.yaml_v2`);
`helm repo index` quotes such versions, so only hand-written indexes can tell. Entries Helm would
drop (null, not a mapping, no name, a version that is not semver) are dropped here too
(docs/sync.md#chart-index).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml

from fluxmirror.gocompat.semver import InvalidVersionError, Version

__all__ = ["ChartIndex", "ChartVersion", "IndexParseError", "parse_index"]

_Loader: Final = getattr(yaml, "CBaseLoader", yaml.BaseLoader)


class IndexParseError(ValueError):
    """The index could not be read; the caller names the URL it came from."""


@dataclass(frozen=True, slots=True)
class ChartVersion:
    """One version of a chart as the index lists it."""

    name: str
    version: str
    urls: tuple[str, ...]
    digest: str
    semver: Version


@dataclass(frozen=True, slots=True)
class ChartIndex:
    """Versions of each chart, highest first."""

    entries: Mapping[str, Sequence[ChartVersion]]

    def versions(self, name: str) -> Sequence[ChartVersion]:
        return self.entries.get(name, ())

    def lookup(self, name: str, version: str) -> ChartVersion | None:
        """The entry of exactly this version string."""
        return next((entry for entry in self.versions(name) if entry.version == version), None)


def _load(data: bytes) -> Any:
    if not data.strip():
        raise IndexParseError("empty index")
    if data.lstrip()[:1] == b"{":
        try:
            return json.loads(data)
        except ValueError:
            pass  # not JSON after all; YAML may still read it
    try:
        return yaml.load(data, Loader=_Loader)  # noqa: S506 - the base loader builds only str/list/dict
    except yaml.YAMLError as exc:
        raise IndexParseError(" ".join(str(exc).split())) from None


def _chart_version(name: str, item: Any) -> ChartVersion | None:
    """Helm's ChartVersion, or None when Helm would skip the entry as invalid."""
    if not isinstance(item, dict):
        return None
    version = item.get("version")
    if not isinstance(version, str | int | float) or not str(item.get("name") or ""):
        return None
    try:
        parsed = Version.parse(str(version))
    except InvalidVersionError:
        return None
    urls = item.get("urls") or []
    return ChartVersion(
        name=name,
        version=str(version),
        urls=tuple(str(url) for url in urls if url is not None) if isinstance(urls, list) else (),
        digest=str(item.get("digest") or ""),
        semver=parsed,
    )


_API_VERSION_LINE: Final = re.compile(rb"^apiVersion:[^\n]*$", re.MULTILINE)
_ENTRIES_LINE: Final = re.compile(rb"^entries:[ \t]*(?:#[^\n]*)?$", re.MULTILINE)
# The first line after a chart's key that is outside its block: less indented than the block's
# items, or a sibling key of `entries`. (`  - ` items at the key's own indentation are the block's.)
_BLOCK_END: Final = re.compile(rb"^(?:[^ \n#]| [^ \n]|  [^ \n#-])", re.MULTILINE)


def _chart_block(data: bytes, name: str) -> bytes | None:
    """The header line and `name`'s block under `entries`, when the layout allows slicing safely."""
    if b"\t" in data or b"\r" in data or b"&" in data or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        return None
    header = list(_API_VERSION_LINE.finditer(data))
    entries = _ENTRIES_LINE.search(data)
    if len(header) != 1 or entries is None:
        return None
    key = re.compile(rb"^  " + re.escape(name.encode()) + rb":[ \t]*$", re.MULTILINE)
    starts = list(key.finditer(data, entries.end()))
    if len(starts) != 1:
        return None
    block_start = starts[0].start()
    end = _BLOCK_END.search(data, starts[0].end() + 1)
    block_end = end.start() if end is not None else len(data)
    return header[0].group(0) + b"\nentries:\n" + data[block_start:block_end]


def parse_index(data: bytes, name: str | None = None) -> ChartIndex:
    """Parse `index.yaml` (YAML or JSON) into versions per chart, highest first.

    With `name`, the result holds at least that chart's versions (often only those).
    """
    if name is not None:
        block = _chart_block(data, name)
        if block is not None:
            try:
                return _index_of(_load(block))
            except IndexParseError:
                pass  # let the full parse decide
    return _index_of(_load(data))


def _index_of(document: Any) -> ChartIndex:
    if not isinstance(document, dict):
        raise IndexParseError("index is not a mapping")
    if not document.get("apiVersion"):
        raise IndexParseError("no API version specified")
    raw_entries = document.get("entries") or {}
    if not isinstance(raw_entries, dict):
        raise IndexParseError("entries is not a mapping")
    entries: dict[str, list[ChartVersion]] = {}
    for name, items in raw_entries.items():
        if not isinstance(items, list):
            continue
        versions = [found for item in items if (found := _chart_version(str(name), item)) is not None]
        entries[str(name)] = sorted(versions, key=lambda found: found.semver, reverse=True)
    return ChartIndex(entries)
