"""The hours and points ledgers from ordering's and training's events, over the real broker and
database: credits by rule, stars (exactly one event per change, manual hours not counted, never
dropping), poison to the DLQ, and replays that change nothing."""

from __future__ import annotations

import datetime as dt
import uuid

import grpc
import pytest
from kafka import KafkaConsumer

from tests.points.support import ORDERING_TOPIC, POINTS_TOPIC, account_known
from tests.support.events import TopicTap
from tests.support.grpc_helpers import bearer, expect_error
from tests.support.registration import new_phone
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.points.v1 import events_pb2 as pev
from wenming.points.v1 import points_pb2 as pb

VERIFIED, MANUAL = c.HOURS_SOURCE_VERIFIED, c.HOURS_SOURCE_MANUAL


@pytest.fixture(scope="module")
def setup(module_district, points, stub):
    tree = module_district.small_tree()
    phone = new_phone()
    volunteer = module_district.volunteer(tree.courtyards[0].unit_id, phone=phone)
    admin = bearer(tree.admins[tree.stations[0].unit_id])
    # points hears of the volunteer through registration's events
    assert wait_until(lambda: account_known(stub, volunteer.volunteer_id, admin), 30)
    return tree, volunteer, bearer(module_district.volunteer_token(phone)), admin


def _account(stub, metadata, account_id=""):
    return stub.GetAccount(pb.GetAccountRequest(account_id=account_id), metadata=metadata, timeout=5).account


def test_hours_points_and_exactly_one_star_event(module_district, setup, stub, feed, stack):
    tree, volunteer, own, admin = setup
    d, vid = module_district.id, volunteer.volunteer_id
    station = tree.stations[0]
    tap = TopicTap(stack.kafka, POINTS_TOPIC)
    try:
        confirmations = []
        for _ in range(4):  # 4 × 20 h verified = 80 h, plus 2 h manual on the same orders
            order = feed.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=tree.courtyards[0], handling=station)
            confirmations.append(feed.hours_confirmed(d, order, [(vid, 1200, VERIFIED), (vid, 30, MANUAL)], station))
        feed.send(*confirmations)
        # 荣誉时数 by the station: 30 h that would cross 100 h if they counted
        stub.AddManualHours(pb.AddManualHoursRequest(volunteer_id=vid, minutes=1440, reason="抗疫志愿服务补录",
                                                     content="疫情防控值守", idempotency_key="honor-1"),
                            metadata=admin, timeout=10)
        stub.AddManualHours(pb.AddManualHoursRequest(volunteer_id=vid, minutes=360, reason="抗疫志愿服务补录",
                                                     content="疫情防控值守", idempotency_key="honor-2"),
                            metadata=admin, timeout=10)
        account = wait_until(lambda: (a := _account(stub, own)).verified_minutes == 4800 and a, 30)
        assert account.manual_minutes == 4 * 30 + 1440 + 360
        assert account.star_level == 0  # 80 h verified; manual hours do not count
        # points: minutes × 10/h × 100% (讲理论), on verified and manual order hours alike
        assert account.points == 4 * (1230 * 10 // 60)

        last = feed.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=tree.courtyards[0], handling=station)
        crossing = feed.hours_confirmed(d, last, [(vid, 1200, VERIFIED)], station)
        feed.send(crossing, crossing)  # published twice (an outbox relay may do that)
        account = wait_until(lambda: (a := _account(stub, own)).star_level == 1 and a, 30)
        assert account.verified_minutes == 6000
        assert account.star_history[0].threshold_minutes == 100 * 60

        stars = lambda: [p for e, p, _ in tap.events(d, timeout=1) if isinstance(p, pev.StarLevelChanged)]  # noqa: E731
        assert wait_until(lambda: len(stars()) == 1, 15)
        star = stars()[0]
        assert (star.volunteer_id, star.old_level, star.new_level, star.counted_minutes) == (vid, 0, 1, 6000)
        credited = [p for e, p, _ in tap.events(d, timeout=1) if isinstance(p, pev.PointsCredited)]
        assert {p.entry_id for p in credited} >= {f"ord:{last.order_id}:hours:{vid}:{pb.BOOK_VERIFIED_MINUTES}"}

        # the same events again change nothing and announce nothing
        feed.send(*confirmations, crossing)
        tap.events(d, timeout=3, settle=3)
        assert len(stars()) == 1
        assert _account(stub, own).verified_minutes == 6000

        # thresholds raised later: the star granted stays
        rules = stub.GetPointRules(pb.GetPointRulesRequest(), metadata=module_district.as_center(), timeout=5).rules
        rules.star_threshold_hours[:] = [200, 400, 700, 1100, 1600]
        stub.SetPointRules(pb.SetPointRulesRequest(rules=rules, expected_version=rules.version),
                           metadata=module_district.as_center(), timeout=5)
        feed.send(feed.hours_confirmed(d, feed.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=tree.courtyards[0]),
                                       [(vid, 60, VERIFIED)], station))
        account = wait_until(lambda: (a := _account(stub, own)).verified_minutes == 6060 and a, 30)
        assert account.star_level == 1

        audit = stub.AuditAccount(pb.AuditAccountRequest(account_id=vid), metadata=admin, timeout=5)
        assert audit.consistent, audit
    finally:
        tap.close()


