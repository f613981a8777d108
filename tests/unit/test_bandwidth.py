"""`--max-bandwidth`: the RATE grammar (docs/cli.md#rates) and the run's token bucket
(docs/sync.md#bandwidth), on the real clock. The rate a real copy achieves is measured in
tests/integration/test_sync_bandwidth.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from fluxmirror.cli import main
from fluxmirror.cli.options import parse_rate
from fluxmirror.errors import UsageError
from fluxmirror.oci.blobs import BytesSource, resuming_read
from fluxmirror.oci.manifests import Descriptor
from fluxmirror.oci.pacing import BURST_SECONDS, Bandwidth

FLAG = "--max-bandwidth"


@pytest.mark.parametrize(
    ("text", "bytes_per_second"),
    [
        ("20MiB/s", 20 * 2**20),
        ("20MiB", 20 * 2**20),
        ("512KiB/s", 512 * 2**10),
        ("1GiB/s", 2**30),
        ("500KB/s", 500_000),
        ("500kB/s", 500_000),
        ("2MB/s", 2_000_000),
        ("1GB", 1_000_000_000),
        ("3B/s", 3),
        ("3B", 3),
        ("4096", 4096),
        ("100Mbit", 12_500_000),
        ("100Mbit/s", 12_500_000),
        ("100mbit", 12_500_000),  # as tc writes it
        ("64Kbit/s", 8_000),
        ("1Gbit", 125_000_000),
        ("8bit/s", 1),
        ("2.5MiB/s", 2.5 * 2**20),
        ("1.1KB/s", 1_100),  # decimal arithmetic: not 1100.0000000000002
        (".5MB", 500_000),
        (" 20 MiB/s ", 20 * 2**20),
        ("+1KiB", 1024),
    ],
)
def test_accepted_rates_in_bytes_per_second(text: str, bytes_per_second: float) -> None:
    assert parse_rate(text, FLAG) == bytes_per_second


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0", "the rate must be greater than 0"),
        ("0MiB/s", "the rate must be greater than 0"),
        ("0.0Mbit", "the rate must be greater than 0"),
        ("-5MiB/s", "the rate must be greater than 0"),
        ("0." + "0" * 400 + "1", "the rate must be greater than 0"),  # positive, but no float
        ("9" * 400, "value out of range"),
        ("", "a rate such as 20MiB/s, 500KB/s or 100Mbit"),
        ("fast", "a rate such as 20MiB/s, 500KB/s or 100Mbit"),
        ("MiB/s", "a rate such as 20MiB/s, 500KB/s or 100Mbit"),
        ("20/s", "a rate such as 20MiB/s, 500KB/s or 100Mbit"),
        ("20Mb", "a rate such as 20MiB/s, 500KB/s or 100Mbit"),  # bits or bytes? refused, not guessed
        ("20Mbps", "a rate such as 20MiB/s, 500KB/s or 100Mbit"),
        ("20MBps", "a rate such as 20MiB/s, 500KB/s or 100Mbit"),
        ("20mib/s", "a rate such as 20MiB/s, 500KB/s or 100Mbit"),
        ("20Kibit", "a rate such as 20MiB/s, 500KB/s or 100Mbit"),
        ("1TB/s", "a rate such as 20MiB/s, 500KB/s or 100Mbit"),
        ("20MiB/h", "a rate such as 20MiB/s, 500KB/s or 100Mbit"),
        ("1e6", "a rate such as 20MiB/s, 500KB/s or 100Mbit"),
        ("nan", "a rate such as 20MiB/s, 500KB/s or 100Mbit"),
        ("inf", "a rate such as 20MiB/s, 500KB/s or 100Mbit"),
    ],
)
def test_rejected_rates_name_the_flag(text: str, reason: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_rate(text, FLAG)
    assert str(raised.value) == f'invalid argument "{text}" for "--max-bandwidth" flag: {reason}'


@pytest.mark.parametrize("command", [["sync", "CONFIG"], ["export", "CONFIG", "--to", "out"], ["import", "SRC"]])
def test_every_command_refuses_a_bad_rate_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    argv = [str(tmp_path / "absent.yaml") if arg in ("CONFIG", "SRC") else arg for arg in command]
    assert main([*argv, "--max-bandwidth", "0"]) == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (
        "",
        '✗ invalid argument "0" for "--max-bandwidth" flag: the rate must be greater than 0\n',
    )


def test_a_chunk_larger_than_a_burst_goes_in_pieces() -> None:
    bandwidth = Bandwidth(125_000)  # 1 Mbit/s: a burst is 6,250 bytes
    chunk = bytes(range(256)) * 4096  # 1 MiB, which would be an 8-second burst
    pieces = list(bandwidth.pieces(chunk))
    assert {len(piece) for piece in pieces[:-1]} == {int(125_000 * BURST_SECONDS)}
    assert b"".join(pieces) == chunk
    small = chunk[:6250]
    assert [piece is small for piece in bandwidth.pieces(small)] == [True]  # not copied


async def test_concurrent_transfers_share_the_rate_and_take_turns() -> None:
    """Three transfers asking for 8 KiB at a time from 1 MiB/s for 0.4 s: together they get the
    rate (plus the one burst an idle bucket holds), and once that burst is spent the grants go
    round, one each, so each gets a third."""
    rate, seconds, piece = 2**20, 0.4, 8192
    bandwidth = Bandwidth(rate)
    granted: list[str] = []

    async def transfer(name: str, until: float) -> None:
        while time.monotonic() < until:
            await bandwidth.take(piece)
            granted.append(name)

    started = time.monotonic()
    await asyncio.gather(*(transfer(name, started + seconds) for name in "abc"))
    moved = len(granted) * piece
    expected = rate * (time.monotonic() - started) + rate * BURST_SECONDS
    assert 0.9 * expected <= moved <= 1.1 * expected
    turns = granted[granted.index("b") - 1 :]  # the first one there spends the saved-up burst alone
    rounds = [turns[start : start + 3] for start in range(0, len(turns) - 2, 3)]
    in_turn = sum(sorted(round_) == ["a", "b", "c"] for round_ in rounds)
    assert in_turn >= 0.8 * len(rounds)  # a loop stalled past a burst lets one catch up alone
    assert min(granted.count(name) for name in "abc") >= 0.6 * len(granted) / 3


async def test_a_small_blob_is_not_queued_behind_large_ones() -> None:
    """While three transfers take full bursts, a small one waits at most one burst of each."""
    bandwidth = Bandwidth(10 * 2**20)
    stop = asyncio.Event()

    async def large() -> None:
        while not stop.is_set():
            await bandwidth.take(bandwidth.piece)

    running = [asyncio.ensure_future(large()) for _ in range(3)]
    await asyncio.sleep(0.2)  # the bucket is busy: every grant now waits its turn
    asked = time.monotonic()
    await bandwidth.take(100)
    waited = time.monotonic() - asked
    stop.set()
    await asyncio.gather(*running)
    assert waited <= (3 + 1) * BURST_SECONDS + 0.02


async def test_resuming_read_paces_what_it_reads() -> None:
    data = bytes(300_000)
    blob = Descriptor(media_type="application/octet-stream", digest="sha256:" + "0" * 64, size=len(data))
    started = time.monotonic()
    read = [chunk async for chunk in resuming_read(BytesSource(data), blob, 0, len(data), bandwidth=Bandwidth(1e6))]
    elapsed = time.monotonic() - started
    assert b"".join(read) == data
    assert 0.9 * (0.3 - BURST_SECONDS) <= elapsed <= 0.3 + 0.1
