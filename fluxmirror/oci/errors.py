"""Registry errors: what failed, where, and whether trying again could help.

Messages follow go-containerregistry's `transport.Error` (`GET <url>: NAME_UNKNOWN: …`) because
`flux mirror` reports carry them; URLs are redacted and bodies capped, so no secret or upload
state reaches a report. Connection failures are `fluxmirror.http.errors.TransportError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final

import msgspec

from fluxmirror.errors import FluxMirrorError
from fluxmirror.gocompat.fmt import format_v
from fluxmirror.http.errors import StatusError
from fluxmirror.http.status import TRANSIENT_STATUSES
from fluxmirror.http.urls import redact_url
from fluxmirror.scrub import scrub

__all__ = [
    "MAX_ERROR_BODY",
    "Diagnostic",
    "DigestMismatchError",
    "ManifestError",
    "OCIError",
    "RegistryError",
]

MAX_ERROR_BODY: Final = 64 * 1024
# Error codes that say the registry is busy, not that the request is wrong (as go-containerregistry
# counts them), so a request answered with one is worth another try whatever its status.
_TEMPORARY_CODES: Final = frozenset({"TOOMANYREQUESTS", "UNAVAILABLE"})


class OCIError(FluxMirrorError):
    """Content or protocol from a registry that fluxmirror cannot accept (a missing manifest, a
    page of the wrong type); transport and status failures are `NetworkError`s."""


class ManifestError(OCIError):
    """A manifest could not be parsed or has an unsupported shape."""


class DigestMismatchError(OCIError):
    """Content did not hash to the digest it was fetched by; nothing is committed. Not temporary: the
    request is not repeated, though the job as a whole is retried like any failure."""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One entry of the distribution spec's error body: `code`, `message` and free-form `detail`."""

    code: str
    message: str
    detail: Any = None

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        return scrub(text if self.detail is None else f"{text}; {format_v(self.detail)}")


class _ErrorBody(msgspec.Struct):
    errors: list[msgspec.Raw] = []


def diagnostics(body: bytes) -> tuple[Diagnostic, ...]:
    """The diagnostics of an error body; none when it is not the spec's JSON shape."""
    try:
        entries = msgspec.json.decode(body, type=_ErrorBody).errors
    except msgspec.DecodeError:
        return ()
    found = []
    for raw in entries:
        try:
            entry = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            continue
        if isinstance(entry, dict):
            code, message = entry.get("code", ""), entry.get("message", "")
            found.append(Diagnostic(str(code), str(message), entry.get("detail")))
    return tuple(found)


class RegistryError(StatusError):
    """The registry answered with a status the request does not accept; `diagnostics` holds the
    spec's error codes from the body, and a busy code makes the error temporary."""

    def __init__(
        self, method: str, url: str, status: int, body: bytes = b"", *, retry_after: float | None = None
    ) -> None:
        self.diagnostics = diagnostics(body[:MAX_ERROR_BODY])
        temporary = status in TRANSIENT_STATUSES or any(d.code in _TEMPORARY_CODES for d in self.diagnostics)
        super().__init__(
            f"{method} {redact_url(url)}: {self._describe(method, status, body)}",
            method=method,
            url=url,
            status=status,
            retry_after=retry_after,
            temporary=temporary,
        )

    def _describe(self, method: str, status: int, body: bytes) -> str:
        codes = [str(diagnostic) for diagnostic in self.diagnostics]
        if len(codes) == 1:
            return codes[0]
        if codes:
            return "multiple errors returned: " + "; ".join(codes)
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        head = f"unexpected status code {status} {phrase}".rstrip()
        text = scrub(body[:MAX_ERROR_BODY].decode("utf-8", "replace")).strip()
        if not text and method == "HEAD":
            return f"{head} (HEAD responses have no body, use GET for details)"
        return f"{head}: {' '.join(text.split())}" if text else head
