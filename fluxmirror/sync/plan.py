"""Planning an artifacts entry: list the source's tags, select the ones to mirror, verify their
signatures, snapshot referrers.

Planning is not bound by `--timeout` (docs/sync.md#planning); its failure fails the whole entry,
reported with an empty `tags` list while the other entries still run. With `verify`, each selected
tag is verified in selection order (docs/verify.md): a verified tag is planned with its
`verification` block, a too-new one becomes a `skipped` row, and the first failure becomes a
`failed` row that ends the plan there. With `includeReferrers`, each planned tag's referrers are
listed once here (verification's listing is reused), and every retry of its job reuses that list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass

from fluxmirror.api.config import Artifact, Selector
from fluxmirror.api.report import Reason, Status, TagResult, Verification
from fluxmirror.errors import FluxMirrorError
from fluxmirror.oci.client import Registries, RegistryClient
from fluxmirror.oci.manifests import Descriptor
from fluxmirror.oci.reference import Repository, is_tag, parse_repository
from fluxmirror.oci.referrers import list_referrers
from fluxmirror.selection.tags import select_tags
from fluxmirror.sync.logfmt import kv
from fluxmirror.sync.verify import TagVerdict, TrustedRoots, VerifyFailure, verify_tags

__all__ = ["ArtifactEntry", "PlanError", "PlannedTag", "plan_artifact"]

log = logging.getLogger(__name__)


class PlanError(FluxMirrorError):
    """The entry could not be planned; its message is the report's entry `error`."""


@dataclass(frozen=True, slots=True)
class ArtifactEntry:
    """An `artifacts[]` entry with its repositories parsed; `source`/`destination` are the config strings."""

    spec: Artifact
    source_repository: Repository
    destination_repository: Repository

    @classmethod
    def of(cls, spec: Artifact) -> ArtifactEntry:
        return cls(spec, parse_repository(spec.source), parse_repository(spec.destination))

    @property
    def source(self) -> str:
        return self.spec.source

    @property
    def destination(self) -> str:
        return self.spec.destination


@dataclass(frozen=True, slots=True)
class PlannedTag:
    """A selected tag. `referrers` is the source's referrer snapshot (None without includeReferrers);
    `verification` is its signature's block (with `verify`) and `digest` the manifest that signature
    covers; `decided` is a row settled at plan time (a deferred or failed verification), reported as
    is, with no copy."""

    tag: str
    referrers: tuple[Descriptor, ...] | None = None
    verification: Verification | None = None
    decided: TagResult | None = None
    digest: str = ""  # the verified digest: the job copies exactly this manifest, not what the tag names later


async def plan_artifact(
    entry: ArtifactEntry,
    registries: Registries,
    concurrency: int = 4,
    roots: TrustedRoots | None = None,
    state_dir: str | None = None,
) -> list[PlannedTag]:
    """The selected tags, highest first, each with its referrer snapshot when the entry asks for one,
    verified first when it has `verify` (`roots` is then the run's trusted root)."""
    repository = entry.source_repository
    client = registries.client(repository.registry)
    try:
        tags = await client.list_tags(repository.path)
    except FluxMirrorError as exc:
        raise PlanError(f"list tags {entry.source}: {exc}") from exc
    valid = []
    for tag in tags:
        if is_tag(tag):
            valid.append(tag)
        else:  # a registry's word, so quoted: it may hold control characters
            log.info(kv("tag ignored: not a valid tag", source=entry.source, tag=tag))
    selection = select_tags(valid, entry.spec.selector or Selector())
    for excluded in selection.excluded:
        log.info(kv("tag excluded by selector", source=entry.source, tag=excluded.tag, reason=excluded.reason))
    if entry.spec.verify is not None:
        assert roots is not None, "an entry with verify needs the run's trusted root"
        return await _verified(entry, client, selection.selected, roots, concurrency, frozenset(valid), state_dir)
    if not entry.spec.includeReferrers:
        return [PlannedTag(tag) for tag in selection.selected]
    limit = asyncio.Semaphore(concurrency)
    listed = frozenset(valid)
    snapshots = await asyncio.gather(
        *(_bounded(limit, _snapshot(entry, registries, tag, listed)) for tag in selection.selected),
        return_exceptions=True,
    )
    for snapshot in snapshots:  # the first failure in plan order names the entry's error
        if isinstance(snapshot, BaseException):
            raise snapshot
    return [snapshot for snapshot in snapshots if isinstance(snapshot, PlannedTag)]


async def _bounded(limit: asyncio.Semaphore, work: Awaitable[PlannedTag]) -> PlannedTag:
    async with limit:
        return await work


async def _snapshot(entry: ArtifactEntry, registries: Registries, tag: str, listed: frozenset[str]) -> PlannedTag:
    repository = entry.source_repository
    client = registries.client(repository.registry)
    where = f"{entry.source}:{tag}"
    try:
        digest = await client.resolve_digest(repository.path, tag)
        if digest is None:
            raise PlanError("MANIFEST_UNKNOWN: manifest unknown")
    except FluxMirrorError as exc:
        raise PlanError(f"resolve digest for referrers ({where}): {exc}") from exc
    try:
        referrers = await list_referrers(client, repository.path, digest, listed)
    except FluxMirrorError as exc:
        raise PlanError(f"snapshot referrers for {where}: {exc}") from exc
    return PlannedTag(tag, tuple(referrers))


async def _verified(
    entry: ArtifactEntry,
    client: RegistryClient,
    tags: list[str],
    roots: TrustedRoots,
    concurrency: int,
    listed: frozenset[str],
    state_dir: str | None,
) -> list[PlannedTag]:
    assert entry.spec.verify is not None
    try:
        verdicts = await verify_tags(
            client,
            entry.source,
            entry.source_repository.path,
            tags,
            entry.spec.verify,
            roots,
            concurrency,
            listed,
            state_dir=state_dir,
            with_referrers=entry.spec.includeReferrers,
        )
    except FluxMirrorError as exc:  # the trusted root: every verifying entry fails the same way
        raise PlanError(str(exc)) from exc
    return [_planned(entry, tag, verdict) for tag, verdict in zip(tags, verdicts, strict=False)]


def _planned(entry: ArtifactEntry, tag: str, verdict: TagVerdict | VerifyFailure) -> PlannedTag:
    if isinstance(verdict, VerifyFailure):
        error = f"verify {entry.source}:{tag}: {verdict}"
        log.info(kv("verification failed", entry=entry.source, tag=tag, err=error))
        return PlannedTag(tag, decided=TagResult(tag=tag, status=Status.FAILED, error=error))
    if verdict.too_new:
        row = TagResult(
            tag=tag,
            status=Status.SKIPPED,
            digest=verdict.digest,
            reason=Reason.SIGNATURE_TOO_NEW,
            verification=verdict.verification,
        )
        return PlannedTag(tag, verification=verdict.verification, decided=row)
    referrers = verdict.referrers if entry.spec.includeReferrers else None
    return PlannedTag(tag, referrers=referrers, verification=verdict.verification, digest=verdict.digest)
