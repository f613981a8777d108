"""RegistryClient against the in-memory registry (with its optional auth), the fault proxy in front of
it, and registries scripted for one corner case: challenges, tokens, where credentials go, retries,
tag paging and manifest checks."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from harness import TEST_USER, images
from harness.faultproxy import FaultProxy, RedirectToBlobHost, Respond
from harness.scripted import ScriptedServer, Seen, Serve, ServeRaw
from registry.auth import RegistryAuth
from registry.fixtures import OCIRegistryFactory
from registry.server import OCIRegistry

from fluxmirror.auth.credentials import Credential
from fluxmirror.http.errors import BodyError, TransportError
from fluxmirror.oci.blobs import WHOLE_MAX, BytesSource, Placement, RegistrySource, blob_exists, transfer_blob
from fluxmirror.oci.client import MAX_MANIFEST_BYTES, RegistryClient
from fluxmirror.oci.errors import DigestMismatchError, OCIError, RegistryError
from fluxmirror.oci.manifests import Descriptor

MakeClient = Callable[..., RegistryClient]
USER = Credential(TEST_USER.username, TEST_USER.password)
TOOMANYREQUESTS = json.dumps({"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down", "detail": None}]})


def _push_tags(server: OCIRegistry, repository: str, tags: list[str]) -> None:
    for number, tag in enumerate(tags):
        images.push(server.registry, repository, tag, images.make_artifact(seed=900 + number), auth=TEST_USER)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _scripted_registry(serve: Serve, answer: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> ScriptedServer:
    """A registry whose `/v2/` answers 200 (no auth) and whose every other answer is `answer`'s."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/v2/":
            return web.json_response({})
        return await answer(request)

    return serve(handler)


def _targets(server: OCIRegistry, method: str, fragment: str) -> list[str]:
    return [
        exchange.target for exchange in server.exchanges if exchange.method == method and fragment in exchange.target
    ]


# --- ping, challenges and tokens ---------------------------------------------------------------


async def test_requests_share_the_ping_in_flight_and_a_failed_one_is_tried_again(
    serve: Serve, make_client: MakeClient
) -> None:
    """A ping started ahead (the run's pings at start) is joined by the requests that follow; when
    it fails (here: HTTPS refused, then a 503 over plain HTTP; the HTTPS error is the one kept),
    every request waiting for it fails with its error, and the next request pings again."""
    pings = 0
    failing = True

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal pings
        if request.path == "/v2/":
            pings += 1
            await asyncio.sleep(0.2)
            return web.Response(status=503 if failing else 200)
        return web.json_response({"name": "app", "tags": ["a"]})

    client = make_client(serve(handler).host, retry_delays=())
    client.start_ping()
    waiting = await asyncio.gather(*(client.list_tags("app") for _ in range(3)), return_exceptions=True)
    assert pings == 1
    assert isinstance(waiting[0], TransportError) and all(outcome is waiting[0] for outcome in waiting)
    failing = False
    assert list(await asyncio.gather(client.list_tags("app"), client.list_tags("app"))) == [["a"], ["a"]]
    assert pings == 2


