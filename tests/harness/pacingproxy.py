"""A reverse proxy that delivers every response body in small, slightly delayed pieces.

On loopback a registry's answer usually lands in one socket read, so a client that takes a
single ``read(n)`` for "the body" looks correct in every test and cuts manifests, token
responses and chart indexes short on a real network. This proxy puts the real network back:
it is a ``FaultProxy`` (same forwarding, same request log) with one permanent ``Pace`` rule, in
front of a real registry, a chart repository or any other plain-HTTP origin (the token server).
Nothing else about the answers changes, so whatever a client gets wrong through it, it gets
wrong because of the pieces.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from harness.chartrepo import ChartRepository
from harness.faultproxy import FaultProxy, Pace, Rule
from harness.registry import Registry

__all__ = ["PacingProxy", "origin"]


def origin(url: str) -> Registry:
    """A plain-HTTP origin (a chart repository, the token server) described the way FaultProxy
    describes its upstream; only ``host`` and ``url`` are ever read from it."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"only plain-HTTP origins can be proxied by URL, not {url}")
    return Registry(
        host=parts.netloc, url=f"http://{parts.netloc}", root_dir=Path(os.devnull), log_path=Path(os.devnull)
    )


class PacingProxy(FaultProxy):
    """Forwards to ``upstream`` on ``127.0.0.1:<free port>``, pacing every response body.

    ``piece`` is the range of piece sizes in bytes and ``delay`` the range of pauses in seconds
    after each piece. A test's own rules still apply and win; only what they leave alone is paced.
    """

    def __init__(
        self,
        upstream: Registry | ChartRepository | str,
        *,
        piece: tuple[int, int] = (100, 500),
        delay: tuple[float, float] = (0.001, 0.005),
    ) -> None:
        if isinstance(upstream, ChartRepository):
            self._chart_repository: ChartRepository | None = upstream
            described = origin(upstream.origin)
        else:
            self._chart_repository = None
            described = upstream if isinstance(upstream, Registry) else origin(upstream)
        self.pace = Pace(piece=piece, delay=delay)  # set first: the proxy serves once constructed
        super().__init__(described, blob_host=False)

    def _take(self, request: web.Request) -> Rule | None:
        """Rules added by a test first; whatever they leave alone is paced."""
        rule = super()._take(request)
        return rule if rule is not None else self.pace

    def chart_url(self) -> str:
        """The proxied chart repository's URL (base path and required query kept), to use as ``source``."""
        if self._chart_repository is None:
            raise ValueError("chart_url needs a PacingProxy in front of a ChartRepository")
        repository = self._chart_repository
        return self.url + repository.base_path.rstrip("/") + (f"?{repository.query}" if repository.query else "")
