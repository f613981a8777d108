"""Go's `regexp` package: RE2 syntax and semantics, run by the RE2 library itself (`google-re2`).

Selector patterns (`.selector.regex`) and OIDC subjects are written for Go, whose `regexp` is RE2:
matching takes time linear in the text, `$` matches only at the end of the text, `\\d \\s \\w \\b` are
ASCII-only, alternation is leftmost-first, and lookarounds and backreferences do not exist. Python's
`re` backtracks (`^(\\d+)+$` against a long tag can run for minutes) and reads the same pattern
differently, so patterns run in RE2. RE2's C++ parser and Go's are ports of one design and agree on
nearly everything; this module closes the gaps before RE2 sees a pattern, so that every pattern Go
accepts runs and every pattern Go rejects fails with the text Go prints (`error parsing regexp: …`):

- `\\C` (any byte) outside a class: RE2 accepts it, Go does not.
- Named groups: Go reads `(?P<` and `(?<` as the start of a name up to the next `>` and takes only
  ASCII letters, digits and `_`, so lookbehinds (`(?<=`, `(?<!`) fail as invalid named captures
  and Unicode names are refused; RE2 words the former differently and accepts the latter.
- `\\p{…}`: Go (1.25 on) looks names up ignoring case, `_`, `-` and spaces, and knows `Any`,
  `ASCII`, `Assigned`, `Cn`, `LC` and the long category aliases (`Letter`, `Decimal_Number`, …);
  RE2 knows only the exact category and script names, so the others are rewritten into classes
  RE2 knows. A name Go does not know is refused even where RE2 would take it.
- Nesting deeper than 1000 levels: Go refuses (`expression nests too deeply`), RE2 does not.
- Size: RE2 compiles a class such as `\\pL` to a UTF-8 automaton, Go to one instruction, so RE2
  runs with a 64 MiB program budget (`\\pL{1000}` fits); a pattern over it fails with Go's
  `expression too large` text, a few patterns earlier than Go would.
- A lone surrogate in a pattern (the only way a Python string carries invalid UTF-8) fails with
  Go's `invalid UTF-8`.
- RE2's error codes are reworded as Go's (`missing )` → `missing closing )`).

Text given to `search` may hold lone surrogates (undecodable bytes under `surrogateescape`, or
`\\udXXX` escapes from JSON). RE2 only takes UTF-8, so each surrogate is matched as U+FFFD, which is
how Go's regexp reads an invalid byte (one `RuneError` per byte); spans and groups still index and
slice the original string. Nothing raises for any text.

When a pattern holds both a Go-only error and one RE2 reports, Go's left-to-right order decides
which is reported. Known gaps: Unicode tables are RE2's (a newer Unicode version than Go's), and
`Cn`, `Assigned` and a negated `LC` inside a bracket class use Python's `unicodedata` tables.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import re2

__all__ = ["GoRegexError", "Match", "Regexp", "compile_go", "expand"]

_MAX_HEIGHT: Final = 1000
_MAX_REPEAT: Final = 1000
_MAX_MEM: Final = 64 << 20
_MAX_RUNE: Final = 0x10FFFF
_SURROGATE: Final = re.compile("[\ud800-\udfff]")

_INVALID_ESCAPE: Final = "invalid escape sequence"
_INVALID_RANGE: Final = "invalid character class range"
_INVALID_REPEAT_SIZE: Final = "invalid repeat count"
_INVALID_NAMED_CAPTURE: Final = "invalid named capture"
_INVALID_UTF8: Final = "invalid UTF-8"
_MISSING_BRACKET: Final = "missing closing ]"
_MISSING_PAREN: Final = "missing closing )"
_UNEXPECTED_PAREN: Final = "unexpected )"
_NESTING_DEPTH: Final = "expression nests too deeply"
_TOO_LARGE: Final = "expression too large"

# RE2's error code texts and Go's for the same error; longer texts first where one prefixes another.
_RE2_CODES: Final = (
    ("invalid character class range", _INVALID_RANGE),
    ("invalid character class", "invalid character class"),
    ("invalid escape sequence", _INVALID_ESCAPE),
    ("missing ]", _MISSING_BRACKET),
    ("missing )", _MISSING_PAREN),
    ("unexpected )", _UNEXPECTED_PAREN),
    ("trailing \\", "trailing backslash at end of expression"),
    ("no argument for repetition operator", "missing argument to repetition operator"),
    ("invalid repetition size", _INVALID_REPEAT_SIZE),
    ("bad repetition operator", "invalid nested repetition operator"),
    ("invalid perl operator", "invalid or unsupported Perl syntax"),
    ("invalid UTF-8", _INVALID_UTF8),
    ("invalid named capture group", _INVALID_NAMED_CAPTURE),
    ("pattern too large - compile failed", _TOO_LARGE),
)
# Go names the whole pattern in these errors; RE2 names the text it was given.
_WHOLE_PATTERN_CODES: Final = frozenset({_MISSING_PAREN, _UNEXPECTED_PAREN, _TOO_LARGE, _NESTING_DEPTH})
# Errors a pattern cut short before a Go-only error may show only because it was cut.
_CUT_SHORT_CODES: Final = frozenset({_MISSING_PAREN, _MISSING_BRACKET})

# ---- Unicode class names ------------------------------------------------------------------------

_CATEGORIES: Final = [
    "C",
    "Cc",
    "Cf",
    "Co",
    "Cs",
    "L",
    "Ll",
    "Lm",
    "Lo",
    "Lt",
    "Lu",
    "M",
    "Mc",
    "Me",
    "Mn",
    "N",
    "Nd",
    "Nl",
    "No",
    "P",
    "Pc",
    "Pd",
    "Pe",
    "Pf",
    "Pi",
    "Po",
    "Ps",
    "S",
    "Sc",
    "Sk",
    "Sm",
    "So",
    "Z",
    "Zl",
    "Zp",
    "Zs",
]
# Unicode's long names (PropertyValueAliases, General_Category) for the categories, as Go 1.25 has them.
_CATEGORY_ALIASES: Final = {
    "Other": "C",
    "Control": "Cc",
    "cntrl": "Cc",
    "Format": "Cf",
    "Unassigned": "Cn",
    "Private_Use": "Co",
    "Surrogate": "Cs",
    "Letter": "L",
    "Cased_Letter": "LC",
    "Lowercase_Letter": "Ll",
    "Modifier_Letter": "Lm",
    "Other_Letter": "Lo",
    "Titlecase_Letter": "Lt",
    "Uppercase_Letter": "Lu",
    "Mark": "M",
    "Combining_Mark": "M",
    "Spacing_Mark": "Mc",
    "Enclosing_Mark": "Me",
    "Nonspacing_Mark": "Mn",
    "Number": "N",
    "Decimal_Number": "Nd",
    "digit": "Nd",
    "Letter_Number": "Nl",
    "Other_Number": "No",
    "Punctuation": "P",
    "punct": "P",
    "Connector_Punctuation": "Pc",
    "Dash_Punctuation": "Pd",
    "Close_Punctuation": "Pe",
    "Final_Punctuation": "Pf",
    "Initial_Punctuation": "Pi",
    "Other_Punctuation": "Po",
    "Open_Punctuation": "Ps",
    "Symbol": "S",
    "Currency_Symbol": "Sc",
    "Modifier_Symbol": "Sk",
    "Math_Symbol": "Sm",
    "Other_Symbol": "So",
    "Separator": "Z",
    "Line_Separator": "Zl",
    "Paragraph_Separator": "Zp",
    "Space_Separator": "Zs",
}
# The scripts of Go's unicode tables (Unicode 15.0.0).
_SCRIPTS: Final = [
    "Adlam",
    "Ahom",
    "Anatolian_Hieroglyphs",
    "Arabic",
    "Armenian",
    "Avestan",
    "Balinese",
    "Bamum",
    "Bassa_Vah",
    "Batak",
    "Bengali",
    "Bhaiksuki",
    "Bopomofo",
    "Brahmi",
    "Braille",
    "Buginese",
    "Buhid",
    "Canadian_Aboriginal",
    "Carian",
    "Caucasian_Albanian",
    "Chakma",
    "Cham",
    "Cherokee",
    "Chorasmian",
    "Common",
    "Coptic",
    "Cuneiform",
    "Cypriot",
    "Cypro_Minoan",
    "Cyrillic",
    "Deseret",
    "Devanagari",
    "Dives_Akuru",
    "Dogra",
    "Duployan",
    "Egyptian_Hieroglyphs",
    "Elbasan",
    "Elymaic",
    "Ethiopic",
    "Georgian",
    "Glagolitic",
    "Gothic",
    "Grantha",
    "Greek",
    "Gujarati",
    "Gunjala_Gondi",
    "Gurmukhi",
    "Han",
    "Hangul",
    "Hanifi_Rohingya",
    "Hanunoo",
    "Hatran",
    "Hebrew",
    "Hiragana",
    "Imperial_Aramaic",
    "Inherited",
    "Inscriptional_Pahlavi",
    "Inscriptional_Parthian",
    "Javanese",
    "Kaithi",
    "Kannada",
    "Katakana",
    "Kawi",
    "Kayah_Li",
    "Kharoshthi",
    "Khitan_Small_Script",
    "Khmer",
    "Khojki",
    "Khudawadi",
    "Lao",
    "Latin",
    "Lepcha",
    "Limbu",
    "Linear_A",
    "Linear_B",
    "Lisu",
    "Lycian",
    "Lydian",
    "Mahajani",
    "Makasar",
    "Malayalam",
    "Mandaic",
    "Manichaean",
    "Marchen",
    "Masaram_Gondi",
    "Medefaidrin",
    "Meetei_Mayek",
    "Mende_Kikakui",
    "Meroitic_Cursive",
    "Meroitic_Hieroglyphs",
    "Miao",
    "Modi",
    "Mongolian",
    "Mro",
    "Multani",
    "Myanmar",
    "Nabataean",
    "Nag_Mundari",
    "Nandinagari",
    "New_Tai_Lue",
    "Newa",
    "Nko",
    "Nushu",
    "Nyiakeng_Puachue_Hmong",
    "Ogham",
    "Ol_Chiki",
    "Old_Hungarian",
    "Old_Italic",
    "Old_North_Arabian",
    "Old_Permic",
    "Old_Persian",
    "Old_Sogdian",
    "Old_South_Arabian",
    "Old_Turkic",
    "Old_Uyghur",
    "Oriya",
    "Osage",
    "Osmanya",
    "Pahawh_Hmong",
    "Palmyrene",
    "Pau_Cin_Hau",
    "Phags_Pa",
    "Phoenician",
    "Psalter_Pahlavi",
    "Rejang",
    "Runic",
    "Samaritan",
    "Saurashtra",
    "Sharada",
    "Shavian",
    "Siddham",
    "SignWriting",
    "Sinhala",
    "Sogdian",
    "Sora_Sompeng",
    "Soyombo",
    "Sundanese",
    "Syloti_Nagri",
    "Syriac",
    "Tagalog",
    "Tagbanwa",
    "Tai_Le",
    "Tai_Tham",
    "Tai_Viet",
    "Takri",
    "Tamil",
    "Tangsa",
    "Tangut",
    "Telugu",
    "Thaana",
    "Thai",
    "Tibetan",
    "Tifinagh",
    "Tirhuta",
    "Toto",
    "Ugaritic",
    "Vai",
    "Vithkuqi",
    "Wancho",
    "Warang_Citi",
    "Yezidi",
    "Yi",
    "Zanabazar_Square",
]
_ASSIGNED_RE2: Final = r"\p{C}\p{L}\p{M}\p{N}\p{P}\p{S}\p{Z}"  # RE2's C, like Go's, leaves out Cn
_LC_RE2: Final = r"\p{Lu}\p{Ll}\p{Lt}"
_ASCII_RE2: Final = r"\x00-\x7F"


def _canonical(name: str) -> str:
    """Go's lookup key for a class name: `_`, `-` and spaces dropped, ASCII upper case first, lower after."""
    letters = [ch for ch in name if ch not in "_- "]
    if not letters:
        return ""
    head = letters[0].upper() if letters[0].isascii() else letters[0]
    return head + "".join(ch.lower() if ch.isascii() else ch for ch in letters[1:])


