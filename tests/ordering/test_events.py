"""The event contract on wenming.ordering.v1.events: every transition produced exactly the expected
events, in order per order id, with consecutive versions and the order's snapshot after the change."""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp

from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import ordering_pb2 as pb

from .support import S


def _by_aggregate(events) -> dict[str, list]:
    """Each aggregate's events in topic order, one per event id (the relay may publish twice)."""
    out: dict[str, list] = {}
    seen = set()
    for envelope, payload, record in events:
        if envelope.event_id in seen:
            continue
        seen.add(envelope.event_id)
        out.setdefault(envelope.aggregate_id, []).append((envelope, payload, record))
    return out


def test_every_transition_emits_its_event_in_order(world, shifted, ordering_events):
    yard, station = world.courtyards[0], world.stations[0]
    _, resident = world.resident(yard)
    barber = world.volunteer(yard, skills=[c.SKILL_HAIRCUT])
    other = world.volunteer(yard, skills=[c.SKILL_HAIRCUT])
    yard_admin, station_admin = world.as_admin(yard), world.as_admin(station)

    # A: the main path, with an escalation and manual hours
    a = world.place(resident, "haircut").order_id
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=a), metadata=yard_admin, timeout=10)
    world.stub.EscalateOrder(pb.EscalateOrderRequest(order_id=a, reason="小院人手不足"), metadata=yard_admin,
                             timeout=10)
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=a), metadata=station_admin, timeout=10)
    world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=a, volunteer_ids=[barber.id]), metadata=station_admin,
                             timeout=10)
    world.stub.AcceptOrder(pb.AcceptOrderRequest(order_id=a), metadata=barber.token, timeout=10)
    code = world.stub.IssueOrderCheckinCode(pb.IssueOrderCheckinCodeRequest(order_id=a), metadata=station_admin,
                                            timeout=10).checkin.code
    world.stub.CheckInOrder(pb.CheckInOrderRequest(order_id=a, code=code), metadata=barber.token, timeout=10)
    shifted.advance(40 * 60)
    code = world.stub.IssueOrderCheckinCode(pb.IssueOrderCheckinCodeRequest(order_id=a), metadata=station_admin,
                                            timeout=10).checkin.code
    world.stub.CheckOutOrder(pb.CheckOutOrderRequest(order_id=a, code=code, report="完成理发"), metadata=barber.token,
                             timeout=10)
    world.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(order_id=a, manual=[
        pb.ManualHours(volunteer_id=barber.id, minutes=45)]), metadata=station_admin, timeout=10)
    world.stub.RateOrder(pb.RateOrderRequest(order_id=a, rating=4, comment="很好"), metadata=resident, timeout=10)
    world.stub.CloseOrder(pb.CloseOrderRequest(order_id=a), metadata=station_admin, timeout=10)

    # B: the claim list, a give-back, re-dispatch, and the resident cancelling
    b = world.place(resident, "haircut").order_id
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=b), metadata=yard_admin, timeout=10)
    world.stub.OpenOrder(pb.OpenOrderRequest(order_id=b), metadata=yard_admin, timeout=10)
    world.stub.ClaimOrder(pb.ClaimOrderRequest(order_id=b), metadata=other.token, timeout=10)
    world.stub.DeclineOrder(pb.DeclineOrderRequest(order_id=b, reason="身体不适"), metadata=other.token, timeout=10)
    world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=b, volunteer_ids=[barber.id]), metadata=yard_admin,
                             timeout=10)
    world.stub.AcceptOrder(pb.AcceptOrderRequest(order_id=b), metadata=barber.token, timeout=10)
    world.stub.CancelOrder(pb.CancelOrderRequest(order_id=b, reason="家人已帮忙理发"), metadata=resident, timeout=10)

    # C: an institute-level item routed past courtyard and station, escalated to the center, rejected
    wanted = Timestamp()
    wanted.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(days=2))
    cid = world.place(resident, "legal", wanted_at=wanted).order_id
    institute = world.as_admin(world.institute)
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=cid), metadata=institute, timeout=10)
    world.stub.EscalateOrder(pb.EscalateOrderRequest(order_id=cid, reason="涉及重大事项"), metadata=institute,
                             timeout=10)
    world.stub.RejectOrder(pb.RejectOrderRequest(order_id=cid, reason="请通过司法所正式渠道办理"),
                           metadata=world.as_center(), timeout=10)

    expected = {
        a: ["OrderPlaced", "OrderAcknowledged", "OrderEscalated", "OrderAcknowledged", "OrderDispatched",
            "OrderAccepted", "OrderCheckedIn", "OrderCompleted", "OrderHoursConfirmed", "OrderRated", "OrderClosed"],
        b: ["OrderPlaced", "OrderAcknowledged", "OrderOpened", "OrderClaimed", "OrderDeclined", "OrderDispatched",
            "OrderAccepted", "OrderCancelled"],
        cid: ["OrderPlaced", "OrderAcknowledged", "OrderEscalated", "OrderRejected"],
    }
    total = sum(len(v) for v in expected.values())
    by_order = _by_aggregate(ordering_events.events(world.district.id, at_least=total, timeout=30, settle=1.0))
    for order_id, types in expected.items():
        events = by_order[order_id]
        assert [type(p).__name__ for _, p, _ in events] == types, order_id
        assert [e.aggregate_version for e, _, _ in events] == list(range(1, len(types) + 1))
        for envelope, payload, record in events:
            assert envelope.aggregate_type == "order" and record.key.decode() == order_id
            assert dict(record.headers)["district_id"].decode() == world.district.id
            assert payload.order.order_id == order_id
        # the snapshot is the order after the change
        assert [p.order.status for _, p, _ in events][-1] == world.get(order_id).status

    a_events = {type(p).__name__: p for _, p, _ in by_order[a]}
    escalated = a_events["OrderEscalated"]
    assert (escalated.from_unit.unit_id, escalated.to_unit.unit_id, escalated.automatic) == \
        (yard.unit_id, station.unit_id, False)
    assert escalated.reason == "小院人手不足" and escalated.order.current_unit.unit_id == station.unit_id
    completed = a_events["OrderCompleted"]
    assert completed.report == "完成理发" and completed.measured[0].source == c.HOURS_SOURCE_VERIFIED
    assert completed.measured[0].minutes in (39, 40)
    confirmed = a_events["OrderHoursConfirmed"]
    assert [(h.volunteer_id, h.minutes, h.source) for h in confirmed.hours] == \
        [(barber.id, 45, c.HOURS_SOURCE_MANUAL)]
    assert confirmed.recorded_by.unit_id == station.unit_id and confirmed.recorded_by.level == c.UNIT_LEVEL_STATION
    assert a_events["OrderRated"].rating == 4 and a_events["OrderRated"].order.rating == 4
    assert not a_events["OrderClosed"].automatic
    assert a_events["OrderAcknowledged"].seconds_to_acknowledge >= 0
    assert a_events["OrderAccepted"].order.volunteer_ids == [barber.id]

    b_events = [p for _, p, _ in by_order[b]]
    assert b_events[3].volunteer_id == other.id and b_events[4].reason == "身体不适"
    assert b_events[4].order.status == S.ORDER_STATUS_DECLINED and b_events[7].reason == "家人已帮忙理发"

    placed_c = by_order[cid][0][1]
    assert isinstance(placed_c, ev.OrderPlaced)
    assert [u.unit_id for u in placed_c.routed_past] == [yard.unit_id, station.unit_id]
    assert placed_c.order.current_unit.unit_id == world.institute.unit_id
    assert by_order[cid][-1][1].reason == "请通过司法所正式渠道办理"


