"""The outbox relay on the real broker and database: a write in this process wakes it and the
wake-up scans only the collection written; events that another process left pending (they wake
nothing here) go out at the relay's next poll, which scans every collection."""

from __future__ import annotations

import time
import uuid

from kafka import KafkaConsumer
from pymongo import MongoClient, monitoring

from services.common.events import EventSource
from services.common.kafka_clients import TopicSettings, ensure_topics, make_admin, make_producer
from services.common.outbox import OUTBOX_INDEX, OutboxRelay, insert_with_events
from services.common.producers import HealingProducer
from wenming.registration.v1 import events_pb2

# long enough that a poll cannot pass for a wake-up on a busy machine
POLL_SECONDS = 8.0
SOURCE = EventSource("kit")


class FindsByCollection(monitoring.CommandListener):
    def __init__(self) -> None:
        self.finds: dict[str, int] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            name = event.command["find"]
            self.finds[name] = self.finds.get(name, 0) + 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _event(topic: str, unit: str) -> dict:
    entry = SOURCE.new(events_pb2.UnitRenamed(unit_id=unit, old_name="", new_name="n"), district_id="d",
                       aggregate_type="unit", aggregate_id=unit, version=1)
    return dict(entry, topic=topic)


def _wait_for_record(consumer: KafkaConsumer, key: str, within: float) -> float:
    """Seconds until a record keyed `key` is on the topic."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        for records in consumer.poll(timeout_ms=200).values():
            if any(r.key is not None and r.key.decode() == key for r in records):
                return time.monotonic() - started
    raise AssertionError(f"no record for {key} within {within:.0f}s")


def test_a_write_wakes_the_relay_for_its_collection_and_the_poll_finds_the_rest(stack):
    run = uuid.uuid4().hex[:8]
    topic = f"relay{run}.v1.events"
    admin = make_admin(stack.kafka, "relay-test")
    ensure_topics(admin, [topic], TopicSettings(partitions=1))
    admin.close()
    listener = FindsByCollection()
    client = MongoClient(stack.mongodb_uri, event_listeners=[listener])
    db = client[f"{stack.db_prefix}kit"]
    written, quiet = db[f"relay_written_{run}"], db[f"relay_quiet_{run}"]
    for collection in (written, quiet):
        collection.create_index(OUTBOX_INDEX)
    relay = OutboxRelay(HealingProducer(lambda: make_producer(stack.kafka, "relay-test")), [written, quiet],
                        poll_seconds=POLL_SECONDS)
    consumer = KafkaConsumer(topic, bootstrap_servers=[stack.kafka], group_id=None, auto_offset_reset="earliest")
    relay.start()
    try:
        deadline = time.monotonic() + 30
        while listener.finds.get(quiet.name, 0) < 1:  # the first pass scans every collection
            assert time.monotonic() < deadline, "the relay never scanned"
            time.sleep(0.05)
        quiet_scans = listener.finds[quiet.name]

        insert_with_events(written, {"_id": "w1"}, [_event(topic, "w1")])
        assert _wait_for_record(consumer, "w1", within=POLL_SECONDS / 2) < POLL_SECONDS / 2
        assert listener.finds[quiet.name] == quiet_scans, "a wake-up for one collection scanned another"

        # as a GRPC_PROCESSES worker writes: pending in the database, no wake-up in this process
        quiet.insert_one({"_id": "q1", "version": 1, "outbox": [_event(topic, "q1")], "outbox_pending": True})
        _wait_for_record(consumer, "q1", within=POLL_SECONDS + 20)
        assert listener.finds[quiet.name] > quiet_scans
    finally:
        relay.stop()
        consumer.close()
        client.close()
