"""`export --to -` and `import -`: the archive through a pipe, read once (docs/airgap.md#pipes).

The CLI runs as child processes joined by real OS pipes; docker-registry is source and destination.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from harness import images
from harness.airgap import export_tar, flip_a_layer_byte, member_span, mirror_config, mirrored, seed, write_config
from harness.referrers import SBOM
from harness.registry import Registry, RegistryFactory
from harness.runner import FLUXMIRROR, entry

pytestmark = pytest.mark.registry


def piped(argv: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    """The CLI with `data` on its stdin."""
    return subprocess.run([str(FLUXMIRROR), *argv], input=data, capture_output=True, timeout=120)


def test_export_to_stdout_pipes_into_import(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    pushed = seed(registry, unique_repo)
    far = registry_factory()
    spec = {"selector": {"limit": 0}, "includeReferrers": True}
    config = write_config(tmp_path, [entry(registry, far, unique_repo, "mirror/app", **spec)])
    exporter = subprocess.Popen(
        [str(FLUXMIRROR), "export", str(config), "--to", "-", "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    importer = subprocess.Popen(
        [str(FLUXMIRROR), "import", "-", "-o", "json"],
        stdin=exporter.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert exporter.stdout is not None
    exporter.stdout.close()  # the importer holds the only reader
    imported_out, imported_err = importer.communicate(timeout=120)
    _, exported_err = exporter.communicate(timeout=120)
    assert (exporter.returncode, importer.returncode) == (0, 0), exported_err + imported_err

    export_report = json.loads(exported_err)["report"]  # stdout carried the archive: the report is on stderr
    import_report = json.loads(imported_out)["report"]
    assert export_report["archive"]["path"] == "-" and export_report["archive"]["format"] == "tar"
    assert import_report["archive"]["indexDigest"] == export_report["archive"]["indexDigest"]
    rows = import_report["results"][0]["tags"]
    assert [(row["tag"], row["status"]) for row in rows] == [("1.0.0", "copied"), ("2.0.0", "copied")]
    assert [(r["artifactType"], r["status"]) for r in rows[1]["referrers"]] == [(SBOM, "copied")]
    assert import_report["archive"]["blobs"]["pushed"] == 8  # per image a config and two layers; the SBOM: two
    assert mirrored(far, "mirror/app", ["1.0.0", "2.0.0"]) == {tag: image.digest for tag, image in pushed.items()}


def test_stdout_is_the_same_tar_as_a_file_and_a_second_import_pushes_nothing(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    seed(registry, unique_repo)
    far = registry_factory()
    config = mirror_config(tmp_path, registry, far, unique_repo)
    archive = export_tar(tmp_path, config)
    streamed = subprocess.run(
        [str(FLUXMIRROR), "export", str(config), "--to", "-"], capture_output=True, timeout=120, check=True
    )
    assert streamed.stdout == archive.read_bytes()
    assert "2 copied" in streamed.stderr.decode()  # the text summary went to stderr

    for expected, pushed_blobs in (("copied", 6), ("skipped", 0)):  # two configs and four layers, then none
        done = piped(["import", "-", "-o", "json"], archive.read_bytes())
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)["report"]
        assert [row["status"] for row in report["results"][0]["tags"]] == [expected] * 2
        assert report["archive"]["blobs"].get("pushed", 0) == pushed_blobs  # a zero count is omitted


def test_a_dry_run_reads_only_the_front_of_the_pipe(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    seed(registry, unique_repo)
    far = registry_factory()
    config = mirror_config(tmp_path, registry, far, unique_repo)
    archive = export_tar(tmp_path, config)
    index_at, index_size = member_span(archive, "index.json")
    front = archive.read_bytes()[: index_at + index_size + 511]  # everything after index.json is cut
    done = piped(["import", "-", "--dry-run", "-o", "json"], front)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["report"]["results"][0]["tags"]
    assert [(row["tag"], row["status"]) for row in rows] == [("1.0.0", "would-copy"), ("2.0.0", "would-copy")]
    assert images.tags_of(far, "mirror/app") == []


def test_a_pipe_cut_mid_layer_fails_only_the_tags_past_the_cut(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    pushed = seed(registry, unique_repo)
    far = registry_factory()
    config = mirror_config(tmp_path, registry, far, unique_repo)
    archive = export_tar(tmp_path, config)
    big_layer = pushed["2.0.0"].layers[1].digest  # blobs follow the index order: 1.0.0's come first
    offset, size = member_span(archive, "blobs/" + big_layer.replace(":", "/"))
    done = piped(["import", "-", "-o", "json"], archive.read_bytes()[: offset + size // 2])
    assert done.returncode == 1
    rows = {row["tag"]: row for row in json.loads(done.stdout)["report"]["results"][0]["tags"]}
    assert rows["1.0.0"]["status"] == "copied"
    assert rows["2.0.0"]["status"] == "failed"
    assert f"blob {big_layer} was not pushed: " in rows["2.0.0"]["error"]
    assert "truncated tar" in rows["2.0.0"]["error"]
    assert images.tags_of(far, "mirror/app") == ["1.0.0"]


def test_verify_only_from_a_pipe_names_the_broken_tag(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    pushed = seed(registry, unique_repo)
    far = registry_factory()
    config = mirror_config(tmp_path, registry, far, unique_repo)
    archive = export_tar(tmp_path, config)
    flip_a_layer_byte(archive, pushed["1.0.0"].layers[1].digest)
    done = piped(["import", "-", "--verify-only", "-o", "json"], archive.read_bytes())
    assert done.returncode == 1
    report = json.loads(done.stdout)["report"]
    rows = {row["tag"]: row for row in report["results"][0]["tags"]}
    assert rows["2.0.0"]["status"] == "skipped"
    assert rows["1.0.0"]["status"] == "failed"
    assert f"blob {pushed['1.0.0'].layers[1].digest}: content hashes to sha256:" in rows["1.0.0"]["error"]
    assert report["archive"]["verified"] is False
    assert images.tags_of(far, "mirror/app") == []


def skopeo_archive(registry: Registry, repo: str, tmp_path: Path, layer_size: int) -> tuple[Path, images.Manifest]:
    """An `oci-archive` skopeo wrote (blobs first, index.json last) of one image, named in full."""
    image = images.make_image([layer_size], seed=76)
    images.push(registry, repo, "v1", image)
    archive = tmp_path / "skopeo.tar"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--src-tls-verify=false",
            f"docker://{registry.host}/{repo}:v1",
            f"oci-archive:{archive}:{registry.host}/far/app:v1",
        ],
        check=True,
        capture_output=True,
    )
    return archive, image


def test_a_small_archive_with_its_index_last_imports_from_a_pipe(
    tmp_path: Path, registry: Registry, unique_repo: str
) -> None:
    archive, image = skopeo_archive(registry, unique_repo, tmp_path, 2048)
    done = piped(["import", "-", "-o", "json"], archive.read_bytes())
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)["report"]["results"][0]["tags"]
    assert (row["tag"], row["status"], row["digest"]) == ("v1", "copied", image.digest)
    assert images.get_manifest(registry, "far/app", "v1").digest == image.digest


def test_a_large_archive_with_its_index_last_is_refused_in_one_line(
    tmp_path: Path, registry: Registry, unique_repo: str
) -> None:
    archive, image = skopeo_archive(registry, unique_repo, tmp_path, 5 << 20)
    layer = image.layers[0]
    done = piped(["import", "-"], archive.read_bytes())
    assert (done.returncode, done.stdout) == (1, b"")
    assert done.stderr.decode() == (
        f"✗ -: blobs/{layer.digest.replace(':', '/')} ({layer.size} bytes) comes before index.json; a piped"
        " archive must hold its manifests and index.json first, as fluxmirror export writes them: import this"
        " one from a file\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["import", "-", "-"], "import - -: the archive and the config cannot both come from stdin"),
        (["export", "-", "--to", "-"], "--to -: the archive goes to stdout, so the config cannot come from stdin"),
        (["export", "mirror.yaml", "--to", "-", "--split-size", "1G"], "--split-size needs a .tar target"),
    ],
)
def test_stdin_and_stdout_are_each_used_once(argv: list[str], message: str) -> None:
    done = piped(argv, b"")
    assert (done.returncode, done.stdout) == (1, b"")
    assert done.stderr.decode().startswith(f"✗ {message}") and done.stderr.count(b"\n") == 1, done.stderr
