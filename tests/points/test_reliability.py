"""The ledger consumer as a real process: SIGKILLed in the middle of its batches and restarted,
every confirmed order is counted exactly once; a replay of the whole topic under a new consumer
group changes no balance and adds no entry."""

from __future__ import annotations

import random
import urllib.request
import uuid

from tests.support.registration import District
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.points.v1 import points_pb2 as pb
from services.common.events import events_topic

ORDERS = 240


def _metric(proc, name: str, **labels) -> float | None:
    with urllib.request.urlopen(f"{proc.http_base}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def _balances(db, district_id: str) -> dict[str, tuple[int, int, int]]:
    return {a["_id"]: (a["verified_minutes"], a["points"], a["version"])
            for a in db.accounts.find({"district_id": district_id})}


def test_kill_mid_batch_then_replay_counts_every_order_exactly_once(stack, registration, feed, spawn, mongo_client):
    district = District(registration.grpc_target, registration.env)
    tree = district.small_tree()
    prefix = f"{stack.db_prefix}kill_"
    db = mongo_client[f"{prefix}points"]
    rng = random.Random(7)
    volunteers = [f"vol_k{uuid.uuid4().hex[:6]}{n:02d}" for n in range(30)]
    expected_minutes: dict[str, int] = dict.fromkeys(volunteers, 0)
    expected_points: dict[str, int] = dict.fromkeys(volunteers, 0)
    events = []
    for n in range(ORDERS):
        served = rng.sample(volunteers, rng.randint(1, 2))
        minutes = rng.randint(30, 240)
        order = feed.order(f"ord_k{n:05d}{uuid.uuid4().hex[:6]}", courtyard=tree.courtyards[n % 4],
                           handling=tree.stations[n % 2])
        events.append(feed.hours_confirmed(district.id, order, [(v, minutes, c.HOURS_SOURCE_VERIFIED) for v in served],
                                           tree.stations[n % 2]))
        for v in served:  # the rule: verified minutes, and minutes × 10 points/h (讲理论 ×1.0)
            expected_minutes[v] += minutes
            expected_points[v] += minutes * 10 // 60
    expected_entries = sum(2 * len(set(_volunteers(e))) for e in events)
    feed.send(*events)

    # killed by its own hand right after the first batch's entries are written: no balance
    # moved and no offset committed, the hardest point to resume from (crashpoints.py)
    env = {"POINTS_LEDGER_BATCH_RECORDS": "10", "POINTS_LEDGER_GROUP": f"points-ledger-kill-{uuid.uuid4().hex[:6]}"}
    proc = spawn("points", port_offset=1, database_prefix=prefix, log_name="points-kill",
                 extra_env={**env, "POINTS_CRASH_AT": "ledger.entered"})
    count = lambda: db.ledger_entries.count_documents({"district_id": district.id})  # noqa: E731
    assert wait_until(lambda: proc.process.poll() is not None, 180), "the ledger never reached its crash point"
    assert proc.process.returncode == -9
    # the topic carries other tests' districts too, which may come first
    assert db.ledger_entries.estimated_document_count() > 0 and count() < expected_entries, "not mid-way"

    del proc.env["POINTS_CRASH_AT"]
    proc.start()
    proc.wait_serving(90)
    assert wait_until(lambda: count() == expected_entries and _settled(db, district.id, expected_minutes), 180), \
        f"{count()} of {expected_entries} entries"
    accounts = {a["_id"]: a for a in db.accounts.find({"district_id": district.id})}
    for v in volunteers:
        assert accounts[v]["verified_minutes"] == expected_minutes[v]
        assert accounts[v]["points"] == expected_points[v]
    # Σ entries = Σ rule(confirmed orders), per book
    for book, expected in ((pb.BOOK_VERIFIED_MINUTES, expected_minutes), (pb.BOOK_POINTS, expected_points)):
        rows = db.ledger_entries.aggregate([{"$match": {"district_id": district.id, "book": book}},
                                            {"$group": {"_id": "$account_id", "total": {"$sum": "$amount"}}}])
        assert {r["_id"]: r["total"] for r in rows} == expected
    proc.stop()

    # replay: the whole topic again under a new consumer group, on the same database
    before, entries_before = _balances(db, district.id), count()
    group = f"points-ledger-replay-{uuid.uuid4().hex[:6]}"
    replay = spawn("points", port_offset=1, database_prefix=prefix, log_name="points-replay",
                   extra_env={**env, "POINTS_LEDGER_GROUP": group})
    replay.wait_serving(90)
    assert wait_until(lambda: (_metric(replay, "events_duplicate_total", group=group) or 0) >= ORDERS
                      and _metric(replay, "consumer_lag", group=group, topic=events_topic("ordering")) == 0, 180)
    assert count() == entries_before
    assert _balances(db, district.id) == before  # not even a version moved: nothing was rewritten
    district.close()


def _volunteers(entry: dict) -> list[str]:
    from services.common.events import decode
    _, payload = decode(entry["value"])
    return [h.volunteer_id for h in payload.hours]


def _settled(db, district_id: str, expected_minutes: dict[str, int]) -> bool:
    got = {a["_id"]: a["verified_minutes"] for a in db.accounts.find({"district_id": district_id})}
    return got == expected_minutes


