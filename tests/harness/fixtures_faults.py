"""The ``fault_proxy`` fixture; registered from tests/conftest.py via ``pytest_plugins``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.faultproxy import FaultProxy
from harness.registry import Registry


@pytest.fixture
def fault_proxy(registry: Registry) -> Iterator[FaultProxy]:
    """A fresh proxy (no rules, empty request log) in front of the session's anonymous registry."""
    with FaultProxy(upstream=registry) as proxy:
        yield proxy
