"""Sharding a run by destination (docs/sync.md#sharding): n processes (the pods of a Kubernetes
Indexed Job) each run one shard of the same config, and together run every entry exactly once.

An entry belongs to shard `h mod n`, where `h` is the first 8 bytes of the SHA-256 of its
destination repository's normalised name (`registry/path`, the registry lower-cased, Docker Hub as
`index.docker.io/library/…`), read as a big-endian integer. The hash, not Python's `hash()`, keeps
the split the same in every process and every release, and lets other tools compute it. Keying by
destination puts every entry that writes one repository in one pod, so writers of a repository's
referrers fallback index still take turns (docs/sync.md#referrer-fallback-index).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from fluxmirror.oci.reference import Repository
from fluxmirror.sync.logfmt import kv

__all__ = ["Shard", "pick", "shard_key", "shard_of"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_HASH_BYTES = 8


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` of `count`, 0-based as Kubernetes' `JOB_COMPLETION_INDEX` is."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: want 0 <= index < count")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, destination: Repository) -> bool:
        return shard_of(destination, self.count) == self.index


def shard_key(destination: Repository) -> str:
    """The name that is hashed: the same repository always gives the same key, however the config
    spells it (`docker.io/x` and `index.docker.io/library/x`, `Reg:5000/a` and `reg:5000/a`)."""
    return f"{destination.registry.lower()}/{destination.path}"


def shard_of(destination: Repository, count: int) -> int:
    """The shard (of `count`) whose pod mirrors into `destination`."""
    digest = hashlib.sha256(shard_key(destination).encode()).digest()
    return int.from_bytes(digest[:_HASH_BYTES], "big") % count


def pick(shard: Shard | None, entries: Iterable[_T], destination: Callable[[_T], Repository]) -> list[_T]:
    """The entries `shard` runs, in their order (every entry without a shard); each entry left to
    another shard is logged, so the verbose log tells which pod has it."""
    if shard is None:
        return list(entries)
    kept = []
    for entry in entries:
        repository = destination(entry)
        owner = shard_of(repository, shard.count)
        if owner == shard.index:
            kept.append(entry)
        else:
            elsewhere = Shard(owner, shard.count)
            log.info(kv("entry left to another shard", destination=shard_key(repository), shard=elsewhere))
    return kept
