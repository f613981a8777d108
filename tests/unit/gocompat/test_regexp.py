"""Go regexp parity: matching semantics that differ from `re`, Go's error texts, Expand, and the
gaps between RE2's C++ parser and Go's that `gocompat.regexp` closes."""

from __future__ import annotations

import pytest

from fluxmirror.gocompat.regexp import GoRegexError, Regexp, compile_go, expand


def _search(pattern: str, text: str) -> str | None:
    match = compile_go(pattern).search(text)
    return None if match is None else match[0]


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        # anchors
        pytest.param(r"^v\d+$", "v12", "v12", id="anchored"),
        pytest.param(r"^v\d+$", "v12\n", None, id="dollar-not-before-final-newline"),
        pytest.param(r"(?m)^b$", "a\nb\nc", "b", id="multiline-dollar"),
        pytest.param(r"(?m:^b$)|x", "a\nb", "b", id="scoped-multiline"),
        pytest.param(r"a\z", "a\n", None, id="backslash-z-end-of-text"),
        pytest.param(r"\Aa", "ba", None, id="backslash-A"),
        pytest.param(r"^*a", "a", "a", id="repeated-anchor"),
        # ASCII-only perl classes and word boundary
        pytest.param(r"\d+", "٣4", "4", id="digit-ascii-only"),
        pytest.param(r"\w+", "é_x1", "_x1", id="word-ascii-only"),
        pytest.param(r"\s", "\u00a0\v \t", " ", id="space-excludes-nbsp-and-vt"),
        pytest.param(r"\bb", "éb", "b", id="word-boundary-ascii"),
        pytest.param(r"\Bb", "ab", "b", id="non-boundary"),
        pytest.param(r"[^\d]+", "12ab3", "ab", id="negated-digit-in-class"),
        pytest.param(r"[\D]+", "12ab3", "ab", id="perl-negation-in-class"),
        # literals Python would read differently
        pytest.param(r"a{,3}", "a{,3}", "a{,3}", id="brace-comma-literal"),
        pytest.param(r"a{01}", "a{01}", "a{01}", id="brace-leading-zero-literal"),
        pytest.param(r"x{2", "x{2", "x{2", id="unclosed-brace-literal"),
        pytest.param(r"a{2}", "aaa", "aa", id="counted"),
        pytest.param(r"a{2,}?", "aaaa", "aa", id="counted-lazy"),
        pytest.param(r"\Qa.b*\E+", "a.b**", "a.b**", id="quote-meta"),
        pytest.param(r"\Qa.b", "a.b", "a.b", id="unterminated-quote"),
        pytest.param(r"\x41\x{1F600}\101\0", "A\U0001f600A\0", "A\U0001f600A\0", id="hex-octal"),
        pytest.param(r"\12\1234", "\n\x534", "\n\x534", id="octal-up-to-three-digits"),
        pytest.param(r"\_\ \#", "_ #", "_ #", id="punctuation-escapes"),
        pytest.param(r"[]a]+", "]a]", "]a]", id="leading-bracket-literal"),
        pytest.param(r"[a-]+", "a-a", "a-a", id="trailing-dash-literal"),
        pytest.param(r"[\d-z]+", "1-z", "1-z", id="dash-after-class-literal"),
        pytest.param(r"[[]+", "[[", "[[", id="open-bracket-literal"),
        pytest.param(r"[&&~~|]+", "&~|", "&~|", id="python-set-operators-literal"),
        # POSIX and Unicode classes
        pytest.param(r"[[:alpha:]]+", "ab1", "ab", id="posix-alpha"),
        pytest.param(r"[[:^digit:]]+", "ab1", "ab", id="posix-negated"),
        pytest.param(r"[[:xdigit:][:punct:]]+", "fF9.g", "fF9.", id="posix-union"),
        pytest.param(r"\pL+", "héllo1", "héllo", id="unicode-letter"),
        pytest.param(r"\p{Lu}\p{Ll}", "aBc", "Bc", id="unicode-two-letter"),
        pytest.param(r"\PN+", "12ab", "ab", id="unicode-negated"),
        pytest.param(r"\p{^L}+", "ab12", "12", id="unicode-caret-negated"),
        pytest.param(r"[\p{Nd}x]+", "x٣", "x٣", id="unicode-in-class"),
        pytest.param(r"\p{Any}", "\n", "\n", id="unicode-any"),
        pytest.param(r"\p{ASCII}+", "abé", "ab", id="unicode-ascii"),
        # Go 1.25 names: any case, `_`/`-`/space ignored, long aliases, and classes RE2 lacks
        pytest.param(r"\p{Greek}+", "abΑβγ1", "Αβγ", id="unicode-script"),
        pytest.param(r"\p{greek}+", "abΑβγ1", "Αβγ", id="unicode-script-any-case"),
        pytest.param(r"\p{old italic}", "a\U00010300", "\U00010300", id="unicode-script-spaced"),
        pytest.param(r"\p{Letter}+", "1héllo1", "héllo", id="unicode-alias"),
        pytest.param(r"\p{decimal-number}+", "a٣4b", "٣4", id="unicode-alias-any-case"),
        pytest.param(r"\pl+", "1ab1", "ab", id="unicode-one-letter-lower-case"),
        pytest.param(r"\P{ascii}+", "abéü1", "éü", id="unicode-not-ascii"),
        pytest.param(r"[\P{ASCII}1]+", "ab1é2", "1é", id="unicode-not-ascii-in-class"),
        pytest.param(r"\p{LC}+", "1aBǅ1", "aBǅ", id="unicode-cased-letter"),
        pytest.param(r"[^\P{Lc}]+", "1aB1", "aB", id="unicode-cased-letter-double-negation"),
        pytest.param(r"[\P{LC}]+", "aB1-c", "1-", id="unicode-not-cased-letter-in-class"),
        pytest.param(r"\p{Cn}", "a\u0378", "\u0378", id="unicode-unassigned"),
        pytest.param(r"[\p{Cn}]", "a\u0378", "\u0378", id="unicode-unassigned-in-class"),
        pytest.param(r"\p{Assigned}+", "\u0378ab\u0378", "ab", id="unicode-assigned"),
        pytest.param(r"[\P{Assigned}]", "a\u0378", "\u0378", id="unicode-not-assigned-in-class"),
        pytest.param(r"\P{Any}", "abc", None, id="unicode-not-any"),
        # flags
        pytest.param(r"(?i)abc", "xABC", "ABC", id="fold"),
        pytest.param(r"a(?i)b|c", "C", "C", id="flag-spans-alternation"),
        pytest.param(r"a(?i)b|c", "aB", "aB", id="flag-mid-concat"),
        pytest.param(r"(?i:a)b", "AB", None, id="scoped-fold"),
        pytest.param(r"(?i)[k]", "K", "K", id="fold-class"),
        pytest.param(r"(a(?i)b)c", "aBC", None, id="flag-ends-with-group"),
        pytest.param(r"(?s).", "\n", "\n", id="dot-nl"),
        pytest.param(r".", "\n", None, id="dot-no-nl"),
        pytest.param(r"(?U)a+", "aaa", "a", id="ungreedy"),
        pytest.param(r"(?U)a+?", "aaa", "aaa", id="ungreedy-inverted"),
        pytest.param(r"(?i-i)a", "A", None, id="set-and-clear"),
        pytest.param(r"a(?i)*", "aa", "aa", id="flag-group-then-repeat"),
        pytest.param(r"(?)a", "a", "a", id="empty-flags"),
        # leftmost-first, like Go
        pytest.param(r"a|ab", "ab", "a", id="leftmost-first"),
        pytest.param(r"", "abc", "", id="empty-pattern"),
    ],
)
def test_matching(pattern: str, text: str, expected: str | None) -> None:
    assert _search(pattern, text) == expected


