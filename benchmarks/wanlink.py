"""A private two-host network for the WAN benchmark: a far side and a near side joined by one link.

The far side is the network namespace this process runs in (the WAN benchmark re-runs itself
under ``unshare --net``): the registries, their latency proxies and the benchmark's own checks.
The near side is a second namespace, held open by a sleeping child, where the tools under test
run (``nsenter --net=…``). A veth pair joins them, so every byte a tool moves crosses the link
exactly once per direction; a ``tbf`` qdisc on each end's egress caps each direction on its own,
as a full-duplex line does. (On one loopback device both directions and both proxy hops would
share one queue; ``netem``, which could delay packets in the kernel, is not built on this
machine, hence the proxies.)

The addresses are a /30 of the private range, which fluxmirror and skopeo both treat as a local
registry (plain HTTP allowed) with default flags, as they do 127.0.0.1; no traffic leaves the two
namespaces.

Where namespaces cannot be made (not root, no ``unshare``), `loopback()` gives the same interface
on 127.0.0.1 without a cap.

What a capped link delivers to TCP is less than its rate: ``tbf`` counts whole frames, and at
1500-byte frames the TCP, IP and Ethernet headers are about 4 % of them. `Link.payload_rates`
measures it with plain TCP streams through the same veth and qdisc: one each way, one after the
other, and then one each way at the same time. The second pair is what a copy sees: it downloads
and uploads at once, so each direction's queue also carries the ACKs of the other direction's
data, and the ``tbf`` counts those against the same rate. `Link.both_ways` runs such a pair
through a relay too (the benchmark's latency proxies), the path a tool's bytes take: a userspace
hop on the far side that shares the machine's cores with everything else. Run as ``python -m
benchmarks.wanlink far|near …`` this module is the streams' two ends, each a process of its own.

One stream each way at once varies from try to try far more than one alone (the two ramp up
together, each one's ACKs queued behind the other's bytes): at 64 MiB, alone within 0.2 % of each
other, at once 0.1 to 3.5 % below that; so each measurement is the best of three tries.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "BOTH_WAYS",
    "FAR_TO_NEAR",
    "NEAR_TO_FAR",
    "Link",
    "LinkUnavailable",
    "Relay",
    "inside_private_network",
    "loopback",
    "private_link",
    "unshare_argv",
]

FAR, NEAR = "10.255.18.1", "10.255.18.2"
NEAR_TO_FAR, FAR_TO_NEAR = "near→far", "far→near"  # uploads to the registries, downloads from them
# `Link.payload_rates`'s keys for the streams that ran at the same time, one each way.
BOTH_WAYS = {direction: f"{direction} (both ways)" for direction in (NEAR_TO_FAR, FAR_TO_NEAR)}
PROBE_TRIES = 3  # `Link.payload_rates` keeps the best of this many tries of each measurement
_LOCAL = "127.0.0.1"  # where the registries listen, behind their proxies, and a relayed probe's far end
_GO = b"g"  # far → near: start sending now (so that both directions start together)
_BLOCK = 1 << 20
_FAR_DEVICE, _NEAR_DEVICE = "wanfar", "wannear"
_MARK = "FLUXMIRROR_WAN_NAMESPACE"  # set in the environment of the re-run under `unshare --net`


class Relay(Protocol):
    """What stands in front of the far side's servers: `benchmarks.latency.LatencyProxies`."""

    one_way: float  # seconds each direction is held for, on connections made from now on

    def add(self, upstream_host: str) -> str:
        """Relay to ``upstream_host`` (``host:port``); return the ``host:port`` to connect to instead."""
        ...


class LinkUnavailable(RuntimeError):
    """No private network here; the message says what failed."""


