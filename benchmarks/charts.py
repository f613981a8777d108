"""Chart handling: reading a large `index.yaml` and building a chart's config blob from its archive.

Each case is set against its floor, the least work that could give the answer: for the index, a
C YAML parse of the whole document (what a naive loader does) and `json.loads` of the same data;
for the archive, decompressing it with no tar parsing at all. The archive reader is also compiled
with Cython (pure-Python mode, in a scratch directory) to see whether a native build would win.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import yaml

from benchmarks.localenv import REPO_ROOT, build_chart, large_index
from benchmarks.selection import best_of
from fluxmirror.helm import archive
from fluxmirror.helm.chart import load_chart
from fluxmirror.helm.index import parse_index

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _large_chart(files: int) -> bytes:
    """A chart with many templates (an umbrella chart's size): `files` files of about 4 KiB."""
    body = b"apiVersion: v1\nkind: ConfigMap\ndata:\n" + b"  key: value-with-some-text-in-it\n" * 120
    return build_chart("big", "1.0.0", files={f"templates/t{n:05d}.yaml": body for n in range(files)})


def _cython_archive() -> ModuleType | None:
    """`fluxmirror.helm.archive` compiled by Cython as it stands, or None when it cannot be built here."""
    scratch = Path(tempfile.mkdtemp(prefix="fluxmirror-cython-"))
    try:
        source = scratch / "archive_c.py"
        shutil.copyfile(REPO_ROOT / "fluxmirror" / "helm" / "archive.py", source)
        build = (
            "from setuptools import setup; from Cython.Build import cythonize; "
            "setup(ext_modules=cythonize(['archive_c.py'], language_level=3, quiet=True))"
        )
        built = subprocess.run(
            [sys.executable, "-c", build, "build_ext", "--inplace"], cwd=scratch, capture_output=True, check=False
        )
        if built.returncode != 0:
            return None
        library = next(scratch.glob("archive_c*.so"), None)
        if library is None:
            return None
        spec = importlib.util.spec_from_file_location("archive_c", library)
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run() -> list[tuple[str, float, str, float]]:
    """(case, seconds, floor name, ratio to the floor) rows."""
    rows: list[tuple[str, float, str, float]] = []
    index = large_index(charts=800, versions=20)
    as_json = json.dumps(yaml.load(index, Loader=_YAML_LOADER)).encode()  # noqa: S506 - safe loader
    full_yaml = best_of(2, lambda: yaml.load(index, Loader=_YAML_LOADER))  # noqa: S506 - safe loader
    json_floor = best_of(3, lambda: json.loads(as_json))
    size = f"{len(index) / 1e6:.1f} MB index"
    for case, seconds in (
        (f"{size}, one chart (fluxmirror)", best_of(5, lambda: parse_index(index, "chart-0400"))),
        (f"{size}, whole index (fluxmirror)", best_of(2, lambda: parse_index(index))),
    ):
        rows.append((case, seconds, "C YAML parse", seconds / full_yaml))
    rows.append((f"{size}, json.loads of the same data", json_floor, "C YAML parse", json_floor / full_yaml))

    for label, chart in (
        ("typical chart (4 files)", build_chart("demo", "1.0.0")),
        ("3,000-file chart", _large_chart(3000)),
    ):
        floor = best_of(5, functools.partial(gzip.decompress, chart))
        seconds = best_of(5, functools.partial(load_chart, chart))
        rows.append((f"{label}: config blob (pure Python)", seconds, "gunzip only", seconds / floor))
        compiled = _cython_archive()
        if compiled is not None:
            native = best_of(5, functools.partial(compiled.read_root_files, chart))
            python = best_of(5, functools.partial(archive.read_root_files, chart))
            rows.append((f"{label}: archive scan, Cython vs Python", native, "Python scan", native / python))
    return rows


def report() -> str:
    lines = [f"{'chart handling':<58} {'seconds':>9}  {'× floor':>8}  floor"]
    lines += [f"{case:<58} {seconds:>9.4f}  {ratio:>8.2f}  {floor}" for case, seconds, floor, ratio in run()]
    return "\n".join(lines)
