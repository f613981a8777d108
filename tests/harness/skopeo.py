"""skopeo as the independent second client, isolated from every ambient configuration.

Each call gets an empty auth file, an accept-anything policy, an empty registries.conf and
an empty registries.d, so results depend only on the arguments a test passes.
``--preserve-digests`` is always on for copies: tests compare bytes and digests, so skopeo
must fail rather than silently rewrite a manifest.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness import Credentials

SKOPEO_BIN = shutil.which("skopeo") or "/usr/bin/skopeo"


class SkopeoError(RuntimeError):
    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        super().__init__(f"skopeo {' '.join(args)} exited {returncode}: {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


@dataclass(frozen=True)
class _Isolation:
    authfile: Path
    policy: Path
    registries_d: Path
    env: dict[str, str]


@functools.cache
def isolation() -> _Isolation:
    root = Path(tempfile.mkdtemp(prefix="fluxmirror-skopeo-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    authfile = root / "auth.json"
    authfile.write_text('{"auths": {}}')
    policy = root / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    registries_conf = root / "registries.conf"
    registries_conf.write_text("")
    registries_d = root / "registries.d"
    registries_d.mkdir()
    docker_config = root / "docker"
    docker_config.mkdir()
    (docker_config / "config.json").write_text("{}")
    env = os.environ | {
        "CONTAINERS_REGISTRIES_CONF": str(registries_conf),
        "REGISTRY_AUTH_FILE": str(authfile),
        "DOCKER_CONFIG": str(docker_config),
    }
    return _Isolation(authfile, policy, registries_d, env)


def _run(args: list[str], env: Mapping[str, str] | None = None) -> bytes:
    """Run skopeo isolated; ``env`` adds variables on top, e.g. HTTPS_PROXY for harness.forwardproxy."""
    sandbox = isolation()
    command = [
        SKOPEO_BIN,
        "--policy",
        str(sandbox.policy),
        "--registries.d",
        str(sandbox.registries_d),
        "--command-timeout",
        "60s",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, env=sandbox.env | dict(env or {}), timeout=120, check=False)
    if result.returncode != 0:
        raise SkopeoError(args, result.returncode, result.stderr.decode(errors="replace"))
    return result.stdout


def access(prefix: str, creds: Credentials | None, tls_verify: bool, cert_dir: Path | None) -> list[str]:
    """The per-side flags; ``prefix`` is "" for single-image commands, "src-"/"dest-" for copy."""
    args = [f"--{prefix}authfile", str(isolation().authfile), f"--{prefix}tls-verify={str(tls_verify).lower()}"]
    args += [f"--{prefix}creds", creds.skopeo()] if creds else [f"--{prefix}no-creds"]
    if cert_dir is not None:
        args += [f"--{prefix}cert-dir", str(cert_dir)]
    return args


def inspect_raw(
    ref: str,
    *,
    creds: Credentials | None = None,
    tls_verify: bool = False,
    cert_dir: Path | None = None,
    config: bool = False,
    env: Mapping[str, str] | None = None,
) -> bytes:
    """The manifest (or with ``config`` the config blob) exactly as the registry serves it."""
    flags = ["--raw", *(["--config"] if config else [])]
    return _run(["inspect", *flags, *access("", creds, tls_verify, cert_dir), ref], env)


def list_tags(
    ref: str,
    *,
    creds: Credentials | None = None,
    tls_verify: bool = False,
    cert_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    output = _run(["list-tags", *access("", creds, tls_verify, cert_dir), ref], env)
    return list(json.loads(output).get("Tags") or [])


def copy(
    src: str,
    dest: str,
    *,
    src_creds: Credentials | None = None,
    dest_creds: Credentials | None = None,
    src_tls_verify: bool = False,
    dest_tls_verify: bool = False,
    src_cert_dir: Path | None = None,
    dest_cert_dir: Path | None = None,
    all_images: bool = False,
    env: Mapping[str, str] | None = None,
) -> None:
    """Copy between any two skopeo transports (``docker://``, ``oci:``, ...), byte for byte."""
    _run(
        [
            "copy",
            "--quiet",
            "--preserve-digests",
            *(["--all"] if all_images else []),
            *access("src-", src_creds, src_tls_verify, src_cert_dir),
            *access("dest-", dest_creds, dest_tls_verify, dest_cert_dir),
            src,
            dest,
        ],
        env,
    )
