"""SPIFFE for `hosts[].tls` (docs/sync.md#host-tls): server authentication by the peer's SPIFFE ID and
the client's X.509-SVID, both from the Workload API.

Python's `ssl` has no per-connection verify callback, so the check runs in two steps, both inside
the handshake: OpenSSL verifies the chain against the trust bundle of the expected trust domain
(no hostname check), then `SSLContext.sslobject_class` - which asyncio instantiates for every TLS
connection through `wrap_bio` - reads the leaf and authorizes its ID before `do_handshake` returns.
A refused server therefore never receives one byte of HTTP (nor a token).

Differences from go-spiffe, deliberate: OpenSSL applies the "SSL server" purpose, so a server SVID
whose extended key usage lacks serverAuth is refused (Go accepts any EKU; SPIRE's SVIDs carry both);
with `authorizeAny` every bundle of the source is trusted at once, so a leaf may chain to one trust
domain while naming another (any ID is accepted then anyway).

py-spiffe (the `spiffe` extra) is imported only here, and only for a config that needs SPIFFE.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fluxmirror.http.tls import TLSSettingsError, load_chain

__all__ = [
    "Authorizer",
    "RotatingContext",
    "ServerRule",
    "SpiffeAuthError",
    "SvidMaterial",
    "authorizer",
    "material_of",
    "open_x509_source",
    "spiffe_context",
    "spiffe_id_of",
    "trust_domain_of",
]

log = logging.getLogger(__name__)

EXTRA_HINT = "install the SPIFFE extra: pip install 'fluxmirror[spiffe]'"
Authorizer = Callable[[str], None]


class SpiffeAuthError(ssl.SSLCertVerificationError):
    """The server's certificate is not an acceptable X.509-SVID for this host; reported verbatim
    (go-spiffe's texts, e.g. `unexpected ID "spiffe://…"`)."""

    verbatim = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.verify_code = 0
        self.verify_message = message

    def __str__(self) -> str:  # ssl.SSLError would print the args tuple
        return self.verify_message


@dataclass(frozen=True)
class SvidMaterial:
    """The current X.509-SVID (chain and key, PEM) and the trust bundles by trust domain name."""

    spiffe_id: str
    chain_pem: bytes
    key_pem: bytes
    bundles_pem: dict[str, bytes]


def trust_domain_of(spiffe_id: str) -> str:
    return spiffe_id.removeprefix("spiffe://").partition("/")[0]


def spiffe_id_of(certificate: x509.Certificate) -> str:
    """The leaf's one `spiffe://` URI SAN."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    if len(uris) != 1 or not uris[0].startswith("spiffe://"):
        raise SpiffeAuthError(f"certificate must have exactly one spiffe:// URI SAN, got {len(uris)} URI SANs")
    return uris[0]


def authorizer(*, server_id: str | None = None, trust_domain: str | None = None) -> Authorizer:
    """go-spiffe's AuthorizeID / AuthorizeMemberOf / AuthorizeAny (neither given)."""

    def check(peer_id: str) -> None:
        if server_id is not None and peer_id != server_id:
            raise SpiffeAuthError(f'unexpected ID "{peer_id}"')
        if trust_domain is not None and trust_domain_of(peer_id) != trust_domain:
            raise SpiffeAuthError(f'unexpected trust domain "{trust_domain_of(peer_id)}"')

    return check


def _sslobject_class(authorize: Authorizer) -> type[ssl.SSLObject]:
    class SpiffeSSLObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            super().do_handshake()  # SSLWantReadError and friends propagate untouched
            der = self.getpeercert(binary_form=True)
            if der is None:
                raise SpiffeAuthError("server presented no certificate")
            leaf = x509.load_der_x509_certificate(der)
            with contextlib.suppress(x509.ExtensionNotFound):
                if leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                    raise SpiffeAuthError("leaf certificate must not be a CA")
            with contextlib.suppress(x509.ExtensionNotFound):
                if leaf.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign:
                    raise SpiffeAuthError("leaf certificate must not have keyCertSign key usage")
            authorize(spiffe_id_of(leaf))  # raising here: no HTTP byte is ever sent

    return SpiffeSSLObject


@dataclass(frozen=True)
class ServerRule:
    """`serverAuth.spiffe`: exactly one of the three is set (validated at load)."""

    server_id: str | None = None
    trust_domain: str | None = None  # "self": our own SVID's trust domain
    authorize_any: bool = False


def spiffe_context(
    material: SvidMaterial,
    *,
    server: ServerRule | None,
    ca_pem: bytes | None,
    client_svid: bool,
    client_pem: tuple[bytes, bytes] | None,
    insecure: bool,
) -> ssl.SSLContext:
    """A client context for one host from the current SVID material: SPIFFE (or static CA, or system
    roots) for the server, the SVID (or static pair) for the client."""
    from fluxmirror.http.tls import build_context

    if server is None:
        context = build_context(
            ca_pem=ca_pem,
            cert_pem=None if client_svid else (client_pem[0] if client_pem else None),
            key_pem=None if client_svid else (client_pem[1] if client_pem else None),
            insecure=insecure,
        )
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        if server.server_id is not None:
            domain: str | None = trust_domain_of(server.server_id)
            check = authorizer(server_id=server.server_id)
        elif server.trust_domain is not None:
            domain = trust_domain_of(material.spiffe_id) if server.trust_domain == "self" else server.trust_domain
            check = authorizer(trust_domain=domain)
        else:
            domain, check = None, authorizer()
        if domain is not None and domain not in material.bundles_pem:
            raise TLSSettingsError(f'spiffe: no X.509 bundle found for trust domain "{domain}"')
        bundles = [material.bundles_pem[domain]] if domain is not None else list(material.bundles_pem.values())
        if not bundles:
            raise TLSSettingsError("spiffe: the X.509 source has no bundles")
        context.check_hostname = False  # the identity is the URI SAN, not the host name
        context.load_verify_locations(cadata=b"".join(bundles).decode("ascii", "replace"))
        context.sslobject_class = _sslobject_class(check)
        if client_pem is not None and not client_svid:
            load_chain(context, client_pem[0], client_pem[1])
        if insecure:
            context.verify_mode = ssl.CERT_NONE
            context.sslobject_class = ssl.SSLObject
    if client_svid:
        load_chain(context, material.chain_pem, material.key_pem)
    return context


def open_x509_source() -> Any:
    """py-spiffe's X509Source on `SPIFFE_ENDPOINT_SOCKET`; blocks until the first SVID (run it in a
    thread). Raises TLSSettingsError with the text of the failure."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # py-spiffe's import warns about DSA on recent cryptography
            from spiffe import X509Source
    except ImportError:
        raise TLSSettingsError(f"spiffe: py-spiffe is not installed; {EXTRA_HINT}") from None
    try:
        return X509Source(timeout_in_seconds=30)
    except Exception as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise TLSSettingsError(f"spiffe: create X.509 source: {text}") from None


def material_of(source: Any) -> SvidMaterial:
    context = source.get_x509_context()  # one snapshot: the SVID and the bundles of the same update
    svid = context.default_svid

    def pem(certificate: x509.Certificate) -> bytes:
        return certificate.public_bytes(serialization.Encoding.PEM)

    key = svid.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    bundles = {
        bundle.trust_domain.name: b"".join(pem(c) for c in bundle.x509_authorities)
        for bundle in context.x509_bundle_set.bundles
    }
    return SvidMaterial(str(svid.spiffe_id), b"".join(pem(c) for c in svid.cert_chain), key, bundles)


class RotatingContext:
    """One host's context, rebuilt on every SVID or bundle update of the source (a new context each
    time: a bundle update may remove authorities, and `load_verify_locations` only adds). Requests
    read `current`, so new connections use the new SVID; a failed rebuild keeps the old context."""

    def __init__(self, host: str, build: Callable[[SvidMaterial], ssl.SSLContext], first: SvidMaterial) -> None:
        self._host, self._build, self._lock = host, build, threading.Lock()
        self.current = build(first)

    def refresh(self, material: SvidMaterial) -> None:
        """Called on py-spiffe's watcher thread; an attribute swap is atomic for the readers."""
        try:
            context = self._build(material)
        except (TLSSettingsError, ssl.SSLError, ValueError) as exc:
            log.warning('host "%s": tls: spiffe: keeping the previous context, rebuild failed: %s', self._host, exc)
            return
        with self._lock:
            self.current = context
