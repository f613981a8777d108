"""A real TUF repository on loopback, shaped like Sigstore's, for the trust-root fetching tests.

The product fetches Sigstore's ``trusted_root.json`` through TUF (python-tuf's ngclient, trusting a
``root.json`` it is given). Tests cannot reach ``tuf-repo-cdn.sigstore.dev``, and a faked client
proves nothing, so this module signs genuine TUF metadata with python-tuf's Metadata API and
serves it over plain http on ``127.0.0.1``, laid out the way Sigstore's CDN is:

* ``/<N>.root.json`` for every root version, ``/timestamp.json`` (the one unversioned file),
  ``/<N>.snapshot.json`` and ``/<N>.targets.json`` (consistent snapshots are on, as in Sigstore's
  root, so a client that asked for ``snapshot.json`` or ``targets.json`` would get 404);
* ``/targets/<sha256>.<name>`` for target files, so the metadata base URL is the repository URL
  itself and the targets base URL is ``<url>/targets/`` -- what sigstore-python derives.

Every role has its own ECDSA P-256 key (``ecdsa-sha2-nistp256``, Sigstore's scheme) and threshold
one. The knobs are wire behaviour a client must cope with: new targets (a full new
targets/snapshot/timestamp version), a root rotation the client must walk, an expired timestamp,
target bytes that do not match their metadata, and an unreachable repository (503 on every request,
or the port closed so connections are refused). Every request that reached the server is logged.

Like the other harness servers it runs on a private event loop in a daemon thread, so synchronous
tests (python-tuf's client is synchronous) and asyncio tests can both use it. Nothing here imports
the product.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from aiohttp import web
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    TOP_LEVEL_ROLE_NAMES,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)

from harness.background import BackgroundLoop
from harness.closing import Closing

__all__ = [
    "DEFAULT_LIFETIME",
    "PLACEHOLDER_TRUSTED_ROOT",
    "SIGNING_CONFIG",
    "TRUSTED_ROOT",
    "Offline",
    "TufRepository",
]

TRUSTED_ROOT = "trusted_root.json"
SIGNING_CONFIG = "signing_config.v0.2.json"
"""The two target names sigstore-python 4.x looks up in Sigstore's repository."""

PLACEHOLDER_TRUSTED_ROOT: bytes = (
    json.dumps(
        {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [],
            "certificateAuthorities": [],
            "ctlogs": [],
            "timestampAuthorities": [],
        },
        indent=2,
    ).encode()
    + b"\n"
)
"""A well-formed but empty Sigstore TrustedRoot: parses, yet trusts nothing."""

DEFAULT_LIFETIME = timedelta(days=7)
"""How long freshly signed metadata stays valid."""

Offline = bool | Literal["refused"]
"""``False``: serving; ``True``: every request is answered 503; ``"refused"``: the port is closed."""

_JSON = "application/json"
_OCTETS = "application/octet-stream"


