"""Producers that heal, against a broker of this test's own that it kills or freezes: the outbox
relay and a consumer publishing derived events, under steady writes, go on after the broker is
back without a restart; every event reaches the topic, each aggregate's first copies in order;
the stall showed in readiness meanwhile and the failures were counted; frozen, the wedged
producer was replaced."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
from kafka import KafkaConsumer
from prometheus_client import REGISTRY

from services.common.consumer import EventConsumer, Outcome
from services.common.derived_events import derived_event, publish_and_wait
from services.common.events import EventSource
from services.common.kafka_clients import TopicSettings, ensure_topics, make_admin, make_producer
from services.common.outbox import OutboxRelay, insert_with_events, update_with_events
from services.common.producers import HealingProducer
from tests.support.kafka_broker import PrivateKafka
from wenming.registration.v1 import events_pb2

AGGREGATES = 8
# longer than the producer's delivery timeout (30 s): batches expire, the state that wedged it
OUTAGE_SECONDS = 40
SOURCE = EventSource("kit")


@pytest.fixture
def broker(stack, tmp_path):
    # the pytest worker's own spare ports: tests of other workers may run their brokers meanwhile
    kafka = PrivateKafka(stack, stack.spare_port(0), tmp_path / "kafka", controller_port=stack.spare_port(1))
    kafka.start()
    yield kafka
    kafka.stop()


def _sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _read_topic(address: str, topic: str) -> list:
    consumer = KafkaConsumer(topic, bootstrap_servers=[address], group_id=None, auto_offset_reset="earliest",
                             consumer_timeout_ms=5000)
    try:
        return sorted(consumer, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


class Deriving(EventConsumer):
    """Publishes one derived event per consumed event before it commits, as the points ledger does."""

    def __init__(self, derived_topic: str, **options):
        super().__init__(**options)
        self.derived_topic = derived_topic

    def apply_batch(self, events):
        entries = []
        for event in events:
            entry = derived_event(SOURCE, event.event_id, event.payload, district_id="d", aggregate_type="unit",
                                  aggregate_id=event.envelope.aggregate_id, version=event.envelope.aggregate_version)
            entries.append(dict(entry, topic=self.derived_topic))
        publish_and_wait(self._dlq, entries)
        return [Outcome.APPLIED] * len(events)


@pytest.mark.parametrize("fault", ["kill", "freeze"])
def test_relay_and_deriving_consumer_resume_after_the_broker_outage(stack, mongo_client, broker, fault):
    run = uuid.uuid4().hex[:8]
    topic, derived_topic = f"heal{run}.v1.events", f"heal{run}.derived.v1.events"
    admin = make_admin(broker.address, "heal-test")
    ensure_topics(admin, [topic, derived_topic, f"{topic}.dlq"], TopicSettings(partitions=3))
    admin.close()
    units = mongo_client[f"{stack.db_prefix}kit"][f"healing_{run}"]
    producer = HealingProducer(lambda: make_producer(broker.address, "heal-test"))
    relay = OutboxRelay(producer, [units], poll_seconds=0.1)
    consumer = Deriving(derived_topic, bootstrap_servers=broker.address, group_id=f"heal-{run}", topics=[topic],
                        dlq_producer=producer)
    replaced_before = _sample("kafka_producer_replacements_total", reason="timeout")
    failures_before = _sample("outbox_publish_failures_total", topic=topic)

    written: list[tuple[str, int, str]] = []  # (aggregate, version, event id)
    writing = threading.Event()
    writing.set()

    def event(unit: str, version: int) -> dict:
        entry = SOURCE.new(events_pb2.UnitRenamed(unit_id=unit, old_name="", new_name=f"v{version}"),
                           district_id="d", aggregate_type="unit", aggregate_id=unit, version=version)
        written.append((unit, version, entry["id"]))
        return dict(entry, topic=topic)

    def write() -> None:
        for n in range(AGGREGATES):
            insert_with_events(units, {"_id": f"u{n}"}, [event(f"u{n}", 1)])
        version = 1
        while writing.is_set():
            version += 1
            for n in range(AGGREGATES):
                update_with_events(units, {"_id": f"u{n}"}, {"$set": {"name": f"v{version}"}},
                                   [event(f"u{n}", version)])
            time.sleep(0.5)

    relay.start()
    consumer.start()
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        time.sleep(5)
        broker.kill() if fault == "kill" else broker.freeze()
        stalled_seen = 0.0
        outage_ends = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < outage_ends:
            stalled_seen = max(stalled_seen, relay.stalled_for())
            time.sleep(1)
        broker.start() if fault == "kill" else broker.thaw()
        time.sleep(5)
        writing.clear()
        writer.join(10)

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and units.count_documents({"outbox_pending": True}):
            time.sleep(1)
        assert units.count_documents({"outbox_pending": True}) == 0, "the relay did not resume"
        # readiness saw the relay stuck while the broker was away
        assert stalled_seen > 10
        if fault == "freeze":  # the wedge: only a new producer gets through (killed, the old one may recover)
            assert _sample("kafka_producer_replacements_total", reason="timeout") > replaced_before
        assert _sample("outbox_publish_failures_total", topic=topic) > failures_before

        version_of = {event_id: version for _, version, event_id in written}
        records = _read_topic(broker.address, topic)
        first_copies: dict[str, list[int]] = {}
        seen = set()
        for record in records:
            event_id = dict(record.headers)["event_id"].decode()
            if event_id not in seen:
                seen.add(event_id)
                first_copies.setdefault(record.key.decode(), []).append(version_of[event_id])
        assert seen == set(version_of), "events lost"
        for unit, versions in first_copies.items():
            assert versions == sorted(versions), f"{unit}: events out of order {versions}"

        # the consumer derives an event for every source event, without a restart
        derived_ids = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(derived_ids) < len(written):
            derived_ids = {dict(r.headers)["event_id"].decode() for r in _read_topic(broker.address, derived_topic)}
        assert len(derived_ids) == len(written), "the consumer did not resume"
        assert consumer.stalled_for() < 10
    finally:
        writing.clear()
        consumer.stop()
        relay.stop()
        producer.close(timeout=5)


def _readyz(http_base: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{http_base}/readyz", timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as answer:
        return answer.code, json.load(answer)


# alone: inside the parallel part of make test, readiness never named the relay within two minutes
# (twice; passes every time on its own) — why is not yet known
@pytest.mark.serial
def test_readiness_names_a_stalled_relay_and_the_service_heals_without_a_restart(stack, spawn, mongo_client,
                                                                                  broker):
    """A real service process on the private broker: events waiting while the broker is frozen
    make /readyz say why it is not ready; after the thaw it publishes them and is ready again."""
    proc = spawn("training", port_offset=3, log_name="training-frozen-broker",
                 extra_env={"KAFKA_BOOTSTRAP_SERVERS": broker.address, "READINESS_STALL_SECONDS": "5"})
    proc.wait_serving(120)
    assert _readyz(proc.http_base)[0] == 200
    audit = mongo_client[proc.env["MONGODB_DATABASE"]]["audit"]
    topic = proc.env["KAFKA_PREFIX"] + "wenming.audit.v1.events"
    entry = SOURCE.new(events_pb2.UnitRenamed(unit_id="u", old_name="", new_name="n"), district_id="d",
                       aggregate_type="unit", aggregate_id="u", version=1)

    broker.freeze()
    try:
        insert_with_events(audit, {"_id": "stalled-relay-probe"}, [dict(entry, topic=topic)])
        deadline, status, body = time.monotonic() + 120, 200, {}  # a crowded machine: slow to say
        while time.monotonic() < deadline and "outbox_relay" not in body.get("reasons", {}):
            time.sleep(1)
            status, body = _readyz(proc.http_base)
        assert status == 503 and body["checks"]["outbox_relay"] is False, body
        assert "events pending, none published for" in body["reasons"]["outbox_relay"]
        time.sleep(30)  # frozen long enough for the producer's batches to expire (the wedge)
    finally:
        broker.thaw()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (audit.count_documents({"outbox_pending": True})
                                           or _readyz(proc.http_base)[0] != 200):
        time.sleep(1)
    assert audit.count_documents({"outbox_pending": True}) == 0, "the service did not publish after the thaw"
    status, body = _readyz(proc.http_base)
    assert status == 200, body
    ids = {dict(r.headers)["event_id"].decode() for r in _read_topic(broker.address, topic)}
    assert entry["id"] in ids
