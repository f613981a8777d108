"""The kubectl connection rules (client-go's deferred loading), on top of the official `kubernetes` client.

The Python client loads one kubeconfig and one context, but `secret` must behave like `kubectl`:
`$KUBECONFIG` lists merge with the first definition winning, `--cluster`/`--user`/`--server`/`--token`/…
override the selected context, and when there is no usable kubeconfig the in-cluster ServiceAccount is
used. So the kubeconfig is merged and overridden here, and the result handed to the client's own loaders
(which keep exec plugins, auth providers and token files working).

What the Python client lacks is added around it, as client-go does it: basic auth (`--username`/
`--password`, or the kubeconfig user's `username`/`password`) as `Authorization: Basic` over the UTF-8
bytes; impersonation (`--as`, `--as-group`, `--as-uid`) as `Impersonate-*` header lines; and
`Accept-Encoding: gzip` on every request (Go's transport asks for compressed responses and inflates
them) unless `--disable-compression` or the cluster's `disable-compression` says not to. Like
client-go's validation, a user with both a token and basic auth, or impersonating groups or a UID
without a user, is an invalid configuration.

The namespace follows client-go too: the `--namespace` flag; else the context's namespace; else, when
in-cluster configuration is possible, `$POD_NAMESPACE` or the ServiceAccount's namespace file; else
`default`. Both are resolved before any credential is minted, so a broken cluster setup costs no token.

`$FLUXMIRROR_SERVICEACCOUNT_DIR` replaces the ServiceAccount directory
(`/var/run/secrets/kubernetes.io/serviceaccount`), so in-cluster behaviour can be exercised outside a pod.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import kubernetes
import urllib3
import yaml
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import InClusterConfigLoader

from fluxmirror.api.duration import Duration
from fluxmirror.errors import FluxMirrorError

__all__ = ["SERVICEACCOUNT_DIR_ENV", "KubeConnection", "KubeError", "KubeOptions", "connect"]

SERVICEACCOUNT_DIR_ENV: Final = "FLUXMIRROR_SERVICEACCOUNT_DIR"
_SERVICEACCOUNT_DIR: Final = "/var/run/secrets/kubernetes.io/serviceaccount"
_EMPTY_CONFIG: Final = "no configuration has been provided, try setting KUBERNETES_MASTER environment variable"
_BAD_TIMEOUT: Final = (
    "invalid timeout value. Timeout must be a single integer in seconds, "
    "or an integer followed by a corresponding time unit (e.g. 1s | 2m | 3h)"
)
# kubeconfig fields naming files, which kubectl resolves against the directory of the file defining them.
_PATH_FIELDS: Final = {
    "clusters": ("certificate-authority",),
    "users": ("client-certificate", "client-key", "tokenFile"),
}
_SECTIONS: Final = (("clusters", "cluster"), ("contexts", "context"), ("users", "user"))


class KubeError(FluxMirrorError):
    """The cluster connection or the namespace could not be worked out; the message is kubectl's wording."""


@dataclass(frozen=True, slots=True)
class KubeOptions:
    """The kubectl connection flags; `kubeconfig_explicit` tells `--kubeconfig` (must exist) from `$KUBECONFIG`."""

    kubeconfig: str | None = None
    kubeconfig_explicit: bool = False
    context: str | None = None
    cluster: str | None = None
    user: str | None = None
    namespace: str | None = None
    server: str | None = None
    token: str | None = None
    username: str | None = None
    password: str | None = None
    certificate_authority: str | None = None
    client_certificate: str | None = None
    client_key: str | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    as_user: str | None = None
    as_groups: Sequence[str] = ()
    as_uid: str | None = None
    request_timeout: str | None = None
    disable_compression: bool = False


@dataclass(slots=True)
class KubeConnection:
    """A ready API client for one namespace; close it (or use `with`) to release its connection pool."""

    namespace: str
    api: Any  # kubernetes.client.CoreV1Api
    request_timeout: float | None
    _client: Any = field(repr=False)

    def __enter__(self) -> KubeConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()