@dataclass
class Link:
    """Where the proxies listen (``far``), and how to run a tool on the near side (``near``)."""

    far: str
    near: list[str]  # argv prefix for a tool: enter the near namespace, or nothing on loopback
    _holder: subprocess.Popen[bytes] | None = None
    _capped: list[str] = field(default_factory=list)

    @property
    def cappable(self) -> bool:
        return self._holder is not None

    def cap(self, mbit_per_s: int) -> None:
        """Cap each direction of the link at ``mbit_per_s`` (token bucket, a 50 ms queue)."""
        if self._holder is None:
            raise LinkUnavailable("the loopback fallback has no link to cap")
        for prefix, device in (([], _FAR_DEVICE), (self.near, _NEAR_DEVICE)):
            # burst: a few full-size GSO packets, so the bucket never refuses one whole packet.
            spec = ["tbf", "rate", f"{mbit_per_s}mbit", "burst", "256kb", "latency", "50ms"]
            _run([*prefix, "tc", "qdisc", "replace", "dev", device, "root", *spec])
        self._capped = [_FAR_DEVICE, _NEAR_DEVICE]

    def uncap(self) -> None:
        for prefix, device in (([], _FAR_DEVICE), (self.near, _NEAR_DEVICE)):
            if device in self._capped:
                _run([*prefix, "tc", "qdisc", "del", "dev", device, "root"])
        self._capped = []

    def payload_rates(self, size: int, tries: int = PROBE_TRIES) -> dict[str, float]:
        """Bits of payload per second that plain TCP streams of ``size`` bytes get, the best of ``tries``.

        Keyed by direction: one stream near → far, then one far → near, each alone on the link;
        then, under `BOTH_WAYS`' keys, one each way started together, straight across the veth
        (`both_ways` without a relay). Timed from the moment the streams are told to start to the
        last byte's arrival: near → far at the far end; far → near at the near end, which reports
        the moment (both namespaces read the one kernel's monotonic clock). A receipt sent back
        instead would queue behind the near → far stream's bytes when both run, up to the qdisc's
        50 ms, and count against the far → near one.

        The best, not the mean: a floor is what the link can deliver, and a try that starts badly
        (two streams ramping up, each one's ACKs queued behind the other's bytes) says less about a
        copy, whose transfers run for much longer than one stream of ``size``.
        """
        if self._holder is None:
            raise LinkUnavailable("the loopback fallback has no link to measure")
        alone = {
            direction: _timed_streams(self.near, [direction], size, tries=tries)[direction]
            for direction in (NEAR_TO_FAR, FAR_TO_NEAR)
        }
        together = self.both_ways(size, tries=tries)
        return alone | {BOTH_WAYS[direction]: rate for direction, rate in together.items()}

    def both_ways(
        self, size: int, *, relay: Relay | None = None, streams: int = 1, tries: int = PROBE_TRIES
    ) -> dict[str, float]:
        """Payload bits/s per direction with ``streams`` streams each way at once, the best of ``tries``:
        through ``relay`` (at its delay) if given, as a tool's bytes go, else straight across."""
        if self._holder is None:
            raise LinkUnavailable("the loopback fallback has no link to measure")
        return _timed_streams(self.near, [NEAR_TO_FAR, FAR_TO_NEAR], size, streams=streams, tries=tries, relay=relay)

    def describe(self) -> str:
        if self._holder is None:
            return "loopback (no private network: no bandwidth cap)"
        return f"two network namespaces joined by a veth pair ({FAR} ↔ {NEAR})"

    def close(self) -> None:
        if self._holder is not None:
            self._holder.kill()
            self._holder.wait()


def inside_private_network() -> bool:
    """True in the re-run that `unshare --net` started (see `wan.run`)."""
    return os.environ.get(_MARK) == "1"


