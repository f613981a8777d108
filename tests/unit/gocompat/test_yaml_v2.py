"""go-yaml v2: the plain-scalar resolver, first-document decoding, and the writer's string quoting.

Chart-level effects (what lands in Chart.yaml string fields) are tested in test_helm_chart.py and
the report's YAML in test_sync_output.py; these pin the Go rules themselves."""

from __future__ import annotations

import math

import pytest

from fluxmirror.gocompat.yaml_v2 import STR_TAG, DecodeError, dump, parse, reads_as_non_string, resolve_plain


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("", "null"),
        ("~", "null"),
        ("Null", "null"),
        ("y", "bool"),
        ("OFF", "bool"),
        ("1_000", "int"),
        ("0x1f", "int"),
        ("0o17", "int"),
        ("017", "int"),
        ("09", "float"),
        ("1e3", "float"),
        (".5", "float"),
        (".0_5", "float"),
        ("-.Inf", "float"),
        ("1e400", "str"),
        ("2024-02-29", "timestamp"),
        ("2023-02-29", "str"),
        ("2026-6-6t1:2:3.5+02:00", "timestamp"),
        ("1:30", "str"),
        ("1.2.3", "str"),
        ("yes please", "str"),
    ],
)
def test_resolve_plain(text: str, tag: str) -> None:
    assert resolve_plain(text) == f"tag:yaml.org,2002:{tag}"


def test_parse_reads_go_scalars_and_only_the_first_document() -> None:
    document = parse(b"a: y\nb: 0x10\nc: 1e3\nd: 2024-01-02\ne: .nan\n---\nignored: true\n")
    assert {key: value for key, value in document.items() if key != "e"} == {
        "a": True,
        "b": 16,
        "c": 1000.0,
        "d": "2024-01-02",
    }
    assert math.isnan(document["e"])
    assert parse(b"") is None


def test_parse_errors_name_the_line() -> None:
    with pytest.raises(DecodeError, match=r"^error converting YAML to JSON: yaml: line 2: "):
        parse(b"a: [")


@pytest.mark.parametrize(
    ("text", "quoted"),
    [("6.1", True), ("y", True), ("", True), ("v1.2", False), ("latest", False), ("2026-02-30", False)],
)
def test_reads_as_non_string(text: str, quoted: bool) -> None:
    assert reads_as_non_string(text) is quoted


def test_base60_is_a_string_that_still_gets_quotes() -> None:
    assert resolve_plain("1:20") == STR_TAG
    assert reads_as_non_string("1:20")


def test_dump_sorts_keys_quotes_like_go_and_writes_blocks() -> None:
    assert dump({"b": ["1.0", "x"], "a": "two\nlines", "c": 1}) == 'a: |-\n  two\n  lines\nb:\n- "1.0"\n- x\nc: 1\n'
