"""The tag selector pipeline: regex prefilter, semver range, sort (highest first), limit.

Every tag that leaves the pipeline before the limit is reported with the reason `flux mirror`
logs, so `--verbose` runs explain themselves. The comparison key (the tag, or the regex
extraction) drives filtering and sorting, but the original tag is what gets selected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from fluxmirror.api.config import SORT_STRATEGIES, Selector
from fluxmirror.selection.goregex import compile_go, expand
from fluxmirror.selection.semver import Constraint, InvalidVersionError, Version

__all__ = ["Excluded", "Selection", "parse_go_float", "select_tags", "underscores_ok"]

_GO_SPECIAL_FLOAT: Final = re.compile(r"[+-]?(?:inf|infinity)|nan", re.ASCII | re.IGNORECASE)
_GO_HEX_FLOAT: Final = re.compile(r"[+-]?0[xX](?P<mantissa>[0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?)[pP][+-]?[0-9][0-9_]*")
_GO_DECIMAL_FLOAT: Final = re.compile(r"[+-]?(?P<mantissa>[0-9_]*(?:\.[0-9_]*)?)(?:[eE][+-]?[0-9][0-9_]*)?")


@dataclass(frozen=True, slots=True)
class Excluded:
    """A tag the selector dropped, with the reason logged as `tag excluded by selector`."""

    tag: str
    reason: str


@dataclass(frozen=True, slots=True)
class Selection:
    """The selected tags, highest first, and the tags dropped on the way (limit cuts excepted)."""

    selected: list[str]
    excluded: list[Excluded]


@dataclass(slots=True)
class _Candidate:
    tag: str
    key: str
    version: Version | None = None


def underscores_ok(text: str) -> bool:
    """Go's strconv rule for `_` in a number literal: only between digits, or right after a base prefix."""
    body = text[1:] if text[:1] in ("+", "-") else text
    saw, start, hex_digits = "^", 0, False
    if len(body) >= 2 and body[0] == "0" and body[1] in "bBoOxX":
        saw, start, hex_digits = "0", 2, body[1] in "xX"
    for char in body[start:]:
        if char.isascii() and (char.isdigit() or (hex_digits and char in "abcdefABCDEF")):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def parse_go_float(text: str) -> float | None:
    """Go's `strconv.ParseFloat(text, 64)`: the value, or None where Go returns an error.

    Python's `float` is not a stand-in: it trims whitespace, reads non-ASCII digits and signed NaN,
    and rejects hex floats, while Go also fails on finite literals that overflow to infinity.
    """
    if _GO_SPECIAL_FLOAT.fullmatch(text):
        return float(text)
    hex_float = _GO_HEX_FLOAT.fullmatch(text)
    match = hex_float or _GO_DECIMAL_FLOAT.fullmatch(text)
    if match is None or not match["mantissa"].strip("._"):
        return None
    if "_" in text and not underscores_ok(text):
        return None
    plain = text.replace("_", "")
    try:
        value = float.fromhex(plain) if hex_float else float(plain)
    except OverflowError:
        return None
    return None if math.isinf(value) else value


def select_tags(tags: Sequence[str], selector: Selector) -> Selection:
    """Run the selector over tags in registry (or index) order; ties keep that order.

    The selector is taken as `config.normalize` leaves it: `semver` trimmed, `sortBy` never blank.
    """
    if selector.sortBy not in SORT_STRATEGIES:
        raise ValueError(f'sortBy "{selector.sortBy}" must be one of: {", ".join(SORT_STRATEGIES)}')
    excluded: list[Excluded] = []
    candidates = _apply_regex(tags, selector, excluded)
    if selector.semver:
        candidates = _apply_semver(candidates, Constraint.parse(selector.semver), excluded)
    ordered = _sort(candidates, selector.sortBy, excluded)
    if selector.limit > 0:
        ordered = ordered[: selector.limit]
    return Selection([candidate.tag for candidate in ordered], excluded)


def _apply_regex(tags: Sequence[str], selector: Selector, excluded: list[Excluded]) -> list[_Candidate]:
    if selector.regex is None:
        return [_Candidate(tag, tag) for tag in tags]
    pattern = compile_go(selector.regex.pattern)
    extract = selector.regex.extract
    kept: list[_Candidate] = []
    for tag in tags:
        match = pattern.search(tag)
        if match is None:
            excluded.append(Excluded(tag, "did not match regex"))
        else:
            kept.append(_Candidate(tag, expand(extract, match) if extract else tag))
    return kept


def _apply_semver(candidates: list[_Candidate], constraint: Constraint, excluded: list[Excluded]) -> list[_Candidate]:
    kept: list[_Candidate] = []
    for candidate in candidates:
        try:
            candidate.version = Version.parse(candidate.key)
        except InvalidVersionError:
            excluded.append(Excluded(candidate.tag, f"key not semver: {candidate.key}"))
            continue
        if constraint.check(candidate.version):
            kept.append(candidate)
        else:
            excluded.append(Excluded(candidate.tag, f"fails semver constraint: {candidate.key}"))
    return kept


def _sort(candidates: list[_Candidate], strategy: str, excluded: list[Excluded]) -> list[_Candidate]:
    # Python's sort is stable with reverse=True too, so ties keep registry order as Go's does.
    if strategy == "alphabetical":
        # Code-point order of str equals Go's byte-wise order of the UTF-8 encodings.
        return sorted(candidates, key=lambda candidate: candidate.key, reverse=True)
    if strategy == "numerical":
        numbers: list[tuple[tuple[int, float], _Candidate]] = []
        for candidate in candidates:
            value = parse_go_float(candidate.key)
            if value is None:
                excluded.append(Excluded(candidate.tag, f"not numeric for sort: {candidate.key}"))
            else:
                # NaN is unordered; like Go's cmp.Compare it ranks below every number.
                numbers.append(((0, 0.0) if math.isnan(value) else (1, value), candidate))
        numbers.sort(key=lambda pair: pair[0], reverse=True)
        return [candidate for _, candidate in numbers]
    versions: list[tuple[Version, _Candidate]] = []
    for candidate in candidates:
        version = candidate.version
        if version is None:
            try:
                version = Version.parse(candidate.key)
            except InvalidVersionError:
                excluded.append(Excluded(candidate.tag, f"not semver for sort: {candidate.key}"))
                continue
        versions.append((version, candidate))
    versions.sort(key=lambda pair: pair[0], reverse=True)
    return [candidate for _, candidate in versions]
