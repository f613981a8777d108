"""Config features this build cannot honour yet, refused when the config is loaded.

A config that needs them must fail at once with one line naming the field, not half-way through a
mirror, and never be silently ignored: an ignored `verify` block would mirror unverified content.
"""

from __future__ import annotations

from fluxmirror.api.config import Config
from fluxmirror.config.decode import one_line
from fluxmirror.errors import ConfigError

__all__ = ["check_supported"]


def check_supported(config: Config, *, syncing: bool) -> None:
    """Refuse what is not built; `syncing` adds the features only `sync` uses (verify)."""
    try:
        _check(config, syncing=syncing)
    except ConfigError as exc:
        raise ConfigError(one_line(exc.message)) from None


def _check(config: Config, *, syncing: bool) -> None:
    if syncing:
        for index, artifact in enumerate(config.artifacts):
            if artifact.verify is not None:
                raise ConfigError(f"artifacts[{index}]: verify is not supported yet by fluxmirror")
