"""Forward-proxy fixtures; registered from tests/conftest.py via ``pytest_plugins``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.forwardproxy import PROXY_VARIABLES, ForwardProxy


@pytest.fixture
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every proxy variable from this process, so a subprocess sees only what its test sets.

    ``harness.runner.sync`` starts from ``os.environ``: a developer's own HTTPS_PROXY or NO_PROXY
    would otherwise decide where a test's traffic goes.
    """
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def forward_proxy(no_proxy_environment: None) -> Iterator[ForwardProxy]:
    """A fresh proxy without authentication: no routes, empty request log."""
    with ForwardProxy() as proxy:
        yield proxy
