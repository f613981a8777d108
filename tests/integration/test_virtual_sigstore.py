"""Proof that the virtual Sigstore mints what sigstore-python 4.5.1 accepts, and refuses each broken variant.

Product tests rely on ``harness.sigstore`` for both outcomes, so every knob is checked here against
the real verifier (or, for the legacy ``.sig`` scheme sigstore-python has no path for, against plain
``cryptography``). The registry tests prove the OCI layouts by reading them back with the harness
client.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from harness import images
from harness.referrers import fallback_index
from harness.registry import Registry
from harness.sigstore import (
    BUNDLE_ANNOTATION,
    BUNDLE_V03,
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    COSIGN_SIGN_PREDICATE,
    IN_TOTO,
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING,
    STATEMENT_V1,
    TRUSTED_ROOT_MEDIA_TYPE,
    LegacySignature,
    VirtualSigstore,
    legacy_tag,
    push_bundle_referrer,
    push_legacy_signature,
)
from sigstore.errors import CertValidationError, VerificationError
from sigstore.models import Bundle, InvalidBundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore.verify.policy import Identity, OIDCIssuer, OIDCIssuerV2, UnsafeNoOp

TESTDATA = Path("/work/shared/testdata/sigstore")
DIGEST = "sha256:" + hashlib.sha256(b"the image").hexdigest()
OTHER_DIGEST = "sha256:" + hashlib.sha256(b"another image").hexdigest()
SAN = "https://github.com/stefanprodan/podinfo/.github/workflows/release.yml@refs/tags/6.9.0"
ISSUER = "https://token.actions.githubusercontent.com"
SIGNED_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=72)


class AcceptAll:
    """A policy of our own (sigstore's ``VerificationPolicy`` is a protocol); quieter than UnsafeNoOp."""

    def verify(self, cert: x509.Certificate) -> None:
        del cert


@pytest.fixture(scope="module")
def verifier(trusted_root_path: Path) -> Verifier:
    return Verifier(trusted_root=TrustedRoot.from_file(str(trusted_root_path)))


def _sign(sigstore: VirtualSigstore, digest: str = DIGEST, **knobs: Any) -> bytes:
    arguments: dict[str, Any] = {"san": SAN, "issuer": ISSUER, "signed_at": SIGNED_AT} | knobs
    return sigstore.sign_bundle(digest, **arguments)


def _statement(payload: bytes) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(payload)
    return loaded


# --- trusted root --------------------------------------------------------------------------


def test_trusted_root_has_the_protobuf_specs_shape(virtual_sigstore: VirtualSigstore, trusted_root_path: Path) -> None:
    document = json.loads(trusted_root_path.read_bytes())
    assert document["mediaType"] == TRUSTED_ROOT_MEDIA_TYPE
    assert "timestampAuthorities" not in document
    chain = document["certificateAuthorities"][0]["certChain"]["certificates"]
    ders = [base64.b64decode(c["rawBytes"]) for c in chain]
    der = serialization.Encoding.DER
    assert ders == [virtual_sigstore.intermediate_cert.public_bytes(der), virtual_sigstore.root_cert.public_bytes(der)]
    assert base64.b64decode(document["tlogs"][0]["logId"]["keyId"]) == virtual_sigstore.rekor_log_id
    assert base64.b64decode(document["ctlogs"][0]["logId"]["keyId"]) == virtual_sigstore.ct_log_id
    for entry in (document["certificateAuthorities"][0], document["tlogs"][0]["publicKey"]):
        assert datetime.fromisoformat(entry["validFor"]["start"]) < datetime.now(UTC)
    TrustedRoot.from_file(str(trusted_root_path))  # loads


# --- v0.3 DSSE bundles ---------------------------------------------------------------------


def test_good_bundle_verifies_and_has_the_cosign_v3_shape(
    virtual_sigstore: VirtualSigstore, verifier: Verifier
) -> None:
    raw = _sign(virtual_sigstore)
    payload_type, payload = verifier.verify_dsse(Bundle.from_json(raw), AcceptAll())
    assert payload_type == IN_TOTO
    assert _statement(payload) == {
        "_type": STATEMENT_V1,
        "subject": [{"digest": {"sha256": DIGEST.removeprefix("sha256:")}, "annotations": {}}],
        "predicateType": COSIGN_SIGN_PREDICATE,
        "predicate": {},
    }
    document = json.loads(raw)
    assert document["mediaType"] == BUNDLE_V03
    assert "messageSignature" not in document
    assert "x509CertificateChain" not in document["verificationMaterial"]
    (entry,) = document["verificationMaterial"]["tlogEntries"]
    assert entry["kindVersion"] == {"kind": "dsse", "version": "0.0.1"}
    assert int(entry["integratedTime"]) == int(SIGNED_AT.timestamp())
    assert entry["inclusionPromise"]["signedEntryTimestamp"]
    assert entry["inclusionProof"]["treeSize"] == "10"
    assert entry["inclusionProof"]["checkpoint"]["envelope"].count("\n\n") == 1


def test_leaf_looks_like_fulcio(virtual_sigstore: VirtualSigstore) -> None:
    cert = Bundle.from_json(_sign(virtual_sigstore)).signing_certificate
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [SAN]
    assert cert.not_valid_before_utc <= SIGNED_AT < cert.not_valid_after_utc
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(minutes=10)
    scts = cert.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    assert [sct.log_id for sct in scts] == [virtual_sigstore.ct_log_id]
    issuer_v1 = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")).value
    issuer_v2 = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")).value
    assert isinstance(issuer_v1, x509.UnrecognizedExtension) and issuer_v1.value == ISSUER.encode()
    assert isinstance(issuer_v2, x509.UnrecognizedExtension) and issuer_v2.value[2:] == ISSUER.encode()


def test_sigstore_identity_policies_match_the_leaf(virtual_sigstore: VirtualSigstore, verifier: Verifier) -> None:
    verifier.verify_dsse(Bundle.from_json(_sign(virtual_sigstore)), Identity(identity=SAN, issuer=ISSUER))
    verifier.verify_dsse(Bundle.from_json(_sign(virtual_sigstore, issuer_v1=False)), OIDCIssuerV2(ISSUER))
    with pytest.raises(VerificationError):  # the legacy extension is absent
        verifier.verify_dsse(Bundle.from_json(_sign(virtual_sigstore, issuer_v1=False)), OIDCIssuer(ISSUER))
    email = Bundle.from_json(_sign(virtual_sigstore, san="signer@example.com", issuer="https://github.com/login/oauth"))
    verifier.verify_dsse(email, Identity(identity="signer@example.com", issuer="https://github.com/login/oauth"))
    rfc822 = email.signing_certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert rfc822.value.get_values_for_type(x509.RFC822Name) == ["signer@example.com"]


@pytest.mark.parametrize(
    ("knobs", "error", "message"),
    [
        # DSSE signature by the right key over other bytes: VerificationError("DSSE: invalid signature")
        ({"tamper": "signature"}, VerificationError, "DSSE: invalid signature"),
        # payload swapped after signing (claims DIGEST, signed another): same DSSE error
        ({"tamper": "payload"}, VerificationError, "DSSE: invalid signature"),
        # integratedTime +60 s after the SET was signed: VerificationError("invalid log entry: SET: …")
        ({"tamper": "integrated_time"}, VerificationError, "SET: invalid inclusion promise"),
        ({"tamper": "set_foreign_key"}, VerificationError, "SET: invalid inclusion promise"),
        ({"tamper": "checkpoint_foreign_key"}, VerificationError, "checkpoint: invalid signature"),
        ({"tamper": "inclusion_proof"}, VerificationError, "inclusion proof has wrong size"),
        # leaf validity ends before the integrated time: CertValidationError (chain not valid at that time)
        ({"expired": True}, CertValidationError, "not valid at validation time"),
        ({"no_sct": True}, VerificationError, "does not contain a signed certificate timestamp"),
        ({"sct_key_foreign": True}, VerificationError, "SCT verify failed"),
        # integrated time days after the leaf's window (the SET covers it, so only the window is wrong)
        ({"integrated_time": SIGNED_AT + timedelta(days=3)}, CertValidationError, "not valid at validation time"),
    ],
)
def test_broken_bundles_are_refused(
    virtual_sigstore: VirtualSigstore, verifier: Verifier, knobs: dict[str, Any], error: type[Exception], message: str
) -> None:
    bundle = Bundle.from_json(_sign(virtual_sigstore, **knobs))
    with pytest.raises(error, match=message):
        verifier.verify_dsse(bundle, AcceptAll())


def test_bundle_without_inclusion_promise_is_refused_by_the_parser(virtual_sigstore: VirtualSigstore) -> None:
    raw = _sign(virtual_sigstore, no_inclusion_promise=True)
    assert "inclusionPromise" not in json.loads(raw)["verificationMaterial"]["tlogEntries"][0]
    with pytest.raises(InvalidBundle, match="must contain an inclusion promise or signed timestamp"):
        Bundle.from_json(raw)


def test_foreign_instance_is_not_trusted(other_sigstore: VirtualSigstore, verifier: Verifier) -> None:
    with pytest.raises(CertValidationError, match="failed to build timestamp certificate chain"):
        verifier.verify_dsse(Bundle.from_json(_sign(other_sigstore)), AcceptAll())


@pytest.mark.parametrize(
    ("knobs", "check"),
    [
        ({"predicate_type": "https://slsa.dev/provenance/v1"}, ("predicateType", "https://slsa.dev/provenance/v1")),
        ({"statement_type": "https://in-toto.io/Statement/v0.1"}, ("_type", "https://in-toto.io/Statement/v0.1")),
        (
            {"subject_digest": OTHER_DIGEST},
            ("subject", [{"digest": {"sha256": OTHER_DIGEST[7:]}, "annotations": {}}]),
        ),
    ],
)
def test_payload_knobs_verify_cryptographically_but_say_something_else(
    virtual_sigstore: VirtualSigstore, verifier: Verifier, knobs: dict[str, Any], check: tuple[str, object]
) -> None:
    """sigstore-python does not read the statement (§2): these are for the product's own checks."""
    _, payload = verifier.verify_dsse(Bundle.from_json(_sign(virtual_sigstore, **knobs)), AcceptAll())
    key, expected = check
    assert _statement(payload)[key] == expected


def test_payload_type_knob_is_returned_unchecked(virtual_sigstore: VirtualSigstore, verifier: Verifier) -> None:
    raw = _sign(virtual_sigstore, payload_type="application/json")
    assert verifier.verify_dsse(Bundle.from_json(raw), AcceptAll())[0] == "application/json"


# --- real public-good bundles --------------------------------------------------------------


@pytest.mark.parametrize("name", ["cosign-oci-attestation", "conformance-happy-path-intoto-in-dsse-v3"])
def test_real_bundles_need_the_public_good_root(name: str, verifier: Verifier) -> None:
    bundle = Bundle.from_json((TESTDATA / f"{name}.sigstore.json").read_bytes())
    public_good = Verifier(trusted_root=TrustedRoot.from_file(str(TESTDATA / "public-good-trusted_root.json")))
    assert public_good.verify_dsse(bundle, AcceptAll())[0] == IN_TOTO
    with pytest.raises(CertValidationError, match="failed to build timestamp certificate chain"):
        verifier.verify_dsse(bundle, AcceptAll())


# --- legacy .sig signatures ----------------------------------------------------------------


def _legacy(sigstore: VirtualSigstore, digest: str = DIGEST, **knobs: Any) -> LegacySignature:
    arguments: dict[str, Any] = {
        "docker_reference": "ghcr.io/stefanprodan/podinfo",
        "san": SAN,
        "issuer": ISSUER,
        "signed_at": SIGNED_AT,
    } | knobs
    return sigstore.legacy_signature(digest, **arguments)


def _leaf(sig: LegacySignature) -> x509.Certificate:
    return x509.load_pem_x509_certificate(sig.annotations[CERTIFICATE_ANNOTATION].encode())


def _check_signature(sig: LegacySignature) -> None:
    key = _leaf(sig).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(sig.signature, sig.payload, ec.ECDSA(hashes.SHA256()))


def _check_set(sig: LegacySignature, rekor: VirtualSigstore) -> None:
    bundle = sig.rekor_bundle
    signed = rfc8785.dumps(
        {
            "body": bundle["Payload"]["body"],
            "integratedTime": bundle["Payload"]["integratedTime"],
            "logID": bundle["Payload"]["logID"],
            "logIndex": bundle["Payload"]["logIndex"],
        }
    )
    rekor.rekor_key.public_key().verify(
        base64.b64decode(bundle["SignedEntryTimestamp"]), signed, ec.ECDSA(hashes.SHA256())
    )


def test_legacy_signature_has_cosigns_shape_and_verifies(virtual_sigstore: VirtualSigstore) -> None:
    sig = _legacy(virtual_sigstore)
    assert json.loads(sig.payload) == {
        "critical": {
            "identity": {"docker-reference": "ghcr.io/stefanprodan/podinfo"},
            "image": {"docker-manifest-digest": DIGEST},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    assert set(sig.annotations) == {SIGNATURE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION, BUNDLE_ANNOTATION}
    _check_signature(sig)
    _check_set(sig, virtual_sigstore)
    chain = x509.load_pem_x509_certificates(sig.annotations[CHAIN_ANNOTATION].encode())
    assert chain == [virtual_sigstore.intermediate_cert, virtual_sigstore.root_cert]
    _leaf(sig).verify_directly_issued_by(chain[0])
    payload = sig.rekor_bundle["Payload"]
    body = json.loads(base64.b64decode(payload["body"]))
    assert body == {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(sig.payload).hexdigest()}},
            "signature": {
                "content": sig.annotations[SIGNATURE_ANNOTATION],
                "publicKey": {"content": base64.b64encode(sig.annotations[CERTIFICATE_ANNOTATION].encode()).decode()},
            },
        },
    }
    assert base64.b64decode(payload["body"]) == rfc8785.dumps(body)
    assert payload["integratedTime"] == int(SIGNED_AT.timestamp())
    assert payload["logID"] == virtual_sigstore.rekor_log_id.hex()
    assert isinstance(payload["logIndex"], int)


