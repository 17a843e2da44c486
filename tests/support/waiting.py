"""Waiting in a test for what another process does (an event consumed, a read model caught up):
one way, so every wait is bounded and a timeout says what was waited for."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.2,
               what: str = "condition") -> T:
    """The predicate's first truthy value; AssertionError naming `what` once `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
