"""Local registries and generated content for `make bench` and `make demo`.

This module is the benchmarks' only door into the test harness: registries are started, waited
for and always reaped by the same code the integration tests trust, and the demo's sample images
come from the same builders. What the harness lacks is content too large to hold in memory, so
benchmark images are generated and uploaded here as streams.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlencode, urlsplit

# The registry machinery lives in tests/harness (the `harness` package on pytest's path); reuse it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import skopeo as _skopeo
from harness.chartrepo import ChartRepository
from harness.charts import build_chart, large_index
from harness.closing import Closing
from harness.images import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    get_manifest,
    list_tags,
    make_artifact,
    make_image,
    make_index,
    push,
)
from harness.pki import create_pki
from harness.referrers import publish_referrers, referrer
from harness.registry import Registry, RegistryFactory

__all__ = [
    "REPO_ROOT",
    "ChartRepository",
    "LocalRegistries",
    "MiB",
    "PushedImage",
    "Registry",
    "build_chart",
    "get_manifest",
    "isolated_env",
    "large_index",
    "list_tags",
    "make_artifact",
    "make_image",
    "make_index",
    "populate",
    "publish_referrers",
    "push",
    "referrer",
    "skopeo_invocation",
    "skopeo_version",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20
_CHUNK = 4 * MiB  # generation and upload granularity: bounds memory whatever the layer size
_BLOCK = tarfile.BLOCKSIZE


class LocalRegistries(Closing):
    """Plain-HTTP docker-registry processes whose storage lives in one temporary directory.

    Everything, storage included, goes away on ``close`` (or leaving the ``with`` block): a
    full benchmark run writes several gigabytes.
    """

    def __init__(self, prefix: str = "fluxmirror-bench-") -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        # The factory insists on a PKI (it can start TLS registries); a P-256 one is instant.
        self._factory = RegistryFactory(self.root / "registries", create_pki(self.root / "pki"))

    def start(self, *, config: Mapping[str, Any] | None = None) -> Registry:
        """A new registry; ``config`` is merged over the harness's settings (e.g. to turn on its access log)."""
        return self._factory(config=config)

    def scratch(self, name: str) -> Path:
        """A file path inside the temporary directory, removed with everything else."""
        return self.root / name

    @staticmethod
    def wipe(registry: Registry) -> None:
        """Drop a finished registry's storage early, so large scenarios never pile up on disk."""
        shutil.rmtree(registry.root_dir, ignore_errors=True)

    def close(self) -> None:
        try:
            self._factory.close()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def isolated_env() -> dict[str, str]:
    """The environment for any tool under test: an empty auth file and Docker config, no registries.conf."""
    return _skopeo.isolation().env


def skopeo_invocation(subcommand: str, *args: str) -> list[str]:
    """Argv for a skopeo copy or sync, isolated from the machine's policy and registries.d.

    Anonymous, TLS-unverified access to both sides is added, as the harness does for its copies;
    run it with ``isolated_env()``.
    """
    isolation = _skopeo.isolation()
    return [
        _skopeo.SKOPEO_BIN,
        "--policy",
        str(isolation.policy),
        "--registries.d",
        str(isolation.registries_d),
        subcommand,
        *_skopeo.access("src-", None, False, None),
        *_skopeo.access("dest-", None, False, None),
        *args,
    ]


def skopeo_version() -> str:
    output = subprocess.run([_skopeo.SKOPEO_BIN, "--version"], capture_output=True, text=True, check=True).stdout
    return output.split()[-1]


# --- generated content --------------------------------------------------------------------


@dataclass(frozen=True)
class PushedImage:
    """What a benchmark needs to know about an image it pushed: where, and which blobs."""

    tag: str
    digest: str
    blobs: tuple[str, ...]  # config, then layers


