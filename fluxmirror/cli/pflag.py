"""The Go CLI's command-line conventions (cobra + pflag) on top of typer's click commands.

`flux mirror` parses its command line with spf13/pflag, dispatched by spf13/cobra; click's own rules
differ in ways a CI script notices, so the commands use the parser and command classes below:

- A boolean flag takes an optional value, `--dry-run=false` or `--dry-run=1` (Go's `ParseBool`
  spellings), but never the next argument: `--dry-run config.yaml` leaves `config.yaml` positional.
- `-o=json`, `-ojson` and `-o json` are the same; `--output=json` and `--output json` too. A flag that
  takes a value takes the next argument whatever it looks like (`--retries -1`).
- Integers are read as Go's `strconv.ParseInt(s, 0, 64)` (`0x10`, `0o17`, `1_000`), durations as
  Go durations, both while parsing, with pflag's messages
  (`invalid argument "x" for "--concurrency" flag: strconv.ParseInt: parsing "x": invalid syntax`).
- Errors are pflag's and cobra's: `unknown flag: --x`, `unknown shorthand flag: 'x' in -x`,
  `flag needs an argument: --timeout`, `unknown command "x" for "flux-mirror"`,
  `accepts 1 arg(s), received 0`, `accepts at most 1 arg(s), received 2`.
- The command is found as cobra finds it: the first argument that is neither a flag nor a flag's
  value names it, so the root's persistent flags (`--timeout`, `--no-envsubst`) may come before the
  command name; every argument but the command name then goes to the command's own flag set, which
  repeats the persistent flags. A flag given twice keeps its last value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import typer.core
from typer._click import exceptions as click_exceptions  # typer vendors click; pinned in pyproject
from typer._click.core import Context, Parameter, iter_params_for_processing
from typer._click.parser import _Option, _OptionParser, _ParsingState

from fluxmirror.api.duration import Duration
from fluxmirror.errors import UsageError
from fluxmirror.gocompat.strconv import go_quote, underscores_ok

__all__ = [
    "DURATION_METAVAR",
    "PflagCommand",
    "PflagGroup",
    "parse_go_bool",
    "parse_go_int",
]

DURATION_METAVAR: Final = "<duration>"
"""The metavar that makes an option a Go `time.Duration` flag: its value is checked while parsing."""

_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_UINT64_MAX: Final = (1 << 64) - 1
_INT64_LIMIT: Final = 1 << 63


def parse_go_bool(text: str) -> bool:
    """Go's `strconv.ParseBool`; a ValueError carries Go's message."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"strconv.ParseBool: parsing {go_quote(text)}: invalid syntax")


def parse_go_int(text: str) -> int:
    """Go's `strconv.ParseInt(text, 0, 64)`, as pflag's int flags read their value; a ValueError
    carries Go's message (`invalid syntax`, or `value out of range` for what overflows 64 bits)."""
    syntax = ValueError(f"strconv.ParseInt: parsing {go_quote(text)}: invalid syntax")
    out_of_range = ValueError(f"strconv.ParseInt: parsing {go_quote(text)}: value out of range")
    negative, body = text[:1] == "-", text[1:] if text[:1] in ("+", "-") else text
    if not body:
        raise syntax
    base, digits = 10, body
    if body[0] == "0":
        prefix = body[1:2].lower()
        base, digits = (
            ({"b": 2, "o": 8, "x": 16}[prefix], body[2:]) if len(body) >= 3 and prefix in "box" else (8, body[1:])
        )
    value, underscores = 0, False
    for char in digits:
        if char == "_":
            underscores = True
            continue
        digit = int(char, 36) if char.isascii() and char.isalnum() else 36
        if digit >= base:
            raise syntax
        value = value * base + digit
        if value > _UINT64_MAX:
            raise out_of_range  # Go reports the overflow as soon as it happens
    if underscores and not underscores_ok(body):
        raise syntax
    if value > _INT64_LIMIT or (value == _INT64_LIMIT and not negative):
        raise out_of_range
    return -value if negative else value


