"""Registry errors: what failed, where, and whether trying again could help.

Messages follow go-containerregistry's `transport.Error` (`GET <url>: NAME_UNKNOWN: …`) because
`flux mirror` reports carry them; URLs are redacted and bodies capped, so no secret or upload
state reaches a report.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Final

from fluxmirror.errors import FluxMirrorError
from fluxmirror.gocompat.fmt import format_v
from fluxmirror.httputil import TRANSIENT_STATUSES, redact_url

__all__ = [
    "DigestMismatchError",
    "ManifestError",
    "OCIError",
    "RegistryError",
    "TransportError",
    "registry_url",
]

# Query keys of registry requests that carry neither tokens nor upload state.
_READABLE_QUERY: Final = frozenset({"n", "last", "digest", "mount", "from", "service", "scope"})
MAX_ERROR_BODY: Final = 64 * 1024


class OCIError(FluxMirrorError):
    """Any failure talking to a registry; `temporary` says whether a retry may succeed."""

    def prefixed(self, context: str) -> OCIError:
        """The same failure named by its caller's context (`<context>: <error>`), still as retryable."""
        wrapped = OCIError(f"{context}: {self}")
        wrapped.temporary = self.temporary
        return wrapped


class TransportError(OCIError):
    """The connection failed (refused, reset, timed out, TLS)."""

    temporary = True


class ManifestError(OCIError):
    """A manifest could not be parsed or has an unsupported shape."""


class DigestMismatchError(OCIError):
    """Content did not hash to the digest it was fetched by; never retried, nothing is committed."""


def registry_url(url: str) -> str:
    """A registry URL as messages show it: paging and digests legible, anything else redacted."""
    return redact_url(url, readable=_READABLE_QUERY)


def _diagnostics(body: bytes) -> list[str]:
    try:
        document = json.loads(body)
    except ValueError:
        return []
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return []
    rendered = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        text = f"{error.get('code', '')}: {error.get('message', '')}"
        if error.get("detail") is not None:
            text += f"; {format_v(error['detail'])}"
        rendered.append(text)
    return rendered


class RegistryError(OCIError):
    """The registry answered with an unexpected status."""

    def __init__(
        self, method: str, url: str, status: int, body: bytes = b"", *, retry_after: float | None = None
    ) -> None:
        self.method = method
        self.url = registry_url(url)
        self.status = status
        self.retry_after = retry_after
        self.temporary = status in TRANSIENT_STATUSES
        self.codes = _diagnostics(body)
        super().__init__(f"{method} {self.url}: {self._describe(method, status, body)}")

    def _describe(self, method: str, status: int, body: bytes) -> str:
        if len(self.codes) == 1:
            return self.codes[0]
        if self.codes:
            return "multiple errors returned: " + "; ".join(self.codes)
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        head = f"unexpected status code {status} {phrase}".rstrip()
        text = body[:MAX_ERROR_BODY].decode("utf-8", "replace").strip()
        if not text and method == "HEAD":
            return f"{head} (HEAD responses have no body, use GET for details)"
        return f"{head}: {' '.join(text.split())}" if text else head
