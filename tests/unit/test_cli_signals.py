"""The CLI's signal handling around a sync run (docs/sync.md#signals); real signals mid-run are in
tests/integration/test_sync_signals.py."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from fluxmirror.cli import main
from fluxmirror.cli.sync_output import CANCEL_SIGNALS, _SignalHandler
from fluxmirror.sync.engine import Cancellation
from fluxmirror.sync.events import SilentProgress

UNREACHABLE = (
    "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\n"
    "artifacts:\n  - source: 127.0.0.1:1/aa/bb\n    destination: 127.0.0.1:1/bb\n"
)


class Exited(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> None:
    """`os._exit` raises instead of ending the test process."""

    def fake_exit(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(os, "_exit", fake_exit)


@pytest.mark.usefixtures("exits")
def test_the_first_signal_cancels_and_the_second_exits_at_once_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cancellation = Cancellation()
    handler = _SignalHandler(cancellation, SilentProgress())
    handler(signal.SIGTERM)
    assert cancellation.requested
    assert capsys.readouterr() == ("", "")
    with pytest.raises(Exited) as exited:
        handler(signal.SIGINT)
    assert exited.value.code == 1
    assert capsys.readouterr() == ("", "✗ interrupted again (SIGINT): exiting without a report\n")


@pytest.mark.usefixtures("exits")
def test_once_the_outcome_is_printed_a_signal_exits_with_the_runs_code(capsys: pytest.CaptureFixture[str]) -> None:
    cancellation = Cancellation()
    handler = _SignalHandler(cancellation, SilentProgress())
    handler.printed(2)
    with pytest.raises(Exited) as exited:
        handler(signal.SIGTERM)
    assert (exited.value.code, cancellation.requested) == (2, False)
    assert capsys.readouterr() == ("", "")


def test_a_run_puts_the_signal_dispositions_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """uvloop leaves its handlers installed on a closed loop, which would swallow every later signal."""
    config = tmp_path / "mirror.yaml"
    config.write_text(UNREACHABLE, encoding="utf-8")
    before = {signum: signal.getsignal(signum) for signum in CANCEL_SIGNALS}
    assert main(["sync", str(config), "-o", "json"]) == 1
    assert '"error": "list tags 127.0.0.1:1/aa/bb: ' in capsys.readouterr().out
    assert {signum: signal.getsignal(signum) for signum in CANCEL_SIGNALS} == before
