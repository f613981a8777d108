"""`${VAR}` substitution: every operator, escaping, strict mode and parse errors, with exact output.

Every expected value is what the reference, fluxcd/pkg/envsubst (checked at commit e2cfd1a2 of
fluxcd/pkg, `Eval` with a strict lookup as `flux mirror` runs it), returns for the same text and
environment, recorded by running it. The exceptions are where the reference has no result of its
own: a negative substring length (it crashes; we count from the end as bash does), several unset
variables (it names the first; we name all), and the cost bounds.
"""

from __future__ import annotations

import time
from fnmatch import fnmatchcase

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxmirror.config import envsubst
from fluxmirror.config.envsubst import EnvsubstError, substitute

PREFIX = "substitute environment variables: "

ENV = {
    "V": "abcABC123ABCabc",
    "FILE": "bash.string.txt",
    "PATH_NAME": "/home/bozo/ideas/thoughts.for.today",
    "SLASHES": "foo/bar/baz",
    "EMPTY": "",
    "LOWER": "hello world",
    "UPPER": "HELLO WORLD",
    "UNI": "ünïcødé 🚀",
    "N": "2",
    "PAT": "abc",
    "Q": "docker.io/library/nginx",
    "IMG": "ghcr.io/fluxcd/source-controller:v1.2.3",
    "P3": "+3",
    "M3": "-3",
}


