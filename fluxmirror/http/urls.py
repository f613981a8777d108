"""URL facts every HTTP caller needs: where a URL points (its origin), which key selects its TLS
settings, and how a URL may appear in a message without leaking a secret."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from yarl import URL

__all__ = ["DEFAULT_PORTS", "Origin", "redact_url", "tls_key"]

DEFAULT_PORTS: Final = {"http": 80, "https": 443}

# Query keys that carry neither tokens nor upload state: registry paging, digests, mounts and the
# token flow's service and scope. Every other query value is redacted in messages.
_READABLE_QUERY: Final = frozenset({"n", "last", "digest", "mount", "from", "service", "scope"})


@dataclass(frozen=True, slots=True)
class Origin:
    """Scheme, host and effective port: the one rule deciding whether two URLs are the same
    server, so a credential meant for one is never sent to the other.

    The port is the effective one (`https://reg` and `https://reg:443` are the same origin) and
    the host is compared case-insensitively, without IPv6 brackets."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: URL | str) -> Origin:
        parsed = url if isinstance(url, URL) else URL(url)
        scheme = (parsed.scheme or "").lower()
        port = parsed.explicit_port or DEFAULT_PORTS.get(scheme, 0)
        return cls(scheme, (parsed.host or "").lower(), port)


def tls_key(url: URL) -> str:
    """The `host[:port]` exactly as written in the URL (a port equal to the default is kept), which is
    how per-host TLS settings are looked up: the config names hosts that way."""
    return url.raw_authority.rpartition("@")[2]


def redact_url(url: str | URL) -> str:
    """`url` as a message may show it: no user info, every query value `REDACTED` except paging,
    digests and the token flow's service and scope, so messages stay legible and secret-free."""
    parts = urlsplit(str(url))
    host = parts.netloc.rpartition("@")[2]
    query = [
        (key, value if key in _READABLE_QUERY else "REDACTED")
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit((parts.scheme, host, parts.path, urlencode(query, safe=":/,"), ""))
