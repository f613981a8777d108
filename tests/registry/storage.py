"""The test registry's in-memory state and the distribution rules that guard it.

Kept free of HTTP so the rules read as the spec states them: blobs are content-addressed
once but visible only in repositories they are linked into, a manifest is accepted only when
everything it references is already in its repository, and a manifest's ``subject`` is what
makes it a referrer.  Every method runs on the server's event loop thread, so no locking.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})

# The distribution spec's grammar; only sha256 can be verified here, so only it is accepted.
DIGEST = r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"
_DIGESTS = re.compile(r"(sha256|blake3):[a-f0-9]{64}|sha512:[a-f0-9]{128}")


class DistributionError(Exception):
    """A refusal the way the spec words it: HTTP status plus one ``errors[]`` entry."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"errors": [{"code": self.code, "message": self.message, "detail": None}]}


def sha256_digest(data: bytes | bytearray) -> str:
    return digest_by(data, "sha256")


def digest_by(data: bytes | bytearray, algorithm: str) -> str:
    """``<algorithm>:<hex>``: sha256 and sha512 by hashlib, blake3 by the ``blake3`` package. Unlike
    docker-registry 2.8, this registry stores content under all three, so sha512 and blake3
    content can be tested end to end."""
    if algorithm == "blake3":
        from blake3 import blake3

        return "blake3:" + blake3(bytes(data)).hexdigest()
    return f"{algorithm}:" + hashlib.new(algorithm, data).hexdigest()


def check_digest(digest: str) -> str:
    """``digest`` if it is one this registry can verify, else the spec's DIGEST_INVALID."""
    if not _DIGESTS.fullmatch(digest):
        raise DistributionError(400, "DIGEST_INVALID", f"unsupported or malformed digest {digest!r}")
    return digest


def is_digest(reference: str) -> bool:
    return ":" in reference


@dataclass(frozen=True)
class StoredManifest:
    """Exactly the bytes and Content-Type a client pushed, plus what the referrers API needs."""

    data: bytes
    media_type: str
    digest: str
    seq: int  # push order; the referrers listing is sorted and paged by it
    subject: str | None
    artifact_type: str | None
    annotations: dict[str, str] | None

    def descriptor(self) -> dict[str, Any]:
        """This manifest as an entry of a referrers index."""
        entry: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}
        if self.artifact_type:
            entry["artifactType"] = self.artifact_type
        if self.annotations:
            entry["annotations"] = self.annotations
        return entry


@dataclass
class Repository:
    blobs: set[str] = field(default_factory=set)
    manifests: dict[str, StoredManifest] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Upload:
    repo: str
    data: bytearray = field(default_factory=bytearray)


