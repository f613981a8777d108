"""Masterminds/semver v3.4 parity: lenient versions, precedence, every operator and the prerelease rule."""

from __future__ import annotations

import itertools

import pytest

from fluxmirror.gocompat.semver import Constraint, InvalidConstraintError, InvalidVersionError, Version


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        pytest.param("1.2.3", (1, 2, 3, "", ""), id="plain"),
        pytest.param("v1.2.3", (1, 2, 3, "", ""), id="v-prefix"),
        pytest.param("1", (1, 0, 0, "", ""), id="major-only"),
        pytest.param("v1.2", (1, 2, 0, "", ""), id="major-minor"),
        pytest.param("01.002.0003", (1, 2, 3, "", ""), id="leading-zeros-coerced"),
        pytest.param("1.2.3-beta.1+build.5", (1, 2, 3, "beta.1", "build.5"), id="pre-and-meta"),
        pytest.param("1.2-rc.1", (1, 2, 0, "rc.1", ""), id="short-with-pre"),
        pytest.param("1+meta", (1, 0, 0, "", "meta"), id="short-with-meta"),
        pytest.param("1.2.3-a-b--c", (1, 2, 3, "a-b--c", ""), id="hyphens-in-pre"),
        pytest.param("1.2.3-0", (1, 2, 3, "0", ""), id="zero-pre"),
        pytest.param("1.2.3+007", (1, 2, 3, "", "007"), id="meta-leading-zero-ok"),
        pytest.param("18446744073709551615.0.0", (2**64 - 1, 0, 0, "", ""), id="uint64-max"),
    ],
)
def test_parse_lenient(text: str, parts: tuple[int, int, int, str, str]) -> None:
    v = Version.parse(text)
    assert (v.major, v.minor, v.patch, v.prerelease, v.metadata) == parts
    assert v.original == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "invalid semantic version", id="empty"),
        pytest.param("V1.2.3", "invalid semantic version", id="capital-v"),
        pytest.param("1.2.3.4", "invalid semantic version", id="four-parts"),
        pytest.param(" 1.2.3", "invalid semantic version", id="leading-space"),
        pytest.param("1.2.3\n", "invalid semantic version", id="trailing-newline"),
        pytest.param("1.2.3-", "invalid semantic version", id="empty-pre"),
        pytest.param("1.2.3-a..b", "invalid semantic version", id="empty-pre-part"),
        pytest.param("1.2.3+", "invalid semantic version", id="empty-meta"),
        pytest.param("1.2.3-be_ta", "invalid semantic version", id="underscore"),
        pytest.param("latest", "invalid semantic version", id="word"),
        pytest.param("1.x", "invalid semantic version", id="wildcard"),
        pytest.param("١.2.3", "invalid semantic version", id="non-ascii-digit"),
        pytest.param("1.2.3-01", "version segment starts with 0", id="pre-leading-zero"),
        pytest.param(
            "18446744073709551616.0.0",
            'error parsing version segment: strconv.ParseUint: parsing "18446744073709551616": value out of range',
            id="overflow",
        ),
        pytest.param(
            "1" * 5000 + ".0.0",
            f'error parsing version segment: strconv.ParseUint: parsing "{"1" * 5000}": value out of range',
            id="5000-digits",
        ),
    ],
)
def test_parse_rejects(text: str, message: str) -> None:
    with pytest.raises(InvalidVersionError) as info:
        Version.parse(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "ascending",
    [
        pytest.param(["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta"], id="spec-1"),
        pytest.param(["1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"], id="spec-2"),
        pytest.param(["0.9.9", "1.0.0", "1.0.1", "1.1.0", "2.0.0", "10.0.0"], id="numeric-segments"),
        pytest.param(["1.0.0-1", "1.0.0-99", "1.0.0-100", "1.0.0-a"], id="numeric-before-alpha"),
        pytest.param(["1.0.0-99999999999999999999", "1.0.0-a"], id="huge-numeric-compares-as-text"),
        pytest.param(["1.0.0-99", "1.0.0-" + "9" * 5000, "1.0.0-a"], id="5000-digit-numeric-compares-as-text"),
    ],
)
def test_precedence_order(ascending: list[str]) -> None:
    versions = [Version.parse(text) for text in ascending]
    assert sorted(reversed(versions)) == versions
    assert all(a < b and b > a and a <= b and b >= a for a, b in itertools.pairwise(versions))


