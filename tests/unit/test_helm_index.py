"""index.yaml parsing (docs/sync.md#chart-index) and the one-chart shortcut, which must never change the answer."""

from __future__ import annotations

import pytest
from harness.charts import build_index, index_entry, large_index

from fluxmirror.helm.index import IndexParseError, parse_index


def versions(data: bytes, name: str, *, shortcut: bool) -> list[str]:
    index = parse_index(data, name if shortcut else None)
    return [found.version for found in index.versions(name)]


@pytest.mark.parametrize("shortcut", [False, True], ids=["full", "one-chart"])
def test_versions_highest_first_and_invalid_entries_dropped(shortcut: bool) -> None:
    data = build_index(
        [index_entry("demo", v) for v in ("1.0.0", "1.10.0", "1.2.0", "2.0.0-rc.1", "v1.9")],
        raw_entries={"demo": [None, {"name": "demo", "version": "not-semver"}, {"version": "3.0.0"}], "other": None},
    )
    assert versions(data, "demo", shortcut=shortcut) == ["2.0.0-rc.1", "1.10.0", "v1.9", "1.2.0", "1.0.0"]


def test_version_text_is_kept_as_written() -> None:
    data = b"apiVersion: v1\nentries:\n  demo:\n  - name: demo\n    version: 1.10\n    urls: [demo-1.10.tgz]\n"
    [found] = parse_index(data).versions("demo")
    assert (found.version, found.urls, found.digest) == ("1.10", ("demo-1.10.tgz",), "")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty index"),
        (b"  \n", "empty index"),
        (b"entries: {}\n", "no API version specified"),
        (b"- a\n- b\n", "index is not a mapping"),
        (b"apiVersion: v1\nentries: [1]\n", "entries is not a mapping"),
    ],
    ids=["empty", "blank", "no-api-version", "list", "entries-list"],
)
def test_unreadable_indexes(data: bytes, message: str) -> None:
    with pytest.raises(IndexParseError, match=message):
        parse_index(data, "demo")


def test_json_index() -> None:
    data = build_index([index_entry("demo", "1.0.0", digest="ab" * 32)], as_json=True)
    [found] = parse_index(data, "demo").versions("demo")
    assert (found.version, found.digest) == ("1.0.0", "ab" * 32)


@pytest.mark.parametrize("name", ["chart-0000", "chart-0399", "chart-0799", "missing"])
def test_one_chart_shortcut_agrees_with_a_full_parse_on_a_large_index(name: str) -> None:
    data = large_index(charts=800, versions=5)
    full = parse_index(data)
    assert [v.version for v in parse_index(data, name).versions(name)] == [v.version for v in full.versions(name)]
    if name != "missing":
        assert len(full.versions(name)) == 5


def test_shortcut_falls_back_when_a_chart_is_listed_twice() -> None:
    data = b"apiVersion: v1\nentries:\n  demo:\n  - name: demo\n    version: 1.0.0\n  demo:\n  - name: demo\n    version: 2.0.0\n"
    assert versions(data, "demo", shortcut=True) == versions(data, "demo", shortcut=False)
