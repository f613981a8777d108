"""The selector pipeline end to end: ordering, ties, limits, extraction and exclusion reasons."""

from __future__ import annotations

import time

import pytest

from fluxmirror.api.config import RegexFilter, Selector
from fluxmirror.gocompat.regexp import GoRegexError
from fluxmirror.gocompat.semver import InvalidConstraintError
from fluxmirror.selection.tags import Excluded, Selection, select_tags


def _selector(
    pattern: str | None = None, extract: str = "", semver: str = "", sort_by: str = "semver", limit: int = 1
) -> Selector:
    regex = None if pattern is None else RegexFilter(pattern=pattern, extract=extract)
    return Selector(regex=regex, semver=semver, sortBy=sort_by, limit=limit)


def test_config_md_timestamp_example() -> None:
    tags = [
        "main-1a2b3c4-1700000005",
        "main-deadbee-1700000001",
        "latest",
        "feat-x-0f0f0f-1700000009",
        "main-abc1234-1700000003",
        "main-abc1234-1700000007",
        "main-zzzzzzz-1700000008",
        "main-1234567-1700000002",
        "v1.2.3",
    ]
    selector = _selector(r"^.+-[0-9a-f]+-(?P<ts>\d+)$", extract="$ts", sort_by="numerical", limit=5)
    assert select_tags(tags, selector) == Selection(
        selected=[
            "feat-x-0f0f0f-1700000009",
            "main-abc1234-1700000007",
            "main-1a2b3c4-1700000005",
            "main-abc1234-1700000003",
            "main-1234567-1700000002",
        ],
        excluded=[
            Excluded("latest", "did not match regex"),
            Excluded("main-zzzzzzz-1700000008", "did not match regex"),
            Excluded("v1.2.3", "did not match regex"),
        ],
    )


def test_default_selector_keeps_highest_semver_and_drops_the_rest() -> None:
    tags = ["1.0.0", "latest", "v2.0.0", "2.0.0-rc.1", "1.10.0", "sha-abc"]
    assert select_tags(tags, Selector()) == Selection(
        selected=["v2.0.0"],
        excluded=[
            Excluded("latest", "not semver for sort: latest"),
            Excluded("sha-abc", "not semver for sort: sha-abc"),
        ],
    )


def test_semver_range_with_all_reasons() -> None:
    tags = ["v2.6.0", "v2.7.0", "v2.8.1-rc.1", "nightly", "v2.8.0", "v3.0.0", "v2.7.1+build"]
    result = select_tags(tags, _selector(semver=">=2.7.0 <3.0.0", limit=10))
    assert result == Selection(
        selected=["v2.8.0", "v2.7.1+build", "v2.7.0"],
        excluded=[
            Excluded("v2.6.0", "fails semver constraint: v2.6.0"),
            Excluded("v2.8.1-rc.1", "fails semver constraint: v2.8.1-rc.1"),
            Excluded("nightly", "key not semver: nightly"),
            Excluded("v3.0.0", "fails semver constraint: v3.0.0"),
        ],
    )


def test_semver_range_opting_into_prereleases() -> None:
    tags = ["1.0.0", "1.1.0-rc.1", "1.1.0-rc.2", "1.0.1-beta"]
    assert select_tags(tags, _selector(semver=">=1.0.0-0", limit=0)).selected == [
        "1.1.0-rc.2",
        "1.1.0-rc.1",
        "1.0.1-beta",
        "1.0.0",
    ]


def test_extracted_key_drives_semver_but_tag_is_selected() -> None:
    tags = ["app-v1.2.0-linux", "app-v1.10.0-linux", "app-v2.0.0-linux", "app-vX-linux", "other"]
    selector = _selector(r"^app-v(?P<version>[^-]+)-linux$", extract="${version}", semver="^1", limit=0)
    assert select_tags(tags, selector) == Selection(
        selected=["app-v1.10.0-linux", "app-v1.2.0-linux"],
        excluded=[
            Excluded("other", "did not match regex"),
            Excluded("app-v2.0.0-linux", "fails semver constraint: 2.0.0"),
            Excluded("app-vX-linux", "key not semver: X"),
        ],
    )


def test_regex_is_searched_not_anchored() -> None:
    result = select_tags(["1.0.0-alpine", "1.1.0", "2.0.0-alpine"], _selector("alpine", limit=0))
    assert result.selected == ["2.0.0-alpine", "1.0.0-alpine"]
    assert result.excluded == [Excluded("1.1.0", "did not match regex")]


def test_semver_ties_keep_input_order() -> None:
    tags = ["1.0.0", "v1.0.0", "1.0+build.1", "1.0.0+build.2", "0.9.0"]
    assert select_tags(tags, _selector(limit=0)).selected == [
        "1.0.0",
        "v1.0.0",
        "1.0+build.1",
        "1.0.0+build.2",
        "0.9.0",
    ]


