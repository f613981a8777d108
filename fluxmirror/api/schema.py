"""JSON Schemas generated from the wire types, so the published schemas can never drift from the code.

`python -m fluxmirror.api.schema DIR` (run by `make schemas`) writes `config-v1beta1.json`,
`report-v1beta1.json` and fluxmirror's own `export-report-v1alpha1.json` and
`import-report-v1alpha1.json`; a test fails when the committed files differ from what this produces.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from fluxmirror.api.archive import ArchiveReport
from fluxmirror.api.config import Config
from fluxmirror.api.duration import Duration
from fluxmirror.api.report import Report

__all__ = ["SCHEMA_FILES", "config_schema", "export_report_schema", "import_report_schema", "render", "report_schema"]

_DRAFT = "https://json-schema.org/draft/2020-12/schema"
_GO_DURATION = r"^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$"


def _schema_hook(kind: type) -> dict[str, Any]:
    if kind is Duration:
        return {"type": "string", "pattern": _GO_DURATION, "description": "Go duration, e.g. 60s, 1h30m."}
    raise NotImplementedError(kind)


def _document(kind: type, title: str) -> dict[str, Any]:
    body = msgspec.json.schema(kind, schema_hook=_schema_hook)
    return {"$schema": _DRAFT, "title": title, **body}


def config_schema() -> dict[str, Any]:
    return _document(Config, "flux mirror Config (mirror.plugin.fluxcd.io/v1beta1)")


def report_schema() -> dict[str, Any]:
    return _document(Report, "flux mirror sync Report (mirror.plugin.fluxcd.io/v1beta1)")


def export_report_schema() -> dict[str, Any]:
    return _document(ArchiveReport, "fluxmirror ExportReport (fluxmirror.dev/v1alpha1)")


def import_report_schema() -> dict[str, Any]:
    return _document(ArchiveReport, "fluxmirror ImportReport (fluxmirror.dev/v1alpha1)")


SCHEMA_FILES = {
    "config-v1beta1.json": config_schema,
    "report-v1beta1.json": report_schema,
    "export-report-v1alpha1.json": export_report_schema,
    "import-report-v1alpha1.json": import_report_schema,
}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(directory: str) -> None:
    for name, build in SCHEMA_FILES.items():
        (Path(directory) / name).write_text(render(build()), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs")
