"""指挥调度 trends: orders placed in a subtree by China-time day or month, and the funnel
点单 → 受理 → 派单 → 接单 → 完成 → 评单 with the average time of each stage; the clock is moved back
so the orders are placed on different days."""

from __future__ import annotations

import datetime as dt
import itertools

import grpc
import pytest

from services.common.clock import CHINA
from services.common.events import to_timestamp
from tests.support.grpc_helpers import expect_error
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb

MINUTE, DAY = 60, 24 * 3600
G = pb.TrendGranularity


@pytest.fixture(scope="module")
def world(own_world):
    """Counts every order of a subtree: a world of its own."""
    return own_world


@pytest.fixture(scope="module")
def history(world, clock):
    """Station 0's orders: one served, rated and one cancelled two days ago, one put on the claim
    list yesterday, one waiting today; and one of station 1 today."""
    yard = world.courtyards[0]
    admin = world.as_admin(yard)
    _, resident = world.resident(yard, name="周大爷")
    barber = world.volunteer(yard, skills=[c.SKILL_HAIRCUT], name="理发师")
    try:
        clock.set(-2 * DAY)
        served = world.place(resident, "haircut")
        clock.set(-2 * DAY + 10 * MINUTE)
        world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=served.order_id), metadata=admin, timeout=10)
        clock.set(-2 * DAY + 25 * MINUTE)
        world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=served.order_id, volunteer_ids=[barber.id]),
                                 metadata=admin, timeout=10)
        clock.set(-2 * DAY + 30 * MINUTE)
        world.stub.AcceptOrder(pb.AcceptOrderRequest(order_id=served.order_id), metadata=barber.token, timeout=10)
        world.stub.CheckInOrder(pb.CheckInOrderRequest(order_id=served.order_id, code=world.code(served)),
                                metadata=barber.token, timeout=10)
        clock.set(-2 * DAY + 80 * MINUTE)
        world.stub.CheckOutOrder(pb.CheckOutOrderRequest(order_id=served.order_id, code=world.code(served),
                                                         report="理发完成"), metadata=barber.token, timeout=10)
        world.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(order_id=served.order_id), metadata=admin,
                                     timeout=10)
        clock.set(-2 * DAY + 140 * MINUTE)
        world.stub.RateOrder(pb.RateOrderRequest(order_id=served.order_id, rating=5), metadata=resident, timeout=10)
        cancelled = world.place(resident, "haircut")
        world.stub.CancelOrder(pb.CancelOrderRequest(order_id=cancelled.order_id), metadata=resident, timeout=10)

        clock.set(-1 * DAY)
        opened = world.place(resident, "haircut")
        clock.set(-1 * DAY + 20 * MINUTE)
        world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=opened.order_id), metadata=admin, timeout=10)
        world.stub.OpenOrder(pb.OpenOrderRequest(order_id=opened.order_id), metadata=admin, timeout=10)
    finally:
        clock.set(0)
    waiting = world.place(resident, "haircut")
    _, elsewhere = world.resident(world.courtyards[2])
    world.place(elsewhere, "haircut")
    return [served, cancelled, opened, waiting]


def _trends(world, token, **fields) -> pb.GetOrderTrendsResponse:
    return world.stub.GetOrderTrends(pb.GetOrderTrendsRequest(**fields), metadata=token, timeout=10)


def _day(order: pb.Order) -> dt.datetime:
    return order.placed_at.ToDatetime(dt.UTC).astimezone(CHINA).replace(hour=0, minute=0, second=0, microsecond=0)


