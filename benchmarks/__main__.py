"""Run the benchmarks and print their tables (`make bench`).

The copy benchmark starts local registries and writes a few gigabytes under /tmp; the verify
benchmark starts one and re-syncs 100 signed tags ten times; the air-gap benchmark exports and
imports 2 GiB three times over, with up to about 10 GiB of archives under /tmp at once; the WAN
benchmark runs in network namespaces of its own (root) and takes about half an hour, most of it
skopeo's (``FLUXMIRROR_WAN_CASES=copy,capped`` runs only the cases named). `--quick` shrinks them
to smoke checks of a minute or two.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks import airgap, charts, copy, layout, selection, verify, wan
from benchmarks.copy import BenchmarkError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        choices=("selection", "charts", "layout", "copy", "verify", "airgap", "wan"),
        help="run one benchmark",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            "smoke-test sizes: copy 20 small tags and 2 tags × 2 × 32 MiB, verify 20 tags twice, "
            "airgap 2 tags × 2 × 16 MiB, wan every case at a few tags"
        ),
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        metavar="PATH",
        help="also write the copy table (with --only airgap or wan: that benchmark's tables) as Markdown to PATH",
    )
    args = parser.parse_args(argv)
    if args.only in ("selection", "charts", "layout", "verify") and args.markdown:
        parser.error("--markdown writes the copy, airgap or wan tables; it needs one of those benchmarks")
    wan_sizes = wan.QUICK if args.quick else wan.FULL
    if args.only in (None, "wan"):
        try:
            wan.chosen_cases(wan_sizes)  # a misspelt FLUXMIRROR_WAN_CASES fails now, not after the other benchmarks
        except BenchmarkError as why:
            parser.error(str(why))

    if args.only in (None, "selection"):
        print(selection.report(), end="\n\n", flush=True)
    if args.only in (None, "charts"):
        print(charts.report(), end="\n\n", flush=True)
    if args.only in (None, "layout"):
        print(layout.report(), end="\n\n", flush=True)
    if args.only in (None, "copy"):
        results = copy.run(copy.QUICK if args.quick else copy.FULL)
        print(results.text())
        if args.markdown:
            args.markdown.write_text(results.markdown())
    if args.only in (None, "verify"):
        print(("\n" if args.only is None else "") + verify.run(verify.QUICK if args.quick else verify.FULL).text())
    if args.only in (None, "airgap"):
        gap = airgap.run(airgap.QUICK if args.quick else airgap.FULL)
        print(("\n" if args.only is None else "") + gap.text())
        if args.markdown and args.only == "airgap":
            args.markdown.write_text(gap.markdown())
    if args.only in (None, "wan"):
        far = wan.run(wan_sizes)
        print(("\n" if args.only is None else "") + far.text())
        if args.markdown and args.only == "wan":
            args.markdown.write_text(far.markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
