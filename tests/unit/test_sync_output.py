"""The report renderers (JSON as Go's encoding/json, YAML as sigs.k8s.io/yaml) and text-mode lines."""

from __future__ import annotations

import json
import textwrap

import msgspec
import pytest
import yaml

from fluxmirror.api.duration import Duration
from fluxmirror.api.report import (
    API_VERSION,
    KIND,
    SCHEMA_URL,
    ReferrerResult,
    Report,
    ReportBody,
    Result,
    Summary,
    TagResult,
    Verification,
)
from fluxmirror.sync.events import JobOutcome
from fluxmirror.sync.output import live_lines, plan_failed_line, render_json, render_yaml, summary_line
from fluxmirror.sync.shard import Shard

IDENTITY = "https://github.com/stefanprodan/podinfo/.github/workflows/release.yml@refs/tags/"
PLAN_ERROR = (
    "list tags docker.io/library/flux-mirror-nonexistent-zzz: "
    "GET https://index.docker.io/v2/library/flux-mirror-nonexistent-zzz/tags/list?n=1000: "
    "UNAUTHORIZED: authentication required; "
    "[map[Action:pull Class: Name:library/flux-mirror-nonexistent-zzz Type:repository]]"
)
VERIFY_ERROR = (
    "verify docker.io/stefanprodan/podinfo:6.13.0: signature verification failed: failed to verify certificate "
    "identity: no matching CertificateIdentity found, last error: expected SAN value to match regex "
    '"^https://github\\.com/example/.*$", got "https://github.com/stefanprodan/podinfo/.github/workflows/'
    'release.yml@refs/tags/6.13.0"'
)


def summary(**counts: int) -> Summary:
    fields = ("entries", "copied", "overwritten", "skipped", "drifted", "wouldCopy", "wouldOverwrite", "failed")
    return Summary(**{name: counts.get(name, 0) for name in fields}, exitCode=counts.get("exitCode", 0))


def report_of(results: list[Result], **counts: int) -> Report:
    body = ReportBody(
        reporter="flux-mirror/v0.1.0",
        timestamp="2026-06-06T20:12:25Z",
        durationMs=16724,
        summary=summary(**counts),
        results=results,
    )
    return Report(apiVersion=API_VERSION, kind=KIND, schema=SCHEMA_URL, report=body)


def example_report() -> Report:
    """The report of report.md's example, built from structs."""
    podinfo = Result(
        source="docker.io/stefanprodan/podinfo",
        destination="localhost:5050/podinfo",
        status="completed",
        tags=[
            TagResult(
                tag="6.13.0",
                status="skipped",
                digest="sha256:7bdd8cc80b64377b05f5c0a51604c028ed6adea4beaca2e766b9325efa52916c",
                reason="signature-too-new",
                verification=Verification(
                    provider="cosign",
                    issuer="https://token.actions.githubusercontent.com",
                    identity=IDENTITY + "6.13.0",
                    integratedTime="2026-06-04T20:59:02Z",
                    age="47h13m11s",
                    minAge="48h0m0s",
                ),
            ),
            TagResult(
                tag="6.12.0",
                status="copied",
                digest="sha256:453e2238f70c00dfba6803ddb99a4bb86982ee549f7273f43f90ac58f0714a81",
                referrers=[
                    ReferrerResult(
                        digest="sha256:5892f840c5013230cd0b63fdd5076dd9fe3224a31bd3ebae5c723e3632100b0f",
                        artifactType="application/vnd.dev.sigstore.bundle.v0.3+json",
                        status="copied",
                    )
                ],
                verification=Verification(
                    provider="cosign",
                    issuer="https://token.actions.githubusercontent.com",
                    identity=IDENTITY + "6.12.0",
                    integratedTime="2026-05-20T10:16:39Z",
                ),
            ),
        ],
    )
    missing = Result(
        source="docker.io/library/flux-mirror-nonexistent-zzz",
        destination="localhost:5050/nonexistent",
        status="failed",
        error=PLAN_ERROR,
        tags=[],
    )
    return report_of([podinfo, missing], entries=2, copied=1, skipped=1, failed=1, exitCode=1)


