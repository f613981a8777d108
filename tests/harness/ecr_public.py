"""Amazon ECR Public's ``GetAuthorizationToken`` on loopback, because moto does not implement ECR Public.

An ``ecr`` host named ``public.ecr.aws`` makes the product call botocore's ``ecr-public`` client in
us-east-1, whose answer differs from private ECR's: ``authorizationData`` is one object, not a list.
Only a stand-in that answers in that shape shows the product reads it right, so this fake speaks the
operation as botocore's service model describes it (``ecr-public/2020-10-30``): AWS JSON 1.1,
``POST /`` with ``X-Amz-Target: SpencerFrontendService.GetAuthorizationToken``, answering
``{"authorizationData": {"authorizationToken": base64("AWS:<password>"), "expiresAt": <epoch>}}``.

The request must carry a SigV4 ``Authorization`` header whose credential scope is
``<date>/us-east-1/ecr-public/aws4_request``: that proves botocore signed for the right service and
region. **The signature itself is not verified** (moto does that for private ECR; here the key is a
constant of this module). botocore reaches this fake through ``AWS_ENDPOINT_URL_ECR_PUBLIC`` alone:
``environment()`` points the generic ``AWS_ENDPOINT_URL`` at a loopback port that refuses
connections, so a pass also proves the service-specific variable was honoured and no other AWS
service was called.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import web

from harness.aws import static_environment
from harness.background import BackgroundLoop, listen

__all__ = ["DEFAULT_EXPIRY", "REGION", "TARGET", "ECRPublic", "ECRPublicCall"]

TARGET: Final = "SpencerFrontendService.GetAuthorizationToken"
REGION: Final = "us-east-1"
SERVICE: Final = "ecr-public"
DEFAULT_EXPIRY: Final = 12 * 3600.0
ACCESS_KEY_ID: Final = "AKIAECRPUBLICFAKE000"
SECRET_ACCESS_KEY: Final = "ecr-public-fake-secret-key-never-verified"
_JSON_11: Final = "application/x-amz-json-1.1"
_CREDENTIAL: Final = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,")


@dataclass(frozen=True)
class ECRPublicCall:
    """One request as the fake saw it, with its answer's status and the password it issued (if any)."""

    target: str | None  # the X-Amz-Target header
    scope: str | None  # ``<region>/<service>`` of the SigV4 credential scope, None without SigV4
    access_key_id: str | None
    status: int
    password: str | None


class ECRPublic:
    """ECR Public's API on ``http://127.0.0.1:<free port>`` until ``close``.

    Knobs (``reset`` restores them): ``password`` (every answer carries it; None, the default, issues
    a fresh random one per call), ``expiry`` (seconds from now of ``expiresAt``).
    Records: ``calls`` (every request), ``passwords`` (the passwords answered, in order).
    """

    def __init__(self) -> None:
        self.password: str | None = None
        self.expiry = DEFAULT_EXPIRY
        self._lock = threading.Lock()
        self._calls: list[ECRPublicCall] = []
        self._home = tempfile.TemporaryDirectory(prefix="fake-ecr-public-")
        # Bound but never listening: connecting to it is refused at once.
        self._refusing = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._refusing.bind(("127.0.0.1", 0))
        sock = listen()
        self.port: int = sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._background = BackgroundLoop(f"ecr-public-{self.port}")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        try:
            self._background.serve(app, sock)
        except BaseException:
            self.close()
            raise

    def environment(self) -> dict[str, str]:
        """Static credentials, ECR Public here and every other AWS service at a refusing port.

        The caller must also keep ``harness.aws.UNSET_VARIABLES`` out of the environment."""
        refused = f"http://127.0.0.1:{self._refusing.getsockname()[1]}"
        return static_environment(
            Path(self._home.name),
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            REGION,
            AWS_ENDPOINT_URL=refused,
            AWS_ENDPOINT_URL_ECR_PUBLIC=self.endpoint,
        )

    # -- records ---------------------------------------------------------------------------------------

    @property
    def calls(self) -> list[ECRPublicCall]:
        with self._lock:
            return list(self._calls)

    @property
    def passwords(self) -> list[str]:
        return [call.password for call in self.calls if call.password is not None]

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
        self.password = None
        self.expiry = DEFAULT_EXPIRY

    def close(self) -> None:
        self._background.close()
        self._refusing.close()
        self._home.cleanup()

    # -- serving ---------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        target = request.headers.get("X-Amz-Target")
        match = _CREDENTIAL.match(request.headers.get("Authorization", ""))
        scope = f"{match.group(3)}/{match.group(4)}" if match else None
        password = None
        if match is None:
            response = _error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        elif scope != f"{REGION}/{SERVICE}":
            response = _error(
                403, "InvalidSignatureException", f"Credential should be scoped to {REGION}/{SERVICE}, not {scope}"
            )
        elif request.method != "POST" or request.path != "/" or target != TARGET:
            response = _error(400, "UnknownOperationException", f"unknown operation {target}")
        elif request.content_type != _JSON_11:
            response = _error(400, "SerializationException", f"expected {_JSON_11}, got {request.content_type}")
        else:
            password = self.password or "ecr-public-" + secrets.token_urlsafe(24)
            expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.expiry)
            token = base64.b64encode(f"AWS:{password}".encode()).decode()
            body = {"authorizationData": {"authorizationToken": token, "expiresAt": expires.timestamp()}}
            response = web.json_response(body, content_type=_JSON_11)
        call = ECRPublicCall(target, scope, match.group(1) if match else None, response.status, password)
        with self._lock:
            self._calls.append(call)
        return response


def _error(status: int, kind: str, message: str) -> web.Response:
    """An AWS JSON 1.1 error, which botocore reads by ``__type``."""
    return web.json_response({"__type": kind, "message": message}, status=status, content_type=_JSON_11)
