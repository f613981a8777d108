"""`--shard i/n` end to end: n processes, each running one shard of one config, mirror disjoint parts
that together are the whole run (docs/sync.md#sharding); `export` and `import` split the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import images
from harness.airgap import run, write_config
from harness.registry import Registry, RegistryFactory
from harness.runner import entry, finish, start, sync

from fluxmirror.oci.reference import parse_repository
from fluxmirror.sync.shard import shard_of

pytestmark = pytest.mark.registry

Row = tuple[str, str, str, str]  # source, destination, tag, digest


def seed(registry: Registry, repos: list[str]) -> dict[str, str]:
    """One small artifact per repository, tagged 1.0.0; its digest by repository."""
    digests = {}
    for number, repo in enumerate(repos):
        artifact = images.make_artifact(seed=900 + number)
        images.push(registry, repo, "1.0.0", artifact)
        digests[repo] = artifact.digest
    return digests


def rows(report: dict[str, Any]) -> set[Row]:
    return {
        (result["source"], result["destination"], row["tag"], row["digest"])
        for result in report["report"]["results"]
        for row in result["tags"]
    }


def test_three_shards_mirror_disjoint_parts_that_make_the_whole_run(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    target = registry_factory()
    repos = [f"{unique_repo}-{k}" for k in range(6)]
    digests = seed(registry, repos)
    entries = [entry(registry, target, repo) for repo in repos]

    whole = sync(tmp_path, entries, "--dry-run")
    assert whole.code == 0 and whole.summary["wouldCopy"] == 6

    processes = [start(tmp_path, entries, "--shard", f"{index}/3", capture=True) for index in range(3)]
    shards = [finish(process) for process in processes]
    parts: list[set[Row]] = []
    for index, shard in enumerate(shards):
        assert (shard.code, shard.stderr) == (0, ""), shard.stderr
        results = shard.report["report"]["results"]
        assert {row["status"] for result in results for row in result["tags"]} <= {"copied"}
        assert shard.summary["entries"] == len(results)
        assert all(shard_of(parse_repository(result["destination"]), 3) == index for result in results)
        parts.append(rows(shard.report))
    assert sum(len(part) for part in parts) == 6  # disjoint ...
    assert set().union(*parts) == rows(whole.report)  # ... and together the unsharded run's rows

    for repo in repos:
        assert images.get_manifest(target, repo, "1.0.0").digest == digests[repo]
    after = sync(tmp_path, entries)
    assert after.code == 0 and after.summary["skipped"] == 6  # no shard left anything behind


def test_sharded_export_and_import_split_by_the_same_destinations(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    far = registry_factory()
    repos = [f"{unique_repo}-{k}" for k in range(4)]
    digests = seed(registry, repos)
    config = write_config(tmp_path, [entry(registry, far, repo) for repo in repos])
    owner = {f"{far.host}/{repo}": shard_of(parse_repository(f"{far.host}/{repo}"), 2) for repo in repos}

    exported = []
    for index in range(2):
        archive = tmp_path / f"shard-{index}"
        report = run(tmp_path, "export", str(config), "--to", str(archive), "--shard", f"{index}/2", "-o", "json")
        assert report.code == 0, report.stderr
        destinations = [result["destination"] for result in report.report["report"]["results"]]
        assert destinations == [name for name in owner if owner[name] == index]
        exported.append(archive)

    imported_by: list[dict[str, Any]] = []
    for index, archive in enumerate(exported):
        other = run(tmp_path, "import", str(archive), "--shard", f"{1 - index}/2", "-o", "json")
        assert (other.code, other.report["report"]["results"]) == (0, [])  # the other shard has nothing here
        own = run(tmp_path, "import", str(archive), "--shard", f"{index}/2", "-o", "json")
        assert own.code == 0, own.stderr
        imported = {result["destination"]: result["tags"] for result in own.report["report"]["results"]}
        assert sorted(imported) == sorted(name for name in owner if owner[name] == index)
        assert all([row["status"] for row in tags] == ["copied"] for tags in imported.values())
        imported_by.append(imported)
    assert {repo: images.get_manifest(far, repo, "1.0.0").digest for repo in repos} == digests
    again = run(tmp_path, "import", str(exported[0]), "--shard", "0/2")  # text mode: the summary names the shard
    summary, counted = again.stdout.splitlines()[-2], len(imported_by[0])
    assert again.code == 0 and summary.startswith(
        f"Summary: {f'{counted} skipped' if counted else 'nothing to mirror'}"
    )
    assert summary.endswith(" (shard 0/2).")