class Storage:
    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._repositories: dict[str, Repository] = {}
        self._uploads: dict[str, Upload] = {}
        self._seq = itertools.count(1)

    # --- repositories and blobs -----------------------------------------------------------

    def repository_names(self) -> list[str]:
        return sorted(self._repositories)

    def repository(self, name: str) -> Repository | None:
        return self._repositories.get(name)

    def _writable(self, name: str) -> Repository:
        return self._repositories.setdefault(name, Repository())

    def blob(self, name: str, digest: str) -> bytes:
        """The blob if it is linked into ``name``; existing only elsewhere does not count."""
        repo = self._repositories.get(name)
        if repo is None or digest not in repo.blobs:
            raise DistributionError(404, "BLOB_UNKNOWN", f"blob {digest} unknown to repository {name}")
        return self._blobs[digest]

    def put_blob(self, name: str, data: bytes | bytearray, expected: str) -> str:
        check_digest(expected)
        actual = digest_by(data, expected.partition(":")[0])
        if actual != expected:
            raise DistributionError(400, "DIGEST_INVALID", f"content has digest {actual}, not {expected}")
        self._blobs.setdefault(actual, bytes(data))
        self._writable(name).blobs.add(actual)
        return actual

    def mount(self, name: str, digest: str, source: str) -> bool:
        """Link a blob from ``source`` into ``name``; False when ``source`` does not have it."""
        repo = self._repositories.get(source)
        if repo is None or digest not in repo.blobs:
            return False
        self._writable(name).blobs.add(digest)
        return True

    def delete_blob(self, name: str, digest: str) -> None:
        self.blob(name, digest)
        self._writable(name).blobs.discard(digest)

    # --- upload sessions ------------------------------------------------------------------

    def start_upload(self, name: str) -> str:
        upload_id = secrets.token_hex(16)
        self._uploads[upload_id] = Upload(name)
        return upload_id

    def upload(self, name: str, upload_id: str) -> Upload:
        upload = self._uploads.get(upload_id)
        if upload is None or upload.repo != name:
            raise DistributionError(404, "BLOB_UPLOAD_UNKNOWN", f"upload {upload_id} unknown to repository {name}")
        return upload

    def finish_upload(self, name: str, upload_id: str, expected: str) -> str:
        """Commit the session as a blob; a wrong digest discards it, as distribution does."""
        upload = self.upload(name, upload_id)
        del self._uploads[upload_id]
        return self.put_blob(name, upload.data, expected)

    def cancel_upload(self, name: str, upload_id: str) -> None:
        self.upload(name, upload_id)
        del self._uploads[upload_id]

    def held_by_uploads(self) -> list[int]:
        """How many bytes each open session holds, for tests that wait for a client to get somewhere."""
        return [len(upload.data) for upload in list(self._uploads.values())]

    def purge_uploads(self) -> None:
        """Forget every open session, as a registry's upload purge (or a restart without them) does."""
        self._uploads.clear()

    # --- manifests ------------------------------------------------------------------------

    def manifest(self, name: str, reference: str) -> StoredManifest:
        repo = self._repositories.get(name)
        digest = reference if is_digest(reference) else (repo.tags.get(reference) if repo else None)
        stored = repo.manifests.get(digest) if repo is not None and digest is not None else None
        if stored is None:
            raise DistributionError(404, "MANIFEST_UNKNOWN", f"manifest {reference} unknown to repository {name}")
        return stored

    def put_manifest(self, name: str, reference: str, data: bytes, content_type: str | None) -> StoredManifest:
        algorithm = check_digest(reference).partition(":")[0] if is_digest(reference) else "sha256"
        digest = digest_by(data, algorithm)
        if is_digest(reference) and reference != digest:
            raise DistributionError(400, "DIGEST_INVALID", f"manifest has digest {digest}, not {reference}")
        document, media_type = _parse(data, content_type)
        repo = self._repositories.get(name) or Repository()
        if media_type in INDEX_TYPES:
            for child in _descriptors(document, "manifests"):
                if child["digest"] not in repo.manifests:
                    raise DistributionError(400, "MANIFEST_UNKNOWN", f"child manifest {child['digest']} not in {name}")
            artifact_type = document.get("artifactType")
        else:
            config = _descriptors(document, "config")[0]
            for blob in (config, *_descriptors(document, "layers")):
                # Foreign (non-distributable) layers live elsewhere, named by their urls.
                if blob["digest"] not in repo.blobs and not blob.get("urls"):
                    raise DistributionError(400, "MANIFEST_BLOB_UNKNOWN", f"blob {blob['digest']} not in {name}")
            artifact_type = document.get("artifactType") or config["mediaType"]
        subject = _descriptors(document, "subject")[0]["digest"] if "subject" in document else None
        existing = repo.manifests.get(digest)
        stored = StoredManifest(
            data=data,
            media_type=media_type,
            digest=digest,
            seq=existing.seq if existing else next(self._seq),
            subject=subject,
            artifact_type=artifact_type if isinstance(artifact_type, str) else None,
            annotations=document.get("annotations") or None,
        )
        repo = self._writable(name)
        repo.manifests[digest] = stored
        if not is_digest(reference):
            repo.tags[reference] = digest
        return stored

    def delete_manifest(self, name: str, reference: str) -> None:
        """By digest: the manifest and every tag on it; by tag (OCI 1.1): just the tag."""
        stored = self.manifest(name, reference)
        repo = self._writable(name)
        if not is_digest(reference):
            del repo.tags[reference]
            return
        del repo.manifests[stored.digest]
        for tag in [tag for tag, digest in repo.tags.items() if digest == stored.digest]:
            del repo.tags[tag]

    def tags(self, name: str) -> list[str]:
        repo = self._repositories.get(name)
        if repo is None:
            raise DistributionError(404, "NAME_UNKNOWN", f"repository {name} not known to registry")
        return sorted(repo.tags)

    def referrers(self, name: str, subject: str, artifact_type: str | None) -> list[StoredManifest]:
        """Manifests in ``name`` whose subject is ``subject``, in push order; unknown names have none."""
        repo = self._repositories.get(name)
        found = [
            stored
            for stored in (repo.manifests.values() if repo else ())
            if stored.subject == subject and (artifact_type is None or stored.artifact_type == artifact_type)
        ]
        return sorted(found, key=lambda stored: stored.seq)


def _parse(data: bytes, content_type: str | None) -> tuple[dict[str, Any], str]:
    """The document and its media type, refusing what a real registry would not store."""
    try:
        document = json.loads(data)
    except ValueError as error:
        raise DistributionError(400, "MANIFEST_INVALID", f"not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("schemaVersion") != 2:
        raise DistributionError(400, "MANIFEST_INVALID", "expected a JSON object with schemaVersion 2")
    declared = document.get("mediaType")
    media_type = content_type or declared
    if declared is not None and declared != media_type:
        raise DistributionError(400, "MANIFEST_INVALID", f"mediaType {declared!r} but Content-Type {media_type!r}")
    if media_type not in IMAGE_MANIFEST_TYPES | INDEX_TYPES:
        raise DistributionError(400, "MANIFEST_INVALID", f"unsupported manifest media type {media_type!r}")
    for key in ("artifactType", "annotations"):
        if key in document and not isinstance(document[key], str if key == "artifactType" else dict):
            raise DistributionError(400, "MANIFEST_INVALID", f"malformed {key}")
    return document, media_type


def _descriptors(document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The descriptor(s) under ``key`` (a list for manifests/layers, one for config/subject), checked."""
    value: Any = document.get(key, [] if key == "layers" else None)
    many = key in ("manifests", "layers")
    if many and not isinstance(value, list):
        raise DistributionError(400, "MANIFEST_INVALID", f"{key!r} must be a list")
    entries: list[Any] = value if many else [value]
    for entry in entries:
        valid = (
            isinstance(entry, dict)
            and isinstance(entry.get("mediaType"), str)
            and isinstance(entry.get("digest"), str)
            and re.fullmatch(DIGEST, entry["digest"]) is not None
            and isinstance(entry.get("size"), int)
            and entry["size"] >= 0
        )
        if not valid:
            raise DistributionError(400, "MANIFEST_INVALID", f"malformed descriptor in {key!r}")
    return entries
