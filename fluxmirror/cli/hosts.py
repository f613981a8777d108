"""What `login` and `secret` share: choosing hosts and minting their credentials within `--timeout`."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from fluxmirror.api.config import Host
from fluxmirror.api.duration import Duration
from fluxmirror.auth.credentials import Credential
from fluxmirror.auth.hosts import HostCredentialError, TokenMinter
from fluxmirror.cli.options import hosts_config_source, resolve_timeout
from fluxmirror.config import load_config
from fluxmirror.config.support import check_supported
from fluxmirror.errors import ConfigError

__all__ = ["CredentialResolver", "hosts_to_store", "select_hosts", "skipped_line"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


def hosts_to_store(
    config: str | None, wanted: Sequence[str], timeout: str | None, no_envsubst: bool
) -> tuple[list[Host], Duration]:
    """The shared start of `login` and `secret`: a hosts-only-friendly config, refused if it needs what
    is not built yet, the hosts to store, and the `--timeout` budget for minting their credentials."""
    budget = resolve_timeout(timeout, "1m")
    loaded = load_config(hosts_config_source(config), require_entries=False, envsubst=not no_envsubst)
    check_supported(loaded.config, syncing=False)
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


def skipped_line(name: str) -> str:
    """What is printed for a host with nothing to store (`provider` hosts are refused earlier)."""
    return f"• skipping {name}: no credential configured (TLS-only host)"


class CredentialResolver:
    """Mints host credentials one by one, all within one `--timeout` budget from its creation."""

    def __init__(self, budget: Duration) -> None:
        self._budget = budget
        self._deadline = time.monotonic() + budget.total_seconds()

    def resolve(self, host: Host) -> Credential:
        """Mint the host's credential once, within what is left of the budget."""
        name = host.host
        remaining = max(self._deadline - time.monotonic(), 0.0)
        with asyncio.Runner() as runner:
            runner.get_loop().set_default_executor(_DaemonThreadExecutor())
            try:
                return runner.run(asyncio.wait_for(TokenMinter(host).credential(host.username), remaining))
            except TimeoutError:
                raise HostCredentialError(f'host "{name}": timed out after {self._budget}') from None


class _DaemonThreadExecutor(ThreadPoolExecutor):
    """Runs each blocking call (a token-file read) in its own daemon thread instead of the pool.

    The pool's threads are joined when the loop closes and again at interpreter exit, so a read
    stuck on a FIFO or a hung network mount would hold the command open forever past `--timeout`. A
    daemon thread is simply abandoned once the timeout has been reported. (asyncio only accepts a
    ThreadPoolExecutor as the default executor, hence the subclass whose pool stays empty.)
    """

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        future: Future[_T] = Future()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the awaiting coroutine, as the default pool does
                future.set_exception(exc)

        threading.Thread(target=work, name="credential-resolve", daemon=True).start()
        return future
