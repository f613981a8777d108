"""Planning a charts entry: read the repository's index once and select the versions to mirror.

Chart entries are built before anything runs, because a broken Helm `repositories.yaml` or TLS
setting is a configuration error of the whole run, not of one entry (docs/sync.md#helm-repositories).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from fluxmirror.api.config import Chart, Selector
from fluxmirror.errors import ConfigError, FluxMirrorError
from fluxmirror.helm.fetch import MAX_INDEX_BYTES, HelmFetcher, RepositoryAccess, resolve_reference
from fluxmirror.helm.index import ChartIndex, ChartVersion, IndexParseError, parse_index
from fluxmirror.helm.publish import destination_tag
from fluxmirror.helm.repositories import HelmRepository, find_repository, load_repositories, repositories_path
from fluxmirror.http.urls import redact_url
from fluxmirror.oci.reference import Repository, parse_repository
from fluxmirror.selection.tags import select_tags
from fluxmirror.sync.logfmt import kv
from fluxmirror.sync.plan import PlanError

__all__ = ["ChartEntry", "ChartPlan", "build_chart_entries", "plan_chart"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChartEntry:
    """A `charts[]` entry resolved for the run: report names, destination, and how to reach the source."""

    spec: Chart
    source: str  # `<repository URL>/<name>`, the report's entry source
    destination: str  # `<oci destination>/<name>` without the scheme
    destination_repository: Repository
    access: RepositoryAccess
    tls: ssl.SSLContext | None

    @property
    def name(self) -> str:
        return self.spec.name

    def destination_ref(self, version: str) -> str:
        return f"{self.destination}:{destination_tag(version)}"


@dataclass(frozen=True, slots=True)
class ChartPlan:
    """The index read at plan time and the selected versions, highest first."""

    index: ChartIndex
    versions: tuple[str, ...]


async def build_chart_entries(specs: Sequence[Chart]) -> list[ChartEntry]:
    """Resolve every chart entry, reading Helm's repositories.yaml once (only when there are charts)."""
    if not specs:
        return []
    path = repositories_path()
    try:
        repositories = await asyncio.to_thread(load_repositories, path)
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(
            f"build chart entry {_source(specs[0])}: load Helm repository config {path}: {reason}"
        ) from exc
    entries = []
    for spec in specs:
        try:
            entries.append(await _build(spec, find_repository(repositories, spec.source)))
        except FluxMirrorError as exc:
            raise ConfigError(f"build chart entry {_source(spec)}: {exc}") from exc
    return entries


def _source(spec: Chart) -> str:
    """The report's entry source: the repository URL without its trailing `/`, then the chart name."""
    return f"{spec.source.rstrip('/')}/{spec.name}"


async def _build(spec: Chart, repository: HelmRepository | None) -> ChartEntry:
    source = _source(spec)
    base = spec.destination.removeprefix("oci://").rstrip("/")
    destination = f"{base}/{spec.name}"
    access = RepositoryAccess(spec.source, repository)
    tls = await asyncio.to_thread(access.ssl_context)
    return ChartEntry(spec, source, destination, parse_repository(destination), access, tls)


async def plan_chart(entry: ChartEntry, fetcher: HelmFetcher) -> ChartPlan:
    """Fetch and parse the index, then select versions as the tag selector would (semver, highest first)."""
    url = resolve_reference(entry.access.source, "index.yaml")
    try:
        data = await fetcher.get(entry.access, url, MAX_INDEX_BYTES, entry.tls)
    except FluxMirrorError as exc:
        raise PlanError(str(exc)) from exc
    name = entry.name
    try:
        index = await asyncio.to_thread(parse_index, data, name)
    except IndexParseError as exc:
        raise PlanError(f"parse index from {redact_url(url)}: {exc}") from exc
    versions: Sequence[ChartVersion] = index.versions(name)
    if not versions:
        raise PlanError(f'chart "{name}" not found in index {redact_url(entry.access.source)}')
    selector = Selector(semver=entry.spec.version, limit=entry.spec.limit, sortBy="semver")
    selection = select_tags([found.version for found in versions], selector)
    for excluded in selection.excluded:
        log.info(kv("version excluded by selector", chart=name, version=excluded.tag, reason=excluded.reason))
    return ChartPlan(index, tuple(selection.selected))
