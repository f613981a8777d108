"""Go's `%v` of a decoded JSON value, as registry error details are printed."""

from __future__ import annotations

import pytest

from fluxmirror.gocompat.fmt import format_v


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"Name": "x", "Action": "pull"}, "map[Action:pull Name:x]"),
        ([1, "a", None], "[1 a <nil>]"),
        ({"a": [True, False], "b": {}}, "map[a:[true false] b:map[]]"),
        ("plain", "plain"),
    ],
)
def test_format_v(value: object, text: str) -> None:
    assert format_v(value) == text
