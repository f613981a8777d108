"""`import` (docs/airgap.md#import): push what an OCI image layout or layout tar holds to the
registries its names say, through the same copy code as `sync`.

Every `index.json` entry named `registry/repository:tag` (`org.opencontainers.image.ref.name`) is
one row of the report, grouped by repository in index order; untagged entries whose manifest has a
`subject` are that image's referrers, written by digest after it (through the referrers code, so
the tag-schema index is kept where the registry has no referrers API). The archive is read in
place: blobs stream from their files or from their offsets in the tar, re-hashed on the way, and a
manifest is pushed only once every blob it names is at the destination. With a config, only the
repositories its entries name are imported, and its `hosts` give the credentials, TLS and chunk
sizes; without one, the ambient Docker config applies. With `--shard`, only the repositories of
that shard are imported (docs/sync.md#sharding). Rows come in the archive's canonical order
(by name), whatever order the export's jobs finished in.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

import msgspec

from fluxmirror.api.archive import Archive, ArchiveBlobs
from fluxmirror.api.config import Config
from fluxmirror.api.report import EntryStatus, ReferrerResult, Result, Status, TagResult
from fluxmirror.errors import FluxMirrorError
from fluxmirror.http.session import HttpSession
from fluxmirror.layout import REF_NAME, LayoutDirectory, LayoutError, Member, TarLayout, TarStream
from fluxmirror.layout.names import INDEX_JSON
from fluxmirror.oci.blobs import BlobSource
from fluxmirror.oci.client import USER_AGENT
from fluxmirror.oci.copy import CopySession, copy_from
from fluxmirror.oci.manifests import Descriptor, Manifest, parse_manifest
from fluxmirror.oci.reference import InvalidReferenceError, Repository, parse_reference
from fluxmirror.sync.engine import (
    Cancellation,
    CredentialsFactory,
    copy_session,
    host_tls,
    run_connections,
    run_registries,
)
from fluxmirror.sync.events import JobOutcome, Progress
from fluxmirror.sync.import_stream import (
    MAX_MANIFEST,
    Counted,
    PipedArchive,
    content_problem,
    hash_blobs,
    needed_blobs,
    read_front,
    stream_blobs,
)
from fluxmirror.sync.job import WRITES, JobFailure, JobSettings, decide, row, run_with_retries
from fluxmirror.sync.options import SyncOptions
from fluxmirror.sync.pack import VOLUMES_ANNOTATION, canonical_key
from fluxmirror.sync.receipts import BASE_ANNOTATION, write_receipt
from fluxmirror.sync.shard import pick

__all__ = ["import_archive"]


class _Archive(Protocol):
    def index(self) -> list[Descriptor]: ...

    def read_small(self, digest: str, limit: int) -> bytes: ...

    def blob_source(self) -> BlobSource: ...


@dataclass(frozen=True, slots=True)
class _CountingSource:
    """The archive's blobs, counted; a blob another volume holds is named with that volume."""

    inner: BlobSource
    counted: Counted
    volumes: dict[str, str]
    where: str
    bases: str

    async def read(self, digest: str, offset: int) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.inner.read(digest, offset):
                self.counted.bytes += len(chunk)
                yield chunk
            if offset == 0:
                self.counted.blobs += 1
        except LayoutError:
            volume = self.volumes.get(digest)
            if volume is None or volume == Path(self.where).name:
                if not self.bases:
                    raise
                raise LayoutError(
                    f"blob {digest} is neither in {self.where} nor at the destination; "
                    f"import the archive with index {self.bases} (its base) first"
                ) from None
            raise LayoutError(
                f"blob {digest} is in volume {volume}, not in {self.where}, nor at the destination: import {volume} too"
            ) from None


