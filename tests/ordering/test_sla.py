"""四必接: per-district acknowledgement SLAs, escalation by the scheduler when a unit lets its
deadline pass (with the clock moved), and no double escalation with several replicas."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest

from services.common.clock import Clock as ServiceClock
from tests.support.grpc_helpers import expect_error
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import ordering_pb2 as pb

from .support import S
from tests.support.waiting import wait_until

MINUTE = 60


def _policy(world, **minutes) -> pb.OrderPolicy:
    levels = {"courtyard": c.UNIT_LEVEL_COURTYARD, "station": c.UNIT_LEVEL_STATION,
              "institute": c.UNIT_LEVEL_INSTITUTE, "center": c.UNIT_LEVEL_CENTER}
    return world.stub.SetOrderPolicy(pb.SetOrderPolicyRequest(acknowledge=[
        pb.AcknowledgeSla(level=levels[name], minutes=m) for name, m in minutes.items()]),
        metadata=world.as_center(), timeout=10).policy


@pytest.fixture(scope="module")
def world(own_world):
    """This module changes the district's order policy: a world of its own."""
    return own_world


def test_policy_has_defaults_and_only_the_center_changes_it(world):
    policy = world.stub.GetOrderPolicy(pb.GetOrderPolicyRequest(), metadata=world.as_admin(world.courtyards[0]),
                                       timeout=10).policy
    assert policy.defaults and policy.rating_window_days == 7
    assert [(s.level, s.minutes) for s in policy.acknowledge] == [
        (c.UNIT_LEVEL_COURTYARD, 120), (c.UNIT_LEVEL_STATION, 240), (c.UNIT_LEVEL_INSTITUTE, 480),
        (c.UNIT_LEVEL_CENTER, 1440)]
    with expect_error(grpc.StatusCode.PERMISSION_DENIED, contains="center"):
        world.stub.SetOrderPolicy(pb.SetOrderPolicyRequest(rating_window_days=3),
                                  metadata=world.as_admin(world.stations[0]), timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="acknowledge[0].minutes"):
        _policy(world, courtyard=1)
    updated = _policy(world, courtyard=30, station=60, institute=90, center=120)
    assert not updated.defaults and [s.minutes for s in updated.acknowledge] == [30, 60, 90, 120]


def test_an_ignored_order_climbs_level_by_level_and_stays_overdue_at_the_center(world, shifted, ordering_events):
    _policy(world, courtyard=30, station=60, institute=90, center=120)
    yard = world.courtyards[1]
    _, resident = world.resident(yard)
    order_id = world.place(resident, "haircut").order_id
    expected_path = [world.stations[0].unit_id, world.institute.unit_id, world.center.unit_id]
    for minutes, unit_id in zip((30, 60, 90), expected_path, strict=True):
        shifted.advance((minutes + 1) * MINUTE)
        order = wait_until(lambda u=unit_id: (o := world.get(order_id)).current_unit.unit_id == u and o,
                           what=f"automatic escalation to {unit_id}")
        assert order.status == S.ORDER_STATUS_ESCALATED
    assert order.sla_breaches == 3
    escalations = [t for t in order.trail if t.to_status == S.ORDER_STATUS_ESCALATED]
    assert all(t.automatic and t.actor_id == "" and "四必接" in t.reason for t in escalations)

    # nothing above the center: the breach is counted once, the order stays there, overdue
    shifted.advance(121 * MINUTE)
    order = wait_until(lambda: (o := world.get(order_id)).sla_breaches == 4 and o, what="the center's breach")
    assert order.current_unit.unit_id == world.center.unit_id and order.sla_seconds_left < 0
    published = [p for e, p, _ in ordering_events.events(world.district.id, at_least=5, settle=1.5)
                 if e.aggregate_id == order_id]
    events = [p for p in published if isinstance(p, ev.OrderEscalated)]
    assert [(p.from_unit.level, p.to_unit.level, p.automatic) for p in events] == [
        (c.UNIT_LEVEL_COURTYARD, c.UNIT_LEVEL_STATION, True), (c.UNIT_LEVEL_STATION, c.UNIT_LEVEL_INSTITUTE, True),
        (c.UNIT_LEVEL_INSTITUTE, c.UNIT_LEVEL_CENTER, True)]
    overdue = [p for p in published if isinstance(p, ev.OrderOverdue)]
    assert [(p.unit.unit_id, p.allowed_minutes, p.order.status) for p in overdue] == [
        (world.center.unit_id, 120, S.ORDER_STATUS_ESCALATED)]
    assert order.trail[-1].automatic and order.trail[-1].event_type == "wenming.ordering.v1.OrderOverdue"
    # the dashboard's numbers: the order is held (overdue) at the center, the breaches count for
    # the courtyard it came from, and the courtyard no longer holds anything
    center_stats = world.stub.GetOrderStats(pb.GetOrderStatsRequest(), metadata=world.as_center(), timeout=10)
    assert center_stats.overdue == 1 and center_stats.sla_breaches_last_30_days == 4
    assert [(n.status, n.level, n.count) for n in center_stats.in_progress] == [
        (S.ORDER_STATUS_ESCALATED, c.UNIT_LEVEL_CENTER, 1)]
    yard_admin = world.as_admin(yard)
    yard_stats = world.stub.GetOrderStats(pb.GetOrderStatsRequest(), metadata=yard_admin, timeout=10)
    assert (list(yard_stats.in_progress), yard_stats.overdue, yard_stats.sla_breaches_last_30_days) == ([], 0, 4)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        world.stub.GetOrderStats(pb.GetOrderStatsRequest(unit_id=world.center.unit_id), metadata=yard_admin,
                                 timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="unit_id"):
        world.stub.GetOrderStats(pb.GetOrderStatsRequest(unit_id="no such unit!"), metadata=yard_admin, timeout=10)
    # the center still handles it
    acknowledged = world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order_id),
                                               metadata=world.as_center(), timeout=10).order
    assert acknowledged.status == S.ORDER_STATUS_ACKNOWLEDGED


