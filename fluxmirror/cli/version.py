"""`version`: print the build version."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from fluxmirror import __version__
from fluxmirror.cli.options import GlobalTimeoutOption, NoEnvsubstOption
from fluxmirror.errors import UsageError

__all__ = ["version"]


def version(
    output: Annotated[str, typer.Option("--output", "-o", help="Output format: text, yaml or json.")] = "text",
    timeout: GlobalTimeoutOption = None,
    no_envsubst: NoEnvsubstOption = False,
) -> int:
    """Print the fluxmirror version."""
    del timeout, no_envsubst  # persistent flags: accepted (and parsed) by every command, unused here
    if output == "text":
        typer.echo(__version__)
    elif output == "json":
        typer.echo(json.dumps({"version": __version__}, indent=2))
    elif output == "yaml":
        typer.echo(f"version: {__version__}")
    else:
        raise UsageError(f"unsupported output format '{output}', must be one of: text, yaml, json")
    return 0
