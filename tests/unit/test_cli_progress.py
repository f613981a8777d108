"""Text-mode progress: live lines on stdout, the spinner on stderr, never interleaved."""

from __future__ import annotations

import io
import itertools
import re
import threading
import time

import pytest

from fluxmirror.cli import progress
from fluxmirror.cli.progress import SPINNER_FRAMES, TextProgress
from fluxmirror.sync.events import JobOutcome

ERASE = "\r\x1b[K"
FRAME = re.compile(r"\r(?P<frame>[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]) syncing\.\.\. \((?P<done>\d+)/(?P<total>\d+) done\)")
TOKEN = re.compile(rf"(?P<erase>{re.escape(ERASE)})|(?P<spinner>{FRAME.pattern})|(?P<line>[^\r\n]*\n)")


class FakeTTY(io.StringIO):
    """A terminal stand-in; one instance can play both stdout and stderr, like a real terminal."""

    def isatty(self) -> bool:
        return True


def outcome(index: int, status: str = "copied") -> JobOutcome:
    return JobOutcome("ghcr.io/a/b", f"1.{index}.0", status, f"localhost:5050/b:1.{index}.0")


def wait_for_first_frame(stream: io.StringIO) -> None:
    """Poll instead of sleeping a fixed time, so a slow machine cannot reorder the test's events."""
    deadline = time.monotonic() + 1
    while not stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.001)
    assert stream.getvalue(), "the spinner never drew"


def tokens(text: str) -> list[tuple[str, str]]:
    """Split terminal output into erase / spinner / line tokens; fails if anything is mangled."""
    found: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = TOKEN.match(text, position)
        assert match is not None, f"unexpected output at {position}: {text[position : position + 40]!r}"
        kind = match.lastgroup
        assert kind is not None
        found.append((kind, match.group()))
        position = match.end()
    return found


def test_no_spinner_when_stdout_is_not_a_terminal() -> None:
    out, err = io.StringIO(), io.StringIO()
    progress_ = TextProgress(out, err, spinner=True)
    progress_.start(2)
    progress_.job_finished(outcome(1))
    time.sleep(0.15)
    progress_.plan_failed("ghcr.io/a/c", "NAME_UNKNOWN")
    progress_.entry_finished()
    progress_.entry_finished()
    progress_.stop()
    assert err.getvalue() == ""
    assert out.getvalue() == (
        "✓ ghcr.io/a/b:1.1.0 (copied)\n→ localhost:5050/b:1.1.0\n✗ ghcr.io/a/c — plan failed: NAME_UNKNOWN\n"
    )


def test_no_spinner_with_no_progress_even_on_a_terminal() -> None:
    out, err = FakeTTY(), FakeTTY()
    progress_ = TextProgress(out, err, spinner=False)
    progress_.start(1)
    time.sleep(0.15)
    progress_.job_finished(outcome(1, "failed"))
    progress_.stop()
    assert err.getvalue() == ""
    assert out.getvalue() == "✗ ghcr.io/a/b:1.1.0 — \n→ localhost:5050/b:1.1.0\n"


def test_spinner_draws_counts_and_erases() -> None:
    out, err = FakeTTY(), FakeTTY()
    progress_ = TextProgress(out, err)
    progress_.start(2)
    time.sleep(0.25)
    progress_.entry_finished()
    time.sleep(0.15)
    progress_.stop()
    drawn = err.getvalue()
    time.sleep(0.12)

    assert out.getvalue() == ""
    assert drawn.startswith("\r⠋ syncing... (0/2 done)\r⠙ syncing... (0/2 done)")
    assert drawn.endswith(ERASE)
    assert drawn.count(ERASE) == 1
    frames = [match.groupdict() for match in FRAME.finditer(drawn)]
    assert len(frames) >= 3
    assert [frame["frame"] for frame in frames] == [SPINNER_FRAMES[i % len(SPINNER_FRAMES)] for i in range(len(frames))]
    assert {frame["total"] for frame in frames} == {"2"}
    assert frames[-1]["done"] == "1"
    assert err.getvalue() == drawn, "the spinner kept drawing after stop()"


def test_lines_erase_the_spinner_and_redraw_it() -> None:
    terminal = FakeTTY()
    progress_ = TextProgress(terminal, terminal)
    progress_.start(1)
    wait_for_first_frame(terminal)
    progress_.job_finished(outcome(1))
    progress_.stop()
    assert terminal.getvalue() == (
        "\r⠋ syncing... (0/1 done)"
        + ERASE
        + "✓ ghcr.io/a/b:1.1.0 (copied)\n→ localhost:5050/b:1.1.0\n"
        + "\r⠙ syncing... (0/1 done)"
        + ERASE
    )


def test_lines_and_frames_never_interleave(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many writer threads against a fast spinner: every line is whole and follows an erase."""
    monkeypatch.setattr(progress, "SPINNER_INTERVAL", 0.0005)
    terminal = FakeTTY()
    progress_ = TextProgress(terminal, terminal)
    progress_.start(4)

    def report(worker: int) -> None:
        for index in range(40):
            progress_.job_finished(outcome(worker * 100 + index))
            if index % 10 == 0:
                time.sleep(0.001)
        progress_.entry_finished()

    workers = [threading.Thread(target=report, args=(worker,)) for worker in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    progress_.stop()

    found = tokens(terminal.getvalue())
    lines = [text for kind, text in found if kind == "line"]
    assert len(lines) == 4 * 40 * 2
    for index in range(0, len(lines), 2):
        assert lines[index].startswith("✓ ghcr.io/a/b:")
        assert lines[index + 1] == lines[index].replace("✓ ghcr.io/a/b:", "→ localhost:5050/b:").replace(
            " (copied)", ""
        )
    assert found[-1] == ("erase", ERASE)
    for previous, current in itertools.pairwise(found):
        if current[0] == "line":
            assert previous[0] != "spinner", "a line was written over the spinner"
    assert any(kind == "spinner" for kind, _ in found)


def test_stop_without_start_writes_nothing() -> None:
    out, err = FakeTTY(), FakeTTY()
    TextProgress(out, err).stop()
    assert out.getvalue() == err.getvalue() == ""


def test_stop_is_idempotent() -> None:
    out, err = FakeTTY(), FakeTTY()
    progress_ = TextProgress(out, err)
    progress_.start(1)
    wait_for_first_frame(err)
    progress_.stop()
    progress_.stop()
    assert err.getvalue() == "\r⠋ syncing... (0/1 done)" + ERASE
