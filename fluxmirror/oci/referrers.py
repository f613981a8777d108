"""Referrers: the manifests whose `subject` names a digest (signatures, SBOMs, attestations).

A registry either answers the OCI 1.1 referrers API or it does not; for those that do not, the
referrers tag schema keeps an OCI index under the tag `<alg>-<hex>` of the subject. Listing tries
the API first and falls back to that tag (docs/sync.md#referrer-listing). Pushing a manifest with a `subject`
to a registry without the API means keeping that tag's index current: merged, never shrunk, and
written with one manifest PUT, so a reader sees the old index or the new one, never a torn one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Final

from fluxmirror.gocompat.encoding_json import go_json
from fluxmirror.gocompat.strconv import go_quote
from fluxmirror.http.body import read_body
from fluxmirror.oci.auth import pull_scope
from fluxmirror.oci.client import MAX_MANIFEST_BYTES, RegistryClient
from fluxmirror.oci.errors import ManifestError, OCIError, RegistryError
from fluxmirror.oci.manifests import Descriptor, Manifest, parse_manifest
from fluxmirror.oci.mediatypes import OCI_INDEX
from fluxmirror.oci.reference import is_digest

__all__ = ["FallbackIndexes", "fallback_tag", "list_referrers"]

log = logging.getLogger(__name__)

# Statuses that mean "no referrers API here"; anything else is a real failure.
_NO_API: Final = frozenset({400, 404, 406})
_MAX_PAGES: Final = 1000


def fallback_tag(digest: str) -> str:
    """The referrers-tag-schema tag of a subject: `sha256:<hex>` → `sha256-<hex>`."""
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}-{encoded}"


async def _api_page(
    client: RegistryClient, repository: str, digest: str, path: str, *, first: bool
) -> tuple[bytes, str | None] | None:
    """One page of the referrers API (its index bytes and the next page's path), or None when the
    answer shows the registry does not offer the API. Once referrers were found (`first` False),
    such an answer is an error instead."""
    try:
        async with client.request(
            "GET", path, repository=repository, scopes=[pull_scope(repository)], headers={"Accept": OCI_INDEX}
        ) as response:
            content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
            raw = await read_body(response, MAX_MANIFEST_BYTES)
            link = response.links.get("next")
    except RegistryError as exc:
        if exc.status in _NO_API and first:
            return None
        raise
    if content_type != OCI_INDEX:
        if not first:
            raise OCIError(f"referrers of {repository}@{digest}: page served as {content_type!r}")
        return None
    return raw, (str(link["url"]) if link else None)


def _api_path(repository: str, digest: str) -> str:
    if not is_digest(digest):
        raise OCIError(f"invalid digest {go_quote(digest)}")
    return f"/v2/{repository}/referrers/{digest}"


async def _from_api(client: RegistryClient, repository: str, digest: str) -> list[Descriptor] | None:
    """Every page of the referrers API, or None when the registry does not offer it. A registry that
    said once that it has no referrers API is not asked again in this run (`client.referrers_api`)."""
    if client.referrers_api is False:
        return None
    found: list[Descriptor] = []
    path: str | None = _api_path(repository, digest)
    for _ in range(_MAX_PAGES):
        if path is None:
            return found
        page = await _api_page(client, repository, digest, path, first=not found)
        if page is None:
            client.referrers_api = False
            return None
        client.referrers_api = True
        raw, path = page
        found.extend(parse_manifest(raw, OCI_INDEX).children)
    raise OCIError(f"referrers of {repository}@{digest}: more than {_MAX_PAGES} pages")


async def list_referrers(
    client: RegistryClient, repository: str, digest: str, tags: Collection[str] | None = None
) -> list[Descriptor]:
    """The direct referrers of `repository@digest`, in the registry's listing order. `tags`, when the
    caller has the repository's tag list, spares the fallback tag's GET when it is not there."""
    from_api = await _from_api(client, repository, digest)
    if from_api is not None:
        return from_api
    tag = fallback_tag(digest)
    if tags is not None and tag not in tags:
        return []
    index = await client.get_manifest(repository, tag)
    if index is None:
        return []
    if index.media_type != OCI_INDEX:
        raise ManifestError(f"referrers tag {repository}:{tag}: not an OCI image index ({index.media_type})")
    return list(index.children)


def _entry(pushed: Manifest) -> dict[str, Any]:
    """The fallback-index descriptor of a pushed manifest, in Go's ocispec.Descriptor key order."""
    entry: dict[str, Any] = {"mediaType": pushed.media_type, "digest": pushed.digest, "size": pushed.size}
    if pushed.annotations:
        entry["annotations"] = pushed.annotations
    # The manifest's own artifactType is the OCI-correct value; older artifacts only have a config type.
    artifact_type = pushed.artifact_type or (pushed.config.media_type if pushed.config is not None else "")
    if artifact_type:
        entry["artifactType"] = artifact_type
    return entry


def _existing_index(raw: bytes, where: str) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ManifestError(f"{where}: parse index: {exc}") from None
    if (
        not isinstance(document, dict)
        or document.get("schemaVersion") != 2
        or document.get("mediaType") != OCI_INDEX
        or not isinstance(document.get("manifests", []), list)
    ):
        raise ManifestError(f"{where}: not an OCI image index with schemaVersion 2")
    return document


@dataclass
class FallbackIndexes:
    """Keeps destination referrers tags current; one writer per tag at a time within this run.

    Jobs of two tags sharing a digest push the same referrers concurrently; serialising the
    read-merge-write per fallback tag keeps one job from overwriting the other's entry.
    """

    _locks: dict[tuple[str, str, str], asyncio.Lock] = field(default_factory=dict)

    async def record(self, client: RegistryClient, repository: str, pushed: Manifest) -> None:
        """After `pushed` (which has a subject) landed in `repository`, make it discoverable."""
        assert pushed.subject is not None
        subject = pushed.subject.digest
        if await _api_page(client, repository, subject, _api_path(repository, subject), first=True) is not None:
            return  # the registry indexes referrers itself: its first page is answer enough
        tag = fallback_tag(subject)
        lock = self._locks.setdefault((client.registry, repository, tag), asyncio.Lock())
        async with lock:
            await self._merge(client, repository, tag, pushed)

    async def _merge(self, client: RegistryClient, repository: str, tag: str, pushed: Manifest) -> None:
        current = await client.get_manifest(repository, tag)
        if current is None:
            document: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        else:
            document = _existing_index(current.raw, f"referrers tag {repository}:{tag}")
            if any(isinstance(item, dict) and item.get("digest") == pushed.digest for item in document["manifests"]):
                log.info("fallback tag %s already had referrer", tag)
                return
        entries = [*document.get("manifests", []), _entry(pushed)]
        document["manifests"] = sorted(entries, key=lambda item: str(item.get("digest", "")))
        log.info("updating fallback tag %s with new referrer", tag)
        await client.put_manifest(repository, tag, parse_manifest(go_json(document), OCI_INDEX))
