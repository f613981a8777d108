"""An offline "virtual Sigstore": Fulcio-like CA, CT log, Rekor v1 log and the OCI layouts cosign writes.

Why: fluxmirror verifies cosign keyless signatures with sigstore-python before mirroring, and the
real public-good instance cannot sign test content (no OIDC identity, no network). Everything
Sigstore would provide is therefore minted locally with per-instance keys, following the recipe in
``shared/spec/cosign-verification.md`` §1, §2, §5 and §7 (each constraint there was checked against
sigstore-python 4.5.1):

* a root CA and a Fulcio-like intermediate, listed leaf-most first in the trusted root;
* short-lived leaves with a critical SAN, AKI, codeSigning EKU, both OIDC issuer extensions and one
  embedded precertificate SCT (two-pass build: sign the TBSPrecertificate, then rebuild);
* a cosign v3 DSSE bundle with one Rekor v1 ``dsse/0.0.1`` entry: SET (inclusion promise), an
  RFC 6962 inclusion proof over a small tree and a signed checkpoint;
* legacy ``.sig`` signatures (simple-signing payload plus cosign's layer annotations, with a
  ``hashedrekord/0.0.1`` Rekor bundle) for the tag-based scheme cosign < v3 pushed.

Knobs produce the negative variants the verifier must refuse. Nothing here imports the product, so
the harness is a second opinion on what the product accepts.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import random
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from harness import Credentials, images
from harness.referrers import fallback_tag, index_entry
from harness.registry import Registry

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_V01 = "application/vnd.dev.sigstore.bundle+json;version=0.1"
IN_TOTO = "application/vnd.in-toto+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIMPLE_SIGNING_TYPE = "cosign container image signature"

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"

OID_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # raw UTF-8 bytes
OID_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # DER UTF8String
OID_EMBEDDED_SCT = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")

# CA material and log keys are valid from well before any back-dated test signature.
EPOCH = datetime(2015, 1, 1, tzinfo=UTC)
CA_NOT_AFTER = datetime(2045, 1, 1, tzinfo=UTC)
LEAF_LIFETIME = timedelta(minutes=10)
LEAF_ISSUED_BEFORE_SIGNING = timedelta(minutes=1)
TREE_SIZE = 10

Tamper = Literal[
    "signature", "payload", "integrated_time", "set_foreign_key", "checkpoint_foreign_key", "inclusion_proof"
]
LegacyTamper = Literal["signature", "payload", "integrated_time", "set_foreign_key"]
SanKind = Literal["uri", "email"]

_INSTANCE_COUNTER = itertools.count(1)


# --- small encoding helpers ----------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def _der_utf8string(text: str) -> bytes:
    raw = text.encode()
    return b"\x0c" + _der_length(len(raw)) + raw


def _der_octet_string(data: bytes) -> bytes:
    return b"\x04" + _der_length(len(data)) + data


def _spki_der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    """Log IDs (Rekor and CT) and the SCT issuer key hash: sha256 of the DER SubjectPublicKeyInfo."""
    return hashlib.sha256(_spki_der(key)).digest()


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _digest_hex(digest: str) -> str:
    """``sha256:<hex>`` (or bare hex) → lower-case hex."""
    algorithm, _, hex_part = digest.rpartition(":")
    if algorithm not in ("", "sha256") or len(hex_part) != 64:
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return hex_part.lower()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding (what the envelope signature covers)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


# --- RFC 6962 Merkle tree ------------------------------------------------------------------


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves."""
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def inclusion_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]), leaf level first (the order Rekor and sigstore-python use)."""
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_path(index, leaves[:k]), merkle_root(leaves[k:])]
    return [*inclusion_path(index - k, leaves[k:]), merkle_root(leaves[:k])]


# --- public data types ---------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    """A Fulcio-like signing certificate and its ephemeral key."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        return _pem(self.cert)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class LogEntry:
    """One Rekor v1 entry as a bundle carries it (protobuf-specs JSON), plus the values behind it."""

    tlog_entry: dict[str, Any]
    body: bytes
    log_index: int
    integrated_time: int
    set_signature: bytes
    inclusion_proof: dict[str, Any]


