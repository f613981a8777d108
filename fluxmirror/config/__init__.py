"""Config loading: read, `${VAR}` substitution, strict decoding, validation, path confinement and normalisation."""

from fluxmirror.config.load import STDIN, LoadedConfig, load_config, parse_config

__all__ = ["STDIN", "LoadedConfig", "load_config", "parse_config"]
