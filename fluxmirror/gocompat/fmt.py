"""Go's `fmt` verb `%v` applied to a decoded JSON value (`map[Action:pull Name:x]`).

go-containerregistry appends a registry error's `detail` to its message with `%v` after decoding
it into `interface{}`, and `flux mirror` reports carry that message, so fluxmirror prints the same
text: maps with sorted keys as `map[k:v …]`, slices as `[a b]`, null as `<nil>`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["format_v"]


def format_v(value: Any) -> str:
    """`fmt.Sprintf("%v", v)` for `v` a JSON document decoded by `encoding/json` into `interface{}`."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{key}:{format_v(value[key])}" for key in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(format_v(item) for item in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
