"""Go struct decoding and encoding as Helm's metadata goes through it: sigs.k8s.io/yaml in, encoding/json out.

fluxmirror publishes Helm charts with the config blob Helm would build, and that blob is Helm's
`Chart.yaml` metadata after a round trip through Go structs, so its bytes follow these rules.

After go-yaml built a generic tree (`yaml_v2`), sigs.k8s.io/yaml walks it beside the target struct,
stringifying numbers and booleans that land in string fields (`version: 1.10` → `"1.1"`), re-encodes
it as JSON, and `encoding/json` decodes that into the struct: keys matched case-insensitively, unknown
keys dropped, keys visited in sorted order, the first type mismatch reported. Decoding always merges
into an existing value, as Go does, because Helm unmarshals `requirements.yaml` over the metadata
`Chart.yaml` produced.

Go values are modelled as plain Python values: string → str, bool → bool, slice/map/pointer → list,
dict or None (nil), struct → dict keyed by JSON field name, interface{} → the generic JSON value.
"""

from __future__ import annotations

import enum
import math
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from fluxmirror.gocompat.encoding_json import format_json_float64, go_json
from fluxmirror.gocompat.strconv import format_float32_g
from fluxmirror.gocompat.yaml_v2 import DecodeError, parse

__all__ = ["Field", "GoType", "Kind", "marshal", "unmarshal", "zero"]

_MAX_NODES: Final = 1_000_000  # more than that only comes from alias expansion (a "billion laughs" file)


class Kind(enum.Enum):
    """The shapes of Go type the chart metadata uses; each decodes, zeroes and encodes its own way."""

    STRING = "string"
    BOOL = "bool"
    SLICE = "slice"
    MAP = "map"  # map[string]<elem>
    POINTER = "pointer"  # pointer to a struct
    STRUCT = "struct"
    ANY = "any"  # interface{}


@dataclass(frozen=True, slots=True)
class Field:
    """A struct field: its JSON name and whether the tag says `omitempty`."""

    name: str
    type: GoType
    omitempty: bool = True


@dataclass(frozen=True, slots=True)
class GoType:
    """A Go type as far as decoding and encoding need it; `go_name` is how Go prints it in errors."""

    kind: Kind
    go_name: str
    elem: GoType | None = None
    fields: tuple[Field, ...] = ()
    _exact: dict[str, Field] = field(default_factory=dict, init=False, repr=False, compare=False)
    _folded: dict[str, Field] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for f in self.fields:
            self._exact[f.name] = f
            self._folded.setdefault(_fold(f.name), f)

    def lookup(self, key: str) -> Field | None:
        """The field `encoding/json` decodes `key` into: exact name first, then case-folded."""
        return self._exact.get(key) or self._folded.get(_fold(key))

    @property
    def struct_name(self) -> str:
        return self.go_name.rpartition(".")[2]


# Go folds ASCII letters, plus the Kelvin sign and long s onto K and S; nothing else can meet an ASCII name.
_FOLD: Final = {ord(c): c.upper() for c in string.ascii_lowercase} | {0x212A: "K", 0x017F: "S"}


def _fold(name: str) -> str:
    return name.translate(_FOLD)


def zero(t: GoType) -> Any:
    """Go's zero value of `t`."""
    if t.kind is Kind.STRING:
        return ""
    if t.kind is Kind.BOOL:
        return False
    if t.kind is Kind.STRUCT:
        return {f.name: zero(f.type) for f in t.fields}
    return None


# --- sigs.k8s.io/yaml: YAML tree → JSON-able tree, guided by the target type --------------------------


class _Budget:
    def __init__(self) -> None:
        self.left = _MAX_NODES

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise DecodeError("error converting YAML to JSON: yaml: document contains excessive aliasing")


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int) and -(1 << 63) <= key < (1 << 63):
        return str(key)
    if isinstance(key, float):
        text = format_float32_g(key)
        return {"+Inf": ".inf", "-Inf": "-.inf", "NaN": ".nan"}.get(text, text)
    raise DecodeError(f"error converting YAML to JSON: unsupported map key of type: {type(key).__name__}")


def _jsonable(value: Any, target: GoType | None, budget: _Budget) -> Any:
    budget.spend()
    if target is not None and target.kind is Kind.POINTER:
        target = target.elem
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            text = _key_text(key)
            sub: GoType | None = None
            if target is not None and target.kind is Kind.STRUCT:
                found = target.lookup(text)
                sub = found.type if found is not None else None
            elif target is not None and target.kind is Kind.MAP:
                sub = target.elem
            out[text] = _jsonable(item, sub, budget)
        return out
    if isinstance(value, list):
        sub = target.elem if target is not None and target.kind is Kind.SLICE else None
        return [_jsonable(item, sub, budget) for item in value]
    if target is not None and target.kind is Kind.STRING:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return format_float32_g(value)
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise DecodeError(f"error converting YAML to JSON: unsupported YAML value of type {type(value).__name__}")


