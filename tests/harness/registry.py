"""Real docker-registry (distribution 2.8) processes on loopback ports, always reaped.

Three layers of cleanup keep a crashed or killed test run from leaking registries: the
factory's ``close`` (fixture teardown), an ``atexit`` hook, and ``setpriv --pdeathsig`` so
the kernel terminates the registry if pytest itself dies without running Python cleanup.
"""

from __future__ import annotations

import atexit
import functools
import http.client
import itertools
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness import Credentials
from harness.pki import PKI
from harness.tokenserver import ISSUER, SERVICE, TokenServer

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
READY_TIMEOUT = 10.0
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()
_REPO_COUNTER = itertools.count(1)


@dataclass(frozen=True)
class Registry:
    """What a test needs to reach one running registry.

    Frozen so a test can derive a deliberately crippled view, e.g.
    ``dataclasses.replace(registry_mtls, client_cert_path=None)``, without touching the
    shared session object.
    """

    host: str  # "127.0.0.1:<port>"
    url: str  # scheme://host
    root_dir: Path  # filesystem storage root
    log_path: Path
    credentials: Credentials | None = None
    ca_path: Path | None = None
    client_cert_path: Path | None = None
    client_key_path: Path | None = None
    cert_dir: Path | None = None  # skopeo --cert-dir: CA (+ client pair for mTLS)
    token_server: TokenServer | None = None

    @property
    def tls(self) -> bool:
        return self.url.startswith("https://")

    def ref(self, repo: str, reference: str | None = "latest") -> str:
        """`host/repo:tag`, `host/repo@digest`, or `host/repo` when ``reference`` is None."""
        if reference is None:
            return f"{self.host}/{repo}"
        separator = "@" if ":" in reference else ":"
        return f"{self.host}/{repo}{separator}{reference}"

    def docker_ref(self, repo: str, reference: str | None = "latest") -> str:
        return "docker://" + self.ref(repo, reference)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def unique_repo_name(hint: str = "repo") -> str:
    """Distinct, valid repository names so tests sharing a session registry never collide."""
    slug = re.sub(r"[^a-z0-9]+", "-", hint.lower())[:48].strip("-") or "repo"
    return f"t/{slug}-{next(_REPO_COUNTER):04d}"


def client_ssl_context(registry: Registry) -> ssl.SSLContext | None:
    if not registry.tls:
        return None
    context = ssl.create_default_context(cafile=str(registry.ca_path) if registry.ca_path else None)
    if registry.client_cert_path is not None and registry.client_key_path is not None:
        context.load_cert_chain(registry.client_cert_path, registry.client_key_path)
    return context


