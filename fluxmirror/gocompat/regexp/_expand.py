"""Go's `Regexp.Expand`: the templates of a selector's `extract`, filled from a match.

Go's template grammar has quirks a user's template may rely on (a malformed `$` stays text, `$1x`
names a group `1x`, unknown or unmatched groups give ""), so it is reproduced rather than mapped
onto Python's `\\g<…>` templates.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from fluxmirror.gocompat.regexp._engine import Match

__all__ = ["expand"]


@dataclass(frozen=True, slots=True)
class _Ref:
    number: int  # -1 when the reference is by name
    name: str


@functools.lru_cache(maxsize=256)
def _parse_template(template: str) -> tuple[str | _Ref, ...]:
    """Split a Go `Expand` template into literal text and group references."""
    parts: list[str | _Ref] = []
    literal: list[str] = []
    i = 0
    while (dollar := template.find("$", i)) >= 0:
        literal.append(template[i:dollar])
        i = dollar + 1
        if template.startswith("$", i):
            literal.append("$")
            i += 1
            continue
        ref = _parse_reference(template, i)
        if ref is None:  # malformed: Go keeps the `$` as text and carries on after it
            literal.append("$")
            continue
        ref_value, i = ref
        parts.append("".join(literal))
        literal = []
        parts.append(ref_value)
    literal.append(template[i:])
    parts.append("".join(literal))
    return tuple(part for part in parts if part != "")


def _parse_reference(template: str, i: int) -> tuple[_Ref, int] | None:
    brace = template.startswith("{", i)
    start = end = i + 1 if brace else i
    while end < len(template) and (template[end].isalpha() or template[end].isdecimal() or template[end] == "_"):
        end += 1
    name = template[start:end]
    if not name:
        return None
    if brace:
        if not template.startswith("}", end):
            return None
        end += 1
    number = -1
    if name.isascii() and name.isdigit() and len(name) <= 9 and not (len(name) > 1 and name[0] == "0"):
        number = int(name)
    return _Ref(number, name), end


def expand(template: str, match: Match) -> str:
    """Go's `Regexp.Expand`: `$1`, `$name`, `${name}`, `$$`; unknown or unmatched groups give ""."""
    out: list[str] = []
    names = match.regexp.subexp_names
    for part in _parse_template(template):
        if isinstance(part, str):
            out.append(part)
            continue
        if part.number >= 0:
            if part.number < len(names):
                out.append(match.group(part.number) or "")
            continue
        for index, name in enumerate(names):
            if name == part.name and (value := match.group(index)) is not None:
                out.append(value)
                break
    return "".join(out)
