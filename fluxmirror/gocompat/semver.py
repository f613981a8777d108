"""Masterminds/semver v3.4: semantic versions and ranges as `flux mirror` parses and checks them.

fluxmirror needs it for `.selector.semver`, chart `version` ranges and Helm index ordering.

Users write `.selector.semver` and chart `version` ranges against the Go library, so its quirks are
the contract rather than the SemVer spec or npm: the lenient parser accepts `v1`, `1.2` and leading
zeros; `1.2` as a range means `~1.2`; `<=1.x` and `>1.2` treat wildcards per segment; `||` splits
first, then a hyphen range `a - b` becomes `>= a, <= b`; and a prerelease version only satisfies an
AND group in which some comparison names a prerelease itself. Error texts match the Go library's.

The range grammar regexes below restate the Go library's and run, as there, on Go's regexp engine
(RE2, `gocompat.regexp`): leftmost-first alternation gives the same pieces Go does, and matching stays
linear in the text (Python's `re` takes minutes on `1` followed by a few thousand spaces). The version
regex stays on `re`, which is several times faster per tag and linear here: no two of its repeated
parts can take the same character (digits, `.`, `-`, `+` each end or separate one part).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Final

from fluxmirror.gocompat.regexp import compile_go

__all__ = ["Constraint", "InvalidConstraintError", "InvalidVersionError", "Version"]

_UINT64_MAX: Final = (1 << 64) - 1
_UINT64_DIGITS: Final = len(str(_UINT64_MAX))

_VERSION_RE: Final = re.compile(
    r"v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)

_WS: Final = r"[\t\n\f\r ]"  # Go's \s
# Order matters: Go tries alternatives left to right (the empty operator is the second one).
_OPS: Final = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^"


def _version_grammar(capture: bool) -> str:
    """The Go grammar's version operand; `|` in the number class is a Go quirk kept for parity."""

    def group(name: str) -> str:
        return f"(?P<{name}>" if capture else "(?:"

    number = r"[0-9|xX*]+"
    identifiers = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
    return (
        rf"v?{group('major')}{number}){group('minor')}\.{number})?{group('patch')}\.{number})?"
        rf"{group('pre')}-{identifiers})?(?:\+{identifiers})?"
    )


_CV: Final = _version_grammar(capture=False)
_RANGE_RE: Final = compile_go(rf"{_WS}*(?P<lo>{_CV}){_WS}+-{_WS}+(?P<hi>{_CV}){_WS}*")
_GROUP_RE: Final = compile_go(rf"{_WS}*(?:{_OPS}){_WS}*{_CV}{_WS}*(?:(?:{_WS}+|,{_WS}*)(?:{_OPS}){_WS}*{_CV}{_WS}*)*")
_FIND_RE: Final = compile_go(rf"(?:{_OPS}){_WS}*{_CV}")
_ONE_RE: Final = compile_go(rf"{_WS}*(?P<op>{_OPS}){_WS}*(?P<cv>{_version_grammar(capture=True)}){_WS}*")

_WILDCARDS: Final = frozenset({"x", "X", "*"})

_PrereleaseKey = tuple[tuple[int, int | str], ...]
_Key = tuple[int, int, int, int, _PrereleaseKey]


class InvalidVersionError(ValueError):
    """The text is not a version Masterminds' lenient `NewVersion` accepts."""


class InvalidConstraintError(ValueError):
    """The text is not a range Masterminds' `NewConstraint` accepts."""


def _parse_uint64(digits: str) -> int | None:
    """Go's `strconv.ParseUint(digits, 10, 64)` for ASCII digits; None when out of range.

    Digits past the 20 a uint64 can have are never converted, so a 5000-digit segment costs what
    reading it costs (Python's int() refuses more than 4300 digits anyway)."""
    if len(digits) < _UINT64_DIGITS:  # the common case: fits whatever the digits are
        return int(digits)
    significant = digits.lstrip("0")
    if len(significant) > _UINT64_DIGITS:
        return None
    value = int(significant or "0")
    return value if value <= _UINT64_MAX else None


