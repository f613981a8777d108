"""`aws` (a signed `sts:GetCallerIdentity` request wrapped in a JWT-shaped envelope) and `ecr`
(Amazon ECR credentials from `GetAuthorizationToken`), both from the default AWS credential chain.

AWS mints no JWT for an audience, so `aws` signs a GetCallerIdentity request with the ambient
credentials (environment, profile, IRSA web identity, instance or container role, SSO) and hands
the registry everything it needs to replay it to STS: method, URL, body and the signed headers,
`X-Audience` among them, so the envelope is pinned to one registry. The envelope's header is
`{"alg":"none","typ":"aws-sigv4-getcalleridentity"}` and its `exp` two minutes away, as the
reference writes it (docs/providers.md#aws).

The region is `AWS_REGION`, else the profile's (botocore reads `AWS_DEFAULT_REGION` and the config
file but not `AWS_REGION`, which Go reads first), else `us-east-1`; `ecr` reads it from the host.
botocore is synchronous: every call runs in a thread, with bounded connect and read timeouts.
"""

from __future__ import annotations

import base64
import os
import re
import time
from typing import Any, Final

from fluxmirror.auth.blocking import run_blocking
from fluxmirror.auth.providers.base import ProviderError, RegistryLogin, checked_token, import_extra
from fluxmirror.gocompat.encoding_json import go_json

__all__ = ["CallerIdentityEnvelope", "ECRLogin", "envelope"]

ECR_HOST: Final = re.compile(
    r"([0-9+]*).dkr[.-]ecr(?:-fips)?\.([^/.]*)\.(amazonaws\.com[.cn]*|amazonaws\.eu|sc2s\.sgov\.gov|c2s\.ic\.gov"
    r"|cloud\.adc-e\.uk|csp\.hci\.ic\.gov|on\.aws)"
)
ECR_PUBLIC_HOST: Final = "public.ecr.aws"
ENVELOPE_HEADER: Final = b'{"alg":"none","typ":"aws-sigv4-getcalleridentity"}'
STS_BODY: Final = "Action=GetCallerIdentity&Version=2011-06-15"
ENVELOPE_SECONDS: Final = 120
_DEFAULT_REGION: Final = "us-east-1"
_EXTRA: Final = "aws"
_UNSIGNED_ENVELOPE_HEADERS: Final = ("host", "content-length")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _canonical(name: str) -> str:
    """A header name as Go's `http.CanonicalHeaderKey` writes it: `x-amz-date` -> `X-Amz-Date`."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _botocore_session() -> Any:
    session_module = import_extra("botocore.session", _EXTRA)
    return session_module.Session()


def _client_config() -> Any:
    config_module = import_extra("botocore.config", _EXTRA)
    return config_module.Config(connect_timeout=10, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"})


def _aws_error(exc: BaseException) -> ProviderError:
    return ProviderError(" ".join(str(exc).split()) or type(exc).__name__)


def envelope(audience: str, region: str, credentials: Any, now: float) -> str:
    """The envelope for `audience`: a SigV4-signed GetCallerIdentity request to the regional STS
    endpoint with `X-Audience` among the signed headers (`credentials`: botocore's frozen credentials)."""
    auth = import_extra("botocore.auth", _EXTRA)
    awsrequest = import_extra("botocore.awsrequest", _EXTRA)
    url = f"https://sts.{region}.amazonaws.com/"
    request = awsrequest.AWSRequest(
        method="POST",
        url=url,
        data=STS_BODY,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(len(STS_BODY)),  # present so that it is signed, as Go signs it
            "X-Audience": audience,
        },
    )
    auth.SigV4Auth(credentials, "sts", region).add_auth(request)
    headers = {
        _canonical(name): [value]
        for name, value in request.headers.items()
        if name.lower() not in _UNSIGNED_ENVELOPE_HEADERS
    }
    claims = {
        "aud": audience,
        "exp": int(now) + ENVELOPE_SECONDS,
        "sts": {"body": STS_BODY, "headers": dict(sorted(headers.items())), "method": "POST", "url": url},
    }
    return f"{_b64url(ENVELOPE_HEADER)}.{_b64url(go_json(claims))}."


class CallerIdentityEnvelope:
    """Mints GetCallerIdentity envelopes with the ambient AWS credentials."""

    def __init__(self) -> None:
        self._session: Any = None

    async def mint(self, audience: str) -> str:
        return checked_token(await run_blocking(self._mint, audience), "the AWS envelope")

    def _mint(self, audience: str) -> str:
        exceptions = import_extra("botocore.exceptions", _EXTRA)
        if self._session is None:
            self._session = _botocore_session()
        try:
            region = os.environ.get("AWS_REGION") or self._session.get_config_variable("region") or _DEFAULT_REGION
            credentials = self._session.get_credentials()
            if credentials is None:
                raise ProviderError("no AWS credentials found in the environment, profile or instance metadata")
            return envelope(audience, region, credentials.get_frozen_credentials(), time.time())
        except exceptions.BotoCoreError as exc:
            raise _aws_error(exc) from None


class ECRLogin:
    """Logs in to one ECR (or ECR Public) registry as `AWS` with a GetAuthorizationToken token."""

    def __init__(self, host: str) -> None:
        hostname = host.rsplit(":", 1)[0] if re.search(r":\d+$", host) else host
        if hostname == ECR_PUBLIC_HOST:
            self._service, self._region = "ecr-public", _DEFAULT_REGION
        else:
            match = ECR_HOST.search(hostname)
            if match is None:
                raise ProviderError(f"invalid AWS registry: '{host}'. must match {ECR_HOST.pattern}")
            self._service, self._region = "ecr", match.group(2)
        self._client: Any = None

    async def login(self) -> RegistryLogin:
        return await run_blocking(self._login)

    def _login(self) -> RegistryLogin:
        exceptions = import_extra("botocore.exceptions", _EXTRA)
        try:
            if self._client is None:
                self._client = _botocore_session().create_client(
                    self._service, region_name=self._region, config=_client_config()
                )
            answer = self._client.get_authorization_token()
        except (exceptions.BotoCoreError, exceptions.ClientError) as exc:
            raise _aws_error(exc) from None
        data = answer.get("authorizationData")
        entry = (data[0] if data else None) if isinstance(data, list) else data
        if not isinstance(entry, dict) or not entry.get("authorizationToken"):
            raise ProviderError("the ECR answer carried no authorization token")
        try:
            decoded = base64.b64decode(entry["authorizationToken"], validate=True).decode("utf-8")
        except ValueError:
            raise ProviderError("the ECR authorization token is not base64 text") from None
        parts = decoded.split(":")
        if len(parts) != 2:
            raise ProviderError("the ECR authorization token is not of the form username:password")
        expires = entry.get("expiresAt")
        if expires is None:
            raise ProviderError("the ECR authorization token has no expiry")
        return RegistryLogin(parts[0], checked_token(parts[1], "the ECR password"), expires.timestamp())
