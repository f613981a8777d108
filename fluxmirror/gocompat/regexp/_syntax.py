"""The pre-pass that closes the gaps between Go's regexp parser and RE2's before RE2 sees a pattern.

RE2's C++ parser and Go's agree on nearly everything; where they differ (`\\C`, named-group names,
`\\p` names, nesting depth, repeat counts checked first) one walk with Go's tokenisation decides as
Go does, and leaves every error RE2 reports the same way to RE2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fluxmirror.gocompat.regexp._errors import (
    INVALID_ESCAPE,
    INVALID_NAMED_CAPTURE,
    INVALID_RANGE,
    INVALID_REPEAT_SIZE,
    INVALID_UTF8,
    NESTING_DEPTH,
    SURROGATE,
    GoRegexError,
    parse_error,
)
from fluxmirror.gocompat.regexp._unicode_classes import canonical, class_names, special_class

__all__ = ["Prepass"]

_MAX_HEIGHT: Final = 1000
_MAX_REPEAT: Final = 1000


@dataclass(slots=True)
class _Frame:
    capture: bool
    alternatives: list[int]
    items: list[int]  # the heights of the concatenation so far
    after_literal: bool = False  # Go merges adjacent literal characters into one node


def _concat_height(items: list[int]) -> int:
    if not items:
        return 1
    return max(items) + (1 if len(items) > 1 else 0)


class Prepass:
    """One left-to-right walk with Go's tokenisation: collects group names, rewrites `\\p` names RE2
    lacks, estimates Go's parse-tree height, and stops at the first Go-only error. Errors RE2 reports
    the same way are left to RE2 (the walk just stops there)."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.out: list[str] = []
        self.copied = 0  # src[:copied] is in `out`
        self.rewrites: list[tuple[int, int, int, int]] = []  # (output start, output length, src start, src end)
        self.names: list[str] = [""]
        self.frames = [_Frame(False, [], [])]
        self.error: GoRegexError | None = None
        self.error_at = 0  # where in the output the Go-only error sits

    # -- output --------------------------------------------------------------------------------

    def output_length(self, upto: int) -> int:
        return sum(len(piece) for piece in self.out) + (upto - self.copied)

    def rewrite(self, start: int, end: int, text: str) -> None:
        self.out.append(self.src[self.copied : start])
        self.rewrites.append((sum(len(piece) for piece in self.out), len(text), start, end))
        self.out.append(text)
        self.copied = end

    def result(self) -> str:
        return "".join(self.out) + self.src[self.copied :]

    def fail(self, at: int, error: GoRegexError) -> None:
        self.error, self.error_at = error, self.output_length(at)

    def source_position(self, out_pos: int) -> int:
        """The src index an output index came from (a rewritten piece's start for inside it)."""
        shift = 0
        for out_start, out_len, src_start, src_end in self.rewrites:
            if out_pos < out_start:
                break
            if out_pos < out_start + out_len:
                return src_start
            shift = src_end - (out_start + out_len)
        return out_pos + shift

    # -- height ---------------------------------------------------------------------------------

    def atom(self, literal: bool = False) -> None:
        frame = self.frames[-1]
        if not (literal and frame.after_literal):
            frame.items.append(1)
        frame.after_literal = literal

    def repeat(self, at: int) -> bool:
        frame = self.frames[-1]
        if not frame.items:
            return False  # RE2 reports the missing argument
        frame.items[-1] += 1
        frame.after_literal = False
        return self.check_height(frame.items[-1], at)

    def check_height(self, height: int, at: int) -> bool:
        if height > _MAX_HEIGHT:
            self.fail(at, parse_error(NESTING_DEPTH, self.src))
            return False
        return True

    def close(self, at: int) -> bool:
        if len(self.frames) == 1:
            return False  # RE2 reports the unexpected )
        frame = self.frames.pop()
        heights = [*frame.alternatives, _concat_height(frame.items)]
        height = heights[0] if len(heights) == 1 else max(heights) + 1
        if frame.capture:
            height += 1
        parent = self.frames[-1]
        parent.items.append(height)
        parent.after_literal = False
        return self.check_height(height, at)

    # -- the walk -------------------------------------------------------------------------------

    def run(self) -> None:
        src = self.src
        bad = SURROGATE.search(src)
        end = bad.start() if bad else len(src)
        if self.walk(end) and bad is not None and self.error is None:
            self.fail(end, parse_error(INVALID_UTF8, src[end:]))
        if self.error is None and len(self.frames) == 1:
            frame = self.frames[0]
            heights = [*frame.alternatives, _concat_height(frame.items)]
            self.check_height(heights[0] if len(heights) == 1 else max(heights) + 1, len(src))

    def walk(self, end: int) -> bool:
        """Walk src[:end]; False where it stopped early (a Go-only error, or one left to RE2)."""
        src = self.src
        i = 0
        while i < end:
            ch = src[i]
            if ch == "(":
                next_i = self.group(i, end)
            elif ch == ")":
                next_i = i + 1 if self.close(i) else None
            elif ch == "|":
                frame = self.frames[-1]
                frame.alternatives.append(_concat_height(frame.items))
                frame.items, frame.after_literal = [], False
                next_i = i + 1
            elif ch == "[":
                next_i = self.bracket(i, end)
                if next_i is not None:
                    self.atom()
            elif ch in "*+?":
                next_i = i + 1 if self.repeat(i) else None
                if next_i is not None and next_i < end and src[next_i] == "?":
                    next_i += 1
            elif ch == "{":
                braces = _repeat_braces(src, i, end)
                if braces is None:
                    self.atom(literal=True)
                    next_i = i + 1
                elif _bad_counts(braces[1], braces[2]):
                    # Go checks the counts before anything else about the operator; RE2 after.
                    self.fail(i, parse_error(INVALID_REPEAT_SIZE, src[i : braces[0]]))
                    next_i = None
                else:
                    next_i = braces[0] if self.repeat(i) else None
                    if next_i is not None and next_i < end and src[next_i] == "?":
                        next_i += 1
            elif ch == "\\":
                next_i = self.backslash(i, end)
            else:
                self.atom(literal=ch not in "^$.")
                next_i = i + 1
            if next_i is None:
                return False
            i = next_i
        return True

    def group(self, i: int, end: int) -> int | None:
        src = self.src
        if not src.startswith("(?", i):
            self.names.append("")
            self.frames.append(_Frame(True, [], []))
            return i + 1
        if (end - i > 4 and src[i + 2] == "P" and src[i + 3] == "<") or (end - i > 3 and src[i + 2] == "<"):
            name_start = i + 4 if src[i + 2] == "P" else i + 3
            close = src.find(">", i, end)
            if close < 0:
                self.fail(i, parse_error(INVALID_NAMED_CAPTURE, src[i:]))
                return None
            name = src[name_start:close]
            if not name or not all((ch.isascii() and ch.isalnum()) or ch == "_" for ch in name):
                self.fail(i, parse_error(INVALID_NAMED_CAPTURE, src[i : close + 1]))
                return None
            self.names.append(name)
            self.frames.append(_Frame(True, [], []))
            return close + 1
        t = i + 2
        negated = saw_flag = False
        while t < end:
            ch = src[t]
            t += 1
            if ch in "imsU":
                saw_flag = True
            elif ch == "-" and not negated:
                negated, saw_flag = True, False
            elif ch in ":)" and (saw_flag or not negated):
                if ch == ":":
                    self.frames.append(_Frame(False, [], []))
                return t
            else:
                break
        return None  # RE2 reports the invalid flags

    def backslash(self, i: int, end: int) -> int | None:
        src = self.src
        if i + 1 >= end:
            return None  # RE2 reports the trailing backslash
        nxt = src[i + 1]
        if nxt in "AbBz":
            self.atom()
            return i + 2
        if nxt == "C":
            self.fail(i, parse_error(INVALID_ESCAPE, src[i : i + 2]))
            return None
        if nxt == "Q":
            close = src.find("\\E", i + 2, end)
            for _ in src[i + 2 : end if close < 0 else close]:
                self.atom(literal=True)
            return end if close < 0 else close + 2
        if nxt in "pP":
            after = self.unicode_class(i, end, in_class=False)
            if after is not None:
                self.atom()
            return after
        if nxt in "dDsSwW":
            self.atom()
            return i + 2
        self.atom(literal=True)
        return _escape_end(src, i, end)

    def unicode_class(self, i: int, end: int, *, in_class: bool) -> int | None:
        """`\\p…`/`\\P…` at i, rewritten where RE2 lacks Go's name; the index after it."""
        src = self.src
        negated = src[i + 1] == "P"
        t = i + 2
        if t >= end:  # no name: RE2 says "invalid escape" inside a bracket class
            self.fail(i, parse_error(INVALID_RANGE, src[i:end]))
            return None
        if src[t] == "{":
            close = src.find("}", i, end)
            if close < 0:
                return None  # RE2 reports the unclosed name the way Go does
            name, after = src[t + 1 : close], close + 1
        else:
            name, after = src[t], t + 1
        if name.startswith("^"):
            negated, name = not negated, name[1:]
        target = class_names().get(canonical(name))
        if target is None:
            self.fail(i, parse_error(INVALID_RANGE, src[i:after]))
            return None
        if target.startswith("*"):
            self.rewrite(i, after, special_class(target[1:], negated, in_class))
        elif target != name:
            self.rewrite(i, after, f"\\{'P' if negated else 'p'}{{{target}}}")
        return after

    def bracket(self, i: int, end: int) -> int | None:
        """A bracket class at i per Go's grammar; the index after its `]`."""
        src = self.src
        t = i + 1
        if t < end and src[t] == "^":
            t += 1
        first = True
        while t >= end or src[t] != "]" or first:
            if t >= end:
                return None  # RE2 reports the missing ]
            first = False
            if end - t > 2 and src.startswith("[:", t) and (close := src.find(":]", t + 2, end)) >= 0:
                t = close + 2  # RE2 checks POSIX names as Go does
                continue
            if src.startswith("\\", t) and t + 1 < end and src[t + 1] in "pP":
                after = self.unicode_class(t, end, in_class=True)
                if after is None:
                    return None
                t = after
                continue
            if src.startswith("\\", t) and t + 1 < end and src[t + 1] in "dDsSwW":
                t += 2
                continue
            t = _class_char_end(src, t, end)
            if end - t >= 2 and src[t] == "-" and src[t + 1] != "]":
                t = _class_char_end(src, t + 1, end)
        return t + 1


