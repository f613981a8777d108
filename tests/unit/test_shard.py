"""Sharding by destination (docs/sync.md#sharding): the split, the `--shard` grammar and `auto`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from fluxmirror.api.config import Artifact, Chart
from fluxmirror.cli import main
from fluxmirror.cli.options import parse_shard_flag
from fluxmirror.errors import UsageError
from fluxmirror.oci.reference import Repository, parse_repository
from fluxmirror.sync.chart_plan import build_chart_entries
from fluxmirror.sync.plan import ArtifactEntry
from fluxmirror.sync.shard import Shard, pick, shard_key, shard_of

NAMES = [f"registry-{k % 7}.example.com:5000/team-{k % 13}/app-{k}" for k in range(1000)]
DESTINATIONS = [parse_repository(name) for name in NAMES]


def test_split_is_the_documented_hash() -> None:
    """The first 8 bytes of SHA-256 of `registry/path`, big-endian, modulo n: other tools can compute it."""
    for repository in DESTINATIONS[:50]:
        key = f"{repository.registry}/{repository.path}".encode()
        expected = int.from_bytes(hashlib.sha256(key).digest()[:8], "big")
        assert [shard_of(repository, n) for n in (1, 2, 3, 7)] == [expected % n for n in (1, 2, 3, 7)]
    # Pinned, so that a change of the function (which would move entries between pods) cannot pass.
    names = ("ghcr.io/a/b", "docker.io/nginx", "reg:5000/x/y")
    assert [shard_of(parse_repository(name), 3) for name in names] == [0, 1, 2]


def test_split_is_the_same_in_every_process() -> None:
    """Not Python's salted `hash()`: processes with other hash seeds assign every entry alike."""
    code = (
        "import json, sys\n"
        "from fluxmirror.oci.reference import parse_repository\n"
        "from fluxmirror.sync.shard import shard_of\n"
        "print(json.dumps([shard_of(parse_repository(n), 5) for n in json.load(sys.stdin)]))\n"
    )
    here = [shard_of(repository, 5) for repository in DESTINATIONS]
    for seed in ("1", "4242"):
        child = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(NAMES),
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert json.loads(child.stdout) == here


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_shards_are_disjoint_and_cover_every_entry_in_order(count: int) -> None:
    picked = [pick(Shard(index, count), NAMES, parse_repository) for index in range(count)]
    assert sum(len(names) for names in picked) == len(NAMES)
    assert set().union(*map(set, picked)) == set(NAMES)
    for names in picked:
        assert names == [name for name in NAMES if name in set(names)]  # config order kept
    assert pick(None, NAMES, parse_repository) == NAMES


@pytest.mark.parametrize("count", [2, 3, 5, 8, 16])
def test_shards_are_balanced(count: int) -> None:
    """1000 destinations: every shard gets its fair share give or take 4 standard deviations of a
    uniform split (±63 entries of 500 for 2 shards, ±31 of 62.5 for 16)."""
    sizes = Counter(shard_of(repository, count) for repository in DESTINATIONS)
    fair, p = len(DESTINATIONS) / count, 1 / count
    spread = 4 * math.sqrt(len(DESTINATIONS) * p * (1 - p))
    assert sorted(sizes) == list(range(count))
    assert all(abs(size - fair) <= spread for size in sizes.values()), sizes


@pytest.mark.parametrize(
    "spellings",
    [
        ("nginx", "docker.io/nginx", "docker.io/library/nginx", "index.docker.io/library/nginx"),
        ("Reg.Example:5000/team/app", "reg.example:5000/team/app"),
    ],
)
def test_one_repository_however_spelled_is_one_shard(spellings: tuple[str, ...]) -> None:
    keys = {shard_key(parse_repository(name)) for name in spellings}
    assert len(keys) == 1
    assert len({shard_of(parse_repository(name), 97) for name in spellings}) == 1


