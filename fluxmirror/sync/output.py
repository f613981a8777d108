"""What a finished sync prints: the JSON/YAML report, the text summary line and the live lines.

The reference encodes JSON with Go's `encoding/json` (HTML-safe escaping, 2-space indent) and YAML
with `sigs.k8s.io/yaml` (go-yaml v2: sorted keys, indentless sequences, 80-column folding, and
double quotes for any string that would otherwise read back as a bool, number, null or
timestamp). Scripts diff these outputs, so the renderers reproduce them byte for byte.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec
import yaml

from fluxmirror.api.duration import Duration
from fluxmirror.api.report import Report, Status, Summary
from fluxmirror.gojson import go_json
from fluxmirror.helm.goyaml import STR_TAG, resolve_plain
from fluxmirror.sync.events import JobOutcome

__all__ = ["MILLISECOND", "live_lines", "plan_failed_line", "render_json", "render_yaml", "summary_line"]


def render_json(report: Report) -> bytes:
    """The report as Go's `json.Encoder` with `SetIndent("", "  ")` writes it."""
    return go_json(report, indent=2) + b"\n"


# ---- YAML: go-yaml v2 scalar resolution -------------------------------------------------------

# go-yaml v2's isBase60Float: its resolver no longer reads these as numbers, but its encoder still
# quotes them for YAML 1.1 readers.
_GO_BASE60: Final = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")


def _go_reads_as_non_string(text: str) -> bool:
    """Whether go-yaml v2's encoder quotes `text`: its resolver would read it, written plain, as
    anything but a string (the same resolver Helm's chart decoding goes through), or it is a
    base-60 float."""
    return resolve_plain(text) != STR_TAG or _GO_BASE60.fullmatch(text) is not None


def _go_style(text: str) -> str | None:
    """The scalar style go-yaml v2 asks for; None lets the emitter choose plain or single quotes.

    The emitter still downgrades a style the text cannot take (e.g. a literal block with trailing
    spaces becomes double-quoted), by the same libyaml rules go-yaml ported.
    """
    if "\n" in text:
        return "|"
    return '"' if _go_reads_as_non_string(text) else None


# go-yaml v2's emitter is a port of libyaml's, so libyaml (bundled with PyYAML's wheels) folds and
# escapes exactly like the reference; PyYAML's pure-Python emitter differs only in how it folds
# long double-quoted strings and in treating non-BMP characters as printable.
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _GoStyleDumper(_BaseDumper):  # type: ignore[valid-type,misc]
    """A safe dumper whose string quoting follows go-yaml v2 instead of PyYAML's YAML 1.1 rules."""

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0] and isinstance(value, str) and not _go_reads_as_non_string(value):
            return "tag:yaml.org,2002:str"
        return str(super().resolve(kind, value, implicit))


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=_go_style(data))


_GoStyleDumper.add_representer(str, _represent_str)


def render_yaml(report: Report) -> str:
    """The report as `sigs.k8s.io/yaml` writes it, without the JSON-only `$schema` key."""
    data = msgspec.to_builtins(msgspec.structs.replace(report, schema=""))
    return yaml.dump(data, Dumper=_GoStyleDumper, sort_keys=True, default_flow_style=False, allow_unicode=True)


# ---- text mode -----------------------------------------------------------------------------------

MILLISECOND: Final = Duration(1_000_000)
"""Run durations are shown rounded to this, in the summary line and the verbose totals."""


def summary_line(summary: Summary, duration: Duration) -> str:
    """The closing `Summary: …` line of text mode (without a newline).

    Only non-zero counts are listed; a zero duration (after rounding to milliseconds) drops the
    ` in <duration>` part, as the reference does.
    """
    counts = (
        (summary.copied, Status.COPIED),
        (summary.overwritten, Status.OVERWRITTEN),
        (summary.skipped, Status.SKIPPED),
        (summary.drifted, Status.DRIFTED),
        (summary.wouldCopy, Status.WOULD_COPY),
        (summary.wouldOverwrite, Status.WOULD_OVERWRITE),
        (summary.failed, Status.FAILED),
    )
    parts = [f"{count} {status}" for count, status in counts if count]
    elapsed = duration.round_to(MILLISECOND)
    suffix = f" in {elapsed}" if elapsed.nanoseconds > 0 else ""
    return f"Summary: {', '.join(parts) or 'nothing to mirror'}{suffix}."


def live_lines(outcome: JobOutcome) -> str:
    """The `✓`/`✗` line of a finished job and its `→ <destination>` line, with newlines.

    A job counts as failed by its status; the `→` line is left out when no destination is known,
    as the reference does.
    """
    if outcome.status == Status.FAILED:
        head = f"✗ {outcome.entry}:{outcome.ident} — {outcome.error}\n"
    else:
        head = f"✓ {outcome.entry}:{outcome.ident} ({outcome.status})\n"
    return head + (f"→ {outcome.destination}\n" if outcome.destination else "")


def plan_failed_line(entry: str, error: str) -> str:
    """The line of an entry that could not be planned (it has no jobs, so no `→` line)."""
    return f"✗ {entry} — plan failed: {error}\n"
