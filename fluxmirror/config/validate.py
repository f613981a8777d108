"""Semantic rules of the `flux mirror` config reference, checked before any network call.

Rules run in the order `flux mirror` checks them (docs/config.md#validation-order) and the first failure is
reported with its exact message, so scripts and muscle memory carry over. "Set" checks ignore
surrounding whitespace.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final
from urllib.parse import SplitResult, urlsplit

from fluxmirror.api.config import (
    SORT_STRATEGIES,
    TLS,
    Artifact,
    Chart,
    ClientAuth,
    Config,
    Credential,
    Host,
    PEMSource,
    Selector,
    ServerAuth,
    Verify,
)
from fluxmirror.config.decode import join_path
from fluxmirror.config.spiffe import check_spiffe_id, check_trust_domain
from fluxmirror.errors import ConfigError
from fluxmirror.gocompat.regexp import GoRegexError, compile_go
from fluxmirror.gocompat.semver import Constraint, InvalidConstraintError
from fluxmirror.gocompat.strconv import go_quote
from fluxmirror.oci.reference import InvalidReferenceError, parse_repository

__all__ = ["validate_config"]

_HOST_PROVIDERS = ("ecr", "acr", "gar")
_MAX_CHUNK_KIB: Final = ((1 << 63) - 1) // 1024
_MAX_PORT: Final = 65535
_CREDENTIAL_PROVIDERS = ("github", "forgejo", "gcp", "azure", "aws", "jwt-svid")


class _RuleError(Exception):
    """A broken rule, carrying the path-relative message until the path is known."""


def _is_set(value: str) -> bool:
    return bool(value.strip())


def _count_set(*values: object) -> int:
    return sum(1 for value in values if (_is_set(value) if isinstance(value, str) else bool(value)))


def validate_config(config: Config, *, require_entries: bool) -> None:
    """Raise ConfigError for the first broken rule; `require_entries` is False for login/secret."""
    if require_entries and not config.artifacts and not config.charts:
        raise ConfigError("config has no entries: at least one of 'charts' or 'artifacts' must be set")
    seen_hosts: set[str] = set()
    for index, host in enumerate(config.hosts):
        path = f"hosts[{index}]"
        _run(path, _host_errors(host))
        name = host.host.strip()
        if name in seen_hosts:
            raise ConfigError(f'{path}: host "{name}" is configured more than once')
        seen_hosts.add(name)
    for index, chart in enumerate(config.charts):
        _run(f"charts[{index}]", _chart_errors(chart))
    for index, artifact in enumerate(config.artifacts):
        _run(f"artifacts[{index}]", _artifact_errors(artifact))


def _run(path: str, errors: Iterator[str]) -> None:
    for message in errors:
        raise ConfigError(join_path(path, message))


def _host_errors(host: Host) -> Iterator[str]:
    if not _is_set(host.host):
        yield "host is required"
    elif _has_control(host.host.strip()):
        yield f'host "{host.host}" must not contain control characters'
    if _is_set(host.username) and host.credential is None:
        yield "username requires credential"
    if host.credential is not None and _is_set(host.provider):
        yield "credential and provider are mutually exclusive"
    if _is_set(host.provider) and host.tls is not None:
        yield "provider and tls are mutually exclusive"
    if host.credential is not None:
        yield from (join_path("credential", error) for error in _credential_errors(host.credential))
    if _is_set(host.provider) and host.provider not in _HOST_PROVIDERS:
        yield f'provider "{host.provider}" must be one of: {", ".join(_HOST_PROVIDERS)}'
    if host.tls is not None:
        yield from (join_path("tls", error) for error in _tls_errors(host.tls))
    if host.maxChunkSize < 0:
        yield "maxChunkSize must be >= 0 (0 disables chunking)"
    if host.maxChunkSize > _MAX_CHUNK_KIB:
        yield f"maxChunkSize must be <= {_MAX_CHUNK_KIB} (its size in bytes must fit in 64 bits)"
    if host.credential is None and not _is_set(host.provider) and host.tls is None and host.maxChunkSize == 0:
        yield "one of credential, provider, tls, or maxChunkSize is required"


def _credential_errors(credential: Credential) -> Iterator[str]:
    c = credential
    if _count_set(c.provider, c.value, c.fromPath, c.jwkPath, c.jwkValue) != 1:
        yield "exactly one of provider, value, fromPath, jwkPath, or jwkValue must be set"
        return
    claims_set = _is_set(c.iss) or _is_set(c.sub)
    if _is_set(c.jwkPath) or _is_set(c.jwkValue):
        if not _is_set(c.iss):
            yield "iss is required with jwkPath or jwkValue"
        if not _is_set(c.sub):
            yield "sub is required with jwkPath or jwkValue"
        if c.exp is not None and c.exp.nanoseconds <= 0:
            yield "exp must be a positive duration"
        return
    if _is_set(c.provider) and c.provider not in _CREDENTIAL_PROVIDERS:
        yield f'provider "{c.provider}" must be one of: {", ".join(_CREDENTIAL_PROVIDERS)}'
    if claims_set:
        yield "iss and sub can only be set with jwkPath or jwkValue"
    if not _is_set(c.provider) and _is_set(c.aud):
        yield "aud can only be set with jwkPath, jwkValue, or provider"
    if c.exp is not None:
        yield "exp can only be set with jwkPath or jwkValue"


def _tls_errors(tls: TLS) -> Iterator[str]:
    if tls.serverAuth is None and tls.clientAuth is None:
        yield "one of serverAuth or clientAuth is required"
    if tls.serverAuth is not None:
        yield from (join_path("serverAuth", error) for error in _server_auth_errors(tls.serverAuth))
    if tls.clientAuth is not None:
        yield from (join_path("clientAuth", error) for error in _client_auth_errors(tls.clientAuth))


def _server_auth_errors(server: ServerAuth) -> Iterator[str]:
    if _count_set(server.fromPath, server.value, server.spiffe is not None) != 1:
        yield "exactly one of fromPath, value, or spiffe must be set"
        return
    spiffe = server.spiffe
    if spiffe is None:
        return
    if _count_set(spiffe.serverID, spiffe.trustDomain, spiffe.authorizeAny) != 1:
        yield "spiffe: exactly one of serverID, trustDomain, or authorizeAny must be set"
    elif _is_set(spiffe.serverID):
        try:
            check_spiffe_id(spiffe.serverID.strip())
        except ValueError as exc:
            yield f'spiffe: serverID "{spiffe.serverID}" is not a valid SPIFFE ID: {exc}'
    elif _is_set(spiffe.trustDomain) and spiffe.trustDomain.strip() != "self":
        try:
            check_trust_domain(spiffe.trustDomain.strip())
        except ValueError as exc:
            yield f'spiffe: trustDomain "{spiffe.trustDomain}" is not valid: {exc}'


def _client_auth_errors(client: ClientAuth) -> Iterator[str]:
    if _is_set(client.provider):
        if client.certificate is not None or client.key is not None:
            yield "provider is mutually exclusive with certificate and key"
        elif client.provider != "x509-svid":
            yield f'provider "{client.provider}" must be "x509-svid"'
        return
    yield from _pem_errors("certificate", client.certificate)
    yield from _pem_errors("key", client.key)


def _pem_errors(name: str, source: PEMSource | None) -> Iterator[str]:
    if source is None:
        yield f"{name} is required"
    elif _count_set(source.fromPath, source.value) != 1:
        yield f"{name}: exactly one of fromPath or value must be set"


def _bad_port(hostport: str) -> tuple[str, bool] | None:
    """The port of `host[:port]` (an IPv6 host in brackets) when it is not one, and whether it is a
    number past 65535 (which net/url lets through, to fail at dial time) rather than no number."""
    host_end = hostport.rfind("]") if hostport.startswith("[") else -1
    colon = hostport.rfind(":")
    port = hostport[colon + 1 :] if colon > host_end else ""
    if not port:
        return None
    if not (port.isascii() and port.isdigit()):
        return port, False
    significant = port.lstrip("0")
    if len(significant) > len(str(_MAX_PORT)) or int(significant or "0") > _MAX_PORT:
        return port, True
    return None


def _port_message(port: str, out_of_range: bool, where: str) -> str:
    message = f"invalid port {go_quote(':' + port)} {where}"
    return f"{message} (out of range 0-{_MAX_PORT})" if out_of_range else message


def _has_control(text: str) -> bool:
    return any(ord(char) < 0x20 or ord(char) == 0x7F for char in text)


def _parse_url(raw: str) -> SplitResult:
    """Parse like Go's net/url would accept; ValueError carries a Go-flavoured reason."""
    quoted = go_quote(raw)
    if _has_control(raw):
        raise ValueError(f"parse {quoted}: net/url: invalid control character in URL")
    try:
        parsed = urlsplit(raw)
        bad_port = _bad_port(parsed.netloc.rpartition("@")[2])
        if bad_port is not None:
            raise ValueError(_port_message(*bad_port, "after host"))
        _ = parsed.port
    except ValueError as exc:
        raise ValueError(f"parse {quoted}: {exc}") from None
    if " " in parsed.netloc:
        raise ValueError(f'parse {quoted}: invalid character " " in host name')
    return parsed