def _reminders(tap, world, order_id: str) -> list:
    """The OrderDeadlineApproaching events of an order that reached the topic (distinct ids)."""
    return list({e.event_id: p for e, p, _ in tap.events(world.district.id)
                 if e.aggregate_id == order_id and isinstance(p, ev.OrderDeadlineApproaching)}.values())


def test_each_unit_is_reminded_once_when_a_fifth_of_its_time_is_left(world, shifted, ordering_events):
    _policy(world, courtyard=30, station=60, institute=90, center=120)
    _, resident = world.resident(world.courtyards[2])
    order_id = world.place(resident, "haircut").order_id

    def reminders() -> list:
        return _reminders(ordering_events, world, order_id)

    shifted.advance(23 * MINUTE)  # 7 of the courtyard's 30 minutes left: more than a fifth
    time.sleep(1.5)  # three scheduler passes
    assert reminders() == []
    shifted.advance(2 * MINUTE)  # 5 left
    first = wait_until(reminders, what="the courtyard's reminder")[0]
    assert first.unit.unit_id == first.order.current_unit.unit_id == world.courtyards[2].unit_id
    assert first.order.status == S.ORDER_STATUS_PLACED
    order = world.get(order_id)
    assert first.due_at == order.acknowledge_due_at and 0 < order.sla_seconds_left <= 5 * MINUTE
    assert not any(t.event_type.endswith("OrderDeadlineApproaching") for t in order.trail)  # a notice, not a step
    shifted.advance(2 * MINUTE)
    time.sleep(1.5)
    assert len(reminders()) == 1  # once per unit

    # the station it climbs to gets its own reminder, 48 of its 60 minutes later
    shifted.advance(4 * MINUTE)
    wait_until(lambda: world.get(order_id).current_unit.unit_id == world.stations[1].unit_id, what="escalation")
    shifted.advance(47 * MINUTE)
    time.sleep(1.5)
    assert len(reminders()) == 1
    shifted.advance(2 * MINUTE)
    second = wait_until(lambda: (found := reminders())[1:] and found[1], what="the station's reminder")
    assert second.unit.unit_id == world.stations[1].unit_id and second.order.status == S.ORDER_STATUS_ESCALATED

    # an order acknowledged in time is never reminded
    acknowledged = world.place(resident, "haircut").order_id
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=acknowledged),
                                metadata=world.as_admin(world.courtyards[2]), timeout=10)
    shifted.advance(29 * MINUTE)
    time.sleep(1.5)
    assert _reminders(ordering_events, world, acknowledged) == []


