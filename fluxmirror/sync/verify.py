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
import json
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Final

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
    file (`--trusted-root`, else `$FLUXMIRROR_TRUSTED_ROOT`), else the TUF repository. A failure is
    kept too, and fails every verifying entry with the same line."""

    def __init__(self, pinned: str | None, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._pinned = pinned or env.get(TRUSTED_ROOT_VARIABLE) or None
        self._tuf_url = env.get(TUF_URL_VARIABLE) or ""
        self._tuf_root = env.get(TUF_ROOT_VARIABLE) or ""
        self._task: asyncio.Task[TrustedRoot] | None = None

    async def get(self) -> TrustedRoot:
        return await asyncio.shield(self.start())

    def start(self) -> asyncio.Task[TrustedRoot]:
        """Begin obtaining the root (it imports sigstore-python, a third of a second) without waiting,
        so that it overlaps the first entry's tag listing; a failure is reported by `get`."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._obtain())
            self._task.add_done_callback(lambda task: task.cancelled() or task.exception())
        return self._task

    async def _obtain(self) -> TrustedRoot:
        from fluxmirror.cosign.trust import TrustRootError

        try:
            return await asyncio.wait_for(run_blocking(self._load), _TRUST_TIME_LIMIT)
        except TrustRootError as exc:
            raise FluxMirrorError(f"fetch trusted root: {exc}{'' if self._pinned else OFFLINE_HINT}") from None
        except TimeoutError:
            budget = Duration.from_seconds(_TRUST_TIME_LIMIT)
            raise FluxMirrorError(f"fetch trusted root: timed out after {budget}{OFFLINE_HINT}") from None

    def _load(self) -> TrustedRoot:
        import fluxmirror.cosign.verifier  # noqa: F401  (sigstore-python's import, here in a thread)
        from fluxmirror.cosign.trust import (
            PUBLIC_GOOD_TUF_URL,
            TrustRootError,
            bundled_tuf_root,
            fetch_trusted_root,
            load_trusted_root,
        )

        if self._pinned:
            return load_trusted_root(self._pinned)
        if self._tuf_root:
            try:
                root = open(self._tuf_root, "rb").read()  # noqa: SIM115 (read once, closed by refcount)
            except OSError as exc:
                raise TrustRootError(f"read TUF root {self._tuf_root}: {exc.strerror}") from None
        else:
            root = bundled_tuf_root()
        return fetch_trusted_root(self._tuf_url or PUBLIC_GOOD_TUF_URL, root)


@dataclass(frozen=True, slots=True)
class _Found:
    """The signatures of one subject, in the order they are tried."""

    bundles: tuple[bytes, ...]
    legacy: tuple[tuple[bytes, Mapping[str, str]], ...]


async def verify_tags(
    client: RegistryClient,
    source: str,
    repository: str,
    tags: Sequence[str],
    spec: Verify,
    roots: TrustedRoots,
    concurrency: int,
    listed: Collection[str],
) -> list[TagVerdict | VerifyFailure]:
    """Each tag's verdict, in `tags` order, up to and including the first failure. `listed` is the
    repository's whole tag list: a `sha256-<hex>` index or `.sig` tag that is not in it is not asked for."""
    trusted_root = await roots.get()
    from fluxmirror.cosign.verifier import SignatureVerifier  # imported by `roots`, off the loop

    verifier = SignatureVerifier(trusted_root, spec.matchOIDCIdentity)
    limit = asyncio.Semaphore(concurrency)

    async def one(tag: str) -> TagVerdict | VerifyFailure:
        async with limit:
            try:
                return await _verify_tag(client, source, repository, tag, spec, verifier, listed)
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


async def _verify_tag(
    client: RegistryClient,
    source: str,
    repository: str,
    tag: str,
    spec: Verify,
    verifier: SignatureVerifier,
    listed: Collection[str],
) -> TagVerdict:
    reference = f"{source}:{tag}"
    try:
        digest = await client.resolve_digest(repository, tag)
    except FluxMirrorError as exc:
        raise VerifyFailure(f"fetch descriptor for {go_quote(reference)}: {exc}") from None
    if digest is None:
        raise VerifyFailure(f"fetch descriptor for {go_quote(reference)}: MANIFEST_UNKNOWN: manifest unknown")
    legacy_tag = f"{fallback_tag(digest)}.sig"
    try:
        referrers, legacy = await asyncio.gather(
            list_referrers(client, repository, digest, listed),
            client.get_manifest(repository, legacy_tag) if legacy_tag in listed else _nothing(),
        )
    except FluxMirrorError as exc:
        raise VerifyFailure(f"list referrers for {source}@{digest}: {exc}") from None
    found = await _signatures(client, source, repository, referrers, legacy)
    verified = await asyncio.to_thread(_verify_all, verifier, found, digest)
    return TagVerdict(digest, *_judge(verified, spec), tuple(referrers))


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


def _judge(verified: Sequence[Verified], spec: Verify) -> tuple[Verification, bool]:
    """The `verification` block of the oldest verified signature, and whether `minAge` defers it."""
    timed = [one for one in verified if one.integrated_time is not None]
    chosen = min(timed, key=lambda one: one.integrated_time or 0) if timed else verified[0]
    verification = Verification(
        provider=PROVIDER,
        issuer=chosen.identity.issuer,
        identity=chosen.identity.san,
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
