"""The short seeded subset of `make chaos` in `make test`: the points service killed with -9 while
its ledger consumer works through confirmations, under order traffic through the real APIs. It
stops no shared server, so it runs beside the other packages."""

from __future__ import annotations

import os

from tests.chaos.harness import Harness, pick_faults
import random

SEED = int(os.environ.get("CHAOS_SEED", "13"))


def test_points_killed_mid_batch_loses_and_doubles_nothing(stack, mongo_client):
    harness = Harness(stack, SEED, mongo_client, port_offset=4)
    try:
        [fault] = pick_faults(random.Random(SEED), ["kill-points"])
        outcome = harness.run_fault(fault, workers=2, before=8, after=12)
    finally:
        harness.close()
    print(outcome.line())
    assert outcome.confirmed > 0, outcome.line()
    assert outcome.ok, outcome.line()
