"""A copy cancelled mid-blob (a signal cancels its job, docs/sync.md#signals) leaves nothing half-pushed:
the upload session is DELETEd, the manifest is never PUT, and the source download stops."""

from __future__ import annotations

import asyncio

import pytest
from harness import images
from harness.faultproxy import BLOB_PATH, FaultProxy, Pace
from registry.fixtures import OCIRegistryFactory

from fluxmirror.auth.credentials import ANONYMOUS, Credential
from fluxmirror.http.session import HttpSession
from fluxmirror.oci.client import Registries
from fluxmirror.oci.copy import CopySession, copy_manifest
from fluxmirror.oci.reference import parse_repository


class Anonymous:
    async def resolve(self, registry: str, repository: str) -> Credential:
        return ANONYMOUS


async def test_a_copy_cancelled_between_its_blobs_and_its_manifest_pushes_no_manifest(
    oci_registry_factory: OCIRegistryFactory, http: HttpSession
) -> None:
    source_registry, destination = oci_registry_factory(), oci_registry_factory()
    image = images.make_image([20_000, 400_000], seed=81)
    images.push(source_registry.registry, "app", "v1", image)
    small, large = image.layers
    with FaultProxy(upstream=source_registry.registry) as slow:
        # about 80 KB/s: the small layer and the config arrive, the large one takes 5 s
        slow.add(Pace(method="GET", path=BLOB_PATH, piece=(4096, 4096), delay=(0.05, 0.05)))
        registries = Registries(http, Anonymous(), retry_delays=())
        source, target = parse_repository(f"{slow.host}/app"), parse_repository(f"{destination.host}/app")
        manifest = await registries.client(source.registry).get_manifest(source.path, "v1")
        assert manifest is not None
        copy = asyncio.ensure_future(copy_manifest(CopySession(registries), source, target, manifest, "v1"))
        committed = f"?digest={small.digest}"
        for _ in range(1000):
            if [e for e in destination.exchanges if e.method == "PUT" and committed in e.target]:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError(f"no commit of the small layer: {destination.requests}")
        await asyncio.sleep(0.2)  # the small layer is in, the large one is streaming
        copy.cancel()
        with pytest.raises(asyncio.CancelledError):
            await copy
        served = sum(r.response_bytes for r in slow.requests if r.path.endswith(large.digest))
    calls = [(e.method, e.target.split("?")[0]) for e in destination.exchanges]
    assert not [call for call in calls if call[0] == "PUT" and "/manifests/" in call[1]]
    assert [method for method, path in calls if "/blobs/uploads/" in path].count("DELETE") == 1
    assert images.get_blob(destination.registry, "app", small.digest) == small.data
    with pytest.raises(images.RegistryError):
        images.get_blob(destination.registry, "app", large.digest)
    assert served < large.size // 2