def _flip_one_byte(data: bytes) -> bytes:
    """Same length, different hash; an empty file gains a byte instead (then the length is wrong too)."""
    if not data:
        return b"\0"
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def _bind(port: int = 0) -> socket.socket:
    """A listening loopback socket; SO_REUSEADDR so the same port can be bound again after going offline."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


class TufRepository(Closing):
    """A TUF repository on ``http://127.0.0.1:<free port>`` until ``close`` (or the ``with`` block ends).

    ``targets`` are published as version 1 of every role. ``url`` is the metadata base URL (no
    trailing slash, as sigstore-python passes it), ``targets_url`` the targets base URL, and
    ``root_json`` the version-1 root a client is bootstrapped with; it stays the bootstrap after
    ``rotate_root``.
    """

    def __init__(self, targets: Mapping[str, bytes] | None = None, *, lifetime: timedelta = DEFAULT_LIFETIME) -> None:
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self._files: dict[str, bytes] = {}  # served path without the leading "/" -> body
        self._requests: list[str] = []
        self._offline: Offline = False
        self._contents: dict[str, bytes] = dict(targets or {})
        self._signers = {role: CryptoSigner.generate_ecdsa() for role in TOP_LEVEL_ROLE_NAMES}

        root = Root(expires=self._expiry(), consistent_snapshot=True)
        for role, signer in self._signers.items():
            root.add_key(signer.public_key, role)
        self._root = Metadata(root)
        self._targets = Metadata(Targets(expires=self._expiry()))
        self._snapshot = Metadata(Snapshot(expires=self._expiry()))
        self._timestamp = Metadata(Timestamp(expires=self._expiry()))
        self._sign_root()
        self._publish(initial=True)

        sock = _bind()
        self.port: int = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.targets_url = f"{self.url}/targets/"
        self._runner: web.AppRunner | None = None
        self._background = BackgroundLoop(f"tufrepo-{self.port}")
        try:
            self._background.call(self._start(sock))
        except BaseException:
            self.close()
            raise

    # -- what a client trusts ----------------------------------------------------------------------

    @property
    def root_json(self) -> bytes:
        """Root version 1 as served: the bootstrap root a client starts from."""
        return self.root_bytes(1)

    def root_bytes(self, version: int) -> bytes:
        """A published root version, exactly as served at ``/<version>.root.json``."""
        with self._lock:
            return self._files[f"{version}.root.json"]

    @property
    def root_version(self) -> int:
        """The newest published root version."""
        with self._lock:
            return self._root.signed.version

    def write_root(self, path: str | Path, *, version: int = 1) -> Path:
        """Write a root version (default: the bootstrap, version 1) to ``path``; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.root_bytes(version))
        return path

    # -- content -----------------------------------------------------------------------------------

    @property
    def targets(self) -> dict[str, bytes]:
        """The current target files by name, as the current targets metadata describes them."""
        with self._lock:
            return dict(self._contents)

    def target_path(self, name: str) -> str:
        """Where the current version of target ``name`` is served, e.g. ``/targets/<sha256>.<name>``."""
        with self._lock:
            return "/" + self._served_target_path(self._targets.signed.targets[name])

    def set_target(self, name: str, data: bytes) -> None:
        """Publish (or replace) a target: new targets, snapshot and timestamp versions.

        Earlier target files stay served under their own hash, as in a real consistent-snapshot
        repository, so a client that already holds the previous snapshot can still finish.
        """
        with self._lock:
            self._contents[name] = data
            self._publish()

    def remove_target(self, name: str) -> None:
        """Drop a target from the metadata (new targets, snapshot and timestamp versions)."""
        with self._lock:
            del self._contents[name]
            self._publish()

    def rotate_root(self) -> None:
        """Publish the next root version with a new root key and a new timestamp key.

        The new root is signed by the old root key and the new one, as the TUF specification
        requires, and the timestamp is re-signed with the new timestamp key. A client still
        trusting the previous root would reject that timestamp, so one bootstrapped from version 1
        succeeds only if it really walked ``/<N>.root.json`` up to the newest version.
        """
        with self._lock:
            old_root_signer = self._signers["root"]
            root = self._root.signed
            for role in ("root", "timestamp"):
                new_signer = CryptoSigner.generate_ecdsa()
                root.revoke_key(self._signers[role].public_key.keyid, role)
                root.add_key(new_signer.public_key, role)
                self._signers[role] = new_signer
            root.version += 1
            root.expires = self._expiry()
            self._sign_root(also=old_root_signer)
            self._publish_timestamp()

    # -- misbehaviour ------------------------------------------------------------------------------

    def expire_timestamp(self) -> None:
        """Publish a new timestamp version that expired an hour ago (signatures and versions stay valid)."""
        with self._lock:
            self._publish_timestamp(expires=datetime.now(UTC) - timedelta(hours=1))

    def tamper_target(self, name: str) -> None:
        """Serve the current file of target ``name`` with one byte flipped; the metadata keeps the true hash.

        The length stays the same, so only the hash check can catch it. ``set_target`` with new
        bytes publishes a new, untampered file.
        """
        with self._lock:
            path = self._served_target_path(self._targets.signed.targets[name])
            self._files[path] = _flip_one_byte(self._files[path])

    @property
    def offline(self) -> Offline:
        """``True``: every request is answered 503; ``"refused"``: nothing listens on the port."""
        return self._offline

    @offline.setter
    def offline(self, value: Offline) -> None:
        if value == self._offline:
            return
        if value == "refused":
            self._background.call(self._stop())
        elif self._offline == "refused":
            self._background.call(self._start(_bind(self.port)))
        with self._lock:
            self._offline = value

    # -- request log -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[str]:
        """The path of every request that reached the server, in arrival order (503s included)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        self._background.close(self._stop)

    async def _start(self, sock: socket.socket) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def _stop(self) -> None:
        """Close the listener and every open connection (keep-alive ones too), so nothing answers."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # -- signing (callers hold the lock, except during __init__) ------------------------------------

    def _expiry(self) -> datetime:
        return datetime.now(UTC) + self.lifetime

    def _sign_root(self, also: CryptoSigner | None = None) -> None:
        self._root.sign(self._signers["root"])
        if also is not None:
            self._root.sign(also, append=True)
        self._files[f"{self._root.signed.version}.root.json"] = self._root.to_bytes()

    def _served_target_path(self, target: TargetFile) -> str:
        return "targets/" + target.get_prefixed_paths()[0]

    def _publish(self, *, initial: bool = False) -> None:
        """Sign the current contents as new targets and snapshot versions, then a new timestamp."""
        targets = self._targets.signed
        targets.targets = {name: TargetFile.from_data(name, data) for name, data in self._contents.items()}
        for name, target in targets.targets.items():
            # setdefault: republishing must not quietly repair a file ``tamper_target`` corrupted.
            self._files.setdefault(self._served_target_path(target), self._contents[name])
        if not initial:
            targets.version += 1
        targets.expires = self._expiry()
        self._targets.sign(self._signers["targets"])
        self._files[f"{targets.version}.targets.json"] = self._targets.to_bytes()

        snapshot = self._snapshot.signed
        snapshot.meta["targets.json"] = MetaFile(version=targets.version)
        if not initial:
            snapshot.version += 1
        snapshot.expires = self._expiry()
        self._snapshot.sign(self._signers["snapshot"])
        self._files[f"{snapshot.version}.snapshot.json"] = self._snapshot.to_bytes()

        self._publish_timestamp(initial=initial)

    def _publish_timestamp(self, *, expires: datetime | None = None, initial: bool = False) -> None:
        timestamp = self._timestamp.signed
        timestamp.snapshot_meta = MetaFile(version=self._snapshot.signed.version)
        if not initial:
            timestamp.version += 1
        timestamp.expires = expires if expires is not None else self._expiry()
        self._timestamp.sign(self._signers["timestamp"])
        self._files["timestamp.json"] = self._timestamp.to_bytes()

    # -- serving -----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        with self._lock:
            self._requests.append(request.path)
            if self._offline:
                return web.Response(status=503, text="repository offline\n")
            body = self._files.get(request.path.removeprefix("/"))
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, headers={"Allow": "GET, HEAD"})
        if body is None:
            return web.Response(status=404, text="not found\n")
        content_type = _OCTETS if request.path.startswith("/targets/") else _JSON
        return web.Response(body=body, content_type=content_type)
