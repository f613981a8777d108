"""Session fixtures for the virtual Sigstore (``harness.sigstore``).

Why session scope: key generation is cheap, but a stable trusted root per session lets product
tests share one ``trusted_root.json`` path, and ``other_sigstore`` gives an independent,
untrusted instance for "signed by somebody else" cases.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.sigstore import VirtualSigstore


@pytest.fixture(scope="session")
def virtual_sigstore() -> VirtualSigstore:
    """The trusted instance: its root is what ``trusted_root_path`` holds."""
    return VirtualSigstore("trusted")


@pytest.fixture(scope="session")
def other_sigstore() -> VirtualSigstore:
    """A second instance nobody trusts (foreign CA, CT log and Rekor keys)."""
    return VirtualSigstore("foreign")


@pytest.fixture(scope="session")
def trusted_root_path(tmp_path_factory: pytest.TempPathFactory, virtual_sigstore: VirtualSigstore) -> Path:
    """``virtual_sigstore``'s trusted_root.json, written once per session."""
    return virtual_sigstore.write_trusted_root(tmp_path_factory.mktemp("sigstore") / "trusted_root.json")
