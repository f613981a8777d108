"""Signature verification: what `verify` adds to a no-op re-sync of signed tags.

Why this scenario: a scheduled mirror re-syncs an up to date destination far more often than it
copies anything, and `verify` runs at plan time, before the skip decision, so every run pays for
every selected tag's verification. The target (from the issue) is that verifying 100 tags'
signatures adds at most 20 % to the no-op re-sync of the same tags.

One local docker-registry holds a source repository of small artifacts (tags ``1.0.0`` …), each
signed with a cosign v3 bundle by a virtual Sigstore from the test harness (pushed as cosign does
against a registry without the referrers API: by digest, listed in the ``sha256-<hex>`` tag-schema
index), and its mirror in a second repository. The trusted root is pinned with
``--trusted-root``, so no run touches the network beyond loopback. After one sync fills the
mirror, the same no-op re-sync runs without and with `verify`, alternating, best wall time of
several runs each; every run's report is checked before its time counts.

The CLI runs as ``python -m fluxmirror`` with this checkout on ``PYTHONPATH``, so the numbers are
those of the code next to this file, not of whatever checkout the venv's console script imports.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.copy import BenchmarkError, measure
from benchmarks.localenv import REPO_ROOT, LocalRegistries, Registry, get_manifest, isolated_env, list_tags

# The virtual Sigstore and the registry client that pushes its bundles live in tests/harness (the
# `harness` package on pytest's path), which does not import fluxmirror: it is the second opinion
# the integration tests trust, so the benchmark signs with it rather than a copy of its recipe.
_TESTS = str(REPO_ROOT / "tests")
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from harness import images  # noqa: E402
from harness.sigstore import VirtualSigstore, push_bundle_referrer  # noqa: E402

__all__ = ["FULL", "QUICK", "Sizes", "VerifyResults", "run"]

ISSUER = "https://token.actions.githubusercontent.com"
SAN = "https://github.com/example/app/.github/workflows/release.yml@refs/tags/{tag}"
SUBJECT = r"^https://github\.com/example/.*$"
SOURCE_REPO, MIRROR_REPO = "bench/signed", "bench/signed-mirror"
PLAIN, VERIFY, CACHED = "re-sync", "re-sync + verify", "re-sync + verify, warm --state-dir"
TARGET = 1.20


@dataclass(frozen=True)
class Sizes:
    tags: int
    runs: int  # best wall time of this many runs per variant, the two variants alternating


FULL = Sizes(100, runs=5)
QUICK = Sizes(20, runs=2)


@dataclass(frozen=True)
class Run:
    variant: str
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float


@dataclass(frozen=True)
class VerifyResults:
    sizes: Sizes
    runs: list[Run]

    def best(self, variant: str) -> Run:
        return min((run for run in self.runs if run.variant == variant), key=lambda run: run.seconds)

    def ratio(self, variant: str) -> float:
        return self.best(variant).seconds / self.best(PLAIN).seconds

    def target_line(self, variant: str) -> str:
        ratio = self.ratio(variant)
        met = ratio <= TARGET
        return (
            f"{'PASS' if met else 'MISS'}  verify overhead <= {TARGET:.2f}: {'met' if met else 'missed'}, "
            f"{ratio:.2f} ({variant} / {PLAIN}, {self.sizes.tags} tags)"
        )

    def text(self) -> str:
        plain, verify = self.best(PLAIN), self.best(VERIFY)
        per_tag_ms = (verify.seconds - plain.seconds) / self.sizes.tags * 1000
        per_tag_cpu_ms = (verify.cpu_seconds - plain.cpu_seconds) / self.sizes.tags * 1000
        note = (
            f"verify: no-op re-sync of {self.sizes.tags} signed tags (cosign v3 bundles, pinned trusted root), "
            f"{os.cpu_count()} CPUs, best wall time of {self.sizes.runs} run(s) each, alternating"
        )
        if self.sizes != FULL:
            note += " — reduced sizes: the target is indicative only"
        rows = [
            ("run", "wall s", "CPU s", "peak RSS MiB", "× re-sync"),
            *(
                (
                    run.variant,
                    f"{run.seconds:.2f}",
                    f"{run.cpu_seconds:.2f}",
                    f"{run.peak_rss_mib:.0f}",
                    f"{run.seconds / plain.seconds:.2f}",
                )
                for run in (plain, verify, self.best(CACHED))
            ),
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [note, ""]
        for row in rows:
            cells = [
                cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
        lines += [
            "",
            f"verification alone, ((2) - (1)) / {self.sizes.tags} tags (the one-off sigstore import included): "
            f"{per_tag_ms:.1f} ms wall, {per_tag_cpu_ms:.1f} ms CPU per tag",
            "",
            self.target_line(CACHED),
            self.target_line(VERIFY),
        ]
        return "\n".join(lines)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _tags(count: int) -> list[str]:
    """Semver tags, so the default semver sort with `limit: 0` selects them all (and not the
    `sha256-<hex>` index tags beside them)."""
    return [f"1.0.{n}" for n in range(count)]


def _sign_and_push(registry: Registry, sigstore: VirtualSigstore, tags: Sequence[str]) -> dict[str, str]:
    """One small artifact per tag, signed three days ago; returns tag → digest."""
    signed_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=72)
    artifacts = {tag: images.make_artifact(seed=seed) for seed, tag in enumerate(tags, start=1)}
    # Signing is sequential (the instance keeps a log-index counter); pushing is I/O, four at a time.
    bundles = {
        tag: sigstore.sign_bundle(artifact.digest, san=SAN.format(tag=tag), issuer=ISSUER, signed_at=signed_at)
        for tag, artifact in artifacts.items()
    }

    def push(tag: str) -> None:
        images.push(registry, SOURCE_REPO, tag, artifacts[tag])
        push_bundle_referrer(registry, SOURCE_REPO, artifacts[tag], bundles[tag], fallback=True)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(push, tags))
    return {tag: artifact.digest for tag, artifact in artifacts.items()}


class _Bench:
    def __init__(self, envs: LocalRegistries, registry: Registry, trusted_root: Path, expected: dict[str, str]) -> None:
        self._envs = envs
        self._registry = registry
        self._trusted_root = trusted_root
        self._expected = expected
        # The checkout next to this file, first on the child's path (ahead of the venv's editable install).
        self._env = {**isolated_env(), "PYTHONPATH": str(REPO_ROOT)}
        self.runs: list[Run] = []

    def config(self, *, verify: bool) -> Path:
        entry: dict[str, Any] = {
            "source": self._registry.ref(SOURCE_REPO, None),
            "destination": self._registry.ref(MIRROR_REPO, None),
            "selector": {"limit": 0},
        }
        if verify:
            entry["verify"] = {"provider": "cosign", "matchOIDCIdentity": [{"issuer": ISSUER, "subject": SUBJECT}]}
        path = self._envs.scratch(f"verify-{'on' if verify else 'off'}.yaml")
        path.write_text(
            json.dumps({"apiVersion": "mirror.plugin.fluxcd.io/v1beta1", "kind": "Config", "artifacts": [entry]})
        )
        return path

    def argv(self, *, verify: bool, cached: bool) -> list[str]:
        argv = [sys.executable, "-m", "fluxmirror", "sync", str(self.config(verify=verify)), "-o", "json"]
        argv.append("--no-progress")
        if verify:
            argv += ["--trusted-root", str(self._trusted_root)]
        return [*argv, "--state-dir", str(self._envs.scratch("state"))] if cached else argv

    def check_checkout(self) -> None:
        """The child imports fluxmirror from this checkout, or the numbers would be another's."""
        probe = [sys.executable, "-c", "import fluxmirror, sys; sys.stdout.write(fluxmirror.__file__)"]
        child = measure(probe, self._env, self._envs.root)
        if not Path(child.stdout).resolve().is_relative_to(REPO_ROOT):
            raise BenchmarkError(f"the CLI would import fluxmirror from {child.stdout}, not from {REPO_ROOT}")

    def sync(self, *, verify: bool, expect: str, variant: str | None, cached: bool = False) -> None:
        child = measure(self.argv(verify=verify, cached=cached), self._env, self._envs.root)
        _check_report(child.stdout, expect, self._expected, verified=verify)
        if variant is not None:
            self.runs.append(Run(variant, child.seconds, child.cpu_seconds, child.peak_rss_mib))
            _say(
                f"  {variant:<17} {child.seconds:6.2f} s  {child.cpu_seconds:6.2f} CPU s  {child.peak_rss_mib:4.0f} MiB"
            )


