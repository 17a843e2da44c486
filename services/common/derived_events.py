"""Events a consumer derives from the events it consumes, published before it commits.

A consumer whose effect is derived from its input (the points ledger turns ordering's events into
ledger entries) may announce that effect without an outbox: the input record stays in Kafka until
the offset is committed, so a crash before the announcement was acknowledged re-delivers the input
and the consumer announces again. For that to be harmless the announcement must be the same event
each time: its event id is derived from a stable key (the effect's own unique key), so downstream
consumers deduplicate the repeat as they deduplicate any re-published event.

    entry = derived_event(EventSource("points"), "ord:123:hours:vol_9:1", payload, district_id=..., ...)
    publish_and_wait(producer, [entry])   # then commit
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable

from google.protobuf import message

from .events import EventSource
from .producers import HealingProducer, outbox_record
from .mongo import RawDoc


def derived_event_id(district_id: str, key: str) -> str:
    """A stable, ULID-shaped event id for the effect named by `key`."""
    digest = hashlib.sha256(f"{district_id}|{key}".encode()).hexdigest()
    return f"evt_d{digest[:25].upper()}"


def derived_event(source: EventSource, key: str, payload: message.Message, *, district_id: str, aggregate_type: str,
                  aggregate_id: str, version: int, occurred_at: dt.datetime | None = None,
                  actor_id: str = "") -> RawDoc:
    """Like `EventSource.new`, with the event id derived from `key` instead of random."""
    return source.new(payload, district_id=district_id, aggregate_type=aggregate_type, aggregate_id=aggregate_id,
                      version=version, occurred_at=occurred_at, actor_id=actor_id,
                      event_id=derived_event_id(district_id, key))


def publish_and_wait(producer: HealingProducer, entries: Iterable[RawDoc], timeout: float = 30.0) -> int:
    """Sends every entry and waits until the broker acknowledged all of them (raises otherwise:
    the consumer reads its batch again, by then on a new producer if this one was stuck)."""
    records = [outbox_record(e) for e in entries]
    producer.send_and_wait(records, timeout)
    return len(records)