def case(text: str, want: str, name: str) -> object:
    return pytest.param(text, want, id=name)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        # plain and escaping
        case("${V}", "abcABC123ABCabc", "plain"),
        case("a ${V} b ${N}", "a abcABC123ABCabc b 2", "plain-in-text"),
        case("${EMPTY}", "", "set-to-empty"),
        case("$V and $ts and $1", "$V and $ts and $1", "bare-dollar-name-untouched"),
        case('extract: "$ts"', 'extract: "$ts"', "bare-in-yaml"),
        case("$", "$", "lone-dollar"),
        case("cost: 5$ {x}", "cost: 5$ {x}", "dollar-space-brace"),
        case("$$", "$", "double-dollar"),
        case("$${V}", "${V}", "escaped-expansion"),
        case("$$V", "$V", "escaped-bare"),
        case("$$$", "$$", "triple-dollar"),
        case("$$${V}", "$abcABC123ABCabc", "escape-then-expansion"),
        case("$$$${V}", "$${V}", "two-escapes"),
        case("x$${V${N}}", "x${V2}", "escape-keeps-brace-text"),
        case("a}b{c", "a}b{c", "stray-braces"),
        case("${V}}", "abcABC123ABCabc}", "extra-close"),
        case("\\\\ ${N} \\/", "\\\\ 2 \\/", "backslash-outside-expansion"),
        # length and case
        case("${#V}", "15", "length"),
        case("${#EMPTY}", "0", "length-empty"),
        case("${#UNI}", "16", "length-counts-utf8-bytes"),
        case("${LOWER^}", "Hello world", "upper-first"),
        case("${LOWER^^}", "HELLO WORLD", "upper-all"),
        case("${UPPER,}", "hELLO WORLD", "lower-first"),
        case("${UPPER,,}", "hello world", "lower-all"),
        case("${UNI^}", "Ünïcødé 🚀", "upper-first-unicode"),
        case("${UNI^^}", "ÜNÏCØDÉ 🚀", "upper-all-unicode"),
        case("${EMPTY^}", "", "upper-first-empty"),
        case("${V^,}", "abcABC123ABCabc", "mixed-case-pair-unchanged"),
        case("${V,^}", "abcABC123ABCabc", "mixed-case-pair-unchanged-reversed"),
        case("${SIMPLE^^}", "ßŉﬁ İ ᾼ", "simple-case-mapping-upper"),
        case("${SIMPLE,,}", "ßŉﬁ i ᾳ", "simple-case-mapping-lower"),
        case("${GREEK^^}", "ᾼᾜ", "simple-upper-of-iota-subscript"),
        # substring
        case("${PATH_NAME:11}", "ideas/thoughts.for.today", "offset"),
        case("${PATH_NAME:11:5}", "ideas", "offset-length"),
        case("${V:0}", "abcABC123ABCabc", "offset-zero"),
        case("${V:15}", "", "offset-at-end"),
        case("${V:99}", "", "offset-past-end"),
        case("${V:3:0}", "", "length-zero"),
        case("${V:12:99}", "abc", "length-past-end"),
        case("${V: -3}", "abcABC123ABCabc", "blank-before-offset-is-not-a-number"),
        case("${V:${M3}}", "abc", "negative-offset"),
        case("${V:${M3}:2}", "ab", "negative-offset-with-length"),
        case("${V:-99}", "abcABC123ABCabc", "colon-dash-is-a-default-not-an-offset"),
        case("${V:${P3}}", "ABC123ABCabc", "plus-sign-offset"),
        case("${V:+3}", "abcABC123ABCabc", "colon-plus-is-a-default-not-an-offset"),
        case("${V:007}", "23ABCabc", "leading-zeros"),
        case("${V:1::2}", "bc", "colons-between-offset-and-length"),
        case("${V:1:2:3}", "abcABC123ABCabc", "length-with-colon-is-not-a-number"),
        # the reference crashes on a negative length: we count from the end, as bash does
        case("${V:1:${M3}}", "bcABC123ABC", "negative-length"),
        case("${V:13:${M3}}", "", "negative-length-before-offset"),
        case("${V:${N}}", "cABC123ABCabc", "nested-offset"),
        case("${V:${N}:${N}}", "cA", "nested-offset-length"),
        case("${V:x}", "abcABC123ABCabc", "non-numeric-offset"),
        case("${V:1:x}", "abcABC123ABCabc", "non-numeric-length"),
        case("${V:99999999999999999999}", "abcABC123ABCabc", "offset-overflows-int64"),
        case("${UNI:2:3}", "nï", "substring-counts-utf8-bytes"),
        case("${UNI:0:1}${UNI:1}", "ünïcødé 🚀", "halves-of-a-character-rejoined"),
        # defaults: `:` also treats empty as unset
        case("${MISSING:-fallback}", "fallback", "colon-dash-unset"),
        case("${EMPTY:-fallback}", "fallback", "colon-dash-empty"),
        case("${V:-fallback}", "abcABC123ABCabc", "colon-dash-set"),
        case("${MISSING:=fallback}", "fallback", "colon-equals-unset"),
        case("${EMPTY:=fallback}", "fallback", "colon-equals-empty"),
        case("${MISSING=fallback}", "fallback", "equals-unset"),
        case("${EMPTY=fallback}", "fallback", "equals-empty"),
        case("${V=fallback}", "abcABC123ABCabc", "equals-set"),
        case("${MISSING:=a} ${MISSING:-b}", "a b", "colon-equals-does-not-assign"),
        case("${MISSING=a} ${MISSING=b}", "a b", "equals-does-not-assign"),
        case("${EMPTY==x}", "=x", "equals-then-text"),
        case("${MISSING:-}", "", "empty-default"),
        case("${MISSING:-a b:c/d#e%f}", "a b:c/d#e%f", "default-with-operator-characters"),
        case("${MISSING:-{x}y}", "{xy}", "default-ends-at-first-brace"),
        case("${MISSING:-${N}}", "2", "nested-default"),
        case("${MISSING:-pre-${N}-post}", "pre-2-post", "nested-default-in-text"),
        case("${MISSING:-${ALSO_MISSING:-${V:0:3}}}", "abc", "doubly-nested-default"),
        case("${V:-${N}x}", "abcABC123ABCabc", "default-unused"),
        case("${MISSING:-$${N}}", "$2", "no-dollar-escape-in-default"),
        case("${MISSING:-x}}", "x}", "default-then-brace"),
        case("${MISSING:-$ts}", "$ts", "bare-dollar-in-default"),
        case("${MISSING:-a\\/b}", "a\\/b", "backslash-literal-in-default"),
        case("${MISSING:-${N^}x}", "2x", "nested-operator-in-default"),
        # `:+` and `:?` are defaults too: the value when it is not empty, else the word, no error
        case("${V:+alt}", "abcABC123ABCabc", "colon-plus-set"),
        case("${EMPTY:+alt}", "alt", "colon-plus-empty"),
        case("${MISSING:+alt}", "alt", "colon-plus-unset"),
        case("${V:?boom}", "abcABC123ABCabc", "colon-question-set"),
        case("${EMPTY:?boom}", "boom", "colon-question-empty"),
        case("${MISSING:?boom}", "boom", "colon-question-unset"),
        case("${MISSING:?}", "", "colon-question-unset-no-word"),
        # prefix and suffix removal (glob)
        case("${FILE#*.}", "string.txt", "remove-shortest-prefix"),
        case("${FILE##*.}", "txt", "remove-longest-prefix"),
        case("${FILE%.*}", "bash.string", "remove-shortest-suffix"),
        case("${FILE%%.*}", "bash", "remove-longest-suffix"),
        case("${PATH_NAME#*/}", "home/bozo/ideas/thoughts.for.today", "star-matches-slash-shortest"),
        case("${PATH_NAME##*/}", "thoughts.for.today", "star-matches-slash-longest"),
        case("${FILE#bash.}", "string.txt", "remove-literal-prefix"),
        case("${FILE%.txt}", "bash.string", "remove-literal-suffix"),
        case("${FILE#nope}", "bash.string.txt", "remove-no-match"),
        case("${IMG##*/}", "source-controller:v1.2.3", "remove-registry-and-owner"),
        case("${IMG%:*}", "ghcr.io/fluxcd/source-controller", "remove-tag"),
        case("${IMG#*:}", "v1.2.3", "keep-tag"),
        case("${FILE#*}", "ash.string.txt", "remove-shortest-is-never-empty"),
        case("${FILE%*}", "bash.string.tx", "remove-shortest-suffix-is-never-empty"),
        case("${FILE%%*}", "", "remove-longest-suffix-star-is-all"),
        case("${FILE##*}", "", "remove-longest-star-is-all"),
        case("${FILE#?}", "ash.string.txt", "remove-question-mark"),
        case("${FILE#[a-c]?}", "sh.string.txt", "remove-range"),
        case("${FILE#[!a]}", "bash.string.txt", "bang-is-not-negation"),
        case("${FILE#[!b]}", "ash.string.txt", "bang-is-a-member"),
        case("${FILE#[^a]}", "ash.string.txt", "caret-negated-class"),
        case("${FILE#[^b]}", "bash.string.txt", "caret-negated-class-no-match"),
        # `%` reverses the pattern too, which breaks every bracket expression
        case("${FILE%[.]*}", "bash.string.txt", "suffix-class-is-malformed-reversed"),
        case("${V%%[0-9]*}", "abcABC123ABCabc", "suffix-range-is-malformed-reversed"),
        case("${FILE#\\b}", "ash.string.txt", "remove-escaped-char"),
        case("${FILE%\\t}", "bash.string.txt", "suffix-escape-is-malformed-reversed"),
        case("${V#[}", "abcABC123ABCabc", "unclosed-bracket-leaves-value"),
        case("${V#a[}", "abcABC123ABCabc", "malformed-pattern-met-leaves-value"),
        case("${V#${PAT}}", "ABC123ABCabc", "nested-pattern"),
        case("${UNI%% *}", "ünïcødé", "remove-unicode"),
        case("${UNI##?}", "nïcødé 🚀", "question-mark-takes-a-character"),
        case("${UNI%%?}", "ünïcødé ", "question-mark-takes-a-character-suffix"),
        case("${UNI%?}", "ünïcødé \ufffd\ufffd\ufffd", "shortest-suffix-cuts-a-byte-of-a-character"),
        # replacement: literal text, not a glob
        case("${V/abc/xyz}", "xyzABC123ABCabc", "replace-first"),
        case("${V//abc/xyz}", "xyzABC123ABCxyz", "replace-all"),
        case("${V/#abc/XYZ}", "XYZABC123ABCabc", "replace-prefix"),
        case("${V/%abc/XYZ}", "abcABC123ABCXYZ", "replace-suffix"),
        case("${V/#ABC/XYZ}", "abcABC123ABCabc", "replace-prefix-no-match"),
        case("${V/%ABC/XYZ}", "abcABC123ABCabc", "replace-suffix-no-match"),
        case("${V/abc/}", "ABC123ABCabc", "replace-with-empty"),
        case("${V//abc/}", "ABC123ABC", "replace-all-with-empty"),
        case("${V/#abc/}", "abcABC123ABCabc", "anchored-without-replacement-unchanged"),
        case("${V/%abc/}", "abcABC123ABCabc", "anchored-suffix-without-replacement-unchanged"),
        case("${V/zzz/x}", "abcABC123ABCabc", "replace-no-match"),
        case("${V//[0-9]/#}", "abcABC123ABCabc", "brackets-are-literal"),
        case("${V//b?/_}", "abcABC123ABCabc", "question-mark-is-literal"),
        case("${V/B*/_}", "abcABC123ABCabc", "star-is-literal"),
        case("${FILE//./-}", "bash-string-txt", "dot-is-literal"),
        case("${V//${EMPTY}/-}", "-a-b-c-A-B-C-1-2-3-A-B-C-a-b-c-", "empty-pattern-matches-between-characters"),
        case("${UNI//${EMPTY}/.}", ".ü.n.ï.c.ø.d.é. .🚀.", "empty-pattern-between-multibyte-characters"),
        case("${V/${EMPTY}/-}", "-abcABC123ABCabc", "empty-pattern-first"),
        case("${V/#${EMPTY}/-}", "-abcABC123ABCabc", "empty-pattern-prefix"),
        case("${V/%${EMPTY}/-}", "abcABC123ABCabc-", "empty-pattern-suffix"),
        case("${SLASHES/o//b}", "fbo/bar/baz", "slashes-between-operands"),
        case("${V/a}b/c}", "abcABC123ABCabc", "brace-in-pattern"),
        case("${SLASHES/\\//-}", "foo-bar/baz", "escaped-slash-pattern"),
        case("${SLASHES//\\//-}", "foo-bar-baz", "escaped-slash-pattern-all"),
        case("${SLASHES//\\//\\/\\/}", "foo//bar//baz", "escaped-slash-replacement"),
        case("${SLASHES//\\//\\\\}", "foo\\bar\\baz", "escaped-backslash-replacement"),
        case("${SLASHES/o/a/b}", "fa/bo/bar/baz", "replacement-may-contain-slash"),
        case("${Q/docker.io/ghcr.io}", "ghcr.io/library/nginx", "replace-registry"),
        case("${V//${PAT}/${N}}", "2ABC123ABC2", "nested-pattern-and-replacement"),
        case("${V/a/$$}", "$bcABC123ABCabc", "escaped-dollar-in-replacement"),
        case("${V/a/$${N}}", "${NbcABC123ABCabc}", "escaped-dollar-then-brace-ends-replacement"),
        case("${UNI/ü/u}", "unïcødé 🚀", "replace-unicode"),
        # names
        case("${_}", "underscore", "underscore-name"),
        case("${1}", "one", "digit-name"),
        case("${ÄÖ_9}", "unicode-name", "unicode-letter-name"),
    ],
)
def test_substitute(text: str, want: str) -> None:
    env = {**ENV, "_": "underscore", "1": "one", "ÄÖ_9": "unicode-name", "SIMPLE": "ßŉﬁ İ ᾼ", "GREEK": "ᾳᾔ"}
    assert substitute(text, env) == want


