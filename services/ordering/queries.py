"""Order queries, each paged by keyset and scoped by the caller's token: my orders (resident), my
tasks and the claim list (volunteer), a unit's queue and its dashboard numbers (admin).

Each reads ordering's index entries (index.py) — a window of buckets at a time where a list can be
long (services/common/listing.py) — and then the page's orders by id. An order is shown only if it
still is what its entry says: an entry lags its order only between the two writes, or until the
follower repaired it after a crash."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from services.common.auth import Principal, Role, require_manages, require_role
from services.common.clock import as_utc, clock
from services.common.errors import InvalidArgument
from services.common.ids import decode_page_token, encode_page_token
from services.common.listing import MAX_WINDOW, key, scan
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

from .index import ENDED, OPEN, ORDERS, WAITING, OrderIndex, queue_bucket, today
from .matching import Matcher
from .menu import MenuBook
from .models import Order
from .orders import OPEN_STATUSES, WAITING_ACK, OrderDesk, queue_key
from .trends import OrderTrends

S = types_pb2.OrderStatus
LIST_PROJECTION = {"outbox": 0, "trail": 0}
BREACH_WINDOW = dt.timedelta(days=30)
# buckets (days) the first read of a queue covers: a unit lower in the tree holds fewer orders a day
FIRST_WINDOW = {0: 1, 1: 4, 2: 16, 3: 64}
ENTRY_FIELDS = {"status": 1, "level": 1, "qk": 1, "due": 1, "skills": 1, "certs": 1, "unit": 1}


@dataclass
class OrderStats:
    in_progress: Counter  # (status, level of the holding unit) -> orders
    overdue: int
    sla_breaches: int


def _newest_first(entry: dict) -> str:
    return entry["_id"]


class OrderQueries:
    def __init__(self, desk: OrderDesk, menu: MenuBook, matcher: Matcher, index: OrderIndex, trends: OrderTrends):
        self.desk = desk
        self.menu = menu
        self.matcher = matcher
        self.index = index
        self.trends = trends

    def get(self, principal: Principal, order_id: str) -> Order:
        order_id = self.desk.order_id(order_id)
        order, _ = self.desk.load(principal.district_id, order_id)
        self.desk.require_view(principal, order)
        return order

    def _statuses(self, v: Validator, statuses) -> list[int]:
        return v.enums("statuses", list(statuses), types_pb2.OrderStatus, max_count=14)

    def _orders(self, entries: list[dict], still: Callable[[dict], bool]) -> list[Order]:
        """The orders of a page, in the entries' order, each only if it still matches."""
        ids = [e["_id"] for e in entries]
        found = {raw["_id"]: raw for raw in Order.collection().find({"_id": {"$in": ids}}, LIST_PROJECTION)}
        return [Order.from_raw(found[i]) for i in ids if i in found and still(found[i])]

    # ---- residents and volunteers ----

    def my_orders(self, principal: Principal, req: pb.ListMyOrdersRequest) -> tuple[list[Order], str]:
        v = Validator()
        statuses = set(self._statuses(v, req.statuses))
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        require_role(principal, Role.ROLE_RESIDENT)
        mine = key(principal.district_id, principal.subject)
        page = scan(lambda _: self.index.entries.find({"mine": mine}, ENTRY_FIELDS), [0], sort_key=_newest_first,
                    size=size, after=after, descending=True, accept=lambda e: not statuses or e["status"] in statuses)
        orders = self._orders(page.entries, lambda raw: raw["resident_id"] == principal.subject
                              and raw["district_id"] == principal.district_id)
        return orders, encode_page_token(page.entries[-1]["_id"]) if page.more else ""

    def my_tasks(self, principal: Principal, req: pb.ListMyTasksRequest) -> tuple[list[Order], str]:
        v = Validator()
        statuses = set(self._statuses(v, req.statuses))
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        require_role(principal, Role.ROLE_VOLUNTEER)
        offered = sorted(t["order"] for t in self.index.tasks.find({"k": key(principal.district_id, principal.subject)},
                                                                    {"order": 1}))

        def fetch(_) -> list[dict]:
            return [e for at in range(0, len(offered), MAX_WINDOW)
                    for e in self.index.entries.find({"_id": {"$in": offered[at:at + MAX_WINDOW]}}, ENTRY_FIELDS)]

        page = scan(fetch, [0], sort_key=_newest_first, size=size, after=after, descending=True,
                    accept=lambda e: not statuses or e["status"] in statuses)
        orders = self._orders(page.entries, lambda raw: principal.subject in raw.get("offered_ids", ())
                              and raw["district_id"] == principal.district_id)
        return orders, encode_page_token(page.entries[-1]["_id"]) if page.more else ""

    def claimable(self, principal: Principal, req: pb.ListClaimableOrdersRequest) -> tuple[list[Order], str]:
        """OPEN orders handled by a unit the volunteer serves under, that they qualify for, in
        the order they were placed."""
        v = Validator()
        size = v.page_size("page.page_size", req.page.page_size)
        after = self._queue_cursor(principal.district_id, decode_page_token(req.page.page_token))
        v.check()
        require_role(principal, Role.ROLE_VOLUNTEER)
        volunteer = self.desk.registry.volunteer(principal.district_id, principal.subject)
        if volunteer is None:
            return [], ""
        held = self.matcher.certifications.valid_codes(principal.district_id, [principal.subject])[principal.subject]
        skills = set(volunteer.get("skills", ()))
        units = list(volunteer.get("scope", ()))
        district = principal.district_id

        def fetch(days: list[int]) -> list[dict]:
            keys = [key(district, unit, OPEN, day) for unit in units for day in days]
            return [e for at in range(0, len(keys), MAX_WINDOW)
                    for e in self.index.entries.find({"own": {"$in": keys[at:at + MAX_WINDOW]}}, ENTRY_FIELDS)]

        def qualifies(entry: dict) -> bool:
            return (entry["status"] == S.ORDER_STATUS_OPEN and set(entry["skills"]) <= skills
                    and set(entry["certs"]) <= held)

        days = list(self.index.bounds.days(district, ORDERS, today()))
        page = scan(fetch, days, sort_key=lambda e: e["qk"], bucket_of=queue_bucket, size=size, after=after,
                    accept=qualifies, window=max(1, MAX_WINDOW // max(1, len(units))))
        orders = self._orders(page.entries, lambda raw: raw["status"] == S.ORDER_STATUS_OPEN and self.matcher.why_not(
            Order.from_raw(raw), volunteer, held) is None)
        return orders, encode_page_token(page.entries[-1]["qk"]) if page.more else ""

    # ---- a unit's queue and numbers ----

    def _queue_cursor(self, district_id: str, token: str | None) -> str | None:
        """A page token is the last queue key shown; one from before queue keys carried the
        placement time (`1|<order id>`) is translated."""
        if token is None or not token.startswith("1|") or token[2:3].isdigit():
            return token
        raw = Order.collection().find_one({"_id": token[2:], "district_id": district_id}, {"trail": 0, "outbox": 0})
        if raw is None:
            raise InvalidArgument.field("page.page_token", "is not a token returned by this API")
        return queue_key({**raw, "status": S.ORDER_STATUS_CLOSED})  # the placement key, whatever it is now

    def unit_queue(self, principal: Principal, req: pb.ListUnitQueueRequest) -> tuple[list[Order], str]:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        statuses = set(self._statuses(v, req.statuses) or OPEN_STATUSES)
        v.enum("level", req.level, common_pb2.UnitLevel, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        token = decode_page_token(req.page.page_token)
        v.check()
        require_role(principal, Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE)
        path = self.menu.unit_path(principal, unit_id, "unit_id")
        require_manages(principal, principal.district_id, path)
        after = self._queue_cursor(principal.district_id, token)
        district, unit, depth = principal.district_id, path[-1], len(path) - 1
        field = f"in{depth}" if req.include_subtree else "own"
        waiting = bool(statuses & set(WAITING_ACK))
        phases = [p for p, wanted in ((OPEN, statuses & set(OPEN_STATUSES)), (ENDED, statuses - set(OPEN_STATUSES)))
                  if wanted]

        def fetch(buckets: list[int]) -> list[dict]:
            keys = [key(district, unit, WAITING, 0)] if waiting and 0 in buckets else []
            keys += [key(district, unit, phase, day) for day in buckets if day for phase in phases]
            return [e for at in range(0, len(keys), MAX_WINDOW)
                    for e in self.index.entries.find({field: {"$in": keys[at:at + MAX_WINDOW]}}, ENTRY_FIELDS)]

        def wanted(entry: dict) -> bool:
            return entry["status"] in statuses and (not req.level or entry["level"] == req.level)

        buckets = [0, *self.index.bounds.days(district, ORDERS, today())]
        page = scan(fetch, buckets, sort_key=lambda e: e["qk"], bucket_of=queue_bucket, size=size, after=after,
                    accept=wanted, window=FIRST_WINDOW[depth] + 1)

        def still(raw: dict) -> bool:
            held = raw["current"]["path"] if req.include_subtree else [raw["current"]["unit_id"]]
            return raw["district_id"] == district and unit in held and raw["status"] in statuses and (
                not req.level or raw["current"]["level"] == req.level)

        return self._orders(page.entries, still), encode_page_token(page.entries[-1]["qk"]) if page.more else ""

    def stats(self, principal: Principal, unit_id: str) -> OrderStats:
        """指挥调度 numbers for a subtree: its open orders by status and holding level (from their
        index entries), those past their acknowledgement deadline now, and the deadlines missed
        by the orders placed in it over the last 30 days (from the trend roll-up, trends.py)."""
        v = Validator()
        unit_id = v.ident("unit_id", unit_id, required=False)
        v.check()
        require_role(principal, Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE)
        path = self.menu.unit_path(principal, unit_id, "unit_id")
        require_manages(principal, principal.district_id, path)
        district, unit, depth, now = principal.district_id, path[-1], len(path) - 1, clock.now()
        keys = [key(district, unit, WAITING, 0)] + [key(district, unit, OPEN, day)
                                                     for day in self.index.bounds.days(district, ORDERS, today())]
        in_progress: Counter = Counter()
        overdue = 0
        for at in range(0, len(keys), MAX_WINDOW):
            for entry in self.index.entries.find({f"in{depth}": {"$in": keys[at:at + MAX_WINDOW]}},
                                                 {"status": 1, "level": 1, "due": 1}):
                in_progress[(entry["status"], entry["level"])] += 1
                due = entry.get("due")
                overdue += entry["status"] in WAITING_ACK and due is not None and as_utc(due) < now
        breaches = self.trends.sum_breaches(district, path, now - BREACH_WINDOW, now)
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
