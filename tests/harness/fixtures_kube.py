"""The ``kube_api`` fixture and a kubeconfig that reaches it; registered from tests/conftest.py via
``pytest_plugins``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

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


def write_kubeconfig(tmp_path: Path, api: KubeAPI, pki: PKI, namespace: str | None = "team") -> Path:
    """A kubeconfig under ``tmp_path`` whose current context reaches ``api`` as ``KUBE_TOKEN``."""
    context: dict[str, str] = {"cluster": "test", "user": "robot"}
    if namespace:
        context["namespace"] = namespace
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "test",
        "contexts": [{"name": "test", "context": context}],
        "clusters": [{"name": "test", "cluster": {"server": api.url, "certificate-authority": str(pki.ca_path)}}],
        "users": [{"name": "robot", "user": {"token": KUBE_TOKEN}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path
