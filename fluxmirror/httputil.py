"""HTTP facts the registry client and the chart downloader share: which answers are worth another
try, which are redirects, and how a URL may appear in a message without leaking a secret."""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDIRECT_STATUSES", "TRANSIENT_STATUSES", "redact_url"]

# clarifications §2: the statuses a copy retries; the chart downloader uses the same list, so a
# chart repository behind the same proxy or CDN is treated the same way.
TRANSIENT_STATUSES: Final = frozenset({408, 429, 499, 500, 502, 503, 504, 522})
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})


def redact_url(url: str, *, readable: frozenset[str] = frozenset()) -> str:
    """`url` as a message may show it: no user info, every query value `REDACTED` except those
    under a key in `readable`. Query strings carry tokens and upload state; `readable` names the
    keys known to hold neither, so paging and digests stay legible."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    query = [
        (key, value if key in readable else "REDACTED") for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit((parts.scheme, host, parts.path, urlencode(query, safe=":/,"), ""))
