"""The kit's idempotent consumer against the real broker and database: effects stored once,
poison dead-lettered with its error, consumption goes on, replays are no-ops."""

from __future__ import annotations

import threading
import time
import uuid

from kafka import KafkaConsumer
from pymongo.errors import DuplicateKeyError

from services.common.consumer import EventConsumer, Outcome
from services.common.events import EventSource
from services.common.kafka_clients import TopicSettings, ensure_topics, make_admin, make_producer
from services.common.producers import HealingProducer, Record
from wenming.common.v1 import common_pb2
from wenming.registration.v1 import events_pb2


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_consumer_stores_once_dead_letters_poison_and_goes_on(stack, mongo_client):
    run = uuid.uuid4().hex[:8]
    topic = f"wmtest.kit{run}.v1.events"
    admin = make_admin(stack.kafka, "kit-test")
    ensure_topics(admin, [topic, f"{topic}.dlq"], TopicSettings(partitions=2))
    admin.close()
    applied = mongo_client[f"{stack.db_prefix}kit"][f"applied_{run}"]
    producer = HealingProducer(lambda: make_producer(stack.kafka, "kit-test"))
    source = EventSource("kit")

    def entry(n: int, new_name: str) -> dict:
        return source.new(events_pb2.UnitRenamed(unit_id=f"u{n}", old_name="a", new_name=new_name),
                          district_id="d", aggregate_type="unit", aggregate_id=f"u{n}", version=n)

    good = [entry(n, "ok") for n in range(20)]
    rejected = entry(99, "reject-me")  # decodes fine, but the handler refuses it for good
    unknown = common_pb2.EventEnvelope(event_id="evt_x", event_type="wenming.nothing.v1.Thing", district_id="d")
    unknown.payload.type_url = "type.googleapis.com/wenming.nothing.v1.Thing"
    values = [e["value"] for e in good[:10]] + [b"\x00garbage", unknown.SerializeToString(), rejected["value"]] + \
             [e["value"] for e in good[10:]]
    producer.send_and_wait([Record(topic, b"same-partition", value) for value in values], timeout=30)

    def handle(event) -> Outcome:
        if event.payload.new_name == "reject-me":
            raise ValueError("new_name 'reject-me' breaks a rule")
        try:
            applied.insert_one({"_id": event.event_id, "unit": event.payload.unit_id})
            return Outcome.APPLIED
        except DuplicateKeyError:
            return Outcome.DUPLICATE

    def consume(group: str) -> EventConsumer:
        consumer = EventConsumer(bootstrap_servers=stack.kafka, group_id=group, topics=[topic],
                                 handlers={"wenming.registration.v1.UnitRenamed": handle}, dlq_producer=producer)
        consumer.start()
        return consumer

    first = consume(f"kit-{run}")
    try:
        assert _wait(lambda: applied.count_documents({}) == 20)
    finally:
        first.stop()

    dlq = KafkaConsumer(f"{topic}.dlq", bootstrap_servers=stack.kafka, group_id=None, auto_offset_reset="earliest",
                        consumer_timeout_ms=5000)
    dead = [dict(r.headers) for r in dlq]
    dlq.close()
    errors = sorted(h["error"].decode() for h in dead)
    assert len(dead) == 3
    assert any("not an EventEnvelope" in e for e in errors)
    assert any("unknown event type" in e for e in errors)
    assert any("reject-me" in e for e in errors)
    assert all(h["source_topic"].decode() == topic for h in dead)

    # the same group resumes after its committed offsets: nothing is applied twice
    again = consume(f"kit-{run}")
    time.sleep(3)
    again.stop()
    # a new group replays the whole topic: every event is a duplicate
    replay = consume(f"kit-{run}-replay")
    try:
        assert _wait(lambda: applied.count_documents({}) == 20 and replay.healthy, timeout=15)
        time.sleep(2)
    finally:
        replay.stop()
    assert applied.count_documents({}) == 20
    producer.close(timeout=5)


