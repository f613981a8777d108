"""`export`: the sync of the config's entries into an OCI image layout or tar, for the far side of an
air gap (docs/airgap.md)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

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
    from fluxmirror.api.archive import Archive, ArchiveReport
    from fluxmirror.api.config import Config
    from fluxmirror.api.duration import Duration
    from fluxmirror.api.report import Result
    from fluxmirror.sync.engine import Cancellation, CredentialsFactory
    from fluxmirror.sync.events import Progress
    from fluxmirror.sync.options import SyncOptions

__all__ = ["export"]


class ExportCommand:
    """The run of `export` and its `ExportReport` (the sync report's body plus `archive`)."""

    def __init__(self, config: Config, options: SyncOptions, target: str) -> None:
        self.config, self.options, self.target = config, options, target
        self.archive: Archive | None = None

    async def run(
        self, credentials: CredentialsFactory, progress: Progress, cancellation: Cancellation
    ) -> list[Result]:
        from fluxmirror.sync.export import export as run_export

        results, self.archive = await run_export(
            self.config, self.options, self.target, credentials, progress, cancellation
        )
        return results

    def report(self, results: list[Result], duration: Duration, finished_at: datetime) -> ArchiveReport:
        from fluxmirror.api.archive import EXPORT_KIND
        from fluxmirror.sync.report import build_archive_report

        assert self.archive is not None
        return build_archive_report(EXPORT_KIND, results, self.archive, duration=duration, finished_at=finished_at)

    def closing_lines(self) -> list[str]:
        from fluxmirror.sync.report import archive_line

        if self.archive is None:
            return []
        moved = f"{self.archive.blobs.written} blob(s), {self.archive.blobs.bytesWritten} bytes written"
        return [archive_line(self.archive, moved)]


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
    return run_command(flags, loaded, ExportCommand(loaded, flags.options, to))