@dataclass(frozen=True, slots=True)
class _ArchiveOrigin:
    """The archive as the origin of a copy: manifests by digest, blobs from their files or offsets."""

    archive: _Archive
    where: str
    counted: Counted
    volumes: dict[str, str] = field(default_factory=dict)
    bases: str = ""

    @property
    def repository(self) -> Repository | None:
        return None

    async def manifest(self, digest: str) -> Manifest | None:
        try:
            raw = await asyncio.to_thread(self.archive.read_small, digest, MAX_MANIFEST)
        except LayoutError:
            return None
        return parse_manifest(raw, digest=digest)

    def blobs(self) -> BlobSource:
        return _CountingSource(self.archive.blob_source(), self.counted, self.volumes, self.where, self.bases)

    def __str__(self) -> str:
        return self.where


@dataclass(slots=True)
class _Tag:
    tag: str
    descriptor: Descriptor
    referrers: list[Descriptor] = field(default_factory=list)


def _open(source: str) -> tuple[_Archive, str, bytes]:
    """The archive at `source` (a layout directory or a tar), its format, and its index.json bytes."""
    path = Path(source)
    if path.is_dir():
        if not (path / "oci-layout").is_file():
            raise LayoutError(f"{source}: not an OCI image layout (no oci-layout file)")
        directory = LayoutDirectory(path, create=False)
        return directory, "layout", (path / INDEX_JSON).read_bytes()
    archive = TarLayout(path)
    return archive, "tar", archive.index_bytes()


def _annotations(index: bytes) -> dict[str, str]:
    try:
        annotations = msgspec.json.decode(index).get("annotations")
    except (msgspec.DecodeError, AttributeError):
        return {}
    return {str(key): str(value) for key, value in annotations.items()} if isinstance(annotations, dict) else {}


def _origin(archive: _Archive, where: str, counted: Counted, index: bytes) -> _ArchiveOrigin:
    """The archive as a copy's origin, knowing its volume map and its bases (from `index.json`)."""
    annotations = _annotations(index)
    try:
        mapped = msgspec.json.decode(annotations.get(VOLUMES_ANNOTATION, "{}"))
    except msgspec.DecodeError:
        mapped = {}
    volumes = {str(digest): str(name) for digest, name in mapped.items()} if isinstance(mapped, dict) else {}
    return _ArchiveOrigin(archive, where, counted, volumes, annotations.get(BASE_ANNOTATION, ""))


def _allowed(config: Config | None) -> set[str] | None:
    """The destination repositories a config names (None: no config, everything is imported)."""
    if config is None or not (config.artifacts or config.charts):
        return None
    names = {artifact.destination for artifact in config.artifacts}
    names |= {f"{chart.destination.removeprefix('oci://').rstrip('/')}/{chart.name}" for chart in config.charts}
    return names


def _plan(
    archive: _Archive, where: str, allowed: set[str] | None, map_tag_only: str | None
) -> dict[Repository, list[_Tag]]:
    """The archive's tagged images by repository (canonical order), each with its referrers. A
    tag-only name (what skopeo or umoci write) is placed in `map_tag_only`, or refused."""
    repositories: dict[Repository, list[_Tag]] = {}
    by_digest: dict[str, list[_Tag]] = {}
    untagged: list[Descriptor] = []
    for descriptor in sorted(archive.index(), key=canonical_key):
        name = descriptor.annotations.get(REF_NAME)
        if name is None:
            untagged.append(descriptor)
            continue
        if map_tag_only is not None and "/" not in name and ":" not in name:
            name = f"{map_tag_only}:{name}"
        try:
            reference = parse_reference(name)
        except InvalidReferenceError as exc:
            raise LayoutError(f"{where}: index.json names {name!r}, not a full reference: {exc}") from None
        if "/" not in name or not reference.tag or name.startswith(reference.tag):
            raise LayoutError(
                f"{where}: index.json names {name!r}: import needs full references (registry/repository:tag); "
                "--map-tag-only-to REPOSITORY places tag-only names"
            )
        if allowed is not None and str(reference.repository) not in allowed and name.rsplit(":", 1)[0] not in allowed:
            continue
        entry = _Tag(reference.tag, descriptor)
        repositories.setdefault(reference.repository, []).append(entry)
        by_digest.setdefault(descriptor.digest, []).append(entry)
    for descriptor in untagged:
        manifest = parse_manifest(archive.read_small(descriptor.digest, MAX_MANIFEST), digest=descriptor.digest)
        if manifest.subject is not None:
            for entry in by_digest.get(manifest.subject.digest, []):
                entry.referrers.append(descriptor)
    return repositories


