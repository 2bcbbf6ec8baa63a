"""How long the offline plan of each stack takes (a benchmark, not a test).

`pulumi preview` runs on every pull request and `mlplatform plan` stands in for it offline, so
the program under mocks must stay quick. Goal: under 10 s per stack. Prints the median of
`--rounds` runs of `Project.run(stack)` per stack, with the resource count.

    make bench-plan        # or: python benchmarks/bench_plan.py --rounds 5 staging production
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlplatform.program import Project  # noqa: E402

GOAL_SECONDS = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stacks", nargs="*", default=["staging", "production"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    project = Project.load(ROOT)
    for stack in args.stacks:
        times = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            run = project.run(stack)
            times.append(time.perf_counter() - started)
        median = statistics.median(times)
        verdict = "ok" if median < GOAL_SECONDS else f"SLOWER than the {GOAL_SECONDS:.0f} s goal"
        print(
            f"{stack:12s} {len(run.resources):4d} resources  median {median:6.2f} s "
            f"(min {min(times):.2f}, max {max(times):.2f}, {args.rounds} runs)  {verdict}"
        )


if __name__ == "__main__":
    main()
