"""What a finished sync prints: the JSON/YAML report, the text summary line and the live lines.

The reference encodes JSON with Go's `encoding/json` (HTML-safe escaping, 2-space indent) and YAML
with `sigs.k8s.io/yaml` (go-yaml v2: sorted keys, indentless sequences, 80-column folding, and
double quotes for any string that would otherwise read back as a bool, number, null or
timestamp). Scripts diff these outputs, so the renderers reproduce them byte for byte.
"""

from __future__ import annotations

from typing import Final

import msgspec

from fluxmirror.api.archive import ArchiveReport
from fluxmirror.api.duration import Duration
from fluxmirror.api.report import Report, Status, Summary
from fluxmirror.gocompat import yaml_v2
from fluxmirror.gocompat.encoding_json import go_json
from fluxmirror.sync.events import JobOutcome
from fluxmirror.sync.shard import Shard

__all__ = ["MILLISECOND", "live_lines", "plan_failed_line", "render_json", "render_yaml", "summary_line"]


def render_json(report: Report | ArchiveReport) -> bytes:
    """The report as Go's `json.Encoder` with `SetIndent("", "  ")` writes it."""
    return go_json(report, indent=2) + b"\n"


# ---- YAML ----------------------------------------------------------------------------------------


def render_yaml(report: Report | ArchiveReport) -> str:
    """The report as `sigs.k8s.io/yaml` writes it, without the JSON-only `$schema` key."""
    data = msgspec.to_builtins(msgspec.structs.replace(report, schema=""))
    return yaml_v2.dump(data)


# ---- text mode -----------------------------------------------------------------------------------

MILLISECOND: Final = Duration(1_000_000)
"""Run durations are shown rounded to this, in the summary line and the verbose totals."""


def summary_line(summary: Summary, duration: Duration, shard: Shard | None = None) -> str:
    """The closing `Summary: …` line of text mode (without a newline).

    Only non-zero counts are listed; a zero duration (after rounding to milliseconds) drops the
    ` in <duration>` part, as the reference does. A sharded run says which shard it ran last,
    so a line grepped for `^Summary:` reads as before (docs/sync.md#sharding).
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
    which = f" (shard {shard})" if shard is not None else ""
    return f"Summary: {', '.join(parts) or 'nothing to mirror'}{suffix}{which}."


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
