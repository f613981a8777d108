"""The `kubernetes.io/dockerconfigjson` Secret `secret` writes, and its create-or-replace upsert.

The payload is byte-for-byte what the Go command writes (docs/cli.md#secret-payload): compact JSON, hosts sorted,
per-host keys in the order `username`, `password`, `auth`, `registrytoken`, empty ones left out. A replace
starts from the Secret as read, so its labels, annotations and other metadata survive, and carries its
resourceVersion, so a concurrent writer makes the API server answer 409 Conflict instead of being
silently overwritten; such a conflict is retried from a fresh read, like client-go's RetryOnConflict.
"""

from __future__ import annotations

import base64
import enum
import json
from collections.abc import Mapping
from typing import Any, Final

import kubernetes
import urllib3

from fluxmirror.auth.credentials import Credential
from fluxmirror.kube.client import KubeConnection, KubeError

__all__ = ["SECRET_TYPE", "UpsertResult", "docker_config_json", "upsert_secret"]

SECRET_TYPE: Final = "kubernetes.io/dockerconfigjson"  # noqa: S105 - a type name, not a password
DATA_KEY: Final = ".dockerconfigjson"
_ATTEMPTS: Final = 5  # client-go's retry.DefaultRetry steps
_VERBS: Final = {
    "create_namespaced_secret": "create",
    "read_namespaced_secret": "get",
    "replace_namespaced_secret": "update",
}


class UpsertResult(enum.Enum):
    """What the upsert did, worded as the success message says it."""

    CREATED = "created"
    REPLACED = "replaced"


def docker_config_json(credentials: Mapping[str, Credential]) -> bytes:
    """The `.dockerconfigjson` value: `{"auths":{…}}` compact, hosts sorted, empty fields omitted."""
    auths: dict[str, dict[str, str]] = {}
    for host in sorted(credentials):
        credential = credentials[host]
        auth = ""
        if credential.username or credential.password:
            auth = base64.b64encode(f"{credential.username}:{credential.password}".encode()).decode()
        fields = (
            ("username", credential.username),
            ("password", credential.password),
            ("auth", auth),
            ("registrytoken", credential.registry_token),
        )
        auths[host] = {key: value for key, value in fields if value}
    return json.dumps({"auths": auths}, separators=(",", ":")).encode()


def upsert_secret(connection: KubeConnection, name: str, payload: bytes, *, create_only: bool) -> UpsertResult:
    """Create the Secret; unless `create_only`, replace an existing one in place."""
    namespace = connection.namespace
    data = {DATA_KEY: base64.b64encode(payload).decode()}
    fresh = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": SECRET_TYPE,
        "data": data,
    }
    for _ in range(_ATTEMPTS):
        try:
            _call(connection, "create_namespaced_secret", namespace, _model(fresh))
            return UpsertResult.CREATED
        except kubernetes.client.ApiException as exc:
            if create_only or _reason(exc) != "AlreadyExists":
                raise KubeError(f"create secret: {_message(exc)}") from None
        try:
            existing = _read(connection, name)
        except kubernetes.client.ApiException as exc:
            if _reason(exc) == "NotFound":  # deleted since the create: create again
                continue
            raise KubeError(f"get secret: {_message(exc)}") from None
        existing.pop("stringData", None)
        replacement = {**existing, "type": SECRET_TYPE, "data": data}
        try:
            _call(connection, "replace_namespaced_secret", name, namespace, _model(replacement))
            return UpsertResult.REPLACED
        except kubernetes.client.ApiException as exc:
            if _reason(exc) not in ("Conflict", "NotFound"):
                raise KubeError(f"update secret: {_message(exc)}") from None
    raise KubeError(f'update secret: secret "{namespace}/{name}" kept changing; gave up after {_ATTEMPTS} attempts')


def _model(document: Mapping[str, Any]) -> Any:
    return kubernetes.client.V1Secret.from_dict(dict(document))


def _call(connection: KubeConnection, method: str, *args: Any, **kwargs: Any) -> Any:
    """One API call with `--request-timeout`; transport failures become the command's error."""
    try:
        return getattr(connection.api, method)(*args, _request_timeout=connection.request_timeout, **kwargs)
    except urllib3.exceptions.HTTPError as exc:
        raise KubeError(f"{_VERBS[method]} secret: {_transport_message(exc)}") from None


def _read(connection: KubeConnection, name: str) -> dict[str, Any]:
    """The existing Secret as the server sent it, so no field is lost to the client's model round trip."""
    response = _call(connection, "read_namespaced_secret", name, connection.namespace, _preload_content=False)
    document = json.loads(response.data)
    if not isinstance(document, dict):
        raise KubeError("get secret: the server did not answer with an object")
    return document


def _status(exc: Any) -> Mapping[str, Any]:
    try:
        status = json.loads(exc.body or "")
    except ValueError:
        return {}
    return status if isinstance(status, dict) and status.get("kind") == "Status" else {}


def _reason(exc: Any) -> str:
    return str(_status(exc).get("reason") or "")


def _message(exc: Any) -> str:
    """The API server's own message (what client-go prints), else the HTTP status."""
    message = _status(exc).get("message")
    if message:
        return str(message)
    return f"the server responded with HTTP {exc.status} {exc.reason or ''}".rstrip()


def _transport_message(exc: urllib3.exceptions.HTTPError) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason if reason is not None else exc)
