"""The cloud identity fakes answer the real client libraries the way the clouds do.

The product's credential providers will be tested against these fakes only, so each fake is first
checked here against the library the product uses: google-auth and boto3 in a subprocess started
with the fake's ``environment()`` (both read their configuration from the environment, google-auth
at import), the Actions exchange with plain HTTP as the product does it, and the registry under cloud
names with curl and skopeo through the forward proxy.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as AWSCredentials
from harness import TEST_USER, images, skopeo
from harness.actions_oidc import SUBJECT, ActionsOIDC
from harness.aws import USER_ARN, MotoAWS
from harness.fixtures_cloud import CloudRegistry
from harness.gce import EMAIL, PROJECT_ID, GCEMetadata
from harness.pki import ACR_NAME, ECR_NAME, GAR_NAME

AUDIENCE = "registry.example.com"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/userinfo.email"]


def run_python(code: str, environment: Mapping[str, str], **ambient: str) -> Any:
    """Run ``code`` in a fresh interpreter with ``os.environ`` + ``ambient`` + ``environment``; its stdout as JSON.

    ``ambient`` stands for a developer's own configuration, which the fake's environment must override.
    """
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=os.environ | ambient | dict(environment),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# -- Actions OIDC ------------------------------------------------------------------------------------------


def fetch_actions(environment: Mapping[str, str], audience: str) -> tuple[int, str]:
    """The Go client's exchange: replace ``audience`` in the URL (keys sorted), GET with ``bearer``."""
    url = urllib.parse.urlsplit(environment["ACTIONS_ID_TOKEN_REQUEST_URL"])
    query = [(k, v) for k, v in urllib.parse.parse_qsl(url.query, keep_blank_values=True) if k != "audience"]
    query = sorted([*query, ("audience", audience)])
    request = urllib.request.Request(
        urllib.parse.urlunsplit(url._replace(query=urllib.parse.urlencode(query))),
        headers={"Authorization": "bearer " + environment["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_actions_oidc_mints_a_token_for_the_requested_audience(actions_oidc: ActionsOIDC) -> None:
    status, body = fetch_actions(actions_oidc.environment(), AUDIENCE)

    assert status == 200, body
    token = json.loads(body)["value"]
    claims = actions_oidc.issuer.verify(token, AUDIENCE)
    assert claims["sub"] == SUBJECT
    assert claims["exp"] - claims["iat"] == 300
    [request] = actions_oidc.requests
    assert request.query == f"api-version=2.0&audience={AUDIENCE}"
    assert request.audience == AUDIENCE
    assert request.authorization == "bearer " + actions_oidc.request_token
    assert actions_oidc.tokens == [token]
    assert [minted.token for minted in actions_oidc.issuer.minted] == [token]


def test_actions_oidc_lifetime_knob(actions_oidc: ActionsOIDC) -> None:
    actions_oidc.lifetime = 60

    _, body = fetch_actions(actions_oidc.environment(), AUDIENCE)

    claims = actions_oidc.issuer.verify(json.loads(body)["value"], AUDIENCE)
    assert claims["exp"] - claims["iat"] == 60


def test_actions_oidc_refuses_a_wrong_or_missing_request_token(actions_oidc: ActionsOIDC) -> None:
    wrong = actions_oidc.environment() | {"ACTIONS_ID_TOKEN_REQUEST_TOKEN": "not-the-token"}
    assert fetch_actions(wrong, AUDIENCE) == (401, "bad request token")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(actions_oidc.url, timeout=10)
    assert refused.value.code == 401

    assert [(r.status, r.authorization, r.token) for r in actions_oidc.requests] == [
        (401, "bearer not-the-token", None),
        (401, None, None),
    ]
    assert actions_oidc.issuer.minted == []


# -- GCE metadata server -------------------------------------------------------------------------------------

GOOGLE_AUTH = f"""
import json, google.auth, google.oauth2.id_token
from google.auth.transport.requests import Request
id_token = google.oauth2.id_token.fetch_id_token(Request(), {AUDIENCE!r})
creds, project = google.auth.default(scopes={SCOPES!r})
creds.refresh(Request())
print(json.dumps({{"id_token": id_token, "access_token": creds.token, "expiry": creds.expiry.isoformat(),
                  "project": project, "email": creds.service_account_email}}))
"""


def test_gce_metadata_serves_google_auth(gce_metadata: GCEMetadata, tmp_path: Path) -> None:
    gce_metadata.access_expires_in = 1234
    gce_metadata.id_lifetime = 600
    # A developer's key file and gcloud login must not win over the metadata server.
    ambient = {"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "absent.json"), "CLOUDSDK_CONFIG": str(tmp_path)}

    started = time.time()
    out = run_python(GOOGLE_AUTH, gce_metadata.environment(), **ambient)

    claims = gce_metadata.issuer.verify(out["id_token"], AUDIENCE)
    assert claims["exp"] - claims["iat"] == 600
    assert claims["email"] == EMAIL
    assert (out["project"], out["email"]) == (PROJECT_ID, EMAIL)
    [issued] = gce_metadata.access_tokens
    assert issued.token == out["access_token"]
    assert gce_metadata.issued_access_token(out["access_token"])
    assert issued.scopes == tuple(SCOPES)
    expiry = dt.datetime.fromisoformat(out["expiry"]).replace(tzinfo=dt.UTC).timestamp()
    assert started + 1234 - 5 <= expiry <= time.time() + 1234
    paths = {request.path.rsplit("/v1/", 1)[-1] for request in gce_metadata.requests}
    assert {"/", "instance/service-accounts/default/identity", "instance/service-accounts/default/token"} <= paths
    assert {request.flavor for request in gce_metadata.requests} == {"Google"}


def test_gce_metadata_requires_the_flavor_header(gce_metadata: GCEMetadata) -> None:
    url = f"http://{gce_metadata.host}/computeMetadata/v1/instance/service-accounts/default/token"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 403
    assert refused.value.headers["Metadata-Flavor"] == "Google"
    assert gce_metadata.access_tokens == []

    request = urllib.request.Request(url + "?scopes=a,b", headers={"Metadata-Flavor": "Google"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.load(response)
    assert body["expires_in"] == 3599
    assert body["token_type"] == "Bearer"
    assert [issued.scopes for issued in gce_metadata.access_tokens] == [("a", "b")]


# -- AWS (moto) ----------------------------------------------------------------------------------------------

BOTO3 = """
import base64, json, boto3
ecr = boto3.client("ecr", region_name="us-east-1")
data = ecr.get_authorization_token()["authorizationData"][0]
arn = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Arn"]
print(json.dumps({"endpoint": ecr.meta.endpoint_url, "token": base64.b64decode(data["authorizationToken"]).decode(),
                  "expires": data["expiresAt"].timestamp(), "arn": arn}))
"""


def test_moto_answers_boto3_through_the_environment(moto_aws: MotoAWS, tmp_path: Path) -> None:
    moto_aws.ecr_expiry = 3600
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = AKIADEVELOPER\naws_secret_access_key = nope\n")

    started = time.time()
    out = run_python(BOTO3, moto_aws.environment(), AWS_SHARED_CREDENTIALS_FILE=str(credentials))

    assert out["endpoint"] == moto_aws.endpoint
    assert out["token"] == f"AWS:{moto_aws.ecr_password}"
    assert started + 3600 - 5 <= out["expires"] <= time.time() + 3600
    assert out["arn"] == USER_ARN
    assert moto_aws.ecr_token_calls == 1
    assert moto_aws.ecr_passwords == [moto_aws.ecr_password]


def test_moto_checks_signatures(moto_aws: MotoAWS) -> None:
    forged = moto_aws.environment() | {"AWS_SECRET_ACCESS_KEY": "forged"}
    result = subprocess.run(
        [sys.executable, "-c", BOTO3], env=os.environ | forged, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "SignatureDoesNotMatch" in result.stderr
    assert moto_aws.ecr_token_calls == 0


def envelope(moto_aws: MotoAWS, audience: str, region: str = "us-east-1") -> str:
    """An aws-sigv4-getcalleridentity token as the product mints it (providers.md §4)."""
    body, url = "Action=GetCallerIdentity&Version=2011-06-15", f"https://sts.{region}.amazonaws.com/"
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(len(body)),
            "X-Audience": audience,
        },
    )
    SigV4Auth(AWSCredentials(moto_aws.access_key_id, moto_aws.secret_access_key), "sts", region).add_auth(request)
    headers = {
        "-".join(part.capitalize() for part in name.split("-")): [value]
        for name, value in request.headers.items()
        if name.lower() not in ("host", "content-length")
    }
    claims = {
        "aud": audience,
        "exp": int(time.time()) + 120,
        "sts": {"body": body, "headers": dict(sorted(headers.items())), "method": "POST", "url": url},
    }

    def b64url(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b'{"alg":"none","typ":"aws-sigv4-getcalleridentity"}'
    return b64url(header) + "." + b64url(json.dumps(claims, separators=(",", ":")).encode()) + "."


def test_moto_replays_a_genuine_envelope(moto_aws: MotoAWS) -> None:
    status, body = moto_aws.replay(envelope(moto_aws, AUDIENCE))

    assert status == 200, body
    assert f"<Arn>{USER_ARN}</Arn>" in body


def test_moto_rejects_an_envelope_with_another_audience(moto_aws: MotoAWS) -> None:
    token = envelope(moto_aws, AUDIENCE)
    header, claims_part, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(claims_part + "=" * (-len(claims_part) % 4)))
    claims["sts"]["headers"]["X-Audience"] = ["other.example.com"]
    altered = header + "." + base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode() + "."

    status, body = moto_aws.replay(altered)

    assert status == 403
    assert "SignatureDoesNotMatch" in body


# -- a registry under cloud names ----------------------------------------------------------------------------


@pytest.mark.registry
def test_cloud_registry_answers_under_cloud_names_through_the_proxy(cloud_registry: CloudRegistry) -> None:
    for name in (ECR_NAME, GAR_NAME, ACR_NAME):
        result = subprocess.run(
            [
                "curl",
                "--silent",
                "--show-error",
                "--proxy",
                cloud_registry.proxy.url(),
                "--cacert",
                cloud_registry.ca_path,
                "--dump-header",
                "-",  # the proxy's "200 Connection Established", then the registry's answer
                "--output",
                "/dev/null",
                "--write-out",
                "status=%{http_code}",
                f"https://{name}/v2/",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        *fields, status = result.stdout.splitlines()
        assert status == "status=401"
        challenge = next(f for f in fields if f.lower().startswith("www-authenticate:"))
        assert f'Bearer realm="{cloud_registry.token_server.realm}"' in challenge

    assert {(r.method, r.authority, r.status) for r in cloud_registry.proxy.requests} == {
        ("CONNECT", f"{name}:443", 200) for name in (ECR_NAME, GAR_NAME, ACR_NAME)
    }


@pytest.mark.registry
def test_cloud_registry_takes_a_skopeo_push_through_the_proxy(
    cloud_registry: CloudRegistry, tmp_path: Path, unique_repo: str
) -> None:
    image = images.make_image([64], seed=7)
    layout = images.write_oci_layout(tmp_path / "layout", image, "1")

    skopeo.copy(
        f"oci:{layout}:1",
        cloud_registry.gar.docker_ref(unique_repo, "1"),
        dest_creds=TEST_USER,
        dest_tls_verify=True,
        env=cloud_registry.environment(),
    )

    pushed = skopeo.inspect_raw(
        cloud_registry.registry.docker_ref(unique_repo, "1"),
        creds=TEST_USER,
        tls_verify=True,
        cert_dir=cloud_registry.registry.cert_dir,
    )
    assert pushed == image.raw
    assert {r.authority for r in cloud_registry.proxy.requests} == {f"{GAR_NAME}:443"}
    assert any(r.status == 200 for r in cloud_registry.token_server.requests)


def test_moto_enforces_iam_policies(moto_aws: MotoAWS) -> None:
    import boto3
    from botocore.exceptions import ClientError

    name = f"no-policy-{time.monotonic_ns()}"
    iam = boto3.client(
        "iam",
        region_name="us-east-1",
        endpoint_url=moto_aws.endpoint,
        aws_access_key_id=moto_aws.access_key_id,
        aws_secret_access_key=moto_aws.secret_access_key,
    )
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]

    with pytest.raises(ClientError) as denied:
        boto3.client(
            "ecr",
            region_name="us-east-1",
            endpoint_url=moto_aws.endpoint,
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        ).get_authorization_token()
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "not authorized to perform: ecr:GetAuthorizationToken" in str(denied.value), denied.value
    assert moto_aws.ecr_token_calls == 0
