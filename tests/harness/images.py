"""Deterministic test content and a tiny synchronous distribution-API client.

The client is deliberately independent of the product (plain ``http.client``, one
connection per request, no concurrency) so it can serve as a second opinion on what the
product wrote to a registry.

Image layers are real gzip-compressed tarballs: skopeo sniffs layer bytes and would
recompress anything that is not, which would change digests. Artifact blobs are raw seeded
bytes of exactly the requested size, for tests that care about size boundaries.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import random
import re
import ssl
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

from harness import Credentials
from harness.registry import Registry, client_ssl_context

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI = OCI_MANIFEST
DOCKER = DOCKER_MANIFEST
TEST_ARTIFACT_TYPE = "application/vnd.fluxmirror.test.artifact.v1"
TEST_BLOB_TYPE = "application/vnd.fluxmirror.test.blob.v1"
ACCEPT_ALL = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST])

_IMAGE_TYPES = {OCI: (OCI_CONFIG, OCI_LAYER_GZIP), DOCKER: (DOCKER_CONFIG, DOCKER_LAYER_GZIP)}


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", sha256_digest(self.data))

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class _Document:
    """Anything pushed as a manifest: its bytes travel as a blob-like ``document``."""

    document: Blob

    @property
    def raw(self) -> bytes:
        return self.document.data

    @property
    def digest(self) -> str:
        return self.document.digest

    @property
    def media_type(self) -> str:
        return self.document.media_type


@dataclass(frozen=True)
class Manifest(_Document):
    """An image or artifact manifest (``document``) with the blobs it references."""

    config: Blob
    layers: tuple[Blob, ...]
    platform: str | None = None  # "os/arch[/variant]" an index should advertise

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (self.config, *self.layers)


@dataclass(frozen=True)
class Index(_Document):
    """An OCI index or Docker manifest list with its child manifests."""

    children: tuple[Manifest, ...]


Pushable = Manifest | Index


def make_image(
    layer_sizes: Sequence[int],
    seed: int,
    media_type: str = OCI,
    *,
    platform: str = "linux/amd64",
    annotations: Mapping[str, str] | None = None,
) -> Manifest:
    """A runnable-looking image: each layer is a tar.gz holding one file of ``size`` seeded bytes."""
    config_type, layer_type = _IMAGE_TYPES[media_type]
    rng = random.Random(seed)
    tars = [_tar_with_file(f"layer-{i}.bin", rng.randbytes(size)) for i, size in enumerate(layer_sizes)]
    layers = tuple(Blob(layer_type, gzip.compress(tar, compresslevel=1, mtime=0)) for tar in tars)
    os_name, arch, *variant = platform.split("/")
    config_doc: dict[str, object] = {
        "created": "1970-01-01T00:00:00Z",
        "architecture": arch,
        "os": os_name,
        "config": {"Labels": {"org.fluxmirror.test.seed": str(seed)}},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar) for tar in tars]},
    }
    if variant:
        config_doc["variant"] = variant[0]
    config = Blob(config_type, _json(config_doc))
    document: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    if annotations:
        document["annotations"] = dict(annotations)
    return Manifest(Blob(media_type, _json(document)), config, layers, platform)


def make_index(
    images: Sequence[Manifest],
    platforms: Sequence[str | None] | None = None,
    *,
    annotations: Mapping[str, str] | None = None,
) -> Index:
    """Docker manifest list when every child is Docker schema 2, OCI index otherwise.

    ``platforms`` overrides what each entry advertises (None = no platform, as for
    artifacts); by default each image's own platform is used.
    """
    media_type = DOCKER_MANIFEST_LIST if all(i.media_type == DOCKER for i in images) else OCI_INDEX
    entries = []
    for image, platform in zip(images, platforms or [i.platform for i in images], strict=True):
        entry = image.document.descriptor()
        if platform:
            os_name, arch, *variant = platform.split("/")
            entry["platform"] = {"architecture": arch, "os": os_name} | ({"variant": variant[0]} if variant else {})
        entries.append(entry)
    document: dict[str, object] = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
    if annotations:
        document["annotations"] = dict(annotations)
    return Index(Blob(media_type, _json(document)), tuple(images))


def make_artifact(
    *,
    seed: int,
    artifact_type: str | None = TEST_ARTIFACT_TYPE,
    config_media_type: str = OCI_EMPTY,
    config_data: bytes = b"{}",
    layer_sizes: Sequence[int] = (128,),
    layer_media_type: str = TEST_BLOB_TYPE,
    subject: Pushable | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Manifest:
    """An OCI artifact manifest; ``artifact_type=None`` gives the Flux/Helm style (config type only)."""
    rng = random.Random(seed)
    config = Blob(config_media_type, config_data)
    layers = tuple(Blob(layer_media_type, rng.randbytes(size)) for size in layer_sizes)
    document: dict[str, object] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    if artifact_type is not None:
        document["artifactType"] = artifact_type
    document["config"] = config.descriptor()
    document["layers"] = [layer.descriptor() for layer in layers]
    if subject is not None:
        document["subject"] = subject.document.descriptor()
    if annotations:
        document["annotations"] = dict(annotations)
    return Manifest(Blob(OCI_MANIFEST, _json(document)), config, layers)


def write_oci_layout(directory: Path, obj: Pushable, tag: str) -> Path:
    """An OCI image layout, so skopeo can push content without our client's help."""
    blobs_dir = directory / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    for blob in _all_blobs(obj):
        (blobs_dir / blob.digest.removeprefix("sha256:")).write_bytes(blob.data)
    entry = obj.document.descriptor() | {"annotations": {"org.opencontainers.image.ref.name": tag}}
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (directory / "index.json").write_bytes(_json({"schemaVersion": 2, "manifests": [entry]}))
    return directory


