"""Run the real `fluxmirror sync` CLI as a subprocess and read its report.

Every run is reaped with ``os.wait4``, so a test also learns how long the child took and its own
peak resident memory (not the largest of all the session's children, which is what
``RUSAGE_CHILDREN`` would give); a run still going at its ``timeout`` is killed and reported as
``SyncTimeout`` (a ``subprocess.TimeoutExpired``) with whatever it printed so far and its peak memory.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import jsonschema
import yaml

from harness.registry import Registry

FLUXMIRROR = Path(sys.executable).parent / "fluxmirror"
REPORT_SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "report-v1beta1.json").read_text())
_CONFIGS = itertools.count()
_POLL = 0.02


class SyncTimeout(subprocess.TimeoutExpired):
    """The run was still going at its timeout and was killed; ``max_rss`` is its peak until then."""

    def __init__(self, command: list[str], timeout: float, stdout: str, stderr: str, max_rss: int) -> None:
        super().__init__(command, timeout, output=stdout, stderr=stderr)
        self.max_rss = max_rss
        self.stderr_text = stderr

    def __str__(self) -> str:
        return (
            f"fluxmirror sync still running after {self.timeout:g}s, killed (peak RSS {self.max_rss >> 20} MiB); "
            f"stderr tail:\n{self.stderr_text[-1500:]}"
        )


class Run:
    """A finished `fluxmirror sync`: exit code, streams, wall time, peak RSS and the parsed JSON report.

    Streams are decoded as UTF-8 with undecodable bytes shown as ``\\x..`` escapes, so a test can
    still read (and assert on) the rest of a broken output.
    """

    def __init__(self, code: int, stdout: str, stderr: str, *, elapsed: float = 0.0, max_rss: int = 0) -> None:
        self.code = code
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed  # seconds, from start to exit
        self.max_rss = max_rss  # bytes: the child's own peak resident set size

    @property
    def report(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.stdout)
        return document

    @property
    def summary(self) -> dict[str, int]:
        return dict(self.report["report"]["summary"])

    def rows(self, entry: int = 0) -> list[dict[str, Any]]:
        return list(self.report["report"]["results"][entry]["tags"])


def write_config(
    tmp_path: Path,
    artifacts: list[dict[str, Any]],
    *,
    charts: list[dict[str, Any]] | None = None,
    hosts: list[dict[str, Any]] | None = None,
) -> Path:
    """A fresh config file under ``tmp_path`` with these entries."""
    config: dict[str, Any] = {"apiVersion": "mirror.plugin.fluxcd.io/v1beta1", "kind": "Config"}
    if artifacts:
        config["artifacts"] = artifacts
    if charts:
        config["charts"] = charts
    if hosts:
        config["hosts"] = hosts
    path = tmp_path / f"mirror-{next(_CONFIGS)}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def sync_command(config: Path, *flags: str, output: str = "json") -> list[str]:
    return [str(FLUXMIRROR), "sync", str(config), "-o", output, "--no-progress", *flags]


def start(
    tmp_path: Path,
    artifacts: list[dict[str, Any]],
    *flags: str,
    charts: list[dict[str, Any]] | None = None,
    hosts: list[dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
    output: str = "json",
    capture: bool = False,
) -> subprocess.Popen[bytes]:
    """Start `fluxmirror sync` and return at once, for tests that interrupt a run; its output is
    discarded, or kept for `finish` with ``capture``."""
    path = write_config(tmp_path, artifacts, charts=charts, hosts=hosts)
    kept = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        sync_command(path, *flags, output=output),
        stdin=subprocess.DEVNULL,
        stdout=kept,
        stderr=kept,
        env={**os.environ, **(env or {})},
    )


def finish(process: subprocess.Popen[bytes], *, output: str = "json", timeout: float = 60) -> Run:
    """Wait for a run started with ``start(..., capture=True)`` and read it as `sync` would; its
    ``elapsed`` counts from this call (say, from a signal sent just before). A run still going after
    ``timeout`` is killed (``subprocess.TimeoutExpired``)."""
    started = time.monotonic()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    decode = functools.partial(bytes.decode, encoding="utf-8", errors="backslashreplace")
    run = Run(process.returncode, decode(stdout), decode(stderr), elapsed=time.monotonic() - started)
    if output == "json" and run.stdout:
        jsonschema.validate(run.report, REPORT_SCHEMA)
    return run


def sync(
    tmp_path: Path,
    artifacts: list[dict[str, Any]],
    *flags: str,
    charts: list[dict[str, Any]] | None = None,
    hosts: list[dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
    output: str = "json",
    timeout: float = 120,
) -> Run:
    """Write a config, run `fluxmirror sync` on it, and validate a JSON report against the schema."""
    path = write_config(tmp_path, artifacts, charts=charts, hosts=hosts)
    command = sync_command(path, *flags, output=output)
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.monotonic()
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env={**os.environ, **(env or {})}
        )
        status, usage = _reap(process, started + timeout)
        elapsed, max_rss = time.monotonic() - started, usage.ru_maxrss * 1024  # kilobytes on Linux
        if status is None:
            raise SyncTimeout(command, timeout, _text(stdout), _text(stderr), max_rss)
        run = Run(os.waitstatus_to_exitcode(status), _text(stdout), _text(stderr), elapsed=elapsed, max_rss=max_rss)
    if output == "json" and run.stdout:
        jsonschema.validate(run.report, REPORT_SCHEMA)
    return run


def _reap(process: subprocess.Popen[bytes], deadline: float) -> tuple[int | None, Any]:
    """Wait for the child with ``wait4`` (its own rusage); past ``deadline`` kill it and return None."""
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait
            return status, usage
        if time.monotonic() > deadline:
            process.kill()
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            return None, usage
        time.sleep(_POLL)


def _text(stream: IO[bytes]) -> str:
    stream.seek(0)
    return stream.read().decode("utf-8", "backslashreplace")


def entry(
    source: Registry, destination: Registry, repo: str, dst_repo: str | None = None, **extra: Any
) -> dict[str, Any]:
    """An `artifacts[]` entry from `source/repo` to `destination/dst_repo` (same path by default)."""
    return {"source": f"{source.host}/{repo}", "destination": f"{destination.host}/{dst_repo or repo}", **extra}
