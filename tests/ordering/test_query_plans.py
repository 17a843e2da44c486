"""Every list, the dashboard numbers and the calendar read through indexes: the queries the
domain really sends (run in-process on the test database, captured) are explained by the
server, and none may read a whole collection (tests/support/plans.py). A data shape that stops
reaching an index — a nested filter, a range, a key that no longer leads its index — fails here
long before a district notices its queue taking seconds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from services.common.auth import TokenVerifier
from services.common.config import load_settings
from services.ordering.app import build, extra_settings
from services.common.events import to_timestamp
from tests.support.plans import captured_finds, connect_monitored, full_scans, plan
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

from .support import S


@pytest.fixture(scope="module")
def domain(stack, ordering_proc):
    settings = load_settings("ordering", environ=ordering_proc.env, extra=extra_settings)
    db = connect_monitored(settings.mongodb_uri, settings.mongodb_database)
    return build(settings, db), db


@pytest.fixture(scope="module")
def verifier(stack) -> TokenVerifier:
    return TokenVerifier(Path(stack.secrets["JWT_PUBLIC_KEY_FILE"]).read_text())


def _principal(verifier, metadata):
    return verifier.verify(dict(metadata)["authorization"].removeprefix("Bearer "))[0]


@pytest.fixture(scope="module")
def scene(world, clock):
    """Orders waiting, dispatched, open for claims and ended at a courtyard, one climbed to its
    station, one placed two days ago; an activity on the calendar."""
    yard = world.courtyards[0]
    _, resident = world.resident(yard)
    try:
        clock.set(-2 * 24 * 3600)
        world.place(resident, "haircut")
    finally:
        clock.set(0)
    barber = world.volunteer(yard, skills=[c.SKILL_HAIRCUT])
    world.place(resident, "haircut")
    dispatched = world.accepted_order(resident, barber)
    opened = world.place(resident, "haircut")
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=opened.order_id), metadata=world.holder(opened),
                                timeout=10)
    world.stub.OpenOrder(pb.OpenOrderRequest(order_id=opened.order_id), metadata=world.holder(opened), timeout=10)
    cancelled = world.place(resident, "haircut")
    world.stub.CancelOrder(pb.CancelOrderRequest(order_id=cancelled.order_id), metadata=resident, timeout=10)
    world.place(resident, "repair")  # held by the station
    starts = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    activity = world.stub.PlanActivity(pb.PlanActivityRequest(
        unit_id=yard.unit_id, title="小院讲堂", category=c.SERVICE_CATEGORY_LECTURE_THEORY,
        starts_at=to_timestamp(starts), ends_at=to_timestamp(starts + dt.timedelta(hours=1)), resident_capacity=30),
        metadata=world.as_admin(yard), timeout=10).activity
    world.stub.PublishActivity(pb.PublishActivityRequest(activity_id=activity.activity_id),
                               metadata=world.as_admin(yard), timeout=10)
    return {"yard": yard, "resident": resident, "barber": barber, "dispatched": dispatched, "opened": opened}


def _check(db, finds, expected: dict[str, str]) -> None:
    """No find read a whole collection, and each expected collection was read (among others)
    through an index on the named key."""
    assert finds, "the call sent no query"
    assert not full_scans(db, finds), [f for f in full_scans(db, finds)]
    for collection, field in expected.items():
        used = [index for f in finds if f.collection == collection for index in plan(db, f)[0]]
        assert any(field in index for index in used), (collection, used)


def test_queues_read_their_unit_keys(domain, world, scene, verifier):
    (ordering, db), yard = domain, scene["yard"]
    admin = _principal(verifier, world.as_admin(yard))
    center = _principal(verifier, world.as_center())
    for principal, request, key in [
        (admin, pb.ListUnitQueueRequest(), "own"),
        (admin, pb.ListUnitQueueRequest(statuses=[S.ORDER_STATUS_CANCELLED, S.ORDER_STATUS_OPEN]), "own"),
        (center, pb.ListUnitQueueRequest(include_subtree=True), "in0"),
        (center, pb.ListUnitQueueRequest(include_subtree=True, level=c.UNIT_LEVEL_STATION), "in0"),
    ]:
        with captured_finds() as finds:
            orders, _ = ordering.queries.unit_queue(principal, request)
        assert orders
        _check(db, finds, {"order_index": key, "orders": "_id"})


def test_residents_and_volunteers_lists_read_their_keys(domain, world, scene, verifier):
    ordering, db = domain
    resident = _principal(verifier, scene["resident"])
    barber = _principal(verifier, scene["barber"].token)
    with captured_finds() as finds:
        mine, _ = ordering.queries.my_orders(resident, pb.ListMyOrdersRequest())
    assert len(mine) == 6
    _check(db, finds, {"order_index": "mine", "orders": "_id"})
    with captured_finds() as finds:
        tasks, _ = ordering.queries.my_tasks(barber, pb.ListMyTasksRequest())
    assert [o.id for o in tasks] == [scene["dispatched"].order_id]
    _check(db, finds, {"order_tasks": "k", "order_index": "_id"})
    with captured_finds() as finds:
        claimable, _ = ordering.queries.claimable(barber, pb.ListClaimableOrdersRequest())
    assert scene["opened"].order_id in {o.id for o in claimable}
    _check(db, finds, {"order_index": "own"})


def test_dashboard_numbers_and_trends_read_keys_and_roll_ups(domain, world, scene, verifier):
    ordering, db = domain
    center = _principal(verifier, world.as_center())
    station = _principal(verifier, world.as_admin(world.stations[0]))
    with captured_finds() as finds:
        stats = ordering.queries.stats(center, "")
    assert sum(stats.in_progress.values()) >= 4
    _check(db, finds, {"order_index": "in0"})
    ordering.trends.roll_up()  # what the job does: the center's days now come from roll-ups
    for principal, granularity, key in [(center, pb.TREND_GRANULARITY_DAY, "og0"),
                                        (center, pb.TREND_GRANULARITY_MONTH, "og0"),
                                        (station, pb.TREND_GRANULARITY_DAY, "og2")]:
        with captured_finds() as finds:
            trends = ordering.trends.trends(principal, pb.GetOrderTrendsRequest(granularity=granularity))
        assert sum(b.placed for b in trends.buckets) >= 5
        _check(db, finds, {"order_trends": "_id"} if principal is center else {"order_index": key})


def test_the_calendar_reads_its_unit_keys(domain, world, scene, verifier):
    ordering, db = domain
    yard = scene["yard"]
    now = dt.datetime.now(dt.UTC)
    for principal, request, key in [
        (_principal(verifier, scene["resident"]), pb.ListActivitiesRequest(), "own"),
        (_principal(verifier, scene["resident"]), pb.ListActivitiesRequest(
            starts_from=to_timestamp(now), starts_before=to_timestamp(now + dt.timedelta(days=30))), "own"),
        (_principal(verifier, world.as_center()), pb.ListActivitiesRequest(subtree=True), "in0"),
        (_principal(verifier, world.as_admin(yard)), pb.ListActivitiesRequest(subtree=True), "in3"),
    ]:
        with captured_finds() as finds:
            activities, _ = ordering.activities.list(principal, request)
        assert activities
        _check(db, finds, {"activity_index": key, "activities": "_id"})


def test_credit_lists_and_standings_read_their_keys(domain, world, scene, verifier):
    """A volunteer's incidents and the dispatcher's standings by `volunteer_key`, an admin's by
    the district and `scope` (docs/ordering.md: that one is bounded by the district's incidents)."""
    ordering, db = domain
    barber, yard = scene["barber"], scene["yard"]
    world.stub.RecordCreditIncident(pb.RecordCreditIncidentRequest(
        volunteer_id=barber.id, kind=types_pb2.CREDIT_INCIDENT_KIND_NO_SHOW, reason="约定上门未到",
        order_id=scene["dispatched"].order_id, idempotency_key="plans-1"), metadata=world.as_admin(yard), timeout=10)
    volunteer, admin = _principal(verifier, barber.token), _principal(verifier, world.as_admin(yard))
    for principal, request, key in [
        (volunteer, pb.ListCreditIncidentsRequest(), "volunteer_key"),
        (admin, pb.ListCreditIncidentsRequest(statuses=[types_pb2.CREDIT_INCIDENT_STATUS_STANDING]), "scope"),
    ]:
        with captured_finds() as finds:
            incidents, _, _ = ordering.credit.list_for(principal, request)
        assert incidents
        _check(db, finds, {"credit_incidents": key})
    with captured_finds() as finds:
        standings = ordering.credit.standings(world.district.id, [barber.id])
    assert standings[barber.id].no_shows == 1
    _check(db, finds, {"credit_incidents": "volunteer_key"})
