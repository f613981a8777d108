"""Go (RE2) regular expressions, translated to and run by Python's `re`.

Selector patterns and OIDC subjects are written for Go's `regexp` package, and the dialects differ
in ways that silently change results: Go's `$` matches only at the end of the text, `\\d \\s \\w \\b`
are ASCII-only, `{,3}` is a literal, flags like `(?i)` may appear mid-pattern and last until the
enclosing group closes, and capture names may repeat or start with a digit. So a pattern is parsed
with Go's grammar and rewritten, and whatever Go rejects — lookarounds, backreferences, atomic
groups, possessive quantifiers — is rejected here with the error text Go prints.

Known gaps: `\\p{…}` supports general categories plus Any, ASCII and Assigned (not scripts); the
Unicode tables are Python's; and `(?i)` folding is `re`'s, which also folds `İ`/`ı` into `i`.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Final, NamedTuple

__all__ = ["GoRegexError", "compile_go", "expand"]

_MAX_RUNE: Final = 0x10FFFF
_MAX_REPEAT: Final = 1000
_MANGLED_PREFIX: Final = "_go"

_MISSING_BRACKET: Final = "missing closing ]"
_MISSING_PAREN: Final = "missing closing )"
_UNEXPECTED_PAREN: Final = "unexpected )"
_INVALID_ESCAPE: Final = "invalid escape sequence"
_INVALID_RANGE: Final = "invalid character class range"
_INVALID_NAMED_CAPTURE: Final = "invalid named capture"
_INVALID_PERL_OP: Final = "invalid or unsupported Perl syntax"
_INVALID_REPEAT_OP: Final = "invalid nested repetition operator"
_INVALID_REPEAT_SIZE: Final = "invalid repeat count"
_MISSING_REPEAT_ARG: Final = "missing argument to repetition operator"
_TRAILING_BACKSLASH: Final = "trailing backslash at end of expression"
_NESTING_DEPTH: Final = "expression nests too deeply"
_UNSUPPORTED_UNICODE: Final = (
    "invalid or unsupported Unicode class (fluxmirror supports general categories, Any, ASCII and Assigned)"
)

_Ranges = tuple[tuple[int, int], ...]

_PERL_CLASSES: Final[dict[str, _Ranges]] = {
    "d": ((0x30, 0x39),),
    "s": ((0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)),
    "w": ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)),
}

_POSIX_CLASSES: Final[dict[str, _Ranges]] = {
    "alnum": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    "alpha": ((0x41, 0x5A), (0x61, 0x7A)),
    "ascii": ((0x00, 0x7F),),
    "blank": ((0x09, 0x09), (0x20, 0x20)),
    "cntrl": ((0x00, 0x1F), (0x7F, 0x7F)),
    "digit": ((0x30, 0x39),),
    "graph": ((0x21, 0x7E),),
    "lower": ((0x61, 0x7A),),
    "print": ((0x20, 0x7E),),
    "punct": ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)),
    "space": ((0x09, 0x0D), (0x20, 0x20)),
    "upper": ((0x41, 0x5A),),
    "word": ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)),
    "xdigit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
}

_C_ESCAPES: Final = {"a": 0x07, "f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09, "v": 0x0B}


class GoRegexError(ValueError):
    """A pattern Go's regexp package rejects (or that uses a Go feature fluxmirror cannot run)."""


def _error(code: str, expr: str) -> GoRegexError:
    return GoRegexError(f"error parsing regexp: {code}: `{expr}`")


def _is_ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _unhex(ch: str) -> int:
    return int(ch, 16) if ch.isascii() and ch in "0123456789abcdefABCDEF" else -1


