"""A throw-away PKI so TLS, mTLS and token signing run against real certificate checks.

EC P-256 keys keep generation near-instant; every certificate carries the extensions that
Python's strict verification (3.13+) and Go's crypto/x509 insist on.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=2)

REGISTRY_NAME = "registry.test"
"""A registry's name when a test reaches it through ``harness.forwardproxy``: it never resolves."""
CHARTS_NAME = "charts.test"
"""A chart repository's name when a test reaches it through ``harness.forwardproxy``."""
ECR_NAME = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
ACR_NAME = "mirror.azurecr.io"
GAR_NAME = "us-docker.pkg.dev"
ECR_PUBLIC_NAME = "public.ecr.aws"
CLOUD_NAMES = (ECR_NAME, ACR_NAME, GAR_NAME, ECR_PUBLIC_NAME)
"""Cloud registry names a test reaches through ``harness.forwardproxy`` (routed to loopback):
the cloud providers accept only hosts of these shapes."""
STS_NAME = "sts.googleapis.com"
IAM_CREDENTIALS_NAME = "iamcredentials.googleapis.com"
GOOGLE_API_NAMES = (STS_NAME, IAM_CREDENTIALS_NAME)
"""Google APIs google-auth calls at fixed addresses (workload identity federation): a test reaches
the fake in ``harness.google_sts`` under these names, through ``harness.forwardproxy``."""
SERVER_NAMES = ("localhost", REGISTRY_NAME, CHARTS_NAME, *CLOUD_NAMES, *GOOGLE_API_NAMES)
"""DNS names of the one server certificate (besides ``127.0.0.1``). The ``.test`` names are
reserved (RFC 6761) and resolve nowhere, so a client can reach them only through the forward
proxy's host map; carrying them here lets it verify the certificate as it would any other. The cloud
names do resolve, but tests reach them only through the proxy's host map too."""


@dataclass(frozen=True)
class PKI:
    """Paths to the PEM files plus the token signing material the token server needs in memory.

    ``ca_cert_dir`` and ``client_cert_dir`` follow the containers-certs.d layout
    (``*.crt`` = trusted CA, ``*.cert``/``*.key`` = client pair) so skopeo's ``--cert-dir``
    can use them directly.
    """

    ca_path: Path
    server_cert_path: Path
    server_key_path: Path
    client_cert_path: Path
    client_key_path: Path
    ca_cert_dir: Path
    client_cert_dir: Path
    token_key: ec.EllipticCurvePrivateKey
    token_cert_chain: tuple[str, ...]  # base64 DER, leaf first: the JWT `x5c` header value


def create_pki(directory: Path) -> PKI:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _ca_certificate(ca_key)

    server_key, server_cert = _leaf(
        ca_key,
        ca_cert,
        "fluxmirror test registry",
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        sans=[x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")), *map(x509.DNSName, SERVER_NAMES)],
    )
    client_key, client_cert = _leaf(ca_key, ca_cert, "fluxmirror test client", usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    # distribution verifies the token's x5c chain against `rootcertbundle` with
    # ExtKeyUsageAny, so a plain CA-signed leaf is enough.
    token_key, token_cert = _leaf(
        ca_key, ca_cert, "fluxmirror test token issuer", usage=ExtendedKeyUsageOID.CODE_SIGNING
    )

    ca_path = _write_cert(directory / "ca.pem", ca_cert)
    server_cert_path = _write_cert(directory / "server.pem", server_cert)
    server_key_path = _write_key(directory / "server-key.pem", server_key)
    client_cert_path = _write_cert(directory / "client.pem", client_cert)
    client_key_path = _write_key(directory / "client-key.pem", client_key)

    ca_cert_dir = directory / "certs.d-ca"
    ca_cert_dir.mkdir(exist_ok=True)
    _write_cert(ca_cert_dir / "ca.crt", ca_cert)
    client_cert_dir = directory / "certs.d-client"
    client_cert_dir.mkdir(exist_ok=True)
    _write_cert(client_cert_dir / "ca.crt", ca_cert)
    _write_cert(client_cert_dir / "client.cert", client_cert)
    _write_key(client_cert_dir / "client.key", client_key)

    return PKI(
        ca_path=ca_path,
        server_cert_path=server_cert_path,
        server_key_path=server_key_path,
        client_cert_path=client_cert_path,
        client_key_path=client_key_path,
        ca_cert_dir=ca_cert_dir,
        client_cert_dir=client_cert_dir,
        token_key=token_key,
        token_cert_chain=(base64.b64encode(token_cert.public_bytes(serialization.Encoding.DER)).decode(),),
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, *, ca: bool
) -> x509.CertificateBuilder:
    """What every test certificate shares: validity around now, basic constraints, key usage."""
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _VALIDITY)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fluxmirror test CA")])
    return _builder(name, name, key, ca=True).sign(key, hashes.SHA256())


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    *,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName] | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        _builder(subject, ca_cert.subject, key, ca=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path