def test_named_groups_may_repeat_or_start_with_a_digit() -> None:
    regexp = compile_go(r"(?P<1st>a)(?<x>b)(?P<x>c)(?P<_go>d)(e)")
    assert regexp.subexp_names == ("", "1st", "x", "x", "_go", "")
    match = regexp.search("abcde")
    assert match is not None
    assert [expand(f"${{{name}}}", match) for name in ("1st", "x", "_go")] == ["a", "b", "d"]
    assert (match["x"], match.span("x"), match[5]) == ("b", (1, 2), "e")


def test_compile_is_cached() -> None:
    assert compile_go(r"^v(\d+)$") is compile_go(r"^v(\d+)$")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        pytest.param("(abc", "missing closing ): `(abc`", id="missing-paren"),
        pytest.param("abc)", "unexpected ): `abc)`", id="unexpected-paren"),
        pytest.param("[a", "missing closing ]: `[a`", id="missing-bracket"),
        pytest.param("x[^", "missing closing ]: `[^`", id="missing-bracket-negated"),
        pytest.param("[z-a]", "invalid character class range: `z-a`", id="reversed-range"),
        pytest.param("[[:foo:]]", "invalid character class range: `[:foo:]`", id="posix-unknown"),
        pytest.param(r"\p{Foo", r"invalid character class range: `\p{Foo`", id="unicode-unclosed"),
        pytest.param(r"\p{Klingon}", r"invalid character class range: `\p{Klingon}`", id="unicode-unknown"),
        pytest.param(r"[a\p{Klingon}]", r"invalid character class range: `\p{Klingon}`", id="unicode-unknown-in-class"),
        pytest.param(r"\pé", r"invalid character class range: `\pé`", id="unicode-non-ascii-name"),
        pytest.param(r"[\p", r"invalid character class range: `\p`", id="unicode-no-name-in-class"),
        pytest.param(r"\p", r"invalid character class range: `\p`", id="unicode-no-name"),
        pytest.param(r"[\p{ascii}", r"missing closing ]: `[\p{ascii}`", id="rewritten-class-unclosed"),
        pytest.param(r"(\p{letter}", r"missing closing ): `(\p{letter}`", id="rewritten-group-unclosed"),
        pytest.param("(?=a)", "invalid or unsupported Perl syntax: `(?=`", id="lookahead"),
        pytest.param("(?!a)", "invalid or unsupported Perl syntax: `(?!`", id="negative-lookahead"),
        pytest.param("(?<=a)b", "invalid named capture: `(?<=a)b`", id="lookbehind"),
        pytest.param("(?<!a)>", "invalid named capture: `(?<!a)>`", id="negative-lookbehind"),
        pytest.param("(?>a)", "invalid or unsupported Perl syntax: `(?>`", id="atomic"),
        pytest.param("(?(1)a|b)", "invalid or unsupported Perl syntax: `(?(`", id="conditional"),
        pytest.param("(?#note)", "invalid or unsupported Perl syntax: `(?#`", id="comment"),
        pytest.param("(?x)a", "invalid or unsupported Perl syntax: `(?x`", id="verbose-flag"),
        pytest.param("(?i", "invalid or unsupported Perl syntax: `(?i`", id="unterminated-flags"),
        pytest.param("(?i-)", "invalid or unsupported Perl syntax: `(?i-)`", id="dangling-minus"),
        pytest.param("(?P=n)", "invalid or unsupported Perl syntax: `(?P`", id="python-backref"),
        pytest.param("(?P<>a)", "invalid named capture: `(?P<>`", id="empty-name"),
        pytest.param("(?P<a-b>x)", "invalid named capture: `(?P<a-b>`", id="bad-name"),
        pytest.param("(?P<name", "invalid named capture: `(?P<name`", id="unclosed-name"),
        pytest.param("(?P<é>x)", "invalid named capture: `(?P<é>`", id="non-ascii-name"),
        pytest.param("(?<n-1>x)", "invalid named capture: `(?<n-1>`", id="bad-short-form-name"),
        pytest.param("(?P<", "invalid or unsupported Perl syntax: `(?P`", id="bare-name-opener"),
        pytest.param(r"(a)\1", r"invalid escape sequence: `\1`", id="backreference"),
        pytest.param(r"\8", r"invalid escape sequence: `\8`", id="bad-digit-escape"),
        pytest.param(r"\Z", r"invalid escape sequence: `\Z`", id="python-end-anchor"),
        pytest.param(r"\C", r"invalid escape sequence: `\C`", id="any-byte"),
        pytest.param(r"[\C]", r"invalid escape sequence: `\C`", id="any-byte-in-class"),
        pytest.param(r"\k<n>", r"invalid escape sequence: `\k`", id="named-backref"),
        pytest.param(r"[\b]", r"invalid escape sequence: `\b`", id="backspace-in-class"),
        pytest.param(r"\é", r"invalid escape sequence: `\é`", id="non-ascii-escape"),
        pytest.param(r"\x{zz}", r"invalid escape sequence: `\x{z`", id="hex-brace-bad-digit"),
        pytest.param(r"\x{}", r"invalid escape sequence: `\x{}`", id="hex-brace-empty"),
        pytest.param(r"\x{110000}", r"invalid escape sequence: `\x{110000`", id="hex-too-big"),
        pytest.param(r"\xg1", r"invalid escape sequence: `\xg1`", id="hex-bad-digit"),
        pytest.param(r"\x4", r"invalid escape sequence: `\x4`", id="hex-short"),
        pytest.param("\\", "trailing backslash at end of expression: ``", id="trailing-backslash"),
        pytest.param("a++", "invalid nested repetition operator: `++`", id="possessive"),
        pytest.param("a**", "invalid nested repetition operator: `**`", id="double-star"),
        pytest.param("a*?+", "invalid nested repetition operator: `*?+`", id="lazy-then-plus"),
        pytest.param("x{2}{3}", "invalid nested repetition operator: `{2}{3}`", id="double-count"),
        pytest.param("*a", "missing argument to repetition operator: `*`", id="leading-star"),
        pytest.param("a|*", "missing argument to repetition operator: `*`", id="star-after-bar"),
        pytest.param("(+)", "missing argument to repetition operator: `+`", id="plus-in-empty-group"),
        pytest.param("{2}?", "missing argument to repetition operator: `{2}?`", id="leading-count"),
        pytest.param("(?i)*", "missing argument to repetition operator: `*`", id="star-after-flags"),
        pytest.param("a{1001}", "invalid repeat count: `{1001}`", id="count-too-big"),
        pytest.param("a{2,1}", "invalid repeat count: `{2,1}`", id="count-reversed"),
        pytest.param("{2,1}", "invalid repeat count: `{2,1}`", id="count-checked-before-argument"),
        pytest.param("a{123456789}", "invalid repeat count: `{123456789}`", id="count-overflow"),
        pytest.param("a{1001}?", "invalid repeat count: `{1001}`", id="count-checked-before-lazy-mark"),
        pytest.param("a?{1001}", "invalid repeat count: `{1001}`", id="count-checked-before-nesting"),
        pytest.param("(a{500}){3}?", "invalid repeat count: `{3}?`", id="nested-count-product-lazy"),
        pytest.param("(a{500}){3}", "invalid repeat count: `{3}`", id="nested-count-product"),
        pytest.param("((a{10})*){101}", "invalid repeat count: `{101}`", id="nested-count-through-star"),
        pytest.param(
            "(" * 1001 + ")" * 1001,
            "expression nests too deeply: `" + "(" * 1001 + ")" * 1001 + "`",
            id="too-deep",
        ),
        pytest.param(
            "(a" * 1000 + ")" * 1000,
            "expression nests too deeply: `" + "(a" * 1000 + ")" * 1000 + "`",
            id="too-deep-concatenations",
        ),
        pytest.param("a\ud800b", "invalid UTF-8: `\ufffdb`", id="lone-surrogate"),
        pytest.param(r"\pL{1000}" * 20, "expression too large: `" + r"\pL{1000}" * 20 + "`", id="too-large"),
        # Go reports the first error left to right, whichever side catches it
        pytest.param(r"a**\C", "invalid nested repetition operator: `**`", id="re2-error-before-go-only-error"),
        pytest.param(r"\C**", r"invalid escape sequence: `\C`", id="go-only-error-before-re2-error"),
        pytest.param(r"(\C", r"invalid escape sequence: `\C`", id="go-only-error-inside-open-group"),
        pytest.param(
            r"[a\p{Klingon}", r"invalid character class range: `\p{Klingon}`", id="go-only-error-in-open-class"
        ),
    ],
)
def test_rejected(pattern: str, message: str) -> None:
    with pytest.raises(GoRegexError) as info:
        compile_go(pattern)
    assert str(info.value) == f"error parsing regexp: {message}"


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("(a{500}){2}", id="count-product-at-limit"),
        pytest.param("(a{0}){1000}", id="zero-count-ignored"),
        pytest.param("(a{1000})*", id="star-not-counted"),
        pytest.param(r"(?P<if>x)", id="python-keyword-name"),
        pytest.param("(" * 999 + ")" * 999, id="nesting-at-limit"),
        pytest.param("(?:" * 2000 + "a" + ")" * 2000, id="non-capturing-groups-add-no-depth"),
        pytest.param(r"\pL{1000}", id="large-unicode-repeat"),
    ],
)
def test_accepted_edge_cases(pattern: str) -> None:
    assert isinstance(compile_go(pattern), Regexp)


