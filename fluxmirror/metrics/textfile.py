"""`--metrics-file`: the run's metrics for node-exporter's textfile collector (docs/metrics.md#textfile).

The collector reads the Prometheus text format (0.0.4), not OpenMetrics, and may read a file at any
moment; so the file is written whole under a temporary name in the same directory (the collector
reads only `*.prom`) and renamed over the old one, which a reader sees as one step.
prometheus-client's `write_to_textfile` does exactly that, and removes the temporary file when
writing fails.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry, write_to_textfile

from fluxmirror.errors import MetricsError, UsageError
from fluxmirror.gocompat.oserror import errno_text

__all__ = ["checked_path", "write_textfile"]


def checked_path(value: str, flag: str) -> Path:
    """The file `value` names, refused at once (before the run) when it cannot be one: its directory
    must exist, and it must not itself be a directory."""
    path = Path(value)
    if not value or path.is_dir():
        raise UsageError(f'invalid argument "{value}" for "{flag}" flag: not a file name')
    if not path.parent.is_dir():
        raise UsageError(f'invalid argument "{value}" for "{flag}" flag: no such directory {path.parent}')
    return path


async def write_textfile(registry: CollectorRegistry, path: Path) -> None:
    """Replace `path` with the registry's metrics in one rename; off the loop, since it writes a file."""
    try:
        await asyncio.to_thread(write_to_textfile, str(path), registry)
    except OSError as exc:  # the temporary file's name would only puzzle: the target is named
        reason = errno_text(exc.errno) if exc.errno else str(exc)
        raise MetricsError(f"metrics not written to {path}: {reason}") from exc
