"""Hostile-network fixtures; registered from tests/conftest.py via ``pytest_plugins``.

Hostile servers are cheap (aiohttp on a thread), so every test gets fresh ones with empty request
logs; the attacker's log in particular must start empty for "nothing leaked" to mean anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from harness import Credentials
from harness.hostile import HostileRegistry
from harness.pki import PKI

HostileFactory = Callable[..., HostileRegistry]
"""``factory(credentials=None, bearer=False, realm_on_attacker=False) -> HostileRegistry`` (with the session PKI)."""


@pytest.fixture
def hostile_factory(pki: PKI) -> Iterator[HostileFactory]:
    """Builds hostile registries for this test (anonymous, Basic, Bearer, realm on the attacker); all closed at teardown."""
    made: list[HostileRegistry] = []

    def make(
        *, credentials: Credentials | None = None, bearer: bool = False, realm_on_attacker: bool = False
    ) -> HostileRegistry:
        registry = HostileRegistry(credentials=credentials, bearer=bearer, realm_on_attacker=realm_on_attacker, pki=pki)
        made.append(registry)
        return registry

    try:
        yield make
    finally:
        for registry in made:
            registry.close()


@pytest.fixture
def hostile(hostile_factory: HostileFactory) -> HostileRegistry:
    """An anonymous hostile registry with its attacker and untrusted TLS host."""
    return hostile_factory()
