"""Air gap: `export` and `import` against skopeo and against curl floors, in one run.

Why this scenario: an air-gapped mirror moves large layers twice, registry → removable disk on the
connected side and disk → registry on the far side, and what users complain about in the tools
that do it today is time, temporary disk and memory (docs/airgap.md, design airgap.md §2.8). The
scenario repeats the one the prototypes were measured with (§2.8): 2 GiB of incompressible random
layers, 4 tags × 2 layers × 256 MiB, in one repository of a local docker-registry, both cores
shared with the registry.

* Export to a layout directory: fluxmirror `export --to DIR` against `skopeo copy docker://…
  oci:DIR:<ref>` (one invocation per tag, into one layout) and the floor, one `curl --parallel`
  GETting every blob to a file, 4 at a time, with no hashing and no manifests.
* Export to a tar: fluxmirror `export --to FILE.tar` (which stages a layout beside the tar, then
  packs it; the pack is timed apart by watching the files appear) against `skopeo copy …
  oci-archive:`, one archive per tag, the only way skopeo writes several images.
* Import into an empty registry: fluxmirror `import FILE.tar` (seekable) against `skopeo copy
  oci:DIR:<ref> docker://…` per tag and the floor, a POST, one PATCH streaming the file and a
  PUT per blob with curl, 4 blobs at a time (`xargs -P 4`), no hashing and no manifests.

Every tool is its own subprocess behind `rusage.py` (wall, CPU, peak RSS and the bytes it wrote
to the disk); every result is checked before its time counts: each blob at its destination hashes
to its name, each tag has the source's digest, and fluxmirror's report says every tag was
copied. Per round, the tools of each path run in a shuffled order; each keeps its best wall time
of the rounds. The import destination is one registry, named in the archives, whose storage is
wiped (and checked empty) before every import run. Import children get an empty ``TMPDIR``,
watched while they run, so temporary disk is measured, not assumed.

The CLI runs as ``python -m fluxmirror`` with this checkout first on ``PYTHONPATH``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import shutil
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol, Self

from benchmarks.copy import BenchmarkError, Target, check_checkout, measure
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

__all__ = ["FULL", "QUICK", "AirgapResults", "Sizes", "run"]

REPO = "bench/airgap"
EXPORT_LAYOUT, EXPORT_TAR, IMPORT = "export → layout", "export → tar", "import"
IMPORT_PIPE, VERIFY = "import from a pipe", "import --verify-only"
FLOOR, SKOPEO_OCI, SKOPEO_ARCHIVE, FLUXMIRROR = "floor (curl)", "skopeo oci:", "skopeo oci-archive:", "fluxmirror"
GiB = 1 << 30
_READ = 4 * MiB

# The import floor: per blob a POST for a session, one PATCH streaming the file (-T, no Expect:
# round trip), and the PUT with the digest; 4 blobs at a time. Arguments: URL REPO then FILE DIGEST pairs.
_UPLOAD_FLOOR = r"""
set -euo pipefail
url=$1 repo=$2; shift 2
upload() {
  local file=$1 digest=$2 location
  location=$(curl -sS -f -X POST -o /dev/null -D - "$url/v2/$repo/blobs/uploads/" | tr -d '\r' \
    | sed -n 's/^[Ll]ocation: //p')
  location=$(curl -sS -f -X PATCH -H 'Expect:' -H 'Content-Type: application/octet-stream' -T "$file" \
    -o /dev/null -D - "$location" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  case $location in *\?*) location="$location&digest=$digest" ;; *) location="$location?digest=$digest" ;; esac
  curl -sS -f -X PUT -o /dev/null "$location"
}
export -f upload
export url repo
printf '%s\n' "$@" | xargs -P 4 -n 2 bash -c 'upload "$1" "$2"' _
"""


@dataclass(frozen=True)
class Sizes:
    tags: int
    layers: tuple[int, ...]
    runs: int  # each tool's best wall time of this many rounds, tools shuffled within a round


FULL = Sizes(4, (256 * MiB, 256 * MiB), runs=3)
QUICK = Sizes(2, (16 * MiB, 16 * MiB), runs=2)


@dataclass(frozen=True)
class Measurement:
    path: str
    tool: str
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    written_bytes: int  # ru_oublock: what the tool dirtied for the disk
    temp_peak_bytes: int | None = None  # import only: the most its empty TMPDIR held at any sample


@dataclass(frozen=True)
class PackMarks:
    """When fluxmirror's tar export moved from phase to phase, seconds from the child's start."""

    planned: float  # the tar's `.part` appeared: every manifest is known, the blobs start to stream
    renamed: float  # `FILE.tar` exists: the sidecar is written and the tar renamed
    total: float  # the child's wall time (the staging directory removed, the report printed)


@dataclass
class AirgapResults:
    sizes: Sizes
    payload_bytes: int
    measurements: list[Measurement]
    pack_marks: list[PackMarks]
    skopeo_version: str
    notes: list[str] = field(default_factory=list)

    def best(self, path: str, tool: str) -> Measurement:
        """The fastest run (its CPU time and bytes written), the highest peak RSS and TMPDIR peak."""
        runs = [m for m in self.measurements if (m.path, m.tool) == (path, tool)]
        fastest = min(runs, key=lambda m: m.seconds)
        return Measurement(
            path,
            tool,
            fastest.seconds,
            fastest.cpu_seconds,
            max(m.peak_rss_mib for m in runs),
            fastest.written_bytes,
            max((m.temp_peak_bytes for m in runs if m.temp_peak_bytes is not None), default=None),
        )

    def rows(self) -> list[Measurement]:
        order = {
            EXPORT_LAYOUT: (FLOOR, SKOPEO_OCI, FLUXMIRROR),
            EXPORT_TAR: (SKOPEO_ARCHIVE, FLUXMIRROR),
            IMPORT: (FLOOR, SKOPEO_OCI, FLUXMIRROR),
            IMPORT_PIPE: (FLUXMIRROR,),
            VERIFY: (FLUXMIRROR,),
        }
        return [self.best(path, tool) for path, tools in order.items() for tool in tools]

    def ratio(self, path: str, tool: str, baseline_path: str, baseline: str) -> float:
        return self.best(path, tool).seconds / self.best(baseline_path, baseline).seconds

    def targets(self) -> list[Target]:
        """The issue's targets, and the two more of design §2.8 (marked)."""
        rss = max(self.best(path, FLUXMIRROR).peak_rss_mib for path in (EXPORT_LAYOUT, EXPORT_TAR, IMPORT))
        temp = self.best(IMPORT, FLUXMIRROR).temp_peak_bytes or 0
        ratios = (
            ("export → layout time, × skopeo's copy to an oci: layout", EXPORT_LAYOUT, EXPORT_LAYOUT, SKOPEO_OCI, 0.70),
            ("export → layout time, × the curl floor (§2.8)", EXPORT_LAYOUT, EXPORT_LAYOUT, FLOOR, 2.3),
            ("export → tar time, × skopeo's oci-archive: copies", EXPORT_TAR, EXPORT_TAR, SKOPEO_ARCHIVE, 0.40),
            (
                "export → tar time, × skopeo's copy to an oci: layout (§2.8)",
                EXPORT_TAR,
                EXPORT_LAYOUT,
                SKOPEO_OCI,
                0.85,
            ),
            ("import time, seekable tar, × the curl floor", IMPORT, IMPORT, FLOOR, 1.0),
            ("import time, seekable tar, × skopeo's copy from an oci: layout", IMPORT, IMPORT, SKOPEO_OCI, 0.6),
            ("import time, from a pipe, × the curl floor", IMPORT_PIPE, IMPORT, FLOOR, 1.5),
        )
        verify = self.best(VERIFY, FLUXMIRROR).seconds / (self.payload_bytes / 1e9)
        return [
            *(
                Target(text, self.ratio(path, FLUXMIRROR, baseline_path, baseline), limit)
                for text, path, baseline_path, baseline, limit in ratios
            ),
            Target("fluxmirror peak RSS, export and import", rss, 150.0, "{:.0f} MiB", strict=True),
            Target("fluxmirror import, temporary disk (TMPDIR peak, every run)", temp, 0, "{:.0f} B"),
            Target("import --verify-only, warm cache, s per GB (1.7 GB/s: 0.59)", verify, 1 / 1.7, "{:.2f} s/GB"),
        ]

    def _note(self) -> str:
        s = self.sizes
        note = (
            f"airgap: {s.tags} tags × {len(s.layers)} × {s.layers[0] // MiB} MiB "
            f"({self.payload_bytes / GiB:.2f} GiB of blobs), fluxmirror vs skopeo {self.skopeo_version} "
            "vs curl floors, "
            f"{os.cpu_count()} CPUs, best wall time (highest peak RSS) of {s.runs} round(s), tools shuffled"
        )
        return note + (" — reduced sizes: the targets are indicative only" if s != FULL else "")

    def _table(self) -> list[tuple[str, ...]]:
        baselines = {EXPORT_LAYOUT: SKOPEO_OCI, EXPORT_TAR: SKOPEO_ARCHIVE, IMPORT: SKOPEO_OCI}
        floors = {EXPORT_LAYOUT: EXPORT_LAYOUT, IMPORT: IMPORT, IMPORT_PIPE: IMPORT}
        rows: list[tuple[str, ...]] = [
            ("path", "tool", "wall s", "CPU s", "peak RSS MiB", "GB/s", "disk written GiB", "× skopeo", "× floor")
        ]
        for m in self.rows():
            skopeo = self.best(m.path, baselines[m.path]).seconds if m.path in baselines else None
            floor = self.best(floors[m.path], FLOOR).seconds if m.path in floors else None
            rows.append(
                (
                    m.path,
                    m.tool,
                    f"{m.seconds:.2f}",
                    f"{m.cpu_seconds:.2f}",
                    f"{m.peak_rss_mib:.0f}",
                    f"{self.payload_bytes / m.seconds / 1e9:.2f}",
                    f"{m.written_bytes / GiB:.2f}",
                    f"{m.seconds / skopeo:.2f}" if skopeo else "–",
                    f"{m.seconds / floor:.2f}" if floor else "–",
                )
            )
        return rows

    def _pack_lines(self) -> list[str]:
        if not self.pack_marks:
            return []
        best = min(self.pack_marks, key=lambda marks: marks.total)
        layout = self.best(EXPORT_LAYOUT, FLUXMIRROR).seconds
        return [
            f"fluxmirror export → tar, fastest run ({best.total:.2f} s), by phase (files watched every 10 ms): "
            f"planned (manifests only) {best.planned:.2f} s, blobs fetched into their places in the tar and "
            f"the tar hashed in order {best.renamed - best.planned:.2f} s, exit {best.total - best.renamed:.2f} s "
            f"(export → layout: {layout:.2f} s)"
        ]

    def text(self) -> str:
        rows = self._table()
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [self._note(), ""]
        for row in rows:
            cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
            lines.append("  ".join(cells).rstrip())
        imported = self.best(IMPORT, FLUXMIRROR)
        lines += [
            "",
            f"fluxmirror import: TMPDIR peak {imported.temp_peak_bytes or 0} bytes, "
            f"{imported.written_bytes} bytes written to disk (ru_oublock)",
            *self._pack_lines(),
            *self.notes,
            "",
            *(target.line() for target in self.targets()),
        ]
        return "\n".join(lines)

    def markdown(self) -> str:
        rows = self._table()
        lines = [self._note(), "", "| " + " | ".join(rows[0]) + " |", "| --- | --- |" + " ---: |" * (len(rows[0]) - 2)]
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        lines += ["", *self._pack_lines(), "", *(f"- {target.line()}" for target in self.targets())]
        return "\n".join(lines) + "\n"


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _tags(count: int) -> list[str]:
    """Semver tags, so fluxmirror's default semver sort with `limit: 0` selects them all."""
    return [f"1.0.{n}" for n in range(count)]


