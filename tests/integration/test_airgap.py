"""`export` then `import` across an air gap lands what `sync` would, through a layout directory or a
deterministic tar, and other tools read what export writes.

Everything is the real thing: docker-registry as source and destinations, the CLI as a child
process, skopeo reading the archive.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path

import jsonschema
import pytest
from harness import images
from harness.airgap import export_tar, flip_a_layer_byte, mirror_config, mirrored, run, seed, write_config
from harness.referrers import SBOM, fallback_tag
from harness.registry import Registry, RegistryFactory
from harness.runner import FLUXMIRROR, entry, sync

pytestmark = pytest.mark.registry

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("form", ["layout", "tar"])
def test_export_then_import_equals_sync(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, unique_repo: str, form: str
) -> None:
    pushed = seed(registry, unique_repo)
    far, baseline = registry_factory(), registry_factory()
    spec = {"selector": {"limit": 0}, "includeReferrers": True}
    config = write_config(tmp_path, [entry(registry, far, unique_repo, "mirror/app", **spec)])
    target = str(tmp_path / ("archive.tar" if form == "tar" else "archive"))
    exported = run(tmp_path, "export", str(config), "--to", target, "-o", "json")
    assert exported.code == 0, exported.stdout + exported.stderr
    report = json.loads(exported.stdout)
    jsonschema.validate(report, json.loads((DOCS / "export-report-v1alpha1.json").read_text()))
    assert (report["apiVersion"], report["kind"]) == ("fluxmirror.dev/v1alpha1", "ExportReport")
    assert [row["status"] for row in report["report"]["results"][0]["tags"]] == ["copied", "copied"]
    assert report["report"]["archive"]["format"] == form
    if form == "tar":
        assert not Path(f"{target}.staging").exists()
        sidecar = Path(f"{target}.sha256").read_text().split()
        assert sidecar == [hashlib.sha256(Path(target).read_bytes()).hexdigest(), "archive.tar"]

    imported = run(tmp_path, "import", target, "-o", "json")
    assert imported.code == 0, imported.stdout + imported.stderr
    import_report = json.loads(imported.stdout)
    jsonschema.validate(import_report, json.loads((DOCS / "import-report-v1alpha1.json").read_text()))
    assert import_report["kind"] == "ImportReport"
    assert import_report["report"]["archive"]["indexDigest"] == report["report"]["archive"]["indexDigest"]
    rows = import_report["report"]["results"][0]["tags"]
    assert [(row["tag"], row["status"], row["digest"]) for row in rows] == [  # the archive's order: by name
        ("1.0.0", "copied", pushed["1.0.0"].digest),
        ("2.0.0", "copied", pushed["2.0.0"].digest),
    ]
    assert [(r["artifactType"], r["status"]) for r in rows[1]["referrers"]] == [(SBOM, "copied")]

    synced = sync(tmp_path, [entry(registry, baseline, unique_repo, "mirror/app", **spec)])
    assert synced.code == 0
    assert mirrored(far, "mirror/app", ["1.0.0", "2.0.0"]) == mirrored(baseline, "mirror/app", ["1.0.0", "2.0.0"])
    index_tag = fallback_tag(pushed["2.0.0"].digest)
    far_index = json.loads(images.get_manifest(far, "mirror/app", index_tag).data)
    baseline_index = json.loads(images.get_manifest(baseline, "mirror/app", index_tag).data)
    assert [d["digest"] for d in far_index["manifests"]] == [d["digest"] for d in baseline_index["manifests"]]

    again = run(tmp_path, "import", target, "-o", "json")
    assert [row["status"] for row in json.loads(again.stdout)["report"]["results"][0]["tags"]] == ["skipped"] * 2


def test_a_tar_export_is_deterministic_and_manifests_come_first(
    tmp_path: Path, registry: Registry, unique_repo: str
) -> None:
    seed(registry, unique_repo)
    config = write_config(tmp_path, [entry(registry, registry, unique_repo, "far/app", selector={"limit": 0})])
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    for target in (first, second):
        done = run(tmp_path, "export", str(config), "--to", str(target))
        assert done.code == 0, done.stderr
    assert first.read_bytes() == second.read_bytes()

    with tarfile.open(first) as archive:
        members = archive.getmembers()
        index = archive.extractfile("index.json")
        assert index is not None
        manifest_blobs = {entry["digest"].replace(":", "/") for entry in json.loads(index.read())["manifests"]}
    names = [member.name for member in members]
    assert names[0] == "oci-layout"
    index_at = names.index("index.json")
    assert all(f"blobs/{digest}" in names[1:index_at] for digest in manifest_blobs)
    assert all(member.mtime == 0 and member.uid == 0 and member.mode == 0o644 for member in members)


def test_skopeo_reads_what_export_writes(tmp_path: Path, registry: Registry, unique_repo: str) -> None:
    pushed = seed(registry, unique_repo)
    destination = f"{registry.host}/far/app"
    config = write_config(tmp_path, [{"source": f"{registry.host}/{unique_repo}", "destination": destination}])
    directory, archive = tmp_path / "layout", tmp_path / "layout.tar"
    for target in (directory, archive):
        assert run(tmp_path, "export", str(config), "--to", str(target)).code == 0
    for transport in (f"oci:{directory}", f"oci-archive:{archive}"):
        raw = subprocess.run(
            ["skopeo", "inspect", "--raw", f"{transport}:{destination}:2.0.0"], capture_output=True, check=True
        ).stdout
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == pushed["2.0.0"].digest


def test_import_refuses_tag_only_names_in_one_line(tmp_path: Path, registry: Registry, unique_repo: str) -> None:
    images.push(registry, unique_repo, "v1", images.make_image([1024], seed=74))
    layout = tmp_path / "skopeo-layout"
    subprocess.run(
        ["skopeo", "copy", "--src-tls-verify=false", f"docker://{registry.host}/{unique_repo}:v1", f"oci:{layout}:v1"],
        check=True,
        capture_output=True,
    )
    done = run(tmp_path, "import", str(layout))
    assert (done.code, done.stdout) == (1, "")
    assert done.stderr == (
        f"✗ {layout}: index.json names 'v1': import needs full references (registry/repository:tag); "
        "--map-tag-only-to REPOSITORY places tag-only names\n"
    )


def test_layouts_written_by_skopeo_and_umoci_import_with_a_mapping(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    image = images.make_image([2048], seed=75)
    images.push(registry, unique_repo, "v1", image)
    skopeo_layout, umoci_layout = tmp_path / "skopeo", tmp_path / "umoci"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--src-tls-verify=false",
            f"docker://{registry.host}/{unique_repo}:v1",
            f"oci:{skopeo_layout}:v1",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(["umoci", "init", "--layout", str(umoci_layout)], check=True, capture_output=True)
    subprocess.run(["umoci", "new", "--image", f"{umoci_layout}:empty"], check=True, capture_output=True)
    far = registry_factory()
    for layout, tag in ((skopeo_layout, "v1"), (umoci_layout, "empty")):
        done = run(tmp_path, "import", str(layout), "--map-tag-only-to", f"{far.host}/imported", "-o", "json")
        assert done.code == 0, done.stdout + done.stderr
        [row] = json.loads(done.stdout)["report"]["results"][0]["tags"]
        assert (row["tag"], row["status"]) == (tag, "copied")
        assert images.get_manifest(far, "imported", tag).digest == row["digest"]
    assert images.get_manifest(far, "imported", "v1").digest == image.digest


def test_a_flipped_byte_fails_only_its_tag_and_verify_only_reports_it(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    pushed = seed(registry, unique_repo)
    far = registry_factory()
    config = mirror_config(tmp_path, registry, far, unique_repo)
    archive = export_tar(tmp_path, config)
    flip_a_layer_byte(archive, pushed["1.0.0"].layers[1].digest)

    checked = run(tmp_path, "import", str(archive), "--verify-only", "-o", "json")
    assert checked.code == 1
    report = json.loads(checked.stdout)["report"]
    assert report["archive"]["verified"] is False
    rows = {row["tag"]: row for row in report["results"][0]["tags"]}
    assert rows["2.0.0"]["status"] == "skipped"
    assert rows["1.0.0"]["status"] == "failed" and "content hashes to sha256:" in rows["1.0.0"]["error"]
    assert images.tags_of(far, "mirror/app") == []  # verify-only pushes nothing

    imported = run(tmp_path, "import", str(archive), "-o", "json")
    assert imported.code == 1
    rows = {row["tag"]: row for row in json.loads(imported.stdout)["report"]["results"][0]["tags"]}
    assert rows["2.0.0"]["status"] == "copied"
    assert rows["1.0.0"]["status"] == "failed" and "content hashes to" in rows["1.0.0"]["error"]
    assert images.tags_of(far, "mirror/app") == ["2.0.0"]  # no manifest for the broken tag


def test_a_truncated_tar_is_one_line(tmp_path: Path, registry: Registry, unique_repo: str) -> None:
    seed(registry, unique_repo)
    config = write_config(tmp_path, [entry(registry, registry, unique_repo, "far/app", selector={"limit": 0})])
    archive = export_tar(tmp_path, config)
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    done = run(tmp_path, "import", str(archive))
    assert (done.code, done.stdout) == (1, "")
    assert done.stderr.startswith(f"✗ {archive}: ") and done.stderr.count("\n") == 1, done.stderr


def test_two_exporters_into_one_directory_keep_every_tag(tmp_path: Path, registry: Registry, unique_repo: str) -> None:
    for repo in (unique_repo, f"{unique_repo}-b"):
        seed(registry, repo)
    configs = [
        write_config(tmp_path, [entry(registry, registry, repo, f"far/{name}", selector={"limit": 0})], f"{name}.yaml")
        for repo, name in ((unique_repo, "one"), (f"{unique_repo}-b", "two"))
    ]
    layout = tmp_path / "shared"
    children = [
        subprocess.Popen([str(FLUXMIRROR), "export", str(config), "--to", str(layout)], stdout=subprocess.DEVNULL)
        for config in configs
    ]
    assert [child.wait(timeout=120) for child in children] == [0, 0]
    names = sorted(
        entry["annotations"]["org.opencontainers.image.ref.name"]
        for entry in json.loads((layout / "index.json").read_text())["manifests"]
        if "annotations" in entry
    )
    assert names == sorted(f"{registry.host}/far/{name}:{tag}" for name in ("one", "two") for tag in ("1.0.0", "2.0.0"))


def test_volumes_are_complete_layouts_importable_in_any_order(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    pushed = seed(registry, unique_repo)
    far = registry_factory()
    destination = f"{far.host}/mirror/app"
    config = mirror_config(tmp_path, registry, far, unique_repo)
    target = tmp_path / "archive.tar"
    split = 120_000
    exported = run(tmp_path, "export", str(config), "--to", str(target), "--split-size", str(split), "-o", "json")
    assert exported.code == 0, exported.stdout + exported.stderr
    volumes = json.loads(exported.stdout)["report"]["archive"]["volumes"]
    assert len(volumes) >= 2
    for volume in volumes:
        path = tmp_path / volume["name"]
        assert path.stat().st_size == volume["bytes"] <= split
        assert (tmp_path / f"{volume['name']}.sha256").read_text() == f"{volume['sha256']}  {volume['name']}\n"
        raw = subprocess.run(  # every volume is a layout of its own, holding every manifest
            ["skopeo", "inspect", "--raw", f"oci-archive:{path}:{destination}:2.0.0"], capture_output=True, check=True
        ).stdout
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == pushed["2.0.0"].digest

    first = run(tmp_path, "import", str(tmp_path / volumes[-1]["name"]), "-o", "json")  # the last volume alone
    errors = [row["error"] for row in json.loads(first.stdout)["report"]["results"][0]["tags"] if "error" in row]
    assert errors and all("is in volume archive.tar.0" in error and "import archive.tar.0" in error for error in errors)
    for volume in reversed(volumes[:-1]):
        run(tmp_path, "import", str(tmp_path / volume["name"]))
    last = run(tmp_path, "import", str(tmp_path / volumes[-1]["name"]), "-o", "json")
    assert last.code == 0, last.stdout
    assert mirrored(far, "mirror/app", ["1.0.0", "2.0.0"]) == {tag: image.digest for tag, image in pushed.items()}


def test_a_blob_larger_than_the_split_size_is_named(tmp_path: Path, registry: Registry, unique_repo: str) -> None:
    seed(registry, unique_repo)
    config = write_config(tmp_path, [entry(registry, registry, unique_repo, "far/app", selector={"limit": 0})])
    done = run(tmp_path, "export", str(config), "--to", str(tmp_path / "a.tar"), "--split-size", "20K")
    assert done.code == 1
    assert "does not fit a volume of --split-size 20000: use at least --split-size " in done.stderr
    assert done.stderr.count("\n") == 1


def _blobs_in(archive: Path) -> set[str]:
    with tarfile.open(archive) as tar:
        return {member.name for member in tar.getmembers() if member.name.startswith("blobs/")}


def test_a_delta_ships_only_what_the_receipt_lacks(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    """Export A, import it with a receipt, add a tag, export B against the receipt: B holds B's new
    blobs only (and every manifest); B fails where A was never imported, naming A, and lands where it was."""
    first = images.make_image([3000, 50_000], seed=81)
    images.push(registry, unique_repo, "1.0.0", first)
    far, empty = registry_factory(), registry_factory()
    config = mirror_config(tmp_path, registry, far, unique_repo)
    a, b, receipt = tmp_path / "a.tar", tmp_path / "b.tar", tmp_path / "receipt.tar"
    assert run(tmp_path, "export", str(config), "--to", str(a)).code == 0
    imported = run(tmp_path, "import", str(a), "--receipt-out", str(receipt), "-o", "json")
    assert imported.code == 0, imported.stdout + imported.stderr
    a_index = json.loads(imported.stdout)["report"]["archive"]["indexDigest"]

    second = images.make_image([3000, 60_000], seed=82)  # shares nothing with the first but the layout's shape
    images.push(registry, unique_repo, "2.0.0", second)
    exported = run(tmp_path, "export", str(config), "--to", str(b), "--base", str(receipt), "-o", "json")
    assert exported.code == 0, exported.stdout + exported.stderr
    old_blobs = {f"blobs/{blob.digest.replace(':', '/')}" for blob in (first.config, *first.layers)}
    new_blobs = {f"blobs/{blob.digest.replace(':', '/')}" for blob in (second.config, *second.layers)}
    assert new_blobs <= _blobs_in(b) and not (old_blobs & _blobs_in(b))
    assert json.loads(exported.stdout)["report"]["archive"]["blobs"]["inBase"] >= 2

    elsewhere_config = write_config(
        tmp_path, [entry(registry, empty, unique_repo, "mirror/app", selector={"limit": 0})], "elsewhere.yaml"
    )
    assert (
        run(tmp_path, "export", str(elsewhere_config), "--to", str(tmp_path / "c.tar"), "--base", str(receipt)).code
        == 0
    )
    missing = run(tmp_path, "import", str(tmp_path / "c.tar"), "-o", "json")
    failed = [row for row in json.loads(missing.stdout)["report"]["results"][0]["tags"] if row["status"] == "failed"]
    assert [row["tag"] for row in failed] == ["1.0.0"]
    assert f"import the archive with index {a_index} (its base) first" in failed[0]["error"]

    landed = run(tmp_path, "import", str(b), "-o", "json")
    assert landed.code == 0, landed.stdout + landed.stderr
    assert mirrored(far, "mirror/app", ["1.0.0", "2.0.0"]) == {"1.0.0": first.digest, "2.0.0": second.digest}
    assert run(tmp_path, "import", str(b)).code == 0  # twice, or after its base again: harmless
    assert run(tmp_path, "import", str(a)).code == 0
