"""The in-document outbox (docs/design.md §3): a state change and its events are ONE document write.

FerretDB and single-node MongoDB have no multi-document transactions, so a service never writes
a state change and "publishes" separately. It pushes the pending events into the aggregate's own
`outbox` array in the same update (`insert_with_events` / `update_with_events`). The relay
publishes pending events with an idempotent acks=all producer (replaced when it stops
completing sends, producers.py) and pulls them out of the document
only after the broker acknowledged. A crash between the ack and the pull publishes an event twice
(consumers deduplicate by event id); no crash can lose one.

FerretDB v1 notes that shape this code: `$pull` with a condition is silently ignored, so
published entries are removed with `$pullAll` of the exact entries read; `$elemMatch` does not
work, so pending documents are found through the `outbox_pending` flag.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge
from pymongo import ReturnDocument, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from .producers import HealingProducer, outbox_record
from .retry import Backoff
from .threads import StoppableThread
from .mongo import RawDoc

log = logging.getLogger(__name__)

PUBLISHED = Counter("outbox_events_published_total", "Events the relay published and the broker acknowledged", ["topic"])
PUBLISH_FAILURES = Counter("outbox_publish_failures_total", "Events the broker did not acknowledge (retried later)", ["topic"])
PENDING = Gauge("outbox_events_pending", "Events found pending in the last relay pass", ["collection"])

OUTBOX_INDEX = [("outbox_pending", 1)]
# (document id, its outbox as read, the entries of it the broker acknowledged)
Published = tuple[Any, list[RawDoc], list[RawDoc]]
# events wait behind a failed pass: the relay goes back sooner than a consumer does (retry.OUTAGE)
RELAY_OUTAGE = Backoff(first_seconds=0.5, max_seconds=5.0)

def init_metrics(topic: str) -> None:
    """Counters visible from zero, so rate() and increase() see the first publish or failure."""
    PUBLISHED.labels(topic)
    PUBLISH_FAILURES.labels(topic)


# Set by writers in this process so the relay wakes at once instead of at its next poll, and the
# collections they wrote: a wake-up scans only those (a busy import wrote one collection of ten, and
# scanning all ten after each write was most of the relay's work); the poll still scans them all,
# for what other processes (GRPC_PROCESSES workers) and earlier lives of this one left pending.
_wakeup = threading.Event()
_written: set[str] = set()
_written_lock = threading.Lock()


def _wake_for(collection: Collection[RawDoc]) -> None:
    with _written_lock:
        _written.add(collection.name)
    _wakeup.set()


def _take_written() -> set[str]:
    with _written_lock:
        taken = set(_written)
        _written.clear()
    return taken


def with_events(update: RawDoc, events: list[RawDoc]) -> RawDoc:
    """`update` that also queues `events` and bumps `version`: for a bulk write of several
    conditional updates (the relay finds their events at its next poll)."""
    update = {op: dict(fields) for op, fields in update.items()}
    if events:
        update.setdefault("$push", {})["outbox"] = {"$each": events}
        update.setdefault("$set", {})["outbox_pending"] = True
    update.setdefault("$inc", {})["version"] = 1
    return update


def insert_with_events(collection: Collection[RawDoc], document: RawDoc, events: list[RawDoc]) -> RawDoc:
    """Inserts a new aggregate (version 1) together with its first events."""
    document = dict(document, version=1, outbox=list(events), outbox_pending=bool(events))
    collection.insert_one(document)
    _wake_for(collection)
    return document


def insert_once_with_events(collection: Collection[RawDoc], found_by: RawDoc,
                            make: Callable[[], tuple[RawDoc, list[RawDoc]]]) -> tuple[RawDoc, bool]:
    """A new aggregate and its events, once per idempotency key: `found_by` finds what an earlier
    call stored under the key, and a unique index on it makes a concurrent retry lose the insert.
    `make` builds the document and its events only when nothing is stored yet. Returns (the
    document, True) when this call inserted it, else (the one stored earlier, False) for the
    caller to check that the retry asks for the same thing."""
    existing = collection.find_one(found_by, {"outbox": 0})
    if existing is None:
        document, events = make()
        try:
            return insert_with_events(collection, document, events), True
        except DuplicateKeyError:  # a concurrent retry with the key won (FerretDB does not name the index)
            existing = collection.find_one(found_by, {"outbox": 0})
            if existing is None:
                raise
    return existing, False


def update_with_events(collection: Collection[RawDoc], filter: RawDoc, update: RawDoc, events: list[RawDoc],
                       projection: RawDoc | None = None) -> RawDoc | None:
    """Applies `update` and queues `events` in one conditional update; bumps `version`.

    Returns the document after the change, or None when `filter` matched nothing (the caller
    turns that into NOT_FOUND / FAILED_PRECONDITION / ABORTED as the domain says).
    """
    doc = collection.find_one_and_update(
        filter, with_events(update, events), return_document=ReturnDocument.AFTER, projection=projection
    )
    if doc is not None and events:
        _wake_for(collection)
    return doc


class OutboxRelay(StoppableThread):
    """Publishes pending events of the registered collections; one thread per process."""

    def __init__(self, producer: HealingProducer, collections: list[Collection[RawDoc]], poll_seconds: float = 0.2,
                 batch_size: int = 500, send_timeout_seconds: float = 15.0):
        super().__init__("outbox-relay")
        self._producer = producer
        self._collections = collections
        self._poll = poll_seconds
        self._batch = batch_size
        self._send_timeout = send_timeout_seconds
        self._failures = 0
        # collection name -> since when its pending events have not moved (readiness)
        self._waiting_since: dict[str, float] = {}

    def request_stop(self) -> None:
        super().request_stop()
        _wakeup.set()

    def run(self) -> None:
        scan = self._collections  # everything at start: events an earlier life left pending
        while not self._stopping.is_set():
            try:
                busy = [c for c in scan if self.relay_once(c)]
                self._failures = 0
            except Exception:  # database or broker away: keep the events, try again later
                self._failures += 1
                pause = RELAY_OUTAGE.delay(self._failures)
                log.warning("outbox relay pass failed; retrying in %.1fs", pause, exc_info=True)
                self._stopping.wait(pause)
                scan = self._collections
                continue
            woken = bool(busy) or _wakeup.wait(self._poll)
            _wakeup.clear()  # before taking the names: a write after this wakes the next wait
            written = _take_written()
            # a wake-up (or a full batch) looks again where events were written; a quiet poll everywhere
            scan = ([c for c in self._collections if c.name in written or c in busy] if woken
                    else self._collections)
        # one last pass so events written by the final in-flight calls go out before exit
        try:
            for collection in self._collections:
                self.relay_once(collection)
        except Exception:
            log.warning("final outbox pass failed; events stay pending for the next start", exc_info=True)

    def relay_once(self, collection: Collection[RawDoc]) -> bool:
        """Publishes one batch of pending events; True when there may be more."""
        docs = list(collection.find({"outbox_pending": True}, {"outbox": 1}).limit(self._batch))
        PENDING.labels(collection.name).set(sum(len(d.get("outbox") or ()) for d in docs))
        if not docs:
            self._waiting_since.pop(collection.name, None)
            return False
        # waiting from the first pass that found them until one publishes something
        self._waiting_since.setdefault(collection.name, time.monotonic())
        records = [outbox_record(entry) for doc in docs for entry in doc.get("outbox") or ()]
        results = iter(self._producer.deliver(records, timeout=self._send_timeout))

        cleared: list[Published] = []
        partial: list[Published] = []
        failed = 0
        for doc in docs:
            outbox = doc.get("outbox") or []
            errors = [next(results) for _ in outbox]
            # keep per-aggregate order: stop at the first event the broker did not take
            acked = outbox[:next((i for i, error in enumerate(errors) if error is not None), len(outbox))]
            for entry in acked:
                PUBLISHED.labels(entry["topic"]).inc()
            for entry in outbox[len(acked):]:
                PUBLISH_FAILURES.labels(entry["topic"]).inc()
            failed += len(outbox) - len(acked)
            if acked:
                (cleared if len(acked) == len(outbox) else partial).append((doc["_id"], outbox, acked))
        self._remove_published(collection, cleared, partial)
        if cleared or partial:
            self._waiting_since.pop(collection.name, None)
        if failed:
            raise RuntimeError(f"{failed} event(s) not acknowledged by the broker")
        return len(docs) == self._batch

    def stalled_for(self) -> float:
        """Seconds the longest-waiting collection's pending events have not moved (0: none wait)."""
        # list() copies at once: the relay thread changes the dict while the health monitor asks
        return max((time.monotonic() - since for since in list(self._waiting_since.values())), default=0.0)

    @staticmethod
    def _remove_published(collection: Collection[RawDoc], cleared: list[Published], partial: list[Published]) -> None:
        if cleared:
            # common case, one write per document: nothing new arrived since we read the outbox,
            # so empty it and drop the flag together
            result = collection.bulk_write([
                UpdateOne({"_id": _id, "outbox": entries}, {"$set": {"outbox": [], "outbox_pending": False}})
                for _id, entries, _ in cleared
            ], ordered=False)
            if result.matched_count < len(cleared):
                partial = partial + cleared  # some got new events meanwhile; pulling is a no-op for the rest
        if partial:
            collection.bulk_write([UpdateOne({"_id": _id}, {"$pullAll": {"outbox": acked}})
                                   for _id, _, acked in partial], ordered=False)

