"""The one error class of the layout library: an OCI image layout (a directory or a tar of one)
that cannot be read, written or trusted. Its message is the single line a user sees, naming the
directory or archive, so a truncated or hostile archive never ends in a traceback.
"""

from __future__ import annotations

from fluxmirror.errors import FluxMirrorError

__all__ = ["LayoutError"]


class LayoutError(FluxMirrorError):
    """An OCI image layout or layout archive is unreadable, malformed, hostile or locked."""
