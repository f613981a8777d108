"""The config pipeline of docs/config.md#load-pipeline: read, substitute, parse, validate, confine, normalise."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from fluxmirror.api.config import Config
from fluxmirror.config.decode import decode_config, one_line
from fluxmirror.config.envsubst import EnvsubstError, substitute
from fluxmirror.config.normalize import normalize_config
from fluxmirror.config.paths import confine_paths
from fluxmirror.config.validate import validate_config
from fluxmirror.errors import ConfigError
from fluxmirror.gocompat.oserror import path_error

__all__ = ["MAX_CONFIG_BYTES", "STDIN", "LoadedConfig", "load_config", "parse_config"]

STDIN = "-"
MAX_CONFIG_BYTES: Final = 10 * 1024 * 1024
"""The most a config may hold, read or substituted (docs/config.md#yaml-limits): room for some 90,000
entries, while `/dev/zero` or an endless pipe ends in one line instead of filling memory."""
_CHUNK: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated, normalised config and where it came from (`-` for stdin)."""

    config: Config
    source: str
    root: Path


def _too_large(source: str) -> ConfigError:
    name = "stdin" if source == STDIN else source
    return ConfigError(f"read config: {name} is larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB")


def _read_capped(stream: BinaryIO, source: str) -> bytes:
    """Read in pieces, so a small config never costs a buffer of the whole cap."""
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(_CHUNK):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_CONFIG_BYTES:
            raise _too_large(source)
    return b"".join(chunks)


def _read(source: str, stdin: BinaryIO | None) -> tuple[bytes, Path]:
    if source == STDIN:
        stream = stdin if stdin is not None else sys.stdin.buffer
        try:
            return _read_capped(stream, source), Path.cwd()
        except OSError as exc:
            raise ConfigError(f"read config: {path_error('read', 'stdin', exc)}") from None
    try:
        with Path(source).open("rb") as handle:
            return _read_capped(handle, source), Path(os.path.abspath(source)).parent
    except OSError as exc:
        raise ConfigError(f"open config: {path_error('open', source, exc)}") from None


def parse_config(text: str, *, root: Path, require_entries: bool, env: Mapping[str, str] | None = None) -> Config:
    """Turn config text into a validated, path-confined, normalised Config; `env=None` disables substitution.

    Normalising comes last, so validation and confinement messages quote the values as written (with
    control characters escaped, so that every failure stays one line).
    """
    try:
        if env is not None:
            try:
                text = substitute(text, env, limit=MAX_CONFIG_BYTES)
            except EnvsubstError as exc:
                raise ConfigError(str(exc)) from None
        config = decode_config(text)
        validate_config(config, require_entries=require_entries)
        return normalize_config(confine_paths(config, root))
    except ConfigError as exc:
        raise ConfigError(one_line(exc.message)) from None


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
