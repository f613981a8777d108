"""The run's metrics without a registry: the families a run's counts and report become, the
`--pushgateway` URL, the textfile write, the flags' checks, a run that stops without a report, and
start-up without the flags (prometheus-client never imported)."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from harness.scripted import ScriptedServer
from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from fluxmirror.api.duration import Duration
from fluxmirror.api.report import EntryStatus, ReportBody, Result, Status, TagResult
from fluxmirror.cli import main
from fluxmirror.errors import MetricsError, UsageError
from fluxmirror.http.observer import Exchange
from fluxmirror.metrics.pushgateway import Pushgateway, push, run_grouping
from fluxmirror.metrics.run import RunMetrics
from fluxmirror.metrics.textfile import checked_path, write_textfile
from fluxmirror.oci.client import USER_AGENT
from fluxmirror.sync.report import build_report

FINISHED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
# A run that stops before any entry: the host's signing key is not one (closed ports, never tried).
UNUSABLE_KEY = """apiVersion: mirror.plugin.fluxcd.io/v1beta1
kind: Config
artifacts:
  - source: 127.0.0.1:1/aa/bb
    destination: 127.0.0.1:1/bb
hosts:
  - host: 127.0.0.1:1
    credential:
      jwkValue: '{"keys": []}'
      iss: https://ci.example
      sub: mirror