def test_alphabetical_is_bytewise_descending() -> None:
    tags = [
        "RELEASE.2024-11-12T08-30-15Z",
        "RELEASE.2025-01-02T00-00-00Z",
        "RELEASE.2024-02-29T23-59-59Z",
        "release.2020",
        "Zulu",
        "é",
        "z",
    ]
    assert select_tags(tags, _selector(sort_by="alphabetical", limit=0)).selected == [
        "é",
        "z",
        "release.2020",
        "Zulu",
        "RELEASE.2025-01-02T00-00-00Z",
        "RELEASE.2024-11-12T08-30-15Z",
        "RELEASE.2024-02-29T23-59-59Z",
    ]


def test_alphabetical_ties_keep_input_order_via_extracted_key() -> None:
    tags = ["a-2", "b-1", "c-2"]
    selector = _selector(r"-(\d)$", extract="$1", sort_by="alphabetical", limit=0)
    assert select_tags(tags, selector).selected == ["a-2", "c-2", "b-1"]


def test_numerical_sort_and_reasons() -> None:
    tags = ["10", "9", "1e3", "-5", "0x1p4", "1_000", " 7", "nan", "inf", "abc", "1e400", "2.50", "2.5"]
    assert select_tags(tags, _selector(sort_by="numerical", limit=0)) == Selection(
        selected=["inf", "1e3", "1_000", "0x1p4", "10", "9", "2.50", "2.5", "-5", "nan"],
        excluded=[
            Excluded(" 7", "not numeric for sort:  7"),
            Excluded("abc", "not numeric for sort: abc"),
            Excluded("1e400", "not numeric for sort: 1e400"),
        ],
    )


def test_numerical_sort_uses_semver_filtered_keys() -> None:
    tags = ["1.5", "1.10", "2", "1.2.3"]
    result = select_tags(tags, _selector(semver="1.x", sort_by="numerical", limit=0))
    assert result == Selection(
        selected=["1.5", "1.10"],
        excluded=[
            Excluded("2", "fails semver constraint: 2"),
            Excluded("1.2.3", "not numeric for sort: 1.2.3"),
        ],
    )


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        pytest.param(0, ["3.0.0", "2.0.0", "1.0.0"], id="zero-keeps-all"),
        pytest.param(1, ["3.0.0"], id="one"),
        pytest.param(2, ["3.0.0", "2.0.0"], id="two"),
        pytest.param(10, ["3.0.0", "2.0.0", "1.0.0"], id="more-than-available"),
    ],
)
def test_limit(limit: int, expected: list[str]) -> None:
    result = select_tags(["1.0.0", "3.0.0", "2.0.0"], _selector(limit=limit))
    assert result == Selection(selected=expected, excluded=[])


def test_blank_semver_is_unset_and_empty_input_is_fine() -> None:
    assert select_tags(["1.0.0", "x"], _selector(semver="", limit=0)).selected == ["1.0.0"]
    assert select_tags([], _selector("a", semver="*", sort_by="numerical")) == Selection([], [])


def test_index_version_selection_excludes_prereleases_by_default() -> None:
    versions = ["2.1.0-rc.1", "2.0.0", "1.9.9"]
    assert select_tags(versions, _selector(semver="*")).selected == ["2.0.0"]


def test_invalid_inputs_raise_the_validator_errors() -> None:
    with pytest.raises(ValueError, match='sortBy "date" must be one of: semver, alphabetical, numerical'):
        select_tags(["1"], _selector(sort_by="date"))
    with pytest.raises(InvalidConstraintError, match="improper constraint: nope"):
        select_tags(["1"], _selector(semver="nope"))
    with pytest.raises(GoRegexError, match="missing closing"):
        select_tags(["1"], _selector("(x"))


def test_fifty_thousand_tags_are_fast() -> None:
    releases = [f"v{major}.{minor}.{patch}" for major in range(5) for minor in range(100) for patch in range(80)]
    tags = releases + [f"{tag}-rc.1" for tag in releases[:10_000]]
    assert len(tags) == 50_000
    started = time.perf_counter()
    result = select_tags(tags, _selector(r"^v(?P<v>.+)$", extract="$v", semver=">=1.0.0 <4", limit=3))
    elapsed = time.perf_counter() - started
    assert result.selected == ["v3.99.79", "v3.99.78", "v3.99.77"]
    # majors 0 and 4 (8,000 each) fall outside the range; every prerelease is excluded by it too
    assert len(result.excluded) == 26_000
    assert elapsed < 2.0  # generous for slow CI; typically well under half a second