def populate(
    registry: Registry,
    repo: str,
    tags: Sequence[str],
    layer_sizes: Sequence[int],
    *,
    workers: int = 4,
    first_seed: int = 1,
) -> list[PushedImage]:
    """Push one distinct image per tag, each layer ``size`` bytes of seeded random data.

    Random bytes do not compress, so every tool moves the full size and no registry or
    client can cheat on content; layers never share blobs across tags. The same tags, sizes and
    ``first_seed`` give the same digests in any registry (a mirror made without a mirroring tool),
    and repositories given disjoint seed ranges share no blob.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = [
            pool.submit(_push_random_image, registry, repo, tag, layer_sizes, seed)
            for seed, tag in enumerate(tags, start=first_seed)
        ]
        return [job.result() for job in jobs]


def _push_random_image(registry: Registry, repo: str, tag: str, layer_sizes: Sequence[int], seed: int) -> PushedImage:
    """An OCI image whose layers are gzip tarballs generated and uploaded chunk by chunk."""
    rng = random.Random(seed)
    with _Connection(registry) as connection:
        layers = [connection.upload(repo, _Stream(_tar(size, rng), gzip=True)) for size in layer_sizes]
        config = _json(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": {"org.fluxmirror.bench.seed": str(seed)}},
                "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            }
        )
        config_blob = connection.upload(repo, _Stream([config], gzip=False))
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_blob.digest, "size": config_blob.size},
                "layers": [
                    {"mediaType": OCI_LAYER_GZIP, "digest": layer.digest, "size": layer.size} for layer in layers
                ],
            }
        )
        response = connection.request(
            "PUT", f"/v2/{repo}/manifests/{tag}", body=manifest, headers={"Content-Type": OCI_MANIFEST}, ok=201
        )
    return PushedImage(
        tag,
        response.getheader("Docker-Content-Digest", ""),
        (config_blob.digest, *(layer.digest for layer in layers)),
    )


def _json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


class _Stream:
    """Bytes to upload, digested on the way out; gzip'd on the fly for layers.

    Layers use stored (level 0) deflate blocks: real gzip framing keeps skopeo from
    recompressing what it would see as an uncompressed layer, and deflating random bytes
    would cost seconds per 256 MiB to save nothing.
    """

    def __init__(self, pieces: Iterable[bytes], *, gzip: bool) -> None:
        self._pieces = pieces
        self._gzip = gzip
        self.digester = hashlib.sha256()
        self.uncompressed = hashlib.sha256()  # a layer's diff_id
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        compressor = zlib.compressobj(0, zlib.DEFLATED, 31) if self._gzip else None  # wbits 31: gzip framing
        for piece in self._pieces:
            self.uncompressed.update(piece)
            if out := compressor.compress(piece) if compressor else piece:
                yield self._sent(out)
        if compressor:
            yield self._sent(compressor.flush())

    def _sent(self, chunk: bytes) -> bytes:
        self.digester.update(chunk)
        self.size += len(chunk)
        return chunk


def _tar(size: int, rng: random.Random) -> Iterator[bytes]:
    """A one-file tarball of ``size`` random bytes, produced a chunk at a time."""
    info = tarfile.TarInfo("payload.bin")
    info.size = size
    info.mode = 0o644
    yield info.tobuf(format=tarfile.PAX_FORMAT)
    remaining = size
    while remaining:
        piece = min(_CHUNK, remaining)
        yield rng.randbytes(piece)
        remaining -= piece
    yield bytes(-size % _BLOCK + 2 * _BLOCK)  # pad the file, then the end-of-archive marker


@dataclass(frozen=True)
class _Uploaded:
    digest: str
    size: int
    diff_id: str


class _Connection:
    """One keep-alive connection to a plain-HTTP registry, for uploads too large to buffer."""

    def __init__(self, registry: Registry) -> None:
        self._http = http.client.HTTPConnection(registry.host, timeout=120)

    def request(
        self,
        method: str,
        target: str,
        *,
        body: bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: int,
    ) -> http.client.HTTPResponse:
        self._http.request(method, target, body=body, headers=dict(headers or {}))
        response = self._http.getresponse()
        payload = response.read()
        if response.status != ok:
            raise RuntimeError(f"{method} {target}: HTTP {response.status}: {payload[:300]!r}")
        return response

    def upload(self, repo: str, stream: _Stream) -> _Uploaded:
        """POST, one chunked PATCH carrying the whole stream, then PUT with the digest it produced."""
        started = self.request("POST", f"/v2/{repo}/blobs/uploads/", ok=202)
        patched = self.request(
            "PATCH",
            _target(started.getheader("Location", "")),
            body=iter(stream),
            headers={"Content-Type": "application/octet-stream"},
            ok=202,
        )
        digest = "sha256:" + stream.digester.hexdigest()
        location = _target(patched.getheader("Location", ""))
        separator = "&" if "?" in location else "?"
        self.request("PUT", f"{location}{separator}{urlencode({'digest': digest})}", ok=201)
        return _Uploaded(digest, stream.size, "sha256:" + stream.uncompressed.hexdigest())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.close()


def _target(location: str) -> str:
    """The path and query of a Location header, which distribution sends as an absolute URL."""
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")