def test_equality_ignores_metadata_and_spelling() -> None:
    assert Version.parse("v1.0.0+a") == Version.parse("1.0+b")
    assert hash(Version.parse("v1.0.0+a")) == hash(Version.parse("1.0+b"))
    assert Version.parse("1.0.0") != Version.parse("1.0.0-0")
    assert Version.parse("1.0.0") != "1.0.0"


def test_str_is_canonical() -> None:
    assert str(Version.parse("v1.2-rc.1+b")) == "1.2.0-rc.1+b"
    assert str(Version.parse("01")) == "1.0.0"


def _check(constraint: str, version: str) -> bool:
    return Constraint.parse(constraint).check(Version.parse(version))


@pytest.mark.parametrize(
    ("constraint", "version", "expected"),
    [
        # exact and bare
        pytest.param("=2.0.0", "2.0.0", True, id="eq"),
        pytest.param("=2.0.0", "2.0.0+build", True, id="eq-ignores-meta"),
        pytest.param("2.0.0", "2.0.1", False, id="bare-exact"),
        pytest.param("=2.0", "2.0.1", True, id="eq-partial-is-tilde"),
        pytest.param("2", "2.9.9", True, id="bare-major"),
        pytest.param("2", "3.0.0", False, id="bare-major-next"),
        pytest.param("v2.1", "2.1.7", True, id="v-in-constraint"),
        # not equal
        pytest.param("!=4.1.0", "4.1.0", False, id="ne-same"),
        pytest.param("!=4.1.0", "4.1.1", True, id="ne-other"),
        pytest.param("!=4.1", "4.1.9", False, id="ne-partial"),
        pytest.param("!=4.x", "5.1.0", True, id="ne-wild-other-major"),
        pytest.param("!=4.x", "4.1.0", False, id="ne-wild-same-major"),
        pytest.param("!=4.1-alpha", "4.1.0", True, id="ne-pre-differs"),
        pytest.param("!=*", "1.2.3", True, id="ne-star-quirk"),
        # greater / less
        pytest.param(">1.1", "1.1.9", False, id="gt-partial-same-minor"),
        pytest.param(">1.1", "1.2.0", True, id="gt-partial-next-minor"),
        pytest.param(">11", "11.9.0", False, id="gt-major-only"),
        pytest.param(">11", "12.0.0", True, id="gt-major-next"),
        pytest.param(">1.2.3", "1.2.4", True, id="gt"),
        pytest.param("<1.2.3", "1.2.3", False, id="lt-equal"),
        pytest.param("<1.1", "1.0.99", True, id="lt-partial"),
        pytest.param("<1.x", "1.1.1", False, id="lt-wild-is-lt-1.0.0"),
        pytest.param(">=1.1", "1.1.0", True, id="ge"),
        pytest.param("=>1.1", "1.0.9", False, id="ge-reversed-spelling"),
        pytest.param("<=1.1", "1.1.9", True, id="le-partial-covers-patch"),
        pytest.param("<=1.1", "1.2.0", False, id="le-partial-next-minor"),
        pytest.param("=<2.x", "2.9.0", True, id="le-reversed-wild"),
        pytest.param("<=2.x", "3.0.0", False, id="le-wild-next-major"),
        pytest.param("<=*", "0.1.0", False, id="le-star-quirk"),
        # wildcards
        pytest.param("*", "4.5.6", True, id="star"),
        pytest.param("x", "0.0.1", True, id="x"),
        pytest.param("6.x", "6.99.1", True, id="major-x"),
        pytest.param("6.X", "7.0.0", False, id="major-X-next"),
        pytest.param("1.2.*", "1.2.9", True, id="patch-star"),
        pytest.param("1.2.*", "1.3.0", False, id="patch-star-next-minor"),
        pytest.param("1.x.x", "1.4.0", True, id="x-x"),
        pytest.param("0.x", "1.0.0", False, id="zero-x"),
        # tilde
        pytest.param("~1.2.3", "1.2.9", True, id="tilde"),
        pytest.param("~1.2.3", "1.2.2", False, id="tilde-below"),
        pytest.param("~1.2.3", "1.3.0", False, id="tilde-next-minor"),
        pytest.param("~>1.2", "1.2.0", True, id="tilde-gt-spelling"),
        pytest.param("~1", "1.9.9", True, id="tilde-major"),
        pytest.param("~1", "2.0.0", False, id="tilde-major-next"),
        pytest.param("~0", "0.9.0", True, id="tilde-zero"),
        pytest.param("~0.0.0", "3.0.0", True, id="tilde-zero-zero-zero-is-any"),
        pytest.param("~*", "9.9.9", True, id="tilde-star"),
        # caret
        pytest.param("^1.2.3", "1.9.0", True, id="caret"),
        pytest.param("^1.2.3", "2.0.0", False, id="caret-next-major"),
        pytest.param("^1.2.3", "1.2.2", False, id="caret-below"),
        pytest.param("^0.2.3", "0.2.9", True, id="caret-zero-major"),
        pytest.param("^0.2.3", "0.3.0", False, id="caret-zero-major-next-minor"),
        pytest.param("^0.0.3", "0.0.3", True, id="caret-zero-zero"),
        pytest.param("^0.0.3", "0.0.4", False, id="caret-zero-zero-next-patch"),
        pytest.param("^0.0", "0.0.9", True, id="caret-0.0"),
        pytest.param("^0.0", "0.1.0", False, id="caret-0.0-next-minor"),
        pytest.param("^0", "0.9.9", True, id="caret-0"),
        pytest.param("^0", "1.0.0", False, id="caret-0-next-major"),
        pytest.param("^0.x", "0.5.0", True, id="caret-0.x"),
        pytest.param("^0.x", "1.0.0", False, id="caret-0.x-next-major"),
        pytest.param("^1.x", "1.1.1", True, id="caret-1.x"),
        pytest.param("^*", "1.0.0", False, id="caret-star-quirk"),
        pytest.param("^*", "0.0.0", True, id="caret-star-zero"),
        # hyphen ranges
        pytest.param("1.2 - 1.4.5", "1.2.0", True, id="hyphen-low"),
        pytest.param("1.2 - 1.4.5", "1.4.5", True, id="hyphen-high"),
        pytest.param("1.2 - 1.4.5", "1.4.6", False, id="hyphen-above"),
        pytest.param("1.2 - 1.4", "1.4.9", True, id="hyphen-partial-high"),
        pytest.param("1.0.0 - 2.0.0 <=1.5.0", "1.6.0", False, id="hyphen-and"),
        pytest.param("1.1-3", "1.1.0-4", True, id="no-spaces-is-prerelease"),
        pytest.param("1.1-3", "4.3.2", False, id="no-spaces-not-a-range"),
        # AND / OR
        pytest.param(">=2.7.0 <3.0.0", "2.8.1", True, id="and-space"),
        pytest.param(">=2.7.0 <3.0.0", "3.0.0", False, id="and-space-upper"),
        pytest.param(">= 2.7.0, < 3.0.0", "2.6.9", False, id="and-comma"),
        pytest.param(">=1.1    <2    !=1.2.3", "1.2.3", False, id="and-many-spaces"),
        pytest.param("<1 || >=3", "2.0.0", False, id="or-neither"),
        pytest.param("<1 || >=3", "3.1.0", True, id="or-second"),
        pytest.param("~1.0 || ^3", "1.0.5", True, id="or-first"),
        pytest.param("3 - 4 || => 5.0, < 6", "5.5.0", True, id="or-with-hyphen"),
    ],
)
def test_operators(constraint: str, version: str, expected: bool) -> None:
    assert _check(constraint, version) is expected