# report.md, "Example", verbatim.
EXAMPLE_JSON = """\
{
  "apiVersion": "mirror.plugin.fluxcd.io/v1beta1",
  "kind": "Report",
  "$schema": "https://raw.githubusercontent.com/fluxcd/flux-mirror/main/docs/report-v1beta1.json",
  "report": {
    "reporter": "flux-mirror/v0.1.0",
    "timestamp": "2026-06-06T20:12:25Z",
    "durationMs": 16724,
    "summary": {
      "entries": 2,
      "copied": 1,
      "overwritten": 0,
      "skipped": 1,
      "drifted": 0,
      "wouldCopy": 0,
      "wouldOverwrite": 0,
      "failed": 1,
      "exitCode": 1
    },
    "results": [
      {
        "source": "docker.io/stefanprodan/podinfo",
        "destination": "localhost:5050/podinfo",
        "status": "completed",
        "tags": [
          {
            "tag": "6.13.0",
            "status": "skipped",
            "digest": "sha256:7bdd8cc80b64377b05f5c0a51604c028ed6adea4beaca2e766b9325efa52916c",
            "reason": "signature-too-new",
            "verification": {
              "provider": "cosign",
              "issuer": "https://token.actions.githubusercontent.com",
              "identity": "https://github.com/stefanprodan/podinfo/.github/workflows/release.yml@refs/tags/6.13.0",
              "integratedTime": "2026-06-04T20:59:02Z",
              "age": "47h13m11s",
              "minAge": "48h0m0s"
            }
          },
          {
            "tag": "6.12.0",
            "status": "copied",
            "digest": "sha256:453e2238f70c00dfba6803ddb99a4bb86982ee549f7273f43f90ac58f0714a81",
            "referrers": [
              {
                "digest": "sha256:5892f840c5013230cd0b63fdd5076dd9fe3224a31bd3ebae5c723e3632100b0f",
                "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "status": "copied"
              }
            ],
            "verification": {
              "provider": "cosign",
              "issuer": "https://token.actions.githubusercontent.com",
              "identity": "https://github.com/stefanprodan/podinfo/.github/workflows/release.yml@refs/tags/6.12.0",
              "integratedTime": "2026-05-20T10:16:39Z"
            }
          }
        ]
      },
      {
        "source": "docker.io/library/flux-mirror-nonexistent-zzz",
        "destination": "localhost:5050/nonexistent",
        "status": "failed",
        "error": "list tags docker.io/library/flux-mirror-nonexistent-zzz: GET https://index.docker.io/v2/library/flux-mirror-nonexistent-zzz/tags/list?n=1000: UNAUTHORIZED: authentication required; [map[Action:pull Class: Name:library/flux-mirror-nonexistent-zzz Type:repository]]",
        "tags": []
      }
    ]
  }
}
"""

# report.md, the verify-failed row, verbatim.
VERIFY_FAILED_ROW = r"""{
  "tag": "6.13.0",
  "status": "failed",
  "error": "verify docker.io/stefanprodan/podinfo:6.13.0: signature verification failed: failed to verify certificate identity: no matching CertificateIdentity found, last error: expected SAN value to match regex \"^https://github\\.com/example/.*$\", got \"https://github.com/stefanprodan/podinfo/.github/workflows/release.yml@refs/tags/6.13.0\""
}
"""

