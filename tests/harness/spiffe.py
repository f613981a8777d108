"""A SPIFFE trust domain for tests: a CA issuing X.509-SVIDs (cryptography), and a fake Workload API
(gRPC on a unix socket, py-spiffe's own protobuf modules) whose `rotate()` pushes a new SVID to
every open stream.

The same fake answers `FetchJWTSVID` with ES256 JWT-SVIDs minted by a `harness.jwtissuer.JwtIssuer`
(and `FetchJWTBundles` with that issuer's key as a JWKS), so a registry-side check in a test can
verify that the very JWT-SVID the agent handed out reached the registry, for the asked audience."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import ExtendedKeyUsageOID
from spiffe._proto import workload_pb2, workload_pb2_grpc

from harness.background import BackgroundLoop
from harness.jwtissuer import JwtIssuer

_VALIDITY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Svid:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def serial(self) -> int:
        return self.certificate.serial_number

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = directory / f"{name}.crt", directory / f"{name}.key"
        cert.write_bytes(self.certificate.public_bytes(Encoding.PEM))
        key.write_bytes(self.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        return cert, key


class SpiffeCA:
    """The CA of one trust domain: SAN `spiffe://<td>`, issuing SVIDs with one critical URI SAN."""

    def __init__(self, trust_domain: str) -> None:
        self.trust_domain = trust_domain
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        public = self.key.public_key()
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(x509.Name([]))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"spiffe://{trust_domain}")]), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(Encoding.PEM)

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.pem)
        return path

    def issue(self, spiffe_id: str, *, loopback_names: bool = False) -> Svid:
        """An SVID for `spiffe_id`; `loopback_names` adds DNS `localhost` and IP `127.0.0.1` (a
        registry's SVID, so the harness can reach it with a plain CA check too)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(spiffe_id)]
        if loopback_names:
            names += [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(x509.Name([]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(names), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return Svid(certificate, key)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=not cert_sign,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


JWT_SVID_LIFETIME = 300.0
"""Seconds a JWT-SVID is valid by default (SPIRE's default TTL is 5 minutes)."""


class FakeWorkloadAPI(workload_pb2_grpc.SpiffeWorkloadAPIServicer):  # type: ignore[misc]
    """Streams the current X.509-SVID (and the CA as the bundle); `rotate()` issues and pushes a new one.

    JWT-SVIDs: `FetchJWTSVID` mints one per call with `jwt_issuer` (`sub` = the SPIFFE ID, `aud` =
    the requested audiences, valid for `jwt_lifetime` seconds, a knob) and records the audiences in
    `jwt_requests`; `FetchJWTBundles` streams the issuer's public key as the trust domain's JWKS.
    """

    def __init__(self, ca: SpiffeCA, spiffe_id: str, *, jwt_issuer: JwtIssuer | None = None) -> None:
        self.ca, self.spiffe_id = ca, spiffe_id
        self._lock = threading.Lock()
        self._subscribers: list[queue.Queue[Any]] = []
        self.svid = ca.issue(spiffe_id)
        self._current = self._response()
        self.jwt_issuer = jwt_issuer or JwtIssuer(f"spiffe://{ca.trust_domain}")
        self.jwt_lifetime = JWT_SVID_LIFETIME
        self._jwt_requests: list[tuple[str, ...]] = []
        self.endpoint: str | None = None  # the SPIFFE_ENDPOINT_SOCKET value, once served

    def environment(self) -> dict[str, str]:
        """What a subprocess needs to reach this Workload API (py-spiffe and go-spiffe read this)."""
        if self.endpoint is None:
            raise RuntimeError("the Workload API is not served yet (use workload_api(...))")
        return {"SPIFFE_ENDPOINT_SOCKET": self.endpoint}

    @property
    def jwt_requests(self) -> list[tuple[str, ...]]:
        """The audiences of every `FetchJWTSVID` call answered, in order (sorted within a call)."""
        with self._lock:
            return list(self._jwt_requests)

    def reset_jwt(self) -> None:
        """Forget the JWT-SVID requests and mints so far, and restore the default lifetime."""
        with self._lock:
            self._jwt_requests.clear()
        self.jwt_issuer.reset()
        self.jwt_lifetime = JWT_SVID_LIFETIME

    def jwks(self) -> dict[str, Any]:
        """The JWT bundle of the trust domain: the issuer's public key as an RFC 7517 key set."""
        key: dict[str, Any] = jwt.algorithms.ECAlgorithm.to_jwk(self.jwt_issuer.key.public_key(), as_dict=True)
        return {"keys": [key | {"kid": self.jwt_issuer.kid, "use": "jwt-svid"}]}

    def _response(self) -> Any:
        return workload_pb2.X509SVIDResponse(
            svids=[
                workload_pb2.X509SVID(
                    spiffe_id=self.spiffe_id,
                    x509_svid=self.svid.certificate.public_bytes(Encoding.DER),
                    x509_svid_key=self.svid.key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption()),
                    bundle=self.ca.certificate.public_bytes(Encoding.DER),
                )
            ]
        )

    def rotate(self) -> Svid:
        with self._lock:
            self.svid = self.ca.issue(self.spiffe_id)
            self._current = self._response()
            for subscriber in self._subscribers:
                subscriber.put(self._current)
        return self.svid

    def FetchX509SVID(self, request: Any, context: Any) -> Iterator[Any]:
        if dict(context.invocation_metadata()).get("workload.spiffe.io") != "true":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "security header missing from request")
        updates: queue.Queue[Any] = queue.Queue()
        with self._lock:
            updates.put(self._current)
            self._subscribers.append(updates)
        try:
            while context.is_active():
                with contextlib.suppress(queue.Empty):
                    yield updates.get(timeout=0.2)
        finally:
            with self._lock:
                self._subscribers.remove(updates)

    def FetchJWTSVID(self, request: Any, context: Any) -> Any:
        if dict(context.invocation_metadata()).get("workload.spiffe.io") != "true":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "security header missing from request")
        audiences = tuple(sorted(request.audience))
        if not audiences:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "audience must be specified")
        if request.spiffe_id and request.spiffe_id != self.spiffe_id:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"no identity issued for {request.spiffe_id}")
        with self._lock:
            self._jwt_requests.append(audiences)
        token = self.jwt_issuer.mint(subject=self.spiffe_id, audience=list(audiences), lifetime=self.jwt_lifetime)
        return workload_pb2.JWTSVIDResponse(svids=[workload_pb2.JWTSVID(spiffe_id=self.spiffe_id, svid=token)])

    def FetchJWTBundles(self, request: Any, context: Any) -> Iterator[Any]:
        if dict(context.invocation_metadata()).get("workload.spiffe.io") != "true":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "security header missing from request")
        bundle = json.dumps(self.jwks()).encode()
        yield workload_pb2.JWTBundlesResponse(bundles={f"spiffe://{self.ca.trust_domain}": bundle})
        while context.is_active():  # a stream stays open, as an agent's does
            time.sleep(0.2)