def test_whole_yaml_document_including_comments() -> None:
    text = (
        "# token for ${HOST}, escaped $${HOST}\n"
        "hosts:\n"
        "  - host: ${HOST}  # ${HOST:-unused}\n"
        "    ${KEY}: ${TOKEN}\n"
        "artifacts:\n"
        "  - selector:\n"
        '      regex: {pattern: "^v(?P<ts>\\d+)$", extract: "$ts"}\n'
    )
    env = {"HOST": "quay.io", "KEY": "credential", "TOKEN": "s3cr3t"}
    assert substitute(text, env) == (
        "# token for quay.io, escaped ${HOST}\n"
        "hosts:\n"
        "  - host: quay.io  # quay.io\n"
        "    credential: s3cr3t\n"
        "artifacts:\n"
        "  - selector:\n"
        '      regex: {pattern: "^v(?P<ts>\\d+)$", extract: "$ts"}\n'
    )


def test_unset_variable_in_comment_is_still_an_error() -> None:
    with pytest.raises(EnvsubstError) as info:
        substitute("a: 1  # see ${DOCS_URL}\n", {})
    assert str(info.value) == PREFIX + 'variable not set (strict mode): "DOCS_URL"'


def test_unicode_values_and_text() -> None:
    env = {"GREETING": "héllo wörld ✓", "EMOJI": "🚀"}
    assert substitute("ключ: ${GREETING} ${EMOJI}${EMOJI} ✓", env) == "ключ: héllo wörld ✓ 🚀🚀 ✓"


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        pytest.param("${MISSING}", 'variable not set (strict mode): "MISSING"', id="bare"),
        pytest.param("${#MISSING}", 'variable not set (strict mode): "MISSING"', id="length"),
        pytest.param("${MISSING^^}", 'variable not set (strict mode): "MISSING"', id="case"),
        pytest.param("${MISSING:0:1}", 'variable not set (strict mode): "MISSING"', id="substring"),
        pytest.param("${MISSING#x}", 'variable not set (strict mode): "MISSING"', id="remove"),
        pytest.param("${MISSING/a/b}", 'variable not set (strict mode): "MISSING"', id="replace"),
        pytest.param("${MISSING} ${MISSING}", 'variable not set (strict mode): "MISSING"', id="repeated"),
        pytest.param("${MISSING:-${INNER}}", 'variable not set (strict mode): "INNER"', id="in-needed-default"),
        pytest.param("${N:-${INNER}}", 'variable not set (strict mode): "INNER"', id="in-unused-default"),
        pytest.param("${N/${INNER}/x}", 'variable not set (strict mode): "INNER"', id="in-pattern"),
        pytest.param(
            "${B} ${A} ${B} ${C:-x} ${D:-${A}} ${E//${F}/x}",
            'variables not set (strict mode): "B", "A", "E", "F"',
            id="several-first-appearance-order",
        ),
        pytest.param("${A}${B}", 'variables not set (strict mode): "A", "B"', id="two"),
        pytest.param("${MISSING:?${A}}", 'variable not set (strict mode): "A"', id="in-question-word"),
    ],
)
def test_strict_mode_errors(text: str, detail: str) -> None:
    with pytest.raises(EnvsubstError) as info:
        substitute(text, {"EMPTY": "", "N": "2"})
    assert str(info.value) == PREFIX + detail


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        pytest.param("${", "unable to parse variable name", id="open-at-eof"),
        pytest.param("${}", "unable to parse variable name", id="empty"),
        pytest.param("${ X}", "unable to parse variable name", id="leading-blank"),
        pytest.param("${$X}", "unable to parse variable name", id="dollar-name"),
        pytest.param("${-X}", "unable to parse variable name", id="operator-first"),
        pytest.param("${X", "missing closing brace", id="unclosed"),
        pytest.param("${X Y}", "missing closing brace", id="blank-in-name"),
        pytest.param("${X!}", "missing closing brace", id="unknown-operator"),
        pytest.param("${X.Y}", "missing closing brace", id="dot-in-name"),
        pytest.param("${#}", "bad substitution", id="length-without-name"),
        pytest.param("${#X", "bad substitution", id="length-unclosed"),
        pytest.param("${#X:-a}", "bad substitution", id="length-with-operator"),
        pytest.param("${X^", "bad substitution", id="case-unclosed"),
        pytest.param("${X^^^}", "bad substitution", id="case-tripled"),
        pytest.param("${X^,,}", "bad substitution", id="case-three-mixed"),
        pytest.param("${X:-abc", "unable to parse substitution within function", id="default-unclosed"),
        pytest.param("${X-", "missing closing brace", id="dash-at-eof"),
        pytest.param("${X:", "bad substitution", id="colon-at-eof"),
        pytest.param("${X-x}", "missing closing brace", id="dash-is-not-an-operator"),
        pytest.param("${X+x}", "missing closing brace", id="plus-is-not-an-operator"),
        pytest.param("${X?x}", "missing closing brace", id="question-is-not-an-operator"),
        pytest.param("${MISSING-x}", "missing closing brace", id="dash-unset-is-still-a-parse-error"),
        pytest.param("${X?}", "missing closing brace", id="bare-question"),
        pytest.param("${X:é}", "bad substitution", id="colon-then-multibyte"),
        pytest.param("${X:-a${Y", "missing closing brace", id="nested-unclosed-in-default"),
        pytest.param("${X:}", "unable to parse substitution within function", id="empty-offset"),
        pytest.param("${X::1}", "unable to parse substitution within function", id="empty-offset-with-length"),
        pytest.param("${X:1:}", "unable to parse substitution within function", id="empty-length"),
        pytest.param("${X:1:", "unable to parse substitution within function", id="length-at-eof"),
        pytest.param("${X:1", "bad substitution", id="offset-unclosed"),
        pytest.param("${X:1:2", "bad substitution", id="length-unclosed"),
        pytest.param("${X#}", "unable to parse substitution within function", id="empty-prefix-pattern"),
        pytest.param("${X%%}", "unable to parse substitution within function", id="empty-suffix-pattern"),
        pytest.param("${X#a", "bad substitution", id="prefix-unclosed"),
        pytest.param("${X/", "unable to parse substitution within function", id="replace-at-eof"),
        pytest.param("${X//}", "bad substitution", id="replace-empty-pattern"),
        pytest.param("${X/#/pre}", "unable to parse substitution within function", id="replace-prefix-empty-pattern"),
        pytest.param("${X/%/post}", "unable to parse substitution within function", id="replace-suffix-empty-pattern"),
        pytest.param("${X/abc}", "bad substitution", id="replace-without-separator"),
        pytest.param("${X/a${Y}/b}", "bad substitution", id="pattern-text-then-expansion"),
        pytest.param("${X/a/b${Y}}", "bad substitution", id="replacement-text-then-expansion"),
        pytest.param("${X#a${Y}}", "bad substitution", id="trim-text-then-expansion"),
        pytest.param("${X:${Y}x}", "bad substitution", id="offset-expansion-then-text"),
        pytest.param("${X//", "unable to parse substitution within function", id="replace-all-at-eof"),
        pytest.param("${X/a", "bad substitution", id="pattern-unclosed"),
        pytest.param("${X/a/", "unable to parse substitution within function", id="replacement-at-eof"),
        pytest.param("${X/a/b", "bad substitution", id="replacement-unclosed"),
        pytest.param("${X:-${}}", "unable to parse variable name", id="nested-error"),
        pytest.param("${UNSET} ${", "unable to parse variable name", id="parse-error-beats-unset"),
        pytest.param("${A:-" * 101 + "}" * 101, "expressions nested deeper than 100 levels", id="too-deep"),
    ],
)
def test_parse_errors(text: str, detail: str) -> None:
    with pytest.raises(EnvsubstError) as info:
        substitute(text, {"X": "value"})
    assert str(info.value) == PREFIX + detail