EXAMPLE_YAML = """\
apiVersion: mirror.plugin.fluxcd.io/v1beta1
kind: Report
report:
  durationMs: 16724
  reporter: flux-mirror/v0.1.0
  results:
  - destination: localhost:5050/podinfo
    source: docker.io/stefanprodan/podinfo
    status: completed
    tags:
    - digest: sha256:7bdd8cc80b64377b05f5c0a51604c028ed6adea4beaca2e766b9325efa52916c
      reason: signature-too-new
      status: skipped
      tag: 6.13.0
      verification:
        age: 47h13m11s
        identity: https://github.com/stefanprodan/podinfo/.github/workflows/release.yml@refs/tags/6.13.0
        integratedTime: "2026-06-04T20:59:02Z"
        issuer: https://token.actions.githubusercontent.com
        minAge: 48h0m0s
        provider: cosign
    - digest: sha256:453e2238f70c00dfba6803ddb99a4bb86982ee549f7273f43f90ac58f0714a81
      referrers:
      - artifactType: application/vnd.dev.sigstore.bundle.v0.3+json
        digest: sha256:5892f840c5013230cd0b63fdd5076dd9fe3224a31bd3ebae5c723e3632100b0f
        status: copied
      status: copied
      tag: 6.12.0
      verification:
        identity: https://github.com/stefanprodan/podinfo/.github/workflows/release.yml@refs/tags/6.12.0
        integratedTime: "2026-05-20T10:16:39Z"
        issuer: https://token.actions.githubusercontent.com
        provider: cosign
  - destination: localhost:5050/nonexistent
    error: 'list tags docker.io/library/flux-mirror-nonexistent-zzz: GET https://index.docker.io/v2/library/flux-mirror-nonexistent-zzz/tags/list?n=1000:
      UNAUTHORIZED: authentication required; [map[Action:pull Class: Name:library/flux-mirror-nonexistent-zzz
      Type:repository]]'
    source: docker.io/library/flux-mirror-nonexistent-zzz
    status: failed
    tags: []
  summary:
    copied: 1
    drifted: 0
    entries: 2
    exitCode: 1
    failed: 1
    overwritten: 0
    skipped: 1
    wouldCopy: 0
    wouldOverwrite: 0
  timestamp: "2026-06-06T20:12:25Z"
"""


def tag_report(tag: TagResult) -> Report:
    return report_of([Result(source="s", destination="d", status="completed", tags=[tag])], entries=1)


# ---- JSON ------------------------------------------------------------------------------------------


def test_json_reproduces_report_md_example() -> None:
    assert render_json(example_report()) == EXAMPLE_JSON.encode()


def test_json_verify_failed_row_matches_report_md() -> None:
    document = render_json(tag_report(TagResult(tag="6.13.0", status="failed", error=VERIFY_ERROR))).decode()
    assert textwrap.indent(VERIFY_FAILED_ROW, " " * 10)[10:] in document


def test_json_empty_results() -> None:
    document = render_json(report_of([])).decode()
    assert '\n    "results": []\n' in document
    assert document.endswith("}\n")
    assert not document.endswith("\n\n")


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("a<b>c&d", "a\\u003cb\\u003ec\\u0026d"),
        ("line\u2028para\u2029end", "line\\u2028para\\u2029end"),
        ("café ✓ 😀", "café ✓ 😀"),
        ('say "hi" \\ bye', 'say \\"hi\\" \\\\ bye'),
        ("tab\tnl\ncr\rbs\bff\f", "tab\\tnl\\ncr\\rbs\\bff\\f"),
        ("\x00\x01\x1f\x7f", "\\u0000\\u0001\\u001f\x7f"),
    ],
)
def test_json_string_escaping_matches_go(text: str, encoded: str) -> None:
    document = render_json(tag_report(TagResult(tag="1.0.0", status="failed", error=text))).decode()
    assert f'"error": "{encoded}"\n' in document
    assert json.loads(document)["report"]["results"][0]["tags"][0]["error"] == text


def test_json_is_the_report_data() -> None:
    report = example_report()
    assert json.loads(render_json(report)) == msgspec.to_builtins(report)


# ---- YAML ------------------------------------------------------------------------------------------


def test_yaml_example() -> None:
    """Sorted keys, indentless sequences, 80-column folding, `$schema` dropped."""
    assert render_yaml(example_report()) == EXAMPLE_YAML