@functools.cache
def _class_names() -> dict[str, str]:
    """Go's canonical class names → the name RE2 knows, or `*Name` for the four RE2 lacks."""
    names = {_canonical(script): script for script in _SCRIPTS}
    names.update({_canonical(category): category for category in _CATEGORIES})
    names.update({_canonical(alias): category for alias, category in _CATEGORY_ALIASES.items()})
    names.update({"Any": "Any", "Ascii": "*Ascii", "Assigned": "*Assigned", "Cn": "*Cn", "Lc": "*Lc"})
    special = {"Cn": "*Cn", "LC": "*Lc"}
    return {key: special.get(value, value) for key, value in names.items()}


@functools.cache
def _python_ranges(name: str) -> str:
    """Bracket-class body for the code points whose general category (Python's tables) is in `name`."""
    categories = set(name.split())
    runs: list[tuple[int, int]] = []
    for cp in range(_MAX_RUNE + 1):
        if unicodedata.category(chr(cp)) in categories:
            if runs and runs[-1][1] == cp - 1:
                runs[-1] = (runs[-1][0], cp)
            else:
                runs.append((cp, cp))
    return "".join(f"\\x{{{lo:X}}}" if lo == hi else f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in runs)


def _special_class(kind: str, negated: bool, in_class: bool) -> str:
    """RE2 text for Go's `Ascii`, `Assigned`, `Cn` and `LC`, standalone or inside a bracket class."""
    if kind == "Cn":
        kind, negated = "Assigned", not negated
    body = {"Ascii": _ASCII_RE2, "Assigned": _ASSIGNED_RE2, "Lc": _LC_RE2}[kind]
    if not in_class:
        return f"[{'^' if negated else ''}{body}]"
    if not negated:
        return body
    if kind == "Ascii":
        return rf"\x{{80}}-\x{{{_MAX_RUNE:X}}}"
    if kind == "Assigned":
        return _python_ranges("Cn")
    return _python_ranges(" ".join(c for c in [*_CATEGORIES, "Cn"] if c not in ("Lu", "Ll", "Lt") and len(c) == 2))


