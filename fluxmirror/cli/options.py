"""Flag values shared by commands: global options, durations, rates and config-source resolution."""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from fluxmirror.api.duration import Duration
from fluxmirror.cli.pflag import DURATION_METAVAR
from fluxmirror.errors import UsageError
from fluxmirror.gocompat.strconv import go_quote
from fluxmirror.sync.shard import Shard

__all__ = [
    "CONFIG_ENV",
    "GLOBAL_FLAGS",
    "JOB_COUNT_ENV",
    "JOB_INDEX_ENV",
    "ConfigOption",
    "GlobalTimeoutOption",
    "HostsOption",
    "NoEnvsubstOption",
    "ResolutionTimeoutOption",
    "executable_path",
    "hosts_config_source",
    "parse_duration_flag",
    "parse_rate",
    "parse_shard_flag",
    "program_name",
    "resolve_timeout",
    "sync_config_source",
]

CONFIG_ENV = "FLUX_MIRROR_CONFIG"
GLOBAL_FLAGS = "Global Flags"
"""The help panel of cobra's persistent flags, which every command accepts."""

ConfigOption = Annotated[
    str | None,
    typer.Option("--config", "-f", help="Config path, or '-' for stdin.", show_default="$FLUX_MIRROR_CONFIG"),
]
HostsOption = Annotated[
    list[str] | None, typer.Option("--host", help="Host from the config (repeatable); default all.")
]
ResolutionTimeoutOption = Annotated[
    str | None,
    typer.Option(
        "--timeout",
        metavar=DURATION_METAVAR,
        help="Bound on credential resolution.",
        show_default="1m",
        rich_help_panel=GLOBAL_FLAGS,
    ),
]
GlobalTimeoutOption = Annotated[
    str | None,
    typer.Option(
        "--timeout",
        metavar=DURATION_METAVAR,
        help="Default operation timeout (5m for sync, 1m for login and secret).",
        rich_help_panel=GLOBAL_FLAGS,
    ),
]
NoEnvsubstOption = Annotated[
    bool,
    typer.Option("--no-envsubst", help="Do not substitute ${VAR} in the config.", rich_help_panel=GLOBAL_FLAGS),
]


def resolve_timeout(value: str | None, default: str) -> Duration:
    """`--timeout`, wherever it was given (the last one wins, before or after the command name), else
    the command's default. A flag given empty (`--timeout ""`) is parsed, and refused, as Go's pflag
    does; only an absent one falls back."""
    timeout = parse_duration_flag("--timeout", default if value is None else value)
    if timeout.nanoseconds <= 0:
        raise UsageError("--timeout must be greater than 0")
    return timeout


def parse_duration_flag(flag: str, text: str) -> Duration:
    try:
        return Duration.parse(text)
    except ValueError as exc:
        raise UsageError(f'invalid argument "{text}" for "{flag}" flag: {exc}') from None


_SHARD_NUMBER = re.compile(r"[0-9]{1,9}")
JOB_INDEX_ENV = "JOB_COMPLETION_INDEX"
JOB_COUNT_ENV = "JOB_COMPLETIONS"


def parse_shard_flag(text: str, env: Mapping[str, str] = os.environ) -> Shard:
    """`--shard i/n` (0-based, 0 <= i < n), or `--shard auto`: the index Kubernetes gives each pod of
    an Indexed Job (`$JOB_COMPLETION_INDEX`) and the Job's completions, which the manifest has to
    pass as `$JOB_COMPLETIONS`, since Kubernetes exposes no such variable (docs/kubernetes.md)."""
    if text == "auto":
        return _job_shard(env)
    index, slash, count = text.partition("/")
    if not (slash and _SHARD_NUMBER.fullmatch(index) and _SHARD_NUMBER.fullmatch(count)):
        raise UsageError(f'invalid argument "{text}" for "--shard" flag: want i/n (0 <= i < n) or auto')
    if int(count) < 1:
        raise UsageError(f'invalid argument "{text}" for "--shard" flag: the shard count must be at least 1')
    if int(index) >= int(count):
        raise UsageError(
            f'invalid argument "{text}" for "--shard" flag: the index is 0-based and must be below {int(count)}'
        )
    return Shard(int(index), int(count))


