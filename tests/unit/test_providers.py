"""Provider building blocks that need no endpoint: the half-life cache, JWT expiry, the token
grammar, host shapes, the AWS envelope, the missing-extra line and the blocking-call runner.

The endpoints themselves are exercised in tests/integration/test_providers_*.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from typing import Any

import msgspec
import pytest
from botocore.credentials import Credentials as AwsCredentials

from fluxmirror.api.config import Credential as CredentialSpec
from fluxmirror.api.config import Host
from fluxmirror.auth.blocking import run_blocking
from fluxmirror.auth.expiring import Expiring, NearExpiryError, go_time
from fluxmirror.auth.hosts import CloudLogin, HostCredentialError, ProviderToken
from fluxmirror.auth.providers import ProviderError, RegistryLogin
from fluxmirror.auth.providers.actions import request_url
from fluxmirror.auth.providers.aws import CallerIdentityEnvelope, ECRLogin, envelope
from fluxmirror.auth.providers.azure import ACRLogin
from fluxmirror.auth.providers.base import checked_token, import_extra, jwt_expiry, registry_provider
from fluxmirror.auth.providers.gcp import GARLogin
from fluxmirror.http.session import HttpSession

UNUSED_HTTP = HttpSession(user_agent="test")  # never opened: nothing here makes a request


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_with(claims: dict[str, Any]) -> str:
    return f"{b64url(b'{}')}.{b64url(json.dumps(claims).encode())}.sig"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


# -- the half-life cache ----------------------------------------------------------------------------------


async def test_a_value_is_kept_until_half_its_lifetime() -> None:
    clock, mints = Clock(), []

    async def mint() -> tuple[str, float]:
        mints.append(clock.now)
        return f"token-{len(mints)}", clock.now + 300

    cache = Expiring(mint, what="minted token", clock=clock)
    start = clock.now
    assert await cache.get() == "token-1"
    clock.now = start + 149
    assert await cache.get() == "token-1"
    clock.now = start + 151
    assert await cache.get() == "token-2"
    assert mints == [start, start + 151]


async def test_concurrent_users_share_one_mint() -> None:
    clock, started = Clock(), asyncio.Event()
    calls = 0

    async def mint() -> tuple[str, float]:
        nonlocal calls
        calls += 1
        started.set()
        await asyncio.sleep(0.01)
        return "shared", clock.now + 60

    cache = Expiring(mint, what="minted token", clock=clock)
    assert await asyncio.gather(*(cache.get() for _ in range(10))) == ["shared"] * 10
    assert calls == 1


async def test_a_value_with_under_a_second_of_half_life_is_refused() -> None:
    clock = Clock()

    async def mint() -> tuple[str, float]:
        return "stale", clock.now + 1.5

    with pytest.raises(NearExpiryError) as caught:
        await Expiring(mint, what="minted token", clock=clock).get()
    assert str(caught.value) == f"minted token already near expiry (exp={go_time(clock.now + 1.5)})"
    assert go_time(0) == "1970-01-01 00:00:00 +0000 UTC"


# -- what minted tokens must look like ---------------------------------------------------------------------


def test_jwt_expiry_is_read_without_verifying() -> None:
    assert jwt_expiry(jwt_with({"exp": 1_800_000_300})) == 1_800_000_300.0
    cases: list[tuple[dict[str, Any], str]] = [
        ({"sub": "x"}, "minted token has no exp claim"),
        ({"exp": True}, "minted token has no exp claim"),
        ({"exp": "soon"}, "minted token has no exp claim"),
    ]
    for claims, message in cases:
        with pytest.raises(ProviderError, match=f"^{message}$"):
            jwt_expiry(jwt_with(claims))
    for token in ("opaque", "a.!!!.c", f"{b64url(b'{}')}.{b64url(b'[1]')}.s"):
        with pytest.raises(ProviderError):
            jwt_expiry(token)


@pytest.mark.parametrize("token", ["", "two words", "line\r\nX-Injected: 1", "tab\tinside", "non-ascii-é"])
def test_a_token_that_cannot_travel_in_a_header_is_refused(token: str) -> None:
    with pytest.raises(
        ProviderError, match=r"^the OIDC token (is empty|contains characters a credential cannot carry)$"
    ):
        checked_token(token, "the OIDC token")


def test_a_missing_extra_is_named() -> None:
    with pytest.raises(ProviderError) as caught:
        import_extra("fluxmirror_absent_sdk.sub", "aws")
    assert str(caught.value) == "the fluxmirror_absent_sdk package is not installed: pip install 'fluxmirror[aws]'"


# -- github / forgejo: the request URL ---------------------------------------------------------------------


def test_the_audience_replaces_the_one_in_the_url_and_keys_are_sorted() -> None:
    url = "https://pipelines.example/_apis/token?z=1&audience=old&api-version=2.0&audience=older"
    assert request_url(url, "registry.example.com:5000") == (
        "https://pipelines.example/_apis/token?api-version=2.0&audience=registry.example.com%3A5000&z=1"
    )


# -- cloud registry host shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "host"),
    [
        ("ecr", "123456789012.dkr.ecr.us-east-1.amazonaws.com"),
        ("ecr", "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com"),
        ("ecr", "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
        ("ecr", "123456789012.dkr-ecr.eu-west-1.on.aws"),
        ("ecr", "public.ecr.aws"),
        ("acr", "mirror.azurecr.io"),
        ("acr", "mirror.azurecr.cn:443"),
        ("gar", "gcr.io"),
        ("gar", "eu.gcr.io"),
        ("gar", "us-docker.pkg.dev"),
        ("gar", "docker.s3nsregistry.fr"),
    ],
)
def test_cloud_registry_hosts_are_accepted(provider: str, host: str) -> None:
    registry_provider(provider, host, UNUSED_HTTP)


@pytest.mark.parametrize(
    ("provider", "host", "cloud"),
    [
        ("ecr", "registry.example.com", "AWS"),
        ("ecr", "ecr.aws", "AWS"),
        ("acr", "azurecr.io", "ACR"),
        ("acr", "mirror.azurecr.io.evil.example", "ACR"),
        ("gar", "pkg.dev", "GAR"),
        ("gar", "docker.pkg.dev.evil.example", "GAR"),
    ],
)
def test_other_hosts_are_refused_with_the_pattern(provider: str, host: str, cloud: str) -> None:
    with pytest.raises(ProviderError, match=rf"^invalid {cloud} registry: '{host}'\. must match "):
        registry_provider(provider, host, UNUSED_HTTP)


def test_ecr_region_comes_from_the_host() -> None:
    assert ECRLogin("1.dkr.ecr.ap-south-2.amazonaws.com")._region == "ap-south-2"
    assert (ECRLogin("public.ecr.aws")._service, ECRLogin("public.ecr.aws")._region) == ("ecr-public", "us-east-1")
    assert isinstance(ACRLogin("a.azurecr.us", UNUSED_HTTP), ACRLogin)
    assert isinstance(GARLogin("europe-docker.pkg.dev"), GARLogin)


# -- aws: the envelope ------------------------------------------------------------------------------------


def decode(token: str) -> tuple[bytes, dict[str, Any], str]:
    header, claims, signature = token.split(".")
    raw_claims = base64.urlsafe_b64decode(claims + "==")
    return base64.urlsafe_b64decode(header + "=="), json.loads(raw_claims), signature


def test_envelope_shape_matches_the_reference() -> None:
    credentials = AwsCredentials("AKIDEXAMPLE", "secret-example", token="session-token-example")
    token = envelope("registry.example.com", "eu-west-3", credentials, now=1_800_000_000.5)
    header, claims, signature = decode(token)
    assert header == b'{"alg":"none","typ":"aws-sigv4-getcalleridentity"}'
    assert signature == ""
    assert list(claims) == ["aud", "exp", "sts"]
    assert (claims["aud"], claims["exp"]) == ("registry.example.com", 1_800_000_120)
    sts = claims["sts"]
    assert (sts["method"], sts["url"], sts["body"]) == (
        "POST",
        "https://sts.eu-west-3.amazonaws.com/",
        "Action=GetCallerIdentity&Version=2011-06-15",
    )
    assert list(sts["headers"]) == ["Authorization", "Content-Type", "X-Amz-Date", "X-Amz-Security-Token", "X-Audience"]
    assert sts["headers"]["X-Audience"] == ["registry.example.com"]
    assert sts["headers"]["X-Amz-Security-Token"] == ["session-token-example"]
    authorization = sts["headers"]["Authorization"][0]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-3/sts/aws4_request" in authorization
    assert "SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-security-token;x-audience" in authorization
    # Go's json.Marshal escapes `&` inside strings; the bytes must match what the reference writes.
    assert b"GetCallerIdentity\\u0026Version" in base64.urlsafe_b64decode(token.split(".")[1] + "==")


async def test_aws_envelope_is_minted_again_every_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its `exp` is two minutes away, so a run re-mints it once a minute (simulated by the clock)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret-example",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    }.items():
        monkeypatch.setenv(name, value)
    clock = Clock()
    clock.now = time.time()
    host = Host(
        host="registry.example.com", username="aws", credential=msgspec.convert({"provider": "aws"}, CredentialSpec)
    )
    minted: list[str] = []

    class Counting(CallerIdentityEnvelope):
        async def mint(self, audience: str) -> str:
            minted.append(await super().mint(audience))
            return minted[-1]

    source = ProviderToken(host, Counting(), clock=clock)
    first = await source.token()
    clock.now += 59
    assert await source.token() == first
    assert len(minted) == 1
    clock.now += 2
    second = await source.token()
    assert len(minted) == 2 and decode(second)[1]["aud"] == "registry.example.com"
    assert (await source.credential()).password == second


# -- the host sources name host and provider ---------------------------------------------------------------


class _Failing:
    async def login(self) -> RegistryLogin:
        raise ProviderError("no identity here")


class _Short:
    def __init__(self, clock: Clock, lifetime: float) -> None:
        self.clock, self.lifetime, self.calls = clock, lifetime, 0

    async def login(self) -> RegistryLogin:
        self.calls += 1
        return RegistryLogin("AWS", f"password-{self.calls}", self.clock.now + self.lifetime)


async def test_cloud_login_errors_name_provider_and_host() -> None:
    source = CloudLogin(Host(host="1.dkr.ecr.us-east-1.amazonaws.com", provider="ecr"), _Failing())
    with pytest.raises(HostCredentialError) as caught:
        await source.credential()
    assert str(caught.value) == 'get ecr registry credentials for "1.dkr.ecr.us-east-1.amazonaws.com": no identity here'


async def test_cloud_login_is_kept_until_half_its_lifetime() -> None:
    clock = Clock()
    provider = _Short(clock, 12 * 3600)
    source = CloudLogin(Host(host="gcr.io", provider="gar"), provider, clock=clock)
    assert (await source.credential()).password == "password-1"
    clock.now += 6 * 3600 - 1
    assert (await source.credential()).password == "password-1"
    clock.now += 2
    assert (await source.credential()).password == "password-2"
    expired = CloudLogin(Host(host="gcr.io", provider="gar"), _Short(clock, -5), clock=clock)
    with pytest.raises(
        HostCredentialError, match=r'^get gar registry credentials for "gcr\.io": gar credentials already near expiry'
    ):
        await expired.credential()


# -- blocking calls ---------------------------------------------------------------------------------------


async def test_blocking_calls_run_in_daemon_threads() -> None:
    seen: list[tuple[str, bool]] = []

    def work(value: int) -> int:
        thread = threading.current_thread()
        seen.append((thread.name, thread.daemon))
        return value * 2

    assert await run_blocking(work, 21) == 42
    assert seen == [("work", True)]

    def broken() -> None:
        raise ValueError("from the thread")

    with pytest.raises(ValueError, match="from the thread"):
        await run_blocking(broken)


def test_an_abandoned_blocking_call_does_not_hold_the_loop() -> None:
    release = threading.Event()

    async def give_up() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(run_blocking(release.wait, 30), 0.05)

    started = time.monotonic()
    asyncio.run(give_up())  # closing the loop does not wait for the thread
    assert time.monotonic() - started < 5
    release.set()