async def import_archive(
    config: Config | None,
    options: SyncOptions,
    source: str,
    credentials: CredentialsFactory,
    progress: Progress,
    cancellation: Cancellation,
    *,
    pipe: BinaryIO | None = None,
    verify_only: bool = False,
    map_tag_only: str | None = None,
    receipt_out: str | None = None,
) -> tuple[list[Result], Archive]:
    """Import the archive at `source` (read once from `pipe` when given: docs/airgap.md#pipes); one
    result per destination repository, and the archive block. `verify_only` hashes every blob the
    named images need and pushes nothing (no registry is contacted): a verified tag is `skipped`, a
    broken one `failed`, and `archive.verified` sums up."""
    piped: tuple[PipedArchive, TarStream, AsyncIterator[Member]] | None = None
    archive: _Archive
    if pipe is not None:
        piped = await read_front(pipe, source)
        archive, archive_format, index = piped[0], "tar", piped[0].index_raw
    else:
        archive, archive_format, index = await asyncio.to_thread(_open, source)
    planned = await asyncio.to_thread(_plan, archive, source, _allowed(config), map_tag_only)
    plan = dict(pick(options.shard, planned.items(), lambda item: item[0]))  # by destination repository
    counted = Counted()
    origin = _origin(archive, source, counted, index)
    if verify_only:
        checked: dict[str, str | None] = {}
        if piped is not None:
            front, stream, members = piped
            checked = await hash_blobs(front, stream, members, needed_blobs(front, _roots(plan)), counted)
        return await _verify_only(origin, archive_format, index, plan, progress, checked)
    settings = JobSettings.of(options)
    results: list[Result] = []
    tls = await host_tls(config, options) if config is not None else None
    progress.start(len(plan))
    async with HttpSession(
        user_agent=USER_AGENT, max_connections=run_connections(options), observer=options.observer
    ) as http:
        registries = run_registries(http, await credentials(http), options, tls)
        session = copy_session(config, registries, options)
        limit = asyncio.Semaphore(options.concurrency)
        if piped is not None and not options.dry_run:
            front, stream, members = piped
            wanted = await _roots_to_write(session, plan, settings, limit)
            try:
                with cancellation.stoppable():
                    await stream_blobs(session, front, stream, members, needed_blobs(front, wanted), counted)
            except asyncio.CancelledError:  # a signal: the tags below end as failed rows, reported
                if not cancellation.requested:
                    raise
                task = asyncio.current_task()
                assert task is not None
                task.uncancel()
        for repository, tags in plan.items():

            async def one(entry: _Tag, repository: Repository = repository) -> TagResult:
                async with limit:
                    with cancellation.stoppable():
                        row_ = await run_with_retries(
                            lambda: _attempt(session, origin, repository, entry, settings),
                            row_id=entry.tag,
                            job_id=f"{source}:{repository}:{entry.tag}",
                            settings=settings,
                        )
                progress.job_finished(
                    JobOutcome(
                        entry=str(repository),
                        ident=entry.tag,
                        status=row_.status,
                        destination=f"{repository}:{entry.tag}",
                        error=row_.error,
                    )
                )
                return row_

            rows = list(await asyncio.gather(*(one(entry) for entry in tags)))
            results.append(Result(source=source, destination=str(repository), status=EntryStatus.COMPLETED, tags=rows))
            progress.entry_finished()
    blobs = ArchiveBlobs(pushed=counted.blobs, bytesPushed=counted.bytes)
    if receipt_out is not None and not options.dry_run:
        await asyncio.to_thread(write_receipt, Path(receipt_out), archive, _landed(plan, results))
    digest = "sha256:" + hashlib.sha256(index).hexdigest()
    return results, Archive(path=source, format=archive_format, indexDigest=digest, blobs=blobs)


