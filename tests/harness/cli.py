"""Run the real command line in a child process, as a CI script would, under the name it is given.

`program(directory, name)` writes an executable script called `name` that starts the CLI the way the
installed console scripts do (the interpreter running the tests, `fluxmirror.cli.main`), so the
child sees `argv[0]` exactly as a user's shell passes it: the name typed, or a symlink's path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Completed", "program", "run_cli"]

_SCRIPT = "#!{python}\nimport sys\nfrom fluxmirror.cli import main\nsys.exit(main())\n"
_SOURCE = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class Completed:
    code: int
    out: str
    err: str


def program(directory: Path, name: str = "flux-mirror") -> Path:
    """An executable `directory/name` running this checkout's CLI."""
    path = directory / name
    path.write_text(_SCRIPT.format(python=sys.executable), encoding="utf-8")
    path.chmod(0o755)
    return path


def run_cli(
    *args: str,
    executable: Path | str | None = None,
    env: dict[str, str] | None = None,
    stdin: str = "",
    cwd: Path | None = None,
    timeout: float = 60,
) -> Completed:
    """Run `executable args…` (default `python -m fluxmirror`) with this checkout first on the path."""
    command = [str(executable)] if executable is not None else [sys.executable, "-m", "fluxmirror"]
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [_SOURCE, environment.get("PYTHONPATH", "")]))
    completed = subprocess.run(
        [*command, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    return Completed(completed.returncode, completed.stdout, completed.stderr)
