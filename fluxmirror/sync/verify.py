"""Signature verification at plan time (docs/verify.md): find a tag's signatures, verify them, and
say what the plan does with the tag.

For each selected tag the subject is the digest the tag resolves to (the index digest for a
multi-arch tag). Its signatures are the sigstore bundles among its referrers (the referrers API, or
the `sha256-<hex>` tag-schema index), each a manifest with exactly one layer whose media type starts
with `application/vnd.dev.sigstore.bundle`, and the layers of cosign's legacy `sha256-<hex>.sig` tag.
Every signature found is verified (`fluxmirror.cosign`, in a thread: it is CPU work); the tag
verifies when any one passes every check, and the one with the oldest verified integrated time is
the one reported and held to `minAge`. The reference verifies only the first bundle it finds
(docs/cli.md#differences-from-flux-mirror).

Tags are verified concurrently, but their outcomes are read in selection order, as the reference's
sequential loop produces them: the first failure ends the entry's plan there.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from fluxmirror.api.config import Verify
from fluxmirror.api.duration import Duration
from fluxmirror.api.report import Verification
from fluxmirror.auth.blocking import run_blocking
from fluxmirror.errors import FluxMirrorError
from fluxmirror.gocompat.strconv import go_quote
from fluxmirror.oci.blobs import fetch_blob
from fluxmirror.oci.client import RegistryClient
from fluxmirror.oci.manifests import Descriptor, Manifest
from fluxmirror.oci.referrers import fallback_tag, list_referrers
from fluxmirror.sync.verified import Remembered, VerifiedCache

if TYPE_CHECKING:
    from sigstore.models import TrustedRoot

    from fluxmirror.cosign.verifier import SignatureVerifier, Verified

__all__ = ["TagVerdict", "TrustedRoots", "VerifyFailure", "verify_tags"]

PROVIDER: Final = "cosign"
BUNDLE_MEDIA_PREFIX: Final = "application/vnd.dev.sigstore.bundle"
SIMPLE_SIGNING: Final = "application/vnd.dev.cosign.simplesigning.v1+json"
MAX_BUNDLE_BYTES: Final = 4 << 20
MAX_PAYLOAD_BYTES: Final = 1 << 20
NO_SIGNATURE: Final = "no sigstore bundle found in referrers"
NO_MIN_AGE_TIME: Final = (
    "cannot enforce minAge: no verified transparency log integrated timestamps found in signature bundle"
)
TRUSTED_ROOT_VARIABLE: Final = "FLUXMIRROR_TRUSTED_ROOT"
TUF_URL_VARIABLE: Final = "FLUXMIRROR_TUF_URL"
TUF_ROOT_VARIABLE: Final = "FLUXMIRROR_TUF_ROOT"
OFFLINE_HINT: Final = f"; pass --trusted-root FILE (or set {TRUSTED_ROOT_VARIABLE}) to verify without the network"
_TRUST_TIME_LIMIT: Final = 120.0
_T = TypeVar("_T")


class VerifyFailure(Exception):
    """A tag's signature could not be verified; the message follows `verify <source>:<tag>: `."""


@dataclass(frozen=True, slots=True)
class TagVerdict:
    """A verified tag: its digest, the `verification` block for its row, whether `minAge` defers
    it (then `verification` carries `age` and `minAge`), and its referrer listing."""

    digest: str
    verification: Verification
    too_new: bool
    referrers: tuple[Descriptor, ...]


