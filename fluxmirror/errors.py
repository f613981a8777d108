"""The exception tree every layer raises; the CLI turns it into `✗ <message>` and an exit code.

FluxMirrorError            one-line message meant for the user; exit code 1
├── UsageError             a flag or argument has a bad value
├── ConfigError            the config cannot be read, parsed, validated or confined
├── KeygenError            `keygen` could not write the key pair
└── NotImplementedYetError the command exists but is not built yet

Messages never carry secrets: whoever raises one is responsible for leaving credentials out.
"""

from __future__ import annotations

from typing import Self

__all__ = [
    "ConfigError",
    "FluxMirrorError",
    "KeygenError",
    "NotImplementedYetError",
    "UsageError",
    "unexpected",
]


class FluxMirrorError(Exception):
    """An error the user can act on, worded as the single line the CLI prints.

    `temporary` says whether trying again may succeed; a sync job retries only those."""

    exit_code: int = 1

    def __init__(self, message: str, *, temporary: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.temporary = temporary

    def prefixed(self, context: str) -> Self:
        """The same failure, of the same class and with the same attributes (status, retry
        advice), named by its caller's context: `<context>: <error>`."""
        wrapped = type(self).__new__(type(self))
        wrapped.__dict__.update(self.__dict__)
        wrapped.message = f"{context}: {self.message}"
        wrapped.args = (wrapped.message,)
        return wrapped

    def __str__(self) -> str:
        return self.message


class UsageError(FluxMirrorError):
    """A command-line flag or argument is invalid."""


class ConfigError(FluxMirrorError):
    """The config failed to load: open, substitute, parse, validate or confine."""


class KeygenError(FluxMirrorError):
    """The key pair could not be written."""


class NotImplementedYetError(FluxMirrorError):
    """A documented command that this build does not implement yet."""

    def __init__(self, command: str) -> None:
        super().__init__(f"{command}: not implemented yet in fluxmirror")


def unexpected(exc: BaseException) -> str:
    """One line for an exception no layer anticipated (a defect): its type and message, so a user can
    report it, without a traceback and with control characters escaped."""
    text = " ".join(str(exc).split())
    line = f"internal error: {type(exc).__name__}: {text}" if text else f"internal error: {type(exc).__name__}"
    return line.encode("unicode_escape").decode("ascii") if not line.isprintable() else line
