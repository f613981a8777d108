"""The Helm OCI config blob of a chart archive: `Chart.yaml` read, normalised, validated and written
exactly as Helm writes it (clarifications §1.2), so a mirrored chart is indistinguishable from one
`helm push` made.

Helm decodes `Chart.yaml` by converting YAML to JSON and matching field names case-insensitively;
string fields keep the scalar's text (`version: 1.10` stays "1.10"). libyaml's base loader keeps
every scalar as text too, so it stands in for that conversion; unknown keys are dropped.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

import yaml

from fluxmirror.errors import FluxMirrorError
from fluxmirror.gojson import go_json
from fluxmirror.selection.semver import InvalidVersionError, Version

__all__ = ["ChartError", "LoadedChart", "load_chart"]

_Loader: Final = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
_MAX_METADATA_BYTES: Final = 5 * 1024 * 1024
_NULLS: Final = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE: Final = frozenset({"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"})
_FALSE: Final = frozenset({"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N"})
_ALIAS: Final = re.compile(r"[a-zA-Z0-9_-]+")
# Go's unicode.IsSpace beyond ASCII: NEL, NBSP and the Unicode White_Space characters.
_GO_SPACES: Final = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(code) for code in range(0x2000, 0x200B)
)

# Metadata fields in Go struct order, with their kind: s string, l []string, b bool, m map, M maintainers, D deps.
_FIELDS: Final = (
    ("name", "s"),
    ("home", "s"),
    ("sources", "l"),
    ("version", "s"),
    ("description", "s"),
    ("keywords", "l"),
    ("maintainers", "M"),
    ("icon", "s"),
    ("apiVersion", "s"),
    ("condition", "s"),
    ("tags", "s"),
    ("appVersion", "s"),
    ("deprecated", "b"),
    ("annotations", "m"),
    ("kubeVersion", "s"),
    ("dependencies", "D"),
    ("type", "s"),
)
_SANITISED: Final = frozenset({"name", "description", "home", "icon", "condition", "tags", "appVersion", "kubeVersion"})
_MAINTAINER_FIELDS: Final = (("name", "s"), ("email", "s"), ("url", "s"))
_DEPENDENCY_FIELDS: Final = (
    ("name", "s"),
    ("version", "s"),
    ("repository", "s"),
    ("condition", "s"),
    ("tags", "l"),
    ("enabled", "b"),
    ("import-values", "a"),
    ("alias", "s"),
    ("depends-on", "l"),
)


class ChartError(FluxMirrorError):
    """The archive is not a chart Helm would load; worded as Helm's loader words it."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"load chart archive: {reason}")


@dataclass(frozen=True, slots=True)
class LoadedChart:
    name: str
    version: str
    config: bytes


def _sanitise(text: str) -> str:
    """Helm's sanitizeString: whitespace becomes a space, non-printable characters go."""
    return "".join(
        " " if char in _GO_SPACES else char
        for char in text
        if char in _GO_SPACES or unicodedata.category(char)[0] in "LMNPS"
    )


def _fold(document: dict[str, Any], fields: tuple[tuple[str, str], ...], where: str) -> dict[str, Any]:
    """Pick known fields by case-insensitive name (an exact match wins) and convert them to their kinds."""
    by_lower: dict[str, str] = {}
    for key in document:
        lowered = str(key).lower()
        if lowered not in by_lower or str(key) in {name for name, _ in fields}:
            by_lower[lowered] = str(key)
    picked: dict[str, Any] = {}
    for name, kind in fields:
        found = by_lower.get(name.lower())
        if found is not None:
            picked[name] = _convert(document[found], kind, f"{where}.{name}")
    return picked


def _convert(value: Any, kind: str, where: str) -> Any:
    if isinstance(value, str) and value in _NULLS and kind != "s":
        return None
    if kind == "s":
        if isinstance(value, dict | list):
            raise ChartError(f"cannot load Chart.yaml: {where} must be a string")
        return "" if value in ("~", "null", "Null", "NULL") else value
    if kind == "b":
        if isinstance(value, str) and (value in _TRUE or value in _FALSE):
            return value in _TRUE
        raise ChartError(f"cannot load Chart.yaml: {where} must be a boolean")
    if kind == "l":
        if not isinstance(value, list) or any(isinstance(item, dict | list) for item in value):
            raise ChartError(f"cannot load Chart.yaml: {where} must be a list of strings")
        return ["" if item in _NULLS else item for item in value if isinstance(item, str)]
    if kind == "m":
        if not isinstance(value, dict) or any(isinstance(item, dict | list) for item in value.values()):
            raise ChartError(f"cannot load Chart.yaml: {where} must be a map of strings")
        return {str(key): item for key, item in value.items()}
    if kind == "a":
        if not isinstance(value, list):
            raise ChartError(f"cannot load Chart.yaml: {where} must be a list")
        return value
    if not isinstance(value, list):
        raise ChartError(f"cannot load Chart.yaml: {where} must be a list")
    fields = _MAINTAINER_FIELDS if kind == "M" else _DEPENDENCY_FIELDS
    return [
        None if isinstance(item, str) and item in _NULLS else _fold(_mapping(item, where), fields, where)
        for item in value
    ]


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ChartError(f"cannot load Chart.yaml: {where} items must be maps")
    return value


def _sorted_maps(value: Any) -> Any:
    """Go writes map keys in byte order; lists keep their order."""
    if isinstance(value, dict):
        return {key: _sorted_maps(value[key]) for key in sorted(value, key=lambda key: key.encode())}
    if isinstance(value, list):
        return [_sorted_maps(item) for item in value]
    return value