def _floats(value: Any) -> Iterator[float]:
    """Floats in the order `json.Marshal` meets them (map keys sorted)."""
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _floats(value[key])
    elif isinstance(value, list):
        for item in value:
            yield from _floats(item)
    elif isinstance(value, float):
        yield value


# --- encoding/json: decode into an existing Go value ---------------------------------------------------


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    return "bool" if isinstance(value, bool) else "number"


@dataclass(frozen=True, slots=True)
class _Where:
    struct: str = ""
    path: tuple[str, ...] = ()


def _type_error(value: Any, t: GoType, where: _Where) -> DecodeError:
    kind = _json_kind(value)
    target = f"Go struct field {where.struct}.{'.'.join(where.path)}" if where.struct else "Go value"
    return DecodeError(
        f"error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {kind} into {target} of type {t.go_name}"
    )


def _generic(value: Any) -> Any:
    """A JSON value decoded into interface{}: numbers become float64."""
    if isinstance(value, dict):
        return {key: _generic(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_generic(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _decode(value: Any, t: GoType, current: Any, where: _Where) -> Any:
    if value is None:  # null zeroes references and leaves plain values alone
        return None if t.kind in (Kind.SLICE, Kind.MAP, Kind.POINTER, Kind.ANY) else current
    if t.kind is Kind.ANY:
        return _generic(value)
    if t.kind is Kind.STRING:
        if not isinstance(value, str):
            raise _type_error(value, t, where)
        return value
    if t.kind is Kind.BOOL:
        if not isinstance(value, bool):
            raise _type_error(value, t, where)
        return value
    if t.kind is Kind.POINTER:
        assert t.elem is not None
        target = current if current is not None else zero(t.elem)
        return _decode(value, t.elem, target, where)
    if t.kind is Kind.SLICE:
        assert t.elem is not None
        if not isinstance(value, list):
            raise _type_error(value, t, where)
        old = current or []
        return [_decode(item, t.elem, old[i] if i < len(old) else zero(t.elem), where) for i, item in enumerate(value)]
    if not isinstance(value, dict):
        raise _type_error(value, t, where)
    if t.kind is Kind.MAP:
        assert t.elem is not None
        out = current if current is not None else {}
        for key in sorted(value):
            out[key] = _decode(value[key], t.elem, zero(t.elem), where)
        return out
    for key in sorted(value):  # Kind.STRUCT
        found = t.lookup(key)
        if found is not None:
            inner = _Where(t.struct_name, (*where.path, found.name))
            current[found.name] = _decode(value[key], found.type, current[found.name], inner)
    return current


def unmarshal(data: bytes, t: GoType, current: dict[str, Any]) -> None:
    """Decode the YAML document `data` into the struct value `current` of type `t`, in place."""
    document = parse(data)
    try:
        jsonable = _jsonable(document, t, _Budget())
    except RecursionError:
        raise DecodeError("error converting YAML to JSON: yaml: exceeded max depth") from None
    for number in _floats(jsonable):
        if math.isnan(number) or math.isinf(number):
            text = "NaN" if math.isnan(number) else ("+Inf" if number > 0 else "-Inf")
            raise DecodeError(f"error converting YAML to JSON: json: unsupported value: {text}")
    _decode(jsonable, t, current, _Where())


# --- encoding/json: Marshal with omitempty --------------------------------------------------------------


def _empty(value: Any) -> bool:
    return value is None or value is False or (isinstance(value, str | list | dict) and len(value) == 0)


def _encodable(value: Any, t: GoType) -> Any:
    if value is None:
        return None
    if t.kind is Kind.ANY:
        return _encodable_generic(value)
    if t.kind in (Kind.STRING, Kind.BOOL):
        return value
    if t.kind is Kind.STRUCT:
        return {
            f.name: _encodable(value[f.name], f.type) for f in t.fields if not (f.omitempty and _empty(value[f.name]))
        }
    elem = t.elem
    assert elem is not None, "slices, maps and pointers always have an element type"
    if t.kind is Kind.POINTER:
        return _encodable(value, elem)
    if t.kind is Kind.SLICE:
        return [_encodable(item, elem) for item in value]
    return {key: _encodable(value[key], elem) for key in sorted(value)}


def _encodable_generic(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _encodable_generic(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_encodable_generic(item) for item in value]
    if isinstance(value, float | int) and not isinstance(value, bool):
        return msgspec.Raw(format_json_float64(float(value)).encode())
    return value


def marshal(value: Any, t: GoType) -> bytes:
    """`json.Marshal` of `value`: struct fields in declaration order, map keys sorted, Go's escaping."""
    return go_json(_encodable(value, t))
