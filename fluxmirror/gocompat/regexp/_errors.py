"""Go's wording for a pattern it rejects: the error codes `regexp/syntax` prints, RE2's codes
reworded as Go's, and `GoRegexError`. One place for both sources of errors, the pre-pass (errors
only Go reports) and the compiler (errors RE2 reports), so a user sees Go's text either way.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "CUT_SHORT_CODES",
    "INVALID_ESCAPE",
    "INVALID_NAMED_CAPTURE",
    "INVALID_RANGE",
    "INVALID_REPEAT_SIZE",
    "INVALID_UTF8",
    "MISSING_BRACKET",
    "NESTING_DEPTH",
    "RE2_CODES",
    "SURROGATE",
    "WHOLE_PATTERN_CODES",
    "GoRegexError",
    "parse_error",
]

SURROGATE: Final = re.compile("[\ud800-\udfff]")
INVALID_ESCAPE: Final = "invalid escape sequence"
INVALID_RANGE: Final = "invalid character class range"
INVALID_REPEAT_SIZE: Final = "invalid repeat count"
INVALID_NAMED_CAPTURE: Final = "invalid named capture"
INVALID_UTF8: Final = "invalid UTF-8"
MISSING_BRACKET: Final = "missing closing ]"
_MISSING_PAREN: Final = "missing closing )"
_UNEXPECTED_PAREN: Final = "unexpected )"
NESTING_DEPTH: Final = "expression nests too deeply"
_TOO_LARGE: Final = "expression too large"

# RE2's error code texts and Go's for the same error; longer texts first where one prefixes another.
RE2_CODES: Final = (
    ("invalid character class range", INVALID_RANGE),
    ("invalid character class", "invalid character class"),
    ("invalid escape sequence", INVALID_ESCAPE),
    ("missing ]", MISSING_BRACKET),
    ("missing )", _MISSING_PAREN),
    ("unexpected )", _UNEXPECTED_PAREN),
    ("trailing \\", "trailing backslash at end of expression"),
    ("no argument for repetition operator", "missing argument to repetition operator"),
    ("invalid repetition size", INVALID_REPEAT_SIZE),
    ("bad repetition operator", "invalid nested repetition operator"),
    ("invalid perl operator", "invalid or unsupported Perl syntax"),
    ("invalid UTF-8", INVALID_UTF8),
    ("invalid named capture group", INVALID_NAMED_CAPTURE),
    ("pattern too large - compile failed", _TOO_LARGE),
)
# Go names the whole pattern in these errors; RE2 names the text it was given.
WHOLE_PATTERN_CODES: Final = frozenset({_MISSING_PAREN, _UNEXPECTED_PAREN, _TOO_LARGE, NESTING_DEPTH})
# Errors a pattern cut short before a Go-only error may show only because it was cut.
CUT_SHORT_CODES: Final = frozenset({_MISSING_PAREN, MISSING_BRACKET})


class GoRegexError(ValueError):
    """A pattern Go's regexp package rejects, worded as `regexp.Compile` words it."""


def parse_error(code: str, expr: str) -> GoRegexError:
    return GoRegexError(f"error parsing regexp: {code}: `{SURROGATE.sub(chr(0xFFFD), expr)}`")
