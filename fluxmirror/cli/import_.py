"""`import`: push what an air-gap archive (an OCI image layout or its tar) holds to the registries its
names say (docs/airgap.md#import)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from fluxmirror.api.archive import IMPORT_KIND
from fluxmirror.cli.archive_command import ArchiveCommand
from fluxmirror.cli.options import NoEnvsubstOption
from fluxmirror.cli.sync import (
    AdaptiveOption,
    ConcurrencyOption,
    DriftExitCodeOption,
    DryRunOption,
    InsecureOption,
    MaxBandwidthOption,
    MetricsFileOption,
    NoProgressOption,
    OutputOption,
    OverwriteOption,
    PushgatewayOption,
    RetriesOption,
    RunFlags,
    ShardOption,
    TimeoutOption,
    VerboseOption,
    load_run_config,
    run_command,
)
from fluxmirror.errors import UsageError

if TYPE_CHECKING:
    from fluxmirror.api.archive import Archive
    from fluxmirror.api.report import Result
    from fluxmirror.sync.engine import Cancellation, CredentialsFactory
    from fluxmirror.sync.events import Progress

__all__ = ["import_command"]


def import_command(
    source: Annotated[
        str, typer.Argument(metavar="SRC", help="Layout directory, tar, or - (stdin).", show_default=False)
    ],
    config: Annotated[
        str | None,
        typer.Argument(
            metavar="[CONFIG|-]", help="Config whose destinations and hosts apply (optional).", show_default=False
        ),
    ] = None,
    output: OutputOption = "text",
    concurrency: ConcurrencyOption = 4,
    retries: RetriesOption = 3,
    timeout: TimeoutOption = None,
    overwrite: OverwriteOption = False,
    drift_exit_code: DriftExitCodeOption = 2,
    dry_run: DryRunOption = False,
    verbose: VerboseOption = False,
    no_progress: NoProgressOption = False,
    insecure: InsecureOption = False,
    shard: ShardOption = None,
    max_bandwidth: MaxBandwidthOption = None,
    adaptive: AdaptiveOption = False,
    verify_only: Annotated[
        bool, typer.Option("--verify-only", help="Hash every blob the archive's images need; push nothing.")
    ] = False,
    map_tag_only_to: Annotated[
        str | None,
        typer.Option(
            "--map-tag-only-to",
            metavar="REPOSITORY",
            help="Place tag-only names (from skopeo or umoci) in this registry/repository.",
            show_default=False,
        ),
    ] = None,
    receipt_out: Annotated[
        str | None,
        typer.Option(
            "--receipt-out", metavar="FILE", help="Write the receipt of what the far side now has.", show_default=False
        ),
    ] = None,
    metrics_file: MetricsFileOption = None,
    pushgateway: PushgatewayOption = None,
    no_envsubst: NoEnvsubstOption = False,
) -> int:
    """Push an air-gap archive's images, charts and referrers to the registries their names say."""
    flags = RunFlags(
        output=output,
        concurrency=concurrency,
        retries=retries,
        timeout=timeout,
        drift_exit_code=drift_exit_code,
        overwrite=overwrite,
        dry_run=dry_run,
        verbose=verbose,
        no_progress=no_progress,
        insecure=insecure,
        shard=shard,
        metrics_file=metrics_file,
        pushgateway=pushgateway,
        command="import",
        max_bandwidth=max_bandwidth,
        adaptive=adaptive,
    )
    if source == "-" and config == "-":
        raise UsageError("import - -: the archive and the config cannot both come from stdin")
    loaded = load_run_config(config, no_envsubst, require_entries=False) if config is not None else None

    async def runner(
        credentials: CredentialsFactory, progress: Progress, cancellation: Cancellation
    ) -> tuple[list[Result], Archive]:
        from fluxmirror.sync.importer import import_archive

        return await import_archive(
            loaded,
            flags.options,
            source,
            credentials,
            progress,
            cancellation,
            pipe=sys.stdin.buffer if source == "-" else None,
            verify_only=verify_only,
            map_tag_only=map_tag_only_to,
            receipt_out=receipt_out,
        )

    def moved(archive: Archive) -> str:
        if archive.verified is not None:
            return "every blob verified" if archive.verified else "verification FAILED"
        return f"{archive.blobs.pushed} blob(s), {archive.blobs.bytesPushed} bytes pushed"

    return run_command(flags, loaded, ArchiveCommand(IMPORT_KIND, runner, moved))