# --- checks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    images: list[PushedImage]
    manifests: dict[str, bytes]  # digest → the manifest's bytes
    sizes: dict[str, int]  # every blob (config, layers) digest → size

    def expected(self, target: Registry) -> dict[str, str]:
        """Full destination reference → manifest digest: what an archive's index.json must name."""
        return {target.ref(REPO, image.tag): image.digest for image in self.images}


def _read_source(source: Registry, images: list[PushedImage]) -> _Source:
    manifests: dict[str, bytes] = {}
    sizes: dict[str, int] = {}
    for image in images:
        fetched = get_manifest(source, REPO, image.digest)
        manifests[image.digest] = fetched.data
        document = json.loads(fetched.data)
        for descriptor in (document["config"], *document["layers"]):
            sizes[descriptor["digest"]] = descriptor["size"]
    return _Source(images, manifests, sizes)


def _hash_stream(stream: _Readable) -> tuple[str, int]:
    hasher, size = hashlib.sha256(), 0
    while chunk := stream.read(_READ):
        hasher.update(chunk)
        size += len(chunk)
    return "sha256:" + hasher.hexdigest(), size


def _check_blobs(opener: Callable[[str], _Readable], sizes: Mapping[str, int], what: str) -> None:
    """Every blob opens, hashes to its digest and has its size; two at a time (hashlib frees the GIL)."""

    def check(digest: str) -> None:
        with opener(digest) as stream:
            actual, size = _hash_stream(stream)
        if (actual, size) != (digest, sizes[digest]):
            raise BenchmarkError(f"{what}: blob {digest} ({sizes[digest]} B) holds {actual} ({size} B)")

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(check, sizes))


