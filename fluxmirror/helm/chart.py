"""A chart `.tgz` → the Helm OCI config blob, byte for byte what Helm would publish (docs/sync.md#chart-config-blob).

The config blob is `json.Marshal(chart.Metadata)` after Helm's loader ran: `Chart.yaml` (then, as Helm
does, any root `requirements.yaml`) decoded into the metadata struct, a missing `apiVersion` defaulted
to `v1`, and `Metadata.Validate()` applied — which also sanitises strings in place, so its effects are
part of the published bytes. A chart Helm refuses to load is refused here with Helm's reason.

The decoding rules live in `gocompat.yaml_v2`, the archive rules in `archive`; this module holds the metadata
schema (field order and `omitempty` come from Helm's struct tags) and the validation.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

from fluxmirror.errors import FluxMirrorError
from fluxmirror.gocompat.semver import InvalidVersionError, Version
from fluxmirror.gocompat.strconv import go_quote
from fluxmirror.gocompat.structs import Field, GoType, Kind, marshal, unmarshal, zero
from fluxmirror.gocompat.yaml_v2 import DecodeError
from fluxmirror.helm.archive import ArchiveError, read_root_files

__all__ = ["ChartError", "ChartMetadata", "load_chart", "sanitize"]

_STRING: Final = GoType(Kind.STRING, "string")
_STRINGS: Final = GoType(Kind.SLICE, "[]string", _STRING)
_BOOL: Final = GoType(Kind.BOOL, "bool")

_MAINTAINER: Final = GoType(
    Kind.STRUCT,
    "v2.Maintainer",
    fields=(Field("name", _STRING), Field("email", _STRING), Field("url", _STRING)),
)
_DEPENDENCY: Final = GoType(
    Kind.STRUCT,
    "v2.Dependency",
    fields=(
        Field("name", _STRING, omitempty=False),
        Field("version", _STRING),
        Field("repository", _STRING, omitempty=False),
        Field("condition", _STRING),
        Field("tags", _STRINGS),
        Field("enabled", _BOOL),
        Field("import-values", GoType(Kind.SLICE, "[]interface {}", GoType(Kind.ANY, "interface {}"))),
        Field("alias", _STRING),
        Field("depends-on", _STRINGS),
    ),
)
_MAINTAINER_PTR: Final = GoType(Kind.POINTER, "*v2.Maintainer", _MAINTAINER)
_DEPENDENCY_PTR: Final = GoType(Kind.POINTER, "*v2.Dependency", _DEPENDENCY)
METADATA: Final = GoType(
    Kind.STRUCT,
    "v2.Metadata",
    fields=(
        Field("name", _STRING),
        Field("home", _STRING),
        Field("sources", _STRINGS),
        Field("version", _STRING),
        Field("description", _STRING),
        Field("keywords", _STRINGS),
        Field("maintainers", GoType(Kind.SLICE, "[]*v2.Maintainer", _MAINTAINER_PTR)),
        Field("icon", _STRING),
        Field("apiVersion", _STRING),
        Field("condition", _STRING),
        Field("tags", _STRING),
        Field("appVersion", _STRING),
        Field("deprecated", _BOOL),
        Field("annotations", GoType(Kind.MAP, "map[string]string", _STRING)),
        Field("kubeVersion", _STRING),
        Field("dependencies", GoType(Kind.SLICE, "[]*v2.Dependency", _DEPENDENCY_PTR)),
        Field("type", _STRING),
    ),
)

_SANITIZED: Final = ("name", "description", "home", "icon", "condition", "tags", "appVersion", "kubeVersion")
_ALIAS: Final = re.compile(r"[a-zA-Z0-9_-]+")
_LATIN1_SPACES: Final = frozenset("\t\n\v\f\r \x85\xa0")


class ChartError(FluxMirrorError):
    """The chart archive cannot be turned into Helm metadata: unreadable, or refused by Helm's loader."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"load chart archive: {reason}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ChartMetadata:
    """The loaded chart: the identifying fields and the config blob to publish."""

    name: str
    version: str
    app_version: str
    api_version: str
    config: bytes


def _is_space(ch: str) -> bool:
    """Go's unicode.IsSpace: the Latin-1 spaces, then the White_Space property (= Z categories above Latin-1)."""
    return ch in _LATIN1_SPACES or (ord(ch) > 0xFF and unicodedata.category(ch) in ("Zs", "Zl", "Zp"))


