"""`--adaptive` on real transfers against the in-memory registry (docs/sync.md#adaptive): a
streamed copy holds a slot on both of its hosts and runs its requests in them."""

from __future__ import annotations

import asyncio

from harness import images
from registry.fixtures import OCIRegistryFactory

from fluxmirror.http.session import HttpSession
from fluxmirror.oci.adaptive import AdaptiveLimits
from fluxmirror.oci.blobs import WHOLE_MAX, Placement, RegistrySource, transfer_blob
from fluxmirror.oci.client import RegistryClient
from fluxmirror.oci.manifests import Descriptor

from .conftest import TINY_DELAYS, StaticCredentials


async def test_streamed_copies_both_ways_at_a_limit_of_one_finish(
    oci_registry_factory: OCIRegistryFactory, http: HttpSession
) -> None:
    """With one slot per host, a copy A -> B and a copy B -> A at once: an upload that held its
    destination's only slot while its body waited for its source's would block the other for good."""
    limits = AdaptiveLimits(1)
    servers = {name: oci_registry_factory() for name in "ab"}
    clients = {
        name: RegistryClient(
            http, server.host, StaticCredentials(), retry_delays=TINY_DELAYS, gate=limits.gate(server.host)
        )
        for name, server in servers.items()
    }
    blobs = {}
    for name, server in servers.items():
        image = images.make_image([WHOLE_MAX + 100_000], seed=ord(name))
        images.push(server.registry, "src", "v1", image)
        layer = image.layers[0]
        blobs[name] = Descriptor(media_type=layer.media_type, digest=layer.digest, size=layer.size)

    async with asyncio.timeout(5):
        placements = await asyncio.gather(
            transfer_blob(RegistrySource(clients["a"], "src"), clients["b"], "dst", blobs["a"]),
            transfer_blob(RegistrySource(clients["b"], "src"), clients["a"], "dst", blobs["b"]),
        )

    assert list(placements) == [Placement.PUSHED, Placement.PUSHED]
    for source, destination in (("a", "b"), ("b", "a")):
        assert images.get_blob(servers[destination].registry, "dst", blobs[source].digest) == images.get_blob(
            servers[source].registry, "src", blobs[source].digest
        )
    assert limits.limits() == {servers["a"].host: 1, servers["b"].host: 1}
    assert [gate.host.in_flight for gate in map(limits.gate, limits.limits())] == [0, 0]