def _flag_name(option: _Option) -> str:
    """How pflag names a flag in `invalid argument` errors: `--name`, or `-s, --name`."""
    long = option._long_opts[0] if option._long_opts else ""
    short = option._short_opts[0] if option._short_opts else ""
    return ", ".join(name for name in (short, long) if name)


def _quote_char(char: str) -> str:
    """Go's `%q` of one shorthand character."""
    return "'" + go_quote(char)[1:-1].replace("'", "\\'").replace('\\"', '"') + "'"


def _is_bool(option: _Option) -> bool:
    return option.action in ("store_const", "append_const")


class PflagParser(_OptionParser):
    """click's option parser with pflag's rules (see the module docstring)."""

    def __init__(self, ctx: Context | None = None) -> None:
        super().__init__(ctx)
        self.positionals: list[str] = []

    def parse_args(self, args: list[str]) -> tuple[dict[str, Any], list[str], list[Parameter]]:
        state = _ParsingState(args)
        try:
            self._process_args_for_options(state)
            self._process_args_for_args(state)
        except (UsageError, click_exceptions.UsageError):
            if self.ctx is None or not self.ctx.resilient_parsing:  # shell completion reads what it can
                raise
        return state.opts, state.largs, state.order

    def _process_args_for_options(self, state: _ParsingState) -> None:
        while state.rargs:
            arg = state.rargs.pop(0)
            if len(arg) < 2 or arg[0] != "-":  # "-" alone (stdin) and "" are arguments
                if not self.allow_interspersed_args:
                    state.rargs.insert(0, arg)
                    return
                state.largs.append(arg)
            elif arg == "--":  # what follows is positional, whatever it looks like
                return
            elif arg[1] == "-":
                self._long(arg, state)
            else:
                self._shorthands(arg, state)

    def _process_args_for_args(self, state: _ParsingState) -> None:
        self.positionals = [*state.largs, *state.rargs]
        super()._process_args_for_args(state)

    def _long(self, arg: str, state: _ParsingState) -> None:
        name = arg[2:]
        if name[:1] in ("-", "="):
            raise UsageError(f"bad flag syntax: {arg}")
        name, equals, value = name.partition("=")
        option = self._long_opt.get(f"--{name}")
        if option is None:
            raise UsageError(f"unknown flag: --{name}")
        if equals:
            self._set(option, value, state)
        elif _is_bool(option):
            self._set(option, "true", state)
        elif state.rargs:
            self._set(option, state.rargs.pop(0), state)
        else:
            raise UsageError(f"flag needs an argument: {arg}")

    def _shorthands(self, arg: str, state: _ParsingState) -> None:
        """`-abc` is `-a -b -c` while they are booleans; a shorthand taking a value takes the rest
        (`-ojson`), the rest after `=` (`-o=json`), or the next argument (`-o json`)."""
        shorthands = arg[1:]
        while shorthands:
            char, rest = shorthands[0], shorthands[1:]
            option = self._short_opt.get(f"-{char}")
            if option is None:
                raise UsageError(f"unknown shorthand flag: {_quote_char(char)} in -{shorthands}")
            if len(shorthands) > 2 and rest[0] == "=":
                value, rest = rest[1:], ""
            elif _is_bool(option):
                value = "true"
            elif rest:
                value, rest = rest, ""
            elif state.rargs:
                value = state.rargs.pop(0)
            else:
                raise UsageError(f"flag needs an argument: {_quote_char(char)} in -{shorthands}")
            self._set(option, value, state)
            shorthands = rest

    def _set(self, option: _Option, text: str, state: _ParsingState) -> None:
        """Convert the value as pflag's flag type would, then record it (the last one given wins)."""
        obj: Any = option.obj
        annotation = getattr(getattr(obj, "type_descriptor", None), "annotation", None)
        value: Any = text
        try:
            if _is_bool(option):
                value = parse_go_bool(text) == bool(option.const)
            elif annotation is int:
                value = parse_go_int(text)
            elif getattr(obj, "metavar", None) == DURATION_METAVAR:
                Duration.parse(text)
        except ValueError as exc:
            raise UsageError(
                f"invalid argument {go_quote(text)} for {go_quote(_flag_name(option))} flag: {exc}"
            ) from None
        dest = str(option.dest)
        if option.action in ("append", "append_const"):
            state.opts.setdefault(dest, []).append(value)
        else:
            state.opts[dest] = value
        state.order.append(obj)


