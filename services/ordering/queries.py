"""Order queries, each paged by keyset and scoped by the caller's token:
my orders (resident), my tasks and the claim list (volunteer), a unit's queue (admin)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from services.common.auth import Principal, Role, require_manages, require_role
from services.common.clock import as_utc, clock
from services.common.ids import decode_page_token, encode_page_token
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

from .matching import Matcher
from .menu import MenuBook
from .models import Order
from .orders import WAITING_ACK, OrderDesk

S = types_pb2.OrderStatus
# every status in which some unit or volunteer still has something to do
OPEN_STATUSES = [S.ORDER_STATUS_PLACED, S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_ESCALATED,
                 S.ORDER_STATUS_DISPATCHED, S.ORDER_STATUS_OPEN, S.ORDER_STATUS_ACCEPTED, S.ORDER_STATUS_IN_SERVICE,
                 S.ORDER_STATUS_COMPLETED, S.ORDER_STATUS_HOURS_CONFIRMED, S.ORDER_STATUS_RATED,
                 S.ORDER_STATUS_DECLINED]
LIST_PROJECTION = {"outbox": 0, "trail": 0}
CLAIM_SCAN_BATCH = 100
BREACH_WINDOW = dt.timedelta(days=30)


@dataclass
class OrderStats:
    in_progress: Counter  # (status, level of the holding unit) -> orders
    overdue: int
    sla_breaches: int


def _page(query: dict, sort_field: str, direction: int, size: int) -> tuple[list[Order], str]:
    found = [Order.from_raw(r) for r in
             Order.collection().find(query, LIST_PROJECTION).sort(sort_field, direction).limit(size + 1)]
    token = encode_page_token(_sort_value(found[size - 1], sort_field)) if len(found) > size else ""
    return found[:size], token


def _sort_value(order: Order, sort_field: str) -> str:
    return order.id if sort_field == "_id" else getattr(order, sort_field)


class OrderQueries:
    def __init__(self, desk: OrderDesk, menu: MenuBook, matcher: Matcher):
        self.desk = desk
        self.menu = menu
        self.matcher = matcher

    def get(self, principal: Principal, order_id: str) -> Order:
        order_id = self.desk.order_id(order_id)
        order, _ = self.desk.load(principal.district_id, order_id)
        self.desk.require_view(principal, order)
        return order

    def _statuses(self, v: Validator, statuses) -> list[int]:
        return v.enums("statuses", list(statuses), types_pb2.OrderStatus, max_count=14)

    def my_orders(self, principal: Principal, req: pb.ListMyOrdersRequest) -> tuple[list[Order], str]:
        v = Validator()
        statuses = self._statuses(v, req.statuses)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        require_role(principal, Role.ROLE_RESIDENT)
        query: dict = {"district_id": principal.district_id, "resident_id": principal.subject}
        return _page(self._filtered(query, statuses, after, "$lt"), "_id", -1, size)

    def my_tasks(self, principal: Principal, req: pb.ListMyTasksRequest) -> tuple[list[Order], str]:
        v = Validator()
        statuses = self._statuses(v, req.statuses)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        require_role(principal, Role.ROLE_VOLUNTEER)
        query: dict = {"district_id": principal.district_id, "offered_ids": principal.subject}
        return _page(self._filtered(query, statuses, after, "$lt"), "_id", -1, size)

    @staticmethod
    def _filtered(query: dict, statuses: list[int], after: str | None, direction: str) -> dict:
        if statuses:
            query["status"] = {"$in": statuses}
        if after:
            query["_id"] = {direction: after}
        return query

    def claimable(self, principal: Principal, req: pb.ListClaimableOrdersRequest) -> tuple[list[Order], str]:
        """OPEN orders handled by a unit the volunteer serves under, that they qualify for."""
        v = Validator()
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        require_role(principal, Role.ROLE_VOLUNTEER)
        volunteer = self.desk.registry.volunteer(principal.district_id, principal.subject)
        if volunteer is None:
            return [], ""
        held = self.matcher.certifications.valid_codes(principal.district_id, [principal.subject])[principal.subject]
        query = {"district_id": principal.district_id, "status": S.ORDER_STATUS_OPEN,
                 "current.unit_id": {"$in": list(volunteer.get("scope", ()))}}
        found: list[Order] = []
        # qualification is checked here, so read in batches until the page is full
        while len(found) <= size:
            batch = list(Order.collection().find({**query, **({"_id": {"$gt": after}} if after else {})},
                                                 LIST_PROJECTION).sort("_id", 1).limit(CLAIM_SCAN_BATCH))
            for raw in batch:
                after = raw["_id"]
                order = Order.from_raw(raw)
                if self.matcher.why_not(order, volunteer, held) is None:
                    found.append(order)
                    if len(found) > size:
                        break
            if len(batch) < CLAIM_SCAN_BATCH:
                break
        token = encode_page_token(found[size - 1].id) if len(found) > size else ""
        return found[:size], token

    def unit_queue(self, principal: Principal, req: pb.ListUnitQueueRequest) -> tuple[list[Order], str]:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        statuses = self._statuses(v, req.statuses) or OPEN_STATUSES
        v.enum("level", req.level, common_pb2.UnitLevel, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        require_role(principal, Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE)
        path = self.menu.unit_path(principal, unit_id, "unit_id")
        require_manages(principal, principal.district_id, path)
        unit = path[-1]
        query: dict = {"district_id": principal.district_id,
                       "current.path" if req.include_subtree else "current.unit_id": unit,
                       "status": {"$in": statuses}}
        if req.level:
            query["current.level"] = req.level
        if after:
            query["queue_key"] = {"$gt": after}
        return _page(query, "queue_key", 1, size)

    def stats(self, principal: Principal, unit_id: str) -> OrderStats:
        """指挥调度 numbers for a subtree. Counted from projections of the matching orders (not an
        aggregation pipeline) so it answers the same on MongoDB and FerretDB."""
        v = Validator()
        unit_id = v.ident("unit_id", unit_id, required=False)
        v.check()
        require_role(principal, Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE)
        path = self.menu.unit_path(principal, unit_id, "unit_id")
        require_manages(principal, principal.district_id, path)
        unit, now = path[-1], clock.now()
        collection = Order.collection()
        in_progress: Counter = Counter()
        overdue = 0
        for raw in collection.find({"district_id": principal.district_id, "current.path": unit,
                                    "status": {"$in": OPEN_STATUSES}},
                                   {"status": 1, "current.level": 1, "ack_due_at": 1}):
            in_progress[(raw["status"], raw["current"]["level"])] += 1
            due = raw.get("ack_due_at")
            if raw["status"] in WAITING_ACK and due is not None and as_utc(due) < now:
                overdue += 1
        # breaches belong to where the order came from: after climbing it is held outside the subtree
        breaches = sum(raw["sla_breaches"] for raw in collection.find(
            {"district_id": principal.district_id, "origin.path": unit, "placed_at": {"$gte": now - BREACH_WINDOW},
             "sla_breaches": {"$gt": 0}}, {"sla_breaches": 1}))
        return OrderStats(in_progress=in_progress, overdue=overdue, sla_breaches=breaches)

    def suggest(self, principal: Principal, req: pb.SuggestVolunteersRequest):
        v = Validator()
        order_id = v.ident("order_id", req.order_id)
        limit = v.int_range("limit", req.limit, 0, 50) or 10
        v.check()
        require_role(principal, Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE)
        order, _ = self.desk.load(principal.district_id, order_id)
        require_manages(principal, principal.district_id, order.current.path, "order")
        return self.matcher.suggest(order, limit)