_EXPAND_PATTERN = r"(?P<name>[a-z]+)-(?P<num>\d+)(?P<opt>x)?(?P<name>z)?(?P<n2>!)?"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("$name", "abc", id="dollar-name"),
        pytest.param("${name}", "abc", id="braced-name"),
        pytest.param("$1/$2", "abc/42", id="numbers"),
        pytest.param("${1}0", "abc0", id="braced-number-then-digit"),
        pytest.param("$10", "", id="ten-is-one-name"),
        pytest.param("$0", "abc-42!", id="whole-match"),
        pytest.param("$name_x", "", id="name-runs-through-underscore"),
        pytest.param("$name.x", "abc.x", id="name-stops-at-dot"),
        pytest.param("$opt", "", id="unmatched-group-empty"),
        pytest.param("$nope", "", id="unknown-name-empty"),
        pytest.param("$9", "", id="unknown-number-empty"),
        pytest.param("$01", "", id="leading-zero-is-a-name"),
        pytest.param("$$name", "$name", id="escaped-dollar"),
        pytest.param("cost: $", "cost: $", id="trailing-dollar"),
        pytest.param("$-1", "$-1", id="malformed-kept"),
        pytest.param("${name", "${name", id="unclosed-brace-kept"),
        pytest.param("${}", "${}", id="empty-brace-kept"),
        pytest.param("${n2}", "!", id="braced-alnum"),
        pytest.param("$é", "", id="unicode-letter-name"),
        pytest.param("v$num-$name", "v42-abc", id="mixed"),
        pytest.param("no refs", "no refs", id="literal"),
    ],
)
def test_expand(template: str, expected: str) -> None:
    match = compile_go(_EXPAND_PATTERN).search("abc-42!")
    assert match is not None
    assert expand(template, match) == expected


