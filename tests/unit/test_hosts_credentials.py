"""Host credentials: token sources, lifetimes and caching (docs/sync.md#token-sources), and load-time refusals."""

from __future__ import annotations

from pathlib import Path

import jwt
import msgspec
import pytest

from fluxmirror.api.config import Credential as CredentialSpec
from fluxmirror.api.config import Host
from fluxmirror.api.duration import Duration
from fluxmirror.auth.credentials import Credential
from fluxmirror.auth.hosts import HostCredentialError, HostsCredentials, TokenMinter
from fluxmirror.auth.keygen import write_key_pair
from fluxmirror.http.session import HttpSession

UNUSED_HTTP = HttpSession(user_agent="test")  # never opened: static sources make no request


def host(name: str = "registry.example", username: str = "", **credential: object) -> Host:
    return Host(host=name, username=username, credential=msgspec.convert(credential, CredentialSpec))


class _Ambient:
    async def resolve(self, registry: str, repository: str) -> Credential:
        return Credential(username="ambient", password="a")


async def test_value_is_bearer_without_username_and_password_with_it() -> None:
    source = HostsCredentials(
        [host(value="t0k"), host("other.example", username="bot", value="pw")], _Ambient(), UNUSED_HTTP
    )
    assert await source.resolve("registry.example", "a/b") == Credential(registry_token="t0k")
    assert await source.resolve("other.example", "a/b") == Credential(username="bot", password="pw")
    assert await source.resolve("unlisted.example", "a/b") == Credential(username="ambient", password="a")


async def test_from_path_is_re_read_on_every_use(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    minter = TokenMinter(host(fromPath=str(token)))
    assert await minter.token() == "first"
    token.write_text("  rotated  ")
    assert await minter.token() == "rotated"


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "credential.fromPath: open {path}: no such file or directory"), (" \n", 'token file "{path}" is empty')],
    ids=["missing", "empty"],
)
async def test_from_path_errors_name_the_host_and_file(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(HostCredentialError) as caught:
        await TokenMinter(host(fromPath=str(path))).token()
    assert str(caught.value) == 'host "registry.example": ' + message.format(path=path)


@pytest.fixture
def private_key(tmp_path: Path) -> tuple[Path, jwt.PyJWKSet]:
    write_key_pair(str(tmp_path))
    return tmp_path / "privkey.json", jwt.PyJWKSet.from_json((tmp_path / "pubkey.json").read_text())


def _claims(token: str, keys: jwt.PyJWKSet, audience: str) -> dict[str, object]:
    key = keys.keys[0]
    assert jwt.get_unverified_header(token)["kid"] == key.key_id
    claims: dict[str, object] = jwt.decode(token, key.key, algorithms=["EdDSA"], audience=audience)
    return claims


def _lifetime(claims: dict[str, object]) -> int:
    """Seconds from "iat" to "exp", both JWT NumericDates (the minter writes whole seconds)."""
    expires, issued = claims["exp"], claims["iat"]
    assert isinstance(expires, int) and isinstance(issued, int), claims
    return expires - issued


async def test_jwk_without_exp_signs_a_fresh_60s_token_every_time(private_key: tuple[Path, jwt.PyJWKSet]) -> None:
    path, keys = private_key
    minter = TokenMinter(host(jwkPath=str(path), iss="https://ci", sub="pusher"))
    first, second = await minter.token(), await minter.token()
    assert first != second
    claims = _claims(first, keys, "registry.example")
    assert (claims["iss"], claims["sub"], claims["aud"]) == ("https://ci", "pusher", ["registry.example"])
    assert _lifetime(claims) == 60


async def test_jwk_with_exp_is_cached_and_carries_the_audience(private_key: tuple[Path, jwt.PyJWKSet]) -> None:
    path, keys = private_key
    minter = TokenMinter(
        host(jwkValue=path.read_text(), iss="i", sub="s", aud="registry.internal", exp=Duration.parse("8760h"))
    )
    first = await minter.token()
    assert await minter.token() == first
    claims = _claims(first, keys, "registry.internal")
    assert _lifetime(claims) == 8760 * 3600


async def test_bad_jwk_names_the_field_not_the_key() -> None:
    with pytest.raises(HostCredentialError) as caught:
        await TokenMinter(host(jwkValue='{"kty":"RSA","d":"secret-material"}', iss="i", sub="s")).token()
    assert str(caught.value).startswith('host "registry.example": credential.jwkValue: ')
    assert "secret-material" not in str(caught.value)


# ---- start-up: every JWK is loaded when sync builds its credentials ------------------------------

_RSA = '{"kty":"RSA","n":"AQAB","e":"AQAB","d":"secret-material"}'


@pytest.mark.parametrize(
    ("credential", "message"),
    [
        pytest.param(
            {"jwkPath": "{dir}/missing.json"},
            "read jwkPath: open {dir}/missing.json: no such file or directory",
            id="missing-file",
        ),
        pytest.param({"jwkPath": "{dir}"}, "read jwkPath: read {dir}: is a directory", id="directory"),
        pytest.param(
            {"jwkPath": "{dir}/bad.json"},
            "parse jwkPath: JWK is not valid JSON: Expecting value at line 1 column 1",
            id="bad-json-file",
        ),
        pytest.param(
            {"jwkValue": _RSA},
            'parse jwkValue: unsupported JWK key type "RSA": only OKP (Ed25519) and EC keys can sign',
            id="rsa-value",
        ),
        pytest.param(
            {"jwkValue": '{"keys": []}'}, "parse jwkValue: JWK set must contain exactly one key, got 0", id="empty-set"
        ),
        pytest.param(
            {"jwkPath": "{dir}/pubkey.json"},
            "parse jwkPath: JWK set must contain exactly one key, got 2",
            id="two-keys",
        ),
    ],
)
def test_building_sync_credentials_loads_every_jwk(tmp_path: Path, credential: dict[str, str], message: str) -> None:
    (tmp_path / "bad.json").write_text("not json")
    (tmp_path / "pubkey.json").write_text('{"keys": [{"kty": "OKP"}, {"kty": "OKP"}]}')
    spec = {name: value.replace("{dir}", str(tmp_path)) for name, value in credential.items()}
    hosts = [host("fine.example", value="t0k"), host(iss="i", sub="s", **spec)]
    with pytest.raises(HostCredentialError) as caught:
        HostsCredentials(hosts, _Ambient(), UNUSED_HTTP)
    assert str(caught.value) == 'auth host "registry.example": ' + message.replace("{dir}", str(tmp_path))
    assert "secret-material" not in str(caught.value)


def test_the_first_bad_key_in_config_order_is_named(tmp_path: Path) -> None:
    hosts = [host(f"h{i}.example", jwkPath=str(tmp_path / f"k{i}.json"), iss="i", sub="s") for i in range(3)]
    with pytest.raises(HostCredentialError, match=r'^auth host "h0\.example": read jwkPath: open '):
        HostsCredentials(hosts, _Ambient(), UNUSED_HTTP)


async def test_a_loaded_key_is_kept_for_every_token(private_key: tuple[Path, jwt.PyJWKSet]) -> None:
    path, keys = private_key
    source = HostsCredentials([host(jwkPath=str(path), iss="i", sub="s")], _Ambient(), UNUSED_HTTP)
    path.unlink()  # read once, at start-up: later tokens never read it again
    first = await source.resolve("registry.example", "a/b")
    second = await source.resolve("registry.example", "a/b")
    assert first.registry_token and second.registry_token and first.registry_token != second.registry_token
    assert _claims(first.registry_token, keys, "registry.example")["sub"] == "s"
