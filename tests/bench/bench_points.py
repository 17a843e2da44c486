"""Points: the ledger consumer's apply rate (OrderHoursConfirmed events → ledger entries and
account balances in the database), beside a bare kafka-python consume, a bare pymongo bulk insert
and a bare bulk insert of the very entry documents the ledger writes (same shape, same indexes),
all measured in the same run; what a district's year of events takes to replay at that rate; and
completion → hours visible in the account, one event at a time.

Budgets (docs/design.md §5): ≥ 5,000 events/s (≥ 0.15× the bare consume); a year's replay
< 10 min; hours visible < 2 s p99."""

from __future__ import annotations

import random
import time
import uuid

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from pymongo import MongoClient

from services.common.clock import clock
from services.points.earning import BUILDERS
from services.points.ledger import entry_document
from services.points.models import LedgerEntry
from tests.bench.harness import BenchContext, Measurement, Profile
from tests.points.support import ORDERING_TOPIC, Feed
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import registration_pb2 as reg

VOLUNTEERS = 200  # one town's active volunteers
# a district's year of ledger events: ~150 stations' and courtyards' confirmed orders and
# activities, ratings and training sessions (凉州区-sized: ~250k residents, ~9k volunteers)
DISTRICT_YEAR_EVENTS = 250_000
VISIBLE_SAMPLES = 20


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
    profile = Profile(proc.process.pid, 10)
    while count() < entries_expected and time.monotonic() < deadline:
        time.sleep(0.5)
    stored = time.perf_counter() - started
    minutes = sum(e["amount"] for e in db.ledger_entries.find({"district_id": district, "book": 1}, {"amount": 1}))
    while time.monotonic() < deadline and sum(
            a["verified_minutes"] for a in db.accounts.find({"district_id": district}, {"verified_minutes": 1})) \
            < minutes:
        time.sleep(0.2)
    settled = time.perf_counter() - started

    print(f"  completion → hours in the account, {VISIBLE_SAMPLES} events one at a time…", flush=True)
    feed = Feed(ctx.stack.kafka)
    visible = []
    for n in range(VISIBLE_SAMPLES):
        volunteer = volunteers[n % VISIBLE_SAMPLES]
        before = (db.accounts.find_one({"_id": volunteer}, {"verified_minutes": 1}) or {}).get("verified_minutes", 0)
        order = feed.order(f"ord_v{n:04d}_{uuid.uuid4().hex[:6]}", courtyard=yard, handling=station)
        began = time.perf_counter()
        feed.send(feed.hours_confirmed(district, order, [(volunteer, 60, c.HOURS_SOURCE_VERIFIED)], station))
        while time.perf_counter() - began < 30 and (db.accounts.find_one(
                {"_id": volunteer}, {"verified_minutes": 1}) or {}).get("verified_minutes", 0) < before + 60:
            time.sleep(0.01)
        visible.append((time.perf_counter() - began) * 1000)
    feed.close()
    client.close()

    kafka = ctx.floor("kafka_consume")
    mongo = ctx.floor("pymongo_insert")
    same_shape = _entries_floor(ctx, batch[:min(len(batch), 3000)])
    rate = events / settled
    replay_minutes = DISTRICT_YEAR_EVENTS / rate / 60
    visible.sort()
    p99 = visible[min(len(visible) - 1, int(round(0.99 * (len(visible) - 1))))]
    details = {"events": events, "entries": entries_expected, "volunteers": VOLUNTEERS, "batch_records": 2000,
               "entries_stored_seconds": round(stored, 2), "balances_settled_seconds": round(settled, 2)}
    over = rate < 5000 or rate < 0.15 * kafka["per_second"]
    return [
        Measurement("points ledger apply (events → entries + balances)", rate, "events/s", "bare kafka-python consume",
                    kafka["per_second"], "≥ 5,000 events/s, ≥ 0.15× floor", not over,
                    {**details, "profile": profile.top()}),
        Measurement("points ledger entries written", entries_expected / stored, "entries/s",
                    "bare pymongo bulk insert", mongo["bulk_per_second"], details=details),
        Measurement("points ledger entries written vs the same documents", entries_expected / stored, "entries/s",
                    "bare bulk insert, entry documents", same_shape, details=details),
        Measurement(f"points replay of a district's year ({DISTRICT_YEAR_EVENTS:,} events)", replay_minutes, "min",
                    budget="< 10 min", ok=replay_minutes < 10, details={"events_per_second": round(rate, 1)}),
        Measurement("points completion → hours visible p99", p99, "ms", budget="< 2,000 ms p99", ok=p99 < 2000,
                    details={"samples": len(visible), "p50_ms": round(visible[len(visible) // 2], 1)}),
    ]


def _entries_floor(ctx: BenchContext, events: list[dict]) -> float:
    """Entries per second of a bare bulk insert of the ledger's own entry documents for `events`
    (built by the ledger's code, so the shape is the same) into a collection with the ledger's
    indexes, in batches as large as the consumer's."""
    from services.common.consumer import ConsumedEvent
    from services.common.events import decode
    from services.points.rules import from_document

    rules = from_document(None)
    documents = []
    for n, entry in enumerate(events):
        envelope, payload = decode(bytes(entry["value"]))
        consumed = ConsumedEvent(envelope, payload, ORDERING_TOPIC, 0, n)
        for spec in BUILDERS[envelope.event_type](consumed, rules):
            documents.append(entry_document(spec, envelope.district_id, source=f"floor-0@{n}", now=clock.now()))
    client = MongoClient(ctx.stack.mongodb_uri)
    coll = client[f"{ctx.stack.db_prefix}bench_floor"][f"entries_{uuid.uuid4().hex[:6]}"]
    for index in LedgerEntry._meta["index_specs"]:
        coll.create_index(index["fields"])
    began = time.perf_counter()
    for at in range(0, len(documents), 4000):
        coll.insert_many(documents[at:at + 4000], ordered=False)
    seconds = time.perf_counter() - began
    client.close()
    return len(documents) / seconds if seconds else 0.0
