"""The config pipeline of docs/config.md#load-pipeline: read, substitute, parse, validate, confine, normalise."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fluxmirror.api.config import Config
from fluxmirror.config.decode import decode_config
from fluxmirror.config.envsubst import EnvsubstError, substitute
from fluxmirror.config.normalize import normalize_config
from fluxmirror.config.paths import confine_paths
from fluxmirror.config.validate import validate_config
from fluxmirror.errors import ConfigError
from fluxmirror.gocompat.oserror import path_error

__all__ = ["STDIN", "LoadedConfig", "load_config", "parse_config"]

STDIN = "-"


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated, normalised config and where it came from (`-` for stdin)."""

    config: Config
    source: str
    root: Path


def _read(source: str, stdin: BinaryIO | None) -> tuple[bytes, Path]:
    if source == STDIN:
        stream = stdin if stdin is not None else sys.stdin.buffer
        return stream.read(), Path.cwd()
    try:
        with Path(source).open("rb") as handle:
            return handle.read(), Path(os.path.abspath(source)).parent
    except OSError as exc:
        raise ConfigError(f"open config: {path_error('open', source, exc)}") from None


def parse_config(text: str, *, root: Path, require_entries: bool, env: Mapping[str, str] | None = None) -> Config:
    """Turn config text into a validated, path-confined, normalised Config; `env=None` disables substitution.

    Normalising comes last, so validation and confinement messages quote the values as written.
    """
    if env is not None:
        try:
            text = substitute(text, env)
        except EnvsubstError as exc:
            raise ConfigError(str(exc)) from None
    config = decode_config(text)
    validate_config(config, require_entries=require_entries)
    return normalize_config(confine_paths(config, root))


def load_config(
    source: str,
    *,
    require_entries: bool,
    envsubst: bool = True,
    env: Mapping[str, str] | None = None,
    stdin: BinaryIO | None = None,
) -> LoadedConfig:
    """Load the config at `source` (a path, or `-` for stdin)."""
    raw, root = _read(source, stdin)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"parse config: the file is not UTF-8 text (byte {exc.start})") from None
    environment = (os.environ if env is None else env) if envsubst else None
    config = parse_config(text, root=root, require_entries=require_entries, env=environment)
    return LoadedConfig(config=config, source=source, root=root)