def _clean(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def _negate(ranges: _Ranges | list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    next_lo = 0
    for lo, hi in _clean(list(ranges)):
        if next_lo <= lo - 1:
            out.append((next_lo, lo - 1))
        next_lo = hi + 1
    if next_lo <= _MAX_RUNE:
        out.append((next_lo, _MAX_RUNE))
    return out


@functools.cache
def _unicode_categories() -> dict[str, _Ranges]:
    """General-category tables, built once from `unicodedata` on first use of `\\p`."""
    runs: dict[str, list[tuple[int, int]]] = {}
    start, current = 0, unicodedata.category("\0")
    for cp in range(1, _MAX_RUNE + 2):
        category = unicodedata.category(chr(cp)) if cp <= _MAX_RUNE else ""
        if category != current:
            runs.setdefault(current, []).append((start, cp - 1))
            start, current = cp, category
    tables = {name: tuple(ranges) for name, ranges in runs.items()}
    for major in "LMNPSZ":
        tables[major] = tuple(_clean([r for name, rs in runs.items() if name[0] == major for r in rs]))
    # Go's `C` covers Cc, Cf, Co and Cs; unassigned code points (Cn) are only in `Cn`.
    tables["C"] = tuple(_clean([r for name in ("Cc", "Cf", "Co", "Cs") for r in runs.get(name, [])]))
    tables["Lc"] = tuple(_clean([r for name in ("Lu", "Ll", "Lt") for r in runs.get(name, [])]))
    tables["Any"] = ((0, _MAX_RUNE),)
    tables["Ascii"] = ((0, 0x7F),)
    tables["Assigned"] = tuple(_negate(runs.get("Cn", [])))
    return tables


def _canonical_class_name(name: str) -> str:
    """Go's lookup key: separators dropped, first letter upper case, the rest lower case."""
    letters = [ch for ch in name if ch not in "_- "]
    if not letters:
        return ""
    head = letters[0].upper() if letters[0].isascii() else letters[0]
    return head + "".join(ch.lower() if ch.isascii() else ch for ch in letters[1:])


def _class_escape(cp: int) -> str:
    ch = chr(cp)
    if _is_ascii_alnum(ch):
        return ch
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def _class_text(ranges: _Ranges | list[tuple[int, int]], negated: bool) -> str:
    parts = [
        _class_escape(lo) if lo == hi else f"{_class_escape(lo)}-{_class_escape(hi)}" for lo, hi in _clean(list(ranges))
    ]
    return f"[{'^' if negated else ''}{''.join(parts)}]"


class _Flags(NamedTuple):
    fold: bool = False  # (?i)
    multiline: bool = False  # (?m)
    dot_nl: bool = False  # (?s)
    ungreedy: bool = False  # (?U)


_ATOM: Final = 0  # takes a Python quantifier directly
_ASSERTION: Final = 1  # zero-width; Go lets it repeat, `re` needs a group around it
_REPEATED: Final = 2  # already quantified; Go allows that only after an intervening flag group
_BAR: Final = 3  # an alternation bar; nothing to repeat


@dataclass(slots=True)
class _Item:
    text: str
    kind: int
    weight: int = 1  # product of nested counted repeats, for Go's 1000-copies limit


@dataclass(slots=True)
class _Frame:
    opener: str
    saved_flags: _Flags
    items: list[_Item]


class _Translator:
    """A single left-to-right pass mirroring Go's parser, so errors come out in Go's order."""

    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.pos = 0
        self.flags = _Flags()
        self.frames = [_Frame("", self.flags, [])]
        self.groups = 0
        self.python_names: set[str] = set()
        self.last_repeat = -1  # start of the previous token when it was a repetition operator

    def translate(self) -> str:
        src = self.src
        while self.pos < len(src):
            ch = src[self.pos]
            repeat_start = -1
            if ch == "(":
                self._open_group()
            elif ch == "|":
                self._push(_Item("|", _BAR))
                self.pos += 1
            elif ch == ")":
                self._close_group()
            elif ch == "^":
                self._push(_Item("(?m:^)" if self.flags.multiline else "^", _ASSERTION))
                self.pos += 1
            elif ch == "$":
                self._push(_Item("(?m:$)" if self.flags.multiline else r"\Z", _ASSERTION))
                self.pos += 1
            elif ch == ".":
                self._push(_Item("(?s:.)" if self.flags.dot_nl else ".", _ATOM))
                self.pos += 1
            elif ch == "[":
                self._parse_class()
            elif ch in "*+?":
                repeat_start = self.pos
                bounds = {"*": (0, -1), "+": (1, -1), "?": (0, 1)}[ch]
                self._repeat(ch, bounds, counted=False, start=self.pos, end=self.pos + 1)
            elif ch == "{" and (braces := self._parse_braces()) is not None:
                repeat_start = self.pos
                low, high, end = braces
                self._repeat(src[self.pos : end], (low, high), counted=True, start=self.pos, end=end)
            elif ch == "\\":
                self._parse_backslash()
            else:
                self._literal(ord(ch))
                self.pos += 1
            self.last_repeat = repeat_start
        if len(self.frames) != 1:
            raise _error(_MISSING_PAREN, src)
        return "".join(item.text for item in self.frames[0].items)

    # -- structure -------------------------------------------------------------------------------

    def _push(self, item: _Item) -> None:
        self.frames[-1].items.append(item)

    def _literal(self, cp: int) -> None:
        ch = chr(cp)
        text = re.escape(ch)
        if self.flags.fold and (ch.lower() != ch or ch.upper() != ch):
            text = f"(?i:{text})"
        self._push(_Item(text, _ATOM))

    def _class(self, ranges: _Ranges | list[tuple[int, int]], negated: bool) -> None:
        text = _class_text(ranges, negated)
        self._push(_Item(f"(?i:{text})" if self.flags.fold else text, _ATOM))

    def _open_group(self) -> None:
        if self.src.startswith("(?", self.pos):
            self._parse_perl_flags()
            return
        self.groups += 1
        self.frames.append(_Frame("(", self.flags, []))
        self.pos += 1

    def _close_group(self) -> None:
        if len(self.frames) == 1:
            raise _error(_UNEXPECTED_PAREN, self.src)
        frame = self.frames.pop()
        text = frame.opener + "".join(item.text for item in frame.items) + ")"
        weight = max((item.weight for item in frame.items), default=1)
        self.flags = frame.saved_flags
        self._push(_Item(text, _ATOM, weight))
        self.pos += 1

    def _parse_perl_flags(self) -> None:
        src, start = self.src, self.pos
        rest = src[start:]
        if (rest.startswith("(?P<") and len(rest) > 4) or (rest.startswith("(?<") and len(rest) > 3):
            self._named_group(start, 4 if rest[2] == "P" else 3)
            return
        fold, multiline, dot_nl, ungreedy = self.flags
        negated = saw_flag = False
        t = start + 2
        while t < len(src):
            ch = src[t]
            t += 1
            if ch in "imsU":
                value = not negated
                if ch == "i":
                    fold = value
                elif ch == "m":
                    multiline = value
                elif ch == "s":
                    dot_nl = value
                else:
                    ungreedy = value
                saw_flag = True
            elif ch == "-" and not negated:
                negated, saw_flag = True, False
            elif ch in ":)" and (saw_flag or not negated):
                if ch == ":":
                    self.frames.append(_Frame("(?:", self.flags, []))
                self.flags = _Flags(fold, multiline, dot_nl, ungreedy)
                self.pos = t
                return
            else:
                break
        raise _error(_INVALID_PERL_OP, src[start:t])

    def _named_group(self, start: int, name_start: int) -> None:
        src = self.src
        end = src.find(">", start)
        if end < 0:
            raise _error(_INVALID_NAMED_CAPTURE, src[start:])
        name = src[start + name_start : end]
        if not name or not all(_is_ascii_alnum(ch) or ch == "_" for ch in name):
            raise _error(_INVALID_NAMED_CAPTURE, src[start : end + 1])
        self.groups += 1
        # `re` needs unique identifiers; other Go names are kept recoverable for `expand`.
        python_name = name
        if not name.isidentifier() or name.startswith(_MANGLED_PREFIX) or name in self.python_names:
            python_name = f"{_MANGLED_PREFIX}{self.groups}_{name}"
        self.python_names.add(python_name)
        self.frames.append(_Frame(f"(?P<{python_name}>", self.flags, []))
        self.pos = end + 1

    # -- repetition ------------------------------------------------------------------------------

    def _parse_braces(self) -> tuple[int, int, int] | None:
        """Go's `{n}`, `{n,}`, `{n,m}`: (min, max or -1, end); None means `{` is a literal."""
        src = self.src
        low, t = self._parse_int(self.pos + 1)
        if low is None or t >= len(src):
            return None
        high = low
        if src[t] == ",":
            t += 1
            if t >= len(src):
                return None
            if src[t] == "}":
                high = -1
            else:
                parsed, t = self._parse_int(t)
                if parsed is None:
                    return None
                high = parsed
                if high < 0:
                    low = -1
        if t >= len(src) or src[t] != "}":
            return None
        return low, high, t + 1

    def _parse_int(self, t: int) -> tuple[int | None, int]:
        src = self.src
        end = t
        while end < len(src) and src[end].isascii() and src[end].isdigit():
            end += 1
        digits = src[t:end]
        if not digits or (len(digits) > 1 and digits[0] == "0"):
            return None, t
        return (int(digits) if len(digits) <= 8 else -1), end

    def _repeat(self, op: str, bounds: tuple[int, int], counted: bool, start: int, end: int) -> None:
        src = self.src
        low, high = bounds
        if counted and (low < 0 or low > _MAX_REPEAT or high > _MAX_REPEAT or 0 <= high < low):
            raise _error(_INVALID_REPEAT_SIZE, src[start:end])
        lazy = False
        if end < len(src) and src[end] == "?":
            end += 1
            lazy = True
        if self.last_repeat >= 0:
            raise _error(_INVALID_REPEAT_OP, src[self.last_repeat : end])
        items = self.frames[-1].items
        if not items or items[-1].kind == _BAR:
            raise _error(_MISSING_REPEAT_ARG, src[start:end])
        target = items[-1]
        weight = target.weight
        if counted:
            copies = high if high >= 0 else low
            if high == 0:
                weight = 1
            elif copies > 0:
                weight *= copies
            if (low >= 2 or high >= 2) and weight > _MAX_REPEAT:
                raise _error(_INVALID_REPEAT_SIZE, src[start:end])
        text = target.text if target.kind == _ATOM else f"(?:{target.text})"
        suffix = "?" if lazy != self.flags.ungreedy else ""
        items[-1] = _Item(text + op + suffix, _REPEATED, weight)
        self.pos = end

    # -- escapes ---------------------------------------------------------------------------------

    def _parse_backslash(self) -> None:
        src, start = self.src, self.pos
        nxt = src[start + 1] if start + 1 < len(src) else ""
        if nxt == "Q":
            close = src.find("\\E", start + 2)
            body = src[start + 2 :] if close < 0 else src[start + 2 : close]
            for ch in body:
                self._literal(ord(ch))
            self.pos = len(src) if close < 0 else close + 2
            return
        simple = {"A": r"\A", "z": r"\Z", "b": r"(?a:\b)", "B": r"(?a:\B)"}.get(nxt)
        if simple is not None:
            self._push(_Item(simple, _ASSERTION))
            self.pos = start + 2
            return
        if nxt == "C":
            raise _error(_INVALID_ESCAPE, src[start : start + 2])
        unicode_class = self._parse_unicode_class(start)
        if unicode_class is not None:
            ranges, self.pos = unicode_class
            self._class(ranges, negated=False)
            return
        perl = self._parse_perl_class(start)
        if perl is not None:
            ranges, self.pos = perl
            self._class(ranges, negated=False)
            return
        cp, self.pos = self._parse_escape(start)
        self._literal(cp)

    def _parse_escape(self, start: int) -> tuple[int, int]:
        """One escaped character at `start` (the backslash): (code point, position after it)."""
        src = self.src
        t = start + 1
        if t >= len(src):
            raise _error(_TRAILING_BACKSLASH, "")
        ch = src[t]
        t += 1
        if ch.isascii() and not ch.isalnum():
            return ord(ch), t
        if ch == "0" or (ch in "1234567" and t < len(src) and src[t] in "01234567"):
            value = int(ch)
            for _ in range(2):
                if t >= len(src) or src[t] not in "01234567":
                    break
                value = value * 8 + int(src[t])
                t += 1
            return value, t
        if ch == "x" and t < len(src):
            return self._parse_hex_escape(start, t)
        if ch in _C_ESCAPES:
            return _C_ESCAPES[ch], t
        raise _error(_INVALID_ESCAPE, src[start:t])

    def _parse_hex_escape(self, start: int, t: int) -> tuple[int, int]:
        src = self.src
        ch = src[t]
        t += 1
        if ch != "{":
            first = _unhex(ch)
            second = _unhex(src[t]) if t < len(src) else -1
            t = min(t + 1, len(src))
            if first < 0 or second < 0:
                raise _error(_INVALID_ESCAPE, src[start:t])
            return first * 16 + second, t
        value = digits = 0
        while True:
            if t >= len(src):
                raise _error(_INVALID_ESCAPE, src[start:t])
            ch = src[t]
            t += 1
            if ch == "}":
                break
            nibble = _unhex(ch)
            value = value * 16 + nibble
            if nibble < 0 or value > _MAX_RUNE:
                raise _error(_INVALID_ESCAPE, src[start:t])
            digits += 1
        if digits == 0:
            raise _error(_INVALID_ESCAPE, src[start:t])
        return value, t

    def _parse_perl_class(self, start: int) -> tuple[_Ranges | list[tuple[int, int]], int] | None:
        letter = self.src[start + 1 : start + 2]
        ranges = _PERL_CLASSES.get(letter.lower()) if letter.isascii() else None
        if ranges is None:
            return None
        return (_negate(ranges) if letter.isupper() else ranges), start + 2

    def _parse_unicode_class(self, start: int) -> tuple[_Ranges | list[tuple[int, int]], int] | None:
        src = self.src
        if src[start + 1 : start + 2] not in ("p", "P"):
            return None
        negated = src[start + 1] == "P"
        t = start + 2
        if t < len(src) and src[t] == "{":
            close = src.find("}", start)
            if close < 0:
                raise _error(_INVALID_RANGE, src[start:])
            seq, name, end = src[start : close + 1], src[t + 1 : close], close + 1
        else:
            end = min(t + 1, len(src))
            seq, name = src[start:end], src[t:end]
        if name.startswith("^"):
            negated, name = not negated, name[1:]
        table = _unicode_categories().get(_canonical_class_name(name))
        if table is None:
            raise _error(_UNSUPPORTED_UNICODE, seq)
        return (_negate(table) if negated else table), end

    # -- bracket classes -------------------------------------------------------------------------

    def _parse_class(self) -> None:
        src, start = self.src, self.pos
        t = start + 1
        negated = t < len(src) and src[t] == "^"
        if negated:
            t += 1
        ranges: list[tuple[int, int]] = []
        first = True
        while t >= len(src) or src[t] != "]" or first:
            first = False
            group: tuple[_Ranges | list[tuple[int, int]], int] | None = None
            if len(src) - t > 2 and src.startswith("[:", t):
                group = self._parse_posix_class(t)
            if group is None and src.startswith("\\", t):
                group = self._parse_unicode_class(t) or self._parse_perl_class(t)
            if group is not None:
                ranges.extend(group[0])
                t = group[1]
                continue
            range_start = t
            low, t = self._class_char(t, start)
            high = low
            if len(src) - t >= 2 and src[t] == "-" and src[t + 1] != "]":
                high, t = self._class_char(t + 1, start)
                if high < low:
                    raise _error(_INVALID_RANGE, src[range_start:t])
            ranges.append((low, high))
        self._class(ranges, negated)
        self.pos = t + 1

    def _class_char(self, t: int, class_start: int) -> tuple[int, int]:
        src = self.src
        if t >= len(src):
            raise _error(_MISSING_BRACKET, src[class_start:])
        if src[t] == "\\":
            return self._parse_escape(t)
        return ord(src[t]), t + 1

    def _parse_posix_class(self, t: int) -> tuple[_Ranges | list[tuple[int, int]], int] | None:
        close = self.src.find(":]", t + 2)
        if close < 0:
            return None
        name = self.src[t : close + 2]
        inner = name[2:-2]
        negated = inner.startswith("^")
        ranges = _POSIX_CLASSES.get(inner[1:] if negated else inner)
        if ranges is None:
            raise _error(_INVALID_RANGE, name)
        return (_negate(ranges) if negated else ranges), close + 2


@functools.lru_cache(maxsize=512)
def compile_go(pattern: str) -> re.Pattern[str]:
    """Compile a Go regular expression; raise `GoRegexError` worded like Go's `regexp.Compile`."""
    translated = _Translator(pattern).translate()
    try:
        return re.compile(translated)
    except RecursionError:
        raise _error(_NESTING_DEPTH, pattern) from None


@dataclass(frozen=True, slots=True)
class _Ref:
    number: int  # -1 when the reference is by name
    name: str


@functools.lru_cache(maxsize=256)
def _parse_template(template: str) -> tuple[str | _Ref, ...]:
    """Split a Go `Expand` template into literal text and group references."""
    parts: list[str | _Ref] = []
    literal: list[str] = []
    i = 0
    while (dollar := template.find("$", i)) >= 0:
        literal.append(template[i:dollar])
        i = dollar + 1
        if template.startswith("$", i):
            literal.append("$")
            i += 1
            continue
        ref = _parse_reference(template, i)
        if ref is None:  # malformed: Go keeps the `$` as text and carries on after it
            literal.append("$")
            continue
        ref_value, i = ref
        parts.append("".join(literal))
        literal = []
        parts.append(ref_value)
    literal.append(template[i:])
    parts.append("".join(literal))
    return tuple(part for part in parts if part != "")


def _parse_reference(template: str, i: int) -> tuple[_Ref, int] | None:
    brace = template.startswith("{", i)
    start = end = i + 1 if brace else i
    while end < len(template) and (template[end].isalpha() or template[end].isdecimal() or template[end] == "_"):
        end += 1
    name = template[start:end]
    if not name:
        return None
    if brace:
        if not template.startswith("}", end):
            return None
        end += 1
    number = -1
    if name.isascii() and name.isdigit() and len(name) <= 9 and not (len(name) > 1 and name[0] == "0"):
        number = int(name)
    return _Ref(number, name), end


@functools.lru_cache(maxsize=256)
def _subexp_names(pattern: re.Pattern[str]) -> tuple[str, ...]:
    names = [""] * (pattern.groups + 1)
    for python_name, index in pattern.groupindex.items():
        if python_name.startswith(_MANGLED_PREFIX):
            python_name = python_name.split("_", 2)[2]
        names[index] = python_name
    return tuple(names)


def expand(template: str, match: re.Match[str]) -> str:
    """Go's `Regexp.Expand`: `$1`, `$name`, `${name}`, `$$`; unknown or unmatched groups give ""."""
    out: list[str] = []
    for part in _parse_template(template):
        if isinstance(part, str):
            out.append(part)
            continue
        if part.number >= 0:
            if part.number <= match.re.groups:
                out.append(match.group(part.number) or "")
            continue
        for index, name in enumerate(_subexp_names(match.re)):
            if name == part.name and (value := match.group(index)) is not None:
                out.append(value)
                break
    return "".join(out)
