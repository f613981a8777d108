"""TUF repository fixtures; registered from tests/conftest.py via ``pytest_plugins``.

A repository is cheap (four fresh ECDSA keys and an in-memory aiohttp app on a thread), so every
test gets its own: fresh keys, version 1 of every role, an empty request log, and no state a
previous test's rotation or tampering could leave behind.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.tufrepo import PLACEHOLDER_TRUSTED_ROOT, TRUSTED_ROOT, TufRepository


@pytest.fixture
def tuf_repository(no_proxy_environment: None) -> Iterator[TufRepository]:
    """A fresh repository serving one target, ``trusted_root.json`` (``PLACEHOLDER_TRUSTED_ROOT``).

    Replace it with ``tuf_repository.set_target(TRUSTED_ROOT, data)``. The proxy variables are
    removed first: python-tuf's fetcher sends even ``127.0.0.1`` through ``http_proxy`` unless
    ``no_proxy`` names it, so a developer's proxy would otherwise decide where requests go.
    """
    with TufRepository({TRUSTED_ROOT: PLACEHOLDER_TRUSTED_ROOT}) as repository:
        yield repository