def _make_parser(command: typer.core.TyperCommand | typer.core.TyperGroup, ctx: Context) -> PflagParser:
    parser = PflagParser(ctx)
    for param in command.get_params(ctx):
        param.add_to_parser(parser, ctx)
    return parser


def _arguments(command: Any, ctx: Context) -> list[Parameter]:
    return [param for param in command.get_params(ctx) if isinstance(param, typer.core.TyperArgument)]


def _check_positionals(command: Any, ctx: Context, positionals: Sequence[str]) -> None:
    """cobra's positional-argument rules, derived from the command's arguments: none declared is
    `NoArgs`, all required is `ExactArgs(n)`, otherwise `MaximumNArgs(n)` (unbounded with `nargs=-1`)."""
    arguments = _arguments(command, ctx)
    if any(argument.nargs < 0 for argument in arguments):
        return
    total = sum(argument.nargs for argument in arguments)
    received = len(positionals)
    if total == 0 and received:
        raise UsageError(f"unknown command {go_quote(positionals[0])} for {go_quote(ctx.command_path)}")
    if all(argument.required for argument in arguments) and received != total:
        raise UsageError(f"accepts {total} arg(s), received {received}")
    if received > total:
        raise UsageError(f"accepts at most {total} arg(s), received {received}")


class PflagCommand(typer.core.TyperCommand):
    """A sub-command parsed with pflag's rules and checked with cobra's argument rules.

    As in cobra, `-h/--help` (an eager flag) is honoured before the arguments are counted.
    """

    def make_parser(self, ctx: Context) -> PflagParser:
        return _make_parser(self, ctx)

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        parser = self.make_parser(ctx)
        opts, rest, order = parser.parse_args(args=args)
        checked = ctx.resilient_parsing
        for param in iter_params_for_processing(order, self.get_params(ctx)):
            if not checked and not param.is_eager:
                _check_positionals(self, ctx, parser.positionals)
                checked = True
            _, rest = param.handle_parse_result(ctx, opts, rest)
        if not checked:
            _check_positionals(self, ctx, parser.positionals)
        ctx.args = rest
        ctx._opt_prefixes.update(parser._opt_prefixes)
        return rest


class PflagGroup(typer.core.TyperGroup):
    """The root command: finds the sub-command as cobra does, then hands it every other argument."""

    def make_parser(self, ctx: Context) -> PflagParser:
        return _make_parser(self, ctx)

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        name, rest = self._find(ctx, args)
        if name is not None:
            return super().parse_args(ctx, [name, *rest])
        # No sub-command: only the root's own flags; what follows `--` is ignored, as by cobra.
        root_args = args[: args.index("--")] if "--" in args else args
        return super().parse_args(ctx, root_args)

    def _find(self, ctx: Context, args: list[str]) -> tuple[str | None, list[str]]:
        """cobra's `Find`: the first argument that is not a flag, nor the value of a root flag
        that takes one, names the command; it is taken out of the arguments."""
        takes_no_value = {
            name
            for param in self.get_params(ctx)
            if getattr(param, "is_flag", False)
            for name in getattr(param, "opts", ())
        }
        position = 0
        while position < len(args):
            arg = args[position]
            if arg == "--":
                break
            takes_value = "=" not in arg and arg not in takes_no_value
            if takes_value and (arg.startswith("--") or (arg.startswith("-") and len(arg) == 2)):
                position += 2  # the flag's value is the next argument
                continue
            if arg and not arg.startswith("-"):
                if self.get_command(ctx, arg) is not None:
                    return arg, [*args[:position], *args[position + 1 :]]
                if not ctx.resilient_parsing:
                    raise UsageError(f"unknown command {go_quote(arg)} for {go_quote(ctx.command_path)}")
                break
            position += 1
        return None, args
