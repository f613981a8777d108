"""Fixtures for the in-memory referrers registry; registered from tests/conftest.py via ``pytest_plugins``.

One session-wide instance serves most tests (they keep to ``unique_repo`` repositories);
``oci_registry_factory`` makes throwaway ones with other options, closed at teardown.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.auth import RegistryAuth
from registry.server import OCIRegistry


class OCIRegistryFactory:
    """Starts extra registries (e.g. ``referrers_api=False``, ``auth=RegistryAuth.token()``) and closes them all at once."""

    def __init__(self, base_dir: Path) -> None:
        self._base_dir = base_dir
        self._count = itertools.count(1)
        self._servers: list[OCIRegistry] = []

    def __call__(
        self,
        *,
        referrers_api: bool = True,
        referrers_page_size: int | None = None,
        auth: RegistryAuth | None = None,
        keep_partial_chunks: bool = False,
    ) -> OCIRegistry:
        server = OCIRegistry(
            self._base_dir / f"oci-registry-{next(self._count)}",
            referrers_api=referrers_api,
            referrers_page_size=referrers_page_size,
            auth=auth,
            keep_partial_chunks=keep_partial_chunks,
        )
        self._servers.append(server)
        return server

    def close(self) -> None:
        while self._servers:
            self._servers.pop().close()


@pytest.fixture(scope="session")
def referrers_registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OCIRegistry]:
    """The session's registry with the referrers API, unpaged; content accumulates across tests."""
    with OCIRegistry(tmp_path_factory.mktemp("oci-registry")) as server:
        yield server


@pytest.fixture
def referrers_registry(referrers_registry_server: OCIRegistry) -> OCIRegistry:
    """The session's registry with an empty request log for this test."""
    referrers_registry_server.reset()
    return referrers_registry_server


@pytest.fixture
def oci_registry_factory(tmp_path: Path) -> Iterator[OCIRegistryFactory]:
    factory = OCIRegistryFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.close()