def test_entries_are_listed_newest_first_and_corrected_by_reversal(module_district, setup, stub, feed):
    tree, volunteer, own, admin = setup
    vid = volunteer.volunteer_id
    # an earlier entry of its own first, so a page of one has a next page whichever tests ran before
    for minutes in (30, 90):
        order = feed.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=tree.courtyards[0], handling=tree.stations[0],
                           category=c.SERVICE_CATEGORY_CARE_FOR_OTHERS)
        feed.send(feed.hours_confirmed(module_district.id, order, [(vid, minutes, VERIFIED)], tree.stations[0]))
        key = f"ord:{order.order_id}:points:{vid}"
        page = wait_until(lambda: (p := stub.ListLedgerEntries(
            pb.ListLedgerEntriesRequest(book=pb.BOOK_POINTS, page=c.PageRequest(page_size=1)), metadata=own,
            timeout=5)).entries and p.entries[0].entry_id == key and p, 30)  # noqa: B023 (called at once)
        assert page, f"{key} never became the newest entry"
    entry = page.entries[0]
    assert entry.amount == 90 * 10 * 120 // 6000  # 关爱他人 ×1.2
    assert entry.title == "理论宣讲进小院" and entry.recorded_by_unit_id == tree.stations[0].unit_id
    assert entry.expires_at.seconds > 0 and page.page.next_page_token
    before = _account(stub, own).points

    reversed_ = stub.ReverseEntry(pb.ReverseEntryRequest(entry_id=key, reason="重复申报，冲正"), metadata=admin,
                                  timeout=10)
    assert reversed_.reversal.amount == -entry.amount and reversed_.reversal.reverses_entry_id == key
    assert reversed_.reversal.actor_id and reversed_.account.points == before - entry.amount
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="already been reversed"):
        stub.ReverseEntry(pb.ReverseEntryRequest(entry_id=key, reason="再次冲正"), metadata=admin, timeout=10)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION):  # a reversal is not reversed
        stub.ReverseEntry(pb.ReverseEntryRequest(entry_id=f"rev:{key}", reason="x"), metadata=admin, timeout=10)
    # nothing was edited: the original is still there
    kinds = [e.kind for e in stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(book=pb.BOOK_POINTS), metadata=own,
                                                    timeout=5).entries]
    assert pb.ENTRY_KIND_REVERSAL in kinds and pb.ENTRY_KIND_EARNED in kinds

    # a negative adjustment never takes the balance below zero
    balance = _account(stub, own).points
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="not enough"):
        stub.AdjustPoints(pb.AdjustPointsRequest(account_id=vid, amount=-(balance + 1), reason="违规扣分",
                                                 idempotency_key="too-much"), metadata=admin, timeout=10)
    taken = stub.AdjustPoints(pb.AdjustPointsRequest(account_id=vid, amount=-5, reason="未按时签到扣分",
                                                     idempotency_key="late-1"), metadata=admin, timeout=10)
    again = stub.AdjustPoints(pb.AdjustPointsRequest(account_id=vid, amount=-5, reason="未按时签到扣分",
                                                     idempotency_key="late-1"), metadata=admin, timeout=10)
    assert taken.account.points == balance - 5 and again.entry.entry_id == taken.entry.entry_id
    assert _account(stub, own).points == balance - 5


