"""Plain HTTP (docs/sync.md#schemes): which registries may be reached without TLS, and where
credentials may travel without it.

As go-containerregistry does, loopback, `*.local` and RFC 1918 registries are tried over HTTPS
and then over plain HTTP without `--insecure`; fluxmirror sends credentials over plain HTTP only to
loopback (or anywhere with `--insecure`). A `.local` name cannot resolve here and no test may
send a packet to a private address, so the decisions are checked directly, and the `.local`
registry end to end is reached through a forward proxy on loopback that plays the registry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web
from harness import TEST_USER
from harness.scripted import ScriptedServer, Serve
from yarl import URL

from fluxmirror.auth.credentials import ANONYMOUS, Credential
from fluxmirror.http.errors import NetworkError
from fluxmirror.http.session import HttpSession
from fluxmirror.oci.client import USER_AGENT, RegistryClient, is_loopback, is_private
from fluxmirror.oci.errors import OCIError

USER = Credential(TEST_USER.username, TEST_USER.password)


class StaticCredentials:
    """The same credential for every registry."""

    def __init__(self, credential: Credential = ANONYMOUS) -> None:
        self.credential = credential

    async def resolve(self, registry: str, repository: str) -> Credential:
        return self.credential


@pytest.mark.parametrize(
    ("registry", "loopback", "private"),
    [
        ("localhost", True, False),
        ("localhost:5000", True, False),
        ("LOCALHOST:5000", True, False),
        ("registry.localhost:5000", True, False),
        ("127.0.0.1:5000", True, False),
        ("127.1.2.3", True, False),
        ("[::1]:5000", True, False),
        ("[::1]", True, False),
        ("registry.local", False, True),
        ("registry.local:5000", False, True),
        ("Registry.LOCAL:5000", False, True),
        ("a.b.local", False, True),
        ("10.0.0.1", False, True),
        ("10.255.255.255:5000", False, True),
        ("172.16.0.1:443", False, True),
        ("172.31.255.255", False, True),
        ("192.168.1.10:5000", False, True),
        # neither
        ("local", False, False),
        ("registry.localdomain", False, False),
        ("registry.local.example.com", False, False),
        ("10.0.0.1.nip.io", False, False),
        ("127.0.0.1.nip.io", False, False),
        ("11.0.0.1", False, False),
        ("172.15.255.255", False, False),
        ("172.32.0.1", False, False),
        ("192.169.0.1", False, False),
        ("100.64.0.1", False, False),
        ("169.254.0.1", False, False),
        ("[fd00::1]:5000", False, False),
        ("010.0.0.1", False, False),
        ("ghcr.io", False, False),
    ],
)
def test_loopback_and_private_registries(registry: str, loopback: bool, private: bool) -> None:
    assert (is_loopback(registry), is_private(registry)) == (loopback, private)


@pytest.mark.parametrize(
    ("registry", "insecure", "schemes"),
    [
        ("ghcr.io", False, ("https",)),
        ("registry.example.com:5000", False, ("https",)),
        ("localhost:5000", False, ("https", "http")),
        ("127.0.0.1:5000", False, ("https", "http")),
        ("[::1]:5000", False, ("https", "http")),
        ("registry.local:5000", False, ("https", "http")),
        ("10.1.2.3:5000", False, ("https", "http")),
        ("172.20.0.5", False, ("https", "http")),
        ("192.168.0.2:5000", False, ("https", "http")),
        ("ghcr.io", True, ("https", "http")),
    ],
)
def test_schemes(http: HttpSession, registry: str, insecure: bool, schemes: tuple[str, ...]) -> None:
    assert RegistryClient(http, registry, StaticCredentials(), insecure=insecure).schemes() == schemes


@pytest.mark.parametrize(
    ("url", "insecure", "allowed"),
    [
        ("https://ghcr.io/v2/", False, True),
        ("https://registry.local:5000/v2/", False, True),
        ("https://10.1.2.3:5000/v2/", False, True),
        ("http://localhost:5000/v2/", False, True),
        ("http://127.0.0.1:5000/v2/", False, True),
        ("http://[::1]:5000/v2/", False, True),
        ("http://registry.local:5000/v2/", False, False),
        ("http://10.1.2.3:5000/v2/", False, False),
        ("http://172.16.0.1/v2/", False, False),
        ("http://192.168.0.2:5000/v2/", False, False),
        ("http://ghcr.io/v2/", False, False),
        ("http://registry.local:5000/v2/", True, True),
        ("http://10.1.2.3:5000/v2/", True, True),
        ("http://ghcr.io/v2/", True, True),
    ],
)
def test_credentials_over_plain_http_only_to_loopback(
    http: HttpSession, url: str, insecure: bool, allowed: bool
) -> None:
    client = RegistryClient(http, URL(url).raw_authority, StaticCredentials(), insecure=insecure)
    assert client._may_carry_credentials(URL(url)) is allowed


# --- end to end --------------------------------------------------------------------------------


def _basic_registry(serve: Serve) -> ScriptedServer:
    """A registry over plain HTTP demanding TEST_USER as Basic everywhere, `/v2/` included. As a
    forward proxy it also plays any registry name (absolute-form targets), and refuses CONNECT."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != TEST_USER.basic_header():
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        if request.path == "/v2/":
            return web.json_response({})
        return web.json_response({"name": "app", "tags": ["v1"]})

    return serve(handler)


