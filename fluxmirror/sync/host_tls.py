"""The `hosts[].tls` settings of a config, turned into one TLS context per host before anything runs
(docs/sync.md#host-tls), so a bad CA bundle, certificate or key stops the run with one line naming
the host instead of failing every request to it.

A host using SPIFFE (`serverAuth.spiffe` or `clientAuth.provider: x509-svid`) gets its context from
the run's one X.509 source (the Workload API at `SPIFFE_ENDPOINT_SOCKET`), opened only if some host
needs it and closed with the run; every SVID or bundle update rebuilds those hosts' contexts."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fluxmirror.api.config import TLS, ClientAuth, Host, PEMSource, ServerAuth
from fluxmirror.errors import ConfigError
from fluxmirror.gocompat.oserror import path_error
from fluxmirror.http.tls import HostTLS, Rotating, TLSSettingsError, build_context

if TYPE_CHECKING:
    from fluxmirror.http.spiffe import RotatingContext, ServerRule, SvidMaterial

__all__ = ["host_tls"]

log = logging.getLogger(__name__)


def host_tls(hosts: Sequence[Host], *, insecure: bool) -> HostTLS:
    """The run's TLS choice per request: each configured host's context, else the defaults.
    Blocking (files, and the first SVID): run it in a thread."""
    contexts: dict[str, ssl.SSLContext | Rotating] = {}
    spiffe_hosts = [host for host in hosts if host.tls is not None and _uses_spiffe(host.tls)]
    source: Any = None
    try:
        if spiffe_hosts:
            from fluxmirror.http import spiffe

            try:
                source = spiffe.open_x509_source()
                material = spiffe.material_of(source)
            except TLSSettingsError as exc:
                raise ConfigError(f'host "{spiffe_hosts[0].host}": tls: {exc}') from None
        rotating: list[RotatingContext] = []
        for host in hosts:
            if host.tls is None:
                continue
            try:
                if host in spiffe_hosts:
                    holder = _spiffe_holder(host.host, host.tls, material, insecure=insecure)
                    rotating.append(holder)
                    contexts[host.host] = holder
                else:
                    contexts[host.host] = _static(host.tls, insecure=insecure)
            except (TLSSettingsError, ssl.SSLError) as exc:
                raise ConfigError(f'host "{host.host}": tls: {exc}') from None
        if source is not None:
            source.subscribe_for_updates(partial(_on_update, source, rotating))
    except BaseException:
        if source is not None:
            _close(source)
        raise
    return HostTLS(contexts, insecure=insecure, close=partial(_close, source) if source is not None else None)


def _uses_spiffe(tls: TLS) -> bool:
    return (tls.serverAuth is not None and tls.serverAuth.spiffe is not None) or (
        tls.clientAuth is not None and tls.clientAuth.provider == "x509-svid"
    )


def _static(tls: TLS, *, insecure: bool) -> ssl.SSLContext:
    cert, key = _client_pem(tls.clientAuth) or (None, None)
    return build_context(ca_pem=_server_ca(tls.serverAuth), cert_pem=cert, key_pem=key, insecure=insecure)


def _server_ca(server: ServerAuth | None) -> bytes | None:
    """The CA bundle of a `serverAuth` that has one (not SPIFFE)."""
    if server is None or server.spiffe is not None:
        return None
    return _pem(PEMSource(fromPath=server.fromPath, value=server.value), "serverAuth")


def _client_pem(client: ClientAuth | None) -> tuple[bytes, bytes] | None:
    """A static `clientAuth` certificate chain and key (not an SVID)."""
    if client is None or client.provider == "x509-svid":
        return None
    cert, key = _pem(client.certificate, "clientAuth.certificate"), _pem(client.key, "clientAuth.key")
    return (cert, key) if cert is not None and key is not None else None


def _spiffe_holder(host: str, tls: TLS, material: SvidMaterial, *, insecure: bool) -> RotatingContext:
    from fluxmirror.http.spiffe import RotatingContext, ServerRule, spiffe_context

    server, client = tls.serverAuth, tls.clientAuth
    rule: ServerRule | None = None
    if server is not None and server.spiffe is not None:
        spec = server.spiffe
        rule = ServerRule(
            server_id=spec.serverID or None,
            trust_domain=spec.trustDomain or None,
            authorize_any=spec.authorizeAny,
        )
    build: Callable[[SvidMaterial], ssl.SSLContext] = partial(
        spiffe_context,
        server=rule,
        ca_pem=_server_ca(server),
        client_svid=client is not None and client.provider == "x509-svid",
        client_pem=_client_pem(client),
        insecure=insecure,
    )
    return RotatingContext(host, build, material)


def _on_update(source: Any, holders: Sequence[RotatingContext]) -> None:
    """py-spiffe's watcher thread: a new SVID or bundle; each host's context is rebuilt from it."""
    from fluxmirror.http.spiffe import material_of

    try:
        material = material_of(source)
    except Exception as exc:
        log.warning("tls: spiffe: cannot read the updated X.509 context, keeping the previous one: %s", exc)
        return
    for holder in holders:
        holder.refresh(material)


def _close(source: Any) -> None:
    try:
        source.close()
    except Exception as exc:
        log.debug("tls: spiffe: closing the X.509 source: %s", exc)


def _pem(source: PEMSource | None, field: str) -> bytes | None:
    if source is None:
        return None
    if source.value:
        return source.value.encode()
    try:
        return Path(source.fromPath).read_bytes()
    except OSError as exc:
        raise TLSSettingsError(f"{field}: {path_error('open', source.fromPath, exc)}") from None