def test_yaml_round_trips_to_the_json_data_without_schema() -> None:
    report = example_report()
    expected = json.loads(render_json(report))
    del expected["$schema"]
    assert yaml.safe_load(render_yaml(report)) == expected


def test_yaml_has_no_schema_key() -> None:
    assert "schema" not in render_yaml(example_report())


def test_yaml_empty_results() -> None:
    assert "\n  results: []\n" in render_yaml(report_of([]))


@pytest.mark.parametrize(
    ("text", "written"),
    [
        # plain: go-yaml reads these back as strings
        ("6.13.0", "6.13.0"),
        ("v1.2", "v1.2"),
        ("1.2.3-rc.1+build.5", "1.2.3-rc.1+build.5"),
        ("sha256:abc", "sha256:abc"),
        ("latest", "latest"),
        ("café", "café"),
        ("2026-02-30", "2026-02-30"),
        ("1e400", "1e400"),
        ("=", "="),
        ("<<", "<<"),
        # double quotes: go-yaml would read them as something else
        ("", '""'),
        ("6.1", '"6.1"'),
        ("6", '"6"'),
        ("08", '"08"'),
        ("-1", '"-1"'),
        ("+.5", '"+.5"'),
        (".5", '".5"'),
        (".0_5", '".0_5"'),  # Go's ParseFloat takes digit-separating underscores
        ("1e3", '"1e3"'),
        ("1_000", '"1_000"'),
        ("0x1F", '"0x1F"'),
        ("0o17", '"0o17"'),
        ("0b101", '"0b101"'),
        ("123456789012345678901234567890", '"123456789012345678901234567890"'),
        ("1:20", '"1:20"'),
        ("2026-06-06T20:12:25Z", '"2026-06-06T20:12:25Z"'),
        ("2026-6-6t1:2:3.5+02:00", '"2026-6-6t1:2:3.5+02:00"'),
        ("2026-06-06 20:12:25", '"2026-06-06 20:12:25"'),
        ("2026-06-06", '"2026-06-06"'),
        ("2024-02-29", '"2024-02-29"'),
        ("true", '"true"'),
        ("False", '"False"'),
        ("yes", '"yes"'),
        ("y", '"y"'),
        ("N", '"N"'),
        ("off", '"off"'),
        ("null", '"null"'),
        ("~", '"~"'),
        (".inf", '".inf"'),
        ("-.Inf", '"-.Inf"'),
        (".NaN", '".NaN"'),
        # single quotes: plain would not parse
        ("a: b", "'a: b'"),
        ("- x", "'- x'"),
        ("#x", "'#x'"),
        ("it's: x", "'it''s: x'"),
        (" lead", "' lead'"),
        # double-quoted escapes: characters go-yaml does not print as is
        ("tab\there", '"tab\\there"'),
        ("trailing \nspace", '"trailing \\nspace"'),
        pytest.param(
            "smile 😀",
            '"smile \\U0001F600"',
            marks=pytest.mark.skipif(not yaml.__with_libyaml__, reason="pure-Python emitter prints non-BMP"),
        ),
    ],
)
def test_yaml_scalar_quoting_matches_go_yaml(text: str, written: str) -> None:
    assert f"\n      tag: {written}\n" in render_yaml(tag_report(TagResult(tag=text, status="copied")))


def test_yaml_multiline_string_is_a_literal_block() -> None:
    document = render_yaml(tag_report(TagResult(tag="1.0.0", status="failed", error="first\nsecond")))
    assert "\n    - error: |-\n        first\n        second\n      status: failed\n" in document


