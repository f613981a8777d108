"""Round trips: what a 40 ms round trip costs a sync, where latency, not bytes, is the bill.

Two local docker-registry processes, each behind the test harness's fault proxy with a `Stall` of
40 ms on every request: each request pays one round trip before the registry sees it (connections
are reused, so there is no handshake to pay). Three scenarios:

* (n) a no-op re-sync of many entries of a few up-to-date tags each, with `--parallel-entries`
  1 (the reference's order) and 8, each also run straight to the registries (no delay): what is
  left there is the registries' and the process's own time, not latency;
* (l) a no-op re-sync of one entry of many up-to-date tags with `--concurrency 1`, across
  `--compare-concurrency` values: how wide the compare phase should be by default;
* (s) a copy of small images (three blobs of at most 300 KiB each) into an empty repository: the
  requests per method the destination saw, and the time.

Both ends of (n) and (l) are filled directly (no proxy) beforehand. Every run's summary is checked
before its time counts. The CLI runs as ``python -P -m fluxmirror`` with ``checkout`` on
``PYTHONPATH`` (this one by default), so another checkout's numbers can be taken the same way.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.copy import BenchmarkError, measure
from benchmarks.localenv import (
    REPO_ROOT,
    FaultProxy,
    LocalRegistries,
    Registry,
    Stall,
    isolated_env,
    make_artifact,
    populate,
    push,
)

__all__ = ["FULL", "QUICK", "Row", "Sizes", "run", "text"]

RTT = 0.040
API_VERSION = "mirror.plugin.fluxcd.io/v1beta1"
_ALWAYS = 1 << 62  # a rule's uses: never spent


@dataclass(frozen=True)
class Sizes:
    entries: int  # (n): entries of `tags_per_entry` tags
    tags_per_entry: int
    parallel: tuple[int, ...]
    tags: int  # (l): tags of the one entry
    widths: tuple[int, ...]
    images: int  # (s)


FULL = Sizes(200, 5, (1, 8), 400, (4, 8, 16, 32, 64), 50)
QUICK = Sizes(20, 5, (1, 8), 80, (4, 16), 10)


@dataclass(frozen=True)
class Row:
    scenario: str
    flags: str
    seconds: float
    undelayed: float | None = None  # the same run straight to the registries: what is not latency
    requests: str = ""


class _Runner:
    def __init__(self, envs: LocalRegistries, checkout: Path) -> None:
        self._envs = envs
        self._env = {**isolated_env(), "PYTHONPATH": str(checkout)}
        self._configs = 0

    def sync(self, entries: Sequence[tuple[Registry, Registry, str]], *flags: str, expect: dict[str, int]) -> float:
        """One `sync` run over these (source, destination, repository) entries; its wall time."""
        self._configs += 1
        config = self._envs.scratch(f"roundtrips-{self._configs}.yaml")
        artifacts = [
            {"source": source.ref(repo, None), "destination": destination.ref(repo, None), "selector": {"limit": 0}}
            for source, destination, repo in entries
        ]
        config.write_text(json.dumps({"apiVersion": API_VERSION, "kind": "Config", "artifacts": artifacts}))
        # -P: the checkout on PYTHONPATH, not the working directory, provides `fluxmirror`
        argv = [sys.executable, "-P", "-m", "fluxmirror", "sync", str(config), "-o", "json", "--no-progress", *flags]
        child = measure(argv, self._env, self._envs.root)
        summary: dict[str, Any] = json.loads(child.stdout)["report"]["summary"]
        if {key: summary[key] for key in expect} != expect:
            raise BenchmarkError(f"sync {' '.join(flags)}: summary {summary}, expected {expect}")
        return child.seconds


@contextmanager
def _far(registry: Registry) -> Iterator[tuple[FaultProxy, Registry]]:
    """`registry` one round trip away."""
    with FaultProxy(upstream=registry, blob_host=False) as proxy:
        proxy.add(Stall(seconds=RTT, times=_ALWAYS))
        yield proxy, proxy.as_registry()


def _up_to_date(source: Registry, destination: Registry, repo: str, tags: int) -> None:
    """`tags` tags of one small artifact in `repo`, at both ends."""
    artifact = make_artifact(seed=1)
    for registry in (source, destination):
        for tag in range(tags):
            push(registry, repo, f"1.0.{tag}", artifact)


def run(sizes: Sizes = FULL, checkout: Path = REPO_ROOT) -> list[Row]:
    """Every scenario; `--parallel-entries 1` and an empty `widths` leave out the flags another
    checkout may not know."""
    rows: list[Row] = []
    with LocalRegistries(prefix="fluxmirror-roundtrips-") as envs:
        runner = _Runner(envs, checkout)
        source, destination = envs.start(), envs.start()
        repos = [f"bench/entry-{n:03}" for n in range(sizes.entries)]
        for repo in repos:
            _up_to_date(source, destination, repo, sizes.tags_per_entry)
        if sizes.widths:
            _up_to_date(source, destination, "bench/many", sizes.tags)
        images = populate(source, "bench/small", [f"1.0.{n}" for n in range(sizes.images)], (100 * 1024, 300 * 1024))
        with _far(source) as (_, far_source), _far(destination) as (to_destination, far_destination):
            total = sizes.entries * sizes.tags_per_entry
            for parallel in sizes.parallel:
                flags = ("--parallel-entries", str(parallel)) if parallel > 1 else ()
                seconds, undelayed = (
                    runner.sync([(s, d, repo) for repo in repos], *flags, expect={"skipped": total})
                    for s, d in ((far_source, far_destination), (source, destination))
                )
                scenario = f"(n) {sizes.entries} entries × {sizes.tags_per_entry} tags, no-op"
                rows.append(Row(scenario, f"--parallel-entries {parallel}", seconds, undelayed))
            for width in sizes.widths:
                wide = ("--concurrency", "1", "--compare-concurrency", str(width))
                many = [(far_source, far_destination, "bench/many")]
                seconds = runner.sync(many, *wide, expect={"skipped": sizes.tags})
                rows.append(Row(f"(l) 1 entry × {sizes.tags} tags, no-op", " ".join(wide), seconds))
            to_destination.clear()  # the log, and the rule with it
            to_destination.add(Stall(seconds=RTT, times=_ALWAYS))
            seconds = runner.sync([(far_source, far_destination, "bench/small")], expect={"copied": len(images)})
            counts = Counter(r.method for r in to_destination.requests)
            sent = f"{sum(counts.values())}: " + ", ".join(f"{method} {n}" for method, n in sorted(counts.items()))
            rows.append(Row(f"(s) {len(images)} small images, copy", "", seconds, requests=sent))
    return rows


def text(rows: Sequence[Row]) -> str:
    header = ("scenario", "flags", "wall s", "undelayed s", "requests to the destination")
    cells = [header]
    for row in rows:
        undelayed = "" if row.undelayed is None else f"{row.undelayed:.2f}"
        cells.append((row.scenario, row.flags, f"{row.seconds:.2f}", undelayed, row.requests))
    widths = [max(len(cell[i]) for cell in cells) for i in range(len(header))]
    lines = [f"round trips: every request to either registry delayed {RTT * 1000:.0f} ms by a proxy", ""]
    for cell in cells:
        line = "  ".join(
            value.rjust(width) if i in (2, 3) else value.ljust(width)
            for i, (value, width) in enumerate(zip(cell, widths, strict=True))
        )
        lines.append(line.rstrip())
    return "\n".join(lines)
