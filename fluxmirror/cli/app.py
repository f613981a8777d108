"""The typer application: commands, global options, and the one place errors become exit codes."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer
from typer._click import exceptions as click_exceptions  # typer vendors click; pinned in pyproject

from fluxmirror.cli.keygen import keygen
from fluxmirror.cli.login import login
from fluxmirror.cli.options import GlobalOptions, NoEnvsubstOption
from fluxmirror.cli.secret import secret
from fluxmirror.cli.sync import sync
from fluxmirror.cli.terminal import terminal_safe
from fluxmirror.cli.version import version
from fluxmirror.errors import FluxMirrorError, unexpected

__all__ = ["PROG_NAME", "app", "main"]

PROG_NAME = "flux-mirror"

app = typer.Typer(
    name=PROG_NAME,
    help="Mirror OCI artifacts and Helm charts between registries (a drop-in `flux mirror`).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    timeout: Annotated[str | None, typer.Option(help="Default operation timeout.")] = None,
    no_envsubst: NoEnvsubstOption = False,
) -> None:
    """Options accepted before the command name, like Cobra's persistent flags."""
    ctx.obj = GlobalOptions(timeout=timeout, no_envsubst=no_envsubst)


for _command in (sync, login, secret, keygen, version):
    app.command(_command.__name__)(_command)


def _fail(message: str, code: int = 1) -> int:
    print(f"✗ {terminal_safe(message)}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the process exit code; nothing below this function prints errors."""
    command = typer.main.get_command(app)
    try:
        result = command.main(
            args=list(sys.argv[1:] if argv is None else argv), prog_name=PROG_NAME, standalone_mode=False
        )
    except FluxMirrorError as exc:
        return _fail(exc.message, exc.exit_code)
    except click_exceptions.ClickException as exc:
        return _fail(exc.format_message().rstrip(".").replace("\n", " "))
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except (typer.Abort, KeyboardInterrupt):
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return 1
    except Exception as exc:  # the last resort: a defect still ends with one line and exit 1
        return _fail(unexpected(exc))
    return result if isinstance(result, int) else 0
