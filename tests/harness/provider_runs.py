"""Running `sync` against a registry whose identity check is a test's function, for the provider tests.

The token server's `password_validator` (or an in-memory registry's bearer validator) stands for
the registry's own check of a credential: an OIDC registry verifying a JWT, ECR comparing its
password, STS answering a GetCallerIdentity replay. `Presented` records what it was shown and when,
so a test can prove which minted credential arrived, and that a long run switched to a fresh one.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import images
from harness.registry import Registry
from harness.runner import Run, entry, sync
from harness.tokenserver import TokenServer

__all__ = ["Check", "Presented", "claims_of", "mirror", "mirror_past_half_life", "push_tags"]

Check = Callable[[str, str], bool]


@dataclass
class Presented:
    """What the registry's identity check was shown: (username, password, accepted) per token request."""

    check: Check
    seen: list[tuple[str, str, bool, float]] = field(default_factory=list)
    delay: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, username: str, password: str) -> bool:
        accepted = self.check(username, password)
        with self._lock:
            self.seen.append((username, password, accepted, time.monotonic()))
        time.sleep(self.delay)
        return accepted

    @property
    def passwords(self) -> list[str]:
        with self._lock:
            return [password for _, password, accepted, _ in self.seen if accepted]


def push_tags(registry: Registry, repo: str, tags: int) -> dict[str, str]:
    """Push `tags` small artifacts (`1.0.0`, `1.0.1`, …) as the harness; their digests by tag."""
    pushed = {}
    for number in range(tags):
        image = images.make_artifact(seed=hash((repo, number)) & 0xFFFF)
        images.push(registry, repo, f"1.0.{number}", image, auth=registry.credentials)
        pushed[f"1.0.{number}"] = image.digest
    return pushed


def mirror(
    tmp_path: Path,
    source: Registry,
    target: Registry,
    repo: str,
    hosts: list[dict[str, Any]],
    env: dict[str, str],
    check: Check,
    *flags: str,
    tags: int = 1,
    delay: float = 0.0,
) -> tuple[Run, Presented]:
    """Push `tags` images to `source` (as the harness), sync them to `target` with only `hosts` and
    `env` to authenticate, and check every digest at the destination (as the harness again). The
    check is `target`'s token server's password check for the run only."""
    pushed = push_tags(source, repo, tags)
    presented = Presented(check, delay=delay)
    token_server = _token_server(target)
    token_server.password_validator = presented
    try:
        selection = {"selector": {"limit": 0}}
        run = sync(tmp_path, [entry(target, target, repo, f"{repo}-m", **selection)], *flags, hosts=hosts, env=env)
    finally:
        token_server.password_validator = None
    assert run.code == 0, run.stdout + run.stderr
    assert {row["tag"]: row["status"] for row in run.rows()} == dict.fromkeys(pushed, "copied")
    for tag, digest in pushed.items():
        assert images.get_manifest(source, f"{repo}-m", tag, auth=source.credentials).digest == digest
    return run, presented


def _token_server(registry: Registry) -> TokenServer:
    assert registry.token_server is not None, "the provider runs need a registry behind the token server"
    return registry.token_server


def claims_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return claims


def mirror_past_half_life(
    tmp_path: Path,
    source: Registry,
    target: Registry,
    repo: str,
    hosts: list[dict[str, Any]],
    env: dict[str, str],
    check: Check,
) -> Presented:
    """`mirror` in a run that outlasts a credential of about 4 s: registry tokens live 1 s, five
    tags go one at a time, and every token request takes 0.4 s, so the registry asks for a
    credential again and again for several seconds (and the stand-in's lifetime knob decides when
    the product must mint a fresh one)."""
    _token_server(target).expires_in = 1
    _, presented = mirror(tmp_path, source, target, repo, hosts, env, check, "--concurrency", "1", tags=5, delay=0.4)
    return presented
