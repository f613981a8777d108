"""Challenge parsing and which Authorization header each credential kind produces."""

from __future__ import annotations

import base64
import json

import pytest

from fluxmirror.auth.credentials import ANONYMOUS, Credential
from fluxmirror.oci.auth import Authenticator, Challenge, TokenRequest, parse_challenge, pull_scope, push_scope


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"',
            Challenge(
                "bearer",
                {
                    "realm": "https://auth.docker.io/token",
                    "service": "registry.docker.io",
                    "scope": "repository:a/b:pull,push",
                },
            ),
        ),
        ('Basic realm="Registry Realm"', Challenge("basic", {"realm": "Registry Realm"})),
        (
            "BEARER realm=https://x/token, service=svc",
            Challenge("bearer", {"realm": "https://x/token", "service": "svc"}),
        ),
        ('Bearer realm="a\\"b"', Challenge("bearer", {"realm": 'a"b'})),
        ("", None),
    ],
    ids=["docker-hub", "basic", "unquoted", "escaped-quote", "empty"],
)
def test_parse_challenge(header: str, expected: Challenge | None) -> None:
    assert parse_challenge(header) == expected


class _Fixed:
    def __init__(self, credential: Credential) -> None:
        self.credential = credential

    async def resolve(self, registry: str, repository: str) -> Credential:
        return self.credential


class _TokenEndpoint:
    """Records token requests and answers each with a numbered token."""

    def __init__(self) -> None:
        self.requests: list[TokenRequest] = []

    async def __call__(self, request: TokenRequest) -> bytes:
        self.requests.append(request)
        return json.dumps({"token": f"t{len(self.requests)}", "expires_in": 300}).encode()


BEARER = Challenge("bearer", {"realm": "https://auth.example/token", "service": "registry.example"})


async def test_registry_token_is_sent_as_bearer_without_exchange() -> None:
    endpoint = _TokenEndpoint()
    auth = Authenticator("r.example", BEARER, _Fixed(Credential(registry_token="rt")), endpoint)
    assert await auth.authorization("a/b", [pull_scope("a/b")]) == "Bearer rt"
    assert endpoint.requests == []


async def test_basic_challenge_sends_basic_credentials() -> None:
    auth = Authenticator("r.example", Challenge("basic"), _Fixed(Credential("u", "p")), _TokenEndpoint())
    assert await auth.authorization("a/b", []) == "Basic " + base64.b64encode(b"u:p").decode()
    anonymous = Authenticator("r.example", Challenge("basic"), _Fixed(ANONYMOUS), _TokenEndpoint())
    assert await anonymous.authorization("a/b", []) is None


async def test_open_registry_needs_no_header() -> None:
    assert (
        await Authenticator("r.example", None, _Fixed(Credential("u", "p")), _TokenEndpoint()).authorization("a", [])
        is None
    )


async def test_bearer_tokens_are_cached_per_scope_set_and_shared() -> None:
    endpoint = _TokenEndpoint()
    auth = Authenticator("r.example", BEARER, _Fixed(Credential("u", "p")), endpoint)
    pull = [pull_scope("a/b")]
    assert await auth.authorization("a/b", pull) == "Bearer t1"
    assert await auth.authorization("a/b", pull) == "Bearer t1"
    assert await auth.authorization("c/d", [push_scope("c/d"), pull_scope("a/b")]) == "Bearer t2"
    request = endpoint.requests[1]
    assert (request.method, request.url) == ("GET", "https://auth.example/token")
    assert list(request.params) == [
        ("service", "registry.example"),
        ("scope", "repository:a/b:pull"),
        ("scope", "repository:c/d:pull,push"),
    ]
    assert request.authorization == "Basic " + base64.b64encode(b"u:p").decode()


async def test_identity_token_uses_the_oauth_refresh_grant() -> None:
    endpoint = _TokenEndpoint()
    auth = Authenticator("r.example", BEARER, _Fixed(Credential(username="<token>", identity_token="rt")), endpoint)
    await auth.authorization("a/b", [pull_scope("a/b")])
    (request,) = endpoint.requests
    assert request.method == "POST" and request.authorization is None
    assert dict(request.form or ()) == {
        "grant_type": "refresh_token",
        "refresh_token": "rt",
        "service": "registry.example",
        "scope": "repository:a/b:pull",
        "client_id": "fluxmirror",
    }


async def test_rechallenge_drops_the_cached_token() -> None:
    endpoint = _TokenEndpoint()
    auth = Authenticator("r.example", BEARER, _Fixed(ANONYMOUS), endpoint)
    scopes = [pull_scope("a/b")]
    assert await auth.authorization("a/b", scopes) == "Bearer t1"
    auth.rechallenge(
        'Bearer realm="https://auth.example/token",service="registry.example",error="invalid_token"', scopes
    )
    assert await auth.authorization("a/b", scopes) == "Bearer t2"
    assert endpoint.requests[0].authorization is None