async def test_a_basic_challenge_learned_at_ping_is_answered_on_every_request(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    server = oci_registry_factory(auth=RegistryAuth.basic(TEST_USER))
    _push_tags(server, "app", ["v1"])
    server.reset()
    client = make_client(server.host, USER)

    assert await client.list_tags("app") == ["v1"]
    assert await client.head_manifest("app", "v1") is not None

    assert client.base_url == server.url  # HTTPS failed first, as it does for a loopback registry
    assert [(e.method, e.target, e.authorization) for e in server.exchanges] == [
        ("GET", "/v2/", None),
        ("GET", "/v2/app/tags/list?n=1000", TEST_USER.basic_header()),
        ("HEAD", "/v2/app/manifests/v1", TEST_USER.basic_header()),
    ]


async def test_an_anonymous_client_gets_the_registrys_401_after_one_rechallenge(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    server = oci_registry_factory(auth=RegistryAuth.basic(TEST_USER))
    client = make_client(server.host)

    with pytest.raises(RegistryError) as caught:
        await client.list_tags("app")

    error = caught.value
    assert (error.status, error.temporary) == (401, False)
    assert [d.code for d in error.diagnostics] == ["UNAUTHORIZED"]
    assert str(error) == f"GET {server.url}/v2/app/tags/list?n=1000: UNAUTHORIZED: authentication required"
    assert [e.authorization for e in server.exchanges if "tags" in e.target] == [None, None]


async def test_a_bearer_challenge_gets_a_token_for_the_requests_scope(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    auth = RegistryAuth.token(TEST_USER)
    server = oci_registry_factory(auth=auth)
    _push_tags(server, "team/app", ["v1", "v2"])
    server.reset()
    auth.reset()

    assert await make_client(server.host, USER).list_tags("team/app") == ["v1", "v2"]

    [grant] = auth.grants
    assert (grant.scopes, grant.service, grant.user) == (("repository:team/app:pull",), "oci-registry", "fluxmirror")
    token_request, tags_request = [e for e in server.exchanges if e.target != "/v2/"]
    assert token_request.target == "/token?service=oci-registry&scope=repository:team/app:pull"
    assert token_request.authorization == TEST_USER.basic_header()  # the realm is the registry's own origin
    assert tags_request.authorization == f"Bearer {grant.token}"


async def test_a_token_is_fetched_once_per_scope_set_and_reused(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    auth = RegistryAuth.token(TEST_USER)
    server = oci_registry_factory(auth=auth)
    _push_tags(server, "app", ["v1"])
    server.reset()
    auth.reset()
    client = make_client(server.host, USER)

    await client.list_tags("app")
    await client.list_tags("app")
    assert await client.get_manifest("app", "v1") is not None
    assert not await blob_exists(client, "app", _sha256(b"absent"))
    assert [grant.scopes for grant in auth.grants] == [("repository:app:pull",)]

    data = b"pushed with a push token"
    blob = Descriptor(media_type="application/octet-stream", digest=_sha256(data), size=len(data))
    assert await transfer_blob(BytesSource(data), client, "app", blob) is Placement.PUSHED
    await client.list_tags("app")
    assert [grant.scopes for grant in auth.grants] == [("repository:app:pull",), ("repository:app:pull,push",)]
    pull, push = auth.grants
    assert [e.authorization for e in server.exchanges if e.method in ("POST", "PATCH", "PUT")] == [
        f"Bearer {push.token}"
    ] * 2  # POST, and the PUT carrying the small blob
    assert [e.authorization for e in server.exchanges if "tags/list" in e.target][-1] == f"Bearer {pull.token}"


async def test_a_mount_asks_one_token_for_both_repositories(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    auth = RegistryAuth.token(TEST_USER)
    server = oci_registry_factory(auth=auth)
    image = images.make_image([1000], seed=32)
    images.push(server.registry, "team/src", "v1", image, auth=TEST_USER)
    auth.reset()
    layer = image.layers[0]
    blob = Descriptor(media_type=layer.media_type, digest=layer.digest, size=layer.size)

    placement = await transfer_blob(
        BytesSource(b"never read"), make_client(server.host, USER), "team/dst", blob, mount_from="team/src"
    )

    assert placement is Placement.MOUNTED
    assert [grant.scopes for grant in auth.grants] == [("repository:team/dst:pull,push", "repository:team/src:pull")]


async def test_a_small_blob_asks_one_token_for_its_mount_check_and_upload(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    """The POST that asks to mount a small blob from its own repository (is it there already?) and
    the PUT that uploads it share one push token: pull on that repository is part of push."""
    auth = RegistryAuth.token(TEST_USER)
    server = oci_registry_factory(auth=auth)
    data = b"config bytes" * 50
    blob = Descriptor(media_type="application/octet-stream", digest=_sha256(data), size=len(data))

    placement = await transfer_blob(BytesSource(data), make_client(server.host, USER), "team/dst", blob)

    assert placement is Placement.PUSHED
    assert [grant.scopes for grant in auth.grants] == [("repository:team/dst:pull,push",)]
    assert images.get_blob(server.registry, "team/dst", blob.digest, auth=TEST_USER) == data


async def test_concurrent_requests_share_one_token_request(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    auth = RegistryAuth.token(TEST_USER)
    server = oci_registry_factory(auth=auth)
    _push_tags(server, "app", ["v1"])
    auth.reset()
    client = make_client(server.host, USER)

    found = await asyncio.gather(*(client.head_manifest("app", "v1") for _ in range(8)))

    assert len({descriptor.digest for descriptor in found if descriptor is not None}) == 1
    assert len(auth.grants) == 1


async def test_an_expired_token_is_replaced_after_one_401(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    auth = RegistryAuth.token(TEST_USER)
    server = oci_registry_factory(auth=auth)
    _push_tags(server, "app", ["v1"])
    auth.reset()
    client = make_client(server.host, USER)
    await client.list_tags("app")

    auth.revoke()  # the registry no longer accepts the cached token
    assert await client.list_tags("app") == ["v1"]

    first, second = auth.grants
    assert [e.authorization for e in server.exchanges if "tags/list" in e.target] == [
        f"Bearer {first.token}",
        f"Bearer {first.token}",  # refused with a 401 and a fresh challenge
        f"Bearer {second.token}",
    ]


async def test_a_token_refused_again_after_the_rechallenge_fails_with_the_401(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    auth = RegistryAuth.token(TEST_USER)
    server = oci_registry_factory(auth=auth)
    auth.refuse_tokens = True

    with pytest.raises(RegistryError) as caught:
        await make_client(server.host, USER).list_tags("app")

    assert (caught.value.status, caught.value.temporary) == (401, False)
    assert len(_targets(server, "GET", "tags/list")) == 2
    assert len(auth.grants) == 2


# --- credentials stay with the registry's origin -----------------------------------------------


def _basic_registry(serve: Serve, answer: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> ScriptedServer:
    """A scripted registry demanding TEST_USER as Basic on every request, `/v2/` included."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != TEST_USER.basic_header():
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        if request.path == "/v2/":
            return web.json_response({})
        return await answer(request)

    return serve(handler)


async def test_no_credential_follows_a_link_to_another_origin(serve: Serve, make_client: MakeClient) -> None:
    async def other_answer(request: web.Request) -> web.StreamResponse:
        return web.json_response({"name": "app", "tags": ["b"]})

    other = serve(other_answer)

    async def home_answer(request: web.Request) -> web.StreamResponse:
        link = f'<{other.url}/v2/app/tags/list?n=1000&last=a>; rel="next"'
        return web.json_response({"name": "app", "tags": ["a"]}, headers={"Link": link})

    home = _basic_registry(serve, home_answer)

    assert await make_client(home.host, USER).list_tags("app") == ["a", "b"]

    assert [(s.target, s.authorization) for s in home.seen if s.target != "/v2/"] == [
        ("/v2/app/tags/list?n=1000", TEST_USER.basic_header())
    ]
    assert [(s.target, s.authorization) for s in other.seen] == [("/v2/app/tags/list?n=1000&last=a", None)]


async def test_no_credential_follows_an_upload_location_to_another_origin(
    serve: Serve, make_client: MakeClient
) -> None:
    stored = bytearray()

    async def upload_host(request: web.Request) -> web.StreamResponse:
        stored.extend(await request.read())
        if request.method == "PATCH":
            return web.Response(status=202, headers={"Location": f"{request.url.origin()}/upload/1?_state=s2"})
        return web.Response(status=201)

    other = serve(upload_host)

    async def home_answer(request: web.Request) -> web.StreamResponse:
        if request.method == "HEAD":
            return web.Response(status=404)
        return web.Response(status=202, headers={"Location": f"{other.url}/upload/1?_state=s1"})

    home = _basic_registry(serve, home_answer)
    small = b"layer bytes" * 100  # sent whole in the PUT
    large = b"layer bytes" * (WHOLE_MAX // 10)  # streamed in a PATCH, then committed
    for data in (small, large):
        stored.clear()
        before = len(other.seen)
        blob = Descriptor(media_type="application/octet-stream", digest=_sha256(data), size=len(data))

        assert await transfer_blob(BytesSource(data), make_client(home.host, USER), "app", blob) is Placement.PUSHED

        assert bytes(stored) == data
        assert [(s.method, s.target, s.authorization) for s in other.seen[before:]] == (
            [("PUT", f"/upload/1?_state=s1&digest={blob.digest}", None)]
            if data is small
            else [
                ("PATCH", "/upload/1?_state=s1", None),
                ("PUT", f"/upload/1?_state=s2&digest={blob.digest}", None),
            ]
        )
    assert [(s.method, s.authorization) for s in home.seen if s.target != "/v2/"] == [
        ("POST", TEST_USER.basic_header()),  # the small blob: a mount from its own repository, declined
        ("HEAD", TEST_USER.basic_header()),
        ("POST", TEST_USER.basic_header()),
    ]


async def test_no_credential_follows_a_blob_redirect_to_another_host(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    server = oci_registry_factory(auth=RegistryAuth.basic(TEST_USER))
    image = images.make_image([3000], seed=31)
    images.push(server.registry, "app", "v1", image, auth=TEST_USER)
    layer = image.layers[0]

    with FaultProxy(upstream=server.registry) as proxy:
        assert proxy.blob_host is not None
        proxy.add(RedirectToBlobHost())
        source = RegistrySource(make_client(proxy.host, USER), "app")
        received = b"".join([chunk async for chunk in source.read(layer.digest, 0)])

        assert received == layer.data
        assert [(r.path, r.status, r.auth_scheme) for r in proxy.requests if r.path != "/v2/"] == [
            (f"/v2/app/blobs/{layer.digest}", 307, "Basic")
        ]
        assert [(r.status, r.had_authorization) for r in proxy.blob_host.requests] == [(200, False)]


# --- retries -----------------------------------------------------------------------------------


async def test_retry_after_on_a_429_is_honoured_then_the_request_succeeds(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    server = oci_registry_factory()
    _push_tags(server, "app", ["v1"])
    with FaultProxy(upstream=server.registry, blob_host=False) as proxy:
        client = make_client(proxy.host, retry_delays=(0.01,))
        await client.list_tags("app")  # ping and connection out of the way
        proxy.add(Respond(method="GET", path="/tags/list$", status=429, headers={"Retry-After": "0.4"}))

        started = time.monotonic()
        assert await client.list_tags("app") == ["v1"]
        elapsed = time.monotonic() - started

        assert 0.4 <= elapsed < 1.5
        assert [r.status for r in proxy.requests if r.path.endswith("/tags/list")] == [200, 429, 200]


async def test_retry_after_overrides_a_longer_configured_delay(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    server = oci_registry_factory()
    _push_tags(server, "app", ["v1"])
    with FaultProxy(upstream=server.registry, blob_host=False) as proxy:
        proxy.add(Respond(method="GET", path="/tags/list$", status=429, headers={"Retry-After": "0"}))
        started = time.monotonic()
        assert await make_client(proxy.host, retry_delays=(30.0,)).list_tags("app") == ["v1"]
        assert time.monotonic() - started < 5


@pytest.mark.parametrize("delays", [(), (0.01,), (0.01, 0.02)], ids=["none", "one", "two"])
async def test_a_503_is_retried_per_retry_delays_then_fails_with_its_status(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient, delays: tuple[float, ...]
) -> None:
    server = oci_registry_factory()
    with FaultProxy(upstream=server.registry, blob_host=False) as proxy:
        proxy.add(Respond(method="GET", path="/tags/list$", status=503, body=b"upstream down", times=100))

        with pytest.raises(RegistryError) as caught:
            await make_client(proxy.host, retry_delays=delays).list_tags("app")

        error = caught.value
        assert (error.status, error.temporary, error.method) == (503, True, "GET")
        assert str(error) == (
            f"GET {proxy.url}/v2/app/tags/list?n=1000: unexpected status code 503 Service Unavailable: upstream down"
        )
        assert len([r for r in proxy.requests if r.path.endswith("/tags/list")]) == len(delays) + 1


async def test_toomanyrequests_on_a_400_is_retried(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    server = oci_registry_factory()
    _push_tags(server, "app", ["v1"])
    with FaultProxy(upstream=server.registry, blob_host=False) as proxy:
        proxy.add(Respond(method="GET", path="/tags/list$", status=400, body=TOOMANYREQUESTS.encode()))
        assert await make_client(proxy.host).list_tags("app") == ["v1"]
        assert [r.status for r in proxy.requests if r.path.endswith("/tags/list")] == [400, 200]


async def test_toomanyrequests_that_persists_fails_temporary_with_its_diagnostic(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    server = oci_registry_factory()
    with FaultProxy(upstream=server.registry, blob_host=False) as proxy:
        proxy.add(Respond(method="GET", path="/tags/list$", status=400, body=TOOMANYREQUESTS.encode(), times=100))
        with pytest.raises(RegistryError) as caught:
            await make_client(proxy.host).list_tags("app")
        assert (caught.value.status, caught.value.temporary) == (400, True)
        assert [(d.code, d.message) for d in caught.value.diagnostics] == [("TOOMANYREQUESTS", "slow down")]
        assert str(caught.value).endswith("/v2/app/tags/list?n=1000: TOOMANYREQUESTS: slow down")
        assert len([r for r in proxy.requests if r.path.endswith("/tags/list")]) == 3


async def test_a_registry_refusal_is_not_retried(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    server = oci_registry_factory()
    with pytest.raises(RegistryError) as caught:
        await make_client(server.host).list_tags("absent")
    assert (caught.value.status, caught.value.temporary) == (404, False)
    assert [d.code for d in caught.value.diagnostics] == ["NAME_UNKNOWN"]
    assert len(_targets(server, "GET", "tags/list")) == 1


# --- tag listing -------------------------------------------------------------------------------


async def test_tags_are_listed_across_link_pages(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    server = oci_registry_factory()
    _push_tags(server, "app", ["t1", "t2", "t3", "t4", "t5"])
    server.reset()

    assert await make_client(server.host).list_tags("app", page_size=2) == ["t1", "t2", "t3", "t4", "t5"]
    assert _targets(server, "GET", "tags/list") == [
        "/v2/app/tags/list?n=2",
        "/v2/app/tags/list?n=2&last=t2",
        "/v2/app/tags/list?n=2&last=t4",
    ]


@pytest.mark.parametrize("cycle", [1, 2], ids=["self", "two-pages"])
async def test_a_link_that_loops_fails_the_listing(serve: Serve, make_client: MakeClient, cycle: int) -> None:
    async def pages(request: web.Request) -> web.StreamResponse:
        page = int(request.query.get("page", "0"))
        following = (page + 1) % cycle
        target = "/v2/app/tags/list?n=1000" + (f"&page={following}" if following else "")
        return web.json_response({"tags": [f"p{page}"]}, headers={"Link": f'<{target}>; rel="next"'})

    server = _scripted_registry(serve, pages)
    with pytest.raises(OCIError) as caught:
        await make_client(server.host).list_tags("app")
    assert str(caught.value) == f"tag list pagination loops back to {server.url}/v2/app/tags/list?n=1000"
    assert len([s for s in server.seen if "tags/list" in s.target]) == cycle


@pytest.mark.parametrize(
    "body",
    [b"<html>rate limited</html>", b'{"tags": [1, 2]}', b'{"tags": "v1"}', b'{"tags": ["v1", null]}', b"[]"],
    ids=["not-json", "numbers", "string", "null-tag", "array"],
)
async def test_a_malformed_tag_list_is_an_oci_error_without_a_traceback(
    serve: Serve, make_client: MakeClient, body: bytes
) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="application/json")

    server = _scripted_registry(serve, answer)
    with pytest.raises(OCIError) as caught:
        await make_client(server.host).list_tags("app")
    assert type(caught.value) is OCIError
    assert str(caught.value).startswith(f"invalid tag list from {server.url}/v2/app/tags/list?n=1000: ")
    assert "\n" not in str(caught.value)
    # no chained exception: the one line is the whole story
    assert caught.value.__cause__ is None and (caught.value.__suppress_context__ or caught.value.__context__ is None)


async def test_a_lone_surrogate_tag_does_not_fail_the_listing(serve: Serve, make_client: MakeClient) -> None:
    """Go's decoder accepts `\\ud800` too; the tag grammar drops such a tag later, not the whole listing."""

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b'{"tags": ["v1", "\\ud800"]}', content_type="application/json")

    server = _scripted_registry(serve, answer)
    assert await make_client(server.host).list_tags("app") == ["v1", "\ud800"]


async def test_a_tag_list_without_tags_is_empty(serve: Serve, make_client: MakeClient) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.json_response({"name": "app", "tags": None})

    server = _scripted_registry(serve, answer)
    assert await make_client(server.host).list_tags("app") == []


# --- manifests ---------------------------------------------------------------------------------

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": _sha256(b"{}"), "size": 2},
        "layers": [],
    }
).encode()
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def _manifest_answer(body: bytes, digest: str | None) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def answer(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": MANIFEST_TYPE} | ({"Docker-Content-Digest": digest} if digest else {})
        return web.Response(body=body, headers=headers)

    return answer


async def test_a_manifest_whose_header_digest_lies_is_refused(serve: Serve, make_client: MakeClient) -> None:
    claimed = _sha256(b"something else")
    server = _scripted_registry(serve, _manifest_answer(MANIFEST, claimed))
    with pytest.raises(DigestMismatchError) as caught:
        await make_client(server.host).get_manifest("app", "v1")
    assert str(caught.value) == f"manifest {server.host}/app@{claimed}: content hashes to {_sha256(MANIFEST)}"
    assert not caught.value.temporary


async def test_a_manifest_fetched_by_digest_must_hash_to_it(serve: Serve, make_client: MakeClient) -> None:
    asked = _sha256(b"the manifest I asked for")
    server = _scripted_registry(serve, _manifest_answer(MANIFEST, None))
    with pytest.raises(DigestMismatchError, match=f"@{asked}: content hashes to {_sha256(MANIFEST)}$"):
        await make_client(server.host).get_manifest("app", asked)


async def test_a_manifest_by_tag_without_a_digest_header_is_hashed(serve: Serve, make_client: MakeClient) -> None:
    server = _scripted_registry(serve, _manifest_answer(MANIFEST, None))
    manifest = await make_client(server.host).get_manifest("app", "v1")
    assert manifest is not None
    assert (manifest.digest, manifest.raw) == (_sha256(MANIFEST), MANIFEST)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_manifest_over_4_mib_is_a_body_error(serve: Serve, make_client: MakeClient, chunked: bool) -> None:
    huge = b" " * (MAX_MANIFEST_BYTES + 1)

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": MANIFEST_TYPE})
        if not chunked:
            response.content_length = len(huge)
        await response.prepare(request)
        for start in range(0, len(huge), 256 * 1024):
            await response.write(huge[start : start + 256 * 1024])
        return response

    server = _scripted_registry(serve, answer)
    with pytest.raises(BodyError) as caught:
        await make_client(server.host).get_manifest("app", "v1")
    assert f"exceeds the limit of {MAX_MANIFEST_BYTES} bytes" in str(caught.value)
    assert str(caught.value).startswith(f"GET {server.url}/v2/app/manifests/v1: ")
    assert not caught.value.temporary


def _head_script(content_length: bytes) -> Callable[[Seen], list[bytes | float]]:
    def script(seen: Seen) -> list[bytes | float]:
        if seen.target == "/v2/":
            return [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"]
        return [
            b"HTTP/1.1 200 OK\r\nContent-Type: " + MANIFEST_TYPE.encode() + b"\r\n"
            b"Docker-Content-Digest: sha256:" + b"a" * 64 + b"\r\n"
            b"Content-Length: " + content_length + b"\r\n\r\n"
        ]

    return script


@pytest.mark.parametrize("content_length", [b"abc", b"12abc", b"-1", b"1e3", b"99999999999999999999999"])
async def test_head_manifest_with_a_garbage_content_length_is_a_transport_error(
    serve_raw: ServeRaw, make_client: MakeClient, content_length: bytes
) -> None:
    """Never a descriptor with an invented size: the answer is malformed HTTP, retried, then reported."""
    server = serve_raw(_head_script(content_length))
    with pytest.raises(TransportError) as caught:
        await make_client(server.host, retry_delays=(0.01,)).head_manifest("app", "v1")
    assert str(caught.value).startswith(f'Head "{server.url}/v2/app/manifests/v1": ')
    assert "Content-Length" in str(caught.value)
    assert [s.method for s in server.seen if s.target != "/v2/"] == ["HEAD", "HEAD"]


async def test_head_manifest_reads_a_zero_padded_content_length(serve_raw: ServeRaw, make_client: MakeClient) -> None:
    server = serve_raw(_head_script(b"000449"))
    descriptor = await make_client(server.host).head_manifest("app", "v1")
    assert descriptor is not None
    assert (descriptor.media_type, descriptor.digest, descriptor.size) == (MANIFEST_TYPE, "sha256:" + "a" * 64, 449)
