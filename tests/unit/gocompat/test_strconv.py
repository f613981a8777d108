"""Go's strconv: Quote, ParseFloat/ParseInt/ParseUint and the underscore rule, FormatFloat(f, 'g', -1, 32)."""

from __future__ import annotations

import math

import pytest

from fluxmirror.gocompat.strconv import (
    format_float32_g,
    go_quote,
    parse_go_float,
    parse_int,
    parse_uint,
    underscores_ok,
)


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("", '""'),
        ("plain", '"plain"'),
        ('"\\', '"\\"\\\\"'),
        ("\a\b\f\n\r\t\v", '"\\a\\b\\f\\n\\r\\t\\v"'),
        ("\x00\x1b\x7f", '"\\x00\\x1b\\x7f"'),
        ("\x85\xa0", '"\\u0085\\u00a0"'),
        ("\u2028\ufeff", '"\\u2028\\ufeff"'),
        ("é✓€😀", '"é✓€😀"'),
        ("\U000e0001", '"\\U000e0001"'),
        ("raw\udcff", '"raw\\xff"'),
        ("\ud800", '"\\ufffd"'),
    ],
)
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("42", 42.0, id="int"),
        pytest.param("-0.5", -0.5, id="negative"),
        pytest.param("+.5", 0.5, id="leading-dot"),
        pytest.param("5.", 5.0, id="trailing-dot"),
        pytest.param("1e3", 1000.0, id="exponent"),
        pytest.param("1E-2", 0.01, id="exponent-upper"),
        pytest.param("1_000.5", 1000.5, id="underscores"),
        pytest.param("1_23.50_0_0e+1_2", 1.235e14, id="go-underscore-case"),
        pytest.param("0x1p-2", 0.25, id="hex"),
        pytest.param("0X_1.8P1", 3.0, id="hex-underscore-after-prefix"),
        pytest.param("Inf", math.inf, id="inf"),
        pytest.param("-Infinity", -math.inf, id="neg-infinity"),
        pytest.param("1e-400", 0.0, id="underflow-is-zero"),
        pytest.param("", None, id="empty"),
        pytest.param(" 1", None, id="leading-space"),
        pytest.param("1 ", None, id="trailing-space"),
        pytest.param(".", None, id="dot"),
        pytest.param("e5", None, id="exponent-only"),
        pytest.param("1e", None, id="dangling-exponent"),
        pytest.param("1e_5", None, id="underscore-after-e"),
        pytest.param("_1", None, id="leading-underscore"),
        pytest.param("1_", None, id="trailing-underscore"),
        pytest.param("1__0", None, id="double-underscore"),
        pytest.param("1._5", None, id="underscore-after-dot"),
        pytest.param("1..2", None, id="two-dots"),
        pytest.param("0x10", None, id="hex-needs-exponent"),
        pytest.param("0x", None, id="bare-prefix"),
        pytest.param("0xp1", None, id="hex-without-digits"),
        pytest.param("+nan", None, id="signed-nan"),
        pytest.param("infin", None, id="partial-infinity"),
        pytest.param("1e400", None, id="overflow"),
        pytest.param("0x1p9999", None, id="hex-overflow"),
        pytest.param("١٢", None, id="non-ascii-digits"),
        pytest.param("1.2.3", None, id="version"),
    ],
)
def test_parse_go_float(text: str, expected: float | None) -> None:
    assert parse_go_float(text) == expected


def test_parse_go_float_nan() -> None:
    value = parse_go_float("NaN")
    assert value is not None
    assert math.isnan(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("42", 42, id="decimal"),
        pytest.param("-42", -42, id="negative"),
        pytest.param("+7", 7, id="plus"),
        pytest.param("010", 8, id="leading-zero-octal"),
        pytest.param("0o17", 15, id="octal"),
        pytest.param("0x1F", 31, id="hex"),
        pytest.param("0b101", 5, id="binary"),
        pytest.param("09", None, id="bad-octal"),
        pytest.param("0x", None, id="bare-prefix"),
        pytest.param("9223372036854775807", 2**63 - 1, id="int64-max"),
        pytest.param("9223372036854775808", None, id="int64-overflow"),
        pytest.param("-9223372036854775808", -(2**63), id="int64-min"),
        pytest.param("١", None, id="non-ascii-digit"),
    ],
)
def test_parse_int(text: str, expected: int | None) -> None:
    assert parse_int(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("18446744073709551615", 2**64 - 1, id="uint64-max"),
        pytest.param("18446744073709551616", None, id="uint64-overflow"),
        pytest.param("+1", None, id="no-sign"),
        pytest.param("0x10", 16, id="hex"),
    ],
)
def test_parse_uint(text: str, expected: int | None) -> None:
    assert parse_uint(text) == expected


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("1_000", True),
        ("0x_1F", True),
        ("0_1", True),
        ("_1", False),
        ("1_", False),
        ("1__0", False),
        ("1._5", False),
        ("-1_0", True),
    ],
)
def test_underscores_ok(text: str, ok: bool) -> None:
    assert underscores_ok(text) is ok


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(1.1, "1.1", id="short"),
        pytest.param(100000.0, "100000", id="below-exponent-threshold"),
        pytest.param(1e6, "1e+06", id="exponent-form"),
        pytest.param(123456789.0, "1.2345679e+08", id="float32-rounding"),
        pytest.param(0.0001, "0.0001", id="small-fixed"),
        pytest.param(0.00001, "1e-05", id="small-exponent"),
        pytest.param(3.4028234663852886e38, "3.4028235e+38", id="max-float32"),
        pytest.param(1e39, "+Inf", id="float32-overflow"),
        pytest.param(-0.0, "-0", id="negative-zero"),
    ],
)
def test_format_float32_g(value: float, text: str) -> None:
    assert format_float32_g(value) == text