def test_expand_duplicate_name_uses_first_participating_group() -> None:
    match = compile_go(r"(?P<v>a)?(?P<v>b)").search("b")
    assert match is not None
    assert expand("$v", match) == "b"


# ---- matching as selection uses it ---------------------------------------------------------------


def test_search_is_unanchored_and_leftmost_first() -> None:
    """Go's `MatchString` finds a match anywhere; `FindStringSubmatch` takes the leftmost match and,
    among matches there, the first alternative (not the longest)."""
    regexp = compile_go(r"(a|ab)(c|bcd)?")
    assert regexp.match_string("xxabcd")
    match = regexp.search("xxabcd")
    assert match is not None
    assert (match.span(), match[1], match[2]) == ((2, 6), "a", "bcd")
    assert compile_go("^v").match_string("1.0") is False


def test_fullmatch_and_finditer() -> None:
    regexp = compile_go(r"(?P<n>\d+)")
    assert [m["n"] for m in regexp.finditer("a1b22c333")] == ["1", "22", "333"]
    assert regexp.fullmatch("12") is not None
    assert regexp.fullmatch("12a") is None


def test_unmatched_group_is_none_and_unknown_name_raises() -> None:
    match = compile_go(r"(a)?(?P<b>b)").search("b")
    assert match is not None
    assert (match[1], match.span(1), match["b"]) == (None, (-1, -1), "b")
    with pytest.raises(IndexError):
        match.group("nope")


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        pytest.param(r"^(\d+)+$", "1" * 100_000 + "x", id="nested-plus"),
        pytest.param(r"(a|aa)+$", "a" * 100_000 + "!", id="overlapping-alternation"),
        pytest.param(r"^(a+)+b", "a" * 100_000, id="nested-plus-no-end"),
        pytest.param(r"(x+x+)+y", "x" * 100_000, id="adjacent-pluses"),
        pytest.param(r"^(\w+\s?)*$", "word " * 20_000 + "!", id="words"),
    ],
)
def test_hostile_tags_run_in_linear_time(pattern: str, text: str) -> None:
    """Patterns that take a backtracking engine exponential time finish at once (RE2 is linear)."""
    assert compile_go(pattern).search(text) is None