def test_days_and_the_funnel_of_a_station(world, history):
    served, cancelled, opened, waiting = history
    reply = _trends(world, world.as_admin(world.stations[0]))
    assert len(reply.buckets) == 30  # the last 30 China days, today included, oldest first
    starts = [b.start.ToDatetime(dt.UTC).astimezone(CHINA) for b in reply.buckets]
    assert starts[-1] == _day(waiting) and all(s.hour == 0 and s.minute == 0 for s in starts)
    assert all((b - a).days == 1 for a, b in itertools.pairwise(starts))
    by_day = {s: (b.placed, b.dispatched, b.completed, b.rated, b.cancelled)
              for s, b in zip(starts, reply.buckets, strict=True)}
    # (placed, dispatched, completed, rated, cancelled) by the China day each was placed on
    expected: dict = {}
    for order, counts in zip(history, [(1, 1, 1, 1, 0), (1, 0, 0, 0, 1), (1, 1, 0, 0, 0), (1, 0, 0, 0, 0)], strict=True):
        expected[_day(order)] = tuple(a + b for a, b in zip(expected.get(_day(order), (0,) * 5), counts, strict=True))
    assert {day: by_day[day] for day in expected} == expected  # station 1's order is not counted here
    assert sum(b.placed for b in reply.buckets) == 4

    funnel = [(s.stage, s.label, s.orders) for s in reply.funnel]
    assert funnel == [("placed", "点单", 4), ("acknowledged", "受理", 2), ("dispatched", "派单", 2),
                      ("accepted", "接单", 1), ("completed", "完成", 1), ("rated", "评单", 1)]
    seconds = {s.stage: s.avg_seconds_from_previous for s in reply.funnel}
    assert seconds["placed"] == 0
    assert abs(seconds["acknowledged"] - 15 * MINUTE) < 10      # 10 and 20 minutes
    assert abs(seconds["dispatched"] - 15 * MINUTE // 2) < 10    # 15 minutes, and opened at once
    assert abs(seconds["accepted"] - 5 * MINUTE) < 10
    assert abs(seconds["completed"] - 50 * MINUTE) < 10
    assert abs(seconds["rated"] - 60 * MINUTE) < 10

    # the center sees the district; months, the last 12 by default
    months = _trends(world, world.as_center(), granularity=G.TREND_GRANULARITY_MONTH)
    assert len(months.buckets) == 12 and sum(b.placed for b in months.buckets) == 5
    first = months.buckets[0].start.ToDatetime(dt.UTC).astimezone(CHINA)
    assert first.day == 1 and first.hour == 0


def test_an_explicit_window(world, history):
    served, cancelled, opened, waiting = history
    admin = world.as_admin(world.courtyards[0])  # a courtyard: its own unit by default
    reply = _trends(world, admin, **{"from": to_timestamp(_day(opened)), "to": to_timestamp(_day(waiting))})
    # after 21:40 China time the order cancelled 2 days + 140 minutes ago was placed yesterday too
    yesterday = sum(1 for order in (served, cancelled, opened) if _day(order) == _day(opened))
    assert [(b.placed, b.dispatched) for b in reply.buckets] == [(yesterday, 1)]  # today is outside [from, to)
    # a window starting inside a day still has whole-day buckets, counting what was placed from then
    after = opened.placed_at.ToDatetime(dt.UTC) + dt.timedelta(seconds=1)
    reply = _trends(world, admin, **{"from": to_timestamp(after)})
    assert [b.placed for b in reply.buckets] == [0, 1] and reply.buckets[0].start.ToDatetime(dt.UTC) == _day(opened)


def test_bad_windows_and_other_subtrees_are_refused(world, history):
    station0, station1 = world.as_admin(world.stations[0]), world.as_admin(world.stations[1])
    now = dt.datetime.now(dt.UTC)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="to"):
        _trends(world, station0, **{"from": to_timestamp(now), "to": to_timestamp(now - dt.timedelta(days=1))})
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="from", contains="92"):
        _trends(world, station0, **{"from": to_timestamp(now - dt.timedelta(days=93))})
    assert len(_trends(world, station0, **{"from": to_timestamp(now - dt.timedelta(days=91))}).buckets) == 92
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="from"):
        _trends(world, station0, granularity=G.TREND_GRANULARITY_MONTH,
                **{"from": to_timestamp(now - dt.timedelta(days=365 * 8))})
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="granularity"):
        _trends(world, station0, granularity=7)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="unit_id"):
        _trends(world, station0, unit_id="not an id!")

    # another station's subtree, a courtyard's parent, people who are not staff
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        _trends(world, station1, unit_id=world.stations[0].unit_id)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        _trends(world, world.as_admin(world.courtyards[0]), unit_id=world.stations[0].unit_id)
    _, resident = world.resident(world.courtyards[0])
    volunteer = world.volunteer(world.courtyards[0])
    for token in (resident, volunteer.token):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            _trends(world, token)