"""


def families_of(metrics: RunMetrics) -> dict[str, Metric]:
    text = generate_latest(metrics.registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family: Metric) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(sample.labels.items())): sample.value for sample in family.samples}


def report(*results: Result) -> ReportBody:
    return build_report(results, duration=Duration.from_seconds(2.5), finished_at=FINISHED).report


# --- the families ------------------------------------------------------------------------------


def test_traffic_is_counted_per_host_with_a_sample_for_every_host_it_spoke_to() -> None:
    metrics = RunMetrics()
    metrics.exchanged(Exchange("src:5000", "GET", 200, 0, 700))
    metrics.exchanged(Exchange("src:5000", "GET", 200, 0, 300))
    metrics.exchanged(Exchange("dst:5000", "PUT", 429, 120, 0))
    metrics.exchanged(Exchange("dst:5000", "PUT", None, 0, 0))
    metrics.retrying("dst:5000")
    metrics.job_retrying()

    families = families_of(metrics)

    assert samples(families["fluxmirror_http_requests"]) == {
        (("host", "dst:5000"), ("method", "PUT"), ("status", "429")): 1,
        (("host", "dst:5000"), ("method", "PUT"), ("status", "error")): 1,
        (("host", "src:5000"), ("method", "GET"), ("status", "200")): 2,
    }
    assert samples(families["fluxmirror_http_received_bytes"]) == {
        (("host", "dst:5000"),): 0,
        (("host", "src:5000"),): 1000,
    }
    assert samples(families["fluxmirror_http_sent_bytes"]) == {(("host", "dst:5000"),): 120, (("host", "src:5000"),): 0}
    assert samples(families["fluxmirror_http_too_many_requests"]) == {
        (("host", "dst:5000"),): 1,
        (("host", "src:5000"),): 0,
    }
    assert samples(families["fluxmirror_http_retries"]) == {(("host", "dst:5000"),): 1, (("host", "src:5000"),): 0}
    assert samples(families["fluxmirror_job_retries"]) == {(): 1}
    assert "fluxmirror_last_run_success" not in families  # the run has not ended


def test_adaptive_limits_are_reported_at_their_lowest_and_only_with_adaptive() -> None:
    metrics = RunMetrics()
    assert "fluxmirror_adaptive_lowest_limit" not in families_of(metrics)
    for host, limit in [("src:5000", 64), ("dst:5000", 64), ("src:5000", 32), ("src:5000", 2), ("src:5000", 3)]:
        metrics.limited(host, limit)

    assert samples(families_of(metrics)["fluxmirror_adaptive_lowest_limit"]) == {
        (("host", "dst:5000"),): 64,
        (("host", "src:5000"),): 2,
    }


def test_a_run_with_drift_but_no_failure_is_a_success_with_every_status_present() -> None:
    metrics = RunMetrics()
    rows = [TagResult(tag="1", status=Status.COPIED), TagResult(tag="2", status=Status.DRIFTED)]
    metrics.finished(
        report(Result(source="s", destination="d", status=EntryStatus.COMPLETED, tags=rows)),
        duration_seconds=2.5,
        finished_at=FINISHED.timestamp(),
    )

    families = families_of(metrics)

    assert samples(families["fluxmirror_tags"]) == {
        (("status", status),): (1 if status in (Status.COPIED, Status.DRIFTED) else 0) for status in Status.ALL
    }
    assert samples(families["fluxmirror_entries"]) == {(("status", "completed"),): 1, (("status", "failed"),): 0}
    assert samples(families["fluxmirror_last_run_success"]) == {(): 1}
    assert samples(families["fluxmirror_last_success_timestamp_seconds"]) == {(): FINISHED.timestamp()}
    assert samples(families["fluxmirror_last_run_timestamp_seconds"]) == {(): FINISHED.timestamp()}
    assert samples(families["fluxmirror_run_duration_seconds"]) == {(): 2.5}


def test_a_failed_run_has_no_last_success_and_one_without_a_report_no_entries() -> None:
    failed_plan = Result(source="s", destination="d", status=EntryStatus.FAILED, error="boom", tags=[])
    for ended, entries_expected in [(report(failed_plan), True), (None, False)]:
        metrics = RunMetrics()
        metrics.finished(ended, duration_seconds=1.0, finished_at=FINISHED.timestamp())
        families = families_of(metrics)
        assert samples(families["fluxmirror_last_run_success"]) == {(): 0}
        assert "fluxmirror_last_success_timestamp_seconds" not in families
        assert ("fluxmirror_entries" in families) is entries_expected


# --- --pushgateway URL -------------------------------------------------------------------------


def test_a_pushgateway_url_gives_its_base_credential_and_grouping_labels() -> None:
    assert Pushgateway.parse("pushgateway.monitoring:9091") == Pushgateway(base="http://pushgateway.monitoring:9091")
    gateway = Pushgateway.parse("https://ci:p%40ss@pg.example/prefix/?mirror=eu-west&team=platform")
    assert gateway.base == "https://pg.example/prefix"
    assert gateway.labels == {"mirror": "eu-west", "team": "platform"}
    assert gateway.authorization == "Basic " + base64.b64encode(b"ci:p@ss").decode()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("ftp://u:s3cret-pw@pg.example", "an http:// or https:// URL with a host is needed"),
        ("http://u:s3cret-pw@pg.example?job=x", "'job' cannot be a grouping label (reserved: command, job, shard)"),
        ("http://pg.example?command=x", "'command' cannot be a grouping label (reserved: command, job, shard)"),
        ("http://pg.example?shard=1", "'shard' cannot be a grouping label (reserved: command, job, shard)"),
        ("http://pg.example?9lives=x", "'9lives' cannot be a grouping label (reserved: command, job, shard)"),
        ("http://pg.example?mirror=", "the grouping label 'mirror' has no value"),
        ("http://pg.example#top", "a URL fragment means nothing to a Pushgateway"),
    ],
)
def test_a_bad_pushgateway_url_is_refused_naming_the_flag_but_not_the_password(value: str, reason: str) -> None:
    with pytest.raises(UsageError) as caught:
        Pushgateway.parse(value)
    assert re.fullmatch(r'invalid argument "[^"]*" for "--pushgateway" flag: ' + re.escape(reason), str(caught.value))
    assert "s3cret-pw" not in str(caught.value)


# --- pushing -----------------------------------------------------------------------------------


async def test_a_push_puts_the_group_with_encoded_values_and_the_credential() -> None:
    async def accept(request: web.Request) -> web.StreamResponse:
        return web.Response(status=200)

    with ScriptedServer(accept) as server:
        gateway = Pushgateway.parse(f"http://ci:pw@{server.host}?mirror=eu/west")
        metrics = RunMetrics()
        await push(metrics.registry, gateway, run_grouping("sync", None), user_agent=USER_AGENT)
        await push(metrics.registry, gateway, run_grouping("sync", 2), user_agent=USER_AGENT)
        first, sharded = server.seen
    encoded = base64.urlsafe_b64encode(b"eu/west").decode()
    assert (first.method, first.target) == ("PUT", f"/metrics/job/fluxmirror/command/sync/mirror@base64/{encoded}")
    # Each pod of a sharded run has a group of its own (labels in sorted order, as the library writes them).
    assert sharded.target == f"/metrics/job/fluxmirror/command/sync/mirror@base64/{encoded}/shard/2"
    seen = first
    assert seen.authorization == "Basic " + base64.b64encode(b"ci:pw").decode()
    assert seen.body == generate_latest(metrics.registry)


async def test_a_refused_push_is_a_metrics_error_with_the_gateways_words() -> None:
    async def refuse(request: web.Request) -> web.StreamResponse:
        return web.Response(status=400, text="text format parsing error in line 3: Basic c2VjcmV0OnNlY3JldA==\n")

    with ScriptedServer(refuse) as server, pytest.raises(MetricsError) as caught:
        await push(
            RunMetrics().registry,
            Pushgateway.parse(f"http://{server.host}"),
            run_grouping("import", None),
            user_agent=USER_AGENT,
        )
    assert str(caught.value) == (
        f"metrics not pushed: PUT http://{server.host}/metrics/job/fluxmirror/command/import: "
        "400 Bad Request: text format parsing error in line 3: Basic REDACTED"
    )


# --- the textfile ------------------------------------------------------------------------------


def test_a_metrics_file_needs_an_existing_directory(tmp_path: Path) -> None:
    assert checked_path(str(tmp_path / "m.prom"), "--metrics-file") == tmp_path / "m.prom"
    with pytest.raises(UsageError, match=r'for "--metrics-file" flag: no such directory .*/absent$'):
        checked_path(str(tmp_path / "absent" / "m.prom"), "--metrics-file")
    with pytest.raises(UsageError, match=r'for "--metrics-file" flag: not a file name$'):
        checked_path(str(tmp_path), "--metrics-file")


async def test_a_file_that_cannot_be_written_is_a_metrics_error_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "m.prom"
    target.mkdir()  # rename(2) cannot put a file over a directory
    with pytest.raises(MetricsError) as caught:
        await write_textfile(RunMetrics().registry, target)
    assert str(caught.value) == f"metrics not written to {target}: is a directory"
    assert os.listdir(tmp_path) == ["m.prom"]


# --- the CLI -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--metrics-file", "/absent-dir/m.prom"],
            'invalid argument "/absent-dir/m.prom" for "--metrics-file" flag: no such directory /absent-dir',
        ),
        (
            ["--pushgateway", "ftp://u:pw@x"],
            'invalid argument "ftp://x" for "--pushgateway" flag: an http:// or https:// URL with a host is needed',
        ),
    ],
)
@pytest.mark.parametrize("command", [["sync"], ["export", "--to", "out"], ["import", "archive"]])
def test_bad_metrics_flags_stop_the_command_before_it_runs(
    capsys: pytest.CaptureFixture[str], command: list[str], flags: list[str], message: str
) -> None:
    code = main([*command, "/absent-config.yaml", *flags])
    assert (code, capsys.readouterr().err) == (1, f"✗ {message}\n")


def test_a_run_that_stops_without_a_report_still_writes_a_failed_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "mirror.yaml"
    config.write_text(UNUSABLE_KEY, encoding="utf-8")
    path = tmp_path / "m.prom"
    code = main(["sync", str(config), "--no-progress", "--metrics-file", str(path)])
    assert (code, capsys.readouterr().out) == (1, "")
    families = {family.name: family for family in text_string_to_metric_families(path.read_text())}
    assert samples(families["fluxmirror_last_run_success"]) == {(): 0}
    assert "fluxmirror_entries" not in families and "fluxmirror_last_success_timestamp_seconds" not in families


PROBE = """
import sys
from fluxmirror.cli.sync import RunFlags
import fluxmirror.cli.sync_output, fluxmirror.sync.engine, fluxmirror.sync.importer
flags = RunFlags(output="json", concurrency=4, retries=3, timeout=None, drift_exit_code=2, overwrite=False,
                 dry_run=False, verbose=False, no_progress=True, insecure=False, metrics_file=sys.argv[1] or None)
print(sorted(name for name in sys.modules if name.startswith(("prometheus_client", "fluxmirror.metrics"))))
"""


@pytest.mark.parametrize(("given", "loaded"), [(False, False), (True, True)], ids=["without", "with"])
def test_prometheus_client_is_imported_only_with_a_metrics_flag(tmp_path: Path, given: bool, loaded: bool) -> None:
    argument = str(tmp_path / "m.prom") if given else ""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, argument], capture_output=True, text=True, check=True, timeout=60
    )
    modules = done.stdout.strip()
    assert ("prometheus_client" in modules and "fluxmirror.metrics.run" in modules) is loaded
    assert (modules == "[]") is not loaded