def _check_report(stdout: str, expect: str, expected: dict[str, str], *, verified: bool) -> None:
    report = json.loads(stdout)["report"]
    summary = report["summary"]
    others = {key: value for key, value in summary.items() if key not in (expect, "entries", "exitCode") and value}
    if summary.get(expect) != len(expected) or others or summary.get("exitCode") != 0:
        raise BenchmarkError(f"fluxmirror should have {expect} {len(expected)} tags, its summary says {summary}")
    rows = {row["tag"]: row for result in report["results"] for row in result["tags"]}
    if sorted(rows) != sorted(expected):
        raise BenchmarkError(f"fluxmirror reported tags {sorted(rows)}, expected {sorted(expected)}")
    for tag, row in rows.items():
        if row.get("digest") != expected[tag]:
            raise BenchmarkError(f"fluxmirror reported {tag} as {row.get('digest')}, the source has {expected[tag]}")
        block = row.get("verification")
        if verified and not (block and block.get("provider") == "cosign" and block.get("issuer") == ISSUER):
            raise BenchmarkError(f"fluxmirror's row for {tag} has no cosign verification block: {row}")
        if not verified and block is not None:
            raise BenchmarkError(f"fluxmirror's row for {tag} has a verification block without verify: {row}")


def _check_mirrored(registry: Registry, expected: dict[str, str]) -> None:
    tags = sorted(list_tags(registry, MIRROR_REPO))
    if tags != sorted(expected):
        raise BenchmarkError(f"the mirror has tags {tags}, expected {sorted(expected)}")
    for tag, digest in expected.items():
        if (actual := get_manifest(registry, MIRROR_REPO, tag).digest) != digest:
            raise BenchmarkError(f"the mirror has {tag} as {actual}, the source has {digest}")


def run(sizes: Sizes = FULL) -> VerifyResults:
    """Populate, fill the mirror once, then time the two re-syncs; progress goes to stderr."""
    with LocalRegistries() as envs:
        registry = envs.start()
        _say(f"verify: signing and pushing {sizes.tags} artifacts to {registry.host}")
        sigstore = VirtualSigstore("bench")
        trusted_root = sigstore.write_trusted_root(envs.scratch("trusted_root.json"))
        expected = _sign_and_push(registry, sigstore, _tags(sizes.tags))
        bench = _Bench(envs, registry, trusted_root, expected)
        bench.check_checkout()
        bench.sync(verify=True, expect="copied", variant=None, cached=True)  # fills the mirror and the cache
        _check_mirrored(registry, expected)
        for _ in range(sizes.runs):
            bench.sync(verify=False, expect="skipped", variant=PLAIN)
            bench.sync(verify=True, expect="skipped", variant=VERIFY)
            bench.sync(verify=True, expect="skipped", variant=CACHED, cached=True)
        _check_mirrored(registry, expected)
    return VerifyResults(sizes, bench.runs)
