"""Item 5 of "Trust nothing from the network": planning ends, and memory stays flat, whatever the
registry does.

Planning a tag list had no deadline: a body trickling a byte a second, headers trickling the same
way, a request never answered, or ``Link`` pages without end kept a run going for ever, and a 100 MB
tag list was held and decoded whole. The fix gives every request a total deadline (``--timeout``,
here 3 s) and caps tag-list bodies at 50 MiB and listings at 10,000 pages. Each case must fail
only its entry, within a bound that allows for the request's retries, and a run that overstays
is killed (``SyncTimeout``) so the test fails instead of hanging.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.hostile import HostileRegistry
from harness.registry import Registry, RegistryFactory
from harness.runner import Run, SyncTimeout, sync

pytestmark = [pytest.mark.registry, pytest.mark.timeout(150)]

DEADLINE = ("--timeout", "3s")
STALL_BOUND = 30.0
"""Seconds a stalled tag list may take to fail: a 3 s deadline per try, three tries 1 s and 3 s
apart, the ping and the CLI's start-up, with room to spare on a loaded machine."""
PAGES_BOUND = 60.0
"""10,000 pages at the ~2,000 pages/s the hostile registry serves take about 5 s."""
MEMORY_BOUND = 500 * 1024 * 1024


@pytest.fixture(scope="module")
def target(registry_factory: RegistryFactory) -> Registry:
    return registry_factory()


def plan_only(tmp_path: Path, source: str, target: Registry, kill_after: float) -> Run:
    """Sync one hostile entry with ``--timeout 3s``; a run still going after ``kill_after`` fails the test."""
    config = [{"source": source, "destination": f"{target.host}/t/never-written"}]
    try:
        return sync(tmp_path, config, *DEADLINE, timeout=kill_after)
    except SyncTimeout as killed:
        pytest.fail(f"{source}: {killed}")


def assert_entry_failed_listing(run: Run, source: str) -> None:
    assert "Traceback" not in run.stderr, "crashed: " + " | ".join(run.stderr.strip().splitlines()[-2:])
    result = run.report["report"]["results"][0]
    assert (run.code, result["status"], result["tags"]) == (1, "failed", [])
    assert result["error"].startswith(f"list tags {source}: ")


@pytest.mark.parametrize("repository", ["slow/body", "slow/headers", "slow/silent", "(mute host)"])
def test_stalling_tag_list_fails_its_entry_within_the_deadline(
    tmp_path: Path, hostile: HostileRegistry, target: Registry, repository: str
) -> None:
    """A body at a byte a second, headers at a byte a second, a tag list never answered, or a
    registry that accepts connections and never answers anything, not even the ping."""
    source = f"{hostile.mute_host}/any/app" if repository == "(mute host)" else hostile.ref(repository)
    run = plan_only(tmp_path, source, target, kill_after=STALL_BOUND + 10)
    assert run.elapsed < STALL_BOUND, f"took {run.elapsed:.1f}s"
    assert_entry_failed_listing(run, source)


def test_endless_distinct_link_pages_fail_the_entry(tmp_path: Path, hostile: HostileRegistry, target: Registry) -> None:
    """Every page links to a new one; the loop check never fires, only a page cap can end it."""
    source = hostile.ref("endless/pages")
    run = plan_only(tmp_path, source, target, kill_after=PAGES_BOUND)
    assert_entry_failed_listing(run, source)
    assert hostile.pages_served <= 10_001


def test_100_mb_tag_list_is_refused_without_gigabytes_of_memory(
    tmp_path: Path, hostile: HostileRegistry, target: Registry
) -> None:
    """100 MB of valid tag list, chunked (no Content-Length to refuse up front): past the 50 MiB cap."""
    source = hostile.ref("huge/tags")
    run = plan_only(tmp_path, source, target, kill_after=60)
    assert run.max_rss < MEMORY_BOUND, f"peak RSS {run.max_rss >> 20} MiB"
    assert_entry_failed_listing(run, source)
