"""Fixtures for the HTTP-layer tests: scripted servers, an HTTP session, registry clients.

Everything here runs in-process on loopback ports (no binary): the in-memory registry of
tests/registry, the fault proxy of tests/harness, and servers scripted for one test.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

import pytest
import pytest_asyncio
from harness.pki import PKI
from harness.scripted import Handler, RawServer, Script, ScriptedServer, Seen

from fluxmirror.auth.credentials import ANONYMOUS, Credential
from fluxmirror.http.session import HttpSession
from fluxmirror.oci.client import USER_AGENT, RegistryClient

TINY_DELAYS = (0.01, 0.01)


class StaticCredentials:
    """The same credential for every registry and repository."""

    def __init__(self, credential: Credential = ANONYMOUS) -> None:
        self.credential = credential
        self.asked: list[tuple[str, str]] = []

    async def resolve(self, registry: str, repository: str) -> Credential:
        self.asked.append((registry, repository))
        return self.credential


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    """``serve(handler, ssl_context=None, host="127.0.0.1")``: a scripted server, closed at teardown."""
    servers: list[ScriptedServer] = []

    def start(
        handler: Handler, *, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1"
    ) -> ScriptedServer:
        server = ScriptedServer(handler, ssl_context=ssl_context, host=host)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def serve_raw() -> Iterator[Callable[[Script | Callable[[Seen], Script]], RawServer]]:
    """``serve_raw(script)``: a server answering every connection with exact bytes, closed at teardown."""
    servers: list[RawServer] = []

    def start(script: Script | Callable[[Seen], Script]) -> RawServer:
        server = RawServer(script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest_asyncio.fixture(loop_scope="function")
async def http() -> AsyncIterator[HttpSession]:
    """An HTTP session made as the CLI makes it, but from an empty environment, so no proxy applies."""
    async with HttpSession(user_agent=USER_AGENT, environ={}) as session:
        yield session


@pytest.fixture
def make_client(http: HttpSession) -> Callable[..., RegistryClient]:
    """``make_client(host, credential=ANONYMOUS, retry_delays=TINY_DELAYS)``: a client on the test's session."""

    def make(
        host: str, credential: Credential = ANONYMOUS, *, retry_delays: Sequence[float] = TINY_DELAYS
    ) -> RegistryClient:
        return RegistryClient(http, host, StaticCredentials(credential), retry_delays=retry_delays)

    return make


@pytest.fixture(scope="session")
def server_tls(pki: PKI) -> ssl.SSLContext:
    """A server context with the test PKI's certificate, which no default trust store accepts."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert_path, pki.server_key_path)
    return context


@pytest.fixture(scope="session")
def client_trusting_test_ca(pki: PKI) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca_path))
