"""SPIFFE ID and trust-domain syntax, so `tls.serverAuth.spiffe` mistakes fail at load time."""

from __future__ import annotations

import re

__all__ = ["check_spiffe_id", "check_trust_domain"]

_TRUST_DOMAIN = re.compile(r"^[a-z0-9._-]+$")
_PATH_SEGMENT = re.compile(r"^[a-zA-Z0-9._-]+$")
_SCHEME = "spiffe://"


def check_trust_domain(name: str) -> None:
    """Raise ValueError unless `name` is a trust domain name (optionally written as a SPIFFE ID)."""
    if name.startswith(_SCHEME):
        check_spiffe_id(name)
        return
    if not name:
        raise ValueError("trust domain is missing")
    if not _TRUST_DOMAIN.match(name):
        raise ValueError(
            "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores"
        )


def check_spiffe_id(spiffe_id: str) -> None:
    """Raise ValueError unless `spiffe_id` is `spiffe://<trust domain>[/<path>]`."""
    if not spiffe_id.startswith(_SCHEME):
        raise ValueError("scheme is missing or invalid")
    domain, slash, path = spiffe_id[len(_SCHEME) :].partition("/")
    check_trust_domain(domain)
    if not slash:
        return
    if not path:
        raise ValueError("path cannot have a trailing slash")
    for segment in path.split("/"):
        if not segment:
            raise ValueError("path cannot contain empty segments")
        if segment in (".", ".."):
            raise ValueError("path cannot contain dot segments")
        if not _PATH_SEGMENT.match(segment):
            raise ValueError("path segment characters are limited to letters, numbers, dots, dashes, and underscores")