class RegistryFactory:
    """Starts registries with whatever auth/TLS combination a test needs; closes them all at once."""

    def __init__(self, base_dir: Path, pki: PKI) -> None:
        self._base_dir = base_dir
        self._pki = pki
        self._count = itertools.count(1)
        self._processes: list[subprocess.Popen[bytes]] = []

    def __call__(
        self,
        *,
        htpasswd: Credentials | None = None,
        token_server: TokenServer | None = None,
        tls: bool = False,
        require_client_cert: bool = False,
        config: Mapping[str, Any] | None = None,
        ca_path: Path | None = None,
    ) -> Registry:
        """Start one registry; ``config`` is deep-merged over the generated configuration, and
        ``ca_path`` is the CA that verifies its server certificate when ``config`` replaces it."""
        if htpasswd is not None and token_server is not None:
            raise ValueError("a registry has one auth method: htpasswd or token, not both")
        workdir = self._base_dir / f"registry-{next(self._count)}"
        workdir.mkdir(parents=True)
        tls = tls or require_client_cert
        settings = _base_config(workdir / "storage")
        if htpasswd is not None:
            settings["auth"] = {"htpasswd": {"realm": "fluxmirror-test", "path": _htpasswd_file(workdir, htpasswd)}}
        if token_server is not None:
            settings["auth"] = {
                "token": {
                    "realm": token_server.realm,
                    "service": SERVICE,
                    "issuer": ISSUER,
                    "rootcertbundle": str(self._pki.ca_path),
                }
            }
        if tls:
            settings["http"]["tls"] = {
                "certificate": str(self._pki.server_cert_path),
                "key": str(self._pki.server_key_path),
            }
            if require_client_cert:
                settings["http"]["tls"]["clientcas"] = [str(self._pki.ca_path)]
        _deep_merge(settings, config or {})

        describe = functools.partial(
            Registry,
            root_dir=workdir / "storage",
            log_path=workdir / "registry.log",
            credentials=htpasswd or (token_server.credentials if token_server else None),
            ca_path=(ca_path or self._pki.ca_path) if tls else None,
            client_cert_path=self._pki.client_cert_path if require_client_cert else None,
            client_key_path=self._pki.client_key_path if require_client_cert else None,
            cert_dir=(self._pki.client_cert_dir if require_client_cert else self._pki.ca_cert_dir) if tls else None,
            token_server=token_server,
        )
        config_path = workdir / "config.yml"
        scheme = "https" if tls else "http"
        # The free port can be taken between probing and the registry's bind: retry once.
        try:
            return self._launch(describe, settings, config_path, scheme)
        except _AddressInUse:
            return self._launch(describe, settings, config_path, scheme)

    def close(self) -> None:
        while self._processes:
            _stop(self._processes.pop())

    def _launch(
        self, describe: Callable[..., Registry], settings: dict[str, Any], config_path: Path, scheme: str
    ) -> Registry:
        host = f"127.0.0.1:{_free_port()}"
        settings["http"]["addr"] = host
        config_path.write_text(yaml.safe_dump(settings, sort_keys=False))
        registry = describe(host=host, url=f"{scheme}://{host}")
        process = _spawn(config_path, registry.log_path)
        try:
            _wait_ready(process, registry)
        except BaseException:
            _stop(process)
            raise
        self._processes.append(process)
        return registry


class _AddressInUse(RuntimeError):
    pass


def _base_config(storage: Path) -> dict[str, Any]:
    return {
        "version": "0.1",
        "log": {"level": "warn", "formatter": "text", "accesslog": {"disabled": True}},
        "http": {"addr": "", "secret": secrets.token_hex(16)},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
    }


def _htpasswd_file(workdir: Path, credentials: Credentials) -> str:
    # distribution 2.8 only accepts bcrypt entries, which htpasswd -B produces.
    line = subprocess.run(
        ["htpasswd", "-Bbn", credentials.username, credentials.password],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    path = workdir / "htpasswd"
    path.write_text(line + "\n")
    return str(path)


def _deep_merge(target: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = value


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn(config_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    command = [REGISTRY_BIN, "serve", str(config_path)]
    # PDEATHSIG fires when the *thread* that forked exits, so only use it from the main thread.
    if threading.current_thread() is threading.main_thread() and shutil.which("setpriv"):
        command = ["setpriv", "--pdeathsig", "TERM", "--", *command]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    with _LIVE_LOCK:
        _LIVE.add(process)
    return process


def _wait_ready(process: subprocess.Popen[bytes], registry: Registry) -> None:
    """Poll GET /v2/ until the registry answers 200 or 401 (auth-protected)."""
    deadline = time.monotonic() + READY_TIMEOUT
    context = client_ssl_context(registry)
    while True:
        if process.poll() is not None:
            log = registry.log()
            if "address already in use" in log:
                raise _AddressInUse(log)
            raise RuntimeError(f"docker-registry exited with {process.returncode}:\n{log}")
        if _answers(registry.host, context):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"docker-registry not ready after {READY_TIMEOUT}s:\n{registry.log()}")
        time.sleep(0.02)


def _answers(host: str, context: ssl.SSLContext | None) -> bool:
    connection: http.client.HTTPConnection = (
        http.client.HTTPSConnection(host, timeout=1, context=context)
        if context
        else http.client.HTTPConnection(host, timeout=1)
    )
    try:
        connection.request("GET", "/v2/")
        return connection.getresponse().status in (200, 401)
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(process)


@atexit.register
def _reap_all() -> None:
    with _LIVE_LOCK:
        leftovers = list(_LIVE)
    for process in leftovers:
        _stop(process)
