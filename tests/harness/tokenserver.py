"""A Bearer token server that distribution 2.8 trusts, recording what clients ask for.

Tokens are ES256 JWTs whose ``x5c`` header carries a leaf certificate signed by the test CA;
distribution verifies that chain against ``auth.token.rootcertbundle`` and checks
iss/aud/exp/nbf, then grants what the ``access`` claim lists.  The server speaks both the
Docker token protocol (GET with Basic auth) and the OAuth2 POST form (password and
refresh_token grants), because clients pick one or the other.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt

from harness import Credentials
from harness.pki import PKI

SERVICE = "fluxmirror-test-registry"
ISSUER = "fluxmirror-test-issuer"
DEFAULT_EXPIRES_IN = 300


@dataclass(frozen=True)
class TokenRequest:
    """One request as the token endpoint saw it, plus what it answered."""

    method: str
    grant_type: str | None  # None for the GET protocol
    service: str | None
    scopes: tuple[str, ...]
    auth_scheme: str | None  # "basic", "bearer" or None: the Authorization header presented
    username: str | None  # from Basic auth or the password grant form
    client_id: str | None
    offline: bool  # asked for a refresh token (GET offline_token=true or POST access_type=offline)
    status: int
    granted: tuple[str, ...]  # scopes actually put in the token, "type:name:actions"

    def requested_actions(self, name: str, resource_type: str = "repository") -> frozenset[str]:
        """Actions asked for on one resource; clients (and distribution's challenges) vary the order."""
        return frozenset(
            action
            for scope in self.scopes
            if (grant := _grant(scope, pull_only=False)).type == resource_type and grant.name == name
            for action in grant.actions
        )


class _Denied(Exception):
    pass


class TokenServer:
    """Runs in a daemon thread on a loopback port for the whole session.

    Mutable knobs (``allow_anonymous_pull``, ``bearer_validator``, ``password_validator``, ``expires_in``) exist so
    individual tests can shape behaviour; the ``token_server`` fixture resets them.
    """

    def __init__(self, pki: PKI, credentials: Credentials) -> None:
        self._pki = pki
        self.credentials = credentials
        self._lock = threading.Lock()
        self._requests: list[TokenRequest] = []
        self._refresh_tokens: dict[str, str] = {}
        self.allow_anonymous_pull = False
        self.bearer_validator: Callable[[str], bool] | None = None
        self.password_validator: Callable[[str, str], bool] | None = None
        self.expires_in = DEFAULT_EXPIRES_IN
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        # A short poll interval keeps shutdown() (and so session teardown) quick.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="token-server", daemon=True
        )
        self._thread.start()

    @property
    def realm(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/token"

    @property
    def requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._refresh_tokens.clear()
        self.allow_anonymous_pull = False
        self.bearer_validator = None
        self.password_validator = None
        self.expires_in = DEFAULT_EXPIRES_IN

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _sign(self, subject: str, granted: list[_Grant]) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + self.expires_in,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": [g.claim() for g in granted],
        }
        return jwt.encode(
            claims, self._pki.token_key, algorithm="ES256", headers={"x5c": list(self._pki.token_cert_chain)}
        )

    def _handle(self, method: str, authorization: str | None, query: str, form: str) -> tuple[int, bytes]:
        params = parse_qs(query)
        for key, values in parse_qs(form).items():
            params.setdefault(key, []).extend(values)
        grant_type = _first(params, "grant_type")
        scopes = tuple(s for value in params.get("scope", []) for s in value.split(" ") if s)
        auth_scheme, username, presented = _parse_authorization(authorization)
        if grant_type == "password":
            username = _first(params, "username")
        offline = _first(params, "offline_token") == "true" or _first(params, "access_type") == "offline"
        granted: list[_Grant] = []
        refresh_token: str | None = None
        try:
            subject = self._authenticate(grant_type, params, auth_scheme, username, presented)
            granted = [_grant(scope, pull_only=subject is None) for scope in scopes]
            if subject is not None and (offline or grant_type == "refresh_token"):
                refresh_token = _first(params, "refresh_token") or secrets.token_urlsafe(24)
                with self._lock:
                    self._refresh_tokens[refresh_token] = subject
            status, body = HTTPStatus.OK, self._token_response(subject or "", granted, refresh_token)
        except _Denied as denied:
            status = HTTPStatus.UNAUTHORIZED
            body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": str(denied)}]}).encode()
        record = TokenRequest(
            method=method,
            grant_type=grant_type,
            service=_first(params, "service"),
            scopes=scopes,
            auth_scheme=auth_scheme,
            username=username,
            client_id=_first(params, "client_id"),
            offline=offline,
            status=int(status),
            granted=tuple(str(g) for g in granted),
        )
        with self._lock:
            self._requests.append(record)
        return int(status), body

    def _authenticate(
        self,
        grant_type: str | None,
        params: dict[str, list[str]],
        auth_scheme: str | None,
        username: str | None,
        presented: str | None,
    ) -> str | None:
        """Return the subject, None for anonymous, or raise _Denied."""
        if grant_type == "refresh_token":
            with self._lock:
                subject = self._refresh_tokens.get(_first(params, "refresh_token") or "")
            if subject is None:
                raise _Denied("unknown refresh token")
            return subject
        if grant_type == "password":
            if username is None or not self._password_ok(username, _first(params, "password")):
                raise _Denied("bad username or password")
            return username
        if grant_type is not None:
            raise _Denied(f"unsupported grant_type {grant_type}")
        if auth_scheme == "basic":
            if username is None or not self._password_ok(username, presented):
                raise _Denied("bad username or password")
            return username
        if auth_scheme == "bearer":
            validator = self.bearer_validator
            if validator is None or presented is None or not validator(presented):
                raise _Denied("bearer credential rejected")
            return "bearer"
        if not self.allow_anonymous_pull:
            raise _Denied("authentication required")
        return None

    def _password_ok(self, username: str, password: str | None) -> bool:
        if self.password_validator is not None and password is not None:
            return self.password_validator(username, password)
        return username == self.credentials.username and password == self.credentials.password

    def _token_response(self, subject: str, granted: list[_Grant], refresh: str | None) -> bytes:
        token = self._sign(subject, granted)
        body: dict[str, object] = {
            "token": token,
            "access_token": token,
            "expires_in": self.expires_in,
            "issued_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        if refresh is not None:
            body["refresh_token"] = refresh
        return json.dumps(body).encode()


@dataclass(frozen=True)
class _Grant:
    type: str
    name: str
    actions: tuple[str, ...]

    def claim(self) -> dict[str, object]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


def _grant(scope: str, *, pull_only: bool) -> _Grant:
    """Split `type:name:actions`; names may contain ':' (host:port prefixes), actions never do."""
    resource_type, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    wanted = tuple(a for a in actions.split(",") if a and (a == "pull" or not pull_only))
    return _Grant(resource_type, name, wanted)


def _first(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[0] if values else None


def _parse_authorization(header: str | None) -> tuple[str | None, str | None, str | None]:
    """Return (scheme, basic username, secret): the password for Basic, the token for Bearer."""
    if not header:
        return None, None, None
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return "bearer", None, value.strip()
    if scheme == "basic":
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "basic", None, None
        return "basic", user, password
    return scheme, None, None


def _handler_for(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._dispatch(form="")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._dispatch(form=self.rfile.read(length).decode())

        def _dispatch(self, form: str) -> None:
            url = urlsplit(self.path)
            if url.path != "/token":
                status, body = int(HTTPStatus.NOT_FOUND), b"{}"
            else:
                status, body = server._handle(self.command, self.headers.get("Authorization"), url.query, form)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status == HTTPStatus.UNAUTHORIZED:
                self.send_header("WWW-Authenticate", 'Basic realm="fluxmirror-test"')
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Silenced: the recorded TokenRequest list is the useful log."""

    return Handler