def _escape_end(src: str, i: int, end: int) -> int:
    """The index after the single-character escape at i (`\\x{…}`, `\\xHH`, octal, or `\\c`)."""
    t = i + 2
    nxt = src[i + 1]
    if nxt == "x":
        if t < end and src[t] == "{":
            close = src.find("}", t, end)
            return end if close < 0 else close + 1
        return min(t + 2, end)
    if nxt == "0" or (nxt in "1234567" and t < end and src[t] in "01234567"):
        for _ in range(2):
            if t < end and src[t] in "01234567":
                t += 1
    return t


def _class_char_end(src: str, t: int, end: int) -> int:
    if t >= end:
        return t
    return _escape_end(src, t, end) if src[t] == "\\" and t + 1 < end else t + 1


def _bad_counts(low: int, high: int) -> bool:
    return low < 0 or low > _MAX_REPEAT or high > _MAX_REPEAT or 0 <= high < low


def _repeat_braces(src: str, i: int, end: int) -> tuple[int, int, int] | None:
    """Go's `{n}`, `{n,}` or `{n,m}` at i: (index after it, min, max or -1); None where Go reads `{` as
    a literal. A number past 8 digits reads as -1, as in Go."""

    def number(t: int) -> tuple[int, int] | None:
        start = t
        while t < end and src[t] in "0123456789":
            t += 1
        if t == start or (t - start > 1 and src[start] == "0"):
            return None
        return (int(src[start:t]) if t - start <= 8 else -1), t

    parsed = number(i + 1)
    if parsed is None or parsed[1] >= end:
        return None
    low, t = parsed
    high = low
    if src[t] == ",":
        t += 1
        if t >= end:
            return None
        if src[t] == "}":
            high = -1
        else:
            parsed = number(t)
            if parsed is None:
                return None
            high, t = parsed
            if high < 0:
                low = -1
    return (t + 1, low, high) if t < end and src[t] == "}" else None
