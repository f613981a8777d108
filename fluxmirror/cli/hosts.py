"""What `login` and `secret` share: choosing hosts and minting their credentials within `--timeout`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from fluxmirror.api.config import Host
from fluxmirror.api.duration import Duration
from fluxmirror.auth.credentials import Credential
from fluxmirror.auth.hosts import HostCredentialError, host_source
from fluxmirror.cli.options import hosts_config_source, resolve_timeout
from fluxmirror.config import load_config
from fluxmirror.errors import ConfigError

__all__ = ["CredentialResolver", "has_credential", "hosts_to_store", "select_hosts", "skipped_line"]


def hosts_to_store(
    config: str | None, wanted: Sequence[str], timeout: str | None, no_envsubst: bool
) -> tuple[list[Host], Duration]:
    """The shared start of `login` and `secret`: a hosts-only-friendly config, the hosts to store, and
    the `--timeout` budget for minting their credentials."""
    budget = resolve_timeout(timeout, "1m")
    loaded = load_config(hosts_config_source(config), require_entries=False, envsubst=not no_envsubst)
    return select_hosts(loaded.config.hosts, wanted), budget


def select_hosts(hosts: Sequence[Host], wanted: Sequence[str]) -> list[Host]:
    """All hosts in config order, or the `--host` values in flag order (each once); unknown names fail."""
    if not hosts:
        raise ConfigError("config has no hosts")
    if not wanted:
        return list(hosts)
    by_name = {host.host: host for host in hosts}
    selected: list[Host] = []
    for name in dict.fromkeys(wanted):
        if name not in by_name:
            raise ConfigError(f'host "{name}" not found in hosts')
        selected.append(by_name[name])
    return selected


def has_credential(host: Host) -> bool:
    """Whether the host has something to store: a `credential` or a cloud registry `provider`."""
    return host.credential is not None or bool(host.provider.strip())


def skipped_line(name: str) -> str:
    """What is printed for a host with nothing to store (TLS-only, or only `maxChunkSize`)."""
    return f"• skipping {name}: no credential configured (TLS-only host)"


class CredentialResolver:
    """Mints host credentials one by one, all within one `--timeout` budget from its creation.

    Each host gets its own event loop and HTTP session: `login` and `secret` mint once per host,
    and blocking SDK calls run in daemon threads (`fluxmirror.auth.blocking`), so a call stuck past
    the budget is abandoned rather than holding the command open.
    """

    def __init__(self, budget: Duration) -> None:
        self._budget = budget
        self._deadline = time.monotonic() + budget.total_seconds()

    def resolve(self, host: Host) -> Credential:
        """Mint the host's credential once, within what is left of the budget."""
        remaining = max(self._deadline - time.monotonic(), 0.0)
        with asyncio.Runner() as runner:
            try:
                return runner.run(asyncio.wait_for(_mint(host), remaining))
            except TimeoutError:
                raise HostCredentialError(f'host "{host.host}": timed out after {self._budget}') from None


async def _mint(host: Host) -> Credential:
    # Imported here: aiohttp is needed only once a host has a credential to mint.
    from fluxmirror.http.session import HttpSession
    from fluxmirror.oci.client import USER_AGENT

    async with HttpSession(user_agent=USER_AGENT) as http:
        source = host_source(host, http)
        assert source is not None  # hosts without a credential or provider are skipped by the caller
        return await source.credential()
