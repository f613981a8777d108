"""Which requests go through the environment's proxy: Go's `http.ProxyFromEnvironment`, case by case.

Each row is what the Go `flux` binary decides for the same environment (golang.org/x/net/http/httpproxy);
a user behind an egress proxy must not see fluxmirror route a registry differently.
"""

from __future__ import annotations

import pytest
from yarl import URL

from fluxmirror.http.errors import TransportError
from fluxmirror.http.proxy import ProxySettings

HTTP_PROXY = "http://proxy.corp:3128"
HTTPS_PROXY = "http://secure-proxy.corp:3129"


def _proxy(environ: dict[str, str], url: str) -> str | None:
    found = ProxySettings.from_environment(environ).proxy_for(URL(url))
    return None if found is None else str(found)


def _with_no_proxy(no_proxy: str) -> dict[str, str]:
    return {"HTTPS_PROXY": HTTPS_PROXY, "HTTP_PROXY": HTTP_PROXY, "NO_PROXY": no_proxy}


# (NO_PROXY, request URL, whether the request goes direct)
NO_PROXY_TABLE = [
    # `*` alone turns proxying off, wherever it stands in the list
    ("*", "https://registry.example.com/v2/", True),
    ("other.org, *", "https://registry.example.com/v2/", True),
    ("*.", "https://registry.example.com/v2/", False),
    # a bare name matches itself and its subdomains, never a longer name ending the same way
    ("example.com", "https://example.com/v2/", True),
    ("example.com", "https://registry.example.com/v2/", True),
    ("example.com", "https://a.b.example.com/v2/", True),
    ("example.com", "https://notexample.com/v2/", False),
    ("example.com", "https://example.com.evil.org/v2/", False),
    ("ample.com", "https://example.com/v2/", False),
    # a leading dot or `*.` means subdomains only
    (".example.com", "https://example.com/v2/", False),
    (".example.com", "https://registry.example.com/v2/", True),
    ("*.example.com", "https://example.com/v2/", False),
    ("*.example.com", "https://registry.example.com/v2/", True),
    ("*.example.com", "https://aexample.com/v2/", False),
    # names compare case-insensitively, entries are trimmed, empty entries skipped
    ("  EXAMPLE.com ", "https://Registry.Example.COM/v2/", True),
    (",,example.com,,", "https://example.com/v2/", True),
    # `host:port` matches that effective port only
    ("example.com:443", "https://example.com/v2/", True),
    ("example.com:443", "https://example.com:443/v2/", True),
    ("example.com:443", "https://example.com:5000/v2/", False),
    ("example.com:5000", "https://registry.example.com:5000/v2/", True),
    ("example.com:80", "http://example.com/v2/", True),
    ("example.com:80", "https://example.com/v2/", False),
    # IPv4 addresses, with and without a port
    ("192.168.1.1", "https://192.168.1.1/v2/", True),
    ("192.168.1.1", "https://192.168.1.10/v2/", False),
    ("192.168.1.2:81", "http://192.168.1.2/v2/", False),
    ("192.168.1.2:81", "http://192.168.1.2:81/v2/", True),
    ("192.168.1.3:80", "http://192.168.1.3/v2/", True),
    # IPv6 addresses, bare or bracketed with a port
    ("2001:db8::52:0:1", "https://[2001:db8::52:0:1]/v2/", True),
    ("2001:db8::52:0:1", "https://[2001:db8::52:0:2]/v2/", False),
    ("[2001:db8::52:0:3]:443", "https://[2001:db8::52:0:3]/v2/", True),
    ("[2001:db8::52:0:3]:80", "https://[2001:db8::52:0:3]/v2/", False),
    ("[2001:db8::52:0:3]:80", "http://[2001:db8::52:0:3]/v2/", True),
    # CIDR ranges, IPv4 and IPv6; an address entry never matches a name
    ("10.0.0.0/30", "https://10.0.0.2/v2/", True),
    ("10.0.0.0/30", "https://10.0.0.4/v2/", False),
    ("10.0.0.1/8", "https://10.200.3.4/v2/", True),
    ("2002:db8:a::45/64", "https://[2002:db8:a::123]/v2/", True),
    ("2002:db8:a::45/64", "https://[2002:db8:b::123]/v2/", False),
    ("10.0.0.0/8", "https://registry.example.com/v2/", False),
    # malformed entries are ignored: the rest of the list still applies
    (":443", "https://example.com/v2/", False),
    (":443, example.com", "https://example.com/v2/", True),
    ("10.0.0.0/33", "https://10.0.0.1/v2/", False),
    ("10.0.0.0/33, other.org", "https://other.org/v2/", True),
]


