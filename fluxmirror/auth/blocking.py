"""Blocking calls (cloud SDKs, token files) run off the event loop, in threads that cannot hold the
process open.

boto3, google-auth, azure-identity and py-spiffe are synchronous; a call can hang on an
unreachable metadata endpoint or a stuck network mount far past `--timeout`. `asyncio.to_thread`
would run it in the default pool, whose threads are joined when the loop closes and again at
interpreter exit, so one stuck call would keep the command from ending after the timeout was
reported. Here each call gets its own daemon thread, simply abandoned once its caller stopped
waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["run_blocking"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


async def run_blocking(fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """`fn(*args, **kwargs)` in a daemon thread; its result or exception, once it ends."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def work() -> None:
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the awaiting coroutine
            error = exc
            _call_soon(loop, lambda: settle(lambda: future.set_exception(error)))
        else:
            _call_soon(loop, lambda: settle(lambda: future.set_result(result)))

    threading.Thread(target=work, name=getattr(fn, "__name__", "blocking"), daemon=True).start()
    return await future


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """Hand `callback` to the loop; a loop already closed (its caller gave up and exited) is fine."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback)
