"""Points: the ledger consumer's apply rate (OrderHoursConfirmed events → ledger entries and
account balances in the database), beside a bare kafka-python consume and a bare pymongo bulk
insert measured in the same run. Budget (docs/design.md §5): ≥ 5,000 events/s into the database."""

from __future__ import annotations

import random
import time
import uuid

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from pymongo import MongoClient

from tests.bench.harness import BenchContext, Measurement
from tests.points.support import ORDERING_TOPIC, Feed
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import registration_pb2 as reg

VOLUNTEERS = 200  # one town's active volunteers


def _start_group_at_end(bootstrap: str, group: str) -> None:
    """The bench's consumer group starts after whatever the topic already holds."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    partitions = [TopicPartition(ORDERING_TOPIC, p) for p in consumer.partitions_for_topic(ORDERING_TOPIC)]
    ends = consumer.end_offsets(partitions)
    consumer.assign(partitions)
    consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in ends.items()})
    consumer.close()


def run(ctx: BenchContext) -> list[Measurement]:
    events = 5_000 if ctx.quick else 20_000
    district = f"bench{uuid.uuid4().hex[:8]}"
    station = reg.Unit(unit_id="unit_bench_st", level=c.UNIT_LEVEL_STATION, name="广场村新时代文明实践站",
                       path=["unit_bench_c", "unit_bench_i", "unit_bench_st"])
    yard = reg.Unit(unit_id="unit_bench_y", level=c.UNIT_LEVEL_COURTYARD, name="广场村幸福小院",
                    path=[*station.path, "unit_bench_y"])
    rng = random.Random(5)
    volunteers = [f"vol_bench{n:04d}" for n in range(VOLUNTEERS)]
    feed = Feed(ctx.stack.kafka)
    group = f"points-ledger-bench-{uuid.uuid4().hex[:6]}"
    _start_group_at_end(ctx.stack.kafka, group)
    entries_expected = 0
    batch = []
    for n in range(events):
        served = rng.sample(volunteers, rng.randint(1, 2))
        order = feed.order(f"ord_b{n:06d}", courtyard=yard, handling=station)
        batch.append(feed.hours_confirmed(district, order, [(v, rng.randint(30, 180), c.HOURS_SOURCE_VERIFIED)
                                                            for v in served], station))
        entries_expected += 2 * len(served)
    feed.send(*batch)
    feed.close()

    proc = ctx.service("points", port_offset=3, extra_env={"POINTS_LEDGER_GROUP": group,
                                                           "POINTS_LEDGER_BATCH_RECORDS": "2000"})
    client = MongoClient(ctx.stack.mongodb_uri)
    db = client[proc.env["MONGODB_DATABASE"]]
    # the database is this run's own, so the collection's size says how far the consumer got;
    # a filtered count would decode every entry on FerretDB and slow down what it measures
    count = db.ledger_entries.estimated_document_count
    deadline = time.monotonic() + 900
    while count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.perf_counter()
    while count() < entries_expected and time.monotonic() < deadline:
        time.sleep(0.5)
    stored = time.perf_counter() - started
    minutes = sum(e["amount"] for e in db.ledger_entries.find({"district_id": district, "book": 1}, {"amount": 1}))
    while time.monotonic() < deadline and sum(
            a["verified_minutes"] for a in db.accounts.find({"district_id": district}, {"verified_minutes": 1})) \
            < minutes:
        time.sleep(0.2)
    settled = time.perf_counter() - started
    client.close()

    kafka = ctx.floor("kafka_consume")
    mongo = ctx.floor("pymongo_insert")
    rate = events / settled
    details = {"events": events, "entries": entries_expected, "volunteers": VOLUNTEERS, "batch_records": 2000,
               "entries_stored_seconds": round(stored, 2), "balances_settled_seconds": round(settled, 2)}
    return [
        Measurement("points ledger apply (events → entries + balances)", rate, "events/s", "bare kafka-python consume",
                    kafka["per_second"], "≥ 5,000 events/s", rate >= 5000, details),
        Measurement("points ledger entries written", entries_expected / stored, "entries/s",
                    "bare pymongo bulk insert", mongo["bulk_per_second"], details=details),
    ]
