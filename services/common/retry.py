"""One back-off policy and one bounded retry for every service.

`Backoff` says how long to wait after a failure: exponential, capped, with full jitter (a uniform
wait between 0 and the bound), so writers that lost a race for one document, or clients going
back to a broker that has returned, spread out instead of colliding again.

`Retry` bounds the tries: a number of attempts and, where another process's progress is waited
for, a deadline. `attempts()` yields the attempt numbers and waits between them; the caller's loop
ends by returning, or runs out and raises the caller's own error, which says what kept failing.

`until_written` is the guarded move every aggregate's writes make, the one loop of them all: read,
check the rules on what was read, write guarded by it (its version); a write that lost to another
writer reads again and checks again, and a move that kept losing is ABORTED for its caller to retry:

    return until_written(CONFLICTS, lambda: commit(load(order_id)),
                         "the order kept changing while this request was applied; retry")

The background loops that must outlive any outage (the outbox relay, the consumers, the tails)
are the only ones that retry without bound: they use `Backoff` alone, and /readyz names them when
they stop moving (READINESS_STALL_SECONDS).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from .errors import Aborted

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    first_seconds: float
    max_seconds: float

    def delay(self, failures: int) -> float:
        """The wait after `failures` failures in a row (1 for the first): up to `first_seconds`,
        doubling with each further failure up to `max_seconds`."""
        bound = min(self.max_seconds, self.first_seconds * 2 ** min(max(failures - 1, 0), 32))
        return random.uniform(0, bound)


@dataclass(frozen=True)
class Retry:
    """At most `max_attempts` tries, or as many as fit in `deadline_seconds`, or whichever ends first."""

    max_attempts: int | None
    backoff: Backoff
    deadline_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.max_attempts is None and self.deadline_seconds is None:
            raise ValueError("a retry needs a bound: max_attempts, deadline_seconds or both")

    def attempts(self, wait: Callable[[float], object] = time.sleep) -> Iterator[int]:
        """0, 1, … with a back-off wait before each but the first; ends after `max_attempts`, or
        early when the next wait would pass the deadline, or when `wait` answers true (an Event's
        wait: the process is stopping)."""
        deadline = None if self.deadline_seconds is None else time.monotonic() + self.deadline_seconds
        for attempt in itertools.count() if self.max_attempts is None else range(self.max_attempts):
            if attempt:
                pause = self.backoff.delay(attempt)
                if deadline is not None and time.monotonic() + pause > deadline:
                    return
                if wait(pause):
                    return
            yield attempt


def until_written(retry: Retry, attempt: Callable[[], T | None], gave_up: str) -> T:
    """The guarded move: `attempt` reads, checks the rules (raising a refusal) and writes guarded by
    what it read, returning what it wrote (or what it found needs no write), or None when the guard
    no longer held; it runs again, backing off, until it returns something. ABORTED with `gave_up`
    (a message for the caller) when `retry` runs out first."""
    for _ in retry.attempts():
        result = attempt()
        if result is not None:
            return result
    raise Aborted(gave_up)


# a conditional write lost to another writer of the same document: retry at once, then spread
# out (at most ~0.13 s apart)
LOST_RACE = Backoff(first_seconds=0.002, max_seconds=0.128)
# the database or the broker did not answer: a background loop tries again, up to 10 s apart
OUTAGE = Backoff(first_seconds=0.5, max_seconds=10.0)
