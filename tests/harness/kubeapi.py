"""A tiny stand-in kube-apiserver: only the namespaced Secret endpoints, with the real server's semantics.

No kube-apiserver can run here, so this serves what `secret` uses — create, get and update — over TLS
(the in-cluster client insists on https) with bearer-token auth (and basic auth when given a user),
Status objects shaped like the real ones, a global resourceVersion, optimistic concurrency on update
and an immutable `type`. A client that accepts gzip gets every response gzipped (the real server does
so for large ones). It records every request so tests can check what the client sent.
"""

from __future__ import annotations

import base64
import gzip
import json
import ssl
import threading
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.pki import PKI

_PATH_PARTS = 6  # "", api, v1, namespaces, <ns>, secrets[, <name>]


@dataclass(frozen=True)
class KubeRequest:
    method: str
    path: str
    headers: dict[str, list[str]]
    body: dict[str, Any] | None


class _Failure(Exception):
    def __init__(self, code: HTTPStatus, reason: str, message: str, name: str = "") -> None:
        super().__init__(message)
        self.status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": int(code),
        }
        if name:
            self.status["details"] = {"name": name, "kind": "secrets"}


class KubeAPI:
    """Serves https://127.0.0.1:<port> with the test CA's server certificate until ``close``.

    ``concurrent_writes`` makes that many GETs of a Secret be followed by another writer's update, so
    the client's next PUT carries a stale resourceVersion.
    """

    def __init__(self, pki: PKI, token: str, basic: tuple[str, str] | None = None) -> None:
        self.token = token
        self.basic = basic
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[KubeRequest] = []
        self.concurrent_writes = 0
        self._lock = threading.Lock()
        self._version = 100
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pki.server_cert_path, pki.server_key_path)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def store(self, secret: dict[str, Any]) -> dict[str, Any]:
        """Put a Secret on the server directly, as another client would have; returns it as stored."""
        with self._lock:
            metadata = secret.setdefault("metadata", {})
            metadata.setdefault("uid", str(uuid.uuid4()))
            metadata.setdefault("creationTimestamp", "2025-01-01T00:00:00Z")
            metadata["resourceVersion"] = self._next_version()
            self.secrets[(metadata["namespace"], metadata["name"])] = secret
            return secret

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def handle(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[HTTPStatus, dict[str, Any]]:
        parts = path.split("?")[0].split("/")
        if (
            len(parts) not in (_PATH_PARTS, _PATH_PARTS + 1)
            or parts[1:4] != ["api", "v1", "namespaces"]
            or parts[5] != "secrets"
        ):
            raise _Failure(HTTPStatus.NOT_FOUND, "NotFound", "the server could not find the requested resource")
        namespace, name = parts[4], (parts[6] if len(parts) > _PATH_PARTS else "")
        with self._lock:
            if method == "POST" and not name:
                return HTTPStatus.CREATED, self._create(namespace, body or {})
            key = (namespace, name)
            if name and key not in self.secrets:
                raise _Failure(HTTPStatus.NOT_FOUND, "NotFound", f'secrets "{name}" not found', name)
            if method == "GET" and name:
                found = json.loads(json.dumps(self.secrets[key]))
                if self.concurrent_writes:
                    self.concurrent_writes -= 1
                    self.secrets[key]["metadata"]["resourceVersion"] = self._next_version()
                return HTTPStatus.OK, found
            if method == "PUT" and name:
                return HTTPStatus.OK, self._update(key, body or {})
        raise _Failure(HTTPStatus.METHOD_NOT_ALLOWED, "MethodNotAllowed", "the server does not allow this method")

    def _create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        metadata = body.setdefault("metadata", {})
        name = metadata.get("name", "")
        if metadata.setdefault("namespace", namespace) != namespace:
            raise _Failure(
                HTTPStatus.BAD_REQUEST,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        if (namespace, name) in self.secrets:
            raise _Failure(HTTPStatus.CONFLICT, "AlreadyExists", f'secrets "{name}" already exists', name)
        metadata.pop("resourceVersion", None)
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = "2025-01-01T00:00:00Z"
        metadata["resourceVersion"] = self._next_version()
        self.secrets[(namespace, name)] = body
        return body

    def _update(self, key: tuple[str, str], body: dict[str, Any]) -> dict[str, Any]:
        current = self.secrets[key]
        metadata = body.setdefault("metadata", {})
        sent = metadata.get("resourceVersion")
        if sent and sent != current["metadata"]["resourceVersion"]:
            raise _Failure(
                HTTPStatus.CONFLICT,
                "Conflict",
                f'Operation cannot be fulfilled on secrets "{key[1]}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                key[1],
            )
        if body.get("type", "Opaque") != current.get("type", "Opaque"):
            raise _Failure(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                "Invalid",
                f'Secret "{key[1]}" is invalid: type: Invalid value: "{body.get("type")}": field is immutable',
                key[1],
            )
        metadata.update(uid=current["metadata"]["uid"], creationTimestamp=current["metadata"]["creationTimestamp"])
        metadata["resourceVersion"] = self._next_version()
        self.secrets[key] = body
        return body


def _handler(api: KubeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            headers: dict[str, list[str]] = {}
            for name, value in self.headers.items():
                headers.setdefault(name.lower(), []).append(value)
            api.requests.append(KubeRequest(self.command, self.path, headers, json.loads(json.dumps(body))))
            try:
                if not self._authenticated():
                    raise _Failure(HTTPStatus.UNAUTHORIZED, "Unauthorized", "Unauthorized")
                code, document = api.handle(self.command, self.path, body)
            except _Failure as failure:
                code, document = HTTPStatus(failure.status["code"]), failure.status
            payload = json.dumps(document).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                payload = gzip.compress(payload)
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _authenticated(self) -> bool:
            # Like the API server's authenticators: the scheme is case-insensitive.
            scheme, _, credential = (self.headers.get("Authorization") or "").partition(" ")
            if scheme.lower() == "bearer":
                return credential == api.token
            if scheme.lower() == "basic" and api.basic is not None:
                return base64.b64decode(credential) == ":".join(api.basic).encode()
            return False

        do_GET = do_POST = do_PUT = _serve

    return Handler