def _segment(digits: str) -> int:
    value = _parse_uint64(digits)
    if value is None:
        raise InvalidVersionError(
            f'error parsing version segment: strconv.ParseUint: parsing "{digits}": value out of range'
        )
    return value


def _prerelease_key(prerelease: str) -> _PrereleaseKey:
    # Numeric identifiers sort below alphanumeric ones; a number too big for uint64 is compared as
    # text, because Go only treats an identifier as numeric when ParseUint succeeds.
    parts: list[tuple[int, int | str]] = []
    for part in prerelease.split("."):
        number = _parse_uint64(part) if part.isascii() and part.isdigit() else None
        parts.append((1, part) if number is None else (0, number))
    return tuple(parts)


@dataclass(frozen=True, slots=True, eq=False)
class Version:
    """A parsed version; ordering and equality follow precedence, so build metadata is ignored."""

    major: int
    minor: int
    patch: int
    prerelease: str = ""
    metadata: str = ""
    original: str = ""
    _key: _Key = field(init=False, repr=False)

    def __post_init__(self) -> None:
        pre: _PrereleaseKey = _prerelease_key(self.prerelease) if self.prerelease else ()
        key = (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)
        object.__setattr__(self, "_key", key)

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse leniently, as Go's `semver.NewVersion` does with its default coercion."""
        match = _VERSION_RE.fullmatch(text)
        if match is None:
            raise InvalidVersionError("invalid semantic version")
        major, minor, patch, prerelease, metadata = match.groups(default="")
        if prerelease:
            for part in prerelease.split("."):
                if part.isdigit() and len(part) > 1 and part[0] == "0":
                    raise InvalidVersionError("version segment starts with 0")
        return cls(
            _segment(major),
            _segment(minor) if minor else 0,
            _segment(patch) if patch else 0,
            prerelease,
            metadata,
            text,
        )

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += f"-{self.prerelease}"
        if self.metadata:
            text += f"+{self.metadata}"
        return text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __lt__(self, other: Version) -> bool:
        return self._key < other._key

    def __le__(self, other: Version) -> bool:
        return self._key <= other._key

    def __gt__(self, other: Version) -> bool:
        return self._key > other._key

    def __ge__(self, other: Version) -> bool:
        return self._key >= other._key


@dataclass(frozen=True, slots=True)
class _Comparison:
    """One operator and operand; the dirty flags record which segments were wildcards or missing."""

    op: str
    bound: Version
    dirty: bool
    minor_dirty: bool
    patch_dirty: bool

    def allows(self, v: Version) -> bool:
        c = self.bound
        op = self.op
        if op in ("", "="):
            return self._tilde(v) if self.dirty else v == c
        if op == "!=":
            return self._not_equal(v)
        if op == ">":
            return self._greater(v)
        if op == "<":
            return v < c
        if op in (">=", "=>"):
            return v >= c
        if op in ("<=", "=<"):
            return self._less_equal(v)
        if op in ("~", "~>"):
            return self._tilde(v)
        return self._caret(v)

    def _not_equal(self, v: Version) -> bool:
        c = self.bound
        if self.dirty:
            if c.major != v.major:
                return True
            if c.minor != v.minor and not self.minor_dirty:
                return True
            if self.minor_dirty:
                return False
            if c.patch != v.patch and not self.patch_dirty:
                return True
            if self.patch_dirty:
                return v.prerelease != c.prerelease
        return v != c

    def _greater(self, v: Version) -> bool:
        c = self.bound
        if not self.dirty:
            return v > c
        if v.major != c.major:
            return v.major > c.major
        if self.minor_dirty:
            return False
        if self.patch_dirty:
            return v.minor > c.minor
        return v > c

    def _less_equal(self, v: Version) -> bool:
        c = self.bound
        if not self.dirty:
            return v <= c
        if v.major > c.major:
            return False
        return not (v.major == c.major and v.minor > c.minor and not self.minor_dirty)

    def _tilde(self, v: Version) -> bool:
        c = self.bound
        if v < c:
            return False
        if (c.major, c.minor, c.patch) == (0, 0, 0) and not self.minor_dirty and not self.patch_dirty:
            return True
        if v.major != c.major:
            return False
        return self.minor_dirty or v.minor == c.minor

    def _caret(self, v: Version) -> bool:
        c = self.bound
        if v < c:
            return False
        if c.major > 0 or self.minor_dirty:
            return v.major == c.major
        if v.major > 0:
            return False
        if c.minor > 0 or self.patch_dirty:
            return v.minor == c.minor
        if v.minor > 0:
            return False
        return v.patch == c.patch


