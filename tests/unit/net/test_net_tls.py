"""Per-host TLS choice: exact `host[:port]` keys, defaults elsewhere, `--insecure` layered on top."""

from __future__ import annotations

import ssl

import pytest
from aiohttp import web
from harness.pki import PKI, create_pki
from harness.scripted import Serve
from yarl import URL

from fluxmirror.http.errors import TLSError
from fluxmirror.http.session import HttpSession
from fluxmirror.http.tls import HostTLS, TLSSettingsError, build_context
from fluxmirror.http.urls import tls_key


def test_each_url_gets_its_own_hosts_context_and_others_the_default(pki: PKI) -> None:
    context = build_context(ca_pem=pki.ca_path.read_bytes(), cert_pem=None, key_pem=None, insecure=False)
    choice = HostTLS({"reg.example:5000": context}, insecure=False)
    assert choice(URL("https://reg.example:5000/v2/")) is context
    assert choice(URL("https://reg.example:5001/v2/")) is True  # another port is another host
    assert choice(URL("https://reg.example/v2/")) is True
    assert choice(URL("https://cdn.example/blob")) is True  # a redirect's host gets its own (default) trust


def test_insecure_turns_verification_off_but_keeps_a_hosts_client_certificate(pki: PKI) -> None:
    context = build_context(
        ca_pem=None, cert_pem=pki.client_cert_path.read_bytes(), key_pem=pki.client_key_path.read_bytes(), insecure=True
    )
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_NONE, False)
    assert HostTLS({"reg.example": context}, insecure=True)(URL("https://reg.example/v2/")) is context
    assert HostTLS({}, insecure=True)(URL("https://other.example/v2/")) is False


def test_contexts_require_tls_1_2_and_verify_by_default(pki: PKI) -> None:
    context = build_context(ca_pem=pki.ca_path.read_bytes(), cert_pem=None, key_pem=None, insecure=False)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)


def test_a_key_that_does_not_match_its_certificate_is_one_clear_error(
    pki: PKI, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = create_pki(tmp_path_factory.mktemp("other"))
    with pytest.raises(TLSSettingsError, match=r"^clientAuth: certificate and key do not load: "):
        build_context(
            ca_pem=None,
            cert_pem=pki.client_cert_path.read_bytes(),
            key_pem=other.client_key_path.read_bytes(),
            insecure=False,
        )


async def test_a_redirect_to_another_host_gets_that_hosts_trust_not_the_first_ones(
    http: HttpSession, serve: Serve, pki: PKI, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Host A (trusted through its own bundle) redirects to host B, whose certificate comes from
    another CA: the hop to B is verified with B's settings, so it succeeds only when B has its own."""
    other = create_pki(tmp_path_factory.mktemp("other-ca"))
    b_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    b_tls.load_cert_chain(other.server_cert_path, other.server_key_path)
    a_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    a_tls.load_cert_chain(pki.server_cert_path, pki.server_key_path)

    async def blob(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"from B")

    b = serve(blob, ssl_context=b_tls)

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPTemporaryRedirect(f"{b.url}/blob")

    a = serve(redirect, ssl_context=a_tls)
    a_key, b_key = tls_key(URL(a.url)), tls_key(URL(b.url))

    def trust(ca: PKI) -> ssl.SSLContext:
        return build_context(ca_pem=ca.ca_path.read_bytes(), cert_pem=None, key_pem=None, insecure=False)

    both = HostTLS({a_key: trust(pki), b_key: trust(other)}, insecure=False)
    async with http.request("GET", f"{a.url}/start", tls=both, follow_redirects=True) as response:
        assert (response.status, await response.read()) == (200, b"from B")

    only_a = HostTLS({a_key: trust(pki)}, insecure=False)
    with pytest.raises(TLSError, match="x509: certificate signed by unknown authority"):
        async with http.request("GET", f"{a.url}/start", tls=only_a, follow_redirects=True):
            pytest.fail("the hop to B must not be trusted through A's bundle")
