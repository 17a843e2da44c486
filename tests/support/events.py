"""Reading what really landed on a Kafka topic, filtered by district; publishing a service's events
there as its outbox relay would, for a consumer under test."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from services.common.events import EventSource, decode, events_topic, record_headers
from services.common.kafka_clients import TopicSettings, ensure_topics, make_admin


class TopicTap:
    """Reads a topic from the offsets it had when the tap was opened."""

    def __init__(self, bootstrap: str, topic: str):
        self.topic = topic
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None,
                                      enable_auto_commit=False, consumer_timeout_ms=200)
        partitions = self.consumer.partitions_for_topic(topic) or set()
        deadline = time.monotonic() + 15
        while not partitions and time.monotonic() < deadline:  # the service creates it on start
            time.sleep(0.3)
            self.consumer.poll(timeout_ms=100)
            partitions = self.consumer.partitions_for_topic(topic) or set()
        self.partitions = [TopicPartition(topic, p) for p in sorted(partitions)]
        self.consumer.assign(self.partitions)
        self.start = self.consumer.end_offsets(self.partitions)
        for tp, offset in self.start.items():
            self.consumer.seek(tp, offset)
        self.records: list = []

    def _drain(self) -> None:
        for batch in self.consumer.poll(timeout_ms=300, max_records=5000).values():
            self.records.extend(batch)

    def events(self, district_id: str | None = None, *, at_least: int = 0, timeout: float = 15.0,
               settle: float = 0.0):
        """(envelope, payload, record) for the district, waiting for `at_least` of them;
        `settle` keeps reading a little longer to catch extras (duplicates)."""
        deadline = time.monotonic() + timeout
        while True:
            self._drain()
            found = self._decoded(district_id)
            if len(found) >= at_least or time.monotonic() > deadline:
                break
        if settle:
            end = time.monotonic() + settle
            while time.monotonic() < end:
                self._drain()
            found = self._decoded(district_id)
        return found

    def _decoded(self, district_id: str | None):
        out = []
        for record in self.records:
            headers = dict(record.headers or [])
            if district_id is not None and headers.get("district_id", b"").decode() != district_id:
                continue
            envelope, payload = decode(record.value)
            out.append((envelope, payload, record))
        return out

    def raw_values(self) -> list[bytes]:
        self._drain()
        return [r.value for r in self.records]

    def close(self) -> None:
        self.consumer.close()


class RelayPublisher:
    """Publishes events on `service`'s topic exactly as its outbox relay does (key, headers, acks=all)."""

    def __init__(self, bootstrap: str, service: str):
        admin = make_admin(bootstrap, "tests")
        ensure_topics(admin, [events_topic(service)], TopicSettings())
        admin.close()
        self._producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all")
        self._source = EventSource(service)

    def publish(self, payload, *, district_id: str, aggregate_type: str, aggregate_id: str, version: int) -> dict:
        """The event as the outbox stores it, sent."""
        entry = self._source.new(payload, district_id=district_id, aggregate_type=aggregate_type,
                                 aggregate_id=aggregate_id, version=version)
        self.send(entry)
        return entry

    def send(self, entry: dict) -> None:
        self._producer.send(entry["topic"], key=entry["key"].encode(), value=entry["value"],
                            headers=record_headers(entry)).get(timeout=15)

    def close(self) -> None:
        self._producer.close()
