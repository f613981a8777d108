"""`export`: the sync of the config's entries into an OCI image layout or tar, for the far side of an
air gap (docs/airgap.md)."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from fluxmirror.api.archive import EXPORT_KIND
from fluxmirror.cli.archive_command import ArchiveCommand
from fluxmirror.cli.options import NoEnvsubstOption
from fluxmirror.cli.sync import (
    AdaptiveOption,
    ConcurrencyOption,
    ConfigArgument,
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

__all__ = ["export", "parse_size"]

_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]I?)?B?", re.IGNORECASE)


def parse_size(text: str, flag: str) -> int:
    """A byte count: a number with an optional decimal (K, M, G, T) or binary (Ki, Mi, Gi, Ti) unit,
    as DVD and USB sizes are written (`4.7G` is 4,700,000,000 bytes)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None or float(match.group(1)) <= 0:
        raise UsageError(f'invalid argument "{text}" for "{flag}" flag: a size such as 4.7G, 700M or 25Gi')
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").upper()])


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
    shard: ShardOption = None,
    max_bandwidth: MaxBandwidthOption = None,
    adaptive: AdaptiveOption = False,
    split_size: Annotated[
        str | None,
        typer.Option(
            "--split-size",
            metavar="SIZE",
            help="Volumes of at most this size (4.7G, 700M, 25Gi): each a complete layout tar.",
            show_default=False,
        ),
    ] = None,
    base: Annotated[
        list[str] | None,
        typer.Option(
            "--base", metavar="RECEIPT", help="Receipt of what the far side has (repeatable): ship only what is new."
        ),
    ] = None,
    receipt_out: Annotated[
        str | None,
        typer.Option(
            "--receipt-out", metavar="FILE", help="Write the receipt of what this export ships.", show_default=False
        ),
    ] = None,
    metrics_file: MetricsFileOption = None,
    pushgateway: PushgatewayOption = None,
    no_envsubst: NoEnvsubstOption = False,
) -> int:
    """Write the config's artifacts, charts and referrers into an OCI image layout or tar."""
    if not to:
        raise UsageError("--to is required: a layout directory or a .tar file")
    split = parse_size(split_size, "--split-size") if split_size is not None else None
    if to == "-" and config == "-":
        raise UsageError("--to -: the archive goes to stdout, so the config cannot come from stdin")
    if split is not None and not to.endswith(".tar"):
        raise UsageError("--split-size needs a .tar target (volumes FILE.tar.000, FILE.tar.001, …)")
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
        shard=shard,
        metrics_file=metrics_file,
        pushgateway=pushgateway,
        command="export",
        max_bandwidth=max_bandwidth,
        adaptive=adaptive,
    )
    loaded = load_run_config(config, no_envsubst)

    async def runner(
        credentials: CredentialsFactory, progress: Progress, cancellation: Cancellation
    ) -> tuple[list[Result], Archive]:
        from fluxmirror.sync.export import export as run_export

        return await run_export(
            loaded,
            flags.options,
            to,
            credentials,
            progress,
            cancellation,
            pipe=sys.stdout.buffer if to == "-" else None,
            split_size=split,
            bases=base or [],
            receipt_out=receipt_out,
        )

    def moved(archive: Archive) -> str:
        volumes = f" in {len(archive.volumes)} volume(s)" if archive.volumes else ""
        return f"{archive.blobs.written} blob(s), {archive.blobs.bytesWritten} bytes written{volumes}"

    return run_command(flags, loaded, ArchiveCommand(EXPORT_KIND, runner, moved, data_on_stdout=to == "-"))
