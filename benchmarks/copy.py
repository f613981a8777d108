"""Copying images: fluxmirror against skopeo and against a streaming floor, in one run.

Three scenarios, chosen because each stresses a different cost:

* (a) many small images: per-tag round trips and per-process overheads dominate;
* (b) a few very large layers: throughput and memory, where anything beyond streaming the bytes
  (buffering, extra passes, slow hashing) shows against the floor;
* (c) re-syncing (a) when nothing changed: the daily case of a scheduled mirror, pure checking.

Every tool is its own subprocess, timed by wall clock, its CPU time and peak RSS read from
``wait4`` (through the small `rusage` launcher, which keeps this process's own peak out of the
numbers). In (a) and (b) each tool writes into its own empty registry so nobody benefits from
blobs another tool left behind; (c) re-runs each tool on the registry it filled in (a). The
floors have no (c): an up to date mirror needs no blob copies at all.

The registries' storage lives under ``$TMPDIR`` (default /tmp): run with ``TMPDIR=/dev/shm`` to
take the disk out of the numbers, which leaves the tools' and registries' CPU as the cost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.localenv import (
    REPO_ROOT,
    LocalRegistries,
    MiB,
    PushedImage,
    Registry,
    get_manifest,
    isolated_env,
    list_tags,
    populate,
    skopeo_invocation,
    skopeo_version,
)

FLUXMIRROR = Path(sys.executable).with_name("fluxmirror")
FLOOR, SPEC_FLOOR, SKOPEO, FLUXMIRROR_TOOL = "floor", "spec floor", "skopeo", "fluxmirror"


@dataclass(frozen=True)
class Sizes:
    small_tags: int
    small_layers: tuple[int, ...]
    large_tags: int
    large_layers: tuple[int, ...]
    runs: int  # each tool's best wall time of this many runs: single runs on a 2-core VM vary by 10-20%


FULL = Sizes(100, (MiB, MiB), 4, (256 * MiB, 256 * MiB), runs=2)
QUICK = Sizes(20, (MiB, MiB), 2, (32 * MiB, 32 * MiB), runs=1)


@dataclass(frozen=True)
class Measurement:
    scenario: str
    tool: str
    seconds: float
    cpu_seconds: float  # the tool's own user + system time; the registries' is not in it
    peak_rss_mib: float


@dataclass(frozen=True)
class Target:
    """``value`` at most ``limit`` (under it, when ``strict``), as the issue words each target."""

    description: str
    value: float
    limit: float
    style: str = "{:.2f}×"
    strict: bool = False

    @property
    def met(self) -> bool:
        return self.value < self.limit if self.strict else self.value <= self.limit

    def line(self) -> str:
        verdict = "PASS" if self.met else "MISS"
        value, limit = self.style.format(self.value), self.style.format(self.limit)
        return f"{verdict}  {self.description}: {value} (target {'<' if self.strict else '≤'} {limit})"


class BenchmarkError(RuntimeError):
    """A tool failed or did not leave the destination as it should: the numbers would be meaningless."""


@dataclass(frozen=True)
class Results:
    sizes: Sizes
    measurements: list[Measurement]
    skopeo_version: str

    def seconds(self, scenario: str, tool: str) -> float | None:
        found = [m.seconds for m in self.measurements if m.scenario == scenario and m.tool == tool]
        return found[0] if found else None

    def targets(self) -> list[Target]:
        def ratio(scenario: str, baseline: str) -> float:
            mine, theirs = self.seconds(scenario, FLUXMIRROR_TOOL), self.seconds(scenario, baseline)
            assert mine is not None and theirs is not None
            return mine / theirs

        rss_b = next(m.peak_rss_mib for m in self.measurements if m.scenario == "b" and m.tool == FLUXMIRROR_TOOL)
        return [
            Target("(a) fluxmirror time vs skopeo", ratio("a", SKOPEO), 0.5),
            Target("(b) fluxmirror time vs floor", ratio("b", FLOOR), 1.15),
            Target("(b) fluxmirror time vs skopeo", ratio("b", SKOPEO), 0.7),
            Target("(c) fluxmirror time vs skopeo", ratio("c", SKOPEO), 1.0),
            Target("(b) fluxmirror peak RSS", rss_b, 150.0, "{:.0f} MiB", strict=True),
        ]

    def _rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for m in self.measurements:
            skopeo, floor = self.seconds(m.scenario, SKOPEO), self.seconds(m.scenario, FLOOR)
            rows.append(
                (
                    self.scenario_title(m.scenario),
                    m.tool,
                    f"{m.seconds:.2f}",
                    f"{m.cpu_seconds:.2f}",
                    f"{m.peak_rss_mib:.0f}",
                    f"{m.seconds / skopeo:.2f}" if skopeo else "–",
                    f"{m.seconds / floor:.2f}" if floor else "–",
                )
            )
        return rows

    def scenario_title(self, scenario: str) -> str:
        s = self.sizes
        return {
            "a": f"(a) {s.small_tags} tags × {_layers(s.small_layers)}",
            "b": f"(b) {s.large_tags} tags × {_layers(s.large_layers)}",
            "c": "(c) re-sync of (a), up to date",
        }[scenario]

    def _target_lines(self) -> list[str]:
        return [target.line() for target in self.targets()]

    def _note(self) -> str:
        note = (
            f"copy: fluxmirror vs skopeo {self.skopeo_version} vs two floors (blobs streamed 4 at a time; "
            "the spec floor with the requests of docs/sync.md#copy-sequence), "
            f"{os.cpu_count()} CPUs, best wall time (and highest peak RSS) of {self.sizes.runs} run(s)"
        )
        return note + (" — reduced sizes: the targets are indicative only" if self.sizes != FULL else "")

    def text(self) -> str:
        header = ("scenario", "tool", "wall s", "CPU s", "peak RSS MiB", "× skopeo", "× floor")
        rows = [header, *self._rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [self._note(), ""]
        for row in rows:
            cells = [
                cell.ljust(width) if i < 2 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
        return "\n".join([*lines, "", *self._target_lines()])

    def markdown(self) -> str:
        lines = [self._note(), "", "| scenario | tool | wall s | CPU s | peak RSS MiB | × skopeo | × floor |"]
        lines.append("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        lines += ["| " + " | ".join(row) + " |" for row in self._rows()]
        lines += ["", *(f"- {line}" for line in self._target_lines())]
        return "\n".join(lines) + "\n"


def _layers(sizes: Sequence[int]) -> str:
    return (
        f"{len(sizes)} × {sizes[0] // MiB} MiB"
        if len(set(sizes)) == 1
        else " + ".join(f"{s // MiB} MiB" for s in sizes)
    )


@dataclass(frozen=True)
class _Child:
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    stdout: str
    written_bytes: int = 0  # ru_oublock × 512: bytes the tool dirtied for the disk (0 where the kernel does not count)


def measure(argv: Sequence[str], env: Mapping[str, str], scratch: Path) -> _Child:
    """Run one tool to completion through the `rusage` launcher; raise with its output if it fails."""
    report = scratch / "rusage.json"
    launcher = [sys.executable, "-I", "-S", str(Path(__file__).with_name("rusage.py")), str(report)]
    os.sync()  # the previous tool's dirty pages must not be written back on this one's clock
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        returncode = subprocess.run(
            [*launcher, *argv], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env, cwd=REPO_ROOT
        ).returncode
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read().decode(errors="replace"), stderr.read().decode(errors="replace")
    if returncode != 0:
        raise BenchmarkError(f"{Path(argv[0]).name} exited {returncode}:\n{err[-3000:]}\n{out[-3000:]}")
    usage = json.loads(report.read_text())
    return _Child(
        usage["seconds"], usage["cpu_seconds"], usage["peak_rss_kib"] / 1024, out, usage.get("written_bytes", 0)
    )


def check_checkout(env: Mapping[str, str], scratch: Path) -> None:
    """A child run with ``env`` imports fluxmirror from this checkout, or the numbers would be another's."""
    probe = [sys.executable, "-c", "import fluxmirror, sys; sys.stdout.write(fluxmirror.__file__)"]
    child = measure(probe, env, scratch)
    if not Path(child.stdout).resolve().is_relative_to(REPO_ROOT):
        raise BenchmarkError(f"the CLI would import fluxmirror from {child.stdout}, not from {REPO_ROOT}")
    # Byte-compile it now, so no run's time or disk-write count includes writing .pyc files.
    measure([sys.executable, "-m", "compileall", "-q", str(REPO_ROOT / "fluxmirror")], env, scratch)


