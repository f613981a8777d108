"""JWK key sets, signing-key loading and JWT signing, with pyjwt as the independent verifier."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fluxmirror.auth.jwk import (
    JWKError,
    SigningKey,
    generate_ed25519_key_set,
    load_signing_key,
    new_uuid6,
    sign_jwt,
)

UUID6 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-6[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
GREGORIAN_TO_UNIX_TICKS = 0x01B21DD213814000
EC_CURVES = [
    ("P-256", ec.SECP256R1(), "ES256", 32),
    ("P-384", ec.SECP384R1(), "ES384", 48),
    ("P-521", ec.SECP521R1(), "ES512", 66),
]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ed25519_jwk(kid: str | None = "k1") -> tuple[dict[str, Any], dict[str, Any]]:
    key = Ed25519PrivateKey.generate()
    x = b64url(key.public_key().public_bytes_raw())
    public: dict[str, Any] = {"kty": "OKP", "crv": "Ed25519", "x": x}
    if kid is not None:
        public["kid"] = kid
    return {**public, "d": b64url(key.private_bytes_raw())}, public


def ec_jwk(curve: ec.EllipticCurve, name: str, size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    key = ec.generate_private_key(curve)
    numbers = key.private_numbers()
    public = {
        "kty": "EC",
        "crv": name,
        "kid": f"ec-{name}",
        "x": b64url(numbers.public_numbers.x.to_bytes(size, "big")),
        "y": b64url(numbers.public_numbers.y.to_bytes(size, "big")),
    }
    return {**public, "d": b64url(numbers.private_value.to_bytes(size, "big"))}, public


def segments(token: str) -> tuple[bytes, bytes, bytes]:
    header, payload, signature = token.split(".")
    return unb64url(header), unb64url(payload), unb64url(signature)


def mint(private: dict[str, Any], *, issuer: str = "i", lifetime: float = 60, now: float | None = None) -> str:
    key = load_signing_key(json.dumps(private))
    return sign_jwt(key, issuer=issuer, subject="s", audience="a", lifetime_seconds=lifetime, now=now)


def verify(token: str, public_jwk: dict[str, Any], algorithm: str, audience: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token,
        key=jwt.PyJWK(public_jwk, algorithm=algorithm),
        algorithms=[algorithm],
        audience=audience,
        options={"require": ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]},
    )
    return claims


class TestNewUUID6:
    def test_format_version_and_variant(self) -> None:
        value = new_uuid6()
        assert UUID6.match(value)
        parsed = uuid.UUID(value)
        assert parsed.version == 6
        assert parsed.variant == uuid.RFC_4122

    def test_timestamp_is_now(self) -> None:
        value = uuid.UUID(new_uuid6()).int
        now = time.time_ns() // 100 + GREGORIAN_TO_UNIX_TICKS
        ticks = (value >> 80) << 12 | (value >> 64) & 0xFFF
        # 100 ns ticks since 1582-10-15; the generator may run a few ticks ahead to stay increasing.
        assert abs(now - ticks) < 10_000_000

    def test_consecutive_ids_sort_in_creation_order(self) -> None:
        first, second = new_uuid6(), new_uuid6()
        assert first < second
        assert uuid.UUID(first).int < uuid.UUID(second).int

    def test_a_burst_is_strictly_increasing_and_unique(self) -> None:
        ids = [new_uuid6() for _ in range(2000)]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)


class TestGenerateEd25519KeySet:
    def test_exact_file_shape(self) -> None:
        kid = new_uuid6()
        private, public = generate_ed25519_key_set(kid)
        for data, members in (
            (private, ["use", "kty", "kid", "crv", "alg", "x", "d"]),
            (public, ["use", "kty", "kid", "crv", "alg", "x"]),
        ):
            document = json.loads(data)
            assert list(document) == ["keys"]
            assert len(document["keys"]) == 1
            key = document["keys"][0]
            assert list(key) == members
            assert (key["use"], key["kty"], key["kid"], key["crv"], key["alg"]) == (
                "sig",
                "OKP",
                kid,
                "Ed25519",
                "EdDSA",
            )
            # Re-rendering with 2-space indentation reproduces the file byte for byte.
            assert data == (json.dumps(document, indent=2) + "\n").encode()
        assert private.startswith(b'{\n  "keys": [\n    {\n      "use": "sig",\n')
        assert private.endswith(b'"\n    }\n  ]\n}\n')

    def test_public_set_is_the_private_set_without_d(self) -> None:
        private, public = generate_ed25519_key_set("kid")
        private_key = json.loads(private)["keys"][0]
        public_key = json.loads(public)["keys"][0]
        assert {name: value for name, value in private_key.items() if name != "d"} == public_key

    def test_key_material_is_raw_base64url(self) -> None:
        private, _ = generate_ed25519_key_set("kid")
        key = json.loads(private)["keys"][0]
        for member in ("x", "d"):
            assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key[member])
        seed = Ed25519PrivateKey.from_private_bytes(unb64url(key["d"]))
        assert seed.public_key().public_bytes_raw() == unb64url(key["x"])

    def test_every_call_mints_a_new_key(self) -> None:
        first, _ = generate_ed25519_key_set("kid")
        second, _ = generate_ed25519_key_set("kid")
        assert json.loads(first)["keys"][0]["d"] != json.loads(second)["keys"][0]["d"]


class TestLoadSigningKey:
    def test_bare_ed25519_jwk(self) -> None:
        private, _ = ed25519_jwk("abc")
        key = load_signing_key(json.dumps(private))
        assert (key.kid, key.algorithm) == ("abc", "EdDSA")
        assert isinstance(key.key, Ed25519PrivateKey)
        assert key.key.private_bytes_raw() == unb64url(private["d"])

    def test_single_key_set_from_bytes(self) -> None:
        private, _ = ed25519_jwk("abc")
        key = load_signing_key(json.dumps({"keys": [private]}).encode())
        assert (key.kid, key.algorithm) == ("abc", "EdDSA")

    def test_missing_kid_becomes_empty(self) -> None:
        private, _ = ed25519_jwk(kid=None)
        assert load_signing_key(json.dumps(private)).kid == ""

    @pytest.mark.parametrize(("name", "curve", "algorithm", "size"), EC_CURVES, ids=[c[0] for c in EC_CURVES])
    def test_ec_algorithm_follows_curve(self, name: str, curve: ec.EllipticCurve, algorithm: str, size: int) -> None:
        private, _ = ec_jwk(curve, name, size)
        key = load_signing_key(json.dumps(private))
        assert key.algorithm == algorithm
        assert isinstance(key.key, ec.EllipticCurvePrivateKey)
        assert key.key.curve.name == curve.name

    def test_alg_member_is_ignored(self) -> None:
        private, _ = ed25519_jwk()
        assert load_signing_key(json.dumps({**private, "alg": "ES256"})).algorithm == "EdDSA"

    def test_padded_base64url_is_tolerated(self) -> None:
        private, _ = ed25519_jwk()
        padded = {**private, "d": private["d"] + "=", "x": private["x"] + "="}
        assert load_signing_key(json.dumps(padded)).algorithm == "EdDSA"


def _rsa_jwk(key: rsa.RSAPrivateKey, private: bool) -> dict[str, Any]:
    numbers = key.private_numbers()
    jwk = {
        "kty": "RSA",
        "n": b64url(numbers.public_numbers.n.to_bytes(256, "big")),
        "e": "AQAB",
    }
    if private:
        jwk["d"] = b64url(numbers.d.to_bytes(256, "big"))
    return jwk


def _rejections() -> list[pytest.ParameterSet]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    okp, okp_public = ed25519_jwk()
    p256, p256_public = ec_jwk(ec.SECP256R1(), "P-256", 32)
    other_okp, _ = ed25519_jwk()
    other_p256, _ = ec_jwk(ec.SECP256R1(), "P-256", 32)
    order = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
    out_of_range = 'JWK private key "d" is out of range for P-256'
    mismatch = 'JWK public key "x" does not match its private key "d"'
    public_only = 'JWK is a public key: a private key (the "d" member) is required to sign'
    rsa_message = 'unsupported JWK key type "RSA": only OKP (Ed25519) and EC keys can sign'
    cases = [
        ("rsa-private", _rsa_jwk(rsa_key, private=True), rsa_message),
        ("rsa-public", _rsa_jwk(rsa_key, private=False), rsa_message),
        ("rsa-in-set", {"keys": [_rsa_jwk(rsa_key, private=True)]}, rsa_message),
        ("oct", {"kty": "oct", "k": "c2VjcmV0"}, rsa_message.replace('"RSA"', '"oct"')),
        ("okp-public", okp_public, public_only),
        ("okp-public-set", {"keys": [okp_public]}, public_only),
        ("ec-public", p256_public, public_only),
        ("empty-set", {"keys": []}, "JWK set must contain exactly one key, got 0"),
        ("two-keys", {"keys": [okp, okp]}, "JWK set must contain exactly one key, got 2"),
        ("three-keys", {"keys": [okp, p256, okp]}, "JWK set must contain exactly one key, got 3"),
        ("keys-not-array", {"keys": okp}, 'JWK set member "keys" must be an array'),
        ("set-entry-not-object", {"keys": ["x"]}, "JWK set key must be a JSON object"),
        ("array", [okp], "JWK must be a JSON object"),
        ("missing-kty", {k: v for k, v in okp.items() if k != "kty"}, 'JWK is missing the "kty" member'),
        ("kty-not-string", {**okp, "kty": 1}, 'JWK member "kty" must be a string'),
        ("kid-not-string", {**okp, "kid": 7}, 'JWK member "kid" must be a string'),
        ("x25519", {**okp, "crv": "X25519"}, 'unsupported OKP curve "X25519": only Ed25519 is supported'),
        ("okp-missing-crv", {k: v for k, v in okp.items() if k != "crv"}, 'JWK is missing the "crv" member'),
        ("okp-missing-x", {k: v for k, v in okp.items() if k != "x"}, 'JWK is missing the "x" member'),
        ("okp-d-not-string", {**okp, "d": 5}, 'JWK member "d" must be a string'),
        ("okp-d-std-base64", {**okp, "d": "+/" + okp["d"][2:]}, 'JWK member "d" is not valid base64url'),
        ("okp-d-bad-length-mod4", {**okp, "d": okp["d"] + "AA"}, 'JWK member "d" is not valid base64url'),
        ("okp-d-short", {**okp, "d": okp["d"][:40]}, 'JWK member "d" must be 32 bytes, got 30'),
        ("okp-x-mismatch", {**okp, "x": other_okp["x"]}, mismatch),
        (
            "secp256k1",
            {**p256, "crv": "secp256k1"},
            'unsupported EC curve "secp256k1": only P-256, P-384 and P-521 are supported',
        ),
        ("ec-missing-y", {k: v for k, v in p256.items() if k != "y"}, 'JWK is missing the "y" member'),
        ("ec-d-wrong-size", {**p256, "d": b64url(b"\x01" * 48)}, 'JWK member "d" must be 32 bytes, got 48'),
        ("ec-d-zero", {**p256, "d": b64url(bytes(32))}, out_of_range),
        ("ec-d-order", {**p256, "d": b64url(order.to_bytes(32, "big"))}, out_of_range),
        (
            "ec-xy-mismatch",
            {**p256, "x": other_p256["x"], "y": other_p256["y"]},
            'JWK public key "x"/"y" does not match its private key "d"',
        ),
    ]
    return [pytest.param(document, message, id=name) for name, document, message in cases]


@pytest.mark.parametrize(("document", "message"), _rejections())
def test_rejections_name_the_problem_without_key_material(document: object, message: str) -> None:
    with pytest.raises(JWKError) as caught:
        load_signing_key(json.dumps(document))
    assert str(caught.value) == message
    keys = document.get("keys", [document]) if isinstance(document, dict) else document
    for key in keys if isinstance(keys, list) else [keys]:
        if isinstance(key, dict) and isinstance(key.get("d"), str):
            assert key["d"] not in str(caught.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param("", "JWK is not valid JSON: Expecting value at line 1 column 1", id="empty"),
        pytest.param(
            '{"d": "c2VjcmV0"',
            "JWK is not valid JSON: Expecting ',' delimiter at line 1 column 17",
            id="truncated",
        ),
        pytest.param(b'{"d": "\xff"}', "JWK is not valid UTF-8", id="not-utf8"),
    ],
)
def test_malformed_documents(data: str | bytes, message: str) -> None:
    with pytest.raises(JWKError, match=f"^{re.escape(message)}$"):
        load_signing_key(data)


def test_jwk_error_is_a_value_error() -> None:
    assert issubclass(JWKError, ValueError)


class TestSignJWT:
    def test_header_and_claims_are_exact(self) -> None:
        private, _ = ed25519_jwk("kid-1")
        token = sign_jwt(
            load_signing_key(json.dumps(private)),
            issuer="https://issuer.example",
            subject="ci",
            audience="registry.example.com",
            lifetime_seconds=60,
            now=1_700_000_000.75,
        )
        header, payload, _ = segments(token)
        assert header == b'{"alg":"EdDSA","kid":"kid-1","typ":"JWT"}'
        claims = json.loads(payload)
        assert list(claims) == ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]
        assert re.fullmatch(r"[0-9a-f]{32}", claims["jti"])
        assert payload == (
            b'{"iss":"https://issuer.example","sub":"ci","aud":["registry.example.com"],'
            b'"exp":1700000060,"nbf":1699999970,"iat":1700000000,"jti":"' + claims["jti"].encode() + b'"}'
        )

    def test_segments_are_unpadded_base64url(self) -> None:
        private, _ = ed25519_jwk()
        token = mint(private)
        assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)

    def test_missing_kid_is_an_empty_header_kid(self) -> None:
        private, _ = ed25519_jwk(kid=None)
        token = mint(private)
        assert segments(token)[0] == b'{"alg":"EdDSA","kid":"","typ":"JWT"}'

    def test_strings_are_escaped_like_go(self) -> None:
        private, public = ed25519_jwk()
        issuer = "https://issuer.example/?a=<1>&b=é\u2028"
        token = mint(private, issuer=issuer)
        _, payload, _ = segments(token)
        assert payload.startswith(b'{"iss":"https://issuer.example/?a=\\u003c1\\u003e\\u0026b=\xc3\xa9\\u2028",')
        assert verify(token, public, "EdDSA", "a")["iss"] == issuer

    def test_each_token_gets_a_fresh_jti(self) -> None:
        private, _ = ed25519_jwk()
        ids = {json.loads(segments(mint(private, now=1.0))[1])["jti"] for _ in range(20)}
        assert len(ids) == 20

    def test_now_defaults_to_the_clock(self) -> None:
        private, _ = ed25519_jwk()
        before = int(time.time())
        token = mint(private, lifetime=3600)
        claims = json.loads(segments(token)[1])
        assert before <= claims["iat"] <= int(time.time())
        assert claims["exp"] == claims["iat"] + 3600
        assert claims["nbf"] == claims["iat"] - 30

    def test_ed25519_token_verifies_with_pyjwt(self) -> None:
        private, public = ed25519_jwk("ed")
        now = time.time()
        token = sign_jwt(
            load_signing_key(json.dumps(private)),
            issuer="iss",
            subject="sub",
            audience="aud",
            lifetime_seconds=120,
            now=now,
        )
        assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": "ed", "typ": "JWT"}
        claims = verify(token, public, "EdDSA", "aud")
        assert (claims["iss"], claims["sub"], claims["aud"]) == ("iss", "sub", ["aud"])
        assert (claims["iat"], claims["nbf"], claims["exp"]) == (int(now), int(now) - 30, int(now + 120))

    @pytest.mark.parametrize(("name", "curve", "algorithm", "size"), EC_CURVES, ids=[c[0] for c in EC_CURVES])
    def test_ec_tokens_verify_with_pyjwt(self, name: str, curve: ec.EllipticCurve, algorithm: str, size: int) -> None:
        private, public = ec_jwk(curve, name, size)
        token = sign_jwt(
            load_signing_key(json.dumps({"keys": [private]})),
            issuer="https://issuer.example",
            subject="ci-pusher",
            audience="registry.example.com",
            lifetime_seconds=60,
        )
        header, _, signature = segments(token)
        assert header == f'{{"alg":"{algorithm}","kid":"ec-{name}","typ":"JWT"}}'.encode()
        # Raw R||S, each the curve's full byte width.
        assert len(signature) == 2 * size
        claims = verify(token, public, algorithm, "registry.example.com")
        assert (claims["iss"], claims["sub"], claims["aud"]) == (
            "https://issuer.example",
            "ci-pusher",
            ["registry.example.com"],
        )

    def test_pyjwt_rejects_a_token_from_another_key(self) -> None:
        private, _ = ed25519_jwk()
        _, other_public = ed25519_jwk()
        token = mint(private)
        with pytest.raises(jwt.InvalidSignatureError):
            verify(token, other_public, "EdDSA", "a")

    def test_signing_key_is_frozen(self) -> None:
        key = SigningKey(kid="k", algorithm="EdDSA", key=Ed25519PrivateKey.generate())
        with pytest.raises(AttributeError):
            key.kid = "other"  # type: ignore[misc]  # assigning a frozen field is the point: it must raise