@pytest.mark.parametrize("tamper", ["signature", "payload"])
def test_tampered_legacy_signature_fails(virtual_sigstore: VirtualSigstore, tamper: str) -> None:
    sig = _legacy(virtual_sigstore, tamper=tamper)
    with pytest.raises(InvalidSignature):
        _check_signature(sig)
    _check_set(sig, virtual_sigstore)  # the log entry itself is sound


@pytest.mark.parametrize("tamper", ["integrated_time", "set_foreign_key"])
def test_legacy_signature_with_broken_set_fails(virtual_sigstore: VirtualSigstore, tamper: str) -> None:
    sig = _legacy(virtual_sigstore, tamper=tamper)
    _check_signature(sig)
    with pytest.raises(InvalidSignature):
        _check_set(sig, virtual_sigstore)


def test_expired_legacy_signature_ends_before_its_integrated_time(virtual_sigstore: VirtualSigstore) -> None:
    sig = _legacy(virtual_sigstore, expired=True)
    _check_signature(sig)
    _check_set(sig, virtual_sigstore)
    assert _leaf(sig).not_valid_after_utc.timestamp() < sig.rekor_bundle["Payload"]["integratedTime"]


def test_legacy_signature_from_a_foreign_instance_fails_our_keys(
    virtual_sigstore: VirtualSigstore, other_sigstore: VirtualSigstore
) -> None:
    sig = _legacy(other_sigstore)
    with pytest.raises(InvalidSignature):
        _check_set(sig, virtual_sigstore)
    with pytest.raises((InvalidSignature, ValueError)):
        _leaf(sig).verify_directly_issued_by(virtual_sigstore.intermediate_cert)


