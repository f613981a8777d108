"""Helm chart packages, repository indexes and ``repositories.yaml`` files, built in memory.

Everything here mirrors what Helm itself writes, so a product test exercises the formats it will
meet in the wild:

* ``build_chart`` lays out a ``.tgz`` the way ``helm package`` (chartutil.Save) does: one
  ``<name>/`` directory, regular-file entries only (no directory entries), mode 0644, Chart.yaml
  with alphabetically sorted keys, and a gzip header carrying Helm's comment and extra field.
  Unlike Helm it pins every timestamp, so equal inputs give equal bytes and therefore equal digests.
* ``build_index`` / ``index_entry`` follow Helm's repository index (``apiVersion: v1``,
  ``entries``, ``generated``), with knobs for the odd shapes real repositories serve.
* ``large_index`` writes a multi-megabyte index by string formatting, because YAML dumping that
  much would take longer than the parse it is meant to measure.
* ``repositories_yaml`` writes Helm's ``repositories.yaml`` (repo.File).

Nothing here imports the product, so it can cross-check the product independently.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import struct
import tarfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

FIXED_MTIME = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp())
"""Modification time of every tar entry: ``helm package`` stamps ``time.Now()``, which would break determinism."""
FIXED_CREATED = "2024-01-01T00:00:00Z"
"""``created`` of generated index entries, in Helm's RFC 3339 form."""
FIXED_GENERATED = "2024-01-01T00:00:00Z"
"""``generated`` of generated indexes."""
DEFAULT_DESCRIPTION = "A Helm chart for fluxmirror tests"
DEFAULT_VALUES = b"replicaCount: 1\nmessage: hello\n"
DEFAULT_TEMPLATE = (
    b"apiVersion: v1\n"
    b"kind: ConfigMap\n"
    b"metadata:\n"
    b"  name: {{ .Release.Name }}-{{ .Chart.Name }}\n"
    b"data:\n"
    b"  message: {{ .Values.message | quote }}\n"
)

# Helm's gzip header (pkg/chartutil/save.go): a fixed "extra" field and the comment "Helm".
_HELM_GZIP_EXTRA = b"+aHR0cHM6Ly95b3V0dS5iZS96OVV6MWljandyTQo="
_HELM_GZIP_COMMENT = b"Helm"
_GZIP_FEXTRA, _GZIP_FCOMMENT = 0x04, 0x10
_GZIP_OS_UNKNOWN = 255  # what Go's compress/gzip writes
_TAR_BLOCK = tarfile.BLOCKSIZE

# repo.Entry fields in Helm's order; Helm writes all of them (no omitempty).
_REPOSITORY_DEFAULTS: dict[str, Any] = {
    "name": "",
    "url": "",
    "username": "",
    "password": "",
    "certFile": "",
    "keyFile": "",
    "caFile": "",
    "insecure_skip_tls_verify": False,
    "pass_credentials_all": False,
}


def sha256_hex(data: bytes) -> str:
    """The digest form Helm puts in index.yaml: bare hex, no ``sha256:`` prefix."""
    return hashlib.sha256(data).hexdigest()


def chart_digest(data: bytes) -> str:
    """The ``sha256:<hex>`` form the product reports for a chart's source digest."""
    return "sha256:" + sha256_hex(data)


def chart_filename(name: str, version: str) -> str:
    """``<name>-<version>.tgz``, the file name ``helm package`` and ``helm repo index`` use."""
    return f"{name}-{version}.tgz"


