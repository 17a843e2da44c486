"""Which ordering event tells whom what (services/notification/messages.py), without a broker."""

from __future__ import annotations

import datetime as dt

from services.common.consumer import ConsumedEvent
from services.common.events import EventSource, decode, to_timestamp
from services.notification.messages import OrderMessages, duration
from wenming.common.v1 import common_pb2 as c
from wenming.notification.v1 import notification_pb2 as pb
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import types_pb2

K = pb.MessageKind
YARD = c.UnitRef(unit_id="unit_yard", level=c.UNIT_LEVEL_COURTYARD, name="幸福小院", path=["unit_c", "unit_s", "unit_yard"])
STATION = c.UnitRef(unit_id="unit_s", level=c.UNIT_LEVEL_STATION, name="广场村实践站", path=["unit_c", "unit_s"])
CENTER = c.UnitRef(unit_id="unit_c", level=c.UNIT_LEVEL_CENTER, name="凉州区新时代文明实践中心", path=["unit_c"])
ADMINS = {"unit_yard": ["adm_yard"], "unit_s": ["adm_s1", "adm_s2"], "unit_c": ["adm_c"]}


def order(**fields) -> types_pb2.OrderSnapshot:
    return types_pb2.OrderSnapshot(**{"order_id": "ord_1", "item_id": "item_1", "item_name": "助老理发",
                                      "origin_courtyard": YARD, "current_unit": YARD, "resident_id": "res_1",
                                      **fields})


def consumed(payload, actor: str = "") -> ConsumedEvent:
    entry = EventSource("ordering").new(payload, district_id="d1", aggregate_type="order", aggregate_id="ord_1",
                                        version=2, actor_id=actor)
    envelope, decoded = decode(entry["value"])
    return ConsumedEvent(envelope, decoded, "wenming.ordering.v1.events", 0, 0)


def build(payload, actor: str = "", told=()) -> list[tuple[str, int, str, str, str]]:
    messages = OrderMessages(lambda district, unit: ADMINS.get(unit, []), lambda district, order_id: list(told))
    event = consumed(payload, actor)
    out = messages.builders()[payload.DESCRIPTOR.full_name](event)
    for recipient, message in out:
        assert recipient.district_id == "d1" and message.subject_id == "ord_1" and message.subject_type == "order"
        assert message.source_event_id == event.event_id
    return [(r.principal_id, m.kind, m.title, m.body, m.link) for r, m in out]


def test_an_order_placed_reaches_the_admins_of_the_unit_it_waits_at_and_not_the_one_who_placed_it():
    sent = build(ev.OrderPlaced(order=order(current_unit=STATION)), actor="adm_s2")
    assert [(to, kind, link) for to, kind, _, _, link in sent] == [
        ("adm_s1", K.MESSAGE_KIND_ORDER_ARRIVED, "/app/admin/orders/ord_1")]
    assert sent[0][2] == "新的群众点单" and "幸福小院" in sent[0][3] and "助老理发" in sent[0][3]


def test_a_wish_is_never_quoted():
    sent = build(ev.OrderAcknowledged(order=order(item_id="", item_name="帮我家修水管，电话13912345678")))
    assert [(to, kind) for to, kind, *_ in sent] == [("res_1", K.MESSAGE_KIND_ORDER_UPDATED)]
    assert "微心愿" in sent[0][3] and "1391" not in sent[0][3] and "水管" not in sent[0][3]


def test_an_automatic_escalation_tells_both_units():
    sent = build(ev.OrderEscalated(order=order(current_unit=STATION), from_unit=YARD, to_unit=STATION, automatic=True))
    assert sorted((to, kind) for to, kind, *_ in sent) == [
        ("adm_s1", K.MESSAGE_KIND_ORDER_ARRIVED), ("adm_s2", K.MESSAGE_KIND_ORDER_ARRIVED),
        ("adm_yard", K.MESSAGE_KIND_ORDER_OVERDUE)]
    manual = build(ev.OrderEscalated(order=order(current_unit=STATION), from_unit=YARD, to_unit=STATION), actor="adm_yard")
    assert sorted((to, kind) for to, kind, *_ in manual) == [
        ("adm_s1", K.MESSAGE_KIND_ORDER_ARRIVED), ("adm_s2", K.MESSAGE_KIND_ORDER_ARRIVED)]