def test_error_is_a_value_error_with_a_single_line() -> None:
    with pytest.raises(ValueError, match=r"^substitute environment variables: bad substitution$"):
        substitute("${#}", {})


def test_deepest_allowed_nesting() -> None:
    assert substitute("${A:-" * 100 + "deep" + "}" * 100, {}) == "deep"


def test_large_text_is_linear() -> None:
    line = "key: ${V:-d} $$x $ts ${V/l/L} ${V##*l} # ${MISSING:-${V:1:2}}\n"
    text = line * (1_000_000 // len(line))
    started = time.perf_counter()
    result = substitute(text, {"V": "hello"})
    assert time.perf_counter() - started < 10
    assert result.count("key: hello $x $ts heLlo o # el\n") == len(text) // len(line)


@pytest.mark.parametrize(
    "expression", ["${V#*a*a*a*b}", "${V%*a*a*a*b}", "${V##*a*a*b}", "${V%%a*a*a*b}", "${V//aab/x}", "${V#*/}"]
)
def test_common_patterns_stay_cheap_on_long_values(expression: str) -> None:
    value = "a" * 20_000
    started = time.perf_counter()
    assert substitute(expression, {"V": value}) == value
    assert time.perf_counter() - started < 10


def test_glob_work_is_bounded() -> None:
    # The reference's trims match every prefix again: quadratic in the value, here with a middle
    # chunk that never matches. Past the bound the expression fails, in one line.
    started = time.perf_counter()
    with pytest.raises(EnvsubstError) as info:
        substitute("${V#*b*a}", {"V": "a" * 20_000})
    assert time.perf_counter() - started < 10
    assert str(info.value) == (
        PREFIX + "matching the pattern of ${V#…} against a value of 20000 bytes takes too many steps"
    )


def test_glob_work_is_counted_over_the_whole_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envsubst, "_MAX_GLOB_STEPS", 2_000)
    assert substitute("${V#*b*a}", {"V": "a" * 20}) == "a" * 20
    with pytest.raises(EnvsubstError, match="takes too many steps"):
        substitute("${V#*b*a}" * 20, {"V": "a" * 20})


