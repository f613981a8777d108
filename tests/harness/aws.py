"""AWS on loopback: moto in server mode, checking SigV4 signatures and IAM policies like AWS does.

The `aws` credential provider mints a SigV4-signed ``sts:GetCallerIdentity`` request (an
"envelope") that the registry replays to STS: STS, not the registry, checks the signature. The `ecr`
provider calls ``ecr:GetAuthorizationToken``. Both only prove something if the far end really
verifies signatures, so moto runs with IAM authentication on: it answers the first two requests
unauthenticated (creating user ``mirror``, its access key and an allow-everything policy), then checks every signature against
the keys it issued and every action against the user's policies.

``INITIAL_NO_AUTH_ACTION_COUNT`` is read when moto is imported, so ``MotoAWS`` sets it before its
own (lazy) import; if moto was imported earlier in this process, the server's reset-auth endpoint
sets the same thing. Either way it is process-wide: an in-process ``mock_aws`` in the same pytest
session would check signatures too.

moto's ECR answers ``expiresAt`` 2015-01-01 whatever the date; the server thread runs in this
process, so its handler is wrapped here to answer ``now + ecr_expiry`` and count calls.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import http.client
import json
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

__all__ = [
    "ACCOUNT_ID",
    "DEFAULT_ECR_EXPIRY",
    "UNSET_VARIABLES",
    "USER_ARN",
    "USER_NAME",
    "MotoAWS",
    "decode_envelope",
    "static_environment",
]

ACCOUNT_ID = "123456789012"  # moto's default account
USER_NAME = "mirror"
USER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/{USER_NAME}"
DEFAULT_ECR_EXPIRY = 12 * 3600.0
UNSET_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL_ECR",
    "AWS_ENDPOINT_URL_ECR_PUBLIC",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_IAM",
)
"""Variables ``environment()`` cannot neutralise by value, so they must be absent from a subprocess's
environment (the ``moto_aws`` fixture removes them from ``os.environ``). botocore takes empty values
literally: ``AWS_PROFILE=""`` is a profile named "" (``ProfileNotFound``), ``AWS_DEFAULT_REGION=""``
makes ``https://sts..amazonaws.com``, and a service's own ``AWS_ENDPOINT_URL_<SERVICE>`` beats
``AWS_ENDPOINT_URL``. ``AWS_DEFAULT_REGION`` is left out of ``environment()`` on purpose too: botocore
ignores ``AWS_REGION``, which the product must read itself, as Go does."""
_UNAUTHENTICATED_CALLS = 3  # iam:CreateUser, iam:CreateAccessKey, iam:PutUserPolicy
_ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


class MotoAWS:
    """moto's server on ``127.0.0.1:<free port>`` with one IAM user, until ``close``.

    Knobs (``reset`` restores them): ``ecr_expiry`` (seconds from now of ``expiresAt``).
    Records: ``ecr_token_calls`` (GetAuthorizationToken calls answered), ``ecr_passwords`` (the
    decoded passwords answered, in order). ``ecr_password`` is the password moto issues for this
    account, so a test can assert a registry was shown it.
    """

    def __init__(self) -> None:
        self.ecr_expiry = DEFAULT_ECR_EXPIRY
        self._lock = threading.Lock()
        self._ecr_passwords: list[str] = []
        self._ecr_calls = 0
        self._home = tempfile.TemporaryDirectory(prefix="fake-aws-")
        self._unpatch: Callable[[], None] | None = None
        self.port = 0
        if "moto" not in sys.modules:
            os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(_UNAUTHENTICATED_CALLS)
        from moto.server import ThreadedMotoServer

        # werkzeug logs every request (and colours failures) on stderr otherwise.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        try:
            self.port = self._server.get_host_and_port()[1]
            self.endpoint = f"http://127.0.0.1:{self.port}"
            self._post("/moto-api/reset-auth", str(_UNAUTHENTICATED_CALLS).encode(), {})
            self.access_key_id, self.secret_access_key = self._create_user()
            self._unpatch = self._patch_ecr()
        except BaseException:
            self.close()
            raise

    # -- for clients -----------------------------------------------------------------------------------

    def environment(self, region: str = "us-east-1") -> dict[str, str]:
        """Credentials of user ``mirror`` and every AWS service at moto; nothing from ~/.aws, no IMDS."""
        return static_environment(
            Path(self._home.name), self.access_key_id, self.secret_access_key, region, AWS_ENDPOINT_URL=self.endpoint
        )

    @property
    def ecr_password(self) -> str:
        """The password inside the authorization token moto issues for this account."""
        return f"{ACCOUNT_ID}-auth-token"

    @property
    def ecr_token_calls(self) -> int:
        with self._lock:
            return self._ecr_calls

    @property
    def ecr_passwords(self) -> list[str]:
        with self._lock:
            return list(self._ecr_passwords)

    def replay(self, envelope: str) -> tuple[int, str]:
        """Send an aws-sigv4-getcalleridentity envelope's request to STS (moto) as a registry would.

        The headers are the envelope's, plus ``Host`` set to the signed URL's host; the status and
        body are STS's answer (200 with the caller's ARN, or 403 for a bad signature).
        """
        claims = decode_envelope(envelope)
        sts = claims["sts"]
        url = urlsplit(sts["url"])
        headers = {name: ", ".join(values) for name, values in sts["headers"].items()}
        headers["Host"] = url.netloc
        return self._request(sts["method"], url.path or "/", sts["body"].encode(), headers)

    def reset(self) -> None:
        with self._lock:
            self._ecr_calls = 0
            self._ecr_passwords.clear()
        self.ecr_expiry = DEFAULT_ECR_EXPIRY

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):  # moto is process-wide: no signature checks after us
            self._post("/moto-api/reset-auth", b"inf", {})
        if self._unpatch is not None:
            self._unpatch()
            self._unpatch = None
        self._server.stop()
        self._home.cleanup()

    # -- setup -----------------------------------------------------------------------------------------

    def _create_user(self) -> tuple[str, str]:
        """User ``mirror``, its key and its allow-all policy: the unauthenticated calls moto grants.

        Plain IAM Query requests rather than boto3, so this process's own AWS configuration (a
        profile that does not exist, say) cannot get in the way.
        """
        self._iam(CreateUser={"UserName": USER_NAME})
        key = self._iam(CreateAccessKey={"UserName": USER_NAME})
        # Without a policy moto's IAM check denies the user everything.
        self._iam(PutUserPolicy={"UserName": USER_NAME, "PolicyName": "allow-all", "PolicyDocument": _ALLOW_ALL})
        return _xml_text(key, "AccessKeyId"), _xml_text(key, "SecretAccessKey")

    def _iam(self, **action: dict[str, str]) -> str:
        [(name, parameters)] = action.items()
        body = urlencode({"Action": name, "Version": "2010-05-08", **parameters}).encode()
        headers = {
            "Host": "iam.amazonaws.com",
            "Content-Type": "application/x-www-form-urlencoded",
            # Never checked (these calls are the unauthenticated ones), but moto picks the service by
            # the credential scope: without it the request does not reach IAM.
            "Authorization": "AWS4-HMAC-SHA256 Credential=bootstrap/20200101/us-east-1/iam/aws4_request, "
            "SignedHeaders=host, Signature=0",
        }
        return self._post("/", body, headers)[1]

    def _patch_ecr(self) -> Callable[[], None]:
        from moto.ecr.responses import ECRResponse

        original: Callable[[Any], Any] = ECRResponse.get_authorization_token
        fake = self

        def get_authorization_token(response: Any) -> Any:
            result = original(response)
            expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=fake.ecr_expiry)
            passwords = []
            for entry in result.result["authorizationData"]:
                entry["expiresAt"] = expires
                passwords.append(base64.b64decode(entry["authorizationToken"]).decode().partition(":")[2])
            with fake._lock:
                fake._ecr_calls += 1
                fake._ecr_passwords.extend(passwords)
            return result

        ECRResponse.get_authorization_token = get_authorization_token

        def unpatch() -> None:
            ECRResponse.get_authorization_token = original

        return unpatch

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        status, text = self._request("POST", path, body, headers)
        if status != 200:
            raise RuntimeError(f"moto {path}: {status} {text}")
        return status, text

    def _request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            # skip_host: the Host header is the caller's (the signed one), not 127.0.0.1:<port>.
            connection.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            if not any(name.lower() == "content-length" for name in headers):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            connection.close()


def static_environment(
    home: Path, access_key_id: str, secret_access_key: str, region: str = "us-east-1", **endpoints: str
) -> dict[str, str]:
    """Static credentials and ``endpoints`` (``AWS_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL_<SERVICE>``),
    and every other source botocore reads pinned by value: no ~/.aws files (``home`` holds none),
    no web identity, container or instance role. Add ``UNSET_VARIABLES``' absence for a full pin."""
    return {
        "AWS_ACCESS_KEY_ID": access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret_access_key,
        "AWS_SESSION_TOKEN": "",
        "AWS_SECURITY_TOKEN": "",
        "AWS_REGION": region,
        **endpoints,
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "false",
        "AWS_CONFIG_FILE": str(home / "config-absent"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials-absent"),
        "AWS_WEB_IDENTITY_TOKEN_FILE": "",
        "AWS_ROLE_ARN": "",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1,localhost",
    }


def decode_envelope(envelope: str) -> dict[str, Any]:
    """The claims of an ``aws-sigv4-getcalleridentity`` token (``header.claims.``, unsigned)."""
    try:
        header_part, claims_part, signature = envelope.split(".")
        header = json.loads(_b64url(header_part))
        claims: dict[str, Any] = json.loads(_b64url(claims_part))
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"not an aws-sigv4-getcalleridentity envelope: {exc}") from exc
    if header.get("typ") != "aws-sigv4-getcalleridentity" or signature:
        raise ValueError(f"not an aws-sigv4-getcalleridentity envelope: header {header}")
    return claims


def _xml_text(document: str, tag: str) -> str:
    """The text of the first element named ``tag`` (any namespace) in an AWS XML answer."""
    for element in ElementTree.fromstring(document).iter():  # noqa: S314 - moto's answer, not untrusted input
        if element.tag.rpartition("}")[2] == tag and element.text:
            return element.text
    raise RuntimeError(f"no {tag} in {document}")


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
