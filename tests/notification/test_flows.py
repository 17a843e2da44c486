"""Real orders through the real ordering service: each step reaches the right people's inboxes
(admins of the unit the order waits at, the volunteers named, the resident), and nobody else's."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common.events import to_timestamp
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import ordering_pb2 as pb

from .support import K, summary

MINUTE = 60


def _nobody_else(inboxes, order_id: str, *tokens) -> None:
    """Nobody but the people named has a message about the order."""
    for token in tokens:
        assert inboxes.about(token, order_id) == []


def test_the_loop_tells_each_person_their_part(world, inboxes, shifted):
    yard, other_yard = world.courtyards[0], world.courtyards[1]
    resident_id, resident = world.resident(yard, name="张大爷")
    _, neighbour = world.resident(yard)
    server, helper = world.volunteers(yard, 2, name="理发志愿者")
    admin = world.as_admin(yard)

    order = world.place(resident, "haircut", address="凉州区广场村3组12号", contact_phone="13912345678")
    order_id = order.order_id
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order_id), metadata=admin, timeout=10)
    world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=order_id, volunteer_ids=[server.id, helper.id]),
                             metadata=admin, timeout=10)
    world.stub.AcceptOrder(pb.AcceptOrderRequest(order_id=order_id), metadata=server.token, timeout=10)
    world.stub.DeclineOrder(pb.DeclineOrderRequest(order_id=order_id, reason="临时有事"), metadata=helper.token,
                            timeout=10)
    world.stub.CheckInOrder(pb.CheckInOrderRequest(order_id=order_id, code=world.code(order)),
                            metadata=server.token, timeout=10)
    shifted.advance(45 * MINUTE)
    world.stub.CheckOutOrder(pb.CheckOutOrderRequest(order_id=order_id, code=world.code(order),
                                                     report="已为老人理发"), metadata=server.token, timeout=10)
    world.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(order_id=order_id), metadata=admin, timeout=10)
    world.stub.RateOrder(pb.RateOrderRequest(order_id=order_id, rating=5, comment="张大爷说很满意"),
                         metadata=resident, timeout=10)

    # the rating is the last event: once the volunteer has heard of it, every earlier step is stored
    served = inboxes.wait_about(server.token, order_id, 3)
    assert summary(served) == [(K.MESSAGE_KIND_TASK_DISPATCHED, "新的服务任务"),
                               (K.MESSAGE_KIND_TASK_UPDATED, "服务时长已确认"),
                               (K.MESSAGE_KIND_TASK_UPDATED, "服务获得评价")]
    assert "45分钟" in served[1].body and "5星" in served[2].body
    assert summary(inboxes.about(helper.token, order_id)) == [(K.MESSAGE_KIND_TASK_DISPATCHED, "新的服务任务")]
    told_admin = inboxes.about(admin, order_id)
    assert summary(told_admin) == [(K.MESSAGE_KIND_ORDER_ARRIVED, "新的群众点单"),
                                   (K.MESSAGE_KIND_ORDER_TO_CONFIRM, "服务时长待审核")]
    told_resident = inboxes.about(resident, order_id)
    assert [m.title for m in told_resident] == ["点单已受理", "点单已派单", "志愿者已接单", "服务已开始", "服务已完成",
                                                 "服务已审核，请评价"]
    assert {m.kind for m in told_resident} == {K.MESSAGE_KIND_ORDER_UPDATED}

    links = {"/app/admin/orders/": told_admin, "/app/volunteer/tasks/": served, "/app/resident/orders/": told_resident}
    for prefix, messages in links.items():
        assert {m.link for m in messages} == {prefix + order_id}
    for message in [*served, *told_admin, *told_resident]:
        assert not message.read and message.created_at.seconds and message.subject_type == "order"
        # no names of people, no address, no phone: only the service and the units
        for personal in ("张大爷", "理发志愿者", "广场村3组", "1391", "5678", "满意"):
            assert personal not in message.title + message.body
    _nobody_else(inboxes, order_id, neighbour, world.as_admin(other_yard), world.as_admin(world.stations[0]),
                   world.as_admin(world.institute), world.as_center())


def test_an_order_sent_up_reaches_the_unit_above(world, inboxes):
    yard, station = world.courtyards[2], world.stations[1]
    _, resident = world.resident(yard)
    order_id = world.place(resident, "haircut").order_id
    yard_admin = world.as_admin(yard)
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order_id), metadata=yard_admin, timeout=10)
    world.stub.EscalateOrder(pb.EscalateOrderRequest(order_id=order_id, reason="小院无人会修"), metadata=yard_admin,
                             timeout=10)
    arrived = inboxes.wait_about(world.as_admin(station), order_id, 1)
    assert summary(arrived) == [(K.MESSAGE_KIND_ORDER_ARRIVED, "上报的群众点单")]
    assert yard.name in arrived[0].body
    # the courtyard heard of the order once, when it arrived; escalating it is its own doing
    assert summary(inboxes.about(yard_admin, order_id)) == [(K.MESSAGE_KIND_ORDER_ARRIVED, "新的群众点单")]
    assert [m.title for m in inboxes.about(resident, order_id)] == ["点单已受理"]


def test_a_cancellation_reaches_whoever_was_offered_the_task_and_not_who_cancelled(world, inboxes):
    yard = world.courtyards[3]
    _, resident = world.resident(yard)
    offered = world.volunteer(yard)
    admin = world.as_admin(yard)
    order_id = world.place(resident, "haircut").order_id
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order_id), metadata=admin, timeout=10)
    world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=order_id, volunteer_ids=[offered.id]), metadata=admin,
                             timeout=10)
    world.stub.CancelOrder(pb.CancelOrderRequest(order_id=order_id, reason="不需要了"), metadata=resident, timeout=10)
    told = inboxes.wait_about(offered.token, order_id, 2)
    assert summary(told) == [(K.MESSAGE_KIND_TASK_DISPATCHED, "新的服务任务"),
                             (K.MESSAGE_KIND_TASK_UPDATED, "服务任务已取消")]
    assert [m.title for m in inboxes.about(resident, order_id)] == ["点单已受理", "点单已派单"]


def test_staff_acting_for_a_resident_tell_the_resident_and_not_themselves(world, inboxes):
    yard = world.courtyards[3]
    resident_id, resident = world.resident(yard)
    world.wait_resident_known(resident_id)
    admin = world.as_admin(yard)
    order_id = world.stub.PlaceOrder(pb.PlaceOrderRequest(item_id=world.items["haircut"].item_id,
                                                          resident_id=resident_id), metadata=admin, timeout=10).order.order_id
    world.stub.CancelOrder(pb.CancelOrderRequest(order_id=order_id, reason="居民电话告知不需要"), metadata=admin,
                           timeout=10)
    assert [m.title for m in inboxes.wait_about(resident, order_id, 1)] == ["点单已取消"]
    assert inboxes.about(admin, order_id) == []


def test_an_order_the_center_rejects(world, inboxes):
    _, resident = world.resident(world.courtyards[0])
    order_id = world.place(resident, "policy").order_id
    center = world.as_center()
    assert summary(inboxes.wait_about(center, order_id, 1)) == [(K.MESSAGE_KIND_ORDER_ARRIVED, "新的群众点单")]
    world.stub.RejectOrder(pb.RejectOrderRequest(order_id=order_id, reason="不属于服务范围"), metadata=center, timeout=10)
    rejected = inboxes.wait_about(resident, order_id, 1)
    assert [m.title for m in rejected] == ["点单未能受理"] and "不属于服务范围" not in rejected[0].body


@pytest.fixture(scope="module")
def sla_world(registration, ordering, issuer, notification, notification_db):
    """A district whose deadlines this module shortens."""
    from .conftest import new_world

    district, world = new_world(registration, ordering, issuer, notification_db)
    world.stub.SetOrderPolicy(pb.SetOrderPolicyRequest(acknowledge=[
        pb.AcknowledgeSla(level=level, minutes=5) for level in (1, 2, 3, 4)]), metadata=world.as_center(), timeout=10)
    yield world
    district.close()


def test_deadlines_missed_tell_the_unit_that_missed_them_and_the_one_above(sla_world, inboxes, shifted):
    world = sla_world
    yard = world.courtyards[0]
    _, resident = world.resident(yard)
    order_id = world.place(resident, "haircut").order_id
    climb = [(yard, world.stations[0]), (world.stations[0], world.institute), (world.institute, world.center)]
    for below, above in climb:
        shifted.advance(6 * MINUTE)
        arrived = inboxes.wait_about(world.as_admin(above), order_id, 1)
        assert summary(arrived) == [(K.MESSAGE_KIND_ORDER_ARRIVED, "上报的群众点单")]
        assert "自动上报" in arrived[0].body and below.name in arrived[0].body
        # told on arrival, then of the miss (its own write, maybe just after the one above)
        overdue = inboxes.wait_about(world.as_admin(below), order_id, 2)[-1]
        assert (overdue.kind, overdue.title) == (K.MESSAGE_KIND_ORDER_OVERDUE, "点单已超时上报")
        assert above.name in overdue.body
    shifted.advance(6 * MINUTE)
    told_center = inboxes.wait_about(world.as_center(), order_id, 2)
    assert summary(told_center)[-1] == (K.MESSAGE_KIND_ORDER_OVERDUE, "点单已超时")
    assert "5分钟" in told_center[-1].body
    # the resident hears nothing of the climb: it is the units' business
    assert inboxes.about(resident, order_id) == []


def test_a_deadline_drawing_near_warns_the_unit_holding_the_order(world, inboxes, feed):
    """OrderDeadlineApproaching as ordering announces it (published here by hand)."""
    yard = world.courtyards[1]
    _, resident = world.resident(yard)
    order = world.place(resident, "haircut")
    admin = world.as_admin(yard)
    inboxes.wait_about(admin, order.order_id, 1)
    snapshot = feed.order(order.order_id, courtyard=yard, item_name=order.item_name, resident_id=order.resident_id)
    due = dt.datetime(2026, 5, 1, 1, 5, tzinfo=dt.UTC)  # 09:05 in Beijing
    feed.send(feed.order_event(ev.OrderDeadlineApproaching(order=snapshot, unit=snapshot.current_unit,
                                                           due_at=to_timestamp(due)), world.district.id, version=2))
    warned = inboxes.wait_about(admin, order.order_id, 2)[-1]
    assert (warned.kind, warned.title) == (K.MESSAGE_KIND_ORDER_DEADLINE_NEAR, "点单即将超时")
    assert "05月01日 09:05" in warned.body and "助老理发" in warned.body
    assert inboxes.about(world.as_admin(world.stations[0]), order.order_id) == []
