"""Run the real `fluxmirror sync` CLI as a subprocess and read its report."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from harness.registry import Registry

FLUXMIRROR = Path(sys.executable).parent / "fluxmirror"
REPORT_SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "report-v1beta1.json").read_text())
_CONFIGS = itertools.count()


class Run:
    """A finished `fluxmirror sync`: exit code, streams, and the parsed JSON report."""

    def __init__(self, completed: subprocess.CompletedProcess[str]) -> None:
        self.code = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr

    @property
    def report(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.stdout)
        return document

    @property
    def summary(self) -> dict[str, int]:
        return dict(self.report["report"]["summary"])

    def rows(self, entry: int = 0) -> list[dict[str, Any]]:
        return list(self.report["report"]["results"][entry]["tags"])


def sync(
    tmp_path: Path,
    artifacts: list[dict[str, Any]],
    *flags: str,
    charts: list[dict[str, Any]] | None = None,
    hosts: list[dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
    output: str = "json",
) -> Run:
    """Write a config, run `fluxmirror sync` on it, and validate a JSON report against the schema."""
    config: dict[str, Any] = {"apiVersion": "mirror.plugin.fluxcd.io/v1beta1", "kind": "Config"}
    if artifacts:
        config["artifacts"] = artifacts
    if charts:
        config["charts"] = charts
    if hosts:
        config["hosts"] = hosts
    path = tmp_path / f"mirror-{next(_CONFIGS)}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    command = [str(FLUXMIRROR), "sync", str(path), "-o", output, "--no-progress", *flags]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}, check=False
    )
    run = Run(completed)
    if output == "json" and run.stdout:
        jsonschema.validate(run.report, REPORT_SCHEMA)
    return run


def entry(
    source: Registry, destination: Registry, repo: str, dst_repo: str | None = None, **extra: Any
) -> dict[str, Any]:
    """An `artifacts[]` entry from `source/repo` to `destination/dst_repo` (same path by default)."""
    return {"source": f"{source.host}/{repo}", "destination": f"{destination.host}/{dst_repo or repo}", **extra}
