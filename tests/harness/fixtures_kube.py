"""The ``kube_api`` fixture; registered from tests/conftest.py via ``pytest_plugins``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.kubeapi import KubeAPI
from harness.pki import PKI

KUBE_TOKEN = "kube-api-t0ken"


@pytest.fixture
def kube_api(pki: PKI) -> Iterator[KubeAPI]:
    """A fresh API server (no Secrets, empty request log) accepting ``Bearer KUBE_TOKEN``."""
    server = KubeAPI(pki, KUBE_TOKEN)
    try:
        yield server
    finally:
        server.close()