@pytest.mark.parametrize(
    ("constraint", "version", "expected"),
    [
        pytest.param("*", "1.2.3-alpha.1", False, id="star-excludes"),
        pytest.param(">=1.1", "4.1.0-beta", False, id="plain-range-excludes"),
        pytest.param("^1.x", "1.1.1-beta1", False, id="caret-excludes"),
        pytest.param("*-0", "1.2.3-alpha.1", True, id="star-dash-zero-includes"),
        pytest.param(">=0.0.0-0", "3.4.5-beta.1", True, id="ge-zero-pre-includes-all"),
        pytest.param(">=1.2.3-beta.1", "1.2.4-alpha", True, id="later-tuple-included"),
        pytest.param(">=1.2.3-beta.1", "1.2.3-alpha", False, id="lower-pre-excluded"),
        pytest.param("^1.2.3-alpha", "1.2.3-beta", True, id="caret-pre"),
        pytest.param("^1.2.3-alpha", "1.9.0-rc.1", True, id="caret-pre-other-minor"),
        pytest.param("^1.2.3-alpha", "2.0.0-rc.1", False, id="caret-pre-next-major"),
        pytest.param("~1.2.3-beta.2", "1.2.4-beta.2", True, id="tilde-pre-next-patch"),
        pytest.param("~1.2.3-beta.2", "1.3.0-beta.2", False, id="tilde-pre-next-minor"),
        pytest.param(">=1.0.0-0 <2.0.0", "1.5.0-rc.1", True, id="and-group-opts-in"),
        pytest.param(">=1.0.0 <2.0.0-0", "1.5.0-rc.1", True, id="and-group-opts-in-upper"),
        pytest.param(">=2.0.0-0 || ^1.0.0", "1.5.0-rc.1", False, id="or-group-does-not-leak"),
        pytest.param("^1.0.0 || >=2.0.0-0", "2.1.0-rc.1", True, id="or-group-own-opt-in"),
        pytest.param("!=4.1-alpha", "4.1.1-alpha", False, id="ne-patch-dirty-same-pre"),
        pytest.param("!=4.1-alpha", "4.1.1-beta", True, id="ne-patch-dirty-other-pre"),
    ],
)
def test_prerelease_rule(constraint: str, version: str, expected: bool) -> None:
    assert _check(constraint, version) is expected


