"""`secret`: write the configured hosts' credentials as a Kubernetes dockerconfigjson Secret."""

from __future__ import annotations

from typing import Annotated

import typer
from typer._click.core import ParameterSource  # typer vendors click; pinned in pyproject

from fluxmirror.auth.credentials import Credential
from fluxmirror.cli.hosts import CredentialResolver, hosts_to_store, skipped_line
from fluxmirror.cli.options import (
    ConfigOption,
    HostsOption,
    NoEnvsubstOption,
    ResolutionTimeoutOption,
)

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
    # Imported here: the kubernetes client takes a while to import and no other command needs it.
    from fluxmirror.kube import KubeOptions, connect, docker_config_json, upsert_secret

    selected, resolution_timeout = hosts_to_store(ctx, config, host or [], timeout, no_envsubst)
    options = KubeOptions(
        kubeconfig=kubeconfig,
        kubeconfig_explicit=ctx.get_parameter_source("kubeconfig") is ParameterSource.COMMANDLINE,
        context=context,
        cluster=cluster,
        user=user,
        namespace=namespace,
        server=server,
        token=token,
        certificate_authority=certificate_authority,
        client_certificate=client_certificate,
        client_key=client_key,
        insecure_skip_tls_verify=insecure_skip_tls_verify,
        tls_server_name=tls_server_name,
        as_user=as_user,
        as_groups=as_group or [],
        request_timeout=request_timeout,
    )
    with connect(options) as connection:
        resolver = CredentialResolver(resolution_timeout)
        credentials: dict[str, Credential] = {}
        for entry in selected:
            if entry.credential is None:
                typer.echo(skipped_line(entry.host))
                continue
            credentials[entry.host] = resolver.resolve(entry)
        result = upsert_secret(connection, name, docker_config_json(credentials), create_only=create)
        typer.echo(f"✔ secret {connection.namespace}/{name} {result.value} with {len(credentials)} host(s)")
    return 0
