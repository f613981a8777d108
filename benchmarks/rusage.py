"""Run a command; write its wall time, CPU time and peak RSS as JSON; exit with its exit code.

    python -I -S benchmarks/rusage.py REPORT_PATH COMMAND [ARG...]

Why a separate, tiny process: Linux carries the spawning process's peak RSS over into a child
(exec records the high-water mark of the memory image it replaces, vfork or not), so a tool
spawned straight from the benchmark, which has held generated images, would report the
benchmark's peak rather than its own. Spawned from this launcher, whose peak is about 10 MiB
with -I -S and nothing but builtins imported, the child's own peak shows.
"""

import json
import os
import sys
import time


def main() -> int:
    report, *command = sys.argv[1:]
    started = time.perf_counter()
    pid = os.posix_spawnp(command[0], command, os.environ)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    with open(report, "w") as file:
        json.dump(
            {
                "seconds": seconds,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "peak_rss_kib": usage.ru_maxrss,  # KiB on Linux
                "written_bytes": usage.ru_oublock * 512,  # what it sent to the storage layer, temp files included
            },
            file,
        )
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