@dataclass(frozen=True)
class LegacySignature:
    """What cosign < v3 pushed at ``sha256-<hex>.sig``: one simple-signing layer and its annotations.

    ``payload`` and ``annotations`` are what goes to the registry. The other fields are test-side
    conveniences: ``inclusion_proof`` is what the virtual Rekor would return online (legacy
    signatures never carried one), in protobuf-specs JSON.
    """

    payload: bytes
    annotations: dict[str, str]
    leaf_der: bytes = field(repr=False)
    chain_der: tuple[bytes, ...] = field(repr=False)
    log_index: int = 0
    integrated_time: int = 0
    log_id: bytes = b""
    body: bytes = field(default=b"", repr=False)
    inclusion_proof: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def signature(self) -> bytes:
        return base64.b64decode(self.annotations[SIGNATURE_ANNOTATION])

    @property
    def rekor_bundle(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.annotations[BUNDLE_ANNOTATION])
        return loaded

    def to_v01_bundle(self, *, with_inclusion_proof: bool = False) -> bytes:
        """The legacy signature as a Sigstore bundle v0.1 (``messageSignature`` + hashedrekord entry).

        A faithful conversion has only what the ``.sig`` layer had: SET, no inclusion proof.
        ``with_inclusion_proof=True`` adds the proof an online verifier would fetch from Rekor.
        """
        rekor = self.rekor_bundle
        entry: dict[str, Any] = {
            "logIndex": str(rekor["Payload"]["logIndex"]),
            "logId": {"keyId": _b64(bytes.fromhex(rekor["Payload"]["logID"]))},
            "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
            "integratedTime": str(rekor["Payload"]["integratedTime"]),
            "inclusionPromise": {"signedEntryTimestamp": rekor["SignedEntryTimestamp"]},
            "canonicalizedBody": rekor["Payload"]["body"],
        }
        if with_inclusion_proof:
            entry["inclusionProof"] = self.inclusion_proof
        document = {
            "mediaType": BUNDLE_V01,
            "verificationMaterial": {
                "x509CertificateChain": {
                    "certificates": [{"rawBytes": _b64(der)} for der in (self.leaf_der, *self.chain_der)]
                },
                "tlogEntries": [entry],
            },
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(hashlib.sha256(self.payload).digest())},
                "signature": self.annotations[SIGNATURE_ANNOTATION],
            },
        }
        return json.dumps(document, indent=2).encode()


# --- the virtual instance ------------------------------------------------------------------