class _Bench:
    """Runs one tool on one scenario, checks what it left behind, and keeps the measurement."""

    def __init__(self, envs: LocalRegistries, source: Registry) -> None:
        self._envs = envs
        self._source = source
        self._env = isolated_env()
        self.measurements: list[Measurement] = []

    def _record(self, scenario: str, tool: str, child: _Child) -> None:
        self.measurements.append(Measurement(scenario, tool, child.seconds, child.cpu_seconds, child.peak_rss_mib))
        _say(
            f"  ({scenario}) {tool:<10} {child.seconds:7.2f} s  {child.cpu_seconds:6.2f} CPU s  "
            f"{child.peak_rss_mib:5.0f} MiB"
        )

    def floors(self, scenario: str, repo: str, images: Sequence[PushedImage]) -> None:
        """Both floors, each into its own empty registry, dropped at once: nothing else reads them."""
        digests = [digest for image in images for digest in image.blobs]
        for tool, flags in ((FLOOR, []), (SPEC_FLOOR, ["--spec-requests"])):
            destination = self._envs.start()
            argv = [sys.executable, "-m", "benchmarks.floor", *flags, self._source.url, destination.url, repo, *digests]
            self._record(scenario, tool, measure(argv, self._env, self._envs.root))
            self._envs.wipe(destination)

    def skopeo(self, scenario: str, repo: str, images: Sequence[PushedImage], destination: Registry) -> None:
        parent, _, _ = repo.rpartition("/")  # sync writes into DESTINATION/<last path element>
        argv = skopeo_invocation(
            "sync",
            "--src=docker",
            "--dest=docker",
            "--all",
            "--preserve-digests",
            self._source.ref(repo, None),
            destination.ref(parent, None),
        )
        self._record(scenario, SKOPEO, measure(argv, self._env, self._envs.root))
        _check_mirrored(destination, repo, images, SKOPEO)

    def fluxmirror(
        self, scenario: str, repo: str, images: Sequence[PushedImage], destination: Registry, *, expect: str
    ) -> None:
        config = self._envs.scratch(f"fluxmirror-{scenario}.yaml")
        config.write_text(
            json.dumps(  # JSON is YAML, and needs no quoting rules
                {
                    "apiVersion": "mirror.plugin.fluxcd.io/v1beta1",
                    "kind": "Config",
                    "artifacts": [
                        {
                            "source": self._source.ref(repo, None),
                            "destination": destination.ref(repo, None),
                            "selector": {"limit": 0},
                        }
                    ],
                }
            )
        )
        child = measure(
            [str(FLUXMIRROR), "sync", str(config), "-o", "json", "--no-progress"], self._env, self._envs.root
        )
        self._record(scenario, FLUXMIRROR_TOOL, child)
        _check_summary(child.stdout, expect, len(images))
        _check_mirrored(destination, repo, images, FLUXMIRROR_TOOL)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _check_summary(stdout: str, expect: str, count: int) -> None:
    summary = json.loads(stdout)["report"]["summary"]
    others = {key: value for key, value in summary.items() if key not in (expect, "entries", "exitCode") and value}
    if summary.get(expect) != count or others or summary.get("exitCode") != 0:
        raise BenchmarkError(f"fluxmirror should have {expect} {count} tags, its summary says {summary}")


