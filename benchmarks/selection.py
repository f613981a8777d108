"""Tag selection over a large tag list, against the floor of a plain sort of the same strings.

Repositories with tens of thousands of tags exist (CI builds tagging every commit); selection runs
once per entry per sync, so it must stay a small fraction of a second there.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable

from fluxmirror.api.config import RegexFilter, Selector
from fluxmirror.selection.tags import select_tags

TAG_COUNT = 50_000


def _tags(count: int, seed: int = 7) -> list[str]:
    generator = random.Random(seed)
    tags = []
    for index in range(count):
        version = f"{generator.randrange(0, 20)}.{generator.randrange(0, 50)}.{generator.randrange(0, 100)}"
        if index % 5 == 0:
            version += f"-rc.{generator.randrange(1, 9)}"
        tags.append(("v" if index % 2 else "") + version)
    return tags


def best_of(runs: int, action: Callable[[], object]) -> float:
    """Best wall time of `runs` calls: the least disturbed by whatever else the machine was doing."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def run() -> list[tuple[str, float, float]]:
    """Return (case, seconds, ratio to a plain `sorted`) rows."""
    tags = _tags(TAG_COUNT)
    floor = best_of(3, lambda: sorted(tags, reverse=True))
    cases = {
        "semver sort, limit 0": Selector(limit=0),
        "semver range >=1.0.0 <4": Selector(semver=">=1.0.0 <4", limit=10),
        "regex extract + range": Selector(
            regex=RegexFilter(pattern=r"^v?(?P<v>\d+\.\d+\.\d+)$", extract="$v"), semver="^5.0.0", limit=5
        ),
        "alphabetical": Selector(sortBy="alphabetical", limit=0),
    }
    rows = []
    for name, selector in cases.items():
        seconds = best_of(3, functools.partial(select_tags, tags, selector))
        rows.append((name, seconds, seconds / floor))
    return rows


def report() -> str:
    lines = [f"tag selection over {TAG_COUNT:,} tags (floor: plain sorted())", ""]
    lines.append(f"{'case':<28} {'seconds':>8} {'x floor':>8}")
    for name, seconds, ratio in run():
        lines.append(f"{name:<28} {seconds:>8.3f} {ratio:>8.1f}")
    return "\n".join(lines)
