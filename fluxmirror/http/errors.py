"""What can go wrong in an HTTP exchange, as exceptions that carry the context a caller needs.

aiohttp's own exceptions never leave `fluxmirror.http`: `session.map_client_error` turns them into
`TransportError` (or `TLSError`) raised `from` the original. Statuses are the caller's
business: a registry client and a chart downloader word them differently, so they subclass
`StatusError` (see `fluxmirror.errors` for the whole tree).
"""

from __future__ import annotations

from fluxmirror.errors import FluxMirrorError
from fluxmirror.http.status import TRANSIENT_STATUSES
from fluxmirror.http.urls import redact_url

__all__ = ["BodyError", "NetworkError", "RedirectError", "StatusError", "TLSError", "TransportError"]


class NetworkError(FluxMirrorError):
    """Any failure of an HTTP exchange with a registry or a chart repository."""


class TransportError(NetworkError):
    """The connection failed: refused, reset, timed out, or cut mid-body. Temporary by default,
    since the same request a moment later may well succeed."""

    def __init__(self, message: str, *, temporary: bool = True) -> None:
        super().__init__(message, temporary=temporary)


class TLSError(TransportError):
    """The TLS handshake failed, most often because the server's certificate was refused. Never
    temporary: asking again gets the same certificate, so the row must say this at once rather
    than wait for the job's deadline."""

    def __init__(self, message: str) -> None:
        super().__init__(message, temporary=False)


class StatusError(NetworkError):
    """The server answered with a status the caller does not accept.

    `url` is already redacted; `retry_after` is the server's `Retry-After` in seconds, if any.
    Transient statuses (429, 5xx, …) are temporary unless the caller knows better."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        status: int,
        retry_after: float | None = None,
        temporary: bool | None = None,
    ) -> None:
        super().__init__(message, temporary=status in TRANSIENT_STATUSES if temporary is None else temporary)
        self.method = method
        self.url = redact_url(url)
        self.status = status
        self.retry_after = retry_after


class BodyError(NetworkError):
    """A body was larger than its cap (not temporary) or shorter than its `Content-Length`
    (temporary: the connection was cut)."""


class RedirectError(NetworkError):
    """Too many redirects, or a redirect to something that is not an http(s) URL."""
