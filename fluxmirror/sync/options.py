"""The knobs of a sync run, kept apart from the engine so the CLI can build them without loading it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from fluxmirror.api.duration import Duration
from fluxmirror.sync.shard import Shard

if TYPE_CHECKING:
    from fluxmirror.sync.events import RunObserver

__all__ = ["COMPARE_CONCURRENCY", "SyncOptions"]

_FIVE_MINUTES = Duration.parse("5m")
COMPARE_CONCURRENCY: Final = 16
"""Digest lookups at once per registry host unless `--compare-concurrency` says otherwise: through a
40 ms round trip a no-op re-sync gains little past it (docs/sync.md#compare-phase)."""


@dataclass(frozen=True, slots=True)
class SyncOptions:
    concurrency: int = 4
    parallel_entries: int = 1  # entries run side by side (docs/sync.md#parallel-entries)
    compare_concurrency: int = COMPARE_CONCURRENCY
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
    adaptive: bool = False  # a concurrency limit per registry that backs off on 429/503 (docs/sync.md#adaptive)
