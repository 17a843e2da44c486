"""指挥调度 trends: the orders placed in a subtree by China-time day or month, and the funnel
点单 → 受理 → 派单 → 接单 → 完成 → 评单 with the average time each stage took.

Counted in Python from a projection of each order's timestamps (one indexed query on district,
origin path and placement time), not by an aggregation pipeline: FerretDB v1 computes only the
first accumulator of a $group, and the funnel needs several per stage. Orders belong to the
subtree they were placed in (their courtyard), wherever they climbed since.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from services.common.auth import Principal, Role, require_manages, require_role
from services.common.clock import CHINA, as_utc, clock
from services.common.validation import Validator
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

from .menu import MenuBook
from .models import Order

S = types_pb2.OrderStatus
G = pb.TrendGranularity
MAX_BUCKETS = 92
DEFAULT_BUCKETS = {G.TREND_GRANULARITY_DAY: 30, G.TREND_GRANULARITY_MONTH: 12}
ENDED_UNSERVED = (S.ORDER_STATUS_CANCELLED, S.ORDER_STATUS_REJECTED)
# stage, label, the order's timestamp of reaching it
FUNNEL = (("placed", "点单", "placed_at"), ("acknowledged", "受理", "acknowledged_at"),
          ("dispatched", "派单", "dispatched_at"), ("accepted", "接单", "accepted_at"),
          ("completed", "完成", "completed_at"), ("rated", "评单", "rated_at"))
TIME_FIELD = {stage: time_field for stage, _, time_field in FUNNEL}
PROJECTION = {"_id": 0, "status": 1, "rating": 1, **{time_field: 1 for time_field in TIME_FIELD.values()}}


@dataclass
class Bucket:
    start: dt.datetime
    placed: int = 0
    dispatched: int = 0
    completed: int = 0
    rated: int = 0
    cancelled: int = 0


@dataclass
class Stage:
    stage: str
    label: str
    orders: int = 0
    seconds: float = 0.0  # summed over the orders whose both timestamps are known
    timed: int = 0

    @property
    def avg_seconds(self) -> int:
        return round(self.seconds / self.timed) if self.timed else 0


@dataclass
class Trends:
    buckets: list[Bucket]
    funnel: list[Stage] = field(default_factory=list)


def _floor(moment: dt.datetime, granularity: int) -> dt.datetime:
    """The start of the China-time day or month holding `moment`."""
    day = as_utc(moment).astimezone(CHINA).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.replace(day=1) if granularity == G.TREND_GRANULARITY_MONTH else day


def _step(start: dt.datetime, granularity: int, count: int = 1) -> dt.datetime:
    """`count` days or months after `start` (China time has no daylight saving)."""
    if granularity == G.TREND_GRANULARITY_DAY:
        return start + dt.timedelta(days=count)
    months = start.year * 12 + start.month - 1 + count
    return start.replace(year=months // 12, month=months % 12 + 1)


def _reached(raw: dict, stage: str) -> bool:
    if stage == "rated":  # orders rated before rated_at was kept have only their rating
        return raw.get("rating", 0) > 0
    return raw.get(TIME_FIELD[stage]) is not None


class OrderTrends:
    def __init__(self, menu: MenuBook):
        self.menu = menu

    def trends(self, principal: Principal, req: pb.GetOrderTrendsRequest) -> Trends:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        granularity = v.enum("granularity", req.granularity, pb.TrendGranularity, required=False) or \
            G.TREND_GRANULARITY_DAY
        since = v.timestamp("from", req, required=False)
        until = v.timestamp("to", req, required=False)
        v.check()
        until = until or clock.now()
        if since is not None and since >= until:
            v.fail("to", "must be after from")
        v.check()
        last = _floor(until - dt.timedelta(microseconds=1), granularity)
        first = _floor(since, granularity) if since else _step(last, granularity, 1 - DEFAULT_BUCKETS[granularity])
        starts = [first]
        while len(starts) <= MAX_BUCKETS and (following := _step(starts[-1], granularity)) < until:
            starts.append(following)
        if len(starts) > MAX_BUCKETS:
            unit = "days" if granularity == G.TREND_GRANULARITY_DAY else "months"
            v.fail("from", f"the window spans more than {MAX_BUCKETS} {unit}; at most {MAX_BUCKETS} buckets")
        v.check()
        require_role(principal, Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE)
        path = self.menu.unit_path(principal, unit_id, "unit_id")
        require_manages(principal, principal.district_id, path)

        buckets = [Bucket(start) for start in starts]
        funnel = [Stage(stage, label) for stage, label, _ in FUNNEL]
        for raw in Order.collection().find({"district_id": principal.district_id, "origin.path": path[-1],
                                            "placed_at": {"$gte": since or first, "$lt": until}}, PROJECTION):
            self._count(raw, buckets, funnel, granularity, first)
        return Trends(buckets, funnel)

    @staticmethod
    def _count(raw: dict, buckets: list[Bucket], funnel: list[Stage], granularity: int, first: dt.datetime) -> None:
        start = _floor(raw["placed_at"], granularity)
        index = (start - first).days if granularity == G.TREND_GRANULARITY_DAY else \
            (start.year - first.year) * 12 + start.month - first.month
        bucket = buckets[index]
        bucket.placed += 1
        bucket.dispatched += _reached(raw, "dispatched")
        bucket.completed += _reached(raw, "completed")
        bucket.rated += _reached(raw, "rated")
        bucket.cancelled += raw["status"] in ENDED_UNSERVED
        previous = raw["placed_at"]
        for stage in funnel:
            if not _reached(raw, stage.stage):
                break
            stage.orders += 1
            at = raw.get(TIME_FIELD[stage.stage])
            if at is not None and previous is not None and stage.stage != "placed":
                stage.seconds += max(0.0, (as_utc(at) - as_utc(previous)).total_seconds())
                stage.timed += 1
            previous = at
