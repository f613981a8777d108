"""`secret`: write the configured hosts' credentials as a Kubernetes dockerconfigjson Secret."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer._click.core import ParameterSource  # typer vendors click; pinned in pyproject

from fluxmirror.auth.credentials import Credential
from fluxmirror.cli.hosts import CredentialResolver, has_credential, hosts_to_store, skipped_line
from fluxmirror.cli.options import (
    ConfigOption,
    HostsOption,
    NoEnvsubstOption,
    ResolutionTimeoutOption,
)

__all__ = ["secret"]

_KUBE = "Kubernetes connection"


def _kube_option(*names: str, help: str, show_default: str | bool = False) -> Any:
    """A kubectl connection flag taking a string."""
    return typer.Option(*names, help=help, show_default=show_default, rich_help_panel=_KUBE)


def secret(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Name of the Secret.", show_default=False)],
    config: ConfigOption = None,
    host: HostsOption = None,
    create: Annotated[bool, typer.Option("--create", help="Fail if the Secret already exists.")] = False,
    kubeconfig: Annotated[
        str | None,
        typer.Option("--kubeconfig", envvar="KUBECONFIG", help="Kubeconfig file.", rich_help_panel=_KUBE),
    ] = None,
    context: Annotated[str | None, _kube_option("--context", help="Kubeconfig context.")] = None,
    cluster: Annotated[str | None, _kube_option("--cluster", help="Kubeconfig cluster.")] = None,
    user: Annotated[str | None, _kube_option("--user", help="Kubeconfig user.")] = None,
    namespace: Annotated[str | None, _kube_option("--namespace", "-n", help="Namespace of the Secret.")] = None,
    server: Annotated[str | None, _kube_option("--server", "-s", help="API server address and port.")] = None,
    token: Annotated[str | None, _kube_option("--token", help="Bearer token for the API server.")] = None,
    username: Annotated[str | None, _kube_option("--username", help="Basic-auth username for the API server.")] = None,
    password: Annotated[str | None, _kube_option("--password", help="Basic-auth password for the API server.")] = None,
    as_user: Annotated[str | None, _kube_option("--as", help="Impersonate this user.")] = None,
    as_group: Annotated[
        list[str] | None,
        typer.Option("--as-group", help="Impersonate this group (repeatable).", rich_help_panel=_KUBE),
    ] = None,
    as_uid: Annotated[str | None, _kube_option("--as-uid", help="Impersonate this UID (with --as).")] = None,
    request_timeout: Annotated[
        str | None, _kube_option("--request-timeout", help="API request timeout (0: none).", show_default="0")
    ] = None,
    certificate_authority: Annotated[
        str | None, _kube_option("--certificate-authority", help="CA file for the API server.")
    ] = None,
    client_certificate: Annotated[
        str | None, _kube_option("--client-certificate", help="Client certificate file.")
    ] = None,
    client_key: Annotated[str | None, _kube_option("--client-key", help="Client key file.")] = None,
    tls_server_name: Annotated[
        str | None, _kube_option("--tls-server-name", help="Server name for TLS verification.")
    ] = None,
    insecure_skip_tls_verify: Annotated[
        bool,
        typer.Option(
            "--insecure-skip-tls-verify", help="Skip API server certificate verification.", rich_help_panel=_KUBE
        ),
    ] = False,
    disable_compression: Annotated[
        bool,
        typer.Option(
            "--disable-compression", help="Do not ask the API server for compressed responses.", rich_help_panel=_KUBE
        ),
    ] = False,
    cache_dir: Annotated[
        str | None,
        _kube_option("--cache-dir", help="kubectl's cache directory: accepted, unused.", show_default="~/.kube/cache"),
    ] = None,
    timeout: ResolutionTimeoutOption = None,
    no_envsubst: NoEnvsubstOption = False,
) -> int:
    """Write the config's host credentials as a kubernetes.io/dockerconfigjson Secret."""
    # Imported here: the kubernetes client takes a while to import and no other command needs it.
    from fluxmirror.kube import KubeOptions, connect, docker_config_json, upsert_secret

    del cache_dir  # kubectl keeps its discovery and HTTP caches there; `secret` needs neither
    selected, resolution_timeout = hosts_to_store(config, host or [], timeout, no_envsubst)
    options = KubeOptions(
        kubeconfig=kubeconfig,
        kubeconfig_explicit=ctx.get_parameter_source("kubeconfig") is ParameterSource.COMMANDLINE,
        context=context,
        cluster=cluster,
        user=user,
        namespace=namespace,
        server=server,
        token=token,
        username=username,
        password=password,
        certificate_authority=certificate_authority,
        client_certificate=client_certificate,
        client_key=client_key,
        insecure_skip_tls_verify=insecure_skip_tls_verify,
        tls_server_name=tls_server_name,
        as_user=as_user,
        as_groups=as_group or [],
        as_uid=as_uid,
        request_timeout=request_timeout,
        disable_compression=disable_compression,
    )
    with connect(options) as connection:
        resolver = CredentialResolver(resolution_timeout)
        credentials: dict[str, Credential] = {}
        for entry in selected:
            if not has_credential(entry):
                typer.echo(skipped_line(entry.host))
                continue
            credentials[entry.host] = resolver.resolve(entry)
        result = upsert_secret(connection, name, docker_config_json(credentials), create_only=create)
        typer.echo(f"✔ secret {connection.namespace}/{name} {result.value} with {len(credentials)} host(s)")
    return 0
