"""SPIFFE host contexts in one process: the run's X.509 source feeds every SPIFFE host, a rotated SVID
reaches new connections within the same run, a failed rebuild keeps the previous context, a foreign
CA's SVID with the right ID is refused, and missing py-spiffe is one line naming the extra."""

from __future__ import annotations

import asyncio
import ssl
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import msgspec
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from harness.background import BackgroundLoop
from harness.spiffe import FakeWorkloadAPI, RecordingTLSServer, SpiffeCA, workload_api
from yarl import URL

from fluxmirror.api.config import Host
from fluxmirror.errors import ConfigError
from fluxmirror.http.spiffe import RotatingContext, ServerRule, SvidMaterial, open_x509_source, spiffe_context
from fluxmirror.http.tls import HostTLS, TLSSettingsError
from fluxmirror.sync.host_tls import host_tls

MIRROR_ID = "spiffe://example.org/mirror"
SERVER_ID = "spiffe://example.org/server"


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SpiffeCA, FakeWorkloadAPI]]:
    with tempfile.TemporaryDirectory(prefix="fm-spiffe-") as directory:
        ca = SpiffeCA("example.org")
        with workload_api(Path(directory, "agent.sock"), ca, MIRROR_ID) as (api, endpoint):
            monkeypatch.setenv("SPIFFE_ENDPOINT_SOCKET", endpoint)
            yield ca, api


@pytest.fixture
def loop() -> Iterator[BackgroundLoop]:
    background = BackgroundLoop("spiffe-unit")
    try:
        yield background
    finally:
        background.close()


def _host(host: str, tls: dict[str, object]) -> Host:
    return msgspec.convert({"host": host, "tls": tls}, Host)


async def _request(choice: HostTLS, host: str) -> None:
    url = URL(f"https://{host}/v2/")
    async with aiohttp.ClientSession() as session, session.get(url, ssl=choice(url)) as response:
        assert response.status == 404


async def _request_on(session: aiohttp.ClientSession, choice: HostTLS, host: str) -> None:
    url = URL(f"https://{host}/v2/")
    async with session.get(url, ssl=choice(url)) as response:
        await response.read()


async def test_a_rotated_svid_reaches_new_connections_within_the_run(
    agent: tuple[SpiffeCA, FakeWorkloadAPI], loop: BackgroundLoop, tmp_path: Path
) -> None:
    ca, api = agent
    server = RecordingTLSServer(loop, ca.issue(SERVER_ID), ca, tmp_path)
    try:
        tls = {"serverAuth": {"spiffe": {"trustDomain": "self"}}, "clientAuth": {"provider": "x509-svid"}}
        choice = await asyncio.to_thread(host_tls, [_host(server.host, tls)], insecure=False)
        try:
            url = URL(f"https://{server.host}/v2/")
            before = choice(url)
            async with aiohttp.ClientSession() as session:
                await _request_on(session, choice, server.host)
                first = api.svid.serial
                second = (await asyncio.to_thread(api.rotate)).serial
                deadline = time.monotonic() + 10
                while choice(url) is before:
                    assert time.monotonic() < deadline, "the context was not rebuilt"
                    await asyncio.sleep(0.05)
                await _request_on(session, choice, server.host)  # same session: a new connection
            assert [c.client_serial for c in server.connections] == [first, second]
        finally:
            await asyncio.to_thread(choice.close)
    finally:
        server.close()


async def test_a_foreign_svid_with_the_right_id_is_refused(
    agent: tuple[SpiffeCA, FakeWorkloadAPI], loop: BackgroundLoop, tmp_path: Path
) -> None:
    server = RecordingTLSServer(loop, SpiffeCA("example.org").issue(SERVER_ID), agent[0], tmp_path)
    try:
        choice = await asyncio.to_thread(
            host_tls, [_host(server.host, {"serverAuth": {"spiffe": {"serverID": SERVER_ID}}})], insecure=False
        )
        try:
            with pytest.raises(aiohttp.ClientConnectorCertificateError) as caught:
                await _request(choice, server.host)
            error = caught.value.certificate_error
            assert isinstance(error, ssl.SSLCertVerificationError)
            assert error.verify_code == 20  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
            assert sum(c.received for c in server.connections) == 0
        finally:
            await asyncio.to_thread(choice.close)
    finally:
        server.close()


def test_a_failed_rebuild_keeps_the_previous_context() -> None:
    material = SvidMaterial("spiffe://example.org/a", b"", b"", {})
    built: list[ssl.SSLContext] = []

    def build(update: SvidMaterial) -> ssl.SSLContext:
        if update.spiffe_id.endswith("/broken"):
            raise TLSSettingsError("spiffe: broken")
        built.append(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
        return built[-1]

    holder = RotatingContext("reg.example", build, material)
    holder.refresh(SvidMaterial("spiffe://example.org/broken", b"", b"", {}))
    assert holder.current is built[0]
    holder.refresh(material)
    assert holder.current is built[1]


def test_without_py_spiffe_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "spiffe", None)
    with pytest.raises(TLSSettingsError, match=r"pip install 'fluxmirror\[spiffe\]'"):
        open_x509_source()


@pytest.mark.parametrize("endpoint", [None, "unix:///nonexistent/agent.sock"], ids=["unset", "no-such-socket"])
def test_a_missing_socket_names_the_host(monkeypatch: pytest.MonkeyPatch, endpoint: str | None) -> None:
    if endpoint is None:
        monkeypatch.delenv("SPIFFE_ENDPOINT_SOCKET", raising=False)
    else:
        monkeypatch.setenv("SPIFFE_ENDPOINT_SOCKET", endpoint)
    hosts = [_host("plain.example", {}), _host("reg.example", {"clientAuth": {"provider": "x509-svid"}})]
    with pytest.raises(ConfigError, match=r'^host "reg.example": tls: spiffe: create X.509 source: \S'):
        host_tls(hosts, insecure=False)


def test_insecure_skips_the_server_checks_but_keeps_the_client_svid(agent: tuple[SpiffeCA, FakeWorkloadAPI]) -> None:
    ca, api = agent
    material = SvidMaterial(
        MIRROR_ID,
        api.svid.certificate.public_bytes(Encoding.PEM),
        api.svid.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
        {"example.org": ca.pem},
    )
    context = spiffe_context(
        material, server=ServerRule(server_id=SERVER_ID), ca_pem=None, client_svid=True, client_pem=None, insecure=True
    )
    assert (context.verify_mode, context.check_hostname, context.sslobject_class) == (
        ssl.CERT_NONE,
        False,
        ssl.SSLObject,
    )
    secure = spiffe_context(
        material, server=ServerRule(server_id=SERVER_ID), ca_pem=None, client_svid=True, client_pem=None, insecure=False
    )
    assert secure.verify_mode == ssl.CERT_REQUIRED and secure.sslobject_class is not ssl.SSLObject