def sanitize(text: str) -> str:
    """Helm's sanitizeString: any whitespace becomes a space, non-printable characters are dropped."""
    if text.isprintable():  # only printable characters and ASCII spaces: nothing to change
        return text
    return "".join(" " if _is_space(ch) else ch for ch in text if _is_space(ch) or ch.isprintable())


def _sanitize_list(items: list[str] | None) -> list[str] | None:
    return None if items is None else [sanitize(item) for item in items]


def _base(path: str) -> str:
    """Go's filepath.Base on a Unix system."""
    trimmed = path.rstrip("/")
    if not trimmed:
        return "/" if path else "."
    return trimmed.rpartition("/")[2]


def _invalid(message: str) -> ChartError:
    return ChartError(f"validation: {message}")


def _validate_dependencies(dependencies: list[dict[str, Any] | None]) -> None:
    seen: set[str] = set()
    for dependency in dependencies:
        if dependency is None:
            raise _invalid("dependencies must not contain empty or null nodes")
        for key in ("name", "version", "repository", "condition"):
            dependency[key] = sanitize(dependency[key])
        dependency["tags"] = _sanitize_list(dependency["tags"])
        dependency["depends-on"] = _sanitize_list(dependency["depends-on"])
        alias: str = dependency["alias"]
        if alias and _ALIAS.fullmatch(alias) is None:
            raise _invalid(f"dependency {go_quote(dependency['name'])} has disallowed characters in the alias")
        key = alias or dependency["name"]
        if key in seen:
            raise _invalid(f"more than one dependency with name or alias {go_quote(key)}")
        seen.add(key)


def _validate(metadata: dict[str, Any]) -> None:
    """Helm's Metadata.Validate(), including the in-place sanitising that changes the published bytes."""
    for key in _SANITIZED:
        metadata[key] = sanitize(metadata[key])
    metadata["sources"] = _sanitize_list(metadata["sources"])
    metadata["keywords"] = _sanitize_list(metadata["keywords"])
    name: str = metadata["name"]
    version: str = metadata["version"]
    if not metadata["apiVersion"]:
        raise _invalid("chart.metadata.apiVersion is required")
    if not name:
        raise _invalid("chart.metadata.name is required")
    if name in (".", ".."):
        raise _invalid(f"chart.metadata.name {go_quote(name)} is not allowed")
    if name != _base(name):
        raise _invalid(f"chart.metadata.name {go_quote(name)} is invalid")
    if not version:
        raise _invalid("chart.metadata.version is required")
    try:
        Version.parse(version)
    except InvalidVersionError:
        raise _invalid(f"chart.metadata.version {go_quote(version)} is invalid") from None
    if metadata["type"] not in ("", "application", "library"):
        raise _invalid("chart.metadata.type must be application or library")
    for maintainer in metadata["maintainers"] or []:
        if maintainer is None:
            raise _invalid("maintainers must not contain empty or null nodes")
        for key in ("name", "email", "url"):
            maintainer[key] = sanitize(maintainer[key])
    _validate_dependencies(metadata["dependencies"] or [])


def _decode(file: str, data: bytes, metadata: dict[str, Any]) -> None:
    try:
        unmarshal(data, METADATA, metadata)
    except DecodeError as exc:
        raise ChartError(f"cannot load {file}: {exc}") from None


def load_chart(data: bytes) -> ChartMetadata:
    """Load a chart `.tgz` as Helm's archive loader does and build its config blob.

    Raises ChartError (`load chart archive: <reason>`) for anything Helm would refuse to load.
    """
    try:
        files = read_root_files(data)
    except ArchiveError as exc:
        raise ChartError(str(exc)) from None
    if not (files.chart_yaml or files.requirements_yaml or files.has_requirements_lock):
        raise ChartError("Chart.yaml file is missing")
    metadata: dict[str, Any] = zero(METADATA)
    for raw in files.chart_yaml:
        _decode("Chart.yaml", raw, metadata)
        if not metadata["apiVersion"]:  # Helm 2 charts may omit it; Helm reads them as v1
            metadata["apiVersion"] = "v1"
    # Helm merges requirements.yaml into the same struct for every apiVersion (v2 charts get a warning).
    for raw in files.requirements_yaml:
        _decode("requirements.yaml", raw, metadata)
    _validate(metadata)
    return ChartMetadata(
        name=metadata["name"],
        version=metadata["version"],
        app_version=metadata["appVersion"],
        api_version=metadata["apiVersion"],
        config=marshal(metadata, METADATA),
    )
