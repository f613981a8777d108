"""`export`: the sync of the config's entries into an OCI image layout or tar, for the far side of an
air gap (docs/airgap.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from fluxmirror.api.archive import EXPORT_KIND
from fluxmirror.cli.archive_command import ArchiveCommand
from fluxmirror.cli.options import NoEnvsubstOption
from fluxmirror.cli.sync import (
    ConcurrencyOption,
    ConfigArgument,
    DryRunOption,
    InsecureOption,
    NoProgressOption,
    OutputOption,
    OverwriteOption,
    RetriesOption,
    RunFlags,
    StateDirOption,
    TimeoutOption,
    TrustedRootOption,
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

__all__ = ["export"]


def export(
    config: ConfigArgument = None,
    to: Annotated[
        str, typer.Option("--to", metavar="DIR|FILE.tar", help="Layout directory, or a .tar file.", show_default=False)
    ] = "",
    output: OutputOption = "text",
    concurrency: ConcurrencyOption = 4,
    retries: RetriesOption = 3,
    timeout: TimeoutOption = None,
    overwrite: OverwriteOption = False,
    dry_run: DryRunOption = False,
    verbose: VerboseOption = False,
    no_progress: NoProgressOption = False,
    insecure: InsecureOption = False,
    trusted_root: TrustedRootOption = None,
    state_dir: StateDirOption = None,
    no_envsubst: NoEnvsubstOption = False,
) -> int:
    """Write the config's artifacts, charts and referrers into an OCI image layout or tar."""
    if not to:
        raise UsageError("--to is required: a layout directory or a .tar file")
    if to == "-":
        raise UsageError("--to -: writing the archive to stdout is not supported yet; give a .tar file")
    flags = RunFlags(
        output=output,
        concurrency=concurrency,
        retries=retries,
        timeout=timeout,
        drift_exit_code=2,
        overwrite=overwrite,
        dry_run=dry_run,
        verbose=verbose,
        no_progress=no_progress,
        insecure=insecure,
        trusted_root=trusted_root,
        state_dir=state_dir,
    )
    loaded = load_run_config(config, no_envsubst)

    async def runner(
        credentials: CredentialsFactory, progress: Progress, cancellation: Cancellation
    ) -> tuple[list[Result], Archive]:
        from fluxmirror.sync.export import export as run_export

        return await run_export(loaded, flags.options, to, credentials, progress, cancellation)

    def moved(archive: Archive) -> str:
        return f"{archive.blobs.written} blob(s), {archive.blobs.bytesWritten} bytes written"

    return run_command(flags, loaded, ArchiveCommand(EXPORT_KIND, runner, moved))