def _check_mirrored(destination: Registry, repo: str, images: Sequence[PushedImage], tool: str) -> None:
    expected = {image.tag: image.digest for image in images}
    tags = sorted(list_tags(destination, repo))
    if tags != sorted(expected):
        raise BenchmarkError(f"{tool} left tags {tags}, expected {sorted(expected)}")
    for tag, digest in expected.items():
        if (actual := get_manifest(destination, repo, tag).digest) != digest:
            raise BenchmarkError(f"{tool} mirrored {repo}:{tag} as {actual}, the source has {digest}")


def run(sizes: Sizes = FULL) -> Results:
    """Populate a source registry, run every scenario, and clean up; progress goes to stderr."""
    with LocalRegistries() as envs:
        source = envs.start()
        _say(f"populating {source.host}: {sizes.small_tags} small and {sizes.large_tags} large images")
        small = populate(source, "bench/small", _tags(sizes.small_tags), sizes.small_layers)
        large = populate(source, "bench/large", _tags(sizes.large_tags), sizes.large_layers)
        bench = _Bench(envs, source)
        for _ in range(sizes.runs):
            bench.floors("a", "bench/small", small)
            skopeo, fluxmirror = envs.start(), envs.start()
            bench.skopeo("a", "bench/small", small, skopeo)
            bench.fluxmirror("a", "bench/small", small, fluxmirror, expect="copied")
            bench.skopeo("c", "bench/small", small, skopeo)
            bench.fluxmirror("c", "bench/small", small, fluxmirror, expect="skipped")
            for registry in (skopeo, fluxmirror):
                envs.wipe(registry)
        for _ in range(sizes.runs):
            bench.floors("b", "bench/large", large)
            bench.skopeo("b", "bench/large", large, destination := envs.start())
            envs.wipe(destination)
            bench.fluxmirror("b", "bench/large", large, destination := envs.start(), expect="copied")
            envs.wipe(destination)
    return Results(sizes, _best(bench.measurements), skopeo_version())


def _best(measurements: Sequence[Measurement]) -> list[Measurement]:
    """One row per scenario and tool, in scenario order: the fastest run (with its CPU time), the
    highest peak RSS."""
    keys = sorted({(m.scenario, m.tool): None for m in measurements}, key=lambda key: key[0])  # tool order kept
    best = []
    for scenario, tool in keys:
        runs = [m for m in measurements if (m.scenario, m.tool) == (scenario, tool)]
        fastest = min(runs, key=lambda m: m.seconds)
        peak = max(m.peak_rss_mib for m in runs)
        best.append(Measurement(scenario, tool, fastest.seconds, fastest.cpu_seconds, peak))
    return best


def _tags(count: int) -> list[str]:
    """Semver tags, so fluxmirror's default semver sort with `limit: 0` selects them all."""
    return [f"1.0.{n}" for n in range(count)]
