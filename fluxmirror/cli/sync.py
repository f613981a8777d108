"""`sync`: mirror the config's artifacts and charts."""

from __future__ import annotations

from typing import Annotated

import typer

from fluxmirror.cli.options import GLOBAL_FLAGS, NoEnvsubstOption, resolve_timeout, sync_config_source
from fluxmirror.cli.pflag import DURATION_METAVAR
from fluxmirror.config import load_config
from fluxmirror.errors import UsageError
from fluxmirror.sync.options import SyncOptions

__all__ = ["OUTPUT_FORMATS", "sync"]

OUTPUT_FORMATS = ("text", "yaml", "json")


def sync(
    config: Annotated[
        str | None, typer.Argument(metavar="CONFIG|-", help="Config path, or '-' for stdin.", show_default=False)
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="Output format: text, yaml or json.")] = "text",
    concurrency: Annotated[int, typer.Option("--concurrency", help="Copy operations in parallel per entry (> 0).")] = 4,
    retries: Annotated[int, typer.Option("--retries", help="Retry attempts per job within --timeout (>= 0).")] = 3,
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout",
            metavar=DURATION_METAVAR,
            help="Per-job budget covering all retries.",
            show_default="5m",
            rich_help_panel=GLOBAL_FLAGS,
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Force overwrite: true on every entry.")] = False,
    drift_exit_code: Annotated[
        int, typer.Option("--drift-exit-code", help="Exit code when drift is found without failures.")
    ] = 2,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and compare without writing.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Log every operation on stderr.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Disable the live progress spinner.")] = False,
    insecure: Annotated[bool, typer.Option("--insecure", help="Allow plain HTTP and skip TLS verification.")] = False,
    trusted_root: Annotated[
        str | None,
        typer.Option(
            "--trusted-root",
            metavar="FILE",
            help="Sigstore trusted_root.json for verify (no network); else $FLUXMIRROR_TRUSTED_ROOT, else TUF.",
            show_default=False,
        ),
    ] = None,
    state_dir: Annotated[
        str | None,
        typer.Option(
            "--state-dir",
            metavar="DIR",
            help="Remember verified signatures across runs here (off by default).",
            show_default=False,
        ),
    ] = None,
    no_envsubst: NoEnvsubstOption = False,
) -> int:
    """Mirror Helm charts and OCI artifacts as the config describes."""
    if output not in OUTPUT_FORMATS:
        raise UsageError(f"unsupported output format '{output}', must be one of: {', '.join(OUTPUT_FORMATS)}")
    if concurrency <= 0:
        raise UsageError("--concurrency must be greater than 0")
    if retries < 0:
        raise UsageError("--retries must be greater than or equal to 0")
    job_timeout = resolve_timeout(timeout, "5m")
    if not 0 <= drift_exit_code <= 255:
        raise UsageError("--drift-exit-code must be between 0 and 255")
    loaded = load_config(sync_config_source(config), require_entries=True, envsubst=not no_envsubst)
    sync_options = SyncOptions(
        concurrency=concurrency,
        retries=retries,
        timeout=job_timeout,
        overwrite=overwrite,
        dry_run=dry_run,
        insecure=insecure,
        trusted_root=trusted_root,
        state_dir=state_dir,
    )
    # Imported here, not at the top: the engine pulls in aiohttp, which would slow every other command.
    from fluxmirror.cli.sync_output import run_and_print

    return run_and_print(
        loaded.config,
        sync_options,
        output=output,
        verbose=verbose,
        spinner=not no_progress,
        drift_exit_code=drift_exit_code,
    )
