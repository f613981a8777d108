"""WAN: fluxmirror beside `skopeo sync` through a 40 ms round trip, and through a 200 Mbit/s link.

Why: fluxmirror runs as a CronJob over thin, long links, where the cost of a run is round trips and
bandwidth, not CPU; on loopback (`copy.py`) neither shows. Five cases, each against skopeo and a
round-trip floor:

* no-op re-sync of 300 tags (the daily case);
* copy of 50 images × 2 × 1 MiB into an empty destination;
* copy of 2 × 2 × 128 MiB with the link capped at 200 Mbit/s each way;
* no-op re-sync of 5,000 tags;
* no-op re-sync of 200 entries × 5 tags (one repository each);
* and, when fluxmirror has ``--compare-concurrency``, a no-op of 1,000 tags at 4 to 64 lookups per
  host, fluxmirror alone: what its default of 16 buys.

The network (`wanlink.py`): the benchmark re-runs itself under ``unshare --net``; that namespace
holds the registries and, in front of each, a latency proxy (`latency.py`: 20 ms each way, the
TCP handshake a round trip too); the tools run in a second namespace joined to the first by a veth
pair, whose ends carry the ``tbf`` cap in the capped case. Where no namespace can be made, the
same runs go over loopback and the capped case is left out (said in the output).

Every tool runs as its own subprocess behind `rusage.py` (wall, CPU, peak RSS), at 40 ms and again
at 0 ms (the proxies still in the path), so ``(wall − wall at 0 ms) ÷ RTT`` counts the round trips
that stood on the clock. Before the capped case plain TCP streams cross the capped link
(`Link.payload_rates`), one each way alone and then one each way at the same time, and then one
each way at the same time through two of the proxies at the case's delay (`_Bench._link_rates`):
what the link, and the path a tool's bytes take, deliver as payload. A copy downloads and uploads
at once, through the proxies, so the floor it can reach is bytes ÷ the slowest direction's rate
of the two both-ways probes; bytes ÷ the nominal rate, ÷ the one-way rate and ÷ the other
both-ways rate are printed beside it. The proxies count the TCP connections each run opened and the registries' access
logs the requests it sent. Every result is checked before its time counts: each tag at the
destination has the source's digest (and, for a no-op, still has it), fluxmirror's report says
`skipped` or `copied` for every tag with the source's digest, and the floor's blobs exist.

The round-trip floor (`Case.round_trips`) is the fewest sequential round trips the work needs,
times the RTT, plus bytes ÷ the slower payload rate measured both ways at once where the link is
capped (`WanResults.floor_basis`; results written before a probe use the rates they have); its
model is in benchmarks/README.md.

The CLI runs as ``python -m fluxmirror`` with this checkout first on ``PYTHONPATH``.
``FLUXMIRROR_WAN_CASES`` (case keys, comma-separated: ``copy,capped``) runs only those cases.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from benchmarks.copy import BenchmarkError, Target, check_checkout, measure
from benchmarks.latency import LatencyProxies
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
from benchmarks.wanlink import (
    BOTH_WAYS,
    Link,
    LinkUnavailable,
    inside_private_network,
    loopback,
    private_link,
    unshare_argv,
)

__all__ = ["CASES_VARIABLE", "FULL", "QUICK", "THROUGH_PROXIES", "Case", "Sizes", "WanResults", "chosen_cases", "run"]

RTT_MS = 40
LOOKUPS_IN_FLIGHT = 16  # per host, in the floor: the compare phase's limit (--compare-concurrency's default)
COPIES_IN_FLIGHT = 4  # copy jobs at once in the floor: --concurrency's default
TAG_PAGE = 1000  # tags per listing page (`?n=1000`, the contract's page size)
PARALLEL_ENTRIES = 8  # the entries case also runs fluxmirror with --parallel-entries 8 when it has the flag
TUNED_COPIES = 16  # the small-copy case also runs fluxmirror with --concurrency 16, as a CI job tuned for it would
# Flags that parallel work adds to fluxmirror; a case that needs one runs only when `sync --help` lists it.
PARALLEL_FLAG, COMPARE_FLAG, CONCURRENCY_FLAG = "--parallel-entries", "--compare-concurrency", "--concurrency"
SKOPEO, FLUXMIRROR, FLOOR = "skopeo sync", "fluxmirror", "floor (streamed blobs)"
_ACCESS_LOG = {"log": {"accesslog": {"disabled": False}}}
_REQUEST_LINE = re.compile(rb'"(?:GET|HEAD|POST|PUT|PATCH|DELETE) /v2/')
KiB = 1 << 10
CASES_VARIABLE = "FLUXMIRROR_WAN_CASES"  # comma-separated case keys: run only those (while iterating on one)
# What the capped link's floor divides the bytes by: the qdisc's rate, or the payload rate of the slower
# direction measured alone, or with the other direction loaded too (a copy's case), straight across the
# link or through the latency proxies (a copy's path); the floor takes the slower of the last two.
Basis = Literal["nominal", "one way", "both ways", "both ways through the proxies"]
_LOADED: tuple[Basis, ...] = ("both ways", "both ways through the proxies")  # the floor's candidates
# The bench's keys, beside `Link.payload_rates`' own, for one stream each way at once through the proxies.
THROUGH_PROXIES = {direction: f"{direction} (both ways, through the proxies)" for direction in BOTH_WAYS}
_RATE_KEYS: dict[Basis, dict[str, str]] = {
    "one way": {direction: direction for direction in BOTH_WAYS},
    "both ways": BOTH_WAYS,
    "both ways through the proxies": THROUGH_PROXIES,
}
_PROBES: dict[Basis, str] = {  # how each measured rate's streams ran, for the printout
    "one way": "one after the other",
    "both ways": "one each way at once",
    "both ways through the proxies": f"one each way at once through two proxies at {RTT_MS // 2} ms each way",
}


@dataclass(frozen=True)
class Case:
    key: str
    entries: int  # repositories, one config entry each
    tags: int  # per entry
    layers: tuple[int, ...]
    noop: bool  # the destination already holds every tag (filled directly, not by a tool)
    mbit: int | None = None  # the link's cap each way, if any
    # skopeo is not run here but scaled from this case's per-tag time: it syncs one tag after another,
    # so its time is linear in tags (0.50–0.55 s a tag at 40 ms in every case measured), and 5,000
    # tags would take it about 45 minutes.
    skopeo_scaled_from: str | None = None
    # A sweep: fluxmirror alone, once per width of its compare phase (--compare-concurrency W).
    compare_widths: tuple[int, ...] = ()

    @property
    def total_tags(self) -> int:
        return self.entries * self.tags

    @property
    def title(self) -> str:
        what = "no-op" if self.noop else "copy"
        tags = f"{self.tags:,} tag" + ("s" if self.tags != 1 else "")
        shape = f"{self.entries} entries × {tags}" if self.entries > 1 else tags
        if not self.noop:
            shape += f" × {len(self.layers)} × {_size(self.layers[0])}"
        return f"{what}, {shape}" + (f", {self.mbit} Mbit/s" if self.mbit else "")

    def round_trips(
        self, parallel_entries: int = 1, lookups: int = LOOKUPS_IN_FLIGHT, copies: int = COPIES_IN_FLIGHT
    ) -> int:
        """The fewest sequential round trips the work needs (model: benchmarks/README.md#wan-floor).

        Once per run: connect and ping (both registries at once), then one handshake round for the
        further connections the first wave opens. Per entry: the tag-list pages, in turn; then, for
        a no-op, one source HEAD beside one destination HEAD per tag, ``lookups`` per host in flight;
        for a copy, one round to learn the first manifests (the rest are fetched while copies run),
        then per tag, ``copies`` in flight (--concurrency, 4 by default), the blob uploads (POST
        beside the source GET, then the PUT that carries the body: 2) and the manifest PUT (1).
        ``parallel_entries`` entries at once.
        """
        per_entry = math.ceil(self.tags / TAG_PAGE)
        if self.noop:
            per_entry += math.ceil(self.tags / lookups)
        else:
            per_entry += 1 + math.ceil(self.tags / copies) * 3
        return 2 + 1 + math.ceil(self.entries / parallel_entries) * per_entry


@dataclass(frozen=True)
class Sizes:
    name: str
    cases: tuple[Case, ...]
    probe_bytes: int  # the plain TCP stream that measures the capped link's payload rate, each way


_SMALL = (4 * KiB,)  # the no-op cases' images: a config and one small layer each
FULL = Sizes(
    "full",
    (
        Case("noop", 1, 300, _SMALL, noop=True),
        Case("copy", 1, 50, (MiB, MiB), noop=False),
        Case("capped", 1, 2, (128 * MiB, 128 * MiB), noop=False, mbit=200),
        Case("noop-5000", 1, 5000, _SMALL, noop=True, skopeo_scaled_from="noop"),
        Case("entries", 200, 5, _SMALL, noop=True),
        Case("compare", 1, 1000, _SMALL, noop=True, compare_widths=(4, 8, 16, 32, 64)),
    ),
    64 * MiB,
)
QUICK = Sizes(
    "quick",
    (
        Case("noop", 1, 30, _SMALL, noop=True),
        Case("copy", 1, 6, (MiB, MiB), noop=False),
        Case("capped", 1, 1, (8 * MiB, 8 * MiB), noop=False, mbit=200),
        Case("noop-5000", 1, 100, _SMALL, noop=True, skopeo_scaled_from="noop"),
        Case("entries", 10, 5, _SMALL, noop=True),
        Case("compare", 1, 300, _SMALL, noop=True, compare_widths=(4, 16, 64)),
    ),
    16 * MiB,
)


@dataclass(frozen=True)
class Measurement:
    case: str
    tool: str
    rtt_ms: int
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    connections: int  # TCP connections the tool opened to both registries
    requests: int  # registry API requests (both access logs)
    parallel_entries: int = 1
    compare_concurrency: int | None = None  # given on the command line; None: fluxmirror's default
    concurrency: int = COPIES_IN_FLIGHT  # --concurrency
    scaled_from: str | None = None  # a case whose measurement this one is scaled from, per tag
    # From the tool's spawn to its first connection (interpreter, imports, config), from then to the
    # last byte either way through the proxies, and from that byte to its exit; seconds.
    startup: float = 0.0
    network: float = 0.0
    exit: float = 0.0


@dataclass
class WanResults:
    sizes: Sizes
    payload: dict[str, int]  # capped case → bytes of blobs and manifests that its copy moves
    # capped case → direction (alone, or under `BOTH_WAYS`' or `THROUGH_PROXIES`' keys) → payload bits/s;
    # results written before a probe lack its keys: before the both-ways one, only the one-way keys.
    rates: dict[str, dict[str, float]]
    measurements: list[Measurement]
    skopeo_version: str
    link: str
    notes: list[str] = field(default_factory=list)

    # --- serialised across the `unshare` boundary --------------------------------------------

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WanResults:
        data = json.loads(text)
        sizes = Sizes(
            data["sizes"]["name"],
            tuple(
                Case(**{**case, "layers": tuple(case["layers"]), "compare_widths": tuple(case["compare_widths"])})
                for case in data["sizes"]["cases"]
            ),
            data["sizes"]["probe_bytes"],
        )
        measurements = [Measurement(**m) for m in data["measurements"]]
        return cls(
            sizes, data["payload"], data["rates"], measurements, data["skopeo_version"], data["link"], data["notes"]
        )

    # --- reading ------------------------------------------------------------------------------

    def case(self, key: str) -> Case:
        return next(case for case in self.sizes.cases if case.key == key)

    def find(self, key: str, tool: str, rtt_ms: int = RTT_MS) -> Measurement | None:
        return next((m for m in self.measurements if (m.case, m.tool, m.rtt_ms) == (key, tool, rtt_ms)), None)

    def floor_seconds(
        self, key: str, parallel_entries: int = 1, lookups: int = LOOKUPS_IN_FLIGHT, copies: int = COPIES_IN_FLIGHT
    ) -> float:
        case = self.case(key)
        seconds = case.round_trips(parallel_entries, lookups, copies) * RTT_MS / 1000
        return seconds + (self.link_seconds(key) or 0.0)

    def bases(self, key: str) -> list[Basis]:
        """The bases these results can divide by: the nominal rate, and each rate they measured."""
        rates = self.rates.get(key, {})
        return ["nominal", *(basis for basis, names in _RATE_KEYS.items() if all(n in rates for n in names.values()))]

    def floor_basis(self, key: str) -> Basis:
        """The capped floor's basis: the slower of the both-ways rates measured (straight across and
        through the proxies: a copy loads both directions, and its bytes take the proxies' path);
        in results that predate both probes, the one-way rate; with nothing measured, the nominal."""
        measured = self.bases(key)
        loaded = [basis for basis in _LOADED if basis in measured]
        return min(loaded, key=lambda basis: self.payload_rate(key, basis) or 0.0) if loaded else measured[-1]

    def payload_rate(self, key: str, basis: Basis | None = None) -> float | None:
        """Bits/s the capped link delivers as payload at the slower direction (a copy needs both), on
        ``basis`` (the floor's when None); None for the nominal rate or a rate not measured."""
        basis = basis or self.floor_basis(key)
        if basis == "nominal" or basis not in self.bases(key):
            return None
        return min(self.rates[key][name] for name in _RATE_KEYS[basis].values())

    def link_seconds(self, key: str, basis: Basis | None = None) -> float | None:
        """bytes ÷ rate, the capped link's floor: at the measured payload rate (`payload_rate`), else
        (or at ``nominal``) at the rate the qdisc is set to, which counts the frames' headers too."""
        case = self.case(key)
        if not case.mbit or key not in self.payload:
            return None
        rate = self.payload_rate(key, basis)
        return self.payload[key] * 8 / (case.mbit * 1e6 if rate is None else rate)

    def _capped_against(self, key: str) -> str:
        """What the capped target divides by, fluxmirror's ratios to the other bases, and what is missing."""
        floor, measured = self.floor_basis(key), self.bases(key)
        mine = self.find(key, FLUXMIRROR)
        others = [
            f"{mine.seconds / seconds:.3f}× {basis}"
            for basis in measured
            if basis != floor and mine and (seconds := self.link_seconds(key, basis))
        ]
        missing = [basis for basis in _RATE_KEYS if basis not in measured]
        said = f"× bytes ÷ the link's payload rate {floor}" + (f" ({', '.join(others)})" if others else "")
        return said + (f" ({' and '.join(missing)} not measured in these results)" if missing else "")

    def _floor_of(self, m: Measurement) -> float:
        return self.floor_seconds(m.case, m.parallel_entries, m.compare_concurrency or LOOKUPS_IN_FLIGHT, m.concurrency)

    def targets(self) -> list[Target]:
        """The issue's targets, for the cases that ran."""
        targets: list[Target] = []

        def ratio(key: str, tool: str, baseline: float | None) -> float | None:
            mine = self.find(key, tool)
            return mine.seconds / baseline if mine and baseline else None

        def skopeo(key: str) -> float | None:
            found = self.find(key, SKOPEO)
            return found.seconds if found else None

        wanted: list[tuple[str, str, str, float | None, float]] = [
            ("noop", FLUXMIRROR, "× skopeo", skopeo("noop"), 0.02),
            ("copy", FLUXMIRROR, "× skopeo", skopeo("copy"), 0.05),
            ("copy", _variant(CONCURRENCY_FLAG, TUNED_COPIES), "× skopeo", skopeo("copy"), 0.05),
            ("capped", FLUXMIRROR, self._capped_against("capped"), self.link_seconds("capped"), 1.05),
            ("noop-5000", FLUXMIRROR, "× the round-trip floor", self.floor_seconds("noop-5000"), 3.0),
            ("noop-5000", FLUXMIRROR, "× skopeo", skopeo("noop-5000"), 0.1),
        ]
        entries_tool = _variant(PARALLEL_FLAG, PARALLEL_ENTRIES)
        if self.find("entries", entries_tool) is None:
            entries_tool = FLUXMIRROR
        wanted.append(("entries", entries_tool, "× skopeo", skopeo("entries"), 0.01))
        for key, tool, against, baseline, limit in wanted:
            value = ratio(key, tool, baseline)
            if value is not None:
                scaled = (found := self.find(key, SKOPEO)) is not None and found.scaled_from is not None
                against += " (scaled)" if scaled and "skopeo" in against else ""
                targets.append(Target(f"{self.case(key).title}, {tool}, {against}", value, limit, "{:.3f}×"))
        rss = [m.peak_rss_mib for m in self.measurements if m.tool.startswith(FLUXMIRROR)]
        if rss:
            targets.append(Target("fluxmirror peak RSS, every run", max(rss), 150.0, "{:.0f} MiB", strict=True))
        return targets

    # --- rendering ----------------------------------------------------------------------------

    def _note(self) -> str:
        note = (
            f"wan: fluxmirror vs skopeo {self.skopeo_version} vs a round-trip floor, {RTT_MS} ms RTT through "
            f"latency proxies, {self.link}, {os.cpu_count()} CPUs, one run per tool and RTT"
        )
        return note + (" — reduced sizes: the targets are indicative only" if self.sizes.name != "full" else "")

    def _on_clock(self, m: Measurement) -> str:
        """Round trips that stood on the clock: the wall at the RTT less the wall at 0 ms, ÷ RTT."""
        local = self.find(m.case, m.tool, 0)
        return f"{(m.seconds - local.seconds) * 1000 / RTT_MS:.0f}" if local else "–"

    def _table(self) -> list[tuple[str, ...]]:
        header = (
            "case",
            "tool",
            f"wall s at {RTT_MS} ms",
            "at 0 ms",
            "RTTs on the clock",
            "start-up s",
            "network s",
            "CPU s",
            "peak RSS MiB",
            "conns",
            "requests",
            "× skopeo",
            "× floor",
        )
        rows: list[tuple[str, ...]] = [header]
        for case in self.sizes.cases:
            runs = [m for m in self.measurements if m.case == case.key and m.rtt_ms == RTT_MS]
            if not runs or case.compare_widths:
                continue
            skopeo = self.find(case.key, SKOPEO)
            floor = self.floor_seconds(case.key)
            trips = case.round_trips()
            rows.append(
                (case.title, "round-trip floor", f"{floor:.2f}", "", f"{trips}", *[""] * 6, _x(floor, skopeo), "1.00")
            )
            for m in runs:
                local = self.find(case.key, m.tool, 0)
                rows.append(
                    (
                        case.title,
                        m.tool if m.scaled_from is None else f"{m.tool} (scaled from {self.case(m.scaled_from).title})",
                        f"{m.seconds:.2f}",
                        f"{local.seconds:.2f}" if local else "–",
                        self._on_clock(m),
                        f"{m.startup:.2f}" if m.scaled_from is None else "–",
                        f"{m.network:.2f}" if m.scaled_from is None else "–",
                        f"{m.cpu_seconds:.2f}",
                        f"{m.peak_rss_mib:.0f}",
                        f"{m.connections}",
                        f"{m.requests}",
                        _x(m.seconds, skopeo),
                        f"{m.seconds / self._floor_of(m):.2f}",
                    )
                )
        return rows

    def _link_table(self) -> list[tuple[str, ...]]:
        """The capped cases' runs against bytes ÷ the nominal rate and ÷ the measured payload rates."""
        rows: list[tuple[str, ...]] = []
        for case in self.sizes.cases:
            if case.key not in self.rates or case.key not in self.payload:
                continue
            bases = self.bases(case.key)
            floors = [self.link_seconds(case.key, basis) or 0.0 for basis in bases]
            said = [
                f"{case.mbit} Mbit/s"
                if basis == "nominal"
                else f"{(self.payload_rate(case.key, basis) or 0.0) / 1e6:.1f} Mbit/s {basis}"
                for basis in bases
            ]
            columns = [f"× bytes ÷ {what} ({floor:.2f} s)" for what, floor in zip(said, floors, strict=True)]
            rows.append((case.title, "tool", f"wall s at {RTT_MS} ms", "network s", *columns))
            for m in (m for m in self.measurements if m.case == case.key and m.rtt_ms == RTT_MS):
                ratios = [f"{m.seconds / floor:.3f}" for floor in floors]
                rows.append(("", m.tool, f"{m.seconds:.2f}", f"{m.network:.2f}", *ratios))
        return rows

    def _sweep_table(self) -> list[tuple[str, ...]]:
        """The compare sweeps: one run per width, against the floor of that width."""
        rows: list[tuple[str, ...]] = []
        for case in (case for case in self.sizes.cases if case.compare_widths):
            runs = [m for m in self.measurements if m.case == case.key and m.rtt_ms == RTT_MS]
            if not runs:
                continue
            header = f"wall s at {RTT_MS} ms", "at 0 ms", "RTTs on the clock", "network s", "floor RTTs", "floor s"
            rows.append((case.title, COMPARE_FLAG, *header, "× floor"))
            for m in runs:
                width = m.compare_concurrency or LOOKUPS_IN_FLIGHT
                local = self.find(case.key, m.tool, 0)
                floor = self._floor_of(m)
                rows.append(
                    (
                        "",
                        f"{width}",
                        f"{m.seconds:.2f}",
                        f"{local.seconds:.2f}" if local else "–",
                        self._on_clock(m),
                        f"{m.network:.2f}",
                        f"{case.round_trips(lookups=width)}",
                        f"{floor:.2f}",
                        f"{m.seconds / floor:.2f}",
                    )
                )
        return rows

    def _floor_lines(self) -> list[str]:
        lines = []
        for case in self.sizes.cases:
            if not self.find(case.key, FLUXMIRROR) or case.compare_widths:
                continue
            line = f"floor, {case.title}: {case.round_trips()} round trips × {RTT_MS} ms"
            if (link := self.link_seconds(case.key)) is not None:
                rate = self.payload_rate(case.key)
                basis = self.floor_basis(case.key)
                said = f"{rate / 1e6:.1f} Mbit/s of payload {basis}" if rate else f"{case.mbit} Mbit/s"
                line += f" + {self.payload[case.key] / MiB:.1f} MiB ÷ {said} ({link:.2f} s)"
            if self.find(case.key, _variant(PARALLEL_FLAG, PARALLEL_ENTRIES)):
                line += f"; with {PARALLEL_ENTRIES} entries at once: {case.round_trips(PARALLEL_ENTRIES)} round trips"
            lines.append(line)
        for key, rates in self.rates.items():
            case = self.case(key)
            carried = ", ".join(f"{_said(rates, _RATE_KEYS[basis])} {_PROBES[basis]}" for basis in self.bases(key)[1:])
            share = (self.payload_rate(key) or 0.0) / (case.mbit or 1) / 1e4
            lines.append(
                f"link, {case.title}: the payload plain TCP streams of {self.sizes.probe_bytes // MiB} MiB carried: "
                f"{carried}; the floor takes the slower direction {self.floor_basis(key)}, {share:.1f} % of nominal"
            )
        return lines

    def _tables(self) -> list[list[tuple[str, ...]]]:
        return [rows for rows in (self._table(), self._link_table(), self._sweep_table()) if rows]

    def text(self) -> str:
        lines = [self._note()]
        for rows in self._tables():
            widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
            lines.append("")
            for row in rows:
                cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
                lines.append("  ".join(cells).rstrip())
        lines += ["", *self._floor_lines(), *self.notes, "", *(target.line() for target in self.targets())]
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [self._note()]
        for rows in self._tables():
            lines += ["", "| " + " | ".join(rows[0]) + " |", "| --- | --- |" + " ---: |" * (len(rows[0]) - 2)]
            lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        lines += ["", *self._floor_lines(), *self.notes, "", *(f"- {target.line()}" for target in self.targets())]
        return "\n".join(lines) + "\n"


def _said(rates: dict[str, float], keys: dict[str, str]) -> str:
    """Both directions' rates, from their keys in ``rates`` (direction → key)."""
    return " and ".join(f"{rates[key] / 1e6:.1f} Mbit/s {direction}" for direction, key in keys.items())


def _x(seconds: float, baseline: Measurement | None) -> str:
    return f"{seconds / baseline.seconds:.3f}" if baseline else "–"


def _size(size: int) -> str:
    return f"{size // MiB} MiB" if size >= MiB else f"{size // KiB} KiB"


def _variant(flag: str, value: int) -> str:
    """fluxmirror with one flag beyond its defaults: the tool's name is its command line's tail."""
    return f"{FLUXMIRROR} {flag} {value}"


def _flags(tool: str) -> list[str]:
    """A fluxmirror variant's flags (`_variant`); none for fluxmirror itself."""
    return tool.removeprefix(FLUXMIRROR).split()


def _flag_value(tool: str, flag: str) -> int | None:
    words = _flags(tool)
    return int(words[words.index(flag) + 1]) if flag in words else None


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --- the bench ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Side:
    """A registry and the proxy in front of it: tools get ``address``, checks use ``registry``."""

    registry: Registry
    address: str  # host:port of the proxy


@dataclass(frozen=True)
class _Content:
    repos: list[str]
    images: dict[str, list[PushedImage]]  # repository → its images


class _Bench:
    def __init__(self, envs: LocalRegistries, link: Link, proxies: LatencyProxies, sizes: Sizes) -> None:
        self.sizes = sizes
        self._envs = envs
        self._link = link
        self._proxies = proxies
        env = {key: value for key, value in isolated_env().items() if "proxy" not in key.lower()}
        self._env = env
        # The checkout next to this file, first on the child's path (ahead of the venv's editable install).
        self._flux_env = {**env, "PYTHONPATH": str(REPO_ROOT)}
        self.measurements: list[Measurement] = []
        self.payload: dict[str, int] = {}
        self.rates: dict[str, dict[str, float]] = {}
        self.flags: set[str] = set()

    def prepare(self) -> None:
        """Check the checkout; learn which of the flags parallel work adds fluxmirror has."""
        check_checkout(self._flux_env, self._envs.root)
        help_text = subprocess.run(
            [sys.executable, "-m", "fluxmirror", "sync", "--help"],
            capture_output=True,
            text=True,
            env={**self._flux_env, "COLUMNS": "200"},
            cwd=REPO_ROOT,
            check=True,
        ).stdout
        self.flags = {flag for flag in (PARALLEL_FLAG, COMPARE_FLAG) if flag in help_text}

    def _side(self) -> _Side:
        registry = self._envs.start(config=_ACCESS_LOG)
        return _Side(registry, self._proxies.add(registry.host))

    def _fill(self, side: _Side, case: Case) -> _Content:
        repos = [f"bench/{case.key}"] if case.entries == 1 else [f"bench/e{i:03d}" for i in range(case.entries)]
        tags = [f"1.0.{n}" for n in range(case.tags)]  # semver, so `limit: 0` selects them all
        images = {
            repo: populate(side.registry, repo, tags, case.layers, first_seed=1 + index * case.tags)
            for index, repo in enumerate(repos)
        }
        return _Content(repos, images)

    def _tools(self, case: Case) -> list[str]:
        if case.compare_widths:
            return [_variant(COMPARE_FLAG, width) for width in case.compare_widths]
        tools = [FLUXMIRROR] if case.skopeo_scaled_from else [SKOPEO, FLUXMIRROR]
        if case.entries > 1 and PARALLEL_FLAG in self.flags:
            tools.append(_variant(PARALLEL_FLAG, PARALLEL_ENTRIES))
        if not case.noop and not case.mbit:
            tools.append(_variant(CONCURRENCY_FLAG, TUNED_COPIES))
        if not case.noop:
            tools.append(FLOOR)
        return tools

    def run_case(self, case: Case) -> None:
        _say(f"wan: {case.title}: populating")
        source = self._side()
        content = self._fill(source, case)
        if case.mbit:  # the link's floor needs the bytes
            self.payload[case.key] = _payload(source.registry, content)
        standing = self._side() if case.noop else None
        if standing is not None:
            self._fill(standing, case)  # the same seeds: the same digests, as if mirrored already
        for rtt_ms in (0, RTT_MS):
            self._proxies.one_way = rtt_ms / 2000
            with self._capped(case.mbit):
                if case.mbit and case.key not in self.rates:
                    self.rates[case.key] = rates = self._link_rates()
                    _say(f"  {case.key:<10} link: " + ", ".join(f"{r / 1e6:.1f} Mbit/s {d}" for d, r in rates.items()))
                for tool in self._tools(case):
                    destination = standing or self._side()
                    self._run_tool(case, tool, rtt_ms, source, destination, content)
                    if standing is None:
                        self._envs.wipe(destination.registry)
        if case.skopeo_scaled_from:
            self._scale_skopeo(case)
        self._envs.wipe(source.registry)
        if standing is not None:
            self._envs.wipe(standing.registry)

    def _link_rates(self) -> dict[str, float]:
        """`Link.payload_rates`, and one stream each way at once through two of the proxies at the
        case's delay (`THROUGH_PROXIES`' keys): the path a copy's bytes take, a relay in this process
        on the far side's share of the two cores, beside the straight one."""
        rates = self._link.payload_rates(self.sizes.probe_bytes)
        one_way, self._proxies.one_way = self._proxies.one_way, RTT_MS / 2000
        try:
            relayed = self._link.both_ways(self.sizes.probe_bytes, relay=self._proxies)
        finally:
            self._proxies.one_way = one_way
        return rates | {THROUGH_PROXIES[direction]: rate for direction, rate in relayed.items()}

    def _scale_skopeo(self, case: Case) -> None:
        assert case.skopeo_scaled_from is not None
        base = next(c for c in self.sizes.cases if c.key == case.skopeo_scaled_from)
        factor = case.total_tags / base.total_tags
        for m in [m for m in self.measurements if (m.case, m.tool) == (base.key, SKOPEO)]:
            scaled = dataclasses.replace(
                m,
                case=case.key,
                seconds=m.seconds * factor,
                cpu_seconds=m.cpu_seconds * factor,
                connections=round(m.connections * factor),
                requests=round(m.requests * factor),
                scaled_from=base.key,
            )
            self.measurements.append(scaled)

    @contextmanager
    def _capped(self, mbit: int | None) -> Iterator[None]:
        if mbit is None:
            yield
            return
        self._link.cap(mbit)
        try:
            yield
        finally:
            self._link.uncap()

    def _run_tool(
        self, case: Case, tool: str, rtt_ms: int, source: _Side, destination: _Side, content: _Content
    ) -> None:
        scratch = self._envs.root
        if tool == SKOPEO:
            argv, env = self._skopeo(source, destination, content), self._env
        elif tool == FLOOR:
            argv, env = self._floor(source, destination, content), self._env
        else:
            argv, env = self._fluxmirror(source, destination, content, _flags(tool)), self._flux_env
        logs = [side.registry.log_path for side in (source, destination)]
        before = [_requests(log) for log in logs]
        self._proxies.traffic()  # reset the counters
        os.sync()  # now, so that measure()'s own sync is instant and off the start-up phase below
        started = time.monotonic()
        child = measure([*self._link.near, *argv], env, scratch)
        ended = time.monotonic()
        traffic = self._proxies.traffic()
        connections = sum(t.connections for t in traffic)
        first = min((t.first for t in traffic if t.first is not None), default=started)
        last = max((t.last for t in traffic if t.last is not None), default=ended)
        requests = sum(_requests(log) for log in logs) - sum(before)
        m = Measurement(
            case.key,
            tool,
            rtt_ms,
            child.seconds,
            child.cpu_seconds,
            child.peak_rss_mib,
            connections,
            requests,
            _flag_value(tool, PARALLEL_FLAG) or 1,
            _flag_value(tool, COMPARE_FLAG),
            _flag_value(tool, CONCURRENCY_FLAG) or COPIES_IN_FLIGHT,
            startup=first - started,
            network=last - first,
            exit=ended - last,
        )
        self.measurements.append(m)
        _say(
            f"  {case.key:<10} {tool:<36} {rtt_ms:>2} ms {m.seconds:8.2f} s {m.cpu_seconds:6.2f} CPU s "
            f"{m.peak_rss_mib:5.0f} MiB {connections:5} conns {requests:6} requests; start-up {m.startup:.2f} s, "
            f"network {m.network:.2f} s, exit {m.exit:.2f} s"
        )
        if tool == FLOOR:
            _check_blobs(destination.registry, content)
            return
        if tool != SKOPEO:
            _check_report(child.stdout, content, "skipped" if case.noop else "copied")
        _check_mirrored(destination.registry, content, tool)

    def _config(self, source: _Side, destination: _Side, content: _Content) -> Path:
        config = Path(tempfile.mkstemp(suffix=".yaml", dir=self._envs.root)[1])
        entries = [
            {
                "source": f"{source.address}/{repo}",
                "destination": f"{destination.address}/{repo}",
                "selector": {"limit": 0},
            }
            for repo in content.repos
        ]
        document = {"apiVersion": "mirror.plugin.fluxcd.io/v1beta1", "kind": "Config", "artifacts": entries}
        config.write_text(json.dumps(document))  # JSON is YAML
        return config

    def _fluxmirror(self, source: _Side, destination: _Side, content: _Content, flags: list[str]) -> list[str]:
        config = self._config(source, destination, content)
        return [sys.executable, "-m", "fluxmirror", "sync", str(config), "-o", "json", "--no-progress", *flags]

    def _skopeo(self, source: _Side, destination: _Side, content: _Content) -> list[str]:
        flags = ["--dest=docker", "--all", "--preserve-digests"]
        if len(content.repos) == 1:
            (repo,) = content.repos
            parent = repo.rpartition("/")[0]  # sync writes into DESTINATION/<last path element>
            return skopeo_invocation(
                "sync", "--src=docker", *flags, f"{source.address}/{repo}", f"{destination.address}/{parent}"
            )
        listing = Path(tempfile.mkstemp(suffix=".yaml", dir=self._envs.root)[1])
        images: dict[str, list[str]] = {repo: [] for repo in content.repos}  # [] means every tag
        listing.write_text(json.dumps({source.address: {"tls-verify": False, "images": images}}))
        return skopeo_invocation("sync", "--src=yaml", *flags, str(listing), f"{destination.address}/bench")

    def _floor(self, source: _Side, destination: _Side, content: _Content) -> list[str]:
        (repo,) = content.repos
        digests = [digest for image in content.images[repo] for digest in image.blobs]
        return [
            sys.executable,
            "-m",
            "benchmarks.floor",
            f"http://{source.address}",
            f"http://{destination.address}",
            repo,
            *digests,
        ]


# --- checks ---------------------------------------------------------------------------------


def _requests(log: Path) -> int:
    return len(_REQUEST_LINE.findall(log.read_bytes())) if log.exists() else 0


def _payload(registry: Registry, content: _Content) -> int:
    """What a copy moves: every manifest and the blobs it names."""
    total = 0
    for repo, images in content.images.items():
        for image in images:
            manifest = get_manifest(registry, repo, image.digest).data
            document = json.loads(manifest)
            total += len(manifest) + sum(d["size"] for d in (document["config"], *document["layers"]))
    return total


def _check_mirrored(registry: Registry, content: _Content, tool: str) -> None:
    """Each repository has exactly the source's tags, each with the source's digest."""

    def check(repo: str) -> None:
        expected = {image.tag: image.digest for image in content.images[repo]}
        if (tags := sorted(list_tags(registry, repo))) != sorted(expected):
            raise BenchmarkError(f"{tool} left {repo} with tags {tags[:5]}…, expected {len(expected)} tags")
        for tag, digest in expected.items():
            if (actual := get_manifest(registry, repo, tag).digest) != digest:
                raise BenchmarkError(f"{tool} left {repo}:{tag} as {actual}, the source has {digest}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(check, content.repos))


def _check_blobs(registry: Registry, content: _Content) -> None:
    connection = http.client.HTTPConnection(registry.host, timeout=30)
    try:
        for repo, images in content.images.items():
            for digest in (digest for image in images for digest in image.blobs):
                connection.request("HEAD", f"/v2/{repo}/blobs/{digest}")
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise BenchmarkError(f"the floor left no blob {digest} in {repo}: HTTP {response.status}")
    finally:
        connection.close()


def _check_report(stdout: str, content: _Content, expect: str) -> None:
    report = json.loads(stdout)["report"]
    summary = report["summary"]
    count = sum(len(images) for images in content.images.values())
    others = {key: value for key, value in summary.items() if key not in (expect, "entries", "exitCode") and value}
    if summary.get(expect) != count or others or summary.get("exitCode") != 0:
        raise BenchmarkError(f"fluxmirror should have {expect} {count} tags, its summary says {summary}")
    for result, repo in zip(report["results"], content.repos, strict=True):
        expected = {image.tag: image.digest for image in content.images[repo]}
        rows = {row["tag"]: (row["status"], row.get("digest")) for row in result["tags"]}
        if rows != {tag: (expect, digest) for tag, digest in expected.items()}:
            raise BenchmarkError(f"fluxmirror's rows for {repo} are not all {expect} with the source's digests")


# --- running --------------------------------------------------------------------------------


def chosen_cases(sizes: Sizes) -> tuple[Case, ...]:
    """The cases that ``FLUXMIRROR_WAN_CASES`` names (keys, comma-separated), in their usual order;
    every case when it is unset or empty. A key no case has is an error, before anything runs."""
    keys = {key.strip() for key in os.environ.get(CASES_VARIABLE, "").split(",") if key.strip()}
    if not keys:
        return sizes.cases
    known = [case.key for case in sizes.cases]
    if unknown := sorted(keys - set(known)):
        raise BenchmarkError(f"{CASES_VARIABLE}: no case {', '.join(unknown)}; the cases are {', '.join(known)}")
    return tuple(case for case in sizes.cases if case.key in keys)


def run(sizes: Sizes = FULL) -> WanResults:
    """Run the cases (`chosen_cases`) in a private network when this machine allows one, else on loopback."""
    chosen_cases(sizes)  # a misspelt case fails here, not after the namespace is set up
    with tempfile.TemporaryDirectory(prefix="fluxmirror-wan-") as scratch:
        result = Path(scratch) / "result.json"
        try:
            argv, env = unshare_argv([sys.executable, "-m", "benchmarks.wan", "--sizes", sizes.name, str(result)])
        except LinkUnavailable as why:
            return run_here(sizes, loopback(), [f"no private network ({why}): loopback, the capped case left out"])
        if subprocess.run(argv, env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, check=False).returncode != 0:
            raise BenchmarkError("the WAN benchmark failed in its network namespace (its output is above)")
        return WanResults.from_json(result.read_text())


def run_here(sizes: Sizes, link: Link, notes: Sequence[str] = ()) -> WanResults:
    """Every case over ``link``, in this process's network namespace; progress goes to stderr."""
    notes = list(notes)
    with LocalRegistries(prefix="fluxmirror-wan-") as envs, closing(link), closing(LatencyProxies(link.far)) as proxies:
        bench = _Bench(envs, link, proxies, sizes)
        bench.prepare()
        if PARALLEL_FLAG not in bench.flags:
            notes.append(f"fluxmirror sync has no {PARALLEL_FLAG} here: the entries case ran one entry at a time")
        cases = chosen_cases(sizes)
        if len(cases) < len(sizes.cases):
            notes.append(f"{CASES_VARIABLE}: only {', '.join(case.key for case in cases)} ran")
        for case in cases:
            if case.skopeo_scaled_from and case.skopeo_scaled_from not in {c.key for c in cases}:
                notes.append(
                    f"{case.title}: no skopeo row, it is scaled from {case.skopeo_scaled_from}, which did not run"
                )
            if case.mbit and not link.cappable:
                notes.append(f"{case.title}: not run, no link to cap ({link.describe()})")
            elif case.compare_widths and COMPARE_FLAG not in bench.flags:
                notes.append(f"{case.title}: the {COMPARE_FLAG} sweep not run, fluxmirror sync has no such flag here")
            else:
                bench.run_case(case)
        return WanResults(
            sizes, bench.payload, bench.rates, bench.measurements, skopeo_version(), link.describe(), notes
        )


def _inside(argv: Sequence[str]) -> int:
    """The re-run under `unshare --net`: build the link, run, write the results as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.wan", description="(run by benchmarks.wan.run)")
    parser.add_argument("--sizes", choices=(FULL.name, QUICK.name), required=True)
    parser.add_argument("result", type=Path)
    args = parser.parse_args(argv)
    if not inside_private_network():
        parser.error("this entry point runs inside the namespace that benchmarks.wan.run makes")
    sizes = FULL if args.sizes == FULL.name else QUICK
    notes: list[str] = []
    try:
        link = private_link()
    except LinkUnavailable as why:
        link, notes = loopback(), [f"no link between namespaces ({why}): loopback, the capped case left out"]
    args.result.write_text(run_here(sizes, link, notes).to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(_inside(sys.argv[1:]))