# ---- errors -------------------------------------------------------------------------------------


class GoRegexError(ValueError):
    """A pattern Go's regexp package rejects, worded as `regexp.Compile` words it."""


def _error(code: str, expr: str) -> GoRegexError:
    return GoRegexError(f"error parsing regexp: {code}: `{_SURROGATE.sub(chr(0xFFFD), expr)}`")


# ---- the pre-pass -------------------------------------------------------------------------------


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


class _Prepass:
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
            self.fail(at, _error(_NESTING_DEPTH, self.src))
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
        bad = _SURROGATE.search(src)
        end = bad.start() if bad else len(src)
        if self.walk(end) and bad is not None and self.error is None:
            self.fail(end, _error(_INVALID_UTF8, src[end:]))
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
                    self.fail(i, _error(_INVALID_REPEAT_SIZE, src[i : braces[0]]))
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
                self.fail(i, _error(_INVALID_NAMED_CAPTURE, src[i:]))
                return None
            name = src[name_start:close]
            if not name or not all((ch.isascii() and ch.isalnum()) or ch == "_" for ch in name):
                self.fail(i, _error(_INVALID_NAMED_CAPTURE, src[i : close + 1]))
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
            self.fail(i, _error(_INVALID_ESCAPE, src[i : i + 2]))
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
            self.fail(i, _error(_INVALID_RANGE, src[i:end]))
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
        target = _class_names().get(_canonical(name))
        if target is None:
            self.fail(i, _error(_INVALID_RANGE, src[i:after]))
            return None
        if target.startswith("*"):
            self.rewrite(i, after, _special_class(target[1:], negated, in_class))
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