def _check_index(index: bytes, expected: Mapping[str, str], what: str) -> None:
    named = {
        entry.get("annotations", {}).get("org.opencontainers.image.ref.name"): entry["digest"]
        for entry in json.loads(index)["manifests"]
    }
    if named != dict(expected):
        raise BenchmarkError(f"{what}: index.json names {named}, expected {dict(expected)}")


def _blob_path(root: Path, digest: str) -> Path:
    algorithm, _, encoded = digest.partition(":")
    return root / "blobs" / algorithm / encoded


def _check_layout(root: Path, source: _Source, expected: Mapping[str, str], what: str) -> None:
    _check_index((root / "index.json").read_bytes(), expected, what)
    wanted = {digest: len(body) for digest, body in source.manifests.items() if digest in expected.values()}
    wanted |= _blobs_of(source, expected.values())
    _check_blobs(lambda digest: _blob_path(root, digest).open("rb"), wanted, what)


def _blobs_of(source: _Source, digests: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for digest in digests:
        document = json.loads(source.manifests[digest])
        for descriptor in (document["config"], *document["layers"]):
            out[descriptor["digest"]] = descriptor["size"]
    return out


def _check_tar(path: Path, source: _Source, expected: Mapping[str, str], what: str) -> None:
    with tarfile.open(path, "r:") as archive:
        members = {member.name: member for member in archive.getmembers()}

        def opener(digest: str) -> _Readable:
            if (member := members.get(str(_blob_path(Path(), digest)))) is None:
                raise BenchmarkError(f"{what}: no member for {digest}")
            return _Slice(path, member.offset_data, member.size)

        index = archive.extractfile("index.json")
        if index is None:
            raise BenchmarkError(f"{what}: no index.json")
        _check_index(index.read(), expected, what)
        wanted = {digest: len(body) for digest, body in source.manifests.items() if digest in expected.values()}
        _check_blobs(opener, wanted | _blobs_of(source, expected.values()), what)


class _Slice:
    """A member's bytes read from its offset through a file of its own, so two threads can hash two members."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        self._file = path.open("rb")
        self._file.seek(offset)
        self._left = size

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        data = self._file.read(n)
        self._left -= len(data)
        return data

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc_info: Any) -> Any: ...


def _head_blob(registry: Registry, digest: str) -> int | None:
    connection = http.client.HTTPConnection(registry.host, timeout=30)
    try:
        connection.request("HEAD", f"/v2/{REPO}/blobs/{digest}")
        response = connection.getresponse()
        response.read()
        return int(response.getheader("Content-Length", "-1")) if response.status == 200 else None
    finally:
        connection.close()


def _catalog(registry: Registry) -> list[str]:
    connection = http.client.HTTPConnection(registry.host, timeout=30)
    try:
        connection.request("GET", "/v2/_catalog")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise BenchmarkError(f"{registry.host}: GET /v2/_catalog: HTTP {response.status}")
        return list(json.loads(body).get("repositories") or [])
    finally:
        connection.close()


def _check_pushed(target: Registry, source: _Source, tool: str, *, manifests: bool) -> None:
    """Every blob is at the destination with its size; with ``manifests``, every tag with the source's digest."""
    for digest, size in source.sizes.items():
        if (actual := _head_blob(target, digest)) != size:
            raise BenchmarkError(f"{tool}: the destination has blob {digest} as {actual} bytes, expected {size}")
    if not manifests:
        return
    expected = {image.tag: image.digest for image in source.images}
    if (tags := sorted(list_tags(target, REPO))) != sorted(expected):
        raise BenchmarkError(f"{tool} left tags {tags}, expected {sorted(expected)}")
    for tag, digest in expected.items():
        if (actual_digest := get_manifest(target, REPO, tag).digest) != digest:
            raise BenchmarkError(f"{tool} pushed {REPO}:{tag} as {actual_digest}, the source has {digest}")


def _check_report(stdout: str, source: _Source, kind: str, fmt: str) -> None:
    document = json.loads(stdout)
    report = document["report"]
    summary = report["summary"]
    others = {key: value for key, value in summary.items() if key not in ("copied", "entries", "exitCode") and value}
    if document.get("kind") != kind or summary.get("copied") != len(source.images) or others or summary["exitCode"]:
        raise BenchmarkError(f"fluxmirror {kind} should have copied {len(source.images)} tags: {summary}")
    rows = {row["tag"]: row for result in report["results"] for row in result["tags"]}
    for image in source.images:
        if rows.get(image.tag, {}).get("digest") != image.digest or rows[image.tag]["status"] != "copied":
            raise BenchmarkError(f"fluxmirror {kind}: row for {image.tag} is {rows.get(image.tag)}")
    if report.get("archive", {}).get("format") != fmt:
        raise BenchmarkError(f"fluxmirror {kind}: archive block {report.get('archive')}, expected format {fmt}")


# --- watchers -------------------------------------------------------------------------------


@contextmanager
def _watch(sample: Callable[[float], None], interval: float) -> Iterator[None]:
    """Call ``sample(seconds since start)`` every ``interval`` on a thread while the block runs."""
    stop = threading.Event()
    started = time.perf_counter()

    def loop() -> None:
        while not stop.is_set():
            sample(time.perf_counter() - started)
            stop.wait(interval)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _tree_bytes(root: Path) -> int:
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            with suppress(FileNotFoundError):
                total += os.lstat(os.path.join(directory, name)).st_size
    return total


# --- the bench ------------------------------------------------------------------------------


class _Bench:
    def __init__(self, envs: LocalRegistries, source: Registry, target: Registry, data: _Source) -> None:
        self._envs = envs
        self._source = source
        self._target = target
        self._data = data
        self._env = isolated_env()
        # The checkout next to this file, first on the child's path (ahead of the venv's editable install).
        self._flux_env = {**self._env, "PYTHONPATH": str(REPO_ROOT)}
        self.measurements: list[Measurement] = []
        self.pack_marks: list[PackMarks] = []
        self._config = envs.scratch("airgap.yaml")
        self._config.write_text(
            json.dumps(
                {
                    "apiVersion": "mirror.plugin.fluxcd.io/v1beta1",
                    "kind": "Config",
                    "artifacts": [
                        {
                            "source": source.ref(REPO, None),
                            "destination": target.ref(REPO, None),
                            "selector": {"limit": 0},
                        }
                    ],
                }
            )
        )

    def check_checkout(self) -> None:
        check_checkout(self._flux_env, self._envs.root)

    def _record(self, m: Measurement) -> None:
        self.measurements.append(m)
        temp = "" if m.temp_peak_bytes is None else f"  TMPDIR peak {m.temp_peak_bytes} B"
        _say(
            f"  {m.path:<16} {m.tool:<20} {m.seconds:7.2f} s  {m.cpu_seconds:6.2f} CPU s  "
            f"{m.peak_rss_mib:5.0f} MiB  wrote {m.written_bytes / GiB:5.2f} GiB{temp}"
        )

    def _measure_all(
        self, path: str, tool: str, argvs: Sequence[Sequence[str]], env: Mapping[str, str], temp: Path | None = None
    ) -> list[str]:
        """Run the argvs one after another as one measurement (summed wall and CPU, highest RSS)."""
        seconds = cpu = rss = 0.0
        written = 0
        outputs: list[str] = []
        peak = [0]

        def sample(_: float) -> None:
            if temp is not None:
                peak[0] = max(peak[0], _tree_bytes(temp))

        for argv in argvs:
            with _watch(sample, 0.05):
                child = measure(argv, env, self._envs.root)
            seconds, cpu, rss = seconds + child.seconds, cpu + child.cpu_seconds, max(rss, child.peak_rss_mib)
            written += child.written_bytes
            outputs.append(child.stdout)
        self._record(Measurement(path, tool, seconds, cpu, rss, written, peak[0] if temp is not None else None))
        return outputs

    # export ------------------------------------------------------------------------------

    def export_layout_fluxmirror(self, out: Path) -> None:
        argv = [sys.executable, "-m", "fluxmirror", "export", str(self._config), "--to", str(out)]
        (stdout,) = self._measure_all(
            EXPORT_LAYOUT, FLUXMIRROR, [[*argv, "-o", "json", "--no-progress"]], self._flux_env
        )
        _check_report(stdout, self._data, "ExportReport", "layout")
        _check_layout(out, self._data, self._data.expected(self._target), FLUXMIRROR)

    def export_layout_skopeo(self, out: Path) -> None:
        argvs = [
            skopeo_invocation(
                "copy", "--preserve-digests", self._source.docker_ref(REPO, image.tag), f"oci:{out}:{reference}"
            )
            for image, reference in zip(self._data.images, self._data.expected(self._target), strict=True)
        ]
        self._measure_all(EXPORT_LAYOUT, SKOPEO_OCI, argvs, self._env)
        _check_layout(out, self._data, self._data.expected(self._target), SKOPEO_OCI)

    def export_floor(self, out: Path) -> None:
        (out / "blobs" / "sha256").mkdir(parents=True)
        argv = ["curl", "-sS", "-f", "--parallel", "--parallel-max", "4"]
        for digest in self._data.sizes:
            argv += ["-o", str(_blob_path(out, digest)), f"{self._source.url}/v2/{REPO}/blobs/{digest}"]
        self._measure_all(EXPORT_LAYOUT, FLOOR, [argv], self._env)
        _check_blobs(lambda digest: _blob_path(out, digest).open("rb"), self._data.sizes, FLOOR)

    def export_tar_fluxmirror(self, out: Path) -> None:
        argv = [sys.executable, "-m", "fluxmirror", "export", str(self._config), "--to", str(out)]
        marks: dict[str, float] = {}

        def staged() -> list[Path]:
            return list(out.parent.glob(f".{out.name}.staging-*"))

        def sample(at: float) -> None:
            if any(part for staging in staged() for part in staging.glob("*.part")):
                marks.setdefault("part", at)
            if out.exists():
                marks.setdefault("renamed", at)
                marks.setdefault("part", at)

        started = time.perf_counter()
        with _watch(sample, 0.01):
            (stdout,) = self._measure_all(
                EXPORT_TAR, FLUXMIRROR, [[*argv, "-o", "json", "--no-progress"]], self._flux_env
            )
        watched = time.perf_counter() - started
        _check_report(stdout, self._data, "ExportReport", "tar")
        _check_tar(out, self._data, self._data.expected(self._target), FLUXMIRROR)
        if leftovers := staged():
            raise BenchmarkError(f"fluxmirror left {leftovers} behind")
        # The watcher's clock starts before measure()'s sync and spawn: align on the child's end.
        child = self.measurements[-1].seconds
        offset = watched - child
        if {"part", "renamed"} <= marks.keys():
            self.pack_marks.append(PackMarks(marks["part"] - offset, marks["renamed"] - offset, child))

    def export_tar_skopeo(self, out: Path) -> None:
        out.mkdir()
        argvs = [
            skopeo_invocation(
                "copy",
                "--preserve-digests",
                self._source.docker_ref(REPO, image.tag),
                f"oci-archive:{out / f'{image.tag}.tar'}:{reference}",
            )
            for image, reference in zip(self._data.images, self._data.expected(self._target), strict=True)
        ]
        self._measure_all(EXPORT_TAR, SKOPEO_ARCHIVE, argvs, self._env)
        for image, reference in zip(self._data.images, self._data.expected(self._target), strict=True):
            _check_tar(out / f"{image.tag}.tar", self._data, {reference: image.digest}, SKOPEO_ARCHIVE)

    # import ------------------------------------------------------------------------------

    def _empty_target(self, tool: str) -> Path:
        """Wipe the import destination's storage and check it is empty; an empty TMPDIR for the tool."""
        shutil.rmtree(self._target.root_dir, ignore_errors=True)
        if repositories := _catalog(self._target):
            raise BenchmarkError(f"the import destination still lists {repositories} after the wipe")
        temp = self._envs.scratch(f"tmp-{tool.split()[0]}")
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir()
        return temp

    def import_fluxmirror(self, archive: Path) -> None:
        temp = self._empty_target(FLUXMIRROR)
        before = sorted(os.listdir(archive.parent))
        argv = [sys.executable, "-m", "fluxmirror", "import", str(archive), "-o", "json", "--no-progress"]
        (stdout,) = self._measure_all(IMPORT, FLUXMIRROR, [argv], {**self._flux_env, "TMPDIR": str(temp)}, temp)
        _check_report(stdout, self._data, "ImportReport", "tar")
        _check_pushed(self._target, self._data, FLUXMIRROR, manifests=True)
        if (after := sorted(os.listdir(archive.parent))) != before:
            raise BenchmarkError(f"fluxmirror import left files beside the archive: {set(after) - set(before)}")

    def import_pipe_fluxmirror(self, archive: Path) -> None:
        """The same tar through `cat |`: read once, in member order, no temporary disk."""
        temp = self._empty_target(FLUXMIRROR)
        script = 'cat "$1" | exec "$2" -m fluxmirror import - -o json --no-progress'
        argv = ["bash", "-c", script, "pipe-import", str(archive), sys.executable]
        (stdout,) = self._measure_all(IMPORT_PIPE, FLUXMIRROR, [argv], {**self._flux_env, "TMPDIR": str(temp)}, temp)
        _check_report(stdout, self._data, "ImportReport", "tar")
        _check_pushed(self._target, self._data, FLUXMIRROR, manifests=True)

    def verify_fluxmirror(self, archive: Path) -> None:
        """`import --verify-only` of the tar just written (warm cache): hashing only, no registry."""
        argv = [sys.executable, "-m", "fluxmirror", "import", str(archive), "--verify-only", "-o", "json"]
        (stdout,) = self._measure_all(VERIFY, FLUXMIRROR, [[*argv, "--no-progress"]], self._flux_env)
        archive_block = json.loads(stdout)["report"]["archive"]
        if archive_block.get("verified") is not True:
            raise BenchmarkError(f"fluxmirror import --verify-only: {archive_block}")

    def import_skopeo(self, layout: Path) -> None:
        temp = self._empty_target(SKOPEO_OCI)
        argvs = [
            skopeo_invocation(
                "copy", "--preserve-digests", f"oci:{layout}:{reference}", self._target.docker_ref(REPO, image.tag)
            )
            for image, reference in zip(self._data.images, self._data.expected(self._target), strict=True)
        ]
        self._measure_all(IMPORT, SKOPEO_OCI, argvs, {**self._env, "TMPDIR": str(temp)}, temp)
        _check_pushed(self._target, self._data, SKOPEO_OCI, manifests=True)

    def import_floor(self, blobs: Path) -> None:
        temp = self._empty_target(FLOOR)
        pairs = [item for digest in self._data.sizes for item in (str(_blob_path(blobs, digest)), digest)]
        argv = ["bash", "-c", _UPLOAD_FLOOR, "upload-floor", self._target.url, REPO, *pairs]
        self._measure_all(IMPORT, FLOOR, [argv], {**self._env, "TMPDIR": str(temp)}, temp)
        _check_pushed(self._target, self._data, FLOOR, manifests=False)


def run(sizes: Sizes = FULL) -> AirgapResults:
    """Populate a source registry, run every path `sizes.runs` times, and clean up; progress goes to stderr."""
    with LocalRegistries() as envs:
        source, target = envs.start(), envs.start()
        _say(f"airgap: populating {source.host} with {sizes.tags} tags × {len(sizes.layers)} layers")
        data = _read_source(source, populate(source, REPO, _tags(sizes.tags), sizes.layers))
        bench = _Bench(envs, source, target, data)
        bench.check_checkout()
        shuffle = random.Random(2026)
        for round_ in range(sizes.runs):
            scratch = envs.scratch(f"round-{round_}")
            scratch.mkdir()
            skopeo_layout, floor_blobs, tar = scratch / "skopeo-layout", scratch / "floor", scratch / "fluxmirror.tar"
            exports: list[Callable[[], None]] = [
                partial(bench.export_layout_fluxmirror, scratch / "fluxmirror-layout"),
                partial(bench.export_layout_skopeo, skopeo_layout),
                partial(bench.export_floor, floor_blobs),
            ]
            tars: list[Callable[[], None]] = [
                partial(bench.export_tar_fluxmirror, tar),
                partial(bench.export_tar_skopeo, scratch / "skopeo-archives"),
            ]
            imports: list[Callable[[], None]] = [
                partial(bench.import_fluxmirror, tar),
                partial(bench.import_skopeo, skopeo_layout),
                partial(bench.import_floor, floor_blobs),
                partial(bench.import_pipe_fluxmirror, tar),
                partial(bench.verify_fluxmirror, tar),
            ]
            for group in (exports, tars, imports):
                shuffle.shuffle(group)
                for step in group:
                    step()
                # Drop what no later step reads, so a full round peaks at a few copies of the payload.
                for name in ("fluxmirror-layout", "skopeo-archives"):
                    shutil.rmtree(scratch / name, ignore_errors=True)
            shutil.rmtree(scratch)
        envs.wipe(target)
    return AirgapResults(sizes, sum(data.sizes.values()), bench.measurements, bench.pack_marks, skopeo_version())