def chart_yaml(
    name: str,
    version: str,
    *,
    app_version: str | None = None,
    description: str | None = DEFAULT_DESCRIPTION,
    api_version: str | None = "v2",
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """Chart.yaml as Helm re-serialises it when packaging: keys sorted, empty values left out.

    ``None`` for ``api_version``/``description`` leaves the key out (e.g. to test the ``v1``
    default); ``extra`` adds or overrides keys, unknown ones included, and a ``None`` value there
    removes a key.
    """
    metadata: dict[str, Any] = {"name": name, "version": version}
    if api_version is not None:
        metadata["apiVersion"] = api_version
    if app_version is not None:
        metadata["appVersion"] = app_version
    if description is not None:
        metadata["description"] = description
    for key, value in (extra or {}).items():
        if value is None:
            metadata.pop(key, None)
        else:
            metadata[key] = value
    return yaml.safe_dump(metadata, sort_keys=True, default_flow_style=False, allow_unicode=True).encode()


def build_chart(
    name: str,
    version: str,
    *,
    app_version: str | None = None,
    description: str | None = DEFAULT_DESCRIPTION,
    chart_yaml_extra: Mapping[str, Any] | None = None,
    api_version: str | None = "v2",
    files: Mapping[str, bytes | str | None] | None = None,
    requirements: Sequence[Mapping[str, Any]] | None = None,
    raw_chart_yaml: bytes | str | None = None,
    directory: str | None = None,
    mtime: int = FIXED_MTIME,
) -> bytes:
    """A chart package laid out like ``helm package`` output, byte-for-byte reproducible.

    ``files`` maps paths relative to the chart root to contents; it adds files or replaces the
    defaults (``values.yaml``, ``templates/configmap.yaml``), and ``None`` removes one.
    ``requirements`` are dependency mappings: for ``api_version="v1"`` they go to
    ``requirements.yaml`` (Helm 2 layout), otherwise into Chart.yaml's ``dependencies``.
    ``raw_chart_yaml`` replaces the generated Chart.yaml verbatim, for metadata Helm would never
    write; ``directory`` renames the top-level directory, for archives that break the convention.
    """
    extra = dict(chart_yaml_extra or {})
    contents: dict[str, bytes] = {"values.yaml": DEFAULT_VALUES, "templates/configmap.yaml": DEFAULT_TEMPLATE}
    if requirements is not None:
        if api_version == "v1":
            contents["requirements.yaml"] = yaml.safe_dump(
                {"dependencies": [dict(dependency) for dependency in requirements]}, sort_keys=False
            ).encode()
        else:
            extra.setdefault("dependencies", [dict(dependency) for dependency in requirements])
    if raw_chart_yaml is not None:
        contents["Chart.yaml"] = raw_chart_yaml.encode() if isinstance(raw_chart_yaml, str) else raw_chart_yaml
    else:
        contents["Chart.yaml"] = chart_yaml(
            name, version, app_version=app_version, description=description, api_version=api_version, extra=extra
        )
    for path, data in (files or {}).items():
        if data is None:
            contents.pop(path, None)
        else:
            contents[path] = data.encode() if isinstance(data, str) else data
    top = directory if directory is not None else name
    return _helm_gzip(_tar(((f"{top}/{path}", contents[path]) for path in sorted(contents, key=_save_order)), mtime))


def _save_order(path: str) -> tuple[int, str]:
    """chartutil.Save's order: Chart.yaml, Chart.lock, values, schema, templates, other files, subcharts."""
    fixed = {"Chart.yaml": 0, "Chart.lock": 1, "values.yaml": 2, "values.schema.json": 3}
    if path in fixed:
        return fixed[path], path
    if path.startswith("templates/"):
        return 4, path
    if path.startswith("charts/"):
        return 6, path
    return 5, path


def _tar(members: Iterable[tuple[str, bytes]], mtime: int) -> bytes:
    """Regular-file entries only, then the two zero blocks Go's tar.Writer ends with (no record padding)."""
    out = io.BytesIO()
    for path, data in members:
        info = tarfile.TarInfo(path)
        info.size = len(data)
        info.mode = 0o644
        info.mtime = mtime
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.type = tarfile.REGTYPE
        out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        out.write(data)
        out.write(b"\0" * (-len(data) % _TAR_BLOCK))
    out.write(b"\0" * (2 * _TAR_BLOCK))
    return out.getvalue()


def _helm_gzip(payload: bytes) -> bytes:
    """gzip with Helm's header (extra field + comment, mtime 0, OS unknown); Python's gzip cannot write those."""
    header = bytes([0x1F, 0x8B, zlib.DEFLATED, _GZIP_FEXTRA | _GZIP_FCOMMENT]) + struct.pack("<I", 0)
    header += bytes([0, _GZIP_OS_UNKNOWN]) + struct.pack("<H", len(_HELM_GZIP_EXTRA)) + _HELM_GZIP_EXTRA
    header += _HELM_GZIP_COMMENT + b"\0"
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = compressor.compress(payload) + compressor.flush()
    trailer = struct.pack("<II", zlib.crc32(payload), len(payload) & 0xFFFFFFFF)
    return header + body + trailer


def index_entry(
    name: str,
    version: str,
    *,
    data: bytes | None = None,
    urls: Sequence[str] | None = None,
    digest: str | None = None,
    omit_digest: bool = False,
    app_version: str | None = None,
    api_version: str | None = "v2",
    description: str | None = DEFAULT_DESCRIPTION,
    created: str | None = FIXED_CREATED,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One chart version of an index, shaped like ``helm repo index`` writes it.

    ``urls`` defaults to the relative ``<name>-<version>.tgz``. The digest is ``digest`` if given,
    else the SHA-256 of ``data`` if given, else left out (as are ``None`` fields, so
    ``api_version=None`` makes an entry without ``apiVersion``). ``extra`` adds keys or, with
    ``None`` values, removes them.
    """
    entry: dict[str, Any] = {"name": name, "version": version}
    if api_version is not None:
        entry["apiVersion"] = api_version
    if app_version is not None:
        entry["appVersion"] = app_version
    if description is not None:
        entry["description"] = description
    if created is not None:
        entry["created"] = created
    if not omit_digest and (digest is not None or data is not None):
        entry["digest"] = digest if digest is not None else sha256_hex(data or b"")
    entry["urls"] = list(urls) if urls is not None else [chart_filename(name, version)]
    for key, value in (extra or {}).items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return entry


def build_index(
    entries: Iterable[Mapping[str, Any]] = (),
    *,
    raw_entries: Mapping[str, Any] | None = None,
    api_version: str | None = "v1",
    generated: str | None = FIXED_GENERATED,
    extra: Mapping[str, Any] | None = None,
    as_json: bool = False,
) -> bytes:
    """An index.yaml (or its JSON twin) with ``entries`` grouped by their ``name``, in the order given.

    Versions are not re-sorted, so a test can serve them in any order the product must cope with.
    ``raw_entries`` injects shapes no well-formed entry has: a list extends that chart's versions
    (e.g. ``{"app": [None, {"version": "1.0.0"}]}``), anything else replaces the chart's value
    (e.g. ``{"broken": None}``). ``api_version=None`` leaves out the top-level ``apiVersion``;
    ``extra`` adds top-level keys such as ``serverInfo``.
    """
    grouped: dict[str, Any] = {}
    for entry in entries:
        grouped.setdefault(entry["name"], []).append(dict(entry))
    for name, value in (raw_entries or {}).items():
        if isinstance(value, list) and isinstance(grouped.get(name), list):
            grouped[name].extend(value)
        else:
            grouped[name] = value
    document: dict[str, Any] = {}
    if api_version is not None:
        document["apiVersion"] = api_version
    document["entries"] = grouped
    if generated is not None:
        document["generated"] = generated
    document.update(extra or {})
    if as_json:
        return json.dumps(document, indent=2).encode()
    # Helm marshals through JSON, so every mapping comes out with sorted keys.
    return yaml.safe_dump(document, sort_keys=True, default_flow_style=False, allow_unicode=True).encode()


def large_index_version(number: int) -> str:
    """The version string of the ``number``-th version (0-based) of each chart in ``large_index``."""
    return f"{number // 100}.{number // 10 % 10}.{number % 10}"


def large_index(
    charts: int = 800, versions: int = 20, *, url_prefix: str = "", name_format: str = "chart-{:04d}"
) -> bytes:
    """A big, well-formed index (defaults: 16,000 entries, about 4.5 MB) in well under a second.

    Chart ``i`` is named ``name_format.format(i)``; its versions are ``large_index_version(j)`` for
    ``j < versions``, listed highest first as Helm writes them; URLs are
    ``<url_prefix><name>-<version>.tgz``; digests are the SHA-256 of ``"<name>-<version>"`` (there
    are no tarballs behind them). The text is formatted directly in the layout PyYAML/Helm produce.
    """
    parts = ["apiVersion: v1\nentries:\n"]
    for i in range(charts):
        name = name_format.format(i)
        parts.append(f"  {name}:\n")
        for j in reversed(range(versions)):
            version = large_index_version(j)
            file = chart_filename(name, version)
            parts.append(
                f"  - apiVersion: v2\n"
                f"    appVersion: {version}\n"
                f"    created: '{FIXED_CREATED}'\n"
                f"    description: Generated chart {name} for index parse-speed tests\n"
                f"    digest: {sha256_hex(f'{name}-{version}'.encode())}\n"
                f"    name: {name}\n"
                f"    urls:\n"
                f"    - {url_prefix}{file}\n"
                f"    version: {version}\n"
            )
    parts.append(f"generated: '{FIXED_GENERATED}'\n")
    return "".join(parts).encode()


def repositories_yaml(entries: Iterable[Mapping[str, Any]], *, complete: bool = True) -> bytes:
    """Helm's repositories.yaml: ``apiVersion: ""``, ``generated`` and one item per repository.

    With ``complete`` every field Helm writes is present (empty or false unless given), as in a file
    ``helm repo add`` produced; a ``None`` value leaves that key out, for hand-written files.
    Path-like values (``pathlib.Path``) are written as strings.
    """
    repositories = []
    for entry in entries:
        item: dict[str, Any] = dict(_REPOSITORY_DEFAULTS) if complete else {}
        item.update(entry)
        repositories.append(
            {
                key: os.fspath(value) if isinstance(value, os.PathLike) else value
                for key, value in item.items()
                if value is not None
            }
        )
    document = {"apiVersion": "", "generated": "0001-01-01T00:00:00Z", "repositories": repositories}
    return yaml.safe_dump(document, sort_keys=True, default_flow_style=False).encode()