class VirtualSigstore:
    """One self-contained Sigstore: CA, CT log and Rekor keys, all generated per instance.

    Two instances never trust each other's material, which is how "foreign root" cases are made.
    """

    def __init__(self, name: str | None = None) -> None:
        self.name = name or f"virtual{next(_INSTANCE_COUNTER)}"
        self._rng = random.Random()
        self.root_key = _new_key()
        self.intermediate_key = _new_key()
        self.ct_key = _new_key()
        self.rekor_key = _new_key()
        # Same-shaped keys for "signed by somebody else" variants.
        self._foreign_ct_key = _new_key()
        self._foreign_rekor_key = _new_key()
        self.root_cert = self._make_root()
        self.intermediate_cert = self._make_intermediate()
        self.ct_log_id = _key_id(self.ct_key.public_key())
        self.rekor_log_id = _key_id(self.rekor_key.public_key())
        self.rekor_origin = f"{self.name}.rekor.invalid - {self._rng.randrange(10**18, 10**19)}"
        self._next_log_index = self._rng.randrange(100_000_000, 200_000_000)

    # -- CA -------------------------------------------------------------------------------

    def _ca_name(self, role: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fluxmirror virtual sigstore"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{self.name}-{role}"),
            ]
        )

    def _make_root(self) -> x509.Certificate:
        public = self.root_key.public_key()
        return (
            x509.CertificateBuilder()
            .subject_name(self._ca_name("root"))
            .issuer_name(self._ca_name("root"))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(EPOCH)
            .not_valid_after(CA_NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.root_key, hashes.SHA256())
        )

    def _make_intermediate(self) -> x509.Certificate:
        public = self.intermediate_key.public_key()
        return (
            x509.CertificateBuilder()
            .subject_name(self._ca_name("intermediate"))
            .issuer_name(self.root_cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(EPOCH)
            .not_valid_after(CA_NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root_key.public_key()), critical=False
            )
            .sign(self.root_key, hashes.SHA256())
        )

    @property
    def chain_pem(self) -> bytes:
        """Intermediate then root, as cosign's ``dev.sigstore.cosign/chain`` annotation holds them."""
        return _pem(self.intermediate_cert) + _pem(self.root_cert)

    # -- trusted root ---------------------------------------------------------------------

    def trusted_root(self) -> dict[str, Any]:
        def log(key: ec.EllipticCurvePrivateKey, url: str) -> dict[str, Any]:
            public = key.public_key()
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": _b64(_spki_der(public)),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": _rfc3339(EPOCH)},
                },
                "logId": {"keyId": _b64(_key_id(public))},
            }

        der = serialization.Encoding.DER
        return {
            "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
            "tlogs": [log(self.rekor_key, f"https://{self.name}.rekor.invalid")],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "fluxmirror virtual sigstore", "commonName": self.name},
                    "uri": f"https://{self.name}.fulcio.invalid",
                    "certChain": {
                        "certificates": [
                            {"rawBytes": _b64(self.intermediate_cert.public_bytes(der))},
                            {"rawBytes": _b64(self.root_cert.public_bytes(der))},
                        ]
                    },
                    "validFor": {"start": _rfc3339(EPOCH)},
                }
            ],
            "ctlogs": [log(self.ct_key, f"https://{self.name}.ctfe.invalid")],
        }

    def trusted_root_json(self) -> bytes:
        return json.dumps(self.trusted_root(), indent=2).encode()

    def write_trusted_root(self, path: Path) -> Path:
        path.write_bytes(self.trusted_root_json())
        return path

    # -- leaf certificates ----------------------------------------------------------------

    def issue_leaf(
        self,
        *,
        san: str,
        issuer: str,
        not_before: datetime,
        not_after: datetime | None = None,
        san_kind: SanKind | None = None,
        issuer_v1: bool = True,
        issuer_v2: bool = True,
        sct: Literal["trusted", "foreign", "none"] = "trusted",
    ) -> Leaf:
        """A Fulcio-like leaf; ``sct`` picks the CT key of the embedded SCT (or none at all)."""
        key = _new_key()
        not_before = not_before.astimezone(UTC).replace(microsecond=0)
        not_after = (not_after or not_before + LEAF_LIFETIME).astimezone(UTC).replace(microsecond=0)
        kind = san_kind or ("email" if "@" in san and "://" not in san else "uri")
        general_name: x509.GeneralName = (
            x509.RFC822Name(san) if kind == "email" else x509.UniformResourceIdentifier(san)
        )
        extensions: list[tuple[x509.ExtensionType, bool]] = [
            (x509.KeyUsage(True, False, False, False, False, False, False, False, False), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False),
            (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
            (x509.AuthorityKeyIdentifier.from_issuer_public_key(self.intermediate_key.public_key()), False),
            (x509.SubjectAlternativeName([general_name]), True),  # empty subject → SAN must be critical
        ]
        if issuer_v1:
            extensions.append((x509.UnrecognizedExtension(OID_ISSUER_V1, issuer.encode()), False))
        if issuer_v2:
            extensions.append((x509.UnrecognizedExtension(OID_ISSUER_V2, _der_utf8string(issuer)), False))
        serial = x509.random_serial_number()

        def build(sct_extension: bytes | None) -> x509.Certificate:
            builder = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([]))
                .issuer_name(self.intermediate_cert.subject)
                .public_key(key.public_key())
                .serial_number(serial)
                .not_valid_before(not_before)
                .not_valid_after(not_after)
            )
            for extension, critical in extensions:
                builder = builder.add_extension(extension, critical=critical)
            if sct_extension is not None:
                builder = builder.add_extension(
                    x509.UnrecognizedExtension(OID_EMBEDDED_SCT, sct_extension), critical=False
                )
            return builder.sign(self.intermediate_key, hashes.SHA256())

        if sct == "none":
            return Leaf(key, build(None))
        # Pass 1: a placeholder SCT, only to obtain the TBSPrecertificate (which omits it).
        precert = build(_sct_list_extension(b"\x00" * 32, 0, b"placeholder"))
        ct_key = self.ct_key if sct == "trusted" else self._foreign_ct_key
        timestamp_ms = int(not_before.timestamp()) * 1000  # whole seconds: sigstore rebuilds ms via float
        signed = struct.pack("!BBQH", 0, 0, timestamp_ms, 1)  # v1, certificate_timestamp, ts, precert_entry
        signed += _key_id(self.intermediate_key.public_key())
        tbs = precert.tbs_precertificate_bytes
        signed += len(tbs).to_bytes(3, "big") + tbs + b"\x00\x00"  # tbs<1..2^24-1>, no extensions
        signature = _sign(ct_key, signed)
        # Pass 2: same serial, validity and extension order, with the real SCT.
        return Leaf(key, build(_sct_list_extension(_key_id(ct_key.public_key()), timestamp_ms, signature)))

    def _leaf_for(
        self,
        *,
        san: str,
        issuer: str,
        signed_at: datetime,
        expired: bool,
        no_sct: bool,
        sct_key_foreign: bool,
        san_kind: SanKind | None,
        issuer_v1: bool,
        issuer_v2: bool,
    ) -> Leaf:
        if expired:  # the whole validity window lies before the integrated time
            not_before = signed_at - LEAF_LIFETIME - timedelta(minutes=5)
        else:
            not_before = signed_at - LEAF_ISSUED_BEFORE_SIGNING
        return self.issue_leaf(
            san=san,
            issuer=issuer,
            not_before=not_before,
            san_kind=san_kind,
            issuer_v1=issuer_v1,
            issuer_v2=issuer_v2,
            sct="none" if no_sct else "foreign" if sct_key_foreign else "trusted",
        )

    # -- Rekor v1 -------------------------------------------------------------------------

    def log_entry(
        self,
        body: bytes,
        *,
        kind: str,
        integrated_time: int,
        tamper: Tamper | None = None,
        inclusion_promise: bool = True,
    ) -> LogEntry:
        """Record ``body`` in a fresh ~10-leaf tree; SET, inclusion proof and checkpoint included."""
        log_index = self._next_log_index
        self._next_log_index += self._rng.randrange(1, 50)
        position = self._rng.randrange(TREE_SIZE)
        leaves = [_leaf_hash(self._rng.randbytes(64)) for _ in range(TREE_SIZE)]
        leaves[position] = _leaf_hash(body)
        root = merkle_root(leaves)
        path = inclusion_path(position, leaves)
        if tamper == "inclusion_proof":
            path = path[:-1]
        body_b64 = _b64(body)
        set_payload = rfc8785.dumps(
            {
                "body": body_b64,
                "integratedTime": integrated_time,
                "logID": self.rekor_log_id.hex(),
                "logIndex": log_index,
            }
        )
        set_key = self._foreign_rekor_key if tamper == "set_foreign_key" else self.rekor_key
        set_signature = _sign(set_key, set_payload)
        if tamper == "integrated_time":  # moved after the SET was signed
            integrated_time += 60
        checkpoint_key = self._foreign_rekor_key if tamper == "checkpoint_foreign_key" else self.rekor_key
        proof = {
            "logIndex": str(position),
            "rootHash": _b64(root),
            "treeSize": str(TREE_SIZE),
            "hashes": [_b64(h) for h in path],
            "checkpoint": {"envelope": self._checkpoint(TREE_SIZE, root, checkpoint_key)},
        }
        entry: dict[str, Any] = {
            "logIndex": str(log_index),
            "logId": {"keyId": _b64(self.rekor_log_id)},
            "kindVersion": {"kind": kind, "version": "0.0.1"},
            "integratedTime": str(integrated_time),
        }
        if inclusion_promise:
            entry["inclusionPromise"] = {"signedEntryTimestamp": _b64(set_signature)}
        entry["inclusionProof"] = proof
        entry["canonicalizedBody"] = body_b64
        return LogEntry(entry, body, log_index, integrated_time, set_signature, proof)

    def _checkpoint(self, size: int, root: bytes, key: ec.EllipticCurvePrivateKey) -> str:
        """A signed note: three body lines, one blank line, then ``— <name> <b64(keyhint ‖ sig)>``."""
        note = f"{self.rekor_origin}\n{size}\n{_b64(root)}\n"
        signature = _sign(key, note.encode())
        signer = self.rekor_origin.split(" ")[0]
        return f"{note}\n\u2014 {signer} {_b64(self.rekor_log_id[:4] + signature)}\n"

    # -- cosign v3 bundle -----------------------------------------------------------------

    def sign_bundle(
        self,
        digest: str,
        *,
        san: str,
        issuer: str,
        signed_at: datetime,
        integrated_time: datetime | None = None,
        predicate_type: str = COSIGN_SIGN_PREDICATE,
        predicate: Mapping[str, Any] | None = None,
        statement_type: str = STATEMENT_V1,
        payload_type: str = IN_TOTO,
        subject_digest: str | None = None,
        subject_annotations: Mapping[str, str] | None = None,
        tamper: Tamper | None = None,
        expired: bool = False,
        no_sct: bool = False,
        sct_key_foreign: bool = False,
        no_inclusion_promise: bool = False,
        san_kind: SanKind | None = None,
        issuer_v1: bool = True,
        issuer_v2: bool = True,
        media_type: str = BUNDLE_V03,
    ) -> bytes:
        """A cosign v3 ``cosign sign`` bundle for manifest ``digest`` (``sha256:<hex>``).

        ``integrated_time`` defaults to ``signed_at``; the leaf is valid from one minute before it for
        ten minutes. What sigstore-python 4.5.1 makes of each negative knob:

        * cryptographically valid, for the product's own payload checks: ``predicate_type``,
          ``statement_type``, ``payload_type`` (returned unchecked), ``subject_digest`` (the statement
          names another digest);
        * ``tamper="signature"`` / ``"payload"``: ``VerificationError("DSSE: invalid signature")``;
        * ``tamper="integrated_time"`` (+60 s after the SET) / ``"set_foreign_key"``:
          ``VerificationError("invalid log entry: SET: invalid inclusion promise: …")``;
        * ``tamper="checkpoint_foreign_key"``: ``VerificationError("… checkpoint: invalid signature …")``;
        * ``tamper="inclusion_proof"`` (one hash short):
          ``VerificationError("… inclusion proof has wrong size …")``;
        * ``expired=True`` (validity ends before the integrated time), or an ``integrated_time`` outside
          the window: ``CertValidationError("failed to build timestamp certificate chain: … not valid
          at validation time …")``;
        * ``no_sct=True`` / ``sct_key_foreign=True``: ``VerificationError("failed to verify SCT …")``;
        * ``no_inclusion_promise=True``: ``Bundle.from_json`` raises ``InvalidBundle``;
        * a bundle from another ``VirtualSigstore``: ``CertValidationError`` (no chain to the root).
        """
        leaf = self._leaf_for(
            san=san,
            issuer=issuer,
            signed_at=signed_at,
            expired=expired,
            no_sct=no_sct,
            sct_key_foreign=sct_key_foreign,
            san_kind=san_kind,
            issuer_v1=issuer_v1,
            issuer_v2=issuer_v2,
        )
        claimed = _digest_hex(subject_digest or digest)

        def statement(subject_hex: str) -> bytes:
            document = {
                "_type": statement_type,
                "subject": [{"digest": {"sha256": subject_hex}, "annotations": dict(subject_annotations or {})}],
                "predicateType": predicate_type,
                "predicate": dict(predicate or {}),
            }
            # cosign's protojson output is spaced irregularly; never compact, so nobody compares bytes.
            return json.dumps(document).encode()

        payload = statement(claimed)
        signed_payload = (
            statement(hashlib.sha256(b"what was really signed").hexdigest()) if tamper == "payload" else payload
        )
        signature = _sign(leaf.key, pae(payload_type, signed_payload))
        if tamper == "signature":  # well-formed, by the right key, over the wrong bytes; logged as such
            signature = _sign(leaf.key, pae(payload_type, payload + b" "))
        envelope = {"payload": _b64(payload), "payloadType": payload_type, "signatures": [{"sig": _b64(signature)}]}
        body = rfc8785.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "envelopeHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(json.dumps(envelope).encode()).hexdigest(),
                    },
                    "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(signed_payload).hexdigest()},
                    "signatures": [{"signature": _b64(signature), "verifier": _b64(leaf.pem)}],
                },
            }
        )
        entry = self.log_entry(
            body,
            kind="dsse",
            integrated_time=int((integrated_time or signed_at).timestamp()),
            tamper=tamper,
            inclusion_promise=not no_inclusion_promise,
        )
        bundle = {
            "mediaType": media_type,
            "verificationMaterial": {"certificate": {"rawBytes": _b64(leaf.der)}, "tlogEntries": [entry.tlog_entry]},
            "dsseEnvelope": envelope,
        }
        return json.dumps(bundle, indent=2).encode()

    # -- legacy cosign .sig ---------------------------------------------------------------

    def legacy_signature(
        self,
        digest: str,
        *,
        docker_reference: str,
        san: str,
        issuer: str,
        signed_at: datetime,
        integrated_time: datetime | None = None,
        tamper: LegacyTamper | None = None,
        expired: bool = False,
        no_sct: bool = False,
        sct_key_foreign: bool = False,
        san_kind: SanKind | None = None,
        issuer_v1: bool = True,
        issuer_v2: bool = True,
    ) -> LegacySignature:
        """A keyless cosign < v3 signature of ``digest``, as the ``.sig`` layer and its annotations."""
        leaf = self._leaf_for(
            san=san,
            issuer=issuer,
            signed_at=signed_at,
            expired=expired,
            no_sct=no_sct,
            sct_key_foreign=sct_key_foreign,
            san_kind=san_kind,
            issuer_v1=issuer_v1,
            issuer_v2=issuer_v2,
        )

        def simple_signing(reference: str) -> bytes:
            # Go struct order and encoding/json's compact output, as cosign marshals it.
            document = {
                "critical": {
                    "identity": {"docker-reference": reference},
                    "image": {"docker-manifest-digest": "sha256:" + _digest_hex(digest)},
                    "type": SIMPLE_SIGNING_TYPE,
                },
                "optional": None,
            }
            return json.dumps(document, separators=(",", ":")).encode()

        payload = simple_signing(docker_reference)
        signed_payload = payload
        if tamper == "payload":  # the signature and the log entry are for another reference
            signed_payload = simple_signing(docker_reference + "-original")
        signature = _sign(leaf.key, signed_payload)
        if tamper == "signature":
            signature = _sign(leaf.key, payload + b" ")
        body = rfc8785.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "hashedrekord",
                "spec": {
                    "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(signed_payload).hexdigest()}},
                    "signature": {"content": _b64(signature), "publicKey": {"content": _b64(leaf.pem)}},
                },
            }
        )
        entry = self.log_entry(
            body, kind="hashedrekord", integrated_time=int((integrated_time or signed_at).timestamp()), tamper=tamper
        )
        rekor_bundle = {
            "SignedEntryTimestamp": _b64(entry.set_signature),
            "Payload": {
                "body": _b64(body),
                "integratedTime": entry.integrated_time,
                "logIndex": entry.log_index,
                "logID": self.rekor_log_id.hex(),
            },
        }
        annotations = {
            SIGNATURE_ANNOTATION: _b64(signature),
            CERTIFICATE_ANNOTATION: leaf.pem.decode(),
            CHAIN_ANNOTATION: self.chain_pem.decode(),
            BUNDLE_ANNOTATION: json.dumps(rekor_bundle, separators=(",", ":")),
        }
        der = serialization.Encoding.DER
        return LegacySignature(
            payload=payload,
            annotations=annotations,
            leaf_der=leaf.der,
            chain_der=(self.intermediate_cert.public_bytes(der), self.root_cert.public_bytes(der)),
            log_index=entry.log_index,
            integrated_time=entry.integrated_time,
            log_id=self.rekor_log_id,
            body=body,
            inclusion_proof=entry.inclusion_proof,
        )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(False, False, False, False, False, True, True, False, False)


