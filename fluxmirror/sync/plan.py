"""Planning an artifacts entry: list the source's tags and select the ones to mirror.

Planning is not bound by `--timeout` (clarifications §2.2); its failure fails the whole entry,
reported with an empty `tags` list while the other entries still run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fluxmirror.api.config import Artifact, Selector
from fluxmirror.errors import FluxMirrorError
from fluxmirror.oci.client import Registries
from fluxmirror.oci.reference import Repository, parse_repository
from fluxmirror.selection.tags import select_tags
from fluxmirror.sync.logfmt import kv

__all__ = ["ArtifactEntry", "PlanError", "plan_artifact"]

log = logging.getLogger(__name__)


class PlanError(FluxMirrorError):
    """The entry could not be planned; its message is the report's entry `error`."""


@dataclass(frozen=True, slots=True)
class ArtifactEntry:
    """An `artifacts[]` entry with its repositories parsed; `source`/`destination` are the config strings."""

    spec: Artifact
    source_repository: Repository
    destination_repository: Repository

    @classmethod
    def of(cls, spec: Artifact) -> ArtifactEntry:
        return cls(spec, parse_repository(spec.source), parse_repository(spec.destination))

    @property
    def source(self) -> str:
        return self.spec.source

    @property
    def destination(self) -> str:
        return self.spec.destination


async def plan_artifact(entry: ArtifactEntry, registries: Registries) -> list[str]:
    """The selected tags, highest first."""
    repository = entry.source_repository
    try:
        tags = await registries.client(repository.registry).list_tags(repository.path)
    except FluxMirrorError as exc:
        raise PlanError(f"list tags {entry.source}: {exc}") from exc
    selection = select_tags(tags, entry.spec.selector or Selector())
    for excluded in selection.excluded:
        log.info(kv("tag excluded by selector", source=entry.source, tag=excluded.tag, reason=excluded.reason))
    return selection.selected
