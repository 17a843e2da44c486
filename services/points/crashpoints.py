"""Test-only fault injection: `POINTS_CRASH_AT=<step>` makes the process SIGKILL itself the first
time a posting, a redemption or a ledger batch reaches that step, so tests can prove that recovery
ends every interrupted posting exactly once (tests/points/test_crash_recovery.py) and that a batch
killed half-stored is counted once (tests/points/test_reliability.py). Never set in production;
unset, a step costs one comparison.
"""

from __future__ import annotations

import os
import signal

STEPS = (
    "posting.journaled",     # the journal (idempotency gate) is written, the balance untouched
    "posting.applied",       # the balance changed and lists the posting's key
    "posting.entered",       # the entry is written
    "posting.unlisted",      # the key is off the account, the journal still PENDING
    "redemption.created",    # the redemption is PENDING, nothing debited
    "redemption.debited",    # the points are debited, the stock not taken
    "redemption.stocked",    # the stock is held, the redemption still PENDING
    "redemption.completed",  # COMPLETED, the item's hold not yet dropped
    "ledger.entered",        # a consumed batch's entries are written, no balance moved, no offset committed
)
ENV = "POINTS_CRASH_AT"
CRASH_AT = os.environ.get(ENV) or None


def reached(step: str) -> None:
    if step == CRASH_AT:
        os.kill(os.getpid(), signal.SIGKILL)