def test_legacy_signature_as_v01_bundle_needs_an_inclusion_proof(
    virtual_sigstore: VirtualSigstore, verifier: Verifier
) -> None:
    """Experiment: can sigstore-python verify a ``.sig`` converted to a v0.1 bundle?

    Not as is: the ``.sig`` layer carries a SET but no inclusion proof, and sigstore-python's model
    requires ``inclusionProof`` on every tlog entry, whatever the bundle version. With the proof an
    online client would fetch from Rekor, ``verify_artifact`` accepts it.
    """
    sig = _legacy(virtual_sigstore)
    with pytest.raises(InvalidBundle, match="inclusionProof"):
        Bundle.from_json(sig.to_v01_bundle())
    bundle = Bundle.from_json(sig.to_v01_bundle(with_inclusion_proof=True))
    verifier.verify_artifact(sig.payload, bundle, Identity(identity=SAN, issuer=ISSUER))
    with pytest.raises(VerificationError):
        verifier.verify_artifact(sig.payload + b" ", bundle, AcceptAll())
    tampered = _legacy(virtual_sigstore, tamper="payload")
    with pytest.raises(VerificationError):
        verifier.verify_artifact(
            tampered.payload, Bundle.from_json(tampered.to_v01_bundle(with_inclusion_proof=True)), AcceptAll()
        )


