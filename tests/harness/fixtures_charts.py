"""Chart-repository fixtures; registered from tests/conftest.py via ``pytest_plugins``.

Repositories are cheap (an in-memory aiohttp app on a thread), so every test gets fresh ones with
empty content and request logs instead of sharing session state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from harness.chartrepo import ChartRepository, ChartRepositoryFactory
from harness.charts import repositories_yaml
from harness.pki import PKI

WriteRepositories = Callable[..., Path]
"""``write(*entries, complete=True, name="repositories.yaml") -> Path`` (see ``helm_repositories_yaml``)."""


@pytest.fixture
def chart_repo() -> Iterator[ChartRepository]:
    """A fresh plain-HTTP repository at the root path: no auth, no charts, empty request log."""
    with ChartRepository() as repository:
        yield repository


@pytest.fixture
def chart_repo_factory(pki: PKI) -> Iterator[ChartRepositoryFactory]:
    """Builds repository variants for this test, e.g. ``chart_repo_factory(credentials=TEST_USER, tls=True)``.

    Keywords: ``credentials``, ``tls``, ``require_client_cert`` (implies TLS), ``base_path``,
    ``required_query``, ``hostname``. All are closed at teardown.
    """
    factory = ChartRepositoryFactory(pki)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def helm_repositories_yaml(tmp_path: Path) -> WriteRepositories:
    """Writes a Helm ``repositories.yaml`` under tmp_path and returns its path.

    Entries are mappings such as ``ChartRepository.repositories_entry()``; with ``complete`` every
    field Helm writes is filled in, and ``None`` values are left out. The test points
    ``HELM_REPOSITORY_CONFIG`` at the returned path itself, so it decides when the file applies.
    """

    def write(*entries: Mapping[str, Any], complete: bool = True, name: str = "repositories.yaml") -> Path:
        path = tmp_path / "helm" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(repositories_yaml(entries, complete=complete))
        return path

    return write
