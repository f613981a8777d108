"""Origins (which decide where a credential may go), TLS keys, URL redaction and Retry-After."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict
from yarl import URL

from fluxmirror.http.status import MAX_RETRY_AFTER, retry_after
from fluxmirror.http.urls import Origin, redact_url, tls_key


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://reg.io", Origin("https", "reg.io", 443)),
        ("https://reg.io:443/v2/", Origin("https", "reg.io", 443)),
        ("http://reg.io/v2/", Origin("http", "reg.io", 80)),
        ("http://reg.io:443/", Origin("http", "reg.io", 443)),
        ("https://reg.io:5000/v2/a/tags/list?n=10", Origin("https", "reg.io", 5000)),
        ("HTTPS://Reg.IO/V2/", Origin("https", "reg.io", 443)),
        ("https://user:pw@reg.io/", Origin("https", "reg.io", 443)),
        ("https://[2001:DB8::1]:5000/v2/", Origin("https", "2001:db8::1", 5000)),
        ("http://[::1]/", Origin("http", "::1", 80)),
        ("ftp://reg.io/", Origin("ftp", "reg.io", 0)),
    ],
)
def test_origin_parts(url: str, expected: Origin) -> None:
    assert Origin.of(url) == expected
    assert Origin.of(URL(url)) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://reg.io/v2/", "https://reg.io:443/token?scope=x"),
        ("http://reg.io/", "http://reg.io:80/"),
        ("https://REG.io/", "https://reg.io/"),
        ("https://u:p@reg.io/", "https://reg.io/"),
        ("https://[2001:db8::1]/", "https://[2001:DB8:0::1]:443/"),
        ("https://xn--bcher-kva.example/", "https://bücher.example/"),
    ],
)
def test_same_origin(a: str, b: str) -> None:
    assert Origin.of(a) == Origin.of(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://reg.io/", "http://reg.io/"),  # scheme
        ("http://reg.io:443/", "https://reg.io/"),  # same port number, other scheme
        ("https://reg.io/", "https://reg.io:8443/"),  # port
        ("https://reg.io/", "https://cdn.reg.io/"),  # subdomain
        ("https://reg.io/", "https://reg.io.evil.org/"),  # suffix
        ("http://127.0.0.1:5000/", "http://localhost:5000/"),  # same machine, other name
        ("http://127.0.0.1:5000/", "http://127.0.0.1:5001/"),
    ],
)
def test_different_origin(a: str, b: str) -> None:
    assert Origin.of(a) != Origin.of(b)


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://reg.io/v2/", "reg.io"),
        ("https://reg.io:443/v2/", "reg.io:443"),  # a default port that is written stays
        ("https://reg.io:5000/v2/", "reg.io:5000"),
        ("https://user:pw@reg.io:8443/v2/", "reg.io:8443"),
        ("https://[::1]:5000/v2/", "[::1]:5000"),
        ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
    ],
)
def test_tls_key_is_host_and_port_as_written(url: str, key: str) -> None:
    assert tls_key(URL(url)) == key


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:p@[::1]:5000/v2/x?token=abc&n=1#frag", "https://[::1]:5000/v2/x?token=REDACTED&n=1"),
        (
            "https://auth.io/token?scope=repository:a:pull&service=reg&access_token=zz",
            "https://auth.io/token?scope=repository:a:pull&service=reg&access_token=REDACTED",
        ),
        ("https://u@reg.io/v2/", "https://reg.io/v2/"),
    ],
)
def test_redaction_keeps_the_address_and_hides_secrets(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact_url(URL(url)) == shown


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5", 5.0),
        ("0", 0.0),
        ("0.5", 0.5),
        (" 7 ", 7.0),
        ("60", 60.0),
        ("-3", 0.0),  # negatives are no delay, never a negative sleep
        ("-inf", 0.0),
        ("61", MAX_RETRY_AFTER),  # clamped: a server cannot park a job
        ("1e9", MAX_RETRY_AFTER),
        ("99999999999999999999999999", MAX_RETRY_AFTER),
        ("inf", MAX_RETRY_AFTER),
        ("nan", None),
        ("NaN", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),  # the HTTP-date form is ignored
        ("", None),
        ("soon", None),
        ("0x10", None),
    ],
)
def test_retry_after(value: str, seconds: float | None) -> None:
    assert retry_after({"Retry-After": value}) == seconds


def test_retry_after_absent_and_case_insensitive_headers() -> None:
    assert retry_after({}) is None
    assert retry_after(CIMultiDict({"retry-after": "3"})) == 3.0
