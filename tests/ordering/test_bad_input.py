"""Bad input and moves out of order: the right code, the field named, and nothing written —
no document, no version bump, no event."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tests.support.grpc_helpers import expect_error
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb

from .support import S

INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


def _stored(db, district_id: str) -> dict:
    """Every aggregate of the district with its version: any write shows here."""
    return {name: sorted((d["_id"], d["version"]) for d in db[name].find({"district_id": district_id},
                                                                         {"version": 1}))
            for name in ("orders", "activities", "menu_items")}


@pytest.fixture
def unchanged(world, ordering_events):
    """Asserts, after the test's refusals, that nothing was stored and nothing published."""
    before = _stored(world.db, world.district.id)
    seen = len(ordering_events.events(world.district.id, timeout=0.5))
    yield
    assert _stored(world.db, world.district.id) == before
    assert len(ordering_events.events(world.district.id, timeout=0.5, settle=1.0)) == seen


def _ts(delta: dt.timedelta) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt.datetime.now(dt.UTC) + delta)
    return ts


@pytest.fixture(scope="module")
def resident(world):
    return world.resident(world.courtyards[0])[1]


@pytest.fixture(scope="module")
def barber(world):
    return world.volunteer(world.courtyards[0], skills=[c.SKILL_HAIRCUT])


def test_placing_refuses_unknown_items_and_bad_fields(world, resident, unchanged):
    with expect_error(grpc.StatusCode.NOT_FOUND, contains="item_doesnotexist"):
        world.stub.PlaceOrder(pb.PlaceOrderRequest(item_id="item_doesnotexist"), metadata=resident, timeout=10)
    with expect_error(INVALID, field="item_id"):
        world.stub.PlaceOrder(pb.PlaceOrderRequest(item_id=""), metadata=resident, timeout=10)
    with expect_error(INVALID, field="note"):
        world.place(resident, note="长" * 501)
    with expect_error(INVALID, field="wanted_at"):
        world.place(resident, wanted_at=_ts(-dt.timedelta(days=2)))
    with expect_error(INVALID, field="resident_id"):  # staff must say for whom
        world.place(world.as_admin(world.courtyards[0]))
    with expect_error(INVALID, field="item_id"):  # an item or a wish, not both
        world.place(resident, wish="想请人帮忙修自行车")
    with expect_error(INVALID, field="wish"):
        world.stub.PlaceOrder(pb.PlaceOrderRequest(wish="修" * 101), metadata=resident, timeout=10)
    with expect_error(INVALID, field="contact_phone"):
        world.place(resident, contact_phone="12345")
    with expect_error(INVALID, field="address"):
        world.place(resident, address="楼" * 101)


def test_rating_outside_one_to_five_is_refused(world, resident, barber, shifted):
    order = world.served_order(resident, barber, shifted)
    world.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(order_id=order.order_id), metadata=world.holder(order),
                                 timeout=10)
    before = _stored(world.db, world.district.id)
    for rating in (0, 6, -1):
        with expect_error(INVALID, field="rating"):
            world.stub.RateOrder(pb.RateOrderRequest(order_id=order.order_id, rating=rating), metadata=resident,
                                 timeout=10)
    with expect_error(INVALID, field="comment"):
        world.stub.RateOrder(pb.RateOrderRequest(order_id=order.order_id, rating=5, comment="好" * 501),
                             metadata=resident, timeout=10)
    assert _stored(world.db, world.district.id) == before


def test_forged_and_expired_check_in_codes_are_refused(world, resident, barber, shifted):
    order = world.accepted_order(resident, barber)
    code = world.code(order)
    before = _stored(world.db, world.district.id)
    forged = "A" * len(code) if code != "A" * len(code) else "B" * len(code)
    for wrong in (forged, code + "X"):
        with expect_error(INVALID, field="code"):
            world.stub.CheckInOrder(pb.CheckInOrderRequest(order_id=order.order_id, code=wrong),
                                    metadata=barber.token, timeout=10)
    # the code of another order does not open this one
    other = world.accepted_order(resident, barber)
    before = _stored(world.db, world.district.id)
    with expect_error(INVALID, field="code"):
        world.stub.CheckInOrder(pb.CheckInOrderRequest(order_id=order.order_id, code=world.code(other)),
                                metadata=barber.token, timeout=10)
    shifted.advance(3 * 60)  # codes rotate every minute and are accepted for two windows
    with expect_error(INVALID, field="code", contains="expired"):
        world.stub.CheckInOrder(pb.CheckInOrderRequest(order_id=order.order_id, code=code), metadata=barber.token,
                                timeout=10)
    assert _stored(world.db, world.district.id) == before


