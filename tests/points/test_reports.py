"""Leaderboards by subtree and period, the 三级创建 grade's loop lines (GetUnitGrade) measured from
ordering's events over the subtree — and the deprecated GetUnitScorecard answering that same grade —
and points expiring when the clock passes their validity — over the real broker."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from tests.points.support import run_points
from tests.support.grpc_helpers import or_not_found
from tests.support.grpc_helpers import bearer
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import events_pb2 as ordering
from wenming.ordering.v1 import types_pb2 as ot
from services.points.grading_rules import GRADE_LABEL
from wenming.points.v1 import points_pb2 as pb

VERIFIED = c.HOURS_SOURCE_VERIFIED
LOOP_AND_ACTIVITIES = (pb.GRADING_CRITERION_RESPONSE, pb.GRADING_CRITERION_COMPLETION, pb.GRADING_CRITERION_SATISFACTION,
                       pb.GRADING_CRITERION_ACTIVITIES)
OS = ot.OrderStatus


@pytest.fixture(scope="module")
def points(stack, registration, feed, clock_file):
    """This module's points process runs on a clock the tests can move."""
    yield from run_points(stack, POINTS_JOB_INTERVAL_SECONDS="1", CLOCK_OFFSET_FILE=str(clock_file))


@pytest.fixture(scope="module")
def tree(module_district, points, stub):
    built = module_district.small_tree()
    # points learns units from registration's events: every one is known before a test reads it
    admin = module_district.as_center()

    def known(unit) -> bool:
        request = pb.GetLeaderboardRequest(unit_id=unit.unit_id, metric=pb.LEADERBOARD_METRIC_VERIFIED_HOURS)
        return or_not_found(lambda: stub.GetLeaderboard(request, metadata=admin, timeout=5)) is not None

    for unit in (*built.stations, *built.courtyards):
        assert wait_until(lambda: known(unit), 60), f"points never heard of {unit.name}"  # noqa: B023 (waited here)
    return built


def test_leaderboard_ranks_verified_hours_inside_the_subtree(module_district, tree, stub, feed):
    d = module_district.id
    named = module_district.volunteer(tree.courtyards[0].unit_id, name="王建国")
    a, b = named.volunteer_id, f"vol_lb{uuid.uuid4().hex[:6]}"
    far = f"vol_lb{uuid.uuid4().hex[:6]}"
    events = []
    for volunteer, minutes, station, yard in ((a, 300, 0, 0), (b, 120, 0, 1), (a, 60, 0, 0), (far, 900, 1, 2)):
        order = feed.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=tree.courtyards[yard],
                           handling=tree.stations[station])
        events.append(feed.hours_confirmed(d, order, [(volunteer, minutes, VERIFIED)], tree.stations[station]))
    feed.send(*events)
    admin = module_district.as_center()

    def board(unit):
        return stub.GetLeaderboard(pb.GetLeaderboardRequest(unit_id=unit.unit_id,
                                                            metric=pb.LEADERBOARD_METRIC_VERIFIED_HOURS),
                                   metadata=admin, timeout=5).rows

    rows = wait_until(lambda: (r := board(tree.stations[0])) and [x.value for x in r] == [360, 120] and r, 30)
    assert [(r.rank, r.account_id) for r in rows] == [(1, a), (2, b)]
    assert wait_until(lambda: board(tree.stations[0])[0].volunteer_number == named.volunteer_number, 20)
    assert board(tree.stations[0])[0].display_name == "王*国"
    assert [r.account_id for r in board(tree.institute)] == [far, a, b]
    last_year = stub.GetLeaderboard(pb.GetLeaderboardRequest(
        unit_id=tree.institute.unit_id, metric=pb.LEADERBOARD_METRIC_VERIFIED_HOURS,
        period=pb.Period(year=dt.date.today().year - 1)), metadata=admin, timeout=5).rows
    assert list(last_year) == []


