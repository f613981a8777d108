"""Go duration parsing and rendering, checked against values Go's `time` package produces."""

from __future__ import annotations

import pytest

from fluxmirror.api.duration import Duration

SECOND = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("0", 0),
        ("0s", 0),
        ("60s", 60 * SECOND),
        ("48h", 48 * 3600 * SECOND),
        ("1h30m", 5400 * SECOND),
        ("500ms", SECOND // 2),
        ("1.5s", 3 * SECOND // 2),
        (".5h", 1800 * SECOND),
        ("1h0m0.5s", 3600 * SECOND + SECOND // 2),
        ("-1m", -60 * SECOND),
        ("+2s", 2 * SECOND),
        ("1us", 1000),
        ("1µs", 1000),
        ("3ns", 3),
        ("8760h", 8760 * 3600 * SECOND),
        ("2562047h", 2562047 * 3600 * SECOND),
        ("0" * 5000 + "1s", SECOND),  # leading zeros never overflow, as in Go
        ("1." + "1" * 5000 + "s", 1_111_111_111),  # digits past 63 bits after the dot are ignored, as in Go
    ],
)
def test_parse(text: str, nanoseconds: int) -> None:
    assert Duration.parse(text).nanoseconds == nanoseconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("abc", 'time: invalid duration "abc"'),
        ("1", 'time: missing unit in duration "1"'),
        ("5d", 'time: unknown unit "d" in duration "5d"'),
        ("1e", 'time: unknown unit "e" in duration "1e"'),
        (".s", 'time: invalid duration ".s"'),
        ("-", 'time: invalid duration "-"'),
        ("9999999999h", 'time: invalid duration "9999999999h"'),
        ("2562048h", 'time: invalid duration "2562048h"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("9" * 5000 + "s", f'time: invalid duration "{"9" * 5000}s"'),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.") + "$"):
        Duration.parse(text)


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1500, "1.5µs"),
        (812_000_000, "812ms"),
        (4_213_000_000, "4.213s"),
        (5 * 60 * SECOND, "5m0s"),
        (48 * 3600 * SECOND, "48h0m0s"),
        ((47 * 3600 + 13 * 60 + 11) * SECOND, "47h13m11s"),
        (5400 * SECOND, "1h30m0s"),
        (-90 * SECOND, "-1m30s"),
    ],
)
def test_render_like_go(nanoseconds: int, text: str) -> None:
    assert str(Duration(nanoseconds)) == text


def test_round_to_milliseconds_half_away_from_zero() -> None:
    millisecond = Duration(1_000_000)
    assert str(Duration(4_213_500_000).round_to(millisecond)) == "4.214s"
    assert str(Duration(-1_500_000).round_to(millisecond)) == "-2ms"


def test_value_semantics() -> None:
    assert Duration.parse("1m") == Duration.parse("60s")
    assert Duration.parse("1s") < Duration.parse("1m")
    assert len({Duration.parse("1m"), Duration.parse("60s")}) == 1
    with pytest.raises(AttributeError):
        Duration(1).nanoseconds = 2
