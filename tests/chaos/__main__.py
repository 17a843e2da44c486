"""python -m tests.chaos [--faults a,b] — the faults of issue 13 in turn, each under steady order
traffic, one line per fault and one overall (seed from CHAOS_SEED, default random and printed).
Run by `make chaos` on a broker and database of its own: it kills and freezes them."""

from __future__ import annotations

import argparse
import os
import random
import sys

from pymongo import MongoClient

from tests.chaos.harness import FAULTS, Harness, pick_faults
from tests.support.stack import Stack


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos")
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, of {', '.join(FAULTS)}")
    args = parser.parse_args()
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1, 10**6))
    names = [n for n in args.faults.split(",") if n]
    unknown = set(names) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}")
    print(f"chaos seed {seed} (CHAOS_SEED={seed} repeats this run)", flush=True)
    stack = Stack()
    mongo = MongoClient(stack.mongodb_uri, serverSelectionTimeoutMS=5000)
    harness = Harness(stack, seed, mongo)
    outcomes = []
    try:
        for fault in pick_faults(random.Random(seed), names):
            outcome = harness.run_fault(fault)
            outcomes.append(outcome)
            print(outcome.line(), flush=True)
    finally:
        harness.close()
    failed = [o for o in outcomes if not o.ok]
    print(f"chaos seed={seed} faults={len(outcomes)} orders={sum(o.orders for o in outcomes)} "
          f"confirmed={sum(o.confirmed for o in outcomes)} failed_rpcs={sum(o.failed_rpcs for o in outcomes)} "
          f"violations={len(failed)} {'OK' if not failed else 'FAIL'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
