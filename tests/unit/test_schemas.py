"""The published JSON Schemas match the wire types, and every example in docs/ is a valid config."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import msgspec
import pytest
import yaml

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
from fluxmirror.api.schema import SCHEMA_FILES, render
from fluxmirror.config import load_config

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES = sorted((DOCS / "examples").glob("*.yaml"))
EXAMPLE_ENV = {"REGISTRY_USERNAME": "mirror", "REGISTRY_PASSWORD": "p", "GH_TOKEN": "g"}


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_committed_schema_is_generated(name: str) -> None:
    committed = (DOCS / name).read_text(encoding="utf-8")
    assert committed == render(SCHEMA_FILES[name]()), f"docs/{name} is stale: run `make schemas`"


def test_examples_exist() -> None:
    assert {path.name for path in EXAMPLES} >= {"artifacts.yaml", "charts.yaml", "hosts.yaml"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_example_matches_schema_and_loads(example: Path) -> None:
    schema = json.loads((DOCS / "config-v1beta1.json").read_text(encoding="utf-8"))
    jsonschema.validate(yaml.safe_load(example.read_text(encoding="utf-8")), schema)
    config = load_config(str(example), require_entries=example.name != "hosts.yaml", env=EXAMPLE_ENV).config
    assert config.artifacts or config.charts or config.hosts


@pytest.mark.parametrize(
    "document",
    [
        {"apiVersion": "mirror.plugin.fluxcd.io/v1beta1", "kind": "Config", "artifact": []},
        {"apiVersion": "mirror.plugin.fluxcd.io/v1beta1", "kind": "Config", "charts": [{"name": "x", "limit": -1}]},
        {
            "apiVersion": "mirror.plugin.fluxcd.io/v1beta1",
            "kind": "Config",
            "hosts": [{"host": "a", "provider": "gcr"}],
        },
        {
            "apiVersion": "mirror.plugin.fluxcd.io/v1beta1",
            "kind": "Config",
            "hosts": [{"host": "a", "credential": {"exp": "2d"}}],
        },
        {"apiVersion": "v1", "kind": "Config"},
    ],
    ids=["unknown-field", "negative-limit", "provider-enum", "duration-pattern", "api-version"],
)
def test_config_schema_rejects(document: dict[str, object]) -> None:
    schema = json.loads((DOCS / "config-v1beta1.json").read_text(encoding="utf-8"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)


def test_report_schema_accepts_a_full_report() -> None:
    report = Report(
        apiVersion=API_VERSION,
        kind=KIND,
        schema=SCHEMA_URL,
        report=ReportBody(
            reporter="flux-mirror/0.1.0",
            timestamp="2026-06-06T20:12:25Z",
            durationMs=16724,
            summary=Summary(
                entries=2,
                copied=1,
                overwritten=0,
                skipped=1,
                drifted=0,
                wouldCopy=0,
                wouldOverwrite=0,
                failed=1,
                exitCode=1,
            ),
            results=[
                Result(
                    source="docker.io/stefanprodan/podinfo",
                    destination="localhost:5050/podinfo",
                    status="completed",
                    tags=[
                        TagResult(
                            tag="6.12.0",
                            status="copied",
                            digest="sha256:" + "4" * 64,
                            referrers=[
                                ReferrerResult(digest="sha256:" + "5" * 64, artifactType="a/b", status="copied")
                            ],
                            verification=Verification(provider="cosign", issuer="i", identity="s", integratedTime="t"),
                        )
                    ],
                ),
                Result(source="a", destination="b", status="failed", error="list tags a: boom", tags=[]),
            ],
        ),
    )
    encoded = json.loads(msgspec.json.encode(report))
    schema = json.loads((DOCS / "report-v1beta1.json").read_text(encoding="utf-8"))
    jsonschema.validate(encoded, schema)
    assert list(encoded) == ["apiVersion", "kind", "$schema", "report"]
    assert encoded["report"]["results"][1] == {
        "source": "a",
        "destination": "b",
        "status": "failed",
        "error": "list tags a: boom",
        "tags": [],
    }
    encoded["report"]["results"][0]["tags"][0]["status"] = "moved"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(encoded, schema)
