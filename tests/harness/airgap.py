"""What the air-gap tests share: seeding a source, writing a config, running the CLI, breaking an archive."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import yaml

from harness import images
from harness.referrers import SBOM, publish_referrers, referrer
from harness.registry import Registry
from harness.runner import FLUXMIRROR, Run, entry

__all__ = ["export_tar", "flip_a_layer_byte", "member_span", "mirror_config", "mirrored", "run", "seed", "write_config"]


def run(tmp_path: Path, *argv: str, stdin: str | None = None) -> Run:
    """The CLI as a child process, with text streams."""
    completed = subprocess.run(
        [str(FLUXMIRROR), *argv], input=stdin, capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )
    return Run(completed.returncode, completed.stdout, completed.stderr)


def write_config(tmp_path: Path, artifacts: list[dict[str, Any]], name: str = "mirror.yaml") -> Path:
    path = tmp_path / name
    path.write_text(
        yaml.safe_dump({"apiVersion": "mirror.plugin.fluxcd.io/v1beta1", "kind": "Config", "artifacts": artifacts})
    )
    return path


def mirror_config(tmp_path: Path, source: Registry, destination: Registry, repo: str) -> Path:
    """The air-gap tests' usual config: every tag of `repo` to `mirror/app` at `destination`."""
    return write_config(tmp_path, [entry(source, destination, repo, "mirror/app", selector={"limit": 0})])


def export_tar(tmp_path: Path, config: Path) -> Path:
    """`export CONFIG --to <tmp_path>/archive.tar`, which must succeed; the archive's path."""
    archive = tmp_path / "archive.tar"
    done = run(tmp_path, "export", str(config), "--to", str(archive))
    assert done.code == 0, done.stdout + done.stderr
    return archive


def seed(registry: Registry, repo: str) -> dict[str, images.Manifest]:
    """Two images (real tar.gz layers) and an SBOM referrer on the newer one."""
    pushed = {}
    for tag, seed_ in (("1.0.0", 71), ("2.0.0", 72)):
        image = images.make_image([4096, 70_000], seed=seed_)
        images.push(registry, repo, tag, image)
        pushed[tag] = image
    publish_referrers(registry, repo, pushed["2.0.0"], [referrer(pushed["2.0.0"], SBOM, seed=73)])
    return pushed


def mirrored(registry: Registry, repo: str, tags: list[str]) -> dict[str, str]:
    return {tag: images.get_manifest(registry, repo, tag).digest for tag in tags}


def flip_a_layer_byte(archive: Path, layer_digest: str) -> None:
    """Invert one byte in the middle of a layer's body, in place."""
    offset, size = member_span(archive, "blobs/" + layer_digest.replace(":", "/"))
    with archive.open("r+b") as file:
        file.seek(offset + size // 2)
        byte = file.read(1)
        file.seek(-1, 1)
        file.write(bytes([byte[0] ^ 0xFF]))


def member_span(archive: Path, name: str) -> tuple[int, int]:
    """Where member `name`'s body starts in `archive`, and its size."""
    with tarfile.open(archive) as tar:
        member = tar.getmember(name)
    return member.offset_data, member.size
