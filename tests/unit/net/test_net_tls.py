"""Per-host TLS choice: exact `host[:port]` keys, defaults elsewhere, `--insecure` layered on top."""

from __future__ import annotations

import ssl

import pytest
from harness.pki import PKI, create_pki
from yarl import URL

from fluxmirror.http.tls import HostTLS, TLSSettingsError, build_context


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
