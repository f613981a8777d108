"""The knobs of a sync run, kept apart from the engine so the CLI can build them without loading it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fluxmirror.api.duration import Duration
from fluxmirror.sync.shard import Shard

if TYPE_CHECKING:
    from fluxmirror.sync.events import RunObserver

__all__ = ["SyncOptions"]

_FIVE_MINUTES = Duration.parse("5m")


@dataclass(frozen=True, slots=True)
class SyncOptions:
    concurrency: int = 4
    retries: int = 3
    timeout: Duration = _FIVE_MINUTES
    overwrite: bool = False
    dry_run: bool = False
    insecure: bool = False
    trusted_root: str | None = None  # a pinned Sigstore trusted_root.json (docs/verify.md#trusted-root)
    state_dir: str | None = None  # what is remembered across runs (docs/verify.md#cache)
    shard: Shard | None = None  # run only this shard's entries (docs/sync.md#sharding)
    observer: RunObserver | None = None  # counts traffic and retries for --metrics-file/--pushgateway
    max_bandwidth: float | None = None  # blob bytes per second over the whole run (docs/sync.md#bandwidth)
