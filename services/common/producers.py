"""The process's Kafka producer, replaced when it stops completing sends.

kafka-python's idempotent producer can wedge after a broker outage: once batches have expired
(KafkaTimeoutError) the same producer may complete nothing again, while a fresh one delivers at
once. Every user of the producer (outbox relay, dead letters, events a consumer derives) sends
through `HealingProducer.deliver`, which waits for the acks within a bound; a delivery that timed
out or hit a broken producer state replaces the producer, and the caller sends again later.

Why a replacement keeps each aggregate's order: callers re-send from their first unacknowledged
record, in order, on the new producer (the relay stops at an aggregate's first failed event and
removes only acknowledged ones). The old producer can only have written a prefix of what it was
given (idempotence: the broker takes a partition's records in sequence), so on the topic the
first copy of every event still comes in order; later copies are duplicates that consumers drop
by event id.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata
from kafka.errors import (InvalidProducerEpochError, KafkaError, KafkaTimeoutError, OutOfOrderSequenceNumberError,
                          ProducerFencedError, UnknownProducerIdError)
from prometheus_client import Counter

from .events import record_headers
from .mongo import RawDoc

log = logging.getLogger(__name__)

REPLACEMENTS = Counter("kafka_producer_replacements_total",
                       "Kafka producers closed and made anew because they stopped completing sends", ["reason"])
# no ack within the bound, or batches expired in the producer
TIMEOUT = "timeout"
# the broker refused the producer's id, epoch or sequence: it cannot send again as it is
PRODUCER_STATE = "producer_state"
BROKEN_STATE = (OutOfOrderSequenceNumberError, UnknownProducerIdError, InvalidProducerEpochError, ProducerFencedError)


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None


def outbox_record(entry: RawDoc) -> Record:
    """The Kafka record of an outbox or derived event entry (events.EventSource.new)."""
    return Record(entry["topic"], entry["key"].encode(), bytes(entry["value"]), record_headers(entry))


class HealingProducer:
    """One producer shared by the threads of a process; `deliver` is the only way to send."""

    def __init__(self, factory: Callable[[], KafkaProducer]):
        self._factory = factory
        self._lock = threading.Lock()
        self._producer = factory()
        for reason in (TIMEOUT, PRODUCER_STATE):  # visible from zero, so increase() sees the first
            REPLACEMENTS.labels(reason)

    def deliver(self, records: Iterable[Record], timeout: float) -> list[Exception | None]:
        """Sends `records` in order and waits up to `timeout` seconds for the broker's acks.
        Returns None for each acknowledged record, else its error; a record after one whose send
        could not even start is not sent (KafkaTimeoutError). A timeout or a broken producer
        state replaces the producer before this returns."""
        records = list(records)
        producer = self._producer
        futures, outcome = [], []
        try:
            for record in records:
                futures.append(producer.send(record.topic, key=record.key, value=record.value,
                                             headers=record.headers))
        except KafkaError as exc:  # no metadata within max_block_ms: the broker is away
            outcome = [exc] * (len(records) - len(futures))
        try:
            producer.flush(timeout=timeout)
        except KafkaTimeoutError:
            pass  # the unfinished futures say which records
        results = [_result(future) for future in futures] + outcome
        if any(isinstance(error, KafkaTimeoutError) for error in results):
            self._replace(producer, TIMEOUT)
        elif any(isinstance(error, BROKEN_STATE) for error in results):
            self._replace(producer, PRODUCER_STATE)
        return results

    def send_and_wait(self, records: Iterable[Record], timeout: float) -> None:
        """`deliver`, raising the first record's error (the caller retries all of them)."""
        for error in self.deliver(records, timeout):
            if error is not None:
                raise error

    def close(self, timeout: float) -> None:
        """Flushes for up to `timeout` seconds; what is unsent then stays pending for the next start."""
        with self._lock:
            try:
                self._producer.close(timeout=timeout)
            except KafkaError:  # close() flushes first and raises when that times out
                _discard(self._producer)

    def _replace(self, stuck: KafkaProducer, reason: str) -> None:
        with self._lock:
            if self._producer is not stuck:
                return  # another thread replaced it already
            try:
                fresh = self._factory()
            except KafkaError:
                log.warning("Kafka producer stuck (%s) but no new one can be made yet", reason, exc_info=True)
                return
            self._producer = fresh
        REPLACEMENTS.labels(reason).inc()
        log.warning("Kafka producer stuck (%s): replaced by a new one", reason)
        _discard(stuck)


def _result(future: FutureRecordMetadata) -> Exception | None:
    if not future.is_done:
        timeout: Exception = KafkaTimeoutError("no acknowledgement within the bound")
        return timeout
    error: Exception | None = future.exception if future.failed() else None
    return error


def _discard(producer: KafkaProducer) -> None:
    """Closes a stuck producer at once. close(timeout=0) flushes first and raises while batches
    are stuck, before it would force its sender thread to stop: so stop the sender first (its
    unfinished batches fail; their records are sent again on the new producer)."""
    sender = producer._sender
    if sender is not None:
        sender.force_close()
        sender.join(5)
    try:
        producer.close(timeout=0)
    except KafkaError:
        log.warning("closing a stuck Kafka producer failed", exc_info=True)