@pytest.mark.parametrize(
    ("pattern", "text", "span", "groups"),
    [
        # Python's surrogateescape keeps undecodable bytes as U+DC80..U+DCFF; Go reads each such byte
        # as one RuneError (U+FFFD), and so does this module; groups slice the original text.
        pytest.param(r"b(.)(.)c", "ab\udcff\ud800c", (1, 5), ("\udcff", "\ud800"), id="surrogates-match-dot"),
        pytest.param(r"\x{FFFD}+", "a\udc80\udc81", (1, 3), (), id="surrogates-are-replacement-characters"),
        pytest.param(r"^v(\d+)$", "v1\udcff", None, (), id="surrogate-is-not-a-digit"),
        pytest.param(r"(\p{Greek}+)", "tag-αβγ-é", (4, 7), ("αβγ",), id="non-ascii-text"),
        pytest.param(r"(\w+)", "é\U0001f600x_1", (2, 5), ("x_1",), id="astral-characters-count-as-one"),
    ],
)
def test_text_that_is_not_plain_utf8(
    pattern: str, text: str, span: tuple[int, int] | None, groups: tuple[str, ...]
) -> None:
    match = compile_go(pattern).search(text)
    if span is None:
        assert match is None
        return
    assert match is not None
    assert match.span() == span
    assert tuple(match[index] for index in range(1, len(groups) + 1)) == groups