def test_hours_beyond_the_cap_and_for_strangers_are_refused(world, resident, barber, shifted):
    order = world.served_order(resident, barber, shifted, minutes=40)
    before = _stored(world.db, world.district.id)
    cap = 60 + 30  # planned + tolerance
    with expect_error(INVALID, field="manual[0].minutes", contains=str(cap)):
        world.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(
            order_id=order.order_id, manual=[pb.ManualHours(volunteer_id=barber.id, minutes=cap + 1)]),
            metadata=world.holder(order), timeout=10)
    with expect_error(INVALID, field="manual[0].volunteer_id"):
        world.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(
            order_id=order.order_id, manual=[pb.ManualHours(volunteer_id="vol_stranger", minutes=30)]),
            metadata=world.holder(order), timeout=10)
    with expect_error(INVALID, field="manual[1].volunteer_id"):
        world.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(order_id=order.order_id, manual=[
            pb.ManualHours(volunteer_id=barber.id, minutes=30), pb.ManualHours(volunteer_id=barber.id, minutes=30)]),
            metadata=world.holder(order), timeout=10)
    assert _stored(world.db, world.district.id) == before
    # on site 3 hours: the measured time is capped, and manual hours at the cap are accepted, flagged
    long_one = world.served_order(resident, barber, shifted, minutes=180)
    assert long_one.sessions[0].measured_minutes == cap
    confirmed = world.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(
        order_id=long_one.order_id, manual=[pb.ManualHours(volunteer_id=barber.id, minutes=cap)]),
        metadata=world.holder(long_one), timeout=10).order
    assert [(h.minutes, h.source) for h in confirmed.hours] == [(cap, c.HOURS_SOURCE_MANUAL)]


def test_moves_out_of_order_are_refused(world, resident, barber):
    yard_admin = world.as_admin(world.courtyards[0])
    placed = world.place(resident)
    acknowledged = world.place(resident)
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=acknowledged.order_id), metadata=yard_admin,
                                timeout=10)
    accepted = world.accepted_order(resident, barber)
    before = _stored(world.db, world.district.id)
    refusals = [
        (yard_admin, lambda md: world.stub.DispatchOrder(pb.DispatchOrderRequest(
            order_id=placed.order_id, volunteer_ids=[barber.id]), metadata=md, timeout=10)),
        (yard_admin, lambda md: world.stub.OpenOrder(pb.OpenOrderRequest(order_id=placed.order_id), metadata=md,
                                                     timeout=10)),
        (yard_admin, lambda md: world.stub.EscalateOrder(pb.EscalateOrderRequest(order_id=placed.order_id,
                                                                                 reason="未受理先上报"),
                                                         metadata=md, timeout=10)),
        (yard_admin, lambda md: world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(
            order_id=acknowledged.order_id), metadata=md, timeout=10)),
        (yard_admin, lambda md: world.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(
            order_id=accepted.order_id), metadata=md, timeout=10)),
        (yard_admin, lambda md: world.stub.CloseOrder(pb.CloseOrderRequest(order_id=accepted.order_id), metadata=md,
                                                      timeout=10)),
        (yard_admin, lambda md: world.stub.IssueOrderCheckinCode(pb.IssueOrderCheckinCodeRequest(
            order_id=acknowledged.order_id), metadata=md, timeout=10)),
        (resident, lambda md: world.stub.RateOrder(pb.RateOrderRequest(order_id=accepted.order_id, rating=5),
                                                   metadata=md, timeout=10)),
        (barber.token, lambda md: world.stub.AcceptOrder(pb.AcceptOrderRequest(order_id=accepted.order_id),
                                                         metadata=md, timeout=10)),
        (barber.token, lambda md: world.stub.CheckOutOrder(pb.CheckOutOrderRequest(
            order_id=accepted.order_id, code="ABCDEFGH", report="还没签到"), metadata=md, timeout=10)),
    ]
    for token, call in refusals:
        with expect_error(PRECONDITION):
            call(token)
    assert _stored(world.db, world.district.id) == before
    assert world.get(placed.order_id).status == S.ORDER_STATUS_PLACED