def _sct_list_extension(log_id: bytes, timestamp_ms: int, signature: bytes) -> bytes:
    """DER OCTET STRING holding a TLS SignedCertificateTimestampList with one v1 SCT."""
    sct = b"\x00" + log_id + struct.pack("!Q", timestamp_ms) + b"\x00\x00"  # version, id, timestamp, no ext
    sct += b"\x04\x03" + struct.pack("!H", len(signature)) + signature  # sha256, ecdsa
    entry = struct.pack("!H", len(sct)) + sct
    return _der_octet_string(struct.pack("!H", len(entry)) + entry)


# --- OCI publishing ------------------------------------------------------------------------


def bundle_referrer(
    subject: images.Pushable,
    bundle: bytes,
    *,
    created: datetime | None = None,
    predicate_type: str | None = None,
) -> images.Manifest:
    """The referrer manifest cosign v3 writes for a bundle (cosign-verification.md §1)."""
    if predicate_type is None:
        predicate_type = _bundle_predicate_type(bundle)
    config = images.Blob(images.OCI_EMPTY, b"{}")
    layer = images.Blob(BUNDLE_V03, bundle)
    document = {
        "schemaVersion": 2,
        "mediaType": images.OCI_MANIFEST,
        "artifactType": BUNDLE_V03,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
        "subject": subject.document.descriptor(),
        "annotations": {
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": predicate_type,
            "org.opencontainers.image.created": _rfc3339(created or datetime.now(UTC)),
        },
    }
    raw = json.dumps(document, separators=(",", ":")).encode()
    return images.Manifest(images.Blob(images.OCI_MANIFEST, raw), config, (layer,))


