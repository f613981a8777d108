"""`make demo`: mirror sample artifacts (with a signature and an SBOM attached) between two local
registries and republish charts from a local Helm chart repository, then show the report.

Nothing leaves the machine: both registries are docker-registry processes on loopback ports with
temporary storage, the chart repository is an HTTP server on a loopback port, and everything is
removed at the end. The exit code is that of the first sync,
so `make demo` fails when mirroring does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from benchmarks.localenv import (
    ChartRepository,
    LocalRegistries,
    Registry,
    isolated_env,
    make_artifact,
    make_image,
    make_index,
    publish_referrers,
    push,
    referrer,
)

FLUXMIRROR = Path(sys.executable).with_name("fluxmirror")
KiB = 1024
FLUX_CONFIG = "application/vnd.cncf.flux.config.v1+json"
FLUX_CONTENT = "application/vnd.cncf.flux.content.v1.tar+gzip"
PLATFORMS = ("linux/amd64", "linux/arm64")
SIGNATURE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SBOM = "application/spdx+json"
CHART_VERSIONS = ("6.6.0", "6.7.0", "6.7.1+build.3", "7.0.0-rc.1")


def _header(step: str, explanation: str) -> None:
    title = f"\033[1m== {step}\033[0m" if sys.stdout.isatty() else f"== {step}"
    print(f"\n{title}\n{explanation.rstrip()}\n", flush=True)


def _push_samples(source: Registry) -> list[tuple[str, str, str]]:
    """Push the sample content; return (repository, tags, what it is) rows to show."""
    for seed, tag in enumerate(("6.7.0", "6.7.1"), start=1):
        images = [make_image([64 * KiB], seed * 10 + i, platform=p) for i, p in enumerate(PLATFORMS)]
        index = make_index(images)
        push(source, "demo/podinfo", tag, index)
        attached = [referrer(index, SIGNATURE, seed * 100), referrer(index, SBOM, seed * 100 + 1)]
        publish_referrers(source, "demo/podinfo", index, attached)
    web_tags = ("1.0.0", "1.1.0", "1.2.0", "2.0.0-rc.1")
    for seed, tag in enumerate(web_tags, start=100):
        push(source, "demo/web", tag, make_image([32 * KiB, 64 * KiB], seed))
    manifest_tags = ("main-3f2a9c1-1718000000", "main-7b1e2d4-1718600000")
    for seed, tag in enumerate(manifest_tags, start=200):
        artifact = make_artifact(
            seed=seed, artifact_type=None, config_media_type=FLUX_CONFIG, layer_media_type=FLUX_CONTENT
        )
        push(source, "demo/manifests", tag, artifact)
    return [
        ("demo/podinfo", "6.7.0 6.7.1", "multi-arch index, each with a signature and an SBOM as referrers"),
        ("demo/web", " ".join(web_tags), "single-platform image"),
        ("demo/manifests", " ".join(manifest_tags), "Flux OCI artifact"),
    ]


def _config(source: Registry, destination: Registry, charts: ChartRepository) -> dict[str, object]:
    def entry(repo: str, selector: dict[str, object], **extra: object) -> dict[str, object]:
        name = repo.removeprefix("demo/")
        return {
            "source": source.ref(repo, None),
            "destination": destination.ref(f"mirror/{name}", None),
            "selector": selector,
            **extra,
        }

    return {
        "apiVersion": "mirror.plugin.fluxcd.io/v1beta1",
        "kind": "Config",
        "artifacts": [
            entry("demo/podinfo", {"semver": ">=6.0.0", "limit": 2}, includeReferrers=True),
            entry("demo/web", {"semver": "1.x", "limit": 2}),
            entry(
                "demo/manifests",
                {"regex": {"pattern": r"^main-[0-9a-f]+-(?P<ts>\d+)$", "extract": "$ts"}, "sortBy": "numerical"},
            ),
        ],
        "charts": [
            {
                "name": "podinfo",
                "source": charts.url,
                "destination": f"oci://{destination.ref('charts', None)}",
                "version": ">=6.0.0",
                "limit": 2,
            }
        ],
    }


def _fluxmirror(env: dict[str, str], *args: str) -> int:
    print(f"$ fluxmirror {' '.join(args)}", flush=True)
    return subprocess.run([str(FLUXMIRROR), *args], env=env, check=False).returncode


def main() -> int:
    with LocalRegistries(prefix="fluxmirror-demo-") as envs, ChartRepository() as charts:
        source, destination = envs.start(), envs.start()
        for version in CHART_VERSIONS:
            charts.add("podinfo", version, app_version=version.split("+")[0])
        _header(
            "1. Two local registries and a Helm chart repository",
            f"source       {source.url}\ndestination  {destination.url}   (empty)\n"
            f"charts       {charts.url}   (index.yaml, podinfo {' '.join(CHART_VERSIONS)})",
        )
        rows = _push_samples(source)
        _header("2. Sample content pushed to the source", "\n".join(f"{r:<16} {t:<52} {d}" for r, t, d in rows))

        config_path = envs.scratch("demo.yaml")
        config_path.write_text(yaml.safe_dump(_config(source, destination, charts), sort_keys=False))
        _header(
            "3. The mirror config",
            "Two newest podinfo releases with their referrers, the two highest 1.x web tags (2.0.0-rc.1 is\n"
            "out of range), the manifests artifact with the newest timestamp in its tag, and the two\n"
            "highest podinfo charts republished as OCI charts (6.7.1+build.3 lands as tag 6.7.1_build.3).\n\n"
            + config_path.read_text(),
        )
        env = {**isolated_env(), "HELM_REPOSITORY_CONFIG": str(envs.scratch("no-repositories.yaml"))}

        _header("4. Mirror", "Each tag or chart version is one line as it completes; the summary closes the run.")
        exit_code = _fluxmirror(env, "sync", str(config_path))

        _header(
            "5. Mirror again, with a YAML report",
            "Everything is already at the destination with the same digest, so every tag, referrer and\n"
            "chart version is skipped.",
        )
        _fluxmirror(env, "sync", str(config_path), "-o", "yaml")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