def test_dispatching_names_a_team_or_qualified_volunteers(world, resident, barber):
    order = world.place(resident)
    admin = world.as_admin(world.courtyards[0])
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id), metadata=admin, timeout=10)
    painter = world.volunteer(world.courtyards[0], skills=[c.SKILL_CULTURE_ART])
    before = _stored(world.db, world.district.id)
    with expect_error(INVALID, field="team_id"):
        world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=order.order_id, team_id="team_x",
                                                         volunteer_ids=[barber.id]), metadata=admin, timeout=10)
    with expect_error(INVALID, field="volunteer_ids"):
        world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=order.order_id), metadata=admin, timeout=10)
    with expect_error(INVALID, field="volunteer_ids[1]"):
        world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=order.order_id, volunteer_ids=[barber.id, barber.id]),
                                 metadata=admin, timeout=10)
    with expect_error(grpc.StatusCode.NOT_FOUND):
        world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=order.order_id, volunteer_ids=["vol_nobody"]),
                                 metadata=admin, timeout=10)
    with expect_error(grpc.StatusCode.NOT_FOUND):
        world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=order.order_id, team_id="team_nobody"),
                                 metadata=admin, timeout=10)
    with expect_error(PRECONDITION, contains="义务理发"):
        world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=order.order_id, volunteer_ids=[painter.id]),
                                 metadata=admin, timeout=10)
    assert _stored(world.db, world.district.id) == before


def test_menu_activity_policy_and_paging_input(world, unchanged):
    center = world.as_center()
    publish = dict(name="新项目", category=c.SERVICE_CATEGORY_CARE_FOR_OTHERS, handling_level=c.UNIT_LEVEL_COURTYARD,
                   expected_minutes=60)
    for changes, field in [({"name": ""}, "name"), ({"expected_minutes": 5}, "expected_minutes"),
                           ({"category": 0}, "category"), ({"handling_level": 99}, "handling_level"),
                           ({"required_skills": [999]}, "required_skills[0]"),
                           ({"required_certifications": ["Bad Code!"]}, "required_certifications[0]")]:
        with expect_error(INVALID, field=field):
            world.stub.PublishMenuItem(pb.PublishMenuItemRequest(**{**publish, **changes}), metadata=center,
                                       timeout=10)
    with expect_error(INVALID, field="handling_level"):  # a station's item cannot go to the center
        world.stub.PublishMenuItem(pb.PublishMenuItemRequest(**{**publish, "handling_level": c.UNIT_LEVEL_CENTER}),
                                   metadata=world.as_admin(world.stations[0]), timeout=10)

    plan = dict(title="小院讲堂", category=c.SERVICE_CATEGORY_LECTURE_THEORY, starts_at=_ts(dt.timedelta(hours=2)),
                ends_at=_ts(dt.timedelta(hours=3)), resident_capacity=10)
    for changes, field in [({"starts_at": _ts(-dt.timedelta(hours=1))}, "starts_at"),
                           ({"ends_at": _ts(dt.timedelta(hours=1))}, "ends_at"),
                           ({"ends_at": _ts(dt.timedelta(hours=20))}, "ends_at"),
                           ({"resident_capacity": 0}, "resident_capacity"),
                           ({"volunteer_capacity": -1}, "volunteer_capacity"),
                           ({"title": "讲" * 61}, "title")]:
        with expect_error(INVALID, field=field):
            world.stub.PlanActivity(pb.PlanActivityRequest(**{**plan, **changes}),
                                    metadata=world.as_admin(world.courtyards[0]), timeout=10)

    with expect_error(INVALID, field="rating_window_days"):
        world.stub.SetOrderPolicy(pb.SetOrderPolicyRequest(rating_window_days=91), metadata=center, timeout=10)
    with expect_error(INVALID, field="page.page_size"):
        world.stub.ListUnitQueue(pb.ListUnitQueueRequest(page=c.PageRequest(page_size=101)), metadata=center,
                                 timeout=10)
    with expect_error(INVALID, field="page.page_token"):
        world.stub.ListMenu(pb.ListMenuRequest(page=c.PageRequest(page_token="%%%")), metadata=center, timeout=10)
    with expect_error(INVALID, field="statuses[0]"):
        world.stub.ListUnitQueue(pb.ListUnitQueueRequest(statuses=[99]), metadata=center, timeout=10)


