"""An in-memory OCI registry with the OCI 1.1 referrers API, which no available real registry has.

``OCIRegistry`` runs it on a loopback port; ``registry.fixtures`` (a pytest plugin, registered in
tests/conftest.py) provides the fixtures.
"""

from __future__ import annotations

from registry.server import LoggedRequest, OCIRegistry, RegistryApp
from registry.storage import DistributionError, Storage

__all__ = ["DistributionError", "LoggedRequest", "OCIRegistry", "RegistryApp", "Storage"]
