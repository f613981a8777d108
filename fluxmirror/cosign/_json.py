"""Reading the JSON documents a signature is made of (bundles, statements, payloads, Rekor entries),
which come from a registry and may be anything."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["json_object"]


def json_object(raw: bytes | str) -> dict[str, Any] | None:
    """The JSON object in `raw`; None when it is not JSON, not UTF-8, or not an object."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return document if isinstance(document, dict) else None