@pytest.mark.slow
def test_two_replicas_and_racing_passes_escalate_each_order_once(world, replica, ordering_env, shifted,
                                                                 ordering_events, monkeypatch):
    # a second ordering process on the same database and clock: both run the scheduler
    second = replica()
    _policy(world, courtyard=30, station=60)
    _, resident = world.resident(world.courtyards[2])
    orders = [world.place(resident, "haircut") for _ in range(8)]

    # besides the replicas' leased jobs, three passes of the same job race each other here,
    # bypassing the lease: only the conditional updates stand between them and a double escalation
    from services.common import mongo
    from services.common.config import load_settings
    from services.ordering.app import build, extra_settings

    settings = load_settings("ordering", environ=second.env, extra=extra_settings)
    domain = build(settings, mongo.connect(settings.mongodb_uri, settings.mongodb_database, "ordering-test"))
    monkeypatch.setattr("services.ordering.orders.clock", ServiceClock(str(Path(ordering_env["CLOCK_OFFSET_FILE"]))))
    done = threading.Event()
    passes = []

    def race() -> None:
        while not done.wait(0.05):
            passes.append(domain.orders.run_sla())

    racers = [threading.Thread(target=race) for _ in range(2)]
    for racer in racers:
        racer.start()
    try:
        shifted.advance(31 * MINUTE)  # past the courtyard's 30 minutes, far from the station's 60
        ids = {o.order_id for o in orders}
        wait_until(lambda: sum(o.status == S.ORDER_STATUS_ESCALATED for o in world.stub.ListMyOrders(
            pb.ListMyOrdersRequest(), metadata=resident, timeout=10).orders if o.order_id in ids) == len(ids),
            interval=0.5, what="every order escalated")
        shifted.advance(49 * MINUTE)  # 11 of the station's 60 minutes left: the station is reminded
        wait_until(lambda: world.db.orders.count_documents({"_id": {"$in": list(ids)}, "warn_at": None}) == len(ids),
                   interval=0.5, what="every station reminded")
    finally:
        done.set()
        for racer in racers:
            racer.join(10)
    assert passes  # the racing passes ran alongside the replicas
    # two relays may both publish one pending event (at-least-once); consumers dedupe by event id,
    # so what counts is how many distinct escalations exist
    published = ordering_events.events(world.district.id, at_least=24, settle=3.0)
    escalations = {e.event_id: e for e, p, _ in published if e.aggregate_id in ids and isinstance(p, ev.OrderEscalated)}
    assert Counter(e.aggregate_id for e in escalations.values()) == Counter({order_id: 1 for order_id in ids})
    assert all(e.aggregate_version == 2 for e in escalations.values())
    reminders = {e.event_id: e for e, p, _ in published
                 if e.aggregate_id in ids and isinstance(p, ev.OrderDeadlineApproaching)}
    assert Counter(e.aggregate_id for e in reminders.values()) == Counter({order_id: 1 for order_id in ids})
    for order in orders:
        trail = world.get(order.order_id).trail
        assert sum(1 for t in trail if t.to_status == S.ORDER_STATUS_ESCALATED) == 1


def test_the_escalation_names_the_deadline_the_order_was_given(world, shifted):
    """The trail and the event name the order's own deadline, even after the policy changed."""
    _policy(world, courtyard=5, station=60)
    _, resident = world.resident(world.courtyards[0])
    order_id = world.place(resident, "haircut").order_id
    _policy(world, courtyard=120, station=60)  # later orders get 120 minutes; this one had 5
    shifted.advance(6 * MINUTE)
    order = wait_until(lambda: (o := world.get(order_id)).status == S.ORDER_STATUS_ESCALATED and o,
                       what="automatic escalation after 5 minutes")
    (escalation,) = [t for t in order.trail if t.to_status == S.ORDER_STATUS_ESCALATED]
    assert "未在5分钟内受理" in escalation.reason and escalation.automatic, escalation.reason