def _all_blobs(obj: Pushable) -> Iterable[Blob]:
    if isinstance(obj, Index):
        for child in obj.children:
            yield from _all_blobs(child)
    else:
        yield from obj.blobs
    yield obj.document


def _tar_with_file(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


# --- client -------------------------------------------------------------------------------


class RegistryError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


@dataclass(frozen=True)
class Fetched:
    data: bytes
    media_type: str
    digest: str


@dataclass(frozen=True)
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class Client:
    """One registry, one identity; answers Basic and Bearer challenges, retrying once."""

    def __init__(self, registry: Registry, auth: Credentials | None = None) -> None:
        self._registry = registry
        self._auth = auth
        self._context = client_ssl_context(registry)
        self._authorization: str | None = None

    def request(
        self,
        method: str,
        target: str,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        ok: Sequence[int] = (200,),
    ) -> Response:
        url = urljoin(self._registry.url, target)
        response = self._send(method, url, body, headers)
        challenge = response.headers.get("WWW-Authenticate")
        if response.status == 401 and challenge:
            self._authorization = self._answer(challenge)
            if self._authorization is not None:
                response = self._send(method, url, body, headers)
        if response.status not in ok:
            raise RegistryError(response.status, f"{method} {url}: {response.body[:500]!r}")
        return response

    def _send(self, method: str, url: str, body: bytes, headers: Mapping[str, str] | None) -> Response:
        all_headers = dict(headers or {})
        if self._authorization is not None:
            all_headers["Authorization"] = self._authorization
        return raw_request(method, url, body=body, headers=all_headers, context=self._context)

    def _answer(self, challenge: str) -> str | None:
        scheme, _, rest = challenge.partition(" ")
        params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if scheme.lower() == "basic":
            return self._auth.basic_header() if self._auth else None
        query = {key: params[key] for key in ("service", "scope") if key in params}
        headers = {"Authorization": self._auth.basic_header()} if self._auth else {}
        response = raw_request("GET", params["realm"] + "?" + urlencode(query), headers=headers)
        if response.status != 200:
            raise RegistryError(response.status, f"token endpoint refused: {response.body[:500]!r}")
        payload = json.loads(response.body)
        return "Bearer " + str(payload.get("token") or payload["access_token"])


def raw_request(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> Response:
    """One unauthenticated-unless-you-say-so HTTP exchange, for probing registries and the token server."""
    parts = urlsplit(url)
    connection: http.client.HTTPConnection = (
        http.client.HTTPSConnection(parts.netloc, timeout=30, context=context)
        if parts.scheme == "https"
        else http.client.HTTPConnection(parts.netloc, timeout=30)
    )
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, target, body=body or None, headers=dict(headers or {}))
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


def push(registry: Registry, repo: str, ref: str | None, obj: Pushable, *, auth: Credentials | None = None) -> str:
    """Upload blobs, then manifests (children before index); tag with ``ref`` or push by digest."""
    client = Client(registry, auth)
    _push(client, repo, ref, obj)
    return obj.digest


def _push(client: Client, repo: str, ref: str | None, obj: Pushable) -> None:
    if isinstance(obj, Index):
        for child in obj.children:
            _push(client, repo, None, child)
    else:
        for blob in obj.blobs:
            _upload_blob(client, repo, blob)
    response = client.request(
        "PUT",
        f"/v2/{repo}/manifests/{ref or obj.digest}",
        body=obj.raw,
        headers={"Content-Type": obj.media_type},
        ok=(201,),
    )
    _check_digest(response, obj.digest)


def _upload_blob(client: Client, repo: str, blob: Blob) -> None:
    if client.request("HEAD", f"/v2/{repo}/blobs/{blob.digest}", ok=(200, 404)).status == 200:
        return
    started = client.request("POST", f"/v2/{repo}/blobs/uploads/", ok=(202,))
    location = started.headers["Location"]
    separator = "&" if "?" in location else "?"
    response = client.request(
        "PUT",
        f"{location}{separator}{urlencode({'digest': blob.digest})}",
        body=blob.data,
        headers={"Content-Type": "application/octet-stream"},
        ok=(201,),
    )
    _check_digest(response, blob.digest)


def _check_digest(response: Response, expected: str) -> None:
    actual = response.headers.get("Docker-Content-Digest")
    if actual != expected:
        raise RegistryError(response.status, f"Docker-Content-Digest {actual!r}, expected {expected!r}")


def get_manifest(
    registry: Registry, repo: str, ref: str, *, auth: Credentials | None = None, accept: str = ACCEPT_ALL
) -> Fetched:
    response = Client(registry, auth).request("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": accept})
    digest = sha256_digest(response.body)
    _check_digest(response, digest)
    return Fetched(response.body, response.headers.get("Content-Type", ""), digest)


