"""fluxmirror.cosign without a registry: real public-good bundles against the pinned public-good root,
the identity policy's matching and wording, the statement binding, and pathological patterns."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.x509 import Certificate
from harness.sigstore import VirtualSigstore
from sigstore.errors import VerificationError

from fluxmirror.api.config import OIDCIdentity
from fluxmirror.cosign.identity import IdentityPolicy, certificate_identity
from fluxmirror.cosign.statement import StatementError, check_simple_signing, check_statement
from fluxmirror.cosign.trust import TrustRootError, load_trusted_root
from fluxmirror.cosign.verifier import MalformedSignature, SignatureError, SignatureVerifier

VECTORS = Path(__file__).resolve().parents[1] / "data" / "sigstore"
PUBLIC_GOOD = VECTORS / "public-good-trusted_root.json"
COSIGN_BUNDLE = VECTORS / "cosign-oci-attestation.sigstore.json"
COSIGN_DIGEST = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
CONFORMANCE_BUNDLE = VECTORS / "conformance-happy-path-intoto-in-dsse-v3.sigstore.json"
CONFORMANCE_DIGEST = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/"
    "extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
ACTIONS = "https://token.actions.githubusercontent.com"


def verifier(root: Path, *identities: tuple[str, str]) -> SignatureVerifier:
    return SignatureVerifier(
        load_trusted_root(str(root)), [OIDCIdentity(issuer=issuer, subject=subject) for issuer, subject in identities]
    )


def test_a_real_cosign_bundle_verifies_against_the_public_good_root() -> None:
    verified = verifier(PUBLIC_GOOD, ("https://github.com/login/oauth", "@soyland\\.com$")).verify_bundle(
        COSIGN_BUNDLE.read_bytes(), COSIGN_DIGEST
    )
    assert (verified.identity.issuer, verified.identity.san) == ("https://github.com/login/oauth", "cody@soyland.com")
    assert verified.integrated_time == 1740770291


def test_a_real_github_actions_bundle_verifies_with_a_workflow_pattern() -> None:
    pattern = r"^https://github\.com/sigstore-conformance/.*\.yml@refs/heads/main$"
    verified = verifier(PUBLIC_GOOD, (ACTIONS, pattern)).verify_bundle(
        CONFORMANCE_BUNDLE.read_bytes(), CONFORMANCE_DIGEST.upper().replace("SHA256", "sha256")
    )
    assert (verified.identity.san, verified.integrated_time) == (BEACON, 1734374576)


def test_real_bundles_fail_against_another_root(tmp_path: Path, virtual_sigstore: VirtualSigstore) -> None:
    other = virtual_sigstore.write_trusted_root(tmp_path / "root.json")
    with pytest.raises(SignatureError, match=r"^failed to build timestamp certificate chain"):
        verifier(other, (ACTIONS, ".*")).verify_bundle(CONFORMANCE_BUNDLE.read_bytes(), CONFORMANCE_DIGEST)


def test_a_real_bundle_for_another_digest_is_refused() -> None:
    with pytest.raises(SignatureError, match=r"^provided artifact digest does not match any digest in statement$"):
        verifier(PUBLIC_GOOD, (ACTIONS, ".*")).verify_bundle(CONFORMANCE_BUNDLE.read_bytes(), COSIGN_DIGEST)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(mediaType="application/vnd.dev.sigstore.bundle+json;version=0.2"), "unsupported sigstore"),
        (lambda d: d.pop("dsseEnvelope"), "parse sigstore bundle: "),
        (lambda d: d["verificationMaterial"].pop("tlogEntries"), "parse sigstore bundle: "),
    ],
    ids=["v0.2", "no-envelope", "no-tlog"],
)
def test_malformed_bundles_are_refused_before_any_check(mutate: object, message: str) -> None:
    document = json.loads(CONFORMANCE_BUNDLE.read_bytes())
    assert callable(mutate)
    mutate(document)
    with pytest.raises(MalformedSignature, match=f"^{message}"):
        verifier(PUBLIC_GOOD, (ACTIONS, ".*")).verify_bundle(json.dumps(document).encode(), CONFORMANCE_DIGEST)


def test_a_trusted_root_that_is_not_one_is_named(tmp_path: Path) -> None:
    path = tmp_path / "root.json"
    path.write_text('{"mediaType": "nope"}')
    with pytest.raises(TrustRootError, match=f"^read trusted root {path}: "):
        load_trusted_root(str(path))


# -- identity -------------------------------------------------------------------------------------------


def leaf(
    sigstore: VirtualSigstore, san: str, issuer: str = ACTIONS, *, v1: bool = True, v2: bool = True
) -> Certificate:
    signed = datetime.now(UTC) - timedelta(hours=1)
    return sigstore.issue_leaf(san=san, issuer=issuer, not_before=signed, issuer_v1=v1, issuer_v2=v2).cert


def test_items_are_ored_and_the_last_error_is_worded_as_sigstore_go(virtual_sigstore: VirtualSigstore) -> None:
    certificate = leaf(virtual_sigstore, "https://github.com/example/app/.github/workflows/r.yml@refs/tags/1")
    policy = IdentityPolicy(
        [OIDCIdentity(issuer=ACTIONS, subject="^https://gitlab"), OIDCIdentity(issuer="x", subject="example/app")]
    )
    with pytest.raises(VerificationError) as caught:
        policy.verify(certificate)
    assert str(caught.value) == (
        "failed to verify certificate identity: no matching CertificateIdentity found, last error: "
        f'expected Issuer to be "x", got "{ACTIONS}"'
    )
    IdentityPolicy([OIDCIdentity(issuer="x", subject="."), OIDCIdentity(issuer=ACTIONS, subject="example/app")]).verify(
        certificate
    )


def test_the_subject_is_an_unanchored_go_pattern(virtual_sigstore: VirtualSigstore) -> None:
    certificate = leaf(virtual_sigstore, "https://github.com/example/app")
    IdentityPolicy([OIDCIdentity(issuer=ACTIONS, subject=r"example/\w+$")]).verify(certificate)
    with pytest.raises(VerificationError):  # \d is ASCII in Go, and there is no backreference in RE2 either way
        IdentityPolicy([OIDCIdentity(issuer=ACTIONS, subject=r"^example")]).verify(certificate)


def test_issuer_comes_from_either_extension_and_san_from_email(virtual_sigstore: VirtualSigstore) -> None:
    only_v1 = leaf(virtual_sigstore, "dev@example.com", v2=False)
    only_v2 = leaf(virtual_sigstore, "dev@example.com", v1=False)
    for certificate in (only_v1, only_v2):
        identity = certificate_identity(certificate)
        assert (identity.issuer, identity.san) == (ACTIONS, "dev@example.com")


def test_a_pathological_pattern_runs_in_linear_time(virtual_sigstore: VirtualSigstore) -> None:
    certificate = leaf(virtual_sigstore, "https://example.com/" + "a" * 20_000 + "!")
    policy = IdentityPolicy(
        [OIDCIdentity(issuer=ACTIONS, subject="(a+)+$"), OIDCIdentity(issuer=ACTIONS, subject="(a|aa)*b")]
    )
    started = time.monotonic()
    with pytest.raises(VerificationError):
        policy.verify(certificate)
    assert time.monotonic() - started < 1


# -- statements -----------------------------------------------------------------------------------------

DIGEST = "sha256:" + "ab" * 32


def statement(**fields: object) -> bytes:
    document: dict[str, object] = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": "AB" * 32}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    }
    document.update(fields)
    return json.dumps(document).encode()


def test_statement_binding() -> None:
    check_statement("application/vnd.in-toto+json", statement(), DIGEST)  # hex compared in lower case
    check_statement("application/vnd.in-toto+json", statement(_type="https://in-toto.io/Statement/v0.1"), DIGEST)
    check_statement("application/vnd.in-toto+json", statement(predicateType="https://slsa.dev/provenance/v1"), DIGEST)
    for payload_type, payload, message in [
        ("text/plain", statement(), 'unexpected DSSE payload type "text/plain"'),
        ("application/vnd.in-toto+json", b"[1]", "signed payload is not a JSON object"),
        ("application/vnd.in-toto+json", statement(_type="x"), 'unsupported in-toto statement type "x"'),
        ("application/vnd.in-toto+json", statement(subject=[{"digest": {"sha512": "ab" * 32}}]), "provided artifact"),
        ("application/vnd.in-toto+json", statement(subject="nope"), "provided artifact"),
    ]:
        with pytest.raises(StatementError, match=f"^{message}"):
            check_statement(payload_type, payload, DIGEST)


def test_simple_signing_binding() -> None:
    def payload(digest: str, kind: str = "cosign container image signature") -> bytes:
        return json.dumps({"critical": {"image": {"docker-manifest-digest": digest}, "type": kind}}).encode()

    check_simple_signing(payload(DIGEST), DIGEST)
    with pytest.raises(StatementError, match=r"^signed payload is for another image"):
        check_simple_signing(payload("sha256:" + "cd" * 32), DIGEST)
    with pytest.raises(StatementError, match=r"^signed payload is not a cosign container image signature$"):
        check_simple_signing(payload(DIGEST, "atomic container signature"), DIGEST)
