"""Forward proxies from the environment, decided the way Go's `http.ProxyFromEnvironment` decides.

`flux mirror` users behind an egress proxy set `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (or their
lower-case forms; the upper-case one wins when both are set), and expect fluxmirror to choose as the
Go tool does:

* an `https` URL uses `HTTPS_PROXY`, an `http` URL uses `HTTP_PROXY` (ignored when `REQUEST_METHOD`
  is set, as in a CGI environment, where the variable may come from a request header);
* a proxy value without a scheme is taken as `http://<value>`;
* `localhost` and loopback addresses are never proxied;
* `NO_PROXY` is a comma-separated list: `*` (nothing is proxied), IP addresses and CIDR ranges,
  host names and domains, each optionally with `:port`. `example.com` matches the host and its
  subdomains, `.example.com` and `*.example.com` only the subdomains.

The environment is read once per run, when the HTTP session starts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from yarl import URL

from fluxmirror.http.errors import TransportError
from fluxmirror.http.urls import DEFAULT_PORTS, redact_url
from fluxmirror.scrub import remember

__all__ = ["ProxySettings"]

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _variable(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name.upper()) or environ.get(name.lower()) or ""


@dataclass(frozen=True, slots=True)
class _Unusable:
    """A proxy variable fluxmirror cannot use: every request it would carry fails with `reason`, as
    Go fails each request rather than the run."""

    reason: str


def _proxy_url(value: str) -> URL | _Unusable | None:
    if not value:
        return None
    parsed = URL(value)
    if not parsed.scheme or not parsed.host:
        parsed = URL(f"http://{value}")
    remember(parsed.password or "")  # an error text from below may still quote the proxy URL
    if parsed.scheme not in ("http", "https"):
        return _Unusable(f"proxy {redact_url(parsed)}: scheme {parsed.scheme!r} is not supported")
    return parsed


def _split_host_port(entry: str) -> tuple[str, str]:
    """`host:port` or `[v6]:port` split as Go's SplitHostPort splits them; anything else (a bare
    host, a bare IPv6 address, `[v6]` without a port) is all host, as Go's fallback keeps it."""
    if entry.startswith("[") and "]:" in entry:
        host, _, port = entry[1:].partition("]:")
        return host, port
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, port
    return entry, ""


def _idna(name: str) -> str:
    """A name's ASCII (punycode) form, as Go compares names; unchanged when it has none."""
    try:
        return ".".join(label.encode("idna").decode("ascii") if label else "" for label in name.split("."))
    except UnicodeError:
        return name


def _ip(text: str) -> _Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _NoProxy:
    """The parsed `NO_PROXY` list."""

    everything: bool = False
    networks: tuple[_Network, ...] = ()
    addresses: tuple[tuple[_Address, str], ...] = ()
    domains: tuple[tuple[str, str, bool], ...] = ()  # (".suffix", port, whether the bare name matches too)

    @classmethod
    def parse(cls, value: str) -> _NoProxy:
        networks: list[_Network] = []
        addresses: list[tuple[_Address, str]] = []
        domains: list[tuple[str, str, bool]] = []
        for raw in value.split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry == "*":
                return cls(everything=True)
            if "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    pass  # Go ignores what is neither a CIDR nor a host; so does this
                else:
                    continue
            host, port = _split_host_port(entry)
            address = _ip(host)
            if address is not None:
                addresses.append((address, port))
                continue
            if not host:
                continue
            if host.startswith("*."):
                host = host[1:]
            exact = not host.startswith(".")
            domains.append((_idna(host if not exact else f".{host}"), port, exact))
        return cls(False, tuple(networks), tuple(addresses), tuple(domains))

    def excludes(self, host: str, port: str) -> bool:
        if self.everything:
            return True
        address = _ip(host)
        if address is not None:  # an address is never matched against names (as Go since CVE-2025-22870)
            return any(address in network for network in self.networks) or any(
                address == wanted and wanted_port in ("", port) for wanted, wanted_port in self.addresses
            )
        return any(
            (host.endswith(suffix) or (exact and host == suffix[1:])) and wanted_port in ("", port)
            for suffix, wanted_port, exact in self.domains
        )


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Which proxy, if any, a request goes through."""

    https: URL | _Unusable | None = None
    http: URL | _Unusable | None = None
    no_proxy: _NoProxy = field(default_factory=_NoProxy)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> ProxySettings:
        http = None if environ.get("REQUEST_METHOD") else _proxy_url(_variable(environ, "HTTP_PROXY"))
        return cls(
            https=_proxy_url(_variable(environ, "HTTPS_PROXY")),
            http=http,
            no_proxy=_NoProxy.parse(_variable(environ, "NO_PROXY")),
        )

    def proxy_for(self, url: URL) -> URL | None:
        """The proxy for a request to `url`, or None to connect directly."""
        proxy = self.https if url.scheme == "https" else self.http if url.scheme == "http" else None
        if proxy is None:
            return None
        host = (url.raw_host or "").lower()  # the IDNA (punycode) form, as Go compares names
        if host == "localhost" or ((address := _ip(host)) is not None and address.is_loopback):
            return None
        port = str(url.explicit_port or DEFAULT_PORTS[url.scheme])
        if self.no_proxy.excludes(host, port):
            return None
        if isinstance(proxy, _Unusable):
            raise TransportError(proxy.reason, temporary=False)
        return proxy
