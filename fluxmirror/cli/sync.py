"""`sync`: mirror the config's artifacts and charts. Its flags and their checks are shared with
`export` and `import`, which run the same planner and jobs (docs/airgap.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from fluxmirror.cli.metrics import MetricsFileOption, PushgatewayOption, metrics_outputs
from fluxmirror.cli.options import (
    GLOBAL_FLAGS,
    NoEnvsubstOption,
    parse_rate,
    parse_shard_flag,
    resolve_timeout,
    sync_config_source,
)
from fluxmirror.cli.pflag import DURATION_METAVAR
from fluxmirror.config import load_config
from fluxmirror.errors import UsageError
from fluxmirror.sync.options import COMPARE_CONCURRENCY, SyncOptions

if TYPE_CHECKING:
    from fluxmirror.api.config import Config
    from fluxmirror.cli.sync_output import Command

__all__ = ["OUTPUT_FORMATS", "MetricsFileOption", "PushgatewayOption", "RunFlags", "run_command", "sync"]

OUTPUT_FORMATS = ("text", "yaml", "json")

ConfigArgument = Annotated[
    str | None, typer.Argument(metavar="CONFIG|-", help="Config path, or '-' for stdin.", show_default=False)
]
OutputOption = Annotated[str, typer.Option("--output", "-o", help="Output format: text, yaml or json.")]
ConcurrencyOption = Annotated[int, typer.Option("--concurrency", help="Copy operations in parallel per entry (> 0).")]
ParallelEntriesOption = Annotated[
    int, typer.Option("--parallel-entries", help="Entries run side by side; the report keeps config order (> 0).")
]
CompareConcurrencyOption = Annotated[
    int, typer.Option("--compare-concurrency", help="Tag digest lookups in parallel per registry host (> 0).")
]
RetriesOption = Annotated[int, typer.Option("--retries", help="Retry attempts per job within --timeout (>= 0).")]
TimeoutOption = Annotated[
    str | None,
    typer.Option(
        "--timeout",
        metavar=DURATION_METAVAR,
        help="Per-job budget covering all retries.",
        show_default="5m",
        rich_help_panel=GLOBAL_FLAGS,
    ),
]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Force overwrite: true on every entry.")]
DriftExitCodeOption = Annotated[
    int, typer.Option("--drift-exit-code", help="Exit code when drift is found without failures.")
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Plan and compare without writing.")]
VerboseOption = Annotated[bool, typer.Option("--verbose", help="Log every operation on stderr.")]
NoProgressOption = Annotated[bool, typer.Option("--no-progress", help="Disable the live progress spinner.")]
InsecureOption = Annotated[bool, typer.Option("--insecure", help="Allow plain HTTP and skip TLS verification.")]
TrustedRootOption = Annotated[
    str | None,
    typer.Option(
        "--trusted-root",
        metavar="FILE",
        help="Sigstore trusted_root.json for verify (no network); else $FLUXMIRROR_TRUSTED_ROOT, else TUF.",
        show_default=False,
    ),
]
StateDirOption = Annotated[
    str | None,
    typer.Option(
        "--state-dir",
        metavar="DIR",
        help="Remember verified signatures and unfinished uploads across runs here (off by default).",
        show_default=False,
    ),
]
ShardOption = Annotated[
    str | None,
    typer.Option(
        "--shard",
        metavar="i/n|auto",
        help="Run only shard i (0-based) of n, split by destination; auto: from an Indexed Job's environment.",
        show_default=False,
    ),
]
MaxBandwidthOption = Annotated[
    str | None,
    typer.Option(
        "--max-bandwidth",
        metavar="RATE",
        help="Cap on blob bytes per second for the whole run: 20MiB/s, 500KB/s, 100Mbit (off by default).",
        show_default=False,
    ),
]
AdaptiveOption = Annotated[
    bool,
    typer.Option(
        "--adaptive",
        help="Limit requests in flight per registry, halving on 429/503 and growing back while healthy.",
    ),
]


class RunFlags:
    """The flags of a run, checked in the reference's order, with its messages; then fluxmirror's
    own, the metrics flags last, for `command` (which the Pushgateway's grouping key names)."""

    def __init__(
        self,
        *,
        output: str,
        concurrency: int,
        retries: int,
        timeout: str | None,
        drift_exit_code: int,
        overwrite: bool,
        dry_run: bool,
        verbose: bool,
        no_progress: bool,
        insecure: bool,
        trusted_root: str | None = None,
        state_dir: str | None = None,
        shard: str | None = None,
        metrics_file: str | None = None,
        pushgateway: str | None = None,
        command: str = "sync",
        max_bandwidth: str | None = None,
        parallel_entries: int = 1,
        compare_concurrency: int = COMPARE_CONCURRENCY,
        adaptive: bool = False,
    ) -> None:
        if output not in OUTPUT_FORMATS:
            raise UsageError(f"unsupported output format '{output}', must be one of: {', '.join(OUTPUT_FORMATS)}")
        if concurrency <= 0:
            raise UsageError("--concurrency must be greater than 0")
        if retries < 0:
            raise UsageError("--retries must be greater than or equal to 0")
        job_timeout = resolve_timeout(timeout, "5m")
        if not 0 <= drift_exit_code <= 255:
            raise UsageError("--drift-exit-code must be between 0 and 255")
        if parallel_entries <= 0:
            raise UsageError("--parallel-entries must be greater than 0")
        if compare_concurrency <= 0:
            raise UsageError("--compare-concurrency must be greater than 0")
        shard_of_run = parse_shard_flag(shard) if shard is not None else None
        bandwidth = parse_rate(max_bandwidth, "--max-bandwidth") if max_bandwidth is not None else None
        self.output, self.verbose, self.spinner, self.drift_exit_code = (
            output,
            verbose,
            not no_progress,
            drift_exit_code,
        )
        self.metrics = metrics_outputs(metrics_file, pushgateway, command, shard_of_run)
        self.options = SyncOptions(
            concurrency=concurrency,
            parallel_entries=parallel_entries,
            compare_concurrency=compare_concurrency,
            retries=retries,
            timeout=job_timeout,
            overwrite=overwrite,
            dry_run=dry_run,
            insecure=insecure,
            trusted_root=trusted_root,
            state_dir=state_dir,
            shard=shard_of_run,
            observer=None if self.metrics is None else self.metrics.recorder,
            max_bandwidth=bandwidth,
            adaptive=adaptive,
        )


def load_run_config(config: str | None, no_envsubst: bool, *, require_entries: bool = True) -> Config:
    return load_config(sync_config_source(config), require_entries=require_entries, envsubst=not no_envsubst).config


def run_command(flags: RunFlags, config: Config | None, command: Command | None = None) -> int:
    """Run `command` (`sync` when None) and print its outcome; the process exit code."""
    # Imported here, not at the top: the engine pulls in aiohttp, which would slow every other command.
    from fluxmirror.cli.sync_output import run_and_print

    return run_and_print(
        config,
        flags.options,
        output=flags.output,
        verbose=flags.verbose,
        spinner=flags.spinner,
        drift_exit_code=flags.drift_exit_code,
        command=command,
        metrics=flags.metrics,
    )


def sync(
    config: ConfigArgument = None,
    output: OutputOption = "text",
    concurrency: ConcurrencyOption = 4,
    parallel_entries: ParallelEntriesOption = 1,
    compare_concurrency: CompareConcurrencyOption = COMPARE_CONCURRENCY,
    retries: RetriesOption = 3,
    timeout: TimeoutOption = None,
    overwrite: OverwriteOption = False,
    drift_exit_code: DriftExitCodeOption = 2,
    dry_run: DryRunOption = False,
    verbose: VerboseOption = False,
    no_progress: NoProgressOption = False,
    insecure: InsecureOption = False,
    trusted_root: TrustedRootOption = None,
    state_dir: StateDirOption = None,
    shard: ShardOption = None,
    metrics_file: MetricsFileOption = None,
    pushgateway: PushgatewayOption = None,
    max_bandwidth: MaxBandwidthOption = None,
    adaptive: AdaptiveOption = False,
    no_envsubst: NoEnvsubstOption = False,
) -> int:
    """Mirror Helm charts and OCI artifacts as the config describes."""
    flags = RunFlags(
        output=output,
        concurrency=concurrency,
        parallel_entries=parallel_entries,
        compare_concurrency=compare_concurrency,
        retries=retries,
        timeout=timeout,
        drift_exit_code=drift_exit_code,
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
        max_bandwidth=max_bandwidth,
        adaptive=adaptive,
    )
    return run_command(flags, load_run_config(config, no_envsubst))