def _parse_comparison(token: str) -> _Comparison:
    match = _ONE_RE.fullmatch(token)
    assert match is not None, "tokens come from _FIND_RE, whose matches always fit _ONE_RE"
    major, minor, patch = match["major"] or "", match["minor"] or "", match["patch"] or ""
    pre = match["pre"] or ""
    dirty = minor_dirty = patch_dirty = False
    operand = match["cv"] or ""
    if major in _WILDCARDS:
        operand, dirty = f"0.0.0{pre}", True
    elif not minor or minor[1:] in _WILDCARDS:
        operand, dirty, minor_dirty = f"{major}.0.0{pre}", True, True
    elif not patch or patch[1:] in _WILDCARDS:
        operand, dirty, patch_dirty = f"{major}{minor}.0{pre}", True, True
    try:
        bound = Version.parse(operand)
    except InvalidVersionError:
        raise InvalidConstraintError("constraint parser error") from None
    return _Comparison(match["op"] or "", bound, dirty, minor_dirty, patch_dirty)


def _rewrite_hyphen_ranges(text: str) -> str:
    """Rewrite each `a - b` where it was found, in one pass.

    Go replaces each match's text at its first occurrence in the rewritten string, which is the
    place it was found unless some earlier `<space>-` is not part of a range; but no range can hold
    such a hyphen, so both rewrites then fail to parse (only which piece the error quotes may
    differ), and one pass keeps a long constraint linear instead of quadratic."""
    pieces: list[str] = []
    end = 0
    for match in _RANGE_RE.finditer(text):
        start, stop = match.span()
        pieces += (text[end:start], f">= {match['lo']}, <= {match['hi']} ")
        end = stop
    pieces.append(text[end:])
    return "".join(pieces)


class Constraint:
    """A parsed range: OR groups of AND-ed comparisons."""

    __slots__ = ("_groups", "text")

    def __init__(self, text: str, groups: tuple[tuple[tuple[_Comparison, ...], bool], ...]) -> None:
        self.text = text
        self._groups = groups

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Parse like Go's `semver.NewConstraint`; results are cached since ranges come from config."""
        return _parse_constraint(text)

    def check(self, version: Version) -> bool:
        """Whether any OR group accepts the version, applying the prerelease opt-in per group."""
        for comparisons, names_prerelease in self._groups:
            if version.prerelease and not names_prerelease:
                continue
            if all(comparison.allows(version) for comparison in comparisons):
                return True
        return False

    def __repr__(self) -> str:
        return f"Constraint({self.text!r})"


@functools.lru_cache(maxsize=256)
def _parse_constraint(text: str) -> Constraint:
    groups: list[tuple[tuple[_Comparison, ...], bool]] = []
    for segment in _rewrite_hyphen_ranges(text).split("||"):
        if _GROUP_RE.fullmatch(segment) is None:
            raise InvalidConstraintError(f"improper constraint: {segment}")
        comparisons = tuple(_parse_comparison(m.group() or "") for m in _FIND_RE.finditer(segment))
        groups.append((comparisons, any(c.bound.prerelease for c in comparisons)))
    return Constraint(text, tuple(groups))