def _chart_errors(chart: Chart) -> Iterator[str]:
    if not _is_set(chart.name):
        yield "name is required"
    yield from (join_path("source", error) for error in _chart_source_errors(chart.source.strip()))
    yield from (join_path("destination", error) for error in _chart_destination_errors(chart.destination.strip()))
    version = chart.version.strip() or "*"
    try:
        Constraint.parse(version)
    except InvalidConstraintError as exc:
        yield f'version "{chart.version}" is not a valid semver constraint: {exc}'
    if chart.limit < 0:
        yield "limit must be >= 0 (0 = unlimited)"


def _chart_source_errors(source: str) -> Iterator[str]:
    if not source:
        yield "source is required"
        return
    try:
        url = _parse_url(source)
    except ValueError as exc:
        yield f"invalid URL: {exc}"
        return
    if url.scheme.lower() not in ("http", "https"):
        yield (
            f'scheme "{url.scheme}" must be one of: http, https '
            "(use 'artifacts' to mirror an OCI Helm chart to another OCI repository)"
        )
    elif not url.hostname:
        yield f'URL "{source}" is missing a host'


def _chart_destination_errors(destination: str) -> Iterator[str]:
    if not destination:
        yield "destination is required"
        return
    try:
        url = _parse_url(destination)
    except ValueError as exc:
        yield f"invalid URL: {exc}"
        return
    if url.scheme.lower() != "oci":
        yield f'scheme must be oci://, got "{url.scheme}"'
    elif not url.hostname:
        yield f'URL "{destination}" is missing a host'


