"""Reading a topic in every process: what each process must see of every event, not its share.

A consumer group splits a topic's partitions between a service's processes; some things every
process needs whole — ended sessions (revocations.py), the changes that drop cached copies
(cache.py), the new messages that wake open streams (notification's watch.py). A `TopicTail`
reads all partitions of one topic without a group, from its end or from a point in time, and
hands each record to `handle`. After the broker was away it goes on from where this process was,
so nothing published meanwhile is skipped; a topic that does not exist yet (a service's first
start) is waited for quietly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import TypeVar

from google.protobuf import message
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from wenming.common.v1 import common_pb2

from .events import PoisonEvent, decode
from .kafka_clients import consumer_options
from .retry import OUTAGE
from .threads import StoppableThread

M = TypeVar("M", bound=message.Message)

log = logging.getLogger(__name__)


class TopicTail(StoppableThread):
    def __init__(self, name: str, bootstrap_servers: str, topic: str, handle: Callable[[ConsumerRecord], None], *,
                 since_seconds: float | None = None, on_connect: Callable[[], None] = lambda: None,
                 on_lost: Callable[[], None] = lambda: None, after_poll: Callable[[], None] = lambda: None):
        """`since_seconds`: start that far back in time (else at the end); `on_connect` runs each
        time the tail is reading again, `on_lost` when it lost the broker, `after_poll` after
        every poll, records or not."""
        super().__init__(name)
        self._servers = bootstrap_servers
        self.topic = topic
        self._handle = handle
        self._since = since_seconds
        self._on_connect, self._on_lost, self._after_poll = on_connect, on_lost, after_poll
        self._positions: dict[TopicPartition, int] = {}
        self._caught_up_at: dict[TopicPartition, int] = {}  # the end offsets when the tail first read
        self.caught_up = False  # has read at least up to where the topic ended when it started

    def run(self) -> None:
        consumer, failures = None, 0
        while not self._stopping.is_set():
            try:
                if consumer is None:
                    consumer = self._connect()
                    if consumer is None:  # the topic is being created
                        self._stopping.wait(1.0)
                        continue
                    self._on_connect()
                for tp, records in consumer.poll(timeout_ms=500).items():
                    for record in records:
                        self._handle(record)
                    self._positions[tp] = records[-1].offset + 1
                if not self.caught_up:
                    self.caught_up = all(consumer.position(tp) >= end for tp, end in self._caught_up_at.items())
                self._after_poll()
                failures = 0
            except Exception:
                failures += 1
                pause = OUTAGE.delay(failures)
                log.warning("%s: reading %s failed; retrying in %.1fs", self.name, self.topic, pause, exc_info=True)
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        consumer.close()
                consumer = None
                self._on_lost()
                self._stopping.wait(pause)
        if consumer is not None:
            consumer.close()

    def _connect(self) -> KafkaConsumer | None:
        consumer = KafkaConsumer(bootstrap_servers=self._servers.split(","), group_id=None,
                                 client_id=f"{self.name}-{socket.gethostname()}-{os.getpid()}",
                                 enable_auto_commit=False, allow_auto_create_topics=False,
                                 **consumer_options())
        try:
            assigned = [TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or ())]
            if not assigned:
                consumer.close()
                return None
            consumer.assign(assigned)
            if not self._caught_up_at:
                self._caught_up_at = consumer.end_offsets(assigned)
            since = {} if self._since is None else consumer.offsets_for_times(
                {tp: int((time.time() - self._since) * 1000) for tp in assigned})
            for tp in assigned:
                if tp in self._positions:  # after a reconnect, on from where this process was
                    consumer.seek(tp, self._positions[tp])
                elif since.get(tp) is not None:
                    consumer.seek(tp, since[tp].offset)
                else:
                    consumer.seek_to_end(tp)
                    # resolved now: an event published before the first poll must not be skipped
                    self._positions[tp] = consumer.position(tp)
        except Exception:
            consumer.close()
            raise
        return consumer


def decode_of_type(record: ConsumerRecord, kind: type[M], reader: str) -> tuple[common_pb2.EventEnvelope, M] | None:
    """(envelope, payload) of a record whose header names the event type `kind`; None for any
    other type (skipped without decoding) or an undecodable record (logged, skipped)."""
    if dict(record.headers or ()).get("event_type", b"").decode() != kind.DESCRIPTOR.full_name:
        return None
    try:
        envelope, payload = decode(record.value)
    except PoisonEvent as exc:
        log.warning("%s: skipping an undecodable record at %s@%d: %s", reader, record.partition, record.offset, exc)
        return None
    if not isinstance(payload, kind):  # the header named one type, the envelope another
        log.warning("%s: skipping a mislabelled record at %s@%d", reader, record.partition, record.offset)
        return None
    return envelope, payload