@pytest.mark.parametrize(("no_proxy", "url", "direct"), NO_PROXY_TABLE)
def test_no_proxy(no_proxy: str, url: str, direct: bool) -> None:
    scheme_proxy = HTTPS_PROXY if url.startswith("https:") else HTTP_PROXY
    assert _proxy(_with_no_proxy(no_proxy), url) == (None if direct else scheme_proxy)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:5000/v2/",
        "https://localhost/v2/",
        "http://127.0.0.1:5000/v2/",
        "http://127.0.0.2/v2/",
        "https://[::1]:5000/v2/",
    ],
)
def test_localhost_and_loopback_are_never_proxied(url: str) -> None:
    assert _proxy({"HTTPS_PROXY": HTTPS_PROXY, "HTTP_PROXY": HTTP_PROXY}, url) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # not loopback: proxied like anything else
        ("https://[::2]/v2/", HTTPS_PROXY),
        ("https://local.localhost/v2/", HTTPS_PROXY),
        ("https://localhost.net/v2/", HTTPS_PROXY),
        ("http://128.0.0.1/v2/", HTTP_PROXY),
    ],
)
def test_only_loopback_itself_is_exempt(url: str, expected: str) -> None:
    assert _proxy({"HTTPS_PROXY": HTTPS_PROXY, "HTTP_PROXY": HTTP_PROXY}, url) == expected


def test_each_scheme_uses_its_own_variable() -> None:
    both = {"HTTPS_PROXY": HTTPS_PROXY, "HTTP_PROXY": HTTP_PROXY}
    assert _proxy(both, "https://r.example/v2/") == HTTPS_PROXY
    assert _proxy(both, "http://r.example/v2/") == HTTP_PROXY
    # HTTP_PROXY is never used for https, nor HTTPS_PROXY for http
    assert _proxy({"HTTP_PROXY": HTTP_PROXY}, "https://r.example/v2/") is None
    assert _proxy({"HTTPS_PROXY": HTTPS_PROXY}, "http://r.example/v2/") is None
    # other schemes are never proxied
    assert _proxy(both, "ftp://r.example/") is None


@pytest.mark.parametrize(
    ("environ", "url", "expected"),
    [
        ({"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2"}, "https://r.io/", "http://upper:1"),
        ({"https_proxy": "http://lower:2"}, "https://r.io/", "http://lower:2"),
        # an empty upper-case variable does not hide a set lower-case one, as in Go's getEnvAny
        ({"HTTPS_PROXY": "", "https_proxy": "http://lower:2"}, "https://r.io/", "http://lower:2"),
        ({"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:2"}, "http://r.io/", "http://upper:1"),
        ({"http_proxy": "http://lower:2"}, "http://r.io/", "http://lower:2"),
        # NO_PROXY too: the upper-case list is the one used
        ({"HTTPS_PROXY": HTTPS_PROXY, "NO_PROXY": "other.org", "no_proxy": "r.io"}, "https://r.io/", HTTPS_PROXY),
        ({"HTTPS_PROXY": HTTPS_PROXY, "no_proxy": "r.io"}, "https://r.io/", None),
    ],
)
def test_upper_case_wins_over_lower_case(environ: dict[str, str], url: str, expected: str | None) -> None:
    assert _proxy(environ, url) == expected