def test_passes_attendance_and_trends_input(world, resident, unchanged):
    admin = world.as_admin(world.courtyards[0])
    with expect_error(INVALID, field="activity_id"):
        world.stub.GetActivityPass(pb.GetActivityPassRequest(activity_id="bad id!"), metadata=resident, timeout=10)
    for fields, field in [({"pass_code": "ABCDEFGH"}, "activity_id"),
                          ({"activity_id": "act_x"}, "pass_code"),
                          ({"activity_id": "act_x", "pass_code": "ABCDEFGH", "resident_id": "res_x"}, "pass_code"),
                          ({"activity_id": "act_x", "pass_code": "ABCDEFG0"}, "pass_code"),
                          ({"activity_id": "act_x", "resident_id": "res x"}, "resident_id")]:
        with expect_error(INVALID, field=field):
            world.stub.RecordActivityAttendance(pb.RecordActivityAttendanceRequest(**fields), metadata=admin,
                                                timeout=10)
    with expect_error(INVALID, field="granularity"):
        world.stub.GetOrderTrends(pb.GetOrderTrendsRequest(granularity=3), metadata=admin, timeout=10)
    with expect_error(INVALID, field="starts_before"):
        world.stub.ListActivities(pb.ListActivitiesRequest(starts_from=_ts(dt.timedelta(days=1)),
                                                           starts_before=_ts(dt.timedelta(0))),
                                  metadata=resident, timeout=10)


def test_a_retired_item_takes_no_orders_but_its_orders_go_on(world, resident, barber):
    item = world.stub.PublishMenuItem(pb.PublishMenuItemRequest(
        name="夏季义诊", category=c.SERVICE_CATEGORY_LECTURE_HEALTH, handling_level=c.UNIT_LEVEL_COURTYARD,
        expected_minutes=60), metadata=world.as_center(), timeout=10).item
    order = world.stub.PlaceOrder(pb.PlaceOrderRequest(item_id=item.item_id), metadata=resident, timeout=10).order
    world.stub.RetireMenuItem(pb.RetireMenuItemRequest(item_id=item.item_id, reason="季节性项目结束"),
                              metadata=world.as_center(), timeout=10)
    before = _stored(world.db, world.district.id)
    with expect_error(PRECONDITION, contains="retired"):
        world.stub.PlaceOrder(pb.PlaceOrderRequest(item_id=item.item_id), metadata=resident, timeout=10)
    with expect_error(PRECONDITION, contains="already retired"):
        world.stub.RetireMenuItem(pb.RetireMenuItemRequest(item_id=item.item_id, reason="再次下架"),
                                  metadata=world.as_center(), timeout=10)
    assert _stored(world.db, world.district.id) == before
    acknowledged = world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id),
                                               metadata=world.as_admin(world.courtyards[0]), timeout=10).order
    assert acknowledged.status == S.ORDER_STATUS_ACKNOWLEDGED and acknowledged.item_name == "夏季义诊"


def test_a_visit_under_a_minute_needs_manual_hours(world, resident, barber, shifted):
    order = world.served_order(resident, barber, shifted, minutes=0)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="manual"):
        world.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(order_id=order.order_id),
                                     metadata=world.holder(order), timeout=10)
    confirmed = world.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(
        order_id=order.order_id, manual=[pb.ManualHours(volunteer_id=barber.id, minutes=20)]),
        metadata=world.holder(order), timeout=10).order
    assert [(h.volunteer_id, h.minutes, h.source) for h in confirmed.hours] == [
        (barber.id, 20, c.HOURS_SOURCE_MANUAL)]