def _bundle_predicate_type(bundle: bytes) -> str:
    try:
        envelope = json.loads(bundle)["dsseEnvelope"]
        predicate = json.loads(base64.b64decode(envelope["payload"]))["predicateType"]
    except (KeyError, ValueError, TypeError):
        return COSIGN_SIGN_PREDICATE
    return str(predicate)


def push_bundle_referrer(
    registry: Registry,
    repo: str,
    subject: images.Pushable,
    bundle: bytes,
    *,
    fallback: bool,
    index_annotations: bool = True,
    auth: Credentials | None = None,
    created: datetime | None = None,
) -> images.Manifest:
    """Push a bundle referrer by digest; with ``fallback`` also add it to the ``sha256-<hex>`` index.

    The index is read, extended and rewritten, so several signatures accumulate as they would with
    repeated ``cosign sign`` runs. ``index_annotations=False`` writes descriptors without
    annotations, as cosign's own fallback write does (sigstore/cosign#4641).
    """
    manifest = bundle_referrer(subject, bundle, created=created)
    images.push(registry, repo, None, manifest, auth=auth)
    if fallback:
        tag = fallback_tag(subject.digest)
        client = images.Client(registry, auth)
        existing = client.request(
            "GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": images.OCI_INDEX}, ok=(200, 404)
        )
        entries: list[dict[str, Any]] = json.loads(existing.body)["manifests"] if existing.status == 200 else []
        entry = index_entry(manifest)
        if not index_annotations:
            entry.pop("annotations", None)
        if all(e.get("digest") != manifest.digest for e in entries):
            entries.append(entry)
        document = {"schemaVersion": 2, "mediaType": images.OCI_INDEX, "manifests": entries}
        client.request(
            "PUT",
            f"/v2/{repo}/manifests/{tag}",
            body=json.dumps(document).encode(),
            headers={"Content-Type": images.OCI_INDEX},
            ok=(201,),
        )
    return manifest


