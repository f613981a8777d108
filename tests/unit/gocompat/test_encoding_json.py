"""Go's encoding/json output: HTML-safe escaping, indentation and float64 text."""

from __future__ import annotations

import pytest

from fluxmirror.gocompat.encoding_json import format_json_float64, go_json, html_escape


def test_go_json_escapes_html_and_keeps_key_order() -> None:
    assert go_json({"b": "<a&b>", "a": "\u2028é"}) == b'{"b":"\\u003ca\\u0026b\\u003e","a":"\\u2028\xc3\xa9"}'


def test_go_json_indent() -> None:
    assert go_json({"a": [1, 2]}, indent=2) == b'{\n  "a": [\n    1,\n    2\n  ]\n}'


def test_html_escape_on_encoded_bytes() -> None:
    assert html_escape(b'"<\xe2\x80\xa9>"') == b'"\\u003c\\u2029\\u003e"'


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(1.0, "1", id="integral"),
        pytest.param(0.1, "0.1", id="shortest"),
        pytest.param(1e20, "100000000000000000000", id="fixed-up-to-1e21"),
        pytest.param(1e21, "1e+21", id="exponent-from-1e21"),
        pytest.param(0.000001, "0.000001", id="fixed-down-to-1e-6"),
        pytest.param(1e-7, "1e-7", id="exponent-without-leading-zero"),
        pytest.param(float(2**63), "9223372036854776000", id="shortest-digits-zero-padded"),
    ],
)
def test_format_json_float64(value: float, text: str) -> None:
    assert format_json_float64(value) == text
