"""Text-mode progress: live job lines on stdout and a spinner on stderr, as docs/sync.md#live-lines and
docs/sync.md#spinner describe them.

The engine reports from the asyncio loop, so nothing here may block it: the spinner animates on a
daemon thread, and a lock shared with line printing guarantees a job line never lands in the
middle of a frame (the spinner is erased first and redrawn after the line).
"""

from __future__ import annotations

import threading
from typing import Final, TextIO

from fluxmirror.cli.terminal import terminal_safe
from fluxmirror.sync.events import JobOutcome
from fluxmirror.sync.output import live_lines, plan_failed_line

__all__ = ["SPINNER_FRAMES", "SPINNER_INTERVAL", "TextProgress"]

SPINNER_FRAMES: Final = ("⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏")
SPINNER_INTERVAL: Final = 0.1
"""Seconds between frames."""

_ERASE: Final = "\r\x1b[K"


class TextProgress:
    """`Progress` for `-o text` without `--verbose`.

    The spinner runs only when `spinner` is true (no `--no-progress`) and `out` is a terminal: the
    reference checks stdout, so piping stdout into a file also keeps stderr free of escape codes.
    """

    def __init__(self, out: TextIO, err: TextIO, *, spinner: bool = True) -> None:
        self._out = out
        self._err = err
        self._animate = spinner and out.isatty()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._total = 0
        self._done = 0
        self._frame = 0
        self._drawn = False

    def start(self, entries: int) -> None:
        with self._lock:
            self._total = entries
        if self._animate and self._thread is None:
            self._thread = threading.Thread(target=self._spin, name="fluxmirror-spinner", daemon=True)
            self._thread.start()

    def job_finished(self, outcome: JobOutcome) -> None:
        self._print(live_lines(outcome))

    def plan_failed(self, entry: str, error: str) -> None:
        self._print(plan_failed_line(entry, error))

    def entry_finished(self) -> None:
        """Advance the `(<d>/<t> done)` counter; the next frame shows it."""
        with self._lock:
            self._done += 1

    def stop(self) -> None:
        """Stop animating and erase the spinner, so the summary line starts on a clean line."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._erase_locked()

    def _print(self, text: str) -> None:
        with self._lock:
            was_drawn = self._drawn
            self._erase_locked()
            _write(self._out, terminal_safe(text))
            if was_drawn and not self._stopped.is_set():
                self._draw_locked()

    def _spin(self) -> None:
        while True:
            with self._lock:
                if self._stopped.is_set():
                    return
                self._draw_locked()
                self._frame = (self._frame + 1) % len(SPINNER_FRAMES)
            if self._stopped.wait(SPINNER_INTERVAL):
                return

    def _draw_locked(self) -> None:
        _write(self._err, f"\r{SPINNER_FRAMES[self._frame]} syncing... ({self._done}/{self._total} done)")
        self._drawn = True

    def _erase_locked(self) -> None:
        if self._drawn:
            _write(self._err, _ERASE)
            self._drawn = False


def _write(stream: TextIO, text: str) -> None:
    """Write and flush at once so the terminal shows it; a closed or broken stream is ignored.

    Progress output is a courtesy: like the reference, a failing terminal must not abort the sync.
    """
    try:
        stream.write(text)
        stream.flush()
    except OSError:
        pass