def test_the_grade_measures_activities_response_completion_and_satisfaction_of_the_subtree(module_district, tree, stub,
                                                                                           feed):
    d, now = module_district.id, dt.datetime.now(dt.UTC)
    good, bad = tree.stations[0], tree.stations[1]
    events = []
    placed = now - dt.timedelta(hours=3)
    for _ in range(2):  # station 0: acknowledged in 10 min, done in 2 h, rated 5
        def snap(status, oid=f"ord_{uuid.uuid4().hex[:12]}", **kw):
            return feed.order(oid, courtyard=tree.courtyards[0], handling=good, status=status, placed_at=placed, **kw)
        events += [feed.order_event(ordering.OrderPlaced(order=snap(OS.ORDER_STATUS_PLACED)), d, 1),
                   feed.order_event(ordering.OrderAcknowledged(order=snap(OS.ORDER_STATUS_ACKNOWLEDGED),
                                                               unit_id=good.unit_id, seconds_to_acknowledge=600), d, 2),
                   feed.order_event(ordering.OrderCompleted(order=snap(OS.ORDER_STATUS_COMPLETED,
                                                                       completed_at=placed + dt.timedelta(hours=2))),
                                    d, 3),
                   feed.order_event(ordering.OrderRated(order=snap(OS.ORDER_STATUS_RATED, rating=5,
                                                                   completed_at=placed + dt.timedelta(hours=2)),
                                                        rating=5), d, 4)]
    activity = feed.activity(f"act_{uuid.uuid4().hex[:10]}", tree.courtyards[1], starts_at=now)
    events.append(feed.activity_event(ordering.ActivityCompleted(activity=activity, recorded_by=feed_ref(good),
                                                                 residents_attended=20), d, 3))
    # station 1: an order acknowledged after two days and never completed; no activity this month
    oid = f"ord_{uuid.uuid4().hex[:12]}"
    late = feed.order(oid, courtyard=tree.courtyards[2], handling=bad, status=OS.ORDER_STATUS_ACKNOWLEDGED,
                      placed_at=now - dt.timedelta(days=2))
    events += [feed.order_event(ordering.OrderAcknowledged(order=late, unit_id=bad.unit_id,
                                                           seconds_to_acknowledge=2 * 86400), d, 2)]
    feed.send(*events)
    china = now.astimezone(dt.timezone(dt.timedelta(hours=8)))
    period = pb.Period(year=china.year, month=china.month)

    def grade(unit) -> pb.UnitGrade:
        return stub.GetUnitGrade(pb.GetUnitGradeRequest(unit_id=unit.unit_id, period=period),
                                 metadata=bearer(tree.admins[unit.unit_id]), timeout=5).grade

    def lines(g: pb.UnitGrade) -> dict[int, tuple]:  # criterion: (value, applicable, met, records_total)
        return {line.criterion: (line.value, line.applicable, line.met, line.records_total) for line in g.lines
                if line.criterion in LOOP_AND_ACTIVITIES}

    C = pb.GradingCriterion
    top = wait_until(lambda: (g := grade(good)) and lines(g)[C.GRADING_CRITERION_SATISFACTION][3] == 2
                     and lines(g)[C.GRADING_CRITERION_ACTIVITIES][0] == 1 and g, 30)
    assert lines(top) == {  # acknowledged in 10 min, 2 of 2 orders done, rated 5: every loop line met
        C.GRADING_CRITERION_RESPONSE: (10, True, True, 2), C.GRADING_CRITERION_COMPLETION: (100, True, True, 2),
        C.GRADING_CRITERION_SATISFACTION: (500, True, True, 2), C.GRADING_CRITERION_ACTIVITIES: (1, True, False, 1)}
    activities = next(line for line in top.lines if line.criterion == C.GRADING_CRITERION_ACTIVITIES)
    assert [r.record_id for r in activities.records] == [activity.activity_id]
    assert top.score == sum(line.points for line in top.lines) and top.grade_label == GRADE_LABEL[top.grade]
    low = wait_until(lambda: (g := grade(bad)) and lines(g)[C.GRADING_CRITERION_RESPONSE][3] == 1 and g, 30)
    assert lines(low) == {  # two days to acknowledge, never done, nothing rated (counted as met), no activity
        C.GRADING_CRITERION_RESPONSE: (2880, True, False, 1), C.GRADING_CRITERION_COMPLETION: (0, True, False, 1),
        C.GRADING_CRITERION_SATISFACTION: (0, False, True, 0), C.GRADING_CRITERION_ACTIVITIES: (0, True, False, 0)}
    assert (low.grade, low.grade_label) == (pb.SCORECARD_GRADE_BUILDING, "创建级") and low.score < top.score
    whole = lines(grade(tree.institute))  # the subtree: both stations' orders and the activity
    assert (whole[C.GRADING_CRITERION_COMPLETION][3], whole[C.GRADING_CRITERION_RESPONSE][3],
            whole[C.GRADING_CRITERION_ACTIVITIES][0]) == (3, 3, 1)

    # the deprecated GetUnitScorecard answers the same grade, with the loop's figures it was measured from
    card = stub.GetUnitScorecard(pb.GetUnitScorecardRequest(unit_id=good.unit_id, period=period),
                                 metadata=bearer(tree.admins[good.unit_id]), timeout=5).scorecard
    assert (card.grade, card.grade_label) == (top.grade, top.grade_label)
    assert (card.stations, card.station_months, card.station_months_with_activity) == (1, 1, 1)
    assert (card.orders, card.orders_completed, card.acknowledgements) == (2, 2, 2)
    assert card.avg_ack_seconds == 600 and card.avg_completion_seconds == 7200 and card.satisfaction_centi == 500
    assert [(ch.value, ch.meets_standard) for ch in card.checks] == [(line.value, line.met) for line in top.lines]


