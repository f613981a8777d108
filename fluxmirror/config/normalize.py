"""Canonical values for a validated config, so the code that runs it never trims or defaults again.

Validation reads the config as written ("set" checks ignore surrounding whitespace, messages quote the
raw value); this step, run last in the load pipeline, gives every consumer the values it would
otherwise have to derive itself:

* `hosts[].host`, `hosts[].username`: trimmed (the host is the key credentials and chunk sizes are
  looked up by).
* `hosts[].credential.value`, `.fromPath`, `.jwkPath`, `.iss`, `.sub`, `.aud`: trimmed, so a
  whitespace-only field is empty, i.e. unset. `jwkValue` is kept as written (a JWK is JSON).
* `hosts[].tls.clientAuth.provider`, `.serverAuth.spiffe.serverID`, `.trustDomain`: trimmed.
* `charts[].name`, `.source`, `.destination`: trimmed. The source keeps a trailing `/` (requests and
  messages use it as written); the report's entry name drops it where it is built.
* `charts[].version`: trimmed; blank means the default `*`, as validation already assumed.
* `artifacts[].selector.semver`: trimmed; blank means no range.
* `artifacts[].selector.sortBy`: blank means the default `semver` (config.md "Defaults"), as in
  `flux mirror`; other values are kept, validation has already refused anything not allowed.

Nothing else changes: regular expressions, templates and artifact references are used as written.
"""

from __future__ import annotations

import msgspec

from fluxmirror.api.config import TLS, Artifact, Chart, Config, Credential, Host, Selector

__all__ = ["normalize_config"]

_DEFAULTS_SELECTOR = Selector()
_DEFAULTS_CHART = Chart()


def normalize_config(config: Config) -> Config:
    """Return `config` with the canonical values above; `config` must have passed validation."""
    return msgspec.structs.replace(
        config,
        hosts=[_host(host) for host in config.hosts],
        charts=[_chart(chart) for chart in config.charts],
        artifacts=[_artifact(artifact) for artifact in config.artifacts],
    )


def _host(host: Host) -> Host:
    credential = host.credential
    if credential is not None:
        credential = _credential(credential)
    tls = _tls(host.tls) if host.tls is not None else None
    return msgspec.structs.replace(
        host, host=host.host.strip(), username=host.username.strip(), credential=credential, tls=tls
    )


def _tls(tls: TLS) -> TLS:
    server, client = tls.serverAuth, tls.clientAuth
    if server is not None and server.spiffe is not None:
        spiffe = server.spiffe
        spiffe = msgspec.structs.replace(
            spiffe, serverID=spiffe.serverID.strip(), trustDomain=spiffe.trustDomain.strip()
        )
        server = msgspec.structs.replace(server, spiffe=spiffe)
    if client is not None:
        client = msgspec.structs.replace(client, provider=client.provider.strip())
    return msgspec.structs.replace(tls, serverAuth=server, clientAuth=client)


def _credential(credential: Credential) -> Credential:
    return msgspec.structs.replace(
        credential,
        value=credential.value.strip(),
        fromPath=credential.fromPath.strip(),
        jwkPath=credential.jwkPath.strip(),
        iss=credential.iss.strip(),
        sub=credential.sub.strip(),
        aud=credential.aud.strip(),
    )


def _chart(chart: Chart) -> Chart:
    return msgspec.structs.replace(
        chart,
        name=chart.name.strip(),
        source=chart.source.strip(),
        destination=chart.destination.strip(),
        version=chart.version.strip() or _DEFAULTS_CHART.version,
    )


def _artifact(artifact: Artifact) -> Artifact:
    selector = artifact.selector
    if selector is None:
        return artifact
    return msgspec.structs.replace(
        artifact,
        selector=msgspec.structs.replace(
            selector,
            semver=selector.semver.strip(),
            sortBy=selector.sortBy.strip() or _DEFAULTS_SELECTOR.sortBy,
        ),
    )
