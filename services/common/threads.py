"""The one shape of a service's long-running threads (consumers, tails, jobs, the relay): a daemon
loop that ends when asked. A process asks all of them at once and then waits for each, so a
shutdown takes as long as the slowest thread, not the sum of them."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Protocol


class Stoppable(Protocol):
    def request_stop(self) -> None: ...

    def stop(self, timeout: float = ...) -> None: ...


class StoppableThread(threading.Thread):
    def __init__(self, name: str):
        super().__init__(name=name, daemon=True)
        self._stopping = threading.Event()

    def request_stop(self) -> None:
        """Returns at once; the loop ends after its current step."""
        self._stopping.set()

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        self.join(timeout)


def stop_together(things: Iterable[Stoppable]) -> None:
    """Asks every one to stop, then waits for each (and lets each finish its own way)."""
    things = list(things)
    for thing in things:
        thing.request_stop()
    for thing in things:
        thing.stop()
