"""`login`: store the configured hosts' credentials in a Docker config."""

from __future__ import annotations

from typing import Annotated

import typer

from fluxmirror.auth.dockerlogin import DockerConfigFile, docker_config_dir
from fluxmirror.cli.hosts import CredentialResolver, has_credential, hosts_to_store, skipped_line
from fluxmirror.cli.options import (
    ConfigOption,
    HostsOption,
    NoEnvsubstOption,
    ResolutionTimeoutOption,
)

__all__ = ["login"]


def login(
    config: ConfigOption = None,
    host: HostsOption = None,
    docker_config: Annotated[
        str | None,
        typer.Option(
            "--docker-config",
            help="Docker config directory.",
            show_default="$DOCKER_CONFIG, else ~/.docker",
        ),
    ] = None,
    plaintext: Annotated[
        bool, typer.Option("--plaintext", help="Store base64 in config.json, bypassing helpers.")
    ] = False,
    timeout: ResolutionTimeoutOption = None,
    no_envsubst: NoEnvsubstOption = False,
) -> int:
    """Store the credentials of the config's hosts in the Docker config, like `docker login`."""
    selected, resolution_timeout = hosts_to_store(config, host or [], timeout, no_envsubst)
    # Load (and detect a helper) before minting anything, so a broken Docker config wastes no token.
    docker = DockerConfigFile.load(docker_config_dir(docker_config))
    if not plaintext:
        docker.detect_helper()
    resolver = CredentialResolver(resolution_timeout)
    for entry in selected:
        name = entry.host
        if not has_credential(entry):
            typer.echo(skipped_line(name))
            continue
        credential = resolver.resolve(entry)
        if credential.registry_token:
            docker.store_registry_token(name, credential.registry_token)
            typer.echo(f"✔ stored registry token for {name} in {docker.path}")
            continue
        helper = docker.store_password(name, credential.username, credential.password, plaintext=plaintext)
        where = f'via the "{helper}" credential helper' if helper else f"in {docker.path}"
        typer.echo(f"✔ stored credential for {name} {where}")
    return 0