@pytest.mark.parametrize(
    ("text", "byte"),
    [
        pytest.param("${UNI:0:1}", 0, id="offset-cuts-a-character"),
        pytest.param("x: ${UNI#?}", 3, id="shortest-trim-cuts-a-character"),
        pytest.param("${UNI:1:1}${UNI:0:1}", 0, id="halves-swapped"),
    ],
)
def test_result_cutting_a_character_is_an_error(text: str, byte: int) -> None:
    # The reference returns these bytes, and the config then fails to parse as YAML.
    with pytest.raises(EnvsubstError) as info:
        substitute(text, {"UNI": "ünï"})
    assert str(info.value) == (
        PREFIX + f"the result is not UTF-8 text (byte {byte}): an offset, length or trim cuts a character"
    )


def test_undecodable_environment_bytes_round_trip() -> None:
    # os.environ keeps bytes that are not UTF-8 as lone surrogates: a halved character comes back whole.
    env = {"HALF": "\udcc3", "REST": "\udcbc"}
    assert substitute("${HALF}${REST}", env) == "ü"
    with pytest.raises(EnvsubstError, match=r"not UTF-8 text \(byte 0\)"):
        substitute("${HALF}", env)


def test_size_cap_counts_bytes() -> None:
    assert substitute("${V}", {"V": "é" * 5}, limit=10) == "é" * 5
    with pytest.raises(EnvsubstError, match=r"^substitute environment variables: the result is longer than 9 bytes$"):
        substitute("${V}", {"V": "é" * 5}, limit=9)
    with pytest.raises(EnvsubstError, match="longer than 100 bytes"):
        substitute("${V//${E}/${V}}", {"V": "x" * 20, "E": ""}, limit=100)