async def test_loopback_over_plain_http_gets_its_credentials(serve: Serve, http: HttpSession) -> None:
    server = _basic_registry(serve)
    client = RegistryClient(http, server.host, StaticCredentials(USER))
    assert await client.list_tags("app") == ["v1"]
    assert client.base_url == server.url
    assert [s.authorization for s in server.seen if "tags" in s.target] == [TEST_USER.basic_header()]


@pytest_asyncio.fixture(loop_scope="function")
async def proxy_and_session(serve: Serve) -> AsyncIterator[tuple[ScriptedServer, HttpSession]]:
    proxy = _basic_registry(serve)
    async with HttpSession(user_agent=USER_AGENT, environ={"HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url}) as http:
        yield proxy, http


async def test_a_local_registry_falls_back_to_plain_http_but_gets_no_credentials(
    proxy_and_session: tuple[ScriptedServer, HttpSession],
) -> None:
    proxy, http = proxy_and_session
    client = RegistryClient(http, "registry.local:5000", StaticCredentials(USER))

    with pytest.raises(OCIError) as caught:
        await client.list_tags("app")

    assert client.base_url == "http://registry.local:5000"  # HTTPS (a refused CONNECT) failed first
    assert str(caught.value) == (
        "GET http://registry.local:5000/v2/app/tags/list?n=1000: the registry asks for credentials, which are never"
        " sent over plain HTTP to a host that is not loopback; pass --insecure to send them"
    )
    assert not caught.value.temporary
    assert [(s.target, s.authorization) for s in proxy.seen] == [
        ("http://registry.local:5000/v2/", None),
        ("http://registry.local:5000/v2/app/tags/list?n=1000", None),
    ]


async def test_insecure_sends_credentials_to_a_local_registry(
    proxy_and_session: tuple[ScriptedServer, HttpSession],
) -> None:
    proxy, http = proxy_and_session
    client = RegistryClient(http, "registry.local:5000", StaticCredentials(USER), insecure=True)
    assert await client.list_tags("app") == ["v1"]
    assert [s.authorization for s in proxy.seen if "tags" in s.target] == [TEST_USER.basic_header()]


async def test_an_anonymous_local_registry_over_plain_http_works_without_insecure(serve: Serve) -> None:
    async def open_registry(request: web.Request) -> web.StreamResponse:
        if request.path == "/v2/":
            return web.json_response({})
        return web.json_response({"name": "app", "tags": ["v1", "v2"]})

    proxy = serve(open_registry)
    async with HttpSession(user_agent=USER_AGENT, environ={"HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url}) as http:
        client = RegistryClient(http, "registry.local", StaticCredentials(ANONYMOUS))
        assert await client.list_tags("app") == ["v1", "v2"]
        assert client.base_url == "http://registry.local"


async def test_a_public_name_gets_no_plain_http_fallback(proxy_and_session: tuple[ScriptedServer, HttpSession]) -> None:
    proxy, http = proxy_and_session
    with pytest.raises(NetworkError):
        await RegistryClient(http, "registry.example.com:5000", StaticCredentials(USER)).list_tags("app")
    assert proxy.seen == []  # only the refused CONNECT for HTTPS, never a plain-HTTP request