def get_blob(registry: Registry, repo: str, digest: str, *, auth: Credentials | None = None) -> bytes:
    data = Client(registry, auth).request("GET", f"/v2/{repo}/blobs/{digest}").body
    if sha256_digest(data) != digest:
        raise RegistryError(200, f"blob {digest} came back with different content")
    return data


def list_tags(registry: Registry, repo: str, *, auth: Credentials | None = None) -> list[str]:
    return _paginate(Client(registry, auth), f"/v2/{repo}/tags/list", "tags")


def tags_of(registry: Registry, repo: str) -> list[str]:
    """The repository's tags; none when the registry does not know the repository (yet)."""
    try:
        return list_tags(registry, repo)
    except RegistryError as exc:
        if exc.status == 404:
            return []
        raise


def uploads_in_progress(registry: Registry, repo: str) -> list[Path]:
    """Upload sessions distribution holds for ``repo`` (its filesystem layout), i.e. blobs mid-transfer."""
    return list((registry.root_dir / "docker/registry/v2/repositories" / repo / "_uploads").glob("*"))


def catalog(registry: Registry, *, auth: Credentials | None = None) -> list[str]:
    return _paginate(Client(registry, auth), "/v2/_catalog", "repositories")


def delete_manifest(registry: Registry, repo: str, digest: str, *, auth: Credentials | None = None) -> None:
    Client(registry, auth).request("DELETE", f"/v2/{repo}/manifests/{digest}", ok=(202,))


def _paginate(client: Client, target: str, key: str) -> list[str]:
    """Follow RFC 5988 `Link: <...>; rel="next"` headers, as distribution paginates."""
    items: list[str] = []
    next_target: str | None = target
    while next_target:
        response = client.request("GET", next_target)
        items.extend(json.loads(response.body).get(key) or [])
        link = re.match(r'<([^>]+)>;\s*rel="next"', response.headers.get("Link", ""))
        next_target = link.group(1) if link else None
    return items