@given(st.text().filter(lambda text: "$" not in text))
def test_text_without_dollar_is_unchanged(text: str) -> None:
    assert substitute(text, {}) == text


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from([*"${}:-=+?#%/^,*[]!\\aB_1 é\n", "${", "$$", "${A", "${B:-", "[!", "\\/"]),
        max_size=30,
    ).map("".join),
    st.dictionaries(st.sampled_from(["A", "B", "_1", "é"]), st.text(alphabet="ab/.*[]!-é$ ", max_size=6)),
)
def test_arbitrary_input_raises_only_envsubst_error(text: str, env: dict[str, str]) -> None:
    try:
        assert isinstance(substitute(text, env), str)
    except EnvsubstError as error:
        assert str(error).startswith(PREFIX)
        assert "\n" not in str(error)


def _brute_force(op: str, value: str, pattern: str) -> str:
    """The reference's trims by their definition, over every span; independent of the matcher.

    Without brackets or escapes Go's path.Match (as patched by the fork, `*` and `?` crossing `/`)
    and fnmatch agree on ASCII text. Trims remove the shortest or longest *non-empty* matching
    prefix or suffix; replacements are literal.
    """
    if op in ("#", "##"):
        ends = [end for end in range(1, len(value) + 1) if fnmatchcase(value[:end], pattern)]
        return value[(min(ends) if op == "#" else max(ends)) :] if ends else value
    if op in ("%", "%%"):
        starts = [start for start in range(len(value)) if fnmatchcase(value[start:], pattern)]
        return value[: (max(starts) if op == "%" else min(starts))] if starts else value
    return value.replace(pattern, "X", 1 if op == "/" else -1)


@settings(max_examples=1000)
@given(
    st.sampled_from(["#", "##", "%", "%%", "/", "//"]),
    st.text(alphabet="ab/-]!", max_size=8),
    st.text(alphabet="ab*?-!", min_size=1, max_size=6),
)
def test_trims_and_replacements_agree_with_brute_force(op: str, value: str, pattern: str) -> None:
    expression = "${V" + op + pattern + ("/X}" if op[0] == "/" else "}")
    assert substitute(expression, {"V": value}) == _brute_force(op, value, pattern)
