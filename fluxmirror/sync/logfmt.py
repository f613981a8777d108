"""The `--verbose` log line format (docs/sync.md#verbose-log): `YYYY/MM/DD HH:MM:SS message key=value …`.

The reference logs through a plain `slog` handler in the standard `log` package's layout, so users
grep these lines; keys keep the order the caller gives, and a value is quoted with Go's
`strconv.Quote` only when it contains a space, tab, `"` or `=`. An empty value is written bare
(`key=`), exactly as the reference's handler does, since "" contains none of those characters.
One deliberate difference: a value with a character that is not printable (a newline, an escape,
a bidi override) is quoted too, so text a registry supplies can neither forge a log line nor
drive the terminal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final, TextIO

from fluxmirror.gocompat.strconv import go_quote

__all__ = ["LOGGER_NAME", "VerboseFormatter", "configure_verbose_logging", "kv"]

LOGGER_NAME: Final = "fluxmirror"

_NEEDS_QUOTES: Final = frozenset(' \t"=')


def _text(value: object) -> str:
    """A value as Go's `slog.Value.String` shows it (booleans lower-case, nil as `<nil>`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    return str(value)  # a Duration renders as a Go duration string, an exception as its message


def kv(message: str, /, **values: object) -> str:
    """`message key=value …`, keys in the order given.

    Keys that are not identifiers (`would-copy`) are passed as `**{"would-copy": n}`; the message
    is positional-only so any key name stays available.
    """
    parts = [message]
    for key, value in values.items():
        text = _text(value)
        quote = _NEEDS_QUOTES.intersection(text) or not text.isprintable()
        parts.append(f"{key}={go_quote(text) if quote else text}")
    return " ".join(parts)


class VerboseFormatter(logging.Formatter):
    """`YYYY/MM/DD HH:MM:SS <message>` in local time with no level, like Go's `log.LstdFlags`."""

    def __init__(self) -> None:
        super().__init__(fmt="%(asctime)s %(message)s", datefmt="%Y/%m/%d %H:%M:%S")


def configure_verbose_logging(stream: TextIO) -> Callable[[], None]:
    """Send the `fluxmirror` logger's INFO records to `stream`; returns a function that undoes it.

    Propagation is left alone so test log capture keeps working; with no root handlers installed
    (the CLI's case) every line is written exactly once.
    """
    logger = logging.getLogger(LOGGER_NAME)
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.INFO)
    handler.setFormatter(VerboseFormatter())
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)

    return undo