def test_a_consumer_that_cannot_store_shows_how_long_it_has_not_moved(stack):
    """What readiness reads: while every batch fails (the database away) the consumer makes no
    progress with records to read; once batches are stored again it is caught up."""
    run = uuid.uuid4().hex[:8]
    topic = f"wmtest.kitstall{run}.v1.events"
    admin = make_admin(stack.kafka, "kit-test")
    ensure_topics(admin, [topic, f"{topic}.dlq"], TopicSettings(partitions=1))
    admin.close()
    producer = HealingProducer(lambda: make_producer(stack.kafka, "kit-test"))
    producer.send_and_wait([Record(topic, b"k", b"\x00not-an-envelope")], timeout=30)
    database_away = threading.Event()
    database_away.set()

    class Storing(EventConsumer):
        refused = 0

        def _process(self, records):
            if database_away.is_set():
                self.refused += 1
                return False  # as after a transient failure: the poll is read again
            return super()._process(records)

    consumer = Storing(bootstrap_servers=stack.kafka, group_id=f"kit-stall-{run}", topics=[topic],
                       dlq_producer=producer)
    consumer.start()
    try:
        # joined the group, the record read and refused, read again
        assert _wait(lambda: consumer.refused >= 2)
        stalled = consumer.stalled_for()
        time.sleep(5)
        assert consumer.stalled_for() > stalled + 4, "it made progress without storing anything"
        database_away.clear()
        assert _wait(lambda: consumer.stalled_for() < 2, timeout=20)
    finally:
        consumer.stop()
        producer.close(timeout=5)


def test_a_group_goes_on_through_rebalances_without_a_restart(stack, mongo_client):
    """A second replica joins and the first leaves while events keep coming: the group's
    partitions move twice, and every event is stored once by whoever holds its partition."""
    run = uuid.uuid4().hex[:8]
    topic = f"wmtest.kitgroup{run}.v1.events"
    admin = make_admin(stack.kafka, "kit-test")
    ensure_topics(admin, [topic, f"{topic}.dlq"], TopicSettings(partitions=4))
    admin.close()
    applied = mongo_client[f"{stack.db_prefix}kit"][f"group_{run}"]
    producer = HealingProducer(lambda: make_producer(stack.kafka, "kit-test"))
    source = EventSource("kit")

    def handle(event) -> Outcome:
        try:
            applied.insert_one({"_id": event.event_id})
            return Outcome.APPLIED
        except DuplicateKeyError:
            return Outcome.DUPLICATE

    def replica() -> EventConsumer:
        consumer = EventConsumer(bootstrap_servers=stack.kafka, group_id=f"kit-group-{run}", topics=[topic],
                                 handlers={"wenming.registration.v1.UnitRenamed": handle}, dlq_producer=producer)
        consumer.start()
        return consumer

    def publish(first: int, count: int) -> None:
        producer.send_and_wait([Record(topic, f"u{n % 16}".encode(), source.new(
            events_pb2.UnitRenamed(unit_id=f"u{n % 16}", old_name="a", new_name=f"n{n}"), district_id="d",
            aggregate_type="unit", aggregate_id=f"u{n % 16}", version=n)["value"]) for n in range(first, first + count)],
            timeout=30)

    leaving = replica()
    staying = None
    try:
        publish(0, 50)
        assert _wait(lambda: applied.count_documents({}) == 50)
        staying = replica()  # joins: the partitions are split between the two
        publish(50, 50)
        assert _wait(lambda: applied.count_documents({}) == 100)
        leaving.stop()  # leaves: the other takes every partition
        publish(100, 50)
        assert _wait(lambda: applied.count_documents({}) == 150, timeout=60)
        assert staying.healthy and staying.stalled_for() < 10
    finally:
        leaving.stop()
        if staying is not None:
            staying.stop()
        producer.close(timeout=5)
