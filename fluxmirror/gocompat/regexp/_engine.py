"""Compiling with RE2 and matching as Go's regexp does.

A pattern goes through the pre-pass, then RE2 compiles the result under a program budget; when
both have something to say, Go's left-to-right order decides which error is reported. Matches
index the caller's string, lone surrogates and all, because RE2 itself sees only UTF-8.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, Final

import re2

from fluxmirror.gocompat.regexp._errors import (
    CUT_SHORT_CODES,
    MISSING_BRACKET,
    RE2_CODES,
    SURROGATE,
    WHOLE_PATTERN_CODES,
    GoRegexError,
    parse_error,
)
from fluxmirror.gocompat.regexp._syntax import Prepass

__all__ = ["Match", "Regexp", "compile_go"]

_MAX_MEM: Final = 64 << 20


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = _MAX_MEM
    return options


def _re2_compile(pattern: str) -> tuple[Any, str | None, str]:
    """RE2's compiled pattern, or None with the Go error code and RE2's argument."""
    try:
        return re2.compile(pattern, _options()), None, ""
    except re2.error as exc:
        raw = exc.args[0] if exc.args else b""
        message = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        for re2_code, go_code in RE2_CODES:
            if message == re2_code:
                return None, go_code, ""
            if message.startswith(re2_code + ": "):
                return None, go_code, message[len(re2_code) + 2 :]
        return None, "regexp/syntax: internal error", message


def _go_error(prepass: Prepass, rewritten: str, code: str, arg: str) -> GoRegexError:
    src = prepass.src
    if code in WHOLE_PATTERN_CODES:
        return parse_error(code, src)
    if code == MISSING_BRACKET and rewritten != src and rewritten.endswith(arg):
        return parse_error(code, src[prepass.source_position(len(rewritten) - len(arg)) :])
    return parse_error(code, arg)


@functools.lru_cache(maxsize=512)
def compile_go(pattern: str) -> Regexp:
    """Compile a Go regular expression; raise `GoRegexError` worded like Go's `regexp.Compile`."""
    prepass = Prepass(pattern)
    prepass.run()
    rewritten = prepass.result()
    if prepass.error is not None:
        prefix = rewritten[: prepass.error_at]
        _, code, arg = _re2_compile(prefix)
        if code is not None and code not in CUT_SHORT_CODES:
            raise _go_error(prepass, prefix, code, arg)
        raise prepass.error
    compiled, code, arg = _re2_compile(rewritten)
    if code is not None:
        raise _go_error(prepass, rewritten, code, arg)
    return Regexp(pattern, compiled, tuple(prepass.names))


def _subject(text: str) -> str:
    """What RE2 searches for non-ASCII `text`, indexed like `text`: each lone surrogate is read as
    U+FFFD (RE2 takes only UTF-8)."""
    if SURROGATE.search(text) is None:
        return text
    return SURROGATE.sub("\ufffd", text)


# ASCII text (every tag a registry may send) is matched through the binding's compiled object
# directly: its byte offsets are the text's offsets, and the public `search` costs six times as
# much per call (a generator and offset decoding), which made selection over 50,000 tags 60% slower
# than Python's `re`. The pinned google-re2 1.x keeps `_regexp.Match(anchor, data, pos, endpos)`;
# the unit tests cover both paths.
_UNANCHORED: Final = re2._Anchor.UNANCHORED
_ANCHOR_BOTH: Final = re2._Anchor.ANCHOR_BOTH
_NO_MATCH: Final = (-1, -1)


class Regexp:
    """A compiled Go regular expression."""

    __slots__ = ("_compiled", "pattern", "subexp_names")

    def __init__(self, pattern: str, compiled: Any, subexp_names: tuple[str, ...]) -> None:
        self.pattern = pattern
        self.subexp_names = subexp_names
        """Go's `SubexpNames()`: "" for the whole match and unnamed groups; names may repeat."""
        self._compiled = compiled

    def search(self, text: str) -> Match | None:
        """Go's `FindStringSubmatchIndex`: the leftmost match anywhere in `text`, leftmost-first."""
        if text.isascii():
            return self._ascii(_UNANCHORED, text)
        return self._wrap(text, self._compiled.search(_subject(text)))

    def fullmatch(self, text: str) -> Match | None:
        """The match of all of `text`, as Go finds it for the pattern wrapped in `^(?:…)$`."""
        if text.isascii():
            return self._ascii(_ANCHOR_BOTH, text)
        return self._wrap(text, self._compiled.fullmatch(_subject(text)))

    def match_string(self, text: str) -> bool:
        """Go's `MatchString`: whether the pattern matches anywhere in `text` (not anchored)."""
        return self.search(text) is not None

    def _ascii(self, anchor: Any, text: str) -> Match | None:
        data = text.encode("ascii")
        spans = self._compiled._regexp.Match(anchor, data, 0, len(data))
        return None if spans[0] == _NO_MATCH else Match(self, text, tuple(spans))

    def finditer(self, text: str) -> Iterator[Match]:
        """Successive non-overlapping matches, as Go's `FindAllStringSubmatchIndex(text, -1)` for
        patterns that cannot match the empty string (Go and RE2 differ on where empty matches fall)."""
        for found in self._compiled.finditer(text.encode("ascii") if text.isascii() else _subject(text)):
            match = self._wrap(text, found)
            assert match is not None
            yield match

    def _wrap(self, text: str, found: Any) -> Match | None:
        if found is None:
            return None
        spans: tuple[tuple[int, int], ...] = tuple(found.span(index) for index in range(len(self.subexp_names)))
        return Match(self, text, spans)

    def __repr__(self) -> str:
        return f"Regexp({self.pattern!r})"


class Match:
    """Where a `Regexp` matched: group spans into the searched text ((-1, -1) for a group that did
    not take part)."""

    __slots__ = ("_spans", "_text", "regexp")

    def __init__(self, regexp: Regexp, text: str, spans: tuple[tuple[int, int], ...]) -> None:
        self.regexp = regexp
        self._text = text
        self._spans = spans

    def span(self, group: int | str = 0) -> tuple[int, int]:
        """Where group `group` (a number, or the leftmost group of that name) matched."""
        return self._spans[self._index(group)]

    def group(self, group: int | str = 0) -> str | None:
        """The text of group `group` (0 is the whole match); None when it did not take part."""
        start, stop = self._spans[self._index(group)]
        return None if start < 0 else self._text[start:stop]

    def __getitem__(self, group: int | str) -> str | None:
        return self.group(group)

    def _index(self, group: int | str) -> int:
        if isinstance(group, int):
            return group
        try:
            return self.regexp.subexp_names.index(group, 1)
        except ValueError:
            raise IndexError(f"no group named {group!r}") from None