@pytest.mark.parametrize(
    ("constraint", "message"),
    [
        pytest.param("", "improper constraint: ", id="empty"),
        pytest.param("   ", "improper constraint:    ", id="blank"),
        pytest.param(">= bar", "improper constraint: >= bar", id="word"),
        pytest.param("BAR >= 1.2.3", "improper constraint: BAR >= 1.2.3", id="leading-word"),
        pytest.param("12.3.4.1234", "improper constraint: 12.3.4.1234", id="four-parts"),
        pytest.param("12.3.34~ 1.2.3", "improper constraint: 12.3.34~ 1.2.3", id="dangling-operator"),
        pytest.param(">=1.0 || foo", "improper constraint:  foo", id="bad-or-segment-verbatim"),
        pytest.param("1.0 ||", "improper constraint: ", id="empty-or-segment"),
        pytest.param("1.2 -", "improper constraint: 1.2 -", id="half-hyphen"),
        pytest.param(">>1.0", "improper constraint: >>1.0", id="double-operator"),
        pytest.param("1.xx", "constraint parser error", id="bad-wildcard"),
        pytest.param("1|2", "constraint parser error", id="pipe-in-number"),
        pytest.param("1.2.3-01", "constraint parser error", id="bad-prerelease"),
        pytest.param(">=" + "1" * 5000, "constraint parser error", id="5000-digits"),
        pytest.param("1.2." + "9" * 5000 + " - 2", "constraint parser error", id="5000-digit-hyphen-range"),
    ],
)
def test_invalid_constraints(constraint: str, message: str) -> None:
    with pytest.raises(InvalidConstraintError) as info:
        Constraint.parse(constraint)
    assert str(info.value) == message


def test_parse_is_cached_and_reports_text() -> None:
    first = Constraint.parse(">=1.0.0")
    assert Constraint.parse(">=1.0.0") is first
    assert repr(first) == "Constraint('>=1.0.0')"
    assert first.text == ">=1.0.0"


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "text",
    [
        pytest.param("1" + " " * 100_000 + "!", id="long-whitespace-run"),
        pytest.param("1" * 100_000 + "!", id="long-number"),
        pytest.param(">= 1 " * 20_000 + "!", id="many-comparisons"),
        pytest.param("1 - 2 || " * 40_000 + "!", id="many-hyphen-ranges"),  # once quadratic: ~20 s
        pytest.param("1-" + "a." * 50_000 + "!", id="long-prerelease"),
    ],
)
def test_hostile_constraints_are_rejected_quickly(text: str) -> None:
    """The range grammar runs on RE2; Python's `re` took over a minute on a few thousand spaces."""
    with pytest.raises(InvalidConstraintError):
        Constraint.parse(text)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "text",
    [
        pytest.param("1-" + "a." * 50_000 + "!", id="long-prerelease"),
        pytest.param("1" * 100_000 + "!", id="long-number"),
        pytest.param("1.2.3-" + "a-" * 50_000 + "+" + "b." * 50_000 + "!", id="long-metadata"),
    ],
)
def test_hostile_versions_are_rejected_quickly(text: str) -> None:
    with pytest.raises(InvalidVersionError):
        Version.parse(text)
