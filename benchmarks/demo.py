"""`make demo`: mirror a few sample artifacts between two local registries, then show the report.

Nothing leaves the machine: both registries are docker-registry processes on loopback ports with
temporary storage, and everything is removed at the end. The exit code is that of the first sync,
so `make demo` fails when mirroring does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from benchmarks.localenv import (
    LocalRegistries,
    Registry,
    isolated_env,
    make_artifact,
    make_image,
    make_index,
    push,
)

FLUXMIRROR = Path(sys.executable).with_name("fluxmirror")
KiB = 1024
FLUX_CONFIG = "application/vnd.cncf.flux.config.v1+json"
FLUX_CONTENT = "application/vnd.cncf.flux.content.v1.tar+gzip"
PLATFORMS = ("linux/amd64", "linux/arm64")


def _header(step: str, explanation: str) -> None:
    title = f"\033[1m== {step}\033[0m" if sys.stdout.isatty() else f"== {step}"
    print(f"\n{title}\n{explanation.rstrip()}\n", flush=True)


def _push_samples(source: Registry) -> list[tuple[str, str, str]]:
    """Push the sample content; return (repository, tags, what it is) rows to show."""
    for seed, tag in enumerate(("6.7.0", "6.7.1"), start=1):
        images = [make_image([64 * KiB], seed * 10 + i, platform=p) for i, p in enumerate(PLATFORMS)]
        push(source, "demo/podinfo", tag, make_index(images))
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
        ("demo/podinfo", "6.7.0 6.7.1", "multi-arch image index (linux/amd64, linux/arm64)"),
        ("demo/web", " ".join(web_tags), "single-platform image"),
        ("demo/manifests", " ".join(manifest_tags), "Flux OCI artifact"),
    ]


def _config(source: Registry, destination: Registry) -> dict[str, object]:
    def entry(repo: str, selector: dict[str, object]) -> dict[str, object]:
        name = repo.removeprefix("demo/")
        return {
            "source": source.ref(repo, None),
            "destination": destination.ref(f"mirror/{name}", None),
            "selector": selector,
        }

    return {
        "apiVersion": "mirror.plugin.fluxcd.io/v1beta1",
        "kind": "Config",
        "artifacts": [
            entry("demo/podinfo", {"semver": ">=6.0.0", "limit": 2}),
            entry("demo/web", {"semver": "1.x", "limit": 2}),
            entry(
                "demo/manifests",
                {"regex": {"pattern": r"^main-[0-9a-f]+-(?P<ts>\d+)$", "extract": "$ts"}, "sortBy": "numerical"},
            ),
        ],
    }


def _fluxmirror(*args: str) -> int:
    print(f"$ fluxmirror {' '.join(args)}", flush=True)
    return subprocess.run([str(FLUXMIRROR), *args], env=isolated_env(), check=False).returncode


def main() -> int:
    with LocalRegistries(prefix="fluxmirror-demo-") as envs:
        source, destination = envs.start(), envs.start()
        _header(
            "1. Two local registries",
            f"source       {source.url}\ndestination  {destination.url}   (empty)",
        )
        rows = _push_samples(source)
        _header("2. Sample content pushed to the source", "\n".join(f"{r:<16} {t:<52} {d}" for r, t, d in rows))

        config_path = envs.scratch("demo.yaml")
        config_path.write_text(yaml.safe_dump(_config(source, destination), sort_keys=False))
        _header(
            "3. The mirror config",
            "Two newest podinfo releases, the two highest 1.x web tags (2.0.0-rc.1 is out of range),\n"
            "and the manifests artifact with the newest timestamp in its tag.\n\n" + config_path.read_text(),
        )

        _header("4. Mirror", "Each tag is one line as it completes; the summary closes the run.")
        exit_code = _fluxmirror("sync", str(config_path))

        _header(
            "5. Mirror again, with a YAML report",
            "Everything is already at the destination with the same digest, so every tag is skipped.",
        )
        _fluxmirror("sync", str(config_path), "-o", "yaml")

        _header(
            "Coming next",
            "Helm charts from HTTP chart repositories (the config's `.charts`) will join this demo when they land.",
        )
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
