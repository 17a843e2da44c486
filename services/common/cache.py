"""In-process copies of the small documents read on almost every call: a district's policies and
rules, a unit. Reading them from the database each time cost a cheap RPC most of its time
(docs/performance.md: GetOrderPolicy at 0.18× the bare gRPC floor, four fifths of it waiting on
the database).

    policies = ReadCache("order-policy", load=lambda district_id: ..., max_age_seconds=5)
    policies.get(district_id)          # loaded once, then served from memory
    policies.forget(district_id)       # this process just changed it

How a copy stays fresh:
- a change made by this process drops its copy at once (`forget`), so a caller reads its own
  write on the same connection;
- a cache given `aggregate_type` is also dropped by the service's own events about that aggregate
  (`aggregate_id` = the key), read by the process's ChangeListener from the end of its topic: a
  change made by another process or replica shows as soon as its event is out (well under a
  second: the relay's poll plus the listener's);
- every copy is read again after `max_age_seconds` whatever happens: the bound on staleness for
  documents whose changes carry no event, and for a listener cut off from the broker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from google.protobuf.message import DecodeError

from wenming.common.v1 import common_pb2

from .tail import TopicTail

log = logging.getLogger(__name__)

T = TypeVar("T")


class ReadCache(Generic[T]):
    def __init__(self, name: str, load: Callable[[str], T], *, max_age_seconds: float,
                 aggregate_type: str = "", forget_all_on: Iterable[str] = (), max_entries: int = 10_000):
        """`aggregate_type`: the service's events about this aggregate drop the copy whose key is
        their aggregate id; `forget_all_on`: event types after which every copy is read again
        (a unit moved: its whole subtree's paths changed, with one event)."""
        self.name = name
        self.aggregate_type = aggregate_type
        self._forget_all_on = frozenset(forget_all_on)
        self._load = load
        self._max_age = max_age_seconds
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, T]] = {}
        # bumped by every forget: a load that began before it must not store what it read
        self._generation: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> T:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            generation = self._generation.get(key, 0)
        if hit is not None and now - hit[0] < self._max_age:
            return hit[1]
        value = self._load(key)
        with self._lock:
            if self._generation.get(key, 0) == generation:
                if len(self._entries) >= self._max_entries and key not in self._entries:
                    self._entries.pop(next(iter(self._entries)))  # the oldest stored
                self._entries[key] = (now, value)
        return value

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._generation[key] = self._generation.get(key, 0) + 1
            if len(self._generation) > 2 * self._max_entries:
                self._generation = {k: g for k, g in self._generation.items() if k in self._entries}

    def changed(self, envelope: common_pb2.EventEnvelope) -> None:
        """What one of the service's events says about the copies."""
        if envelope.event_type in self._forget_all_on:
            self.forget_all()
        elif self.aggregate_type and envelope.aggregate_type == self.aggregate_type:
            self.forget(envelope.aggregate_id)

    def forget_all(self) -> None:
        with self._lock:
            for key in list(self._entries):
                self._entries.pop(key)
                self._generation[key] = self._generation.get(key, 0) + 1


class ChangeListener(TopicTail):
    """Reads the service's own events topic from its end, all of it in every process, and drops
    the cached copies the events are about. One per process that serves calls
    (runtime.ServiceApp starts it with the first cache it is given)."""

    def __init__(self, bootstrap_servers: str, topic: str, caches: list[ReadCache[Any]]):
        # changes made before it reads, or while it could not: unknown, so everything is read again
        super().__init__("cache-listener", bootstrap_servers, topic, lambda record: self._apply(record.value),
                         on_connect=self._forget_all, on_lost=self._forget_all)
        self._caches = caches

    def _forget_all(self) -> None:
        for cache in self._caches:
            cache.forget_all()

    def _apply(self, value: bytes) -> None:
        envelope = common_pb2.EventEnvelope()
        try:
            envelope.ParseFromString(value)  # the envelope says what changed; its payload is not needed
        except DecodeError:
            return
        for cache in self._caches:
            cache.changed(envelope)