def test_a_chart_counts_as_the_repository_it_is_pushed_to(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`oci://reg/charts` + `demo` writes `reg/charts/demo`: the shard of an artifact entry into it."""
    monkeypatch.setenv("HELM_REPOSITORY_CONFIG", str(tmp_path / "missing.yaml"))
    chart = Chart(name="demo", source="https://charts.example.com/", destination="oci://Reg.Example:5000/charts/")
    [entry] = asyncio.run(build_chart_entries([chart]))
    artifact = ArtifactEntry.of(Artifact(source="ghcr.io/x/demo", destination="reg.example:5000/charts/demo"))
    assert shard_key(entry.destination_repository) == shard_key(artifact.destination_repository)
    assert shard_key(entry.destination_repository) == "reg.example:5000/charts/demo"


def test_entries_left_to_other_shards_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    names = NAMES[:6]
    owners = [shard_of(parse_repository(name), 2) for name in names]
    with caplog.at_level(logging.INFO, logger="fluxmirror"):
        kept = pick(Shard(0, 2), names, parse_repository)
    assert kept == [name for name, owner in zip(names, owners, strict=True) if owner == 0]
    assert [record.getMessage() for record in caplog.records] == [
        f"entry left to another shard destination={name} shard=1/2"
        for name, owner in zip(names, owners, strict=True)
        if owner == 1
    ]


@pytest.mark.parametrize(("index", "count"), [(3, 3), (-1, 2), (0, 0)])
def test_a_shard_outside_its_count_cannot_exist(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="want 0 <= index < count"):
        Shard(index, count)


@pytest.mark.parametrize(("text", "shard"), [("0/1", Shard(0, 1)), ("2/3", Shard(2, 3)), ("07/10", Shard(7, 10))])
def test_shard_grammar(text: str, shard: Shard) -> None:
    assert parse_shard_flag(text, {}) == shard
    assert str(shard) == f"{shard.index}/{shard.count}"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("3/3", "the index is 0-based and must be below 3"),
        ("5/2", "the index is 0-based and must be below 2"),
        ("0/0", "the shard count must be at least 1"),
        ("1", "want i/n (0 <= i < n) or auto"),
        ("", "want i/n (0 <= i < n) or auto"),
        ("-1/3", "want i/n (0 <= i < n) or auto"),
        ("1/3/5", "want i/n (0 <= i < n) or auto"),
        (" 1/3", "want i/n (0 <= i < n) or auto"),
        ("１/３", "want i/n (0 <= i < n) or auto"),
        ("1/" + "9" * 10, "want i/n (0 <= i < n) or auto"),
        ("AUTO", "want i/n (0 <= i < n) or auto"),
    ],
)
def test_bad_shard_names_the_flag(text: str, reason: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_shard_flag(text, {})
    assert caught.value.message == f'invalid argument "{text}" for "--shard" flag: {reason}'


@pytest.mark.parametrize(
    ("env", "outcome"),
    [
        ({"JOB_COMPLETION_INDEX": "2", "JOB_COMPLETIONS": "3"}, Shard(2, 3)),
        ({"JOB_COMPLETION_INDEX": "0", "JOB_COMPLETIONS": "1"}, Shard(0, 1)),
        (
            {"JOB_COMPLETIONS": "3"},
            "--shard auto: JOB_COMPLETION_INDEX is not set (Kubernetes sets it in an Indexed Job's pods)",
        ),
        (
            {"JOB_COMPLETION_INDEX": "", "JOB_COMPLETIONS": "3"},
            "--shard auto: JOB_COMPLETION_INDEX is not set (Kubernetes sets it in an Indexed Job's pods)",
        ),
        (
            {"JOB_COMPLETION_INDEX": "1"},
            "--shard auto: JOB_COMPLETIONS is not set (set it to the Job's spec.completions)",
        ),
        (
            {"JOB_COMPLETION_INDEX": "one", "JOB_COMPLETIONS": "3"},
            '--shard auto: JOB_COMPLETION_INDEX="one" is not a 0-based index',
        ),
        (
            {"JOB_COMPLETION_INDEX": "1", "JOB_COMPLETIONS": "0"},
            '--shard auto: JOB_COMPLETIONS="0" is not a count of at least 1',
        ),
        (
            {"JOB_COMPLETION_INDEX": "3", "JOB_COMPLETIONS": "3"},
            "--shard auto: JOB_COMPLETION_INDEX=3 is not below JOB_COMPLETIONS=3",
        ),
    ],
    ids=[
        "index-2-of-3",
        "one-shard",
        "no-index",
        "empty-index",
        "no-count",
        "bad-index",
        "zero-count",
        "index-too-big",
    ],
)
def test_shard_auto_reads_the_indexed_job(env: dict[str, str], outcome: Shard | str) -> None:
    if isinstance(outcome, Shard):
        assert parse_shard_flag("auto", env) == outcome
        return
    with pytest.raises(UsageError) as caught:
        parse_shard_flag("auto", env)
    assert caught.value.message == outcome


# ---- through the command line --------------------------------------------------------------------

CONFIG = (
    "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\n"
    "artifacts:\n  - source: 127.0.0.1:1/aa/bb\n    destination: 127.0.0.1:1/bb\n"
)
OWNER = shard_of(Repository("127.0.0.1:1", "bb"), 2)


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("FLUX_MIRROR_CONFIG", "JOB_COMPLETION_INDEX", "JOB_COMPLETIONS"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "mirror.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["sync", "CONFIG", "--shard", "3/3"],
            'invalid argument "3/3" for "--shard" flag: the index is 0-based and must be below 3',
        ),
        (
            ["export", "CONFIG", "--to", "out", "--shard=x"],
            'invalid argument "x" for "--shard" flag: want i/n (0 <= i < n) or auto',
        ),
        (
            ["import", "archive", "CONFIG", "--shard", "auto"],
            "--shard auto: JOB_COMPLETION_INDEX is not set (Kubernetes sets it in an Indexed Job's pods)",
        ),
    ],
    ids=["sync", "export", "import"],
)
def test_bad_shard_is_one_line_before_anything_runs(
    capsys: pytest.CaptureFixture[str], config_file: Path, argv: list[str], message: str
) -> None:
    code = main([str(config_file) if arg == "CONFIG" else arg for arg in argv])
    assert (code, *capsys.readouterr()) == (1, "", f"✗ {message}\n")


def test_an_empty_shard_is_a_clean_run(capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
    """The shard without the entry mirrors nothing and exits 0; the shard with it runs it (its closed
    loopback port fails the plan), so the entry went to exactly one of them."""
    empty, owner = f"{1 - OWNER}/2", f"{OWNER}/2"
    assert main(["sync", str(config_file), "--shard", empty, "-o", "json"]) == 0
    report = json.loads(capsys.readouterr().out)["report"]
    assert (report["results"], report["summary"]["entries"], report["summary"]["exitCode"]) == ([], 0, 0)
    assert main(["sync", str(config_file), "--shard", empty, "--no-progress"]) == 0
    assert re.fullmatch(rf"Summary: nothing to mirror( in \S+)? \(shard {empty}\)\.\n", capsys.readouterr().out)
    assert main(["sync", str(config_file), "--shard", owner, "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("✗ 127.0.0.1:1/aa/bb — plan failed: ")
    assert out.splitlines()[-1].startswith("Summary: 1 failed in ") and out.endswith(f" (shard {owner}).\n")