def legacy_signature_manifest(layers: Sequence[tuple[bytes, Mapping[str, str]]]) -> images.Manifest:
    """cosign's ``.sig`` image: an OCI manifest whose layers are simple-signing payloads.

    The config is the minimal image config go-containerregistry derives for such an image (one
    ``diff_id`` per layer); cosign gives it the OCI config media type.
    """
    blobs = [images.Blob(SIMPLE_SIGNING, payload) for payload, _ in layers]
    config_document = {
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"} for _ in blobs],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [b.digest for b in blobs]},
        "config": {},
    }
    config = images.Blob(images.OCI_CONFIG, json.dumps(config_document, separators=(",", ":")).encode())
    descriptors = [
        {"mediaType": blob.media_type, "size": blob.size, "digest": blob.digest, "annotations": dict(annotations)}
        for blob, (_, annotations) in zip(blobs, layers, strict=True)
    ]
    document = {
        "schemaVersion": 2,
        "mediaType": images.OCI_MANIFEST,
        "config": {"mediaType": config.media_type, "size": config.size, "digest": config.digest},
        "layers": descriptors,
    }
    raw = json.dumps(document, separators=(",", ":")).encode()
    return images.Manifest(images.Blob(images.OCI_MANIFEST, raw), config, tuple(blobs))


def legacy_tag(digest: str) -> str:
    return fallback_tag(digest) + ".sig"


def push_legacy_signature(
    registry: Registry,
    repo: str,
    subject_digest: str,
    sig: LegacySignature,
    *,
    append: bool = True,
    auth: Credentials | None = None,
) -> images.Manifest:
    """Push ``sig`` at ``sha256-<hex>.sig``; with ``append`` keep the layers already there (as cosign does)."""
    tag = legacy_tag(subject_digest)
    layers: list[tuple[bytes, Mapping[str, str]]] = []
    if append:
        client = images.Client(registry, auth)
        existing = client.request(
            "GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": images.OCI_MANIFEST}, ok=(200, 404)
        )
        if existing.status == 200:
            for descriptor in json.loads(existing.body)["layers"]:
                data = images.get_blob(registry, repo, descriptor["digest"], auth=auth)
                layers.append((data, descriptor.get("annotations") or {}))
    if all(payload != sig.payload or dict(annotations) != sig.annotations for payload, annotations in layers):
        layers.append((sig.payload, sig.annotations))
    manifest = legacy_signature_manifest(layers)
    images.push(registry, repo, tag, manifest, auth=auth)
    return manifest
