"""The tag selector pipeline: regex prefilter, semver range, sort (highest first), limit.

Every tag that leaves the pipeline before the limit is reported with the reason `flux mirror`
logs, so `--verbose` runs explain themselves. The comparison key (the tag, or the regex
extraction) drives filtering and sorting, but the original tag is what gets selected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from fluxmirror.api.config import SORT_STRATEGIES, Selector
from fluxmirror.gocompat.regexp import compile_go, expand
from fluxmirror.gocompat.semver import Constraint, InvalidVersionError, Version
from fluxmirror.gocompat.strconv import parse_go_float

__all__ = ["Excluded", "Selection", "select_tags"]


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
