"""The `hosts[].tls` settings of a config, turned into one TLS context per host before anything runs
(docs/sync.md#host-tls), so a bad CA bundle, certificate or key stops the run with one line naming
the host instead of failing every request to it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fluxmirror.api.config import Host, PEMSource
from fluxmirror.errors import ConfigError
from fluxmirror.gocompat.oserror import path_error
from fluxmirror.http.tls import HostTLS, TLSSettingsError, build_context

__all__ = ["host_tls"]


def host_tls(hosts: Sequence[Host], *, insecure: bool) -> HostTLS:
    """The run's TLS choice per request: each configured host's context, else the defaults."""
    contexts = {}
    for host in hosts:
        if host.tls is None:
            continue
        server, client = host.tls.serverAuth, host.tls.clientAuth
        try:
            ca = None
            if server is not None:
                ca = _pem(PEMSource(fromPath=server.fromPath, value=server.value), "serverAuth")
            cert = _pem(client.certificate, "clientAuth.certificate") if client is not None else None
            key = _pem(client.key, "clientAuth.key") if client is not None else None
            contexts[host.host] = build_context(ca_pem=ca, cert_pem=cert, key_pem=key, insecure=insecure)
        except TLSSettingsError as exc:
            raise ConfigError(f'host "{host.host}": tls: {exc}') from None
    return HostTLS(contexts, insecure=insecure)


def _pem(source: PEMSource | None, field: str) -> bytes | None:
    if source is None:
        return None
    if source.value:
        return source.value.encode()
    try:
        return Path(source.fromPath).read_bytes()
    except OSError as exc:
        raise TLSSettingsError(f"{field}: {path_error('open', source.fromPath, exc)}") from None
