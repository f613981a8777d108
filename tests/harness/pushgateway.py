"""A Prometheus Pushgateway stand-in on loopback, for the `--pushgateway` tests.

No Pushgateway binary is installed, so this server does the one part of its job a push depends on:
it accepts `PUT`, `POST` and `DELETE` under `/metrics/job/<job>[/<label>/<value>…]`, checks that a
body parses as the Prometheus text exposition format (with prometheus-client's own parser, a
stricter reader than the Pushgateway's), answers 400 with the parser's complaint when it does not,
as the Pushgateway does, and keeps every push it accepted. Anything else is a 404.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from aiohttp import web
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from harness.closing import Closing
from harness.scripted import ScriptedServer

__all__ = ["Push", "PushgatewayStandIn"]


@dataclass(frozen=True)
class Push:
    """One accepted push: the grouping path after `/metrics/`, the method and the parsed families."""

    method: str
    grouping: str  # "job/fluxmirror/command/sync", exactly as sent (values still encoded)
    authorization: str | None
    content_type: str
    families: dict[str, Metric]


class PushgatewayStandIn(Closing):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pushes: list[Push] = []
        self._server = ScriptedServer(self._handle)
        self.url = self._server.url

    @property
    def pushes(self) -> list[Push]:
        with self._lock:
            return list(self._pushes)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        prefix = "/metrics/job/"
        if request.method not in ("PUT", "POST", "DELETE") or not request.raw_path.startswith(prefix):
            return web.Response(status=404, text="404 page not found\n")
        body = await request.text()
        try:
            families = {family.name: family for family in text_string_to_metric_families(body)}
        except ValueError as exc:
            return web.Response(status=400, text=f"text format parsing error: {exc}\n")
        push = Push(
            method=request.method,
            grouping=request.raw_path.removeprefix("/metrics/"),
            authorization=request.headers.get("Authorization"),
            content_type=request.headers.get("Content-Type", ""),
            families=families,
        )
        with self._lock:
            self._pushes.append(push)
        return web.Response(status=200)

    def close(self) -> None:
        self._server.close()
