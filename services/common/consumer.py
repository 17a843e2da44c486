"""The idempotent consumer (docs/design.md §3).

- Offsets are committed only after the batch's effects are stored, so a crash re-delivers
  instead of losing.
- Re-delivery is harmless because every effect is keyed by the source event (a unique index on
  a key derived from the event id, or an aggregate-version guard); handlers say which events
  they applied and which they found already applied.
- An event that can never be applied (undecodable, unknown type, contract violation) goes to
  `<topic>.dlq` with the error in its headers, and consumption goes on. A database or broker
  outage is not poison: the whole poll is read again after a back-off.
- A poll is one batch: every partition's records go to `apply_batch` together, so a consumer
  that overrides it stores them in a few bulk writes instead of a write per event.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from collections.abc import Callable
from typing import TypeVar

from google.protobuf import message
from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata
from prometheus_client import Counter, Gauge
from pymongo.errors import ConnectionFailure, ExecutionTimeout, NetworkTimeout, PyMongoError

from wenming.common.v1 import common_pb2

from . import tracing
from .errors import DomainError
from .events import PoisonEvent, decode, dlq_topic, kafka_name
from .kafka_clients import consumer_options
from .logs import access_log
from .producers import HealingProducer, Record
from .retry import OUTAGE, Backoff, Retry
from .threads import StoppableThread

log = logging.getLogger(__name__)

CONSUMED = Counter("events_consumed_total", "Records read from Kafka", ["topic", "group"])
APPLIED = Counter("events_applied_total", "Events whose effect was stored", ["topic", "group"])
DUPLICATES = Counter("events_duplicate_total", "Events found already applied (replays)", ["topic", "group"])
SKIPPED = Counter("events_skipped_total", "Events of types this consumer does not need", ["topic", "group"])
DEAD_LETTERED = Counter("events_dead_lettered_total", "Events sent to the DLQ", ["topic", "group"])
LAG = Gauge("consumer_lag", "Records behind the end of the topic", ["topic", "group"])

TRANSIENT = (ConnectionFailure, NetworkTimeout, ExecutionTimeout, KafkaError)
# a handler that failed unexpectedly is tried again a few times, soon
HANDLER_GLITCH = Backoff(first_seconds=0.2, max_seconds=1.0)


class Outcome(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"

M = TypeVar("M", bound=message.Message)


@dataclass(frozen=True)
class ConsumedEvent:
    envelope: common_pb2.EventEnvelope
    payload: message.Message
    topic: str
    partition: int
    offset: int

    @property
    def event_id(self) -> str:
        return self.envelope.event_id

    def payload_as(self, kind: type[M]) -> M:
        """The payload as the message type its handler is registered for (a mismatch is refused)."""
        if not isinstance(self.payload, kind):
            raise TypeError(f"{self.envelope.event_type} is not {kind.DESCRIPTOR.full_name}")
        return self.payload


Handler = Callable[[ConsumedEvent], Outcome]


class EventConsumer(StoppableThread):
    """Consumes topics with per-type handlers, a whole poll (every partition) as one batch.
    Subclasses may override `apply_batch` to store a batch in a few bulk writes (the ledger
    does); the default applies events one by one in order."""

    max_attempts = 3  # for errors that are neither transient nor declared poison

    def __init__(self, *, bootstrap_servers: str, group_id: str, topics: list[str],
                 handlers: dict[str, Handler] | None = None, dlq_producer: HealingProducer | None = None,
                 max_records: int = 500, client_id: str = ""):
        super().__init__(f"consumer-{group_id}")
        self.group_id = group_id
        self.topics = topics
        self.handlers = dict(handlers or {})
        self._dlq = dlq_producer
        self._max_records = max_records
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id or group_id
        self._consumer: KafkaConsumer | None = None
        self.healthy = False
        # when the consumer last committed a batch or found itself caught up (readiness)
        self._progressed_at = time.monotonic()
        for topic in topics:  # visible from zero, so increase() sees the first dead letter
            for counter in (CONSUMED, APPLIED, DUPLICATES, SKIPPED, DEAD_LETTERED):
                counter.labels(topic, group_id)
            LAG.labels(topic, group_id)

    # ---- lifecycle ----

    def stalled_for(self) -> float:
        """Seconds since it last committed a batch or was caught up (with no partitions it is)."""
        return time.monotonic() - self._progressed_at

    def _connect(self) -> KafkaConsumer:
        consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap_servers.split(","),
            group_id=kafka_name(self.group_id),  # metrics keep the plain name
            client_id=self._client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # the service created its topics with the configured partitions; never let a
            # subscription create one with the broker's defaults
            allow_auto_create_topics=False,
            max_poll_records=self._max_records,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
            **consumer_options(),
        )
        # the topics' partitions known before the group's first assignment: assigned without them
        # (kafka-python's range assignor logs "No partition metadata"), a topic stays unread
        # until the next metadata refresh, minutes later
        for topic in self.topics:
            consumer.partitions_for_topic(topic)
        consumer.subscribe(self.topics)
        return consumer

    def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                if self._consumer is None:
                    self._consumer = self._connect()
                self._poll_once(self._consumer)
                failures = 0
                self.healthy = True
            except Exception:
                self.healthy, failures = False, failures + 1
                pause = OUTAGE.delay(failures)
                log.warning("consumer %s: pass failed, retrying in %.1fs", self.group_id, pause, exc_info=True)
                # start again from the committed offsets: the position may be past unstored records
                self._close()
                self._stopping.wait(pause)
        self._close()

    def _close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except Exception:  # closing a consumer whose broker is gone
                log.debug("consumer close failed", exc_info=True)
            self._consumer = None

    # ---- one poll ----

    def _poll_once(self, consumer: KafkaConsumer) -> None:
        """One poll, every partition's records stored as ONE batch (one `apply_batch`), then one
        commit. A transient failure stores nothing for good: every partition is read again from
        the poll's first record (effects are keyed, so what did get stored is a duplicate then)."""
        polled = consumer.poll(timeout_ms=500, max_records=self._max_records)
        if polled and not self._stopping.is_set():
            if self._process([record for records in polled.values() for record in records]):
                consumer.commit({tp: OffsetAndMetadata(records[-1].offset + 1, "", -1)
                                 for tp, records in polled.items()})
                self._progressed_at = time.monotonic()
            else:
                for tp, records in polled.items():
                    consumer.seek(tp, records[0].offset)
                self._stopping.wait(1.0)
        self._update_lag(consumer)

    def _process(self, records: list[ConsumerRecord]) -> bool:
        """Stores the records' effects (in order within each partition); dead-letters the
        undecodable ones after the rest are stored. False when the poll must be read again."""
        events: list[ConsumedEvent] = []
        poison: list[tuple[object, str]] = []
        for record in records:
            CONSUMED.labels(record.topic, self.group_id).inc()
            try:
                envelope, payload = decode(record.value)
            except PoisonEvent as exc:
                poison.append((record, str(exc)))
                continue
            events.append(ConsumedEvent(envelope, payload, record.topic, record.partition, record.offset))
        if not self._store(events):
            return False
        for record, reason in poison:
            self._dead_letter(record, reason)
        return True

    def _store(self, events: list[ConsumedEvent]) -> bool:
        """Applies events; False when a transient failure means the batch must be re-read."""
        if not events:
            return True
        try:
            outcomes = self.apply_batch(events)
        except TRANSIENT:
            log.warning("consumer %s: database or broker unavailable; will retry", self.group_id, exc_info=True)
            return False
        for event, outcome in zip(events, outcomes, strict=True):
            if not access_log.disabled:
                with tracing.active(tracing.from_trace_id(event.envelope.trace_id)):
                    access_log.info("event", extra={
                        "group": self.group_id, "event_type": event.envelope.event_type,
                        "event_id": event.envelope.event_id,
                        "outcome": outcome.name if isinstance(outcome, Outcome) else "DEAD_LETTERED"})
            if isinstance(outcome, Exception):
                self._dead_letter_event(event, outcome)
            else:
                {Outcome.APPLIED: APPLIED, Outcome.DUPLICATE: DUPLICATES, Outcome.SKIPPED: SKIPPED}[outcome].labels(
                    event.topic, self.group_id).inc()
        return True

    def apply_batch(self, events: list[ConsumedEvent]) -> list[Outcome | Exception]:
        """Stores each event's effect; returns an Outcome, or the exception that makes it poison.

        Transient errors propagate (the batch is retried); anything else is retried a few times
        and then treated as poison.
        """
        outcomes: list[Outcome | Exception] = []
        for event in events:
            outcomes.append(self._apply_one(event))
        return outcomes

    def _apply_one(self, event: ConsumedEvent) -> Outcome | Exception:
        handler = self.handlers.get(event.envelope.event_type)
        if handler is None:
            # decode() proved the type is in the contract; one we have no handler for is not our business
            return Outcome.SKIPPED
        # what the handler logs and the events it derives continue the event's trace
        with tracing.active(tracing.from_trace_id(event.envelope.trace_id)):
            return self._run_handler(handler, event)

    def _run_handler(self, handler: Handler, event: ConsumedEvent) -> Outcome | Exception:
        for attempt in Retry(self.max_attempts, HANDLER_GLITCH).attempts():
            try:
                return handler(event)
            except TRANSIENT:
                raise
            except (PoisonEvent, DomainError, ValueError, KeyError, TypeError) as exc:
                return exc
            except PyMongoError as exc:  # a write the database refuses for good (not an outage)
                return exc
            except Exception as exc:  # a bug or a passing glitch: retry, then give up on this event
                if attempt + 1 == self.max_attempts:
                    return exc
                log.warning("consumer %s: handler failed (attempt %d)", self.group_id, attempt + 1, exc_info=True)
        raise AssertionError("unreachable")

    # ---- dead letters ----

    def _dead_letter_event(self, event: ConsumedEvent, error: Exception) -> None:
        self._send_dlq(event.topic, event.partition, event.offset, event.envelope.aggregate_id.encode(),
                       event.envelope.SerializeToString(), error)

    def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        self._send_dlq(record.topic, record.partition, record.offset, record.key, record.value, PoisonEvent(reason))

    def _send_dlq(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes,
                  error: Exception) -> None:
        DEAD_LETTERED.labels(topic, self.group_id).inc()
        log.error("consumer %s: dead-lettering %s[%d]@%d: %s", self.group_id, topic, partition, offset,
                  f"{type(error).__name__}: {error}")
        headers = [
            ("error", f"{type(error).__name__}: {error}"[:1000].encode()),
            ("source_topic", topic.encode()),
            ("source_partition", str(partition).encode()),
            ("source_offset", str(offset).encode()),
            ("consumer_group", self.group_id.encode()),
        ]
        if self._dlq is None:
            raise RuntimeError(f"consumer {self.group_id} has no producer for its dead letters")
        # waits for the ack: the offset is committed right after, so the dead letter must be durable
        self._dlq.send_and_wait([Record(dlq_topic(topic), key, value, headers)], timeout=15)

    # ---- metrics ----

    def _update_lag(self, consumer: KafkaConsumer) -> None:
        totals: dict[str, int] = {}
        known = True  # every assigned partition's end and position known (not before its first fetch)
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            position = consumer.position(tp, timeout_ms=1000) if highwater is not None else None
            if highwater is None or position is None:
                known = False
                continue
            totals[tp.topic] = totals.get(tp.topic, 0) + max(0, highwater - position)
        # a topic whose partitions all moved to another replica is no longer this one's lag
        for topic in self.topics:
            LAG.labels(topic, self.group_id).set(totals.get(topic, 0))
        if known and not any(totals.values()):  # caught up, or no partitions to read
            self._progressed_at = time.monotonic()