def _job_shard(env: Mapping[str, str]) -> Shard:
    index, count = env.get(JOB_INDEX_ENV, ""), env.get(JOB_COUNT_ENV, "")
    if not index:
        raise UsageError(f"--shard auto: {JOB_INDEX_ENV} is not set (Kubernetes sets it in an Indexed Job's pods)")
    if not count:
        raise UsageError(f"--shard auto: {JOB_COUNT_ENV} is not set (set it to the Job's spec.completions)")
    if not _SHARD_NUMBER.fullmatch(index):
        raise UsageError(f"--shard auto: {JOB_INDEX_ENV}={go_quote(index)} is not a 0-based index")
    if not _SHARD_NUMBER.fullmatch(count) or int(count) < 1:
        raise UsageError(f"--shard auto: {JOB_COUNT_ENV}={go_quote(count)} is not a count of at least 1")
    if int(index) >= int(count):
        raise UsageError(f"--shard auto: {JOB_INDEX_ENV}={index} is not below {JOB_COUNT_ENV}={count}")
    return Shard(int(index), int(count))


_PREFIXES = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "ki": 2**10, "mi": 2**20, "gi": 2**30}
_RATE = re.compile(
    r"(?P<number>[-+]?\d+(?:\.\d*)?|[-+]?\.\d+)\s*"
    r"(?:(?:(?P<bytes>[kKmMgG]i?)?B|(?P<bits>[kKmMgG]?)bit)(?:/s)?)?"
)
_RATE_FORMS = "a rate such as 20MiB/s, 500KB/s or 100Mbit"


def parse_rate(text: str, flag: str) -> float:
    """A rate in bytes per second (docs/cli.md#rates): a number with an optional unit, bytes (`B`,
    decimal `KB` `MB` `GB`, binary `KiB` `MiB` `GiB`) or bits (`bit`, `Kbit`, `Mbit`, `Gbit`),
    each with or without `/s`; a bare number is bytes. The prefix letter may be either case (tc
    writes `mbit`), but `B` and `bit` are spelled out: `Mb` and `Mbps` mean bits to some tools and
    bytes to others, so they are refused rather than guessed."""
    match = _RATE.fullmatch(text.strip())
    if match is None:
        raise UsageError(f'invalid argument "{text}" for "{flag}" flag: {_RATE_FORMS}')
    prefix = match["bits"] if match["bits"] is not None else match["bytes"] or ""
    exact = Decimal(match["number"]) * _PREFIXES[prefix.lower()]
    rate = float(exact / 8 if match["bits"] is not None else exact)
    if rate <= 0:  # zero, negative, or too small for a float
        raise UsageError(f'invalid argument "{text}" for "{flag}" flag: the rate must be greater than 0')
    if math.isinf(rate):
        raise UsageError(f'invalid argument "{text}" for "{flag}" flag: value out of range')
    return rate


def sync_config_source(argument: str | None, env: Mapping[str, str] = os.environ) -> str:
    """`sync`: the positional argument, else $FLUX_MIRROR_CONFIG; there is no default path."""
    source = argument or env.get(CONFIG_ENV, "")
    if not source:
        raise UsageError(
            "config required: pass the config path as the first argument, pass '-' for stdin, or set FLUX_MIRROR_CONFIG"
        )
    return source


def program_name(argv0: str | None = None) -> str:
    """The name usage lines show: the base name the program was invoked as (`flux-mirror`,
    `fluxmirror`, a symlink's name), as cobra's root command takes it from `os.Args[0]`.
    `python -m fluxmirror` is `fluxmirror`."""
    name = os.path.basename(sys.argv[0] if argv0 is None else argv0)
    return "fluxmirror" if name in ("", "__main__.py") else name


def executable_path(argv0: str | None = None) -> Path:
    """Go's `os.Executable()`: the absolute path of the program file, symlinks resolved (Linux reads
    `/proc/self/exe`); here the invoked script, found on `PATH` when invoked by bare name."""
    invoked = sys.argv[0] if argv0 is None else argv0
    found = invoked if os.sep in invoked else shutil.which(invoked)
    return Path(os.path.realpath(found or invoked))


def hosts_config_source(flag: str | None, env: Mapping[str, str] = os.environ) -> str:
    """`login`/`secret`: -f, else $FLUX_MIRROR_CONFIG, else `<executable>.config`."""
    return flag or env.get(CONFIG_ENV, "") or f"{executable_path()}.config"