def _roots(plan: dict[Repository, list[_Tag]]) -> list[tuple[Repository, str]]:
    """Every manifest the plan imports (tags and their referrers), with its repository."""
    return [
        (repository, descriptor.digest)
        for repository, tags in plan.items()
        for entry in tags
        for descriptor in (entry.descriptor, *entry.referrers)
    ]


async def _roots_to_write(
    session: CopySession, plan: dict[Repository, list[_Tag]], settings: JobSettings, limit: asyncio.Semaphore
) -> list[tuple[Repository, str]]:
    """The manifests of a piped import whose blobs must be streamed: tags the comparison says to
    write (a failed lookup included: its job reports it), and every referrer (the blob check skips
    what is there)."""

    async def writes(repository: Repository, entry: _Tag) -> bool:
        async with limit:
            try:
                existing = await session.registries.client(repository.registry).resolve_digest(
                    repository.path, entry.tag
                )
            except FluxMirrorError:
                return True
        return decide(entry.descriptor.digest, existing, settings) in WRITES

    entries = [(repository, entry) for repository, tags in plan.items() for entry in tags]
    decisions = await asyncio.gather(*(writes(repository, entry) for repository, entry in entries))
    roots: list[tuple[Repository, str]] = []
    for (repository, entry), write in zip(entries, decisions, strict=True):
        if write:
            roots.append((repository, entry.descriptor.digest))
        roots.extend((repository, referrer.digest) for referrer in entry.referrers)
    return roots


async def _attempt(
    session: CopySession, origin: _ArchiveOrigin, repository: Repository, entry: _Tag, settings: JobSettings
) -> TagResult:
    client = session.registries.client(repository.registry)
    digest = entry.descriptor.digest
    where = f"{repository}:{entry.tag}"
    try:
        existing = await client.resolve_digest(repository.path, entry.tag)
    except FluxMirrorError as exc:
        raise JobFailure(exc.prefixed(f"digest {where}"), digest) from exc
    status = decide(digest, existing, settings)
    if status in WRITES:
        try:
            manifest = await origin.manifest(digest)
            if manifest is None:
                raise LayoutError(f"{origin}: manifest {digest} of {where} is not in the archive")
            await copy_from(session, origin, repository, manifest, entry.tag)
        except FluxMirrorError as exc:
            raise JobFailure(exc.prefixed(f"import {origin} -> {where}"), digest) from exc
    referrers = await _referrers(session, origin, repository, entry.referrers, settings)
    tag_row = row(entry.tag, status, digest)
    return TagResult(tag=tag_row.tag, status=tag_row.status, digest=digest, reason=tag_row.reason, referrers=referrers)


async def _referrers(
    session: CopySession,
    origin: _ArchiveOrigin,
    repository: Repository,
    referrers: Sequence[Descriptor],
    settings: JobSettings,
) -> list[ReferrerResult]:
    client = session.registries.client(repository.registry)
    rows: list[ReferrerResult] = []
    for descriptor in referrers:
        digest = descriptor.digest
        try:
            manifest = await origin.manifest(digest)
            existing = await client.resolve_digest(repository.path, digest)
            status = decide(digest, existing, settings)
            if status in WRITES and manifest is not None:
                await copy_from(session, origin, repository, manifest, digest)
        except FluxMirrorError as exc:
            rows.append(ReferrerResult(digest=digest, artifactType=descriptor.artifact_type, status=Status.FAILED))
            raise JobFailure(exc.prefixed(f"import referrer {digest} -> {repository}"), "", rows) from exc
        artifact_type = manifest.artifact_type if manifest is not None else descriptor.artifact_type
        rows.append(ReferrerResult(digest=digest, artifactType=artifact_type, status=status))
    return rows


