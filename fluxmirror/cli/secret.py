"""`secret`: write the configured hosts' credentials as a Kubernetes dockerconfigjson Secret."""

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

__all__ = ["secret"]

_KUBE = "Kubernetes connection"


def secret(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Name of the Secret.", show_default=False)],
    config: ConfigOption = None,
    host: HostsOption = None,
    create: Annotated[bool, typer.Option(help="Fail if the Secret already exists.")] = False,
    kubeconfig: Annotated[
        str | None, typer.Option(envvar="KUBECONFIG", help="Kubeconfig file.", rich_help_panel=_KUBE)
    ] = None,
    context: Annotated[str | None, typer.Option(help="Kubeconfig context.", rich_help_panel=_KUBE)] = None,
    cluster: Annotated[str | None, typer.Option(help="Kubeconfig cluster.", rich_help_panel=_KUBE)] = None,
    user: Annotated[str | None, typer.Option(help="Kubeconfig user.", rich_help_panel=_KUBE)] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Namespace of the Secret.", rich_help_panel=_KUBE)
    ] = None,
    server: Annotated[str | None, typer.Option(help="API server address.", rich_help_panel=_KUBE)] = None,
    token: Annotated[str | None, typer.Option(help="Bearer token for the API server.", rich_help_panel=_KUBE)] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="Impersonate this user.", rich_help_panel=_KUBE)] = None,
    as_group: Annotated[
        list[str] | None, typer.Option("--as-group", help="Impersonate this group.", rich_help_panel=_KUBE)
    ] = None,
    request_timeout: Annotated[str | None, typer.Option(help="API request timeout.", rich_help_panel=_KUBE)] = None,
    certificate_authority: Annotated[
        str | None, typer.Option(help="CA file for the API server.", rich_help_panel=_KUBE)
    ] = None,
    client_certificate: Annotated[
        str | None, typer.Option(help="Client certificate file.", rich_help_panel=_KUBE)
    ] = None,
    client_key: Annotated[str | None, typer.Option(help="Client key file.", rich_help_panel=_KUBE)] = None,
    tls_server_name: Annotated[
        str | None, typer.Option(help="Server name for TLS verification.", rich_help_panel=_KUBE)
    ] = None,
    insecure_skip_tls_verify: Annotated[
        bool, typer.Option(help="Skip API server certificate verification.", rich_help_panel=_KUBE)
    ] = False,
    timeout: ResolutionTimeoutOption = None,
    no_envsubst: NoEnvsubstOption = False,
) -> int:
    """Write the config's host credentials as a kubernetes.io/dockerconfigjson Secret."""
    load_hosts_config(ctx, config, timeout, no_envsubst)
    raise NotImplementedYetError("secret")
