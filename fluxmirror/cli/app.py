"""The typer application: commands, global options, and the one place errors become exit codes.

Commands are parsed with pflag's rules and found with cobra's (`fluxmirror.cli.pflag`), so that a
script written for `flux mirror` behaves the same with `fluxmirror`.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Sequence
from typing import Annotated

import typer
from typer._click import exceptions as click_exceptions  # typer vendors click; pinned in pyproject
from typer._click.core import Context

from fluxmirror import __version__
from fluxmirror.cli.export import export
from fluxmirror.cli.import_ import import_command
from fluxmirror.cli.keygen import keygen
from fluxmirror.cli.login import login
from fluxmirror.cli.options import GlobalTimeoutOption, NoEnvsubstOption, program_name
from fluxmirror.cli.pflag import PflagCommand, PflagGroup
from fluxmirror.cli.secret import secret
from fluxmirror.cli.sync import sync
from fluxmirror.cli.terminal import terminal_safe
from fluxmirror.cli.version import version
from fluxmirror.errors import FluxMirrorError, UsageError, unexpected

__all__ = ["SHELLS", "app", "completion_variable", "main"]

SHELLS = ("bash", "zsh", "fish", "powershell")
"""The shells `completion` writes a script for, as cobra's `completion` command offers them."""

app = typer.Typer(
    cls=PflagGroup,
    help="Mirror OCI artifacts and Helm charts between registries (a drop-in `flux mirror`).",
    add_completion=False,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_help(ctx: Context) -> None:
    """The command's help on stdout, exactly as `-h/--help` prints it (typer's rich help prints
    itself and returns nothing, so this, like the flag, ends with an empty line)."""
    typer.echo(ctx.get_help())


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    timeout: GlobalTimeoutOption = None,
    no_envsubst: NoEnvsubstOption = False,
    show_version: Annotated[bool, typer.Option("--version", "-v", help="Print the version and exit.")] = False,
) -> None:
    """Without a command: `-v/--version` prints `<program> version <v>`, anything else the help (exit 0)."""
    del timeout, no_envsubst  # persistent flags: given before a command name they reach the command
    if ctx.invoked_subcommand is not None:
        return
    if show_version:
        typer.echo(f"{ctx.info_name} version {__version__}")
    else:
        _print_help(ctx)
    raise typer.Exit(0)


def completion(
    ctx: typer.Context,
    shell: Annotated[
        str | None, typer.Argument(metavar="bash|zsh|fish|powershell", help="The shell.", show_default=False)
    ] = None,
    no_descriptions: Annotated[
        bool, typer.Option("--no-descriptions", help="Accepted for cobra compatibility; descriptions stay.")
    ] = False,
    timeout: GlobalTimeoutOption = None,
    no_envsubst: NoEnvsubstOption = False,
) -> int:
    """Generate the autocompletion script for the specified shell."""
    del no_descriptions, timeout, no_envsubst
    if shell is None:
        _print_help(ctx)
        return 0
    if shell not in SHELLS:
        raise UsageError(f'unknown command "{shell}" for "{ctx.command_path}"')
    from typer._completion_shared import get_completion_script  # only this command needs it

    prog = ctx.find_root().info_name or program_name()
    typer.echo(get_completion_script(prog_name=prog, complete_var=completion_variable(prog), shell=shell))
    return 0


def help_command(
    ctx: typer.Context,
    command: Annotated[
        list[str] | None, typer.Argument(metavar="COMMAND", help="The command to describe.", show_default=False)
    ] = None,
    timeout: GlobalTimeoutOption = None,
    no_envsubst: NoEnvsubstOption = False,
) -> int:
    """Help about any command."""
    del timeout, no_envsubst
    root = ctx.find_root()
    if not command:
        _print_help(root)
        return 0
    group = root.command
    assert isinstance(group, PflagGroup)
    found = group.get_command(root, command[0])
    if found is None:
        # cobra: the topic is reported and the root's usage shown, and the exit code stays 0.
        print(f"Unknown help topic [{' '.join(f'`{word}`' for word in command)}]", file=sys.stderr)
        _print_help(root)
        return 0
    with found.make_context(command[0], [], parent=root, resilient_parsing=True) as target:
        _print_help(target)
    return 0


# Listed in cobra's (alphabetical) order, which the help shows.
for _name, _command in (
    ("completion", completion),
    ("export", export),
    ("help", help_command),
    ("import", import_command),
    ("keygen", keygen),
    ("login", login),
    ("secret", secret),
    ("sync", sync),
    ("version", version),
):
    app.command(_name, cls=PflagCommand)(_command)


def completion_variable(prog: str) -> str:
    """The environment variable through which the completion scripts ask the program for candidates."""
    return "_" + re.sub(r"\W", "_", prog, flags=re.ASCII).upper() + "_COMPLETE"


def _fail(message: str, code: int = 1) -> int:
    print(f"✗ {terminal_safe(message)}", file=sys.stderr)
    return code


def _no_last_resort_logging() -> None:
    """Give the root logger a handler that drops records. Cloud SDKs (azure-identity, botocore,
    google-auth, py-spiffe) log warnings of their own, and with no handler anywhere Python's last
    resort would print them on stderr next to the one line a failure gets; their failures reach
    the user as exceptions, worded once. `--verbose` logs through fluxmirror's own handler."""
    root = logging.getLogger()
    if not any(type(handler) is logging.NullHandler for handler in root.handlers):
        root.addHandler(logging.NullHandler())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the process exit code; nothing below this function prints errors."""
    prog = program_name()
    variable = completion_variable(prog)
    _no_last_resort_logging()
    try:
        command = typer.main.get_command(app)
        if os.environ.get(variable):  # a shell asks for completions: answered, and the process exits
            from typer._completion_classes import completion_init

            completion_init()
        result = command.main(
            args=list(sys.argv[1:] if argv is None else argv),
            prog_name=prog,
            complete_var=variable,
            standalone_mode=False,
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