def _compact(item: dict[str, Any], always: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Go's omitempty: drop empty strings, lists, maps, false and null, except the `always` keys."""
    return {key: value for key, value in item.items() if key in always or value not in ("", None, False, [], {})}


def _validate(metadata: dict[str, Any]) -> None:
    name, version = metadata.get("name", ""), metadata.get("version", "")
    if not name:
        raise ChartError("validation: chart.metadata.name is required")
    if name != name.rstrip("/").rpartition("/")[2] or name in (".", ".."):
        raise ChartError(f'validation: chart.metadata.name "{name}" is invalid')
    if not version:
        raise ChartError("validation: chart.metadata.version is required")
    try:
        Version.parse(version)
    except InvalidVersionError:
        raise ChartError(f'validation: chart.metadata.version "{version}" is invalid') from None
    if metadata.get("type", "") not in ("", "application", "library"):
        raise ChartError("validation: chart.metadata.type must be application or library")
    if any(item is None for item in metadata.get("maintainers") or []):
        raise ChartError("validation: chart.metadata.maintainers must not contain empty or null nodes")
    seen: set[str] = set()
    for dependency in metadata.get("dependencies") or []:
        if dependency is None:
            raise ChartError("validation: dependencies must not contain empty or null nodes")
        alias = dependency.get("alias", "")
        if alias and not _ALIAS.fullmatch(alias):
            raise ChartError(
                f'validation: dependency "{dependency.get("name", "")}" has disallowed characters in the alias'
            )
        key = alias or dependency.get("name", "")
        if key in seen:
            raise ChartError(f'validation: more than one dependency with name or alias "{key}"')
        seen.add(key)


def _normalise(metadata: dict[str, Any]) -> None:
    for key in _SANITISED & metadata.keys():
        metadata[key] = _sanitise(metadata[key])
    for key in ("sources", "keywords"):
        if metadata.get(key):
            metadata[key] = [_sanitise(item) for item in metadata[key]]
    for maintainer in metadata.get("maintainers") or []:
        for key in ("name", "email", "url"):
            if maintainer and key in maintainer:
                maintainer[key] = _sanitise(maintainer[key])
    for dependency in metadata.get("dependencies") or []:
        for key in ("name", "version", "repository", "condition"):
            if dependency and key in dependency:
                dependency[key] = _sanitise(dependency[key])
        if dependency and dependency.get("tags"):
            dependency["tags"] = [_sanitise(tag) for tag in dependency["tags"]]


def _serialise(metadata: dict[str, Any]) -> bytes:
    document = _compact(metadata)
    if "maintainers" in document:
        document["maintainers"] = [_compact(item) for item in document["maintainers"]]
    if "dependencies" in document:
        document["dependencies"] = [
            _compact(
                {**item, "name": item.get("name", ""), "repository": item.get("repository", "")},
                frozenset({"name", "repository"}),
            )
            for item in document["dependencies"]
        ]
    return go_json(_sorted_maps_in(document))


def _sorted_maps_in(document: dict[str, Any]) -> dict[str, Any]:
    """Sort the keys of nested maps (annotations, import-values) but keep the field order on top."""
    out = dict(document)
    if "annotations" in out:
        out["annotations"] = _sorted_maps(out["annotations"])
    if "dependencies" in out:
        out["dependencies"] = [
            {**item, "import-values": _sorted_maps(item["import-values"])} if "import-values" in item else item
            for item in out["dependencies"]
        ]
    return out


def _read_files(data: bytes) -> dict[str, bytes]:
    """Chart.yaml and requirements.yaml from the chart's top directory, read with bounded memory."""
    wanted = {"Chart.yaml", "requirements.yaml"}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=gzip.GzipFile(fileobj=io.BytesIO(data)), mode="r|") as archive:
            for member in archive:
                name = member.name.replace("\\", "/")
                top, _, rest = name.partition("/")
                if not member.isfile():
                    continue
                if rest.startswith("..") or name.startswith("/"):
                    raise ChartError("chart illegally references parent directory")
                if not rest and top == "Chart.yaml":
                    raise ChartError("chart yaml not in base directory")
                if rest in wanted and rest not in found:
                    if member.size > _MAX_METADATA_BYTES:
                        raise ChartError(f"{rest} exceeds {_MAX_METADATA_BYTES} bytes")
                    stream = archive.extractfile(member)
                    found[rest] = stream.read() if stream is not None else b""
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ChartError(" ".join(str(exc).split()) or type(exc).__name__) from None
    return found


def _yaml(data: bytes, name: str) -> dict[str, Any]:
    try:
        document = yaml.load(data, Loader=_Loader)  # noqa: S506 - the base loader builds only str/list/dict
    except yaml.YAMLError as exc:
        raise ChartError(f"cannot load {name}: {' '.join(str(exc).split())}") from None
    if document is None or (isinstance(document, str) and document in _NULLS):
        return {}
    if not isinstance(document, dict):
        raise ChartError(f"cannot load {name}: not a map")
    return document


def load_chart(data: bytes) -> LoadedChart:
    """Read a chart archive's metadata and build its config blob; raises ChartError as Helm would fail."""
    files = _read_files(data)
    if "Chart.yaml" not in files:
        raise ChartError("Chart.yaml file is missing")
    metadata = _fold(_yaml(files["Chart.yaml"], "Chart.yaml"), _FIELDS, "metadata")
    if not metadata.get("apiVersion"):
        metadata["apiVersion"] = "v1"
    if metadata["apiVersion"] == "v1" and "requirements.yaml" in files:
        requirements = _yaml(files["requirements.yaml"], "requirements.yaml")
        picked = _fold(requirements, (("dependencies", "D"),), "requirements")
        metadata["dependencies"] = picked.get("dependencies") or []
    _normalise(metadata)
    _validate(metadata)
    return LoadedChart(name=metadata["name"], version=metadata["version"], config=_serialise(metadata))
