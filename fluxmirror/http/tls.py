"""TLS settings per registry host (`hosts[].tls`), chosen for every request by its URL's `host[:port]`.

A host's `serverAuth` CA bundle *replaces* the system roots for that host (the hostname check stays),
and its `clientAuth` certificate chain and key are presented to it; both are TLS 1.2 at least. The
lookup is exact, as Go's is: `reg:5000` and `reg:5001` are different hosts, and a redirect to
another host gets that host's settings (or the system defaults), never the first one's. One context
is built per host and run, so connections to a host are pooled with its own settings only.

`--insecure` is layered on top, as Go layers it on its custom transports: certificates are then not
verified, but a configured client certificate is still presented.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from cryptography import x509
from yarl import URL

from fluxmirror.http.urls import tls_key

__all__ = ["HostTLS", "Rotating", "TLSSettingsError", "build_context", "load_chain"]


class TLSSettingsError(ValueError):
    """The PEM material of a host's `tls` cannot be used; its caller names the host."""


def build_context(
    *, ca_pem: bytes | None, cert_pem: bytes | None, key_pem: bytes | None, insecure: bool
) -> ssl.SSLContext:
    """A client context: the CA bundle (else the system roots), the client chain, TLS 1.2 or later."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # like Go: any certificate of the pool anchors
    if ca_pem is not None:
        if not _certificates(ca_pem):
            raise TLSSettingsError("serverAuth: no valid certificates in CA bundle")
        context.load_verify_locations(cadata=ca_pem.decode("ascii", "replace"))
    else:
        context.load_default_certs()
    if cert_pem is not None and key_pem is not None:
        load_chain(context, cert_pem, key_pem)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _certificates(pem: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        return []


def load_chain(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """`ssl` loads a certificate and key only from files: they are written 0600 into a fresh 0700
    directory and removed as soon as they are loaded, so the key never outlives this call on disk."""
    if not _certificates(cert_pem):
        raise TLSSettingsError("clientAuth: no valid certificate in certificate")
    directory = tempfile.mkdtemp(prefix="fluxmirror-tls-")
    paths = [Path(directory, "certificate.pem"), Path(directory, "key.pem")]
    try:
        for path, data in zip(paths, (cert_pem, key_pem), strict=True):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
                handle.write(data)
        context.load_cert_chain(paths[0], paths[1])
    except ssl.SSLError as exc:
        raise TLSSettingsError(f"clientAuth: certificate and key do not load: {exc.reason or exc}") from None
    finally:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        os.rmdir(directory)


class Rotating(Protocol):
    """A host context that is replaced while the run goes on (SPIFFE rotation); read per request."""

    @property
    def current(self) -> ssl.SSLContext: ...


class HostTLS:
    """What `ssl=` a request gets: its host's context, or the default verification (none with
    `--insecure`). A rotating host's context is read on every request, so a rotated SVID or bundle
    takes effect on new connections (aiohttp pools by context, so old connections are never reused
    with the new one)."""

    def __init__(
        self,
        contexts: Mapping[str, ssl.SSLContext | Rotating],
        *,
        insecure: bool,
        close: Callable[[], None] | None = None,
    ) -> None:
        self._contexts = dict(contexts)
        self._insecure = insecure
        self._close = close

    def __call__(self, url: URL) -> ssl.SSLContext | bool:
        context = self._contexts.get(tls_key(url))
        if context is None:
            return not self._insecure
        if isinstance(context, ssl.SSLContext):
            return context
        return context.current

    def close(self) -> None:
        """Release what the contexts were built from (the SPIFFE X.509 source); idempotent."""
        close, self._close = self._close, None
        if close is not None:
            close()