# ---- compiling ----------------------------------------------------------------------------------


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
        for re2_code, go_code in _RE2_CODES:
            if message == re2_code:
                return None, go_code, ""
            if message.startswith(re2_code + ": "):
                return None, go_code, message[len(re2_code) + 2 :]
        return None, "regexp/syntax: internal error", message


def _go_error(prepass: _Prepass, rewritten: str, code: str, arg: str) -> GoRegexError:
    src = prepass.src
    if code in _WHOLE_PATTERN_CODES:
        return _error(code, src)
    if code == _MISSING_BRACKET and rewritten != src and rewritten.endswith(arg):
        return _error(code, src[prepass.source_position(len(rewritten) - len(arg)) :])
    return _error(code, arg)


@functools.lru_cache(maxsize=512)
def compile_go(pattern: str) -> Regexp:
    """Compile a Go regular expression; raise `GoRegexError` worded like Go's `regexp.Compile`."""
    prepass = _Prepass(pattern)
    prepass.run()
    rewritten = prepass.result()
    if prepass.error is not None:
        prefix = rewritten[: prepass.error_at]
        _, code, arg = _re2_compile(prefix)
        if code is not None and code not in _CUT_SHORT_CODES:
            raise _go_error(prepass, prefix, code, arg)
        raise prepass.error
    compiled, code, arg = _re2_compile(rewritten)
    if code is not None:
        raise _go_error(prepass, rewritten, code, arg)
    return Regexp(pattern, compiled, tuple(prepass.names))


# ---- matching -----------------------------------------------------------------------------------


def _subject(text: str) -> str:
    """What RE2 searches for non-ASCII `text`, indexed like `text`: each lone surrogate is read as
    U+FFFD (RE2 takes only UTF-8)."""
    if _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub("\ufffd", text)


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


# ---- Expand -------------------------------------------------------------------------------------


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


def expand(template: str, match: Match) -> str:
    """Go's `Regexp.Expand`: `$1`, `$name`, `${name}`, `$$`; unknown or unmatched groups give ""."""
    out: list[str] = []
    names = match.regexp.subexp_names
    for part in _parse_template(template):
        if isinstance(part, str):
            out.append(part)
            continue
        if part.number >= 0:
            if part.number < len(names):
                out.append(match.group(part.number) or "")
            continue
        for index, name in enumerate(names):
            if name == part.name and (value := match.group(index)) is not None:
                out.append(value)
                break
    return "".join(out)
