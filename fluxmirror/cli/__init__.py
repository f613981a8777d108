"""The command-line interface: the only layer that prints or exits."""

from fluxmirror.cli.app import main

__all__ = ["main"]