def feed_ref(unit) -> c.UnitRef:
    return c.UnitRef(unit_id=unit.unit_id, level=unit.level, name=unit.name, path=list(unit.path))


def test_points_expire_after_their_validity_earliest_first(module_district, tree, stub, feed, clock_file):
    d, center = module_district.id, module_district.as_center()
    rules = stub.GetPointRules(pb.GetPointRulesRequest(), metadata=center, timeout=5).rules
    rules.points_validity_years = 1  # valid through 31 December of the year earned
    stub.SetPointRules(pb.SetPointRulesRequest(rules=rules, expected_version=rules.version), metadata=center, timeout=5)
    volunteer = module_district.volunteer(tree.courtyards[0].unit_id)
    vid, admin = volunteer.volunteer_id, bearer(tree.admins[tree.stations[0].unit_id])
    order = feed.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=tree.courtyards[0], handling=tree.stations[0])
    feed.send(feed.hours_confirmed(d, order, [(vid, 600, VERIFIED)], tree.stations[0]))  # 100 points

    def account():
        return stub.GetAccount(pb.GetAccountRequest(account_id=vid), metadata=admin, timeout=5).account

    assert wait_until(lambda: _quiet(account) and account().points == 100, 40)
    expiry = account().next_points_expiry.ToDatetime(dt.UTC)
    china_new_year = dt.datetime(dt.datetime.now(dt.UTC).year + 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert expiry == china_new_year.astimezone(dt.UTC).replace(tzinfo=dt.UTC)
    stub.AdjustPoints(pb.AdjustPointsRequest(account_id=vid, amount=-30, reason="兑换前扣减", idempotency_key="spend"),
                      metadata=admin, timeout=10)
    try:
        clock_file.write_text(str((expiry - dt.datetime.now(dt.UTC)).total_seconds() + 86400))
        # the expiry posting and the account's next expiry date are two steps of one job pass
        expired = wait_until(lambda: (a := account()).points == 0 and a.next_points_expiry.seconds == 0 and a, 30)
        assert expired
        entries = stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(account_id=vid, book=pb.BOOK_POINTS),
                                         metadata=admin, timeout=5).entries
        assert [(e.kind, e.amount) for e in entries if e.kind == pb.ENTRY_KIND_EXPIRY] == [(pb.ENTRY_KIND_EXPIRY, -70)]
        audit = stub.AuditAccount(pb.AuditAccountRequest(account_id=vid), metadata=admin, timeout=5)
        assert audit.consistent
    finally:
        clock_file.write_text("0")


def _quiet(account) -> bool:
    try:
        account()
        return True
    except Exception:  # not yet known to points (registration's event on its way)
        return False