@dataclass(frozen=True, slots=True)
class _InCluster:
    """What client-go's inClusterClientConfig looks at: the service env vars and the ServiceAccount files."""

    directory: Path
    host: str
    port: str

    @classmethod
    def of(cls, environ: Mapping[str, str]) -> _InCluster:
        directory = Path(environ.get(SERVICEACCOUNT_DIR_ENV) or _SERVICEACCOUNT_DIR)
        return cls(directory, environ.get("KUBERNETES_SERVICE_HOST", ""), environ.get("KUBERNETES_SERVICE_PORT", ""))

    @property
    def possible(self) -> bool:
        return bool(self.host and self.port) and (self.directory / "token").exists()

    def namespace(self, environ: Mapping[str, str]) -> str:
        if pod_namespace := environ.get("POD_NAMESPACE", ""):
            return pod_namespace
        try:
            return (self.directory / "namespace").read_text(encoding="utf-8").strip() or "default"
        except (OSError, UnicodeDecodeError):
            return "default"


@dataclass(slots=True)
class _Resolved:
    """The merged kubeconfig with the flags applied: the effective context, cluster and user."""

    context: dict[str, Any]
    cluster: dict[str, Any]
    user: dict[str, Any]
    problems: list[str]

    @property
    def empty(self) -> bool:
        """client-go's "empty config": nothing wrong except that no server is known."""
        return not self.problems and not self.cluster.get("server")

    def invalid(self) -> KubeError | None:
        problems = self.problems or ([] if self.cluster.get("server") else [_EMPTY_CONFIG])
        if not problems:
            return None
        return KubeError(
            "invalid configuration: " + (problems[0] if len(problems) == 1 else f"[{', '.join(problems)}]")
        )


def connect(options: KubeOptions, environ: Mapping[str, str] = os.environ) -> KubeConnection:
    """Resolve the namespace, then build the API client, each failing with its own prefix."""
    in_cluster = _InCluster.of(environ)
    try:
        resolved = _resolve(options, environ)
        namespace = _namespace(options, resolved, in_cluster, environ)
    except KubeError as exc:
        raise KubeError(f"resolve namespace: {exc}") from None
    try:
        configuration = _configuration(options, resolved, in_cluster)
        timeout = _request_timeout(options.request_timeout)
    except KubeError as exc:
        raise KubeError(f"build kubernetes client config: {exc}") from None
    client = kubernetes.client.ApiClient(configuration)
    headers = _impersonation(options, resolved.user)
    if not (options.disable_compression or resolved.cluster.get("disable-compression") is True):
        headers.append(("Accept-Encoding", "gzip"))
    if headers:
        # Duck-typed stand-in: the REST client only calls `request` and `clear` on its pool.
        client.rest_client.pool_manager = _ExtraHeaders(client.rest_client.pool_manager, headers)  # type: ignore[assignment]
    return KubeConnection(namespace, kubernetes.client.CoreV1Api(client), timeout, client)


def _kubeconfig_paths(options: KubeOptions, environ: Mapping[str, str]) -> list[Path]:
    if options.kubeconfig and options.kubeconfig_explicit:
        path = Path(options.kubeconfig).expanduser()
        if not path.exists():
            raise KubeError(f"stat {options.kubeconfig}: no such file or directory")
        return [path]
    listed = options.kubeconfig or environ.get("KUBECONFIG", "")
    if listed:
        candidates = [Path(item).expanduser() for item in listed.split(os.pathsep) if item]
    else:
        candidates = [Path("~/.kube/config").expanduser()]
    return [path for path in dict.fromkeys(candidates) if path.exists()]


