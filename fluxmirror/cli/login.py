"""`login`: store the configured hosts' credentials in a Docker config."""

from __future__ import annotations

from typing import Annotated

import typer

from fluxmirror.cli.options import (
    ConfigOption,
    HostsOption,
    NoEnvsubstOption,
    ResolutionTimeoutOption,
    load_hosts_config,
)
from fluxmirror.errors import NotImplementedYetError

__all__ = ["login"]


def login(
    ctx: typer.Context,
    config: ConfigOption = None,
    host: HostsOption = None,
    docker_config: Annotated[
        str | None, typer.Option(help="Docker config directory.", show_default="$DOCKER_CONFIG, else ~/.docker")
    ] = None,
    plaintext: Annotated[bool, typer.Option(help="Store base64 in config.json, bypassing helpers.")] = False,
    timeout: ResolutionTimeoutOption = None,
    no_envsubst: NoEnvsubstOption = False,
) -> int:
    """Store the credentials of the config's hosts in the Docker config, like `docker login`."""
    load_hosts_config(ctx, config, timeout, no_envsubst)
    raise NotImplementedYetError("login")