def test_menu_and_activity_changes_are_announced(world, shifted, ordering_events):
    center = world.as_center()
    item = world.stub.PublishMenuItem(pb.PublishMenuItemRequest(
        name="心理疏导", category=c.SERVICE_CATEGORY_CARE_FOR_OTHERS, handling_level=c.UNIT_LEVEL_STATION,
        required_skills=[c.SKILL_PSYCH_COUNSEL], required_certifications=["psych_counsel"], expected_minutes=90),
        metadata=center, timeout=10).item
    world.stub.RetireMenuItem(pb.RetireMenuItemRequest(item_id=item.item_id, reason="并入健康义诊"), metadata=center,
                              timeout=10)

    yard = world.courtyards[3]
    admin = world.as_admin(yard)
    now = dt.datetime.now(dt.UTC)
    starts, ends = Timestamp(), Timestamp()
    starts.FromDatetime(now + dt.timedelta(minutes=20))
    ends.FromDatetime(now + dt.timedelta(minutes=80))
    activity = world.stub.PlanActivity(pb.PlanActivityRequest(
        title="小院讲堂：垃圾分类", category=c.SERVICE_CATEGORY_CARE_FOR_NATURE, starts_at=starts, ends_at=ends,
        volunteer_capacity=2, resident_capacity=10), metadata=admin, timeout=10).activity
    aid = activity.activity_id
    world.stub.PublishActivity(pb.PublishActivityRequest(activity_id=aid), metadata=admin, timeout=10)
    speaker = world.volunteer(yard, skills=[c.SKILL_ENVIRONMENT])
    resident_id, resident = world.resident(yard)
    for token in (speaker.token, resident):
        world.stub.SignUpActivity(pb.SignUpActivityRequest(activity_id=aid), metadata=token, timeout=10)
    code = world.stub.IssueActivityCheckinCode(pb.IssueActivityCheckinCodeRequest(activity_id=aid), metadata=admin,
                                               timeout=10).checkin.code
    for token in (speaker.token, resident):
        world.stub.CheckInActivity(pb.CheckInActivityRequest(activity_id=aid, code=code), metadata=token, timeout=10)
    world.stub.RateActivity(pb.RateActivityRequest(activity_id=aid, rating=5), metadata=resident, timeout=10)
    shifted.advance(81 * 60)
    world.stub.CompleteActivity(pb.CompleteActivityRequest(activity_id=aid), metadata=admin, timeout=10)

    by_aggregate = _by_aggregate(ordering_events.events(world.district.id, at_least=2 + 8, settle=1.0))
    assert [type(p).__name__ for _, p, _ in by_aggregate[item.item_id]] == ["MenuItemPublished", "MenuItemRetired"]
    published = by_aggregate[item.item_id][0][1]
    assert published.required_certifications == ["psych_counsel"] and published.owner_unit.unit_id == \
        world.center.unit_id
    activity_events = by_aggregate[aid]
    assert [type(p).__name__ for _, p, _ in activity_events] == [
        "ActivityPlanned", "ActivityPublished", "ActivitySignedUp", "ActivitySignedUp", "ActivityAttended",
        "ActivityAttended", "ActivityRated", "ActivityCompleted"]
    assert [e.aggregate_version for e, _, _ in activity_events] == list(range(1, 9))
    completed = activity_events[-1][1]
    assert [(h.volunteer_id, h.minutes, h.source) for h in completed.hours] == \
        [(speaker.id, 60, c.HOURS_SOURCE_VERIFIED)]
    assert completed.residents_attended == 1 and completed.recorded_by.unit_id == yard.unit_id
    signed = [p for _, p, _ in activity_events if isinstance(p, ev.ActivitySignedUp)]
    assert {(p.participant_id, p.role) for p in signed} == {(speaker.id, 1), (resident_id, 2)}