def test_unsafe_noop_policy_is_accepted(virtual_sigstore: VirtualSigstore, verifier: Verifier) -> None:
    verifier.verify_dsse(Bundle.from_json(_sign(virtual_sigstore)), UnsafeNoOp())


# --- OCI layouts on a real registry --------------------------------------------------------


@pytest.mark.registry
def test_bundle_referrers_and_fallback_index(
    registry: Registry, unique_repo: str, virtual_sigstore: VirtualSigstore, verifier: Verifier
) -> None:
    image = images.make_image([64], seed=71)
    images.push(registry, unique_repo, "v1", image)
    first = _sign(virtual_sigstore, digest=image.digest)
    second = _sign(virtual_sigstore, digest=image.digest, predicate_type="https://slsa.dev/provenance/v1")
    pushed = [
        push_bundle_referrer(registry, unique_repo, image, raw, fallback=True, created=SIGNED_AT)
        for raw in (first, second)
    ]

    document = json.loads(images.get_manifest(registry, unique_repo, pushed[0].digest).data)
    assert document["mediaType"] == images.OCI_MANIFEST
    assert document["artifactType"] == BUNDLE_V03
    assert document["config"] == {"mediaType": images.OCI_EMPTY, "digest": images.sha256_digest(b"{}"), "size": 2}
    assert document["subject"] == image.document.descriptor()
    assert document["annotations"] == {
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": COSIGN_SIGN_PREDICATE,
        "org.opencontainers.image.created": SIGNED_AT.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    (layer,) = document["layers"]
    assert layer["mediaType"] == BUNDLE_V03
    fetched = images.get_blob(registry, unique_repo, layer["digest"])
    assert fetched == first
    verifier.verify_dsse(Bundle.from_json(fetched), AcceptAll())

    index = fallback_index(registry, unique_repo, image)
    assert [m["digest"] for m in index["manifests"]] == [m.digest for m in pushed]
    assert [m["annotations"]["dev.sigstore.bundle.predicateType"] for m in index["manifests"]] == [
        COSIGN_SIGN_PREDICATE,
        "https://slsa.dev/provenance/v1",
    ]
    assert {m["artifactType"] for m in index["manifests"]} == {BUNDLE_V03}


@pytest.mark.registry
def test_legacy_signatures_at_the_sig_tag(
    registry: Registry, unique_repo: str, virtual_sigstore: VirtualSigstore
) -> None:
    image = images.make_image([64], seed=72)
    images.push(registry, unique_repo, "v1", image)
    signatures = [
        _legacy(virtual_sigstore, digest=image.digest, signed_at=SIGNED_AT + timedelta(hours=i)) for i in (0, 1)
    ]
    for sig in signatures:
        push_legacy_signature(registry, unique_repo, image.digest, sig)

    tag = legacy_tag(image.digest)
    assert tag == image.digest.replace(":", "-") + ".sig"
    assert tag in images.list_tags(registry, unique_repo)
    fetched = images.get_manifest(registry, unique_repo, tag)
    assert fetched.media_type == images.OCI_MANIFEST
    document = json.loads(fetched.data)
    assert document["config"]["mediaType"] == images.OCI_CONFIG
    assert [layer["mediaType"] for layer in document["layers"]] == [SIMPLE_SIGNING, SIMPLE_SIGNING]
    for layer, sig in zip(document["layers"], signatures, strict=True):
        assert layer["annotations"] == sig.annotations
        payload = images.get_blob(registry, unique_repo, layer["digest"])
        assert payload == sig.payload
        assert json.loads(payload)["critical"]["image"]["docker-manifest-digest"] == image.digest
        _check_signature(sig)
