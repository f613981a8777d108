"""fluxmirror: a drop-in Python implementation of the `flux mirror` CLI."""

__version__ = "0.1.0"

__all__ = ["__version__"]
