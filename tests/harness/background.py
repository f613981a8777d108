"""Test servers on a private event loop in a daemon thread.

Synchronous tests and asyncio tests both talk to these servers; an asyncio test's own loop must
never be the one serving, or a request would wait on itself. Sockets are bound before serving,
so a server's port is known up front and cannot be taken in between.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web

__all__ = ["STOP_TIMEOUT", "BackgroundLoop", "listen"]

STOP_TIMEOUT = 5.0
_T = TypeVar("_T")


def listen(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(128)
    return sock


class BackgroundLoop:
    """One event loop thread serving any number of aiohttp applications until `close`."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()
        self._runners: list[web.AppRunner] = []

    def call(self, coroutine: Coroutine[Any, Any, _T], timeout: float = 30) -> _T:
        """Run `coroutine` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=timeout)

    def serve(self, app: web.Application, sock: socket.socket, ssl_context: ssl.SSLContext | None = None) -> None:
        self.call(self._serve(app, sock, ssl_context))

    async def _serve(self, app: web.Application, sock: socket.socket, ssl_context: ssl.SSLContext | None) -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        self._runners.append(runner)
        await web.SockSite(runner, sock, ssl_context=ssl_context).start()

    def close(self, cleanup: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """Stop serving (then run `cleanup` on the loop) and end the thread; safe to call twice."""
        if self.loop.is_closed():
            return
        try:
            for runner in self._runners:
                self.call(runner.cleanup())
            if cleanup is not None:
                self.call(cleanup())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=STOP_TIMEOUT)
            self.loop.close()
