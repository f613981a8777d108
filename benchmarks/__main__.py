"""Run every benchmark and print its table."""

from benchmarks import selection

if __name__ == "__main__":
    print(selection.report())
