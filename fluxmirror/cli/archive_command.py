"""What `export` and `import` share as commands: a run that returns the results and the archive
block, and the `ExportReport`/`ImportReport` it is printed as (docs/airgap.md#report)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fluxmirror.api.archive import Archive, ArchiveReport
    from fluxmirror.api.duration import Duration
    from fluxmirror.api.report import Result
    from fluxmirror.sync.engine import Cancellation, CredentialsFactory
    from fluxmirror.sync.events import Progress

__all__ = ["ArchiveCommand", "ArchiveRun"]

ArchiveRun = Callable[["CredentialsFactory", "Progress", "Cancellation"], Awaitable[tuple["list[Result]", "Archive"]]]


class ArchiveCommand:
    """A `Command` (cli.sync_output) for `export` or `import`: `kind` names the report, `moved`
    words what the archive block says moved, for the text summary; `data_on_stdout` when the
    archive itself goes to stdout (`export --to -`), so everything else goes to stderr."""

    def __init__(
        self, kind: str, runner: ArchiveRun, moved: Callable[[Archive], str], *, data_on_stdout: bool = False
    ) -> None:
        self.kind = kind
        self.data_on_stdout = data_on_stdout
        self._runner = runner
        self._moved = moved
        self.archive: Archive | None = None

    async def run(
        self, credentials: CredentialsFactory, progress: Progress, cancellation: Cancellation
    ) -> list[Result]:
        results, self.archive = await self._runner(credentials, progress, cancellation)
        return results

    def report(self, results: list[Result], duration: Duration, finished_at: datetime) -> ArchiveReport:
        from fluxmirror.sync.report import build_archive_report

        assert self.archive is not None
        return build_archive_report(self.kind, results, self.archive, duration=duration, finished_at=finished_at)

    def closing_lines(self) -> list[str]:
        from fluxmirror.sync.report import archive_line

        return [archive_line(self.archive, self._moved(self.archive))] if self.archive is not None else []
