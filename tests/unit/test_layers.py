"""Imports flow one way: each layer imports only what ALLOWED lists for it (docs/development.md#layering
mirrors the table), so a reader finds each concern in one room and lower layers never reach up; this
test keeps it so."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fluxmirror"

# For each layer, the fluxmirror layers it may import (besides itself and the shared leaves).
ALLOWED: dict[str, set[str]] = {
    "gocompat": set(),
    "api": set(),
    "http": set(),
    "selection": {"api"},
    "oci": {"api", "auth", "http"},
    "auth": {"api", "http"},
    "config": {"api", "selection", "oci"},
    "helm": {"api", "selection", "oci", "http"},
    "cosign": {"api"},
    "layout": {"oci"},
    "sync": {"api", "selection", "oci", "auth", "config", "helm", "http", "cosign", "layout"},
    "kube": {"api", "auth"},
    "metrics": {"api", "http"},
    "cli": {"api", "selection", "oci", "auth", "config", "helm", "sync", "kube", "http", "layout", "metrics"},
}
SHARED_LEAVES = {"errors", "scrub", "__init__"}
EVERYONE_MAY_IMPORT = {"gocompat"}  # leaf packages: importable from every layer, importing no layer
CLI_ONLY_THIRD_PARTY = {"typer", "uvloop"}
HTTP_ONLY_THIRD_PARTY = {"aiohttp"}  # one HTTP stack: everything else goes through fluxmirror.http
METRICS_ONLY_THIRD_PARTY = {"prometheus_client"}  # loaded only when metrics are asked for


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _layer(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


MODULES = sorted(path for path in PACKAGE.rglob("*.py") if _layer(path) in ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_imports_flow_one_way(path: Path) -> None:
    layer = _layer(path)
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "fluxmirror" and len(parts) > 1:
            allowed = {layer, *ALLOWED[layer]}
            if layer not in EVERYONE_MAY_IMPORT:
                allowed |= SHARED_LEAVES | EVERYONE_MAY_IMPORT
            assert parts[1] in allowed, f"{layer} must not import {name}"
        elif parts[0] in CLI_ONLY_THIRD_PARTY:
            assert layer == "cli", f"only the cli layer uses {parts[0]}"
        elif parts[0] in HTTP_ONLY_THIRD_PARTY:
            assert layer == "http", f"only the http layer uses {parts[0]}"
        elif parts[0] in METRICS_ONLY_THIRD_PARTY:
            assert layer == "metrics", f"only the metrics layer uses {parts[0]}"


def test_every_layer_is_known() -> None:
    layers = {_layer(path) for path in PACKAGE.rglob("*.py")}
    assert layers <= set(ALLOWED) | SHARED_LEAVES | {"__main__"}
