"""Flag values shared by commands: global options, durations and config-source resolution."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from fluxmirror.api.duration import Duration
from fluxmirror.errors import UsageError

__all__ = [
    "CONFIG_ENV",
    "ConfigOption",
    "GlobalOptions",
    "HostsOption",
    "NoEnvsubstOption",
    "ResolutionTimeoutOption",
    "hosts_config_source",
    "parse_duration_flag",
    "sync_config_source",
]

CONFIG_ENV = "FLUX_MIRROR_CONFIG"

ConfigOption = Annotated[
    str | None,
    typer.Option("--config", "-f", help="Config path, or '-' for stdin.", show_default="$FLUX_MIRROR_CONFIG"),
]
HostsOption = Annotated[
    list[str] | None, typer.Option("--host", help="Host from the config (repeatable); default all.")
]
ResolutionTimeoutOption = Annotated[
    str | None, typer.Option("--timeout", help="Bound on credential resolution.", show_default="1m")
]
NoEnvsubstOption = Annotated[bool, typer.Option("--no-envsubst", help="Do not substitute ${VAR} in the config.")]


@dataclass(slots=True)
class GlobalOptions:
    """Options that Cobra's persistent flags let users place before the command name."""

    timeout: str | None = None
    no_envsubst: bool = False

    @classmethod
    def of(cls, ctx: typer.Context) -> GlobalOptions:
        found = ctx.find_object(GlobalOptions)
        return found if found is not None else cls()

    def resolve_timeout(self, command_value: str | None, default: str) -> Duration:
        # A flag given empty (`--timeout ""`) is parsed, and refused, as Go's pflag does; only an
        # absent one falls back.
        text = next((value for value in (command_value, self.timeout) if value is not None), default)
        timeout = parse_duration_flag("--timeout", text)
        if timeout.nanoseconds <= 0:
            raise UsageError("--timeout must be greater than 0")
        return timeout

    def envsubst(self, command_value: bool) -> bool:
        return not (command_value or self.no_envsubst)


def parse_duration_flag(flag: str, text: str) -> Duration:
    try:
        return Duration.parse(text)
    except ValueError as exc:
        raise UsageError(f'invalid argument "{text}" for "{flag}" flag: {exc}') from None


def sync_config_source(argument: str | None, env: Mapping[str, str] = os.environ) -> str:
    """`sync`: the positional argument, else $FLUX_MIRROR_CONFIG; there is no default path."""
    source = argument or env.get(CONFIG_ENV, "")
    if not source:
        raise UsageError(
            "config required: pass the config path as the first argument, pass '-' for stdin, or set FLUX_MIRROR_CONFIG"
        )
    return source


def _executable() -> Path:
    invoked = sys.argv[0]
    found = invoked if os.sep in invoked else shutil.which(invoked)
    return Path(os.path.abspath(found or invoked))


def hosts_config_source(flag: str | None, env: Mapping[str, str] = os.environ) -> str:
    """`login`/`secret`: -f, else $FLUX_MIRROR_CONFIG, else `<executable>.config`."""
    return flag or env.get(CONFIG_ENV, "") or f"{_executable()}.config"
