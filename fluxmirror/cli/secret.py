"""`secret`: write the configured hosts' credentials as a Kubernetes dockerconfigjson Secret."""

from __future__ import annotations

from typing import Annotated

import typer

from fluxmirror.cli.options import GlobalOptions, hosts_config_source
from fluxmirror.config import load_config
from fluxmirror.errors import NotImplementedYetError

__all__ = ["secret"]

_KUBE = "Kubernetes connection"


def secret(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Name of the Secret.", show_default=False)],
    config: Annotated[
        str | None,
        typer.Option("--config", "-f", help="Config path, or '-' for stdin.", show_default="$FLUX_MIRROR_CONFIG"),
    ] = None,
    host: Annotated[list[str] | None, typer.Option(help="Host to include (repeatable); default all.")] = None,
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
    timeout: Annotated[str | None, typer.Option(help="Bound on credential resolution.", show_default="1m")] = None,
    no_envsubst: Annotated[bool, typer.Option(help="Do not substitute ${VAR} in the config.")] = False,
) -> int:
    """Write the config's host credentials as a kubernetes.io/dockerconfigjson Secret."""
    options = GlobalOptions.of(ctx)
    options.resolve_timeout(timeout, "1m")
    load_config(hosts_config_source(config), require_entries=False, envsubst=options.envsubst(no_envsubst))
    raise NotImplementedYetError("secret")
