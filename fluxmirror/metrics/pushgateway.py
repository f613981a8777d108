"""`--pushgateway URL`: the run's metrics pushed to a Prometheus Pushgateway (docs/metrics.md#pushgateway).

prometheus-client's `push_to_gateway` builds the request: the URL of the group
(`<URL>/metrics/job/fluxmirror/command/<command>[/shard/<index>][/<label>/<value>…]`, values
encoded as the Pushgateway wants them) and the body in the text format. It is a `PUT`: the group is replaced
whole, so it always holds exactly the last run's metrics, as the textfile does. The request itself
goes through the run's one HTTP client (`fluxmirror.http`), so the Pushgateway is reached through
the same proxies, with the same TLS trust and the same error wording as every registry: the
library's request handler is a thin bridge from its worker thread to the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import CollectorRegistry, push_to_gateway
from yarl import URL

from fluxmirror.errors import MetricsError, UsageError
from fluxmirror.http.body import read_prefix
from fluxmirror.http.errors import NetworkError, StatusError
from fluxmirror.http.session import HttpSession
from fluxmirror.http.urls import Origin, redact_url
from fluxmirror.scrub import remember, scrub

__all__ = ["JOB", "PUSH_TIMEOUT", "Pushgateway", "push", "run_grouping"]

JOB: Final = "fluxmirror"
PUSH_TIMEOUT: Final = 10.0
"""Seconds the push may take in all: a Pushgateway that does not answer must not hold a CronJob."""
_FLAG: Final = "--pushgateway"
_LABEL_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_RESERVED: Final = frozenset({"job", "command", "shard"})  # the job's and those `run_grouping` sets
_ERROR_BODY: Final = 512


@dataclass(frozen=True, slots=True)
class Pushgateway:
    """Where to push: the gateway's base URL (a path prefix allowed, no user info, no query), the
    Basic credential from the URL's user info, and the grouping labels its query names."""

    base: str
    labels: Mapping[str, str] = field(default_factory=dict)
    authorization: str | None = None

    @classmethod
    def parse(cls, value: str) -> Pushgateway:
        """`value` as `--pushgateway` takes it: `[http[s]://][user:password@]host[:port][/prefix][?label=value&…]`;
        without a scheme, `http://` (as prometheus-client assumes)."""
        try:
            url = URL(value if "://" in value else f"http://{value}")
        except ValueError as exc:
            raise _invalid(value, f"not a URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise _invalid(value, "an http:// or https:// URL with a host is needed")
        if url.fragment:
            raise _invalid(value, "a URL fragment means nothing to a Pushgateway")
        labels: dict[str, str] = {}
        for name, label in url.query.items():
            if not _LABEL_NAME.fullmatch(name) or name.startswith("__") or name in _RESERVED or name in labels:
                raise _invalid(value, f"{name!r} cannot be a grouping label (reserved: {', '.join(sorted(_RESERVED))})")
            if not label:
                raise _invalid(value, f"the grouping label {name!r} has no value")
            labels[name] = label
        authorization = None
        if url.user is not None:
            credential = f"{url.user}:{url.password or ''}"
            authorization = f"Basic {base64.b64encode(credential.encode()).decode('ascii')}"
            remember(url.password or "", authorization)
        base = str(url.with_user(None).with_query(None)).rstrip("/")
        return cls(base=base, labels=labels, authorization=authorization)


def _invalid(value: str, reason: str) -> UsageError:
    """A bad --pushgateway value, named without its user info (as a URL, so that it is recognised)."""
    shown = redact_url(value if "://" in value else f"http://{value}")
    return UsageError(f'invalid argument "{shown}" for "{_FLAG}" flag: {reason}')


def run_grouping(command: str, shard_index: int | None) -> dict[str, str]:
    """The labels that keep runs apart in the Pushgateway: the command, and the shard of a sharded
    run (each pod of an Indexed Job then has its group, instead of replacing its siblings')."""
    grouping = {"command": command}
    if shard_index is not None:
        grouping["shard"] = str(shard_index)
    return grouping


async def push(
    registry: CollectorRegistry, gateway: Pushgateway, grouping: Mapping[str, str], *, user_agent: str
) -> None:
    """Replace the group `job="fluxmirror"` with `grouping` (from `run_grouping`) and the URL's labels
    by the registry's metrics; any failure is a `MetricsError`."""
    loop = asyncio.get_running_loop()
    async with HttpSession(user_agent=user_agent) as http:

        def handler(
            url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes
        ) -> Callable[[], None]:
            def send() -> None:
                request = _send(http, gateway, url, method, timeout, dict(headers), data)
                asyncio.run_coroutine_threadsafe(request, loop).result()

            return send

        try:
            await asyncio.to_thread(
                push_to_gateway,
                gateway.base,
                job=JOB,
                registry=registry,
                grouping_key={**grouping, **gateway.labels},
                timeout=PUSH_TIMEOUT,
                handler=handler,
            )
        except NetworkError as exc:
            raise MetricsError(f"metrics not pushed: {exc}") from exc


async def _send(
    http: HttpSession,
    gateway: Pushgateway,
    url: str,
    method: str,
    time_limit: float | None,
    headers: dict[str, str],
    data: bytes,
) -> None:
    """One request as prometheus-client asks for it; the credential goes to the gateway's own origin only."""
    home = Origin.of(gateway.base)

    async def authorize(hop: URL) -> str | None:
        return gateway.authorization if Origin.of(hop) == home else None

    async with http.request(
        method, url, headers=headers, data=data, authorize=authorize, time_limit=time_limit
    ) as response:
        if response.status // 100 == 2:
            return
        body = (await read_prefix(response, _ERROR_BODY)).decode("utf-8", "replace")
        reason = f"{response.status} {response.reason or ''}".rstrip()
        detail = scrub(" ".join(body.split()))
        raise StatusError(
            f"{method} {redact_url(url)}: {reason}" + (f": {detail}" if detail else ""),
            method=method,
            url=url,
            status=response.status,
        )