def test_resident_civilization_points_and_training_hours(module_district, setup, stub, feed):
    tree, volunteer, own, _ = setup
    d = module_district.id
    resident, resident_token = module_district.resident(tree.courtyards[1].unit_id)
    from wenming.ordering.v1 import events_pb2 as ordering
    from wenming.ordering.v1 import types_pb2 as ot
    activity = feed.activity(f"act_{uuid.uuid4().hex[:10]}", tree.courtyards[1], starts_at=dt.datetime.now(dt.UTC))
    order = feed.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=tree.courtyards[1], handling=tree.stations[0],
                       resident_id=resident.resident_id, volunteers=[volunteer.volunteer_id], rating=5)
    feed.send(feed.activity_event(ordering.ActivityAttended(activity=activity, participant_id=resident.resident_id,
                                                            role=ot.PARTICIPANT_ROLE_RESIDENT), d, 5),
              feed.order_event(ordering.OrderRated(order=order, rating=5, comment="很满意"), d, 11),
              feed.training_hours(d, f"ses_{uuid.uuid4().hex[:8]}", volunteer.volunteer_id, 120, tree.stations[0]))
    mine = bearer(resident_token)
    resident_account = wait_until(lambda: (a := _account(stub, mine)).points == 5 + 2 and a, 30)
    assert resident_account.kind == pb.ACCOUNT_KIND_RESIDENT
    vol = wait_until(lambda: (a := _account(stub, own)).training_minutes == 120 and a, 30)
    assert vol.training_minutes == 120


def test_poison_goes_to_the_dlq_with_its_error_and_the_rest_is_applied(module_district, setup, stub, feed, stack):
    tree, volunteer, own, _ = setup
    d, vid = module_district.id, volunteer.volunteer_id
    before = _account(stub, own).verified_minutes
    from wenming.common.v1 import common_pb2
    unknown = common_pb2.EventEnvelope(event_id=f"evt_{uuid.uuid4().hex}", event_type="wenming.ordering.v1.Nope",
                                       district_id=d)
    unknown.payload.type_url = "type.googleapis.com/wenming.ordering.v1.Nope"
    bad_minutes = feed.hours_confirmed(d, feed.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=tree.courtyards[0]),
                                       [(vid, -30, VERIFIED)], tree.stations[0])
    good = feed.hours_confirmed(d, feed.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=tree.courtyards[0]),
                                [(vid, 45, VERIFIED)], tree.stations[0])
    key = b"same-partition-" + uuid.uuid4().hex.encode()
    for value in (b"\x00not a protobuf", unknown.SerializeToString(), bad_minutes["value"], good["value"]):
        feed.send_raw(ORDERING_TOPIC, bytes(value), key=key)
    assert wait_until(lambda: _account(stub, own).verified_minutes == before + 45, 30)

    def dead() -> list[dict]:
        consumer = KafkaConsumer(f"{ORDERING_TOPIC}.dlq", bootstrap_servers=stack.kafka, group_id=None,
                                 auto_offset_reset="earliest", consumer_timeout_ms=3000)
        found = [dict(r.headers) for r in consumer if dict(r.headers).get("consumer_group") == b"points-ledger"]
        consumer.close()
        return found

    errors = wait_until(lambda: (found := [h["error"].decode() for h in dead()]) and
                        any("minutes must be between" in e for e in found) and found, 20)
    assert any("not an EventEnvelope" in e for e in errors)
    assert any("unknown event type" in e for e in errors)
    assert any("hours[0].minutes must be between 1 and 1440 (got -30)" in e for e in errors)