def unshare_argv(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that re-run ``argv`` in a fresh network namespace."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("tc"):
        raise LinkUnavailable("a private network needs root, unshare and tc")
    probe = subprocess.run(["unshare", "--net", "--", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        raise LinkUnavailable(f"unshare --net: {probe.stderr.strip()}")
    return ["unshare", "--net", "--", *argv], {**os.environ, _MARK: "1"}


def loopback() -> Link:
    return Link(far="127.0.0.1", near=[])


def private_link() -> Link:
    """Bring up this namespace's loopback, start the near namespace and join the two."""
    _run(["ip", "link", "set", "lo", "up"])
    ours = os.stat("/proc/self/ns/net").st_ino
    # The holder dies with this process (pdeathsig), so a killed benchmark leaves no namespace behind.
    reaper = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
    holder = subprocess.Popen([*reaper, "unshare", "--net", "--", "sleep", "infinity"], stdin=subprocess.DEVNULL)
    namespace = f"/proc/{holder.pid}/ns/net"
    deadline = time.monotonic() + 5
    while os.stat(namespace).st_ino == ours:  # until the child has unshared
        if holder.poll() is not None or time.monotonic() > deadline:
            holder.kill()
            raise LinkUnavailable(f"unshare --net exited {holder.returncode} before making a namespace")
        time.sleep(0.005)
    near = ["nsenter", f"--net={namespace}", "--"]
    link = Link(far=FAR, near=near, _holder=holder)
    try:
        _run(["ip", "link", "add", _FAR_DEVICE, "type", "veth", "peer", "name", _NEAR_DEVICE, "netns", str(holder.pid)])
        _run(["ip", "addr", "add", f"{FAR}/30", "dev", _FAR_DEVICE])
        _run(["ip", "link", "set", _FAR_DEVICE, "up"])
        _run([*near, "ip", "addr", "add", f"{NEAR}/30", "dev", _NEAR_DEVICE])
        _run([*near, "ip", "link", "set", _NEAR_DEVICE, "up"])
        _run([*near, "ip", "link", "set", "lo", "up"])
    except BaseException:
        link.close()
        raise
    return link


def _timed_streams(
    near: list[str],
    directions: Sequence[str],
    size: int,
    *,
    streams: int = 1,
    tries: int = PROBE_TRIES,
    relay: Relay | None = None,
) -> dict[str, float]:
    """``streams`` streams of ``size`` bytes per direction, all started at once; each direction's
    payload bits/s, the best of ``tries``.

    The far end is a process of its own (this module, ``far``), as the registries are: a relay in
    this process (the latency proxies) then shares no interpreter with it. It listens on the
    veth's far address, or behind ``relay`` on loopback, where the registries listen, one port per
    direction. Through a relay that delays (``one_way``), the far end waits out the handshake round
    trip that the proxy adds to a new connection before it starts the streams, and each
    direction's time loses the delay it carries (near → far: the far end's word to start, then the
    bytes; far → near: the bytes): the rate is the bandwidth alone, as the floor counts round trips
    apart.
    """
    host = _LOCAL if relay is not None else FAR
    one_way = relay.one_way if relay is not None else 0.0
    settle = 2 * one_way
    argv = [sys.executable, "-m", "benchmarks.wanlink", "far", host, str(size), str(streams), str(tries), str(settle)]
    far = subprocess.Popen([*argv, *directions], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    assert far.stdout is not None
    try:
        ports: dict[str, int] = json.loads(far.stdout.readline() or "{}")
        if set(ports) != set(directions):
            raise LinkUnavailable(f"the probe's far end did not start (exit {far.poll()}; its output is above)")
        addresses = {d: f"{host}:{ports[d]}" for d in directions}
        targets = [f"{d}={relay.add(a) if relay is not None else a}" for d, a in addresses.items()]
        near_argv = [*near, sys.executable, "-m", "benchmarks.wanlink", "near", str(size), str(streams), *targets]
        best: dict[str, float] = {}
        for _ in range(tries):
            child = subprocess.run(near_argv, stdin=subprocess.DEVNULL, check=False, timeout=120)
            run = json.loads(far.stdout.readline() or "{}")
            ends: list[tuple[str, int, float]] = [(d, carried, at) for d, carried, at in run.get("ends", [])]
            for direction in directions:
                mine = [(carried, at) for d, carried, at in ends if d == direction]
                if child.returncode != 0 or len(mine) != streams or any(carried != size for carried, _ in mine):
                    raise LinkUnavailable(
                        f"the {direction} streams carried {[c for c, _ in mine]} of {size} bytes each "
                        f"(near end exit {child.returncode})"
                    )
                delay = one_way * (2 if direction == NEAR_TO_FAR else 1)
                seconds = max(at for _, at in mine) - run["started"] - delay
                best[direction] = max(streams * size * 8 / seconds, best.get(direction, 0.0))
        return best
    finally:
        far.kill()
        far.wait()


def _far_main(argv: list[str]) -> int:
    """The far end: one listening port per direction (printed as JSON), then per try ``streams``
    connections on each, started together after ``settle`` seconds; prints, per try, when they
    started and each stream's bytes and last byte's arrival (a far → near one's as the near end
    reported it: both namespaces read the one kernel's monotonic clock)."""
    host, size, streams, tries, settle, *directions = argv
    with ExitStack() as stack:
        servers = {d: stack.enter_context(socket.create_server((host, 0), backlog=int(streams))) for d in directions}
        print(json.dumps({d: server.getsockname()[1] for d, server in servers.items()}), flush=True)
        for server in servers.values():
            server.settimeout(30)
        for _ in range(int(tries)):
            with ExitStack() as run:
                accepted = [
                    (d, run.enter_context(servers[d].accept()[0])) for d in directions for _ in range(int(streams))
                ]
                time.sleep(float(settle))
                with ThreadPoolExecutor(len(accepted)) as pool:
                    started = time.monotonic()
                    futures = [(d, pool.submit(_far_end, c, d, int(size))) for d, c in accepted]
                    ends = [(d, *future.result()) for d, future in futures]
            print(json.dumps({"started": started, "ends": ends}), flush=True)
    return 0


def _far_end(connection: socket.socket, direction: str, size: int) -> tuple[int, float]:
    """Start one stream and see it through: the bytes it carried, and when its last byte arrived."""
    if direction == FAR_TO_NEAR:
        _send(connection, size)
        return _arrival(connection)
    connection.sendall(_GO)
    return _drain(connection), time.monotonic()


def _send(connection: socket.socket, size: int) -> None:
    block = bytes(_BLOCK)  # the link does not compress: zeros cost what any bytes cost
    for offset in range(0, size, _BLOCK):
        connection.sendall(block[: min(_BLOCK, size - offset)])


def _arrival(connection: socket.socket) -> tuple[int, float]:
    """The near end's report on a far → near stream: the bytes it received, and the moment the last came."""
    report = b""
    while chunk := connection.recv(64):
        report += chunk
    try:
        received, at = report.split()
        return int(received), float(at)
    except ValueError:  # the near end failed before its report: its exit status says more
        return 0, time.monotonic()


def _drain(connection: socket.socket) -> int:
    received = 0
    while chunk := connection.recv(_BLOCK):
        received += len(chunk)
    return received


def _near_main(argv: list[str]) -> int:
    """The near end (``DIRECTION=HOST:PORT`` each, ``streams`` connections to each), one thread a
    stream: on the far end's word send ``size`` bytes, or receive them and report how many, and
    when the last came."""
    size, streams, *targets = argv

    def stream(direction: str, address: str) -> None:
        host, _, port = address.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=60) as connection:
            if direction == NEAR_TO_FAR:
                if connection.recv(1) == _GO:
                    _send(connection, int(size))
            else:
                received = 0
                while received < int(size) and (chunk := connection.recv(_BLOCK)):
                    received += len(chunk)
                connection.sendall(f"{received} {time.monotonic()!r}".encode())

    specs = [target.split("=", 1) for target in targets for _ in range(int(streams))]
    with ThreadPoolExecutor(len(specs)) as pool:
        for run in [pool.submit(stream, direction, address) for direction, address in specs]:
            run.result()
    return 0


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LinkUnavailable(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")


if __name__ == "__main__":
    _ENDS = {"far": _far_main, "near": _near_main}
    raise SystemExit(_ENDS[sys.argv[1]](sys.argv[2:]))
