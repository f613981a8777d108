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
measures it, one plain TCP stream each way through the same veth and qdisc; run as
``python -m benchmarks.wanlink`` (on the near side) this module is that stream's near end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

__all__ = ["Link", "LinkUnavailable", "inside_private_network", "loopback", "private_link", "unshare_argv"]

FAR, NEAR = "10.255.18.1", "10.255.18.2"
NEAR_TO_FAR, FAR_TO_NEAR = "near→far", "far→near"  # uploads to the registries, downloads from them
_BLOCK = 1 << 20
_FAR_DEVICE, _NEAR_DEVICE = "wanfar", "wannear"
_MARK = "FLUXMIRROR_WAN_NAMESPACE"  # set in the environment of the re-run under `unshare --net`


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

    def payload_rates(self, size: int) -> dict[str, float]:
        """Bits of payload per second that one plain TCP stream of ``size`` bytes gets each way.

        Timed on this (far) side: near → far from the accepted connection to the stream's end;
        far → near from the accepted connection to the near end's one-byte receipt for the
        whole stream (the link's own round trip, some microseconds, is in it).
        """
        if self._holder is None:
            raise LinkUnavailable("the loopback fallback has no link to measure")
        return {direction: _timed_stream(self.near, direction, size) for direction in (NEAR_TO_FAR, FAR_TO_NEAR)}

    def describe(self) -> str:
        if self._holder is None:
            return "loopback (no private network: no bandwidth cap)"
        return f"two network namespaces joined by a veth pair ({FAR} ↔ {NEAR})"

    def close(self) -> None:
        if self._holder is not None:
            self._holder.kill()
            self._holder.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


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


def _timed_stream(near: list[str], direction: str, size: int) -> float:
    with socket.create_server((FAR, 0)) as server:
        server.settimeout(30)
        port = server.getsockname()[1]
        argv = [*near, sys.executable, "-m", "benchmarks.wanlink", direction, FAR, str(port), str(size)]
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        try:
            connection, _ = server.accept()
            with connection:
                started = time.monotonic()
                if direction == NEAR_TO_FAR:
                    received = _drain(connection)
                else:
                    _send(connection, size)
                    received = size if connection.recv(1) == b"." else 0
                seconds = time.monotonic() - started
        except BaseException:
            child.kill()
            raise
        finally:
            child.wait()
    if child.returncode != 0 or received != size:
        raise LinkUnavailable(f"the {direction} stream carried {received} of {size} bytes (exit {child.returncode})")
    return size * 8 / seconds


def _send(connection: socket.socket, size: int) -> None:
    block = bytes(_BLOCK)  # the link does not compress: zeros cost what any bytes cost
    for offset in range(0, size, _BLOCK):
        connection.sendall(block[: min(_BLOCK, size - offset)])


def _drain(connection: socket.socket) -> int:
    received = 0
    while chunk := connection.recv(_BLOCK):
        received += len(chunk)
    return received


def _near_end(argv: list[str]) -> int:
    """The near end of one timed stream: send ``size`` bytes, or receive them and say so."""
    direction, host, port, size = argv
    with socket.create_connection((host, int(port)), timeout=60) as connection:
        if direction == NEAR_TO_FAR:
            _send(connection, int(size))
        else:
            received = 0
            while received < int(size) and (chunk := connection.recv(_BLOCK)):
                received += len(chunk)
            connection.sendall(b"." if received == int(size) else b"!")
    return 0


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LinkUnavailable(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")


if __name__ == "__main__":
    raise SystemExit(_near_end(sys.argv[1:]))
