"""`import`: push what an air-gap archive (an OCI image layout or its tar) holds to the registries its
names say (docs/airgap.md#import)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from fluxmirror.cli.options import NoEnvsubstOption
from fluxmirror.cli.sync import (
    ConcurrencyOption,
    DriftExitCodeOption,
    DryRunOption,
    InsecureOption,
    NoProgressOption,
    OutputOption,
    OverwriteOption,
    RetriesOption,
    RunFlags,
    TimeoutOption,
    VerboseOption,
    load_run_config,
    run_command,
)

if TYPE_CHECKING:
    from fluxmirror.api.archive import Archive, ArchiveReport
    from fluxmirror.api.config import Config
    from fluxmirror.api.duration import Duration
    from fluxmirror.api.report import Result
    from fluxmirror.sync.engine import Cancellation, CredentialsFactory
    from fluxmirror.sync.events import Progress
    from fluxmirror.sync.options import SyncOptions

__all__ = ["import_command"]


class ImportCommand:
    """The run of `import` and its `ImportReport`."""

    def __init__(self, config: Config | None, options: SyncOptions, source: str) -> None:
        self.config, self.options, self.source = config, options, source
        self.archive: Archive | None = None

    async def run(
        self, credentials: CredentialsFactory, progress: Progress, cancellation: Cancellation
    ) -> list[Result]:
        from fluxmirror.sync.importer import import_archive

        results, self.archive = await import_archive(
            self.config, self.options, self.source, credentials, progress, cancellation
        )
        return results

    def report(self, results: list[Result], duration: Duration, finished_at: datetime) -> ArchiveReport:
        from fluxmirror.api.archive import IMPORT_KIND
        from fluxmirror.sync.report import build_archive_report

        assert self.archive is not None
        return build_archive_report(IMPORT_KIND, results, self.archive, duration=duration, finished_at=finished_at)

    def closing_lines(self) -> list[str]:
        from fluxmirror.sync.report import archive_line

        if self.archive is None:
            return []
        moved = f"{self.archive.blobs.pushed} blob(s), {self.archive.blobs.bytesPushed} bytes pushed"
        return [archive_line(self.archive, moved)]


def import_command(
    source: Annotated[
        str, typer.Argument(metavar="SRC", help="Layout directory or layout tar to import.", show_default=False)
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
    )
    loaded = load_run_config(config, no_envsubst, require_entries=False) if config is not None else None
    command = ImportCommand(loaded, flags.options, source)
    return run_command(flags, loaded, command)
