"""`login`: store the configured hosts' credentials in a Docker config."""

from __future__ import annotations

from typing import Annotated

import typer

from fluxmirror.cli.options import GlobalOptions, hosts_config_source
from fluxmirror.config import load_config
from fluxmirror.errors import NotImplementedYetError

__all__ = ["login"]


def login(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option("--config", "-f", help="Config path, or '-' for stdin.", show_default="$FLUX_MIRROR_CONFIG"),
    ] = None,
    host: Annotated[list[str] | None, typer.Option(help="Host to log in (repeatable); default all.")] = None,
    docker_config: Annotated[
        str | None, typer.Option(help="Docker config directory.", show_default="$DOCKER_CONFIG, else ~/.docker")
    ] = None,
    plaintext: Annotated[bool, typer.Option(help="Store base64 in config.json, bypassing helpers.")] = False,
    timeout: Annotated[str | None, typer.Option(help="Bound on credential resolution.", show_default="1m")] = None,
    no_envsubst: Annotated[bool, typer.Option(help="Do not substitute ${VAR} in the config.")] = False,
) -> int:
    """Store the credentials of the config's hosts in the Docker config, like `docker login`."""
    options = GlobalOptions.of(ctx)
    options.resolve_timeout(timeout, "1m")
    load_config(hosts_config_source(config), require_entries=False, envsubst=options.envsubst(no_envsubst))
    raise NotImplementedYetError("login")
