"""Who may do what (OWASP API1): for every RPC that takes an object id, another user's token is
refused — another resident, a volunteer the order was not given to, an admin outside the subtree,
another district."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tests.support.grpc_helpers import expect_error
from tests.support.registration import District
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb

DENIED = grpc.StatusCode.PERMISSION_DENIED


@pytest.fixture(scope="module")
def cast(world):
    """Alice's order at courtyard 0 dispatched to volunteer `mine`; Bob, an outsider volunteer,
    and the admin of the other station; an activity at courtyard 0."""
    yard = world.courtyards[0]
    _, alice = world.resident(yard, name="爱丽丝")
    _, bob = world.resident(yard, name="鲍勃")
    mine = world.volunteer(yard, skills=[c.SKILL_HAIRCUT], name="本院志愿者")
    other = world.volunteer(world.courtyards[2], skills=[c.SKILL_HAIRCUT], name="外站志愿者")
    order = world.accepted_order(alice, mine)
    open_order = world.place(alice, "haircut")
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=open_order.order_id),
                                metadata=world.as_admin(yard), timeout=10)
    world.stub.OpenOrder(pb.OpenOrderRequest(order_id=open_order.order_id), metadata=world.as_admin(yard), timeout=10)
    starts = Timestamp()
    starts.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(hours=3))
    ends = Timestamp()
    ends.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(hours=4))
    activity = world.stub.PlanActivity(pb.PlanActivityRequest(
        title="小院讲堂", category=c.SERVICE_CATEGORY_LECTURE_THEORY, starts_at=starts, ends_at=ends,
        volunteer_capacity=5, resident_capacity=20), metadata=world.as_admin(yard), timeout=10).activity
    return dict(alice=alice, bob=bob, mine=mine, other=other, order=order, open_order=open_order, activity=activity,
                outsider_admin=world.as_admin(world.stations[1]))


def _order_calls(stub, order_id: str):
    """Every order RPC that takes an order id, with otherwise valid input."""
    return {
        "GetOrder": lambda md: stub.GetOrder(pb.GetOrderRequest(order_id=order_id), metadata=md, timeout=10),
        "AcknowledgeOrder": lambda md: stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order_id),
                                                             metadata=md, timeout=10),
        "EscalateOrder": lambda md: stub.EscalateOrder(pb.EscalateOrderRequest(order_id=order_id, reason="越权"),
                                                       metadata=md, timeout=10),
        "HandOverOrder": lambda md: stub.HandOverOrder(pb.HandOverOrderRequest(order_id=order_id, to_unit_id="unt_x",
                                                                               reason="越权"),
                                                       metadata=md, timeout=10),
        "DispatchOrder": lambda md: stub.DispatchOrder(pb.DispatchOrderRequest(order_id=order_id,
                                                                               volunteer_ids=["vol_x"]),
                                                       metadata=md, timeout=10),
        "OpenOrder": lambda md: stub.OpenOrder(pb.OpenOrderRequest(order_id=order_id), metadata=md, timeout=10),
        "AcceptOrder": lambda md: stub.AcceptOrder(pb.AcceptOrderRequest(order_id=order_id), metadata=md, timeout=10),
        "DeclineOrder": lambda md: stub.DeclineOrder(pb.DeclineOrderRequest(order_id=order_id, reason="越权"),
                                                     metadata=md, timeout=10),
        "IssueOrderCheckinCode": lambda md: stub.IssueOrderCheckinCode(
            pb.IssueOrderCheckinCodeRequest(order_id=order_id), metadata=md, timeout=10),
        "CheckInOrder": lambda md: stub.CheckInOrder(pb.CheckInOrderRequest(order_id=order_id, code="ABC"),
                                                     metadata=md, timeout=10),
        "CheckOutOrder": lambda md: stub.CheckOutOrder(pb.CheckOutOrderRequest(order_id=order_id, code="ABC",
                                                                               report="越权"),
                                                       metadata=md, timeout=10),
        "ConfirmOrderHours": lambda md: stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(order_id=order_id),
                                                               metadata=md, timeout=10),
        "RateOrder": lambda md: stub.RateOrder(pb.RateOrderRequest(order_id=order_id, rating=1), metadata=md,
                                               timeout=10),
        "CloseOrder": lambda md: stub.CloseOrder(pb.CloseOrderRequest(order_id=order_id), metadata=md, timeout=10),
        "CancelOrder": lambda md: stub.CancelOrder(pb.CancelOrderRequest(order_id=order_id), metadata=md, timeout=10),
        "RejectOrder": lambda md: stub.RejectOrder(pb.RejectOrderRequest(order_id=order_id, reason="越权"),
                                                   metadata=md, timeout=10),
        "SuggestVolunteers": lambda md: stub.SuggestVolunteers(pb.SuggestVolunteersRequest(order_id=order_id),
                                                               metadata=md, timeout=10),
    }


def _activity_calls(stub, activity_id: str):
    return {
        "PublishActivity": lambda md: stub.PublishActivity(pb.PublishActivityRequest(activity_id=activity_id),
                                                           metadata=md, timeout=10),
        "CancelActivity": lambda md: stub.CancelActivity(pb.CancelActivityRequest(activity_id=activity_id,
                                                                                  reason="越权"),
                                                         metadata=md, timeout=10),
        "GetActivity": lambda md: stub.GetActivity(pb.GetActivityRequest(activity_id=activity_id), metadata=md,
                                                   timeout=10),
        "SignUpActivity": lambda md: stub.SignUpActivity(pb.SignUpActivityRequest(activity_id=activity_id),
                                                         metadata=md, timeout=10),
        "IssueActivityCheckinCode": lambda md: stub.IssueActivityCheckinCode(
            pb.IssueActivityCheckinCodeRequest(activity_id=activity_id), metadata=md, timeout=10),
        "CheckInActivity": lambda md: stub.CheckInActivity(pb.CheckInActivityRequest(activity_id=activity_id,
                                                                                     code="ABC"),
                                                           metadata=md, timeout=10),
        "RateActivity": lambda md: stub.RateActivity(pb.RateActivityRequest(activity_id=activity_id, rating=5),
                                                     metadata=md, timeout=10),
        "CompleteActivity": lambda md: stub.CompleteActivity(pb.CompleteActivityRequest(activity_id=activity_id),
                                                             metadata=md, timeout=10),
        "GetActivityPass": lambda md: stub.GetActivityPass(pb.GetActivityPassRequest(activity_id=activity_id),
                                                           metadata=md, timeout=10),
        "RecordActivityAttendance": lambda md: stub.RecordActivityAttendance(
            pb.RecordActivityAttendanceRequest(activity_id=activity_id, resident_id="res_x"), metadata=md, timeout=10),
    }


def test_another_resident_cannot_see_or_touch_my_order(world, cast):
    calls = _order_calls(world.stub, cast["order"].order_id)
    for name in ("GetOrder", "CancelOrder", "RateOrder", "AcknowledgeOrder", "AcceptOrder", "CheckInOrder",
                 "ConfirmOrderHours", "SuggestVolunteers"):
        with expect_error(DENIED):
            calls[name](cast["bob"])
    assert world.get(cast["order"].order_id, cast["alice"]).order_id == cast["order"].order_id
    mine = world.stub.ListMyOrders(pb.ListMyOrdersRequest(), metadata=cast["bob"], timeout=10).orders
    assert cast["order"].order_id not in [o.order_id for o in mine]


def test_a_volunteer_acts_only_on_orders_given_or_open_to_them(world, cast):
    calls = _order_calls(world.stub, cast["order"].order_id)
    for name in ("GetOrder", "AcceptOrder", "DeclineOrder", "CheckInOrder", "CheckOutOrder", "RateOrder",
                 "CancelOrder", "AcknowledgeOrder", "IssueOrderCheckinCode"):
        with expect_error(DENIED):
            calls[name](cast["other"].token)
    # an open order of another station's courtyard is neither visible nor claimable to them
    with expect_error(DENIED):
        world.stub.ClaimOrder(pb.ClaimOrderRequest(order_id=cast["open_order"].order_id),
                              metadata=cast["other"].token, timeout=10)
    with expect_error(DENIED):
        world.stub.GetOrder(pb.GetOrderRequest(order_id=cast["open_order"].order_id), metadata=cast["other"].token,
                            timeout=10)
    claimable = world.stub.ListClaimableOrders(pb.ListClaimableOrdersRequest(), metadata=cast["other"].token,
                                               timeout=10).orders
    assert cast["open_order"].order_id not in [o.order_id for o in claimable]
    # the dispatched volunteer sees theirs
    assert world.get(cast["order"].order_id, cast["mine"].token).status


def test_an_admin_acts_only_on_the_order_their_unit_holds(world, cast):
    for order in (cast["order"], cast["open_order"]):
        calls = _order_calls(world.stub, order.order_id)
        for call in calls.values():
            with expect_error(DENIED):
                call(cast["outsider_admin"])
    # an admin above the holding unit may look, but must-accept is the holding unit's duty
    station = world.as_admin(world.stations[0])
    assert world.get(cast["order"].order_id, station).order_id == cast["order"].order_id
    with expect_error(DENIED, contains="holding the order"):
        world.stub.IssueOrderCheckinCode(pb.IssueOrderCheckinCodeRequest(order_id=cast["order"].order_id),
                                         metadata=station, timeout=10)
    # queues and menus of units outside the subtree
    with expect_error(DENIED):
        world.stub.ListUnitQueue(pb.ListUnitQueueRequest(unit_id=world.courtyards[0].unit_id),
                                 metadata=cast["outsider_admin"], timeout=10)
    with expect_error(DENIED):
        world.stub.PublishMenuItem(pb.PublishMenuItemRequest(
            owner_unit_id=world.courtyards[0].unit_id, name="越权项目", category=c.SERVICE_CATEGORY_CARE_FOR_OTHERS,
            handling_level=c.UNIT_LEVEL_COURTYARD, expected_minutes=60), metadata=cast["outsider_admin"], timeout=10)
    with expect_error(DENIED):
        world.stub.RetireMenuItem(pb.RetireMenuItemRequest(item_id=world.items["haircut"].item_id, reason="越权"),
                                  metadata=cast["outsider_admin"], timeout=10)


def test_activities_are_run_by_their_unit_and_joined_by_their_people(world, cast):
    calls = _activity_calls(world.stub, cast["activity"].activity_id)
    for name in ("PublishActivity", "CancelActivity", "IssueActivityCheckinCode", "CompleteActivity",
                 "RecordActivityAttendance"):
        for token in (cast["outsider_admin"], cast["alice"], cast["mine"].token):
            with expect_error(DENIED):
                calls[name](token)
    for name in ("GetActivity", "SignUpActivity"):  # still PLANNED, and another station's people anyway
        with expect_error(DENIED):
            calls[name](cast["other"].token)
    for name in ("CheckInActivity", "RateActivity", "GetActivityPass"):  # not signed up
        with expect_error(DENIED):
            calls[name](cast["alice"])
    with expect_error(DENIED):
        world.stub.PlanActivity(pb.PlanActivityRequest(
            unit_id=world.courtyards[0].unit_id, title="越权活动", category=c.SERVICE_CATEGORY_LECTURE_THEORY,
            starts_at=cast["activity"].starts_at, ends_at=cast["activity"].ends_at, resident_capacity=5),
            metadata=cast["outsider_admin"], timeout=10)
    with expect_error(DENIED):
        world.stub.ListActivities(pb.ListActivitiesRequest(unit_id=world.courtyards[0].unit_id, subtree=True),
                                  metadata=cast["outsider_admin"], timeout=10)


def test_another_district_sees_nothing(registration, ordering, issuer, world, cast):
    district = District(registration.grpc_target, registration.env)
    try:
        elsewhere = district.as_center()
        for call in _order_calls(world.stub, cast["order"].order_id).values():
            with expect_error(grpc.StatusCode.NOT_FOUND):
                call(elsewhere)
        for name, call in _activity_calls(world.stub, cast["activity"].activity_id).items():
            if name not in ("SignUpActivity", "CheckInActivity", "RateActivity"):  # admins do not sign up
                with expect_error(grpc.StatusCode.NOT_FOUND):
                    call(elsewhere)
        with expect_error(grpc.StatusCode.NOT_FOUND):
            world.stub.GetMenuItem(pb.GetMenuItemRequest(item_id=world.items["haircut"].item_id), metadata=elsewhere,
                                   timeout=10)
    finally:
        district.close()


def test_no_token_is_unauthenticated_and_unknown_ids_are_not_found(world):
    with expect_error(grpc.StatusCode.UNAUTHENTICATED):
        world.stub.GetOrder(pb.GetOrderRequest(order_id="ord_x"), timeout=10)
    for call in _order_calls(world.stub, "ord_doesnotexist").values():
        with expect_error(grpc.StatusCode.NOT_FOUND):
            call(world.as_center())
    with expect_error(grpc.StatusCode.NOT_FOUND):
        world.stub.GetActivity(pb.GetActivityRequest(activity_id="act_nope"), metadata=world.as_center(), timeout=10)