def _load(path: Path) -> Mapping[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise KubeError(f'error loading config file "{path}": {exc}') from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise KubeError(f'error loading config file "{path}": not a kubeconfig mapping')
    return document


def _merge(paths: Sequence[Path]) -> tuple[str, dict[str, dict[str, dict[str, Any]]]]:
    """kubectl's merge: the first file to define a name (or a current-context) wins; file paths made absolute."""
    current = ""
    merged: dict[str, dict[str, dict[str, Any]]] = {section: {} for section, _ in _SECTIONS}
    for path in paths:
        document = _load(path)
        current = current or str(document.get("current-context") or "")
        for section, inner in _SECTIONS:
            for item in document.get(section) or []:
                if not isinstance(item, dict) or not isinstance(item.get(inner) or {}, dict):
                    raise KubeError(f'error loading config file "{path}": malformed {section} entry')
                value = dict(item.get(inner) or {})
                for key in _PATH_FIELDS.get(section, ()):
                    if value.get(key):
                        value[key] = str(path.parent.absolute() / str(value[key]))
                merged[section].setdefault(str(item.get("name", "")), value)
    return current, merged


def _resolve(options: KubeOptions, environ: Mapping[str, str]) -> _Resolved:
    current, merged = _merge(_kubeconfig_paths(options, environ))
    problems: list[str] = []
    context_name = options.context or current
    context = merged["contexts"].get(context_name, {}) if context_name else {}
    if context_name and context_name not in merged["contexts"]:
        problems.append(f"context was not found for specified context: {context_name}")
    cluster_name = options.cluster or str(context.get("cluster") or "")
    user_name = options.user or str(context.get("user") or "")
    if cluster_name and cluster_name not in merged["clusters"]:
        problems.append(f'cluster "{cluster_name}" does not exist')
    if user_name and user_name not in merged["users"]:
        problems.append(f'auth info "{user_name}" does not exist')
    cluster = dict(merged["clusters"].get(cluster_name, {}))
    user = dict(merged["users"].get(user_name, {}))
    _override_cluster(options, cluster)
    _override_user(options, user)
    problems += _user_problems(options, user_name, user)
    return _Resolved(context, cluster, user, problems)


def _user_problems(options: KubeOptions, name: str, user: Mapping[str, Any]) -> list[str]:
    """client-go's `validateAuthInfo` rules that the flags can break."""
    problems: list[str] = []
    methods = [
        method
        for method, present in (
            ("token", user.get("token")),
            ("basicAuth", user.get("username") or user.get("password")),
        )
        if present
    ]
    if len(methods) > 1:
        problems.append(
            f"more than one authentication method found for {name}; found [{' '.join(methods)}], only one is allowed"
        )
    impersonating = options.as_user or user.get("as")
    if not impersonating and (options.as_groups or options.as_uid or user.get("as-groups") or user.get("as-uid")):
        problems.append(f"requesting uid, groups or user-extra for {name} without impersonating a user")
    return problems


def _override_cluster(options: KubeOptions, cluster: dict[str, Any]) -> None:
    if options.server:
        cluster["server"] = options.server
    if options.tls_server_name:
        cluster["tls-server-name"] = options.tls_server_name
    if options.certificate_authority:
        cluster.pop("certificate-authority-data", None)
        cluster["certificate-authority"] = os.path.abspath(options.certificate_authority)
    if options.insecure_skip_tls_verify:
        cluster["insecure-skip-tls-verify"] = True
        # client-go drops the kubeconfig's CA then: a CA together with insecure is rejected.
        if not options.certificate_authority:
            cluster.pop("certificate-authority", None)
            cluster.pop("certificate-authority-data", None)


def _override_user(options: KubeOptions, user: dict[str, Any]) -> None:
    if options.token:
        user["token"] = options.token
        user.pop("tokenFile", None)
    if options.username:
        user["username"] = options.username
    if options.password:
        user["password"] = options.password
    for flag, key in ((options.client_certificate, "client-certificate"), (options.client_key, "client-key")):
        if flag:
            user.pop(f"{key}-data", None)
            user[key] = os.path.abspath(flag)


def _namespace(options: KubeOptions, resolved: _Resolved, in_cluster: _InCluster, environ: Mapping[str, str]) -> str:
    if options.namespace:
        return options.namespace
    invalid = resolved.invalid()
    if invalid is not None and not (resolved.empty and in_cluster.possible):
        raise invalid
    if context_namespace := str(resolved.context.get("namespace") or ""):
        return context_namespace
    return in_cluster.namespace(environ) if in_cluster.possible else "default"


def _configuration(options: KubeOptions, resolved: _Resolved, in_cluster: _InCluster) -> Any:
    configuration = kubernetes.client.Configuration()
    try:
        if resolved.empty and in_cluster.possible:
            _load_in_cluster(options, in_cluster, configuration)
            return configuration
        invalid = resolved.invalid()
        if invalid is not None:
            raise invalid
        # Basic auth is set below: the Python loader encodes it as Latin-1 and needs both fields.
        user = {key: value for key, value in resolved.user.items() if key not in ("username", "password")}
        document = {
            "current-context": "fluxmirror",
            "contexts": [{"name": "fluxmirror", "context": {"cluster": "fluxmirror", "user": "fluxmirror"}}],
            "clusters": [{"name": "fluxmirror", "cluster": resolved.cluster}],
            "users": [{"name": "fluxmirror", "user": user}],
        }
        kubernetes.config.load_kube_config_from_dict(document, client_configuration=configuration, persist_config=False)
    except (ConfigException, OSError, ValueError) as exc:
        raise KubeError(str(exc)) from None
    if username := str(resolved.user.get("username") or ""):
        # client-go sends basic auth whenever a username is set (an absent password is empty).
        secret = f"{username}:{resolved.user.get('password') or ''}".encode()
        configuration.api_key = {"BearerToken": "Basic " + base64.b64encode(secret).decode("ascii")}
        configuration.refresh_api_key_hook = None
    return configuration


def _load_in_cluster(options: KubeOptions, in_cluster: _InCluster, configuration: Any) -> None:
    """The client's in-cluster loader, then the flags client-go lets override it (token, CA, server name)."""
    loader = InClusterConfigLoader(
        token_filename=str(in_cluster.directory / "token"), cert_filename=str(in_cluster.directory / "ca.crt")
    )
    loader.load_and_set(configuration)
    if options.token:
        configuration.api_key = {"BearerToken": f"Bearer {options.token}"}
        configuration.refresh_api_key_hook = None
    if options.certificate_authority:
        configuration.ssl_ca_cert = os.path.abspath(options.certificate_authority)
    if options.tls_server_name:
        configuration.tls_server_name = options.tls_server_name


def _request_timeout(text: str | None) -> float | None:
    """kubectl's `--request-timeout`: bare seconds or a Go duration; zero (the default) means none."""
    if not text or text == "0":
        return None
    try:
        seconds = float(text) if re.fullmatch(r"\d+", text) else Duration.parse(text).total_seconds()
    except ValueError:
        raise KubeError(_BAD_TIMEOUT) from None
    if seconds < 0:
        raise KubeError(_BAD_TIMEOUT)
    return seconds or None


def _impersonation(options: KubeOptions, user: Mapping[str, Any]) -> list[tuple[str, str]]:
    """`--as`/`--as-uid`/`--as-group`, else the kubeconfig user's `as`/`as-uid`/`as-groups`, as
    Impersonate-* header lines; nothing without a user to impersonate, as client-go does."""
    as_user = options.as_user or str(user.get("as") or "")
    if not as_user:
        return []
    as_uid = options.as_uid or str(user.get("as-uid") or "")
    groups = list(options.as_groups) or [str(group) for group in user.get("as-groups") or []]
    headers = [("Impersonate-User", as_user)] + ([("Impersonate-Uid", as_uid)] if as_uid else [])
    return headers + [("Impersonate-Group", group) for group in groups]


class _ExtraHeaders:
    """Adds header lines to every request of the client's urllib3 pool.

    The generated client sends one value per header name, but impersonating several groups needs one
    `Impersonate-Group` line per group (the API server does not split a comma-joined value).
    """

    def __init__(self, pool: urllib3.PoolManager, headers: Sequence[tuple[str, str]]) -> None:
        self._pool = pool
        self._headers = headers

    def request(self, method: str, url: str, headers: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
        merged = urllib3.HTTPHeaderDict(headers or {})
        for name, value in self._headers:
            if name == "Accept-Encoding":
                merged.setdefault(name, value)
            else:
                merged.add(name, value)
        return self._pool.request(method, url, headers=merged, **kwargs)

    def clear(self) -> None:
        self._pool.clear()
