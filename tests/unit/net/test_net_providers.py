"""The Actions OIDC provider against endpoints that misbehave: the request token stays with its
origin, and what comes back is read whole, capped, parsed strictly and never echoed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import msgspec
import pytest
from aiohttp import web
from harness.scripted import ScriptedServer

from fluxmirror.api.config import Credential as CredentialSpec
from fluxmirror.api.config import Host
from fluxmirror.auth.credentials import Credential
from fluxmirror.auth.hosts import HostCredentialError, HostsCredentials
from fluxmirror.auth.providers import ProviderError
from fluxmirror.auth.providers.actions import ActionsOIDC
from fluxmirror.http.session import HttpSession

REQUEST_TOKEN = "request-t0ken-from-the-runner"
JWT = "eyJhbGciOiJub25lIn0.eyJleHAiOjE4MDAwMDAwMDB9.c2ln"


def environ(server: ScriptedServer, path: str = "/_apis/token?api-version=2.0") -> dict[str, str]:
    return {"ACTIONS_ID_TOKEN_REQUEST_URL": f"{server.url}{path}", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN}


async def test_the_request_token_is_not_sent_across_a_redirect_to_another_origin(
    http: HttpSession, serve: Callable[..., ScriptedServer]
) -> None:
    async def token(_: web.Request) -> web.StreamResponse:
        return web.json_response({"value": JWT})

    other = serve(token)

    async def redirect(_: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{other.url}/elsewhere")

    first = serve(redirect)
    assert await ActionsOIDC(http, environ(first)).mint("registry.example") == JWT
    assert [seen.authorization for seen in first.seen] == [f"bearer {REQUEST_TOKEN}"]
    assert [seen.authorization for seen in other.seen] == [None]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (web.Response(status=200, body=b'{"value": "a b\\r\\nX: y"}'), "the OIDC token contains characters"),
        (web.Response(status=200, body=b"<html>"), "OIDC token request failed: the response is not valid JSON"),
        (web.Response(status=200, body=b'{"value": ""}'), "the OIDC token response did not contain a token"),
        (web.Response(status=200, body=b'{"value": 7}'), "OIDC token request failed: the response is not valid JSON"),
        (
            web.Response(status=200, body=json.dumps({"value": "x" * (2 << 20)}).encode()),
            "exceeds the limit of 1048576 bytes",
        ),
        (
            web.Response(status=403, reason="Forbidden", text=f"denied for bearer {REQUEST_TOKEN}\n\x1b[31m"),
            "OIDC token request failed with status 403 Forbidden: denied for bearer REDACTED",
        ),
    ],
    ids=["header-injection", "not-json", "empty", "wrong-type", "too-large", "error-echoes-the-token"],
)
async def test_bad_answers_fail_in_one_line_without_the_request_token(
    http: HttpSession, serve: Callable[..., ScriptedServer], answer: web.Response, message: str
) -> None:
    async def handler(_: web.Request) -> web.StreamResponse:
        return answer

    with pytest.raises(ProviderError) as caught:
        await ActionsOIDC(http, environ(serve(handler))).mint("registry.example")
    text = str(caught.value)
    assert message in text
    assert REQUEST_TOKEN not in text and "\n" not in text


async def test_a_request_url_that_is_not_http_is_refused(http: HttpSession) -> None:
    variables = {"ACTIONS_ID_TOKEN_REQUEST_URL": "file:///etc/passwd", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN}
    with pytest.raises(ProviderError, match=r"^ACTIONS_ID_TOKEN_REQUEST_URL is not an http\(s\) URL$"):
        await ActionsOIDC(http, variables).mint("registry.example")


async def test_start_up_minting_is_bounded_by_the_timeout(
    http: HttpSession, serve: Callable[..., ScriptedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def never(_: web.Request) -> web.StreamResponse:
        await asyncio.sleep(30)
        return web.Response(status=500)

    for name, value in environ(serve(never)).items():
        monkeypatch.setenv(name, value)
    spec = msgspec.convert({"provider": "github"}, CredentialSpec)
    hosts = [Host(host="a.example", credential=spec), Host(host="b.example", username="u", credential=spec)]
    source = HostsCredentials(hosts, _NoFallback(), http)
    started = time.monotonic()
    with pytest.raises(HostCredentialError) as caught:
        await source.prefetch(0.2)
    assert str(caught.value) == 'mint credentials for "a.example", "b.example": timed out after 200ms'
    assert time.monotonic() - started < 5


class _NoFallback:
    async def resolve(self, registry: str, repository: str) -> Credential:
        raise AssertionError("only configured hosts are asked")