def test_a_handed_over_order_reaches_the_admins_of_its_new_holder():
    sent = build(ev.OrderHandedOver(order=order(current_unit=YARD), from_unit=STATION, to_unit=YARD, reason="就近服务"),
                 actor="adm_s1")
    assert [(to, kind) for to, kind, *_ in sent] == [("adm_yard", K.MESSAGE_KIND_ORDER_ARRIVED)]
    assert sent[0][2] == "分派的群众点单" and "分派给幸福小院" in sent[0][3]


def test_deadline_near_names_the_due_time_in_china_time():
    due = dt.datetime(2026, 3, 5, 6, 30, tzinfo=dt.UTC)  # 14:30 in Beijing
    sent = build(ev.OrderDeadlineApproaching(order=order(), unit=YARD, due_at=to_timestamp(due)))
    assert [(to, kind) for to, kind, *_ in sent] == [("adm_yard", K.MESSAGE_KIND_ORDER_DEADLINE_NEAR)]
    assert "03月05日 14:30" in sent[0][3] and "自动上报" in sent[0][3]
    at_center = build(ev.OrderDeadlineApproaching(order=order(current_unit=CENTER), unit=CENTER, due_at=to_timestamp(due)))
    assert [to for to, *_ in at_center] == ["adm_c"] and "超时" in at_center[0][3]


def test_dispatch_tells_each_volunteer_and_the_resident():
    sent = build(ev.OrderDispatched(order=order(), volunteer_ids=["vol_a", "vol_b"]), actor="adm_yard")
    assert [(to, kind, link) for to, kind, _, _, link in sent] == [
        ("vol_a", K.MESSAGE_KIND_TASK_DISPATCHED, "/app/volunteer/tasks/ord_1"),
        ("vol_b", K.MESSAGE_KIND_TASK_DISPATCHED, "/app/volunteer/tasks/ord_1"),
        ("res_1", K.MESSAGE_KIND_ORDER_UPDATED, "/app/resident/orders/ord_1")]


def test_hours_confirmed_tell_each_volunteer_their_own_minutes():
    hours = [c.VolunteerHours(volunteer_id="vol_a", minutes=90)]
    sent = build(ev.OrderHoursConfirmed(order=order(volunteer_ids=["vol_a", "vol_b"]), hours=hours, recorded_by=YARD))
    bodies = {to: body for to, _, _, body, _ in sent}
    assert "1小时30分钟" in bodies["vol_a"] and "未记录" in bodies["vol_b"] and "评价" in bodies["res_1"]


def test_a_cancellation_reaches_everyone_offered_the_task_but_not_the_resident_who_cancelled():
    sent = build(ev.OrderCancelled(order=order(volunteer_ids=["vol_a"])), actor="res_1", told=["vol_a", "vol_b"])
    assert [(to, kind) for to, kind, *_ in sent] == [("vol_a", K.MESSAGE_KIND_TASK_UPDATED),
                                                     ("vol_b", K.MESSAGE_KIND_TASK_UPDATED)]
    on_behalf = build(ev.OrderCancelled(order=order()), actor="adm_yard")
    assert [(to, kind) for to, kind, *_ in on_behalf] == [("res_1", K.MESSAGE_KIND_ORDER_UPDATED)]


def test_the_first_acceptance_and_any_check_in_tell_the_resident_once():
    assert build(ev.OrderAccepted(order=order(volunteer_ids=["vol_a"]), volunteer_id="vol_a"), actor="vol_a")
    assert build(ev.OrderAccepted(order=order(volunteer_ids=["vol_a", "vol_b"]), volunteer_id="vol_b")) == []
    messages = OrderMessages(lambda *_: [], lambda *_: [])
    keys = {messages.checked_in(consumed(ev.OrderCheckedIn(order=order(), volunteer_id=v)))[0][1].dedup_key
            for v in ("vol_a", "vol_b")}
    assert keys == {"ord_1#in-service"}


def test_durations():
    assert [duration(m) for m in (45, 60, 135)] == ["45分钟", "1小时", "2小时15分钟"]