def _check_registry_port(registry: str) -> None:
    """go-containerregistry refuses a registry whose port is not a number; one past 65535 is refused too."""
    bad_port = _bad_port(registry)
    if bad_port is None:
        return
    port, out_of_range = bad_port
    if not out_of_range:
        raise InvalidReferenceError(f"registries must be valid RFC 3986 URI authorities: {registry}")
    raise InvalidReferenceError(_port_message(port, out_of_range, f"in registry {go_quote(registry)}"))


def _artifact_errors(artifact: Artifact) -> Iterator[str]:
    for field, value in (("source", artifact.source), ("destination", artifact.destination)):
        try:
            _check_registry_port(parse_repository(value).registry)
        except InvalidReferenceError as exc:
            yield f'{field} "{value}" is not a valid OCI repository: {exc}'
    if artifact.selector is not None:
        yield from (join_path("selector", error) for error in _selector_errors(artifact.selector))
    if artifact.verify is not None:
        yield from (join_path("verify", error) for error in _verify_errors(artifact.verify))


def _selector_errors(selector: Selector) -> Iterator[str]:
    if selector.regex is not None:
        if not _is_set(selector.regex.pattern):
            yield "regex.pattern is required when regex is set"
        else:
            try:
                compile_go(selector.regex.pattern)
            except GoRegexError as exc:
                yield f'regex.pattern "{selector.regex.pattern}" does not compile: {exc}'
    if _is_set(selector.semver):
        try:
            Constraint.parse(selector.semver)
        except InvalidConstraintError as exc:
            yield f'semver "{selector.semver}" is not a valid constraint: {exc}'
    if _is_set(selector.sortBy) and selector.sortBy not in SORT_STRATEGIES:
        yield f'sortBy "{selector.sortBy}" must be one of: {", ".join(SORT_STRATEGIES)}'
    if selector.limit < 0:
        yield "limit must be >= 0 (0 = unlimited)"


def _verify_errors(verify: Verify) -> Iterator[str]:
    if verify.provider != "cosign":
        yield f'provider "{verify.provider}" must be "cosign"'
    if not verify.matchOIDCIdentity:
        yield "matchOIDCIdentity must contain at least one identity"
    if verify.minAge is not None and verify.minAge.nanoseconds < 0:
        yield "minAge must be >= 0"
    for index, identity in enumerate(verify.matchOIDCIdentity):
        if not _is_set(identity.issuer):
            yield f"matchOIDCIdentity[{index}].issuer is required"
        if not _is_set(identity.subject):
            yield f"matchOIDCIdentity[{index}].subject is required"
            continue
        try:
            compile_go(identity.subject)
        except GoRegexError as exc:
            yield f'matchOIDCIdentity[{index}].subject "{identity.subject}" does not compile: {exc}'
