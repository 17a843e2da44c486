"""What each ordering event tells whom: the inbox messages (站内消息) an event makes.

One builder per event type returns (recipient, message) pairs. Recipients are principal ids:
the resident and the volunteers come from the order's snapshot (and the dispatched ids of
OrderDispatched), a unit's admins from registration's AdminAccountCreated events. Texts are
Simplified Chinese and carry no personal data: the service is named by its menu item (a wish's
own words are the resident's, so a wish is only called 微心愿), units by their names, people never.

docs/notification.md has the table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, cast

from services.common.clock import CHINA, clock
from services.common.consumer import ConsumedEvent
from services.common.ids import new_id
from wenming.common.v1 import common_pb2
from wenming.notification.v1 import notification_pb2 as pb
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import types_pb2 as order_types

K = pb.MessageKind
Role = common_pb2.Role

ADMIN_LINK = "/app/admin/orders/{}"
VOLUNTEER_LINK = "/app/volunteer/tasks/{}"
RESIDENT_LINK = "/app/resident/orders/{}"


@dataclass(frozen=True)
class Recipient:
    district_id: str
    principal_id: str
    role: Role


@dataclass(frozen=True)
class Message:
    """One message for one recipient. `dedup_key` makes it once-only: the source event's id, or
    an order step that may be announced by several events but is told once (服务开始)."""

    message_id: str
    kind: int
    title: str
    body: str
    link: str
    subject_type: str
    subject_id: str
    created_at: dt.datetime
    dedup_key: str
    source_event_id: str


Delivery = tuple[Recipient, Message]


class _OrderEvent(Protocol):
    order: order_types.OrderSnapshot


def order_of(event: ConsumedEvent) -> order_types.OrderSnapshot:
    """The order every event of an order carries whole (its `order` field)."""
    return cast(_OrderEvent, event.payload).order


def service_name(order: order_types.OrderSnapshot) -> str:
    """The menu item's name; a wish (微心愿, no item) is the resident's own words, never repeated."""
    return order.item_name if order.item_id else "微心愿"


def duration(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest}分钟"
    return f"{hours}小时{rest}分钟" if rest else f"{hours}小时"


class OrderMessages:
    """Builds the messages of ordering's events. `admins_of(district_id, unit_id)` names a unit's
    admin accounts; `dispatched_to(district_id, order_id)` the volunteers already told of a task
    about the order (so a cancellation reaches those who were offered it but had not accepted)."""

    def __init__(self, admins_of: Callable[[str, str], list[str]],
                 dispatched_to: Callable[[str, str], list[str]]):
        self.admins_of = admins_of
        self.dispatched_to = dispatched_to

    def builders(self) -> dict[str, Callable[[ConsumedEvent], list[Delivery]]]:
        return {
            ev.OrderPlaced.DESCRIPTOR.full_name: self.placed,
            ev.OrderEscalated.DESCRIPTOR.full_name: self.escalated,
            ev.OrderHandedOver.DESCRIPTOR.full_name: self.handed_over,
            ev.OrderOverdue.DESCRIPTOR.full_name: self.overdue,
            ev.OrderDeadlineApproaching.DESCRIPTOR.full_name: self.deadline_approaching,
            ev.OrderAcknowledged.DESCRIPTOR.full_name: self.acknowledged,
            ev.OrderDispatched.DESCRIPTOR.full_name: self.dispatched,
            ev.OrderOpened.DESCRIPTOR.full_name: self.opened,
            ev.OrderAccepted.DESCRIPTOR.full_name: self.accepted,
            ev.OrderClaimed.DESCRIPTOR.full_name: self.accepted,
            ev.OrderCheckedIn.DESCRIPTOR.full_name: self.checked_in,
            ev.OrderCompleted.DESCRIPTOR.full_name: self.completed,
            ev.OrderHoursConfirmed.DESCRIPTOR.full_name: self.hours_confirmed,
            ev.OrderRated.DESCRIPTOR.full_name: self.rated,
            ev.OrderCancelled.DESCRIPTOR.full_name: self.cancelled,
            ev.OrderRejected.DESCRIPTOR.full_name: self.rejected,
        }

    # ---- unit admins ----

    def placed(self, event: ConsumedEvent) -> list[Delivery]:
        o = order_of(event)
        return self._admins(event, o.current_unit.unit_id, K.MESSAGE_KIND_ORDER_ARRIVED, "新的群众点单",
                            f"来自{o.origin_courtyard.name}的群众点单“{service_name(o)}”已到{o.current_unit.name}，"
                            "请及时受理。")

    def escalated(self, event: ConsumedEvent) -> list[Delivery]:
        p = event.payload_as(ev.OrderEscalated)
        service = service_name(p.order)
        if not p.automatic:
            return self._admins(event, p.to_unit.unit_id, K.MESSAGE_KIND_ORDER_ARRIVED, "上报的群众点单",
                                f"{p.from_unit.name}上报了群众点单“{service}”，请及时受理。")
        return [
            *self._admins(event, p.to_unit.unit_id, K.MESSAGE_KIND_ORDER_ARRIVED, "上报的群众点单",
                          f"{p.from_unit.name}未在时限内受理群众点单“{service}”，已自动上报，请及时受理。"),
            *self._admins(event, p.from_unit.unit_id, K.MESSAGE_KIND_ORDER_OVERDUE, "点单已超时上报",
                          f"群众点单“{service}”未在时限内受理，已按四必接自动上报至{p.to_unit.name}。"),
        ]

    def handed_over(self, event: ConsumedEvent) -> list[Delivery]:
        p = event.payload_as(ev.OrderHandedOver)
        return self._admins(event, p.to_unit.unit_id, K.MESSAGE_KIND_ORDER_ARRIVED, "分派的群众点单",
                            f"{p.from_unit.name}将群众点单“{service_name(p.order)}”分派给{p.to_unit.name}，"
                            "请及时受理。")

    def overdue(self, event: ConsumedEvent) -> list[Delivery]:
        p = event.payload_as(ev.OrderOverdue)
        return self._admins(event, p.unit.unit_id, K.MESSAGE_KIND_ORDER_OVERDUE, "点单已超时",
                            f"群众点单“{service_name(p.order)}”未在{p.allowed_minutes}分钟内受理，已超时，请尽快受理。")

    def deadline_approaching(self, event: ConsumedEvent) -> list[Delivery]:
        p = event.payload_as(ev.OrderDeadlineApproaching)
        due = p.due_at.ToDatetime(dt.UTC).astimezone(CHINA)
        then = "逾期将记为超时" if p.unit.level == common_pb2.UNIT_LEVEL_CENTER else "逾期将自动上报"
        return self._admins(event, p.unit.unit_id, K.MESSAGE_KIND_ORDER_DEADLINE_NEAR, "点单即将超时",
                            f"群众点单“{service_name(p.order)}”须在{due:%m月%d日 %H:%M}前受理，{then}。")

    def completed(self, event: ConsumedEvent) -> list[Delivery]:
        o = order_of(event)
        return [
            *self._admins(event, o.current_unit.unit_id, K.MESSAGE_KIND_ORDER_TO_CONFIRM, "服务时长待审核",
                          f"群众点单“{service_name(o)}”已完成服务，请审核志愿服务时长。"),
            *self._resident(event, "服务已完成", f"您的点单“{service_name(o)}”已完成服务，待{o.current_unit.name}审核。"),
        ]

    # ---- volunteers (and the resident where the same step concerns them) ----

    def dispatched(self, event: ConsumedEvent) -> list[Delivery]:
        p = event.payload_as(ev.OrderDispatched)
        o, service = p.order, service_name(p.order)
        return [
            *self._volunteers(event, p.volunteer_ids, K.MESSAGE_KIND_TASK_DISPATCHED, "新的服务任务",
                              lambda _: f"{o.current_unit.name}派给您一项服务任务“{service}”，请及时接单。"),
            *self._resident(event, "点单已派单", f"您的点单“{service}”已派给志愿者，等待接单。"),
        ]

    def hours_confirmed(self, event: ConsumedEvent) -> list[Delivery]:
        p = event.payload_as(ev.OrderHoursConfirmed)
        o, service = p.order, service_name(p.order)
        minutes = {h.volunteer_id: h.minutes for h in p.hours}

        def body(volunteer_id: str) -> str:
            if volunteer_id not in minutes:
                return f"{p.recorded_by.name}已审核“{service}”，本次未记录您的服务时长。"
            return f"{p.recorded_by.name}已确认您在“{service}”中的服务时长：{duration(minutes[volunteer_id])}。"

        return [
            *self._volunteers(event, o.volunteer_ids, K.MESSAGE_KIND_TASK_UPDATED, "服务时长已确认", body),
            *self._resident(event, "服务已审核，请评价", f"您的点单“{service}”已审核完成，欢迎对本次服务进行评价。"),
        ]

    def rated(self, event: ConsumedEvent) -> list[Delivery]:
        p = event.payload_as(ev.OrderRated)
        return self._volunteers(event, p.order.volunteer_ids, K.MESSAGE_KIND_TASK_UPDATED, "服务获得评价",
                                lambda _: f"群众为“{service_name(p.order)}”的服务评了{p.rating}星。")

    def cancelled(self, event: ConsumedEvent) -> list[Delivery]:
        o = order_of(event)
        told = self.dispatched_to(event.envelope.district_id, o.order_id)
        volunteers = list(dict.fromkeys([*o.volunteer_ids, *told]))
        return [
            *self._volunteers(event, volunteers, K.MESSAGE_KIND_TASK_UPDATED, "服务任务已取消",
                              lambda _: f"服务任务“{service_name(o)}”已取消，无需前往。"),
            *self._resident(event, "点单已取消", f"您的点单“{service_name(o)}”已取消。"),
        ]

    # ---- the resident ----

    def acknowledged(self, event: ConsumedEvent) -> list[Delivery]:
        o = order_of(event)
        return self._resident(event, "点单已受理", f"{o.current_unit.name}已受理您的点单“{service_name(o)}”，正在安排志愿者。")

    def opened(self, event: ConsumedEvent) -> list[Delivery]:
        return self._resident(event, "点单已派单", f"您的点单“{service_name(order_of(event))}”已发布，等待志愿者认领。")

    def accepted(self, event: ConsumedEvent) -> list[Delivery]:
        o = order_of(event)
        if len(o.volunteer_ids) != 1:  # a team accepting one by one: the first acceptance is the news
            return []
        return self._resident(event, "志愿者已接单", f"志愿者已接下您的点单“{service_name(o)}”。")

    def checked_in(self, event: ConsumedEvent) -> list[Delivery]:
        o = order_of(event)
        # every volunteer on site checks in; the service starts once
        return self._resident(event, "服务已开始", f"志愿者已签到，您的点单“{service_name(o)}”开始服务。",
                              once=f"{o.order_id}#in-service")

    def rejected(self, event: ConsumedEvent) -> list[Delivery]:
        o = order_of(event)
        return self._resident(event, "点单未能受理", f"很抱歉，您的点单“{service_name(o)}”未能受理，原因请查看点单详情。")

    # ---- building ----

    def _admins(self, event: ConsumedEvent, unit_id: str, kind: int, title: str, body: str) -> list[Delivery]:
        if not unit_id:
            return []
        return self._each(event, self.admins_of(event.envelope.district_id, unit_id), Role.ROLE_UNIT_ADMIN, kind,
                          title, lambda _: body, ADMIN_LINK)

    def _volunteers(self, event: ConsumedEvent, volunteer_ids: Iterable[str], kind: int, title: str,
                    body: Callable[[str], str]) -> list[Delivery]:
        return self._each(event, volunteer_ids, Role.ROLE_VOLUNTEER, kind, title, body, VOLUNTEER_LINK)

    def _resident(self, event: ConsumedEvent, title: str, body: str, once: str = "") -> list[Delivery]:
        return self._each(event, [order_of(event).resident_id], Role.ROLE_RESIDENT, K.MESSAGE_KIND_ORDER_UPDATED,
                          title, lambda _: body, RESIDENT_LINK, once)

    @staticmethod
    def _each(event: ConsumedEvent, principal_ids: Iterable[str], role: Role, kind: int, title: str,
              body: Callable[[str], str], link: str, once: str = "") -> list[Delivery]:
        """One message per recipient; nobody is told of what they did themselves."""
        order_id = order_of(event).order_id
        district = event.envelope.district_id
        now = clock.now()
        return [(Recipient(district, pid, role),
                 Message(message_id=new_id("msg"), kind=kind, title=title, body=body(pid), link=link.format(order_id),
                         subject_type="order", subject_id=order_id, created_at=now,
                         dedup_key=once or event.event_id, source_event_id=event.event_id))
                for pid in dict.fromkeys(principal_ids) if pid and pid != event.envelope.actor_id]
