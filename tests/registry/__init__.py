"""An in-memory OCI registry with the OCI 1.1 referrers API, which no available real registry has.

``OCIRegistry`` runs it on a loopback port; ``registry.fixtures`` (a pytest plugin, registered in
tests/conftest.py) provides the fixtures.
"""

from __future__ import annotations

from registry.auth import RegistryAuth
from registry.server import Exchange, LoggedRequest, OCIRegistry, RegistryApp
from registry.storage import DistributionError, Storage

__all__ = ["DistributionError", "Exchange", "LoggedRequest", "OCIRegistry", "RegistryApp", "RegistryAuth", "Storage"]