@contextlib.contextmanager
def workload_api(
    socket: Path, ca: SpiffeCA, spiffe_id: str, *, jwt_issuer: JwtIssuer | None = None
) -> Iterator[tuple[FakeWorkloadAPI, str]]:
    """Serve a fake Workload API on `socket`; yields it and the `SPIFFE_ENDPOINT_SOCKET` value.
    `jwt_issuer` signs its JWT-SVIDs (default: a fresh one with `iss` = `spiffe://<trust domain>`)."""
    api = FakeWorkloadAPI(ca, spiffe_id, jwt_issuer=jwt_issuer)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    workload_pb2_grpc.add_SpiffeWorkloadAPIServicer_to_server(api, server)
    server.add_insecure_port(f"unix:{socket}")
    server.start()
    api.endpoint = f"unix://{socket}"
    try:
        yield api, api.endpoint
    finally:
        server.stop(grace=None)


@dataclass
class Connection:
    """One accepted TLS connection: the client certificate's serial (None if none) and the bytes sent."""

    client_serial: int | None
    received: int = 0


class RecordingTLSServer:
    """A TLS server (serving `svid`, asking for an optional client certificate of `ca`) that records,
    per connection, the client certificate's serial and how many application bytes arrived, and
    answers any request head with `404` so a client moves on."""

    def __init__(self, loop: BackgroundLoop, svid: Svid, ca: SpiffeCA, directory: Path) -> None:
        """`before_answer`, if set, runs (in a thread) before each answer with the connection's index."""
        import ssl

        cert, key = svid.write(directory, "recording-server")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.load_verify_locations(cadata=ca.pem.decode())
        context.verify_mode = ssl.CERT_OPTIONAL
        self.connections: list[Connection] = []
        self.before_answer: Callable[[int], None] | None = None
        self._loop = loop
        self._server: asyncio.Server = loop.call(asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=context))
        self.host = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        connection = Connection(x509.load_der_x509_certificate(der).serial_number if der else None)
        self.connections.append(connection)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = await asyncio.wait_for(reader.read(65536), 5)
                if not chunk:
                    return
                head += chunk
                connection.received = len(head)
            if self.before_answer is not None:
                await asyncio.to_thread(self.before_answer, self.connections.index(connection))
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (OSError, TimeoutError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()

        self._loop.call(stop())