def test_request_method_disables_http_proxy_only() -> None:
    """In a CGI environment HTTP_PROXY may come from a request header (httpoxy), so it is not used."""
    cgi = {"REQUEST_METHOD": "GET", "HTTP_PROXY": HTTP_PROXY, "HTTPS_PROXY": HTTPS_PROXY}
    assert _proxy(cgi, "http://r.example/v2/") is None
    assert _proxy(cgi, "https://r.example/v2/") == HTTPS_PROXY
    assert _proxy(cgi | {"REQUEST_METHOD": ""}, "http://r.example/v2/") == HTTP_PROXY


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("proxy.corp:3128", "http://proxy.corp:3128"),
        ("cache.corp.example.com", "http://cache.corp.example.com"),
        ("127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("localhost", "http://localhost"),
        ("user:pw@proxy.corp:3128", "http://user:pw@proxy.corp:3128"),
        ("http://proxy.corp:3128", "http://proxy.corp:3128"),
        ("https://proxy.corp", "https://proxy.corp"),
    ],
)
def test_scheme_less_proxy_values_mean_http(value: str, expected: str) -> None:
    assert _proxy({"HTTPS_PROXY": value}, "https://r.example/v2/") == expected


@pytest.mark.parametrize("value", ["socks5://127.0.0.1:1080", "socks5h://p:1080", "foo://127.0.0.1"])
def test_proxy_schemes_aiohttp_cannot_speak_fail_each_request(value: str) -> None:
    """Go speaks SOCKS5; aiohttp would send HTTP to it, so the request fails instead (not the run)."""
    settings = ProxySettings.from_environment({"HTTPS_PROXY": value})
    with pytest.raises(TransportError, match="is not supported") as caught:
        settings.proxy_for(URL("https://r.example/v2/"))
    assert caught.value.temporary is False
    assert settings.proxy_for(URL("https://localhost/v2/")) is None  # loopback is still direct


def test_no_proxy_variables_means_direct() -> None:
    assert _proxy({}, "https://r.example/v2/") is None
    assert _proxy({"NO_PROXY": "r.example"}, "https://r.example/v2/") is None


# Rows where an earlier fluxmirror and current Go disagreed (x/net's httpproxy after CVE-2025-22870:
# addresses never match names, names compare in IDNA ASCII, only a leading `*.` is stripped).
GO_CORNER_CASES = [
    pytest.param(
        "example.com",
        "http://[1000::%25.example.com]:123/v2/",
        False,
        id="ipv6-zone-is-not-a-domain",
    ),
    pytest.param(
        "0.1",
        "http://10.0.0.1/v2/",
        False,
        id="ip-host-vs-domain-entry",
    ),
    pytest.param(
        "xn--fsq092h.com",
        "http://www.xn--fsq092h.com/v2/",
        True,
        id="punycode-entry-and-url",
    ),
    pytest.param(
        "xn--fsq092h.com",
        "http://www.示例.com/v2/",
        True,
        id="punycode-entry-unicode-url",
    ),
    pytest.param(
        "[2001:db8::1]",
        "http://[2001:db8::1]/v2/",
        False,
        id="bracketed-ipv6-without-port",
    ),
    pytest.param(
        "*example.com",
        "http://example.com/v2/",
        False,
        id="star-without-dot",
    ),
]


@pytest.mark.parametrize(("no_proxy", "url", "direct"), GO_CORNER_CASES)
def test_no_proxy_as_go_decides(no_proxy: str, url: str, direct: bool) -> None:
    assert _proxy(_with_no_proxy(no_proxy), url) == (None if direct else HTTP_PROXY)


def test_unicode_entry_matches_unicode_and_ascii_urls() -> None:
    """What does already agree with Go for internationalised names."""
    environ = _with_no_proxy(".示例.com")
    assert _proxy(environ, "http://www.示例.com/v2/") is None
    assert _proxy(_with_no_proxy("示例.com"), "http://www.xn--fsq092h.com/v2/") is None