# ---- text mode -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "duration", "line"),
    [
        ({}, Duration(0), "Summary: nothing to mirror."),
        ({}, Duration(812_000_000), "Summary: nothing to mirror in 812ms."),
        ({"entries": 3}, Duration(400_000), "Summary: nothing to mirror."),
        (
            {"copied": 1, "skipped": 1, "failed": 1},
            Duration(4_200_000_000),
            "Summary: 1 copied, 1 skipped, 1 failed in 4.2s.",
        ),
        ({"copied": 1}, Duration(4_213_400_000), "Summary: 1 copied in 4.213s."),
        ({"copied": 1}, Duration(4_213_500_000), "Summary: 1 copied in 4.214s."),
        ({"copied": 1}, Duration(0), "Summary: 1 copied."),
        ({"overwritten": 2}, Duration(5_400_000_000_000), "Summary: 2 overwritten in 1h30m0s."),
        ({"skipped": 3}, Duration(1_000_000), "Summary: 3 skipped in 1ms."),
        ({"drifted": 4}, Duration(60_000_000_000), "Summary: 4 drifted in 1m0s."),
        ({"wouldCopy": 5}, Duration(1_500_000_000), "Summary: 5 would-copy in 1.5s."),
        ({"wouldOverwrite": 6}, Duration(999_600_000), "Summary: 6 would-overwrite in 1s."),
        ({"failed": 7}, Duration(10_000_000), "Summary: 7 failed in 10ms."),
        (
            {
                "copied": 1,
                "overwritten": 2,
                "skipped": 3,
                "drifted": 4,
                "wouldCopy": 5,
                "wouldOverwrite": 6,
                "failed": 7,
            },
            Duration(4_213_000_000),
            "Summary: 1 copied, 2 overwritten, 3 skipped, 4 drifted, 5 would-copy, 6 would-overwrite, 7 failed in 4.213s.",
        ),
    ],
)
def test_summary_line(counts: dict[str, int], duration: Duration, line: str) -> None:
    assert summary_line(summary(**counts), duration) == line


@pytest.mark.parametrize(
    ("counts", "duration", "line"),
    [
        ({"copied": 2}, Duration(4_213_400_000), "Summary: 2 copied in 4.213s (shard 1/3)."),
        ({}, Duration(3_000_000), "Summary: nothing to mirror in 3ms (shard 1/3)."),
        ({"failed": 1}, Duration(0), "Summary: 1 failed (shard 1/3)."),
    ],
)
def test_summary_line_names_the_shard_last(counts: dict[str, int], duration: Duration, line: str) -> None:
    assert summary_line(summary(**counts), duration, Shard(1, 3)) == line


@pytest.mark.parametrize(
    ("outcome", "lines"),
    [
        (
            JobOutcome(
                "ghcr.io/stefanprodan/charts/podinfo", "6.11.0", "copied", "localhost:5050/charts/podinfo:6.11.0"
            ),
            "✓ ghcr.io/stefanprodan/charts/podinfo:6.11.0 (copied)\n→ localhost:5050/charts/podinfo:6.11.0\n",
        ),
        (
            JobOutcome("https://charts.example/podinfo", "1.0.0+up", "drifted", "localhost:5050/podinfo:1.0.0_up"),
            "✓ https://charts.example/podinfo:1.0.0+up (drifted)\n→ localhost:5050/podinfo:1.0.0_up\n",
        ),
        (
            JobOutcome("ghcr.io/a/b", "1.0", "failed", "localhost:5050/b:1.0", error="push rejected: DENIED"),
            "✗ ghcr.io/a/b:1.0 — push rejected: DENIED\n→ localhost:5050/b:1.0\n",
        ),
        (
            JobOutcome("ghcr.io/a/b", "1.0", "would-copy", ""),
            "✓ ghcr.io/a/b:1.0 (would-copy)\n",
        ),
    ],
)
def test_live_lines(outcome: JobOutcome, lines: str) -> None:
    assert live_lines(outcome) == lines


def test_plan_failed_line() -> None:
    line = plan_failed_line("ghcr.io/stefanprodan/charts/podinfo2", "NAME_UNKNOWN")
    assert line == "✗ ghcr.io/stefanprodan/charts/podinfo2 — plan failed: NAME_UNKNOWN\n"
    assert "\u2014" in line