async def _verify_only(
    origin: _ArchiveOrigin,
    archive_format: str,
    index: bytes,
    plan: dict[Repository, list[_Tag]],
    progress: Progress,
    checked: dict[str, str | None],
) -> tuple[list[Result], Archive]:
    """Hash what the plan needs; `checked` holds the blobs already hashed (digest -> problem or
    None), and gets the rest, so a shared blob is hashed once."""
    source = origin.where
    await _hash_all(origin, plan, checked)
    results: list[Result] = []
    progress.start(len(plan))
    for repository, tags in plan.items():
        rows = []
        for entry in tags:
            error = await _verify_tree(origin, entry.descriptor.digest, checked)
            for referrer in entry.referrers:
                error = error or await _verify_tree(origin, referrer.digest, checked)
            where = f"{repository}:{entry.tag}"
            row_ = (
                TagResult(tag=entry.tag, status=Status.FAILED, error=f"verify {source} -> {where}: {error}")
                if error
                else TagResult(tag=entry.tag, status=Status.SKIPPED, digest=entry.descriptor.digest)
            )
            progress.job_finished(
                JobOutcome(
                    entry=str(repository), ident=entry.tag, status=row_.status, destination=where, error=row_.error
                )
            )
            rows.append(row_)
        results.append(Result(source=source, destination=str(repository), status=EntryStatus.COMPLETED, tags=rows))
        progress.entry_finished()
    verified = all(error is None for error in checked.values())
    digest = "sha256:" + hashlib.sha256(index).hexdigest()
    return results, Archive(path=source, format=archive_format, indexDigest=digest, verified=verified)


async def _hash_all(origin: _ArchiveOrigin, plan: dict[Repository, list[_Tag]], checked: dict[str, str | None]) -> None:
    """Hash every blob the plan needs that is not in `checked` yet, as many at once as there are
    cores (hashlib releases the GIL), into `checked`."""
    needed = needed_blobs(origin.archive, _roots(plan), skip_broken=True)
    limit = asyncio.Semaphore(os.cpu_count() or 1)

    async def one(blob: Descriptor) -> None:
        async with limit:
            checked[blob.digest] = await _verify_blob(origin, blob)

    await asyncio.gather(*(one(want.blob) for digest, want in needed.items() if digest not in checked))


async def _verify_tree(origin: _ArchiveOrigin, digest: str, checked: dict[str, str | None]) -> str | None:
    """The first problem in the tree of the manifest `digest` (None: every byte hashes as named)."""
    if digest in checked:
        return checked[digest]
    try:
        manifest = await origin.manifest(digest)
        if manifest is None:
            raise LayoutError(f"manifest {digest} is not in the archive")
        for child in manifest.children:
            problem = await _verify_tree(origin, child.digest, checked)
            if problem:
                raise LayoutError(problem)
        for blob in manifest.blobs:
            if blob.digest not in checked:
                checked[blob.digest] = await _verify_blob(origin, blob)
            if checked[blob.digest]:
                raise LayoutError(str(checked[blob.digest]))
    except FluxMirrorError as exc:
        checked[digest] = str(exc)
        return checked[digest]
    checked[digest] = None
    return None


async def _verify_blob(origin: _ArchiveOrigin, blob: Descriptor) -> str | None:
    """A problem with `blob`, or None; a blob another volume holds is that volume's to verify."""
    elsewhere = origin.volumes.get(blob.digest)
    if elsewhere is not None and elsewhere != Path(origin.where).name:
        return None
    try:
        return await content_problem(blob, origin.archive.blob_source().read(blob.digest, 0), origin.counted)
    except FluxMirrorError as exc:
        return str(exc)


def _landed(plan: dict[Repository, list[_Tag]], results: Sequence[Result]) -> list[Descriptor]:
    """What the far side now has, for a receipt: each tag that did not fail, and its referrers that
    did not fail, as the archive names them."""
    landed: list[Descriptor] = []
    for (_, tags), result in zip(plan.items(), results, strict=True):
        for entry, row_ in zip(tags, result.tags, strict=True):
            if row_.status == Status.FAILED:
                continue
            landed.append(entry.descriptor)
            good = {referrer.digest for referrer in row_.referrers if referrer.status != Status.FAILED}
            landed.extend(referrer for referrer in entry.referrers if referrer.digest in good)
    return landed