class TrustedRoots:
    """The run's trusted root, obtained once, when the first entry with `verify` needs it: the pinned
    file (`--trusted-root`, else `$FLUXMIRROR_TRUSTED_ROOT`), else the TUF repository. Its bytes (and
    digest, the verification cache's key) come first; the parsed root, which needs sigstore-python,
    only when a signature must really be verified. A failure is kept too, and fails every verifying
    entry with the same line."""

    def __init__(self, pinned: str | None, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._pinned = pinned or env.get(TRUSTED_ROOT_VARIABLE) or None
        self._tuf_url = env.get(TUF_URL_VARIABLE) or ""
        self._tuf_root = env.get(TUF_ROOT_VARIABLE) or ""
        self._bytes: asyncio.Task[bytes] | None = None
        self._parsed: asyncio.Task[TrustedRoot] | None = None

    def start(self, *, parse: bool) -> None:
        """Begin obtaining the root without waiting, so that it overlaps the first entry's tag listing;
        `parse` also loads sigstore-python (a third of a second), worth it when nothing is cached."""
        self._start_bytes()
        if parse:
            self._start_parse()

    async def digest(self) -> str:
        """The sha256 of the trusted root's bytes."""
        return "sha256:" + hashlib.sha256(await asyncio.shield(self._start_bytes())).hexdigest()

    async def get(self) -> TrustedRoot:
        """The parsed trusted root."""
        return await asyncio.shield(self._start_parse())

    def _start_bytes(self) -> asyncio.Task[bytes]:
        if self._bytes is None:
            self._bytes = _quiet(asyncio.ensure_future(self._guarded(self._read)))
        return self._bytes

    def _start_parse(self) -> asyncio.Task[TrustedRoot]:
        if self._parsed is None:
            self._parsed = _quiet(asyncio.ensure_future(self._parse()))
        return self._parsed

    async def _parse(self) -> TrustedRoot:
        data = await self._start_bytes()
        return await self._guarded(partial(_parse_root, data, self._pinned or self._tuf_url or "from TUF"))

    async def _guarded(self, work: Callable[[], _T]) -> _T:
        """`work` in a daemon thread, bounded in time, its failure worded once for every entry."""
        from fluxmirror.cosign.trust import TrustRootError

        try:
            return await asyncio.wait_for(run_blocking(work), _TRUST_TIME_LIMIT)
        except TrustRootError as exc:
            raise FluxMirrorError(f"fetch trusted root: {exc}{'' if self._pinned else OFFLINE_HINT}") from None
        except TimeoutError:
            budget = Duration.from_seconds(_TRUST_TIME_LIMIT)
            raise FluxMirrorError(f"fetch trusted root: timed out after {budget}{OFFLINE_HINT}") from None

    def _read(self) -> bytes:
        from fluxmirror.cosign.trust import (
            PUBLIC_GOOD_TUF_URL,
            TrustRootError,
            bundled_tuf_root,
            fetch_trusted_root,
            read_pinned_root,
        )

        if self._pinned:
            return read_pinned_root(self._pinned)
        if self._tuf_root:
            try:
                root = Path(self._tuf_root).read_bytes()
            except OSError as exc:
                raise TrustRootError(f"read TUF root {self._tuf_root}: {exc.strerror}") from None
        else:
            root = bundled_tuf_root()
        return fetch_trusted_root(self._tuf_url or PUBLIC_GOOD_TUF_URL, root)


def _parse_root(data: bytes, where: str) -> TrustedRoot:
    import fluxmirror.cosign.verifier  # noqa: F401  (sigstore-python's import, here in a thread)
    from fluxmirror.cosign.trust import parse_trusted_root

    return parse_trusted_root(data, where)


def _quiet(task: asyncio.Task[_T]) -> asyncio.Task[_T]:
    """A task whose failure is reported by whoever awaits it, and by nobody else if nobody does."""
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return task


@dataclass(frozen=True, slots=True)
class _Found:
    """The signatures of one subject, in the order they are tried."""

    bundles: tuple[bytes, ...]
    legacy: tuple[tuple[bytes, Mapping[str, str]], ...]


class _Entry:
    """What verifying one entry's tags shares: where they come from, the policy, the cache, and the
    signature verifier, built on the first cache miss (it needs sigstore-python)."""

    def __init__(
        self,
        client: RegistryClient,
        source: str,
        repository: str,
        spec: Verify,
        roots: TrustedRoots,
        listed: Collection[str],
        cache: VerifiedCache | None,
        with_referrers: bool,
    ) -> None:
        self.client, self.source, self.repository, self.spec = client, source, repository, spec
        self.roots, self.listed, self.cache, self.with_referrers = roots, listed, cache, with_referrers
        self._verifier: asyncio.Task[SignatureVerifier] | None = None

    async def verifier(self) -> SignatureVerifier:
        if self._verifier is None:
            self._verifier = _quiet(asyncio.ensure_future(self._build()))
        return await asyncio.shield(self._verifier)

    async def _build(self) -> SignatureVerifier:
        trusted_root = await self.roots.get()
        from fluxmirror.cosign.verifier import SignatureVerifier  # imported by `roots`, off the loop

        return SignatureVerifier(trusted_root, self.spec.matchOIDCIdentity)


async def verify_tags(
    client: RegistryClient,
    source: str,
    repository: str,
    tags: Sequence[str],
    spec: Verify,
    roots: TrustedRoots,
    concurrency: int,
    listed: Collection[str],
    *,
    state_dir: str | None = None,
    with_referrers: bool = False,
) -> list[TagVerdict | VerifyFailure]:
    """Each tag's verdict, in `tags` order, up to and including the first failure. `listed` is the
    repository's whole tag list: a `sha256-<hex>` index or `.sig` tag that is not in it is not asked
    for. With `state_dir`, verdicts are remembered across runs (`fluxmirror.sync.verified`);
    `with_referrers` lists a cached tag's referrers anyway, for `includeReferrers`."""
    cache = VerifiedCache(state_dir, await roots.digest(), spec.matchOIDCIdentity) if state_dir else None
    if cache is None:
        await roots.get()  # the failure of a root that cannot be had fails the entry, not its first tag
    context = _Entry(client, source, repository, spec, roots, listed, cache, with_referrers)
    limit = asyncio.Semaphore(concurrency)

    async def one(tag: str) -> TagVerdict | VerifyFailure:
        async with limit:
            try:
                return await _verify_tag(context, tag)
            except VerifyFailure as failure:
                return failure

    verdicts: list[TagVerdict | VerifyFailure] = []
    tasks = [asyncio.ensure_future(one(tag)) for tag in tags]
    try:
        for task in tasks:
            verdict = await task
            verdicts.append(verdict)
            if isinstance(verdict, VerifyFailure):
                break
    finally:
        for task in tasks:
            task.cancel()  # the tags after a failure are not planned: their work is dropped
    return verdicts


async def _verify_tag(entry: _Entry, tag: str) -> TagVerdict:
    client, repository, source = entry.client, entry.repository, entry.source
    reference = f"{source}:{tag}"
    try:
        digest = await client.resolve_digest(repository, tag)
    except FluxMirrorError as exc:
        raise VerifyFailure(f"fetch descriptor for {go_quote(reference)}: {exc}") from None
    if digest is None:
        raise VerifyFailure(f"fetch descriptor for {go_quote(reference)}: MANIFEST_UNKNOWN: manifest unknown")
    remembered = entry.cache.get(digest) if entry.cache is not None else None
    if remembered is not None:
        referrers = await _referrers(entry, digest) if entry.with_referrers else []
        return TagVerdict(digest, *_judge(remembered, entry.spec), tuple(referrers))
    legacy_tag = f"{fallback_tag(digest)}.sig"
    try:
        referrers, legacy = await asyncio.gather(
            _referrers(entry, digest),
            client.get_manifest(repository, legacy_tag) if legacy_tag in entry.listed else _nothing(),
        )
    except FluxMirrorError as exc:
        raise VerifyFailure(f"list referrers for {source}@{digest}: {exc}") from None
    found = await _signatures(client, source, repository, referrers, legacy)
    verifier = await entry.verifier()
    chosen = _oldest(await asyncio.to_thread(_verify_all, verifier, found, digest))
    if entry.cache is not None:
        entry.cache.put(digest, chosen)
    return TagVerdict(digest, *_judge(chosen, entry.spec), tuple(referrers))


async def _referrers(entry: _Entry, digest: str) -> list[Descriptor]:
    try:
        return await list_referrers(entry.client, entry.repository, digest, entry.listed)
    except FluxMirrorError as exc:
        raise VerifyFailure(f"list referrers for {entry.source}@{digest}: {exc}") from None


async def _nothing() -> None:
    return None


async def _signatures(
    client: RegistryClient, source: str, repository: str, referrers: Sequence[Descriptor], legacy: Manifest | None
) -> _Found:
    """The bundles among the referrers (listing order), then the legacy signature layers."""

    async def bundle_of(referrer: Descriptor) -> bytes | None:
        manifest = await client.get_manifest(repository, referrer.digest)
        layer = _single_bundle_layer(manifest) if manifest is not None else None
        return await fetch_blob(client, repository, layer.digest, MAX_BUNDLE_BYTES) if layer is not None else None

    async def payload_of(layer: Descriptor) -> tuple[bytes, Mapping[str, str]]:
        return await fetch_blob(client, repository, layer.digest, MAX_PAYLOAD_BYTES), layer.annotations

    layers = [layer for layer in _layers(legacy) if layer.media_type == SIMPLE_SIGNING] if legacy else []
    try:
        bundles = await asyncio.gather(*(bundle_of(referrer) for referrer in referrers))
        payloads = await asyncio.gather(*(payload_of(layer) for layer in layers))
    except FluxMirrorError as exc:
        raise VerifyFailure(f"fetch signature from {source}: {exc}") from None
    return _Found(tuple(bundle for bundle in bundles if bundle is not None), tuple(payloads))


def _layers(manifest: Manifest) -> list[Descriptor]:
    """An image manifest's layers (its `blobs` minus the config), in order."""
    try:
        document = json.loads(manifest.raw)
    except ValueError:
        return []
    layers = document.get("layers") if isinstance(document, dict) else None
    if not isinstance(layers, list):
        return []
    by_digest = {blob.digest: blob for blob in manifest.blobs}
    return [
        by_digest[layer["digest"]]
        for layer in layers
        if isinstance(layer, dict) and isinstance(layer.get("digest"), str) and layer["digest"] in by_digest
    ]


def _single_bundle_layer(manifest: Manifest) -> Descriptor | None:
    layers = _layers(manifest)
    if len(layers) == 1 and layers[0].media_type.startswith(BUNDLE_MEDIA_PREFIX):
        return layers[0]
    return None


def _verify_all(verifier: SignatureVerifier, found: _Found, digest: str) -> list[Verified]:
    """Every signature that passes; the first signature's error when none does."""
    from fluxmirror.cosign.verifier import MalformedSignature, SignatureError

    passed: list[Verified] = []
    first_error: SignatureError | None = None
    checks: list[Callable[[], Verified]] = [partial(verifier.verify_bundle, raw, digest) for raw in found.bundles]
    checks += [partial(verifier.verify_legacy, payload, signed, digest) for payload, signed in found.legacy]
    for check in checks:
        try:
            passed.append(check())
        except SignatureError as exc:
            first_error = first_error or exc
    if passed:
        return passed
    if first_error is None:
        raise VerifyFailure(f"signature verification failed: {NO_SIGNATURE}")
    if isinstance(first_error, MalformedSignature):
        raise VerifyFailure(str(first_error))
    raise VerifyFailure(f"signature verification failed: {first_error}")


def _oldest(verified: Sequence[Verified]) -> Remembered:
    """The passing signature with the oldest verified integrated time (or the first, if none has one)."""
    timed = [one for one in verified if one.integrated_time is not None]
    chosen = min(timed, key=lambda one: one.integrated_time or 0) if timed else verified[0]
    return Remembered(chosen.identity.issuer, chosen.identity.san, chosen.integrated_time)


def _judge(chosen: Remembered, spec: Verify) -> tuple[Verification, bool]:
    """The `verification` block of the chosen signature, and whether `minAge` defers it."""
    verification = Verification(
        provider=PROVIDER,
        issuer=chosen.issuer,
        identity=chosen.identity,
        integratedTime=_rfc3339(chosen.integrated_time) if chosen.integrated_time is not None else "",
    )
    min_age = spec.minAge
    if min_age is None or min_age.nanoseconds <= 0:
        return verification, False
    if chosen.integrated_time is None:
        raise VerifyFailure(f"signature verification failed: {NO_MIN_AGE_TIME}")
    age = Duration.from_seconds(max(time.time() - chosen.integrated_time, 0.0)).round_to(Duration.parse("1s"))
    if age.nanoseconds >= min_age.nanoseconds:
        return verification, False
    return _with_age(verification, age, min_age), True


def _with_age(verification: Verification, age: Duration, min_age: Duration) -> Verification:
    return Verification(
        provider=verification.provider,
        issuer=verification.issuer,
        identity=verification.identity,
        integratedTime=verification.integratedTime,
        age=str(age),
        minAge=str(min_age),
    )


def _rfc3339(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
