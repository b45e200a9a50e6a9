"""``make bench``: run every benchmark in bench/ and print its figures and ratios.

Each benchmark measures mllc against the anchor its issue names, in the same
run, with interleaved repetitions (so drift of the machine hits both sides)
and reports medians. Nothing here asserts: the figures go into the notes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    "bench_validate",
    "bench_repro",
    "bench_plan",
    "bench_serve",
    "bench_monitor",
    "bench_verify",
    "bench_score",
    "bench_dask",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: {BENCHES})")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    sys.path[:0] = [str(HERE), str(HERE.parent)]  # bench modules; tests.drift_population
    for name in args.names or BENCHES:
        module = importlib.import_module(name)
        print(f"== {name}: {module.__doc__.strip().splitlines()[0]}")
        start = time.perf_counter()
        module.run(quick=args.quick)
        print(f"   ({time.perf_counter() - start:.1f} s)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
