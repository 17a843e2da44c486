"""指挥调度 trends: the orders placed in a subtree by China-time day or month, and the funnel
点单 → 受理 → 派单 → 接单 → 完成 → 评单 with the average time each stage took; and the deadlines
missed by the orders placed in a subtree (GetOrderStats).

Everything is a sum over the orders placed in a window, per China day (an order belongs to the
courtyard it was placed at, wherever it climbed since). Counted from the orders' index entries
(index.py, keys `og<i>` = district|unit|day), and for the center and the institutes — thousands
of orders a month — from a roll-up per (unit, day) that the job `roll-up-order-trends` keeps:

- every write of an order marks its entry `rp` (roll-up pending);
- the job recomputes the whole day of each pending entry from that day's entries, stores the
  roll-ups of the day, marks the day rolled, and only then clears `rp` of the entries it saw,
  each guarded by the version it saw (a later change stays pending);
- a read sums the roll-ups of rolled days holding no pending entry of its subtree, and counts the
  other days (and a window's partial first or last day) from the entries themselves.

So a read is exact at once, and costs a roll-up per day plus the entries changed since the job's
last pass. (Counted in Python, not by `$group`: FerretDB v1 computes one accumulator per stage.)
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field

from pymongo import ASCENDING

from services.common.auth import Principal, Role, require_manages, require_role
from services.common.clock import CHINA, as_utc, china_day, clock
from services.common.listing import MAX_WINDOW, key
from services.common.validation import Validator
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

from .index import ORDERS, OrderIndex, day_start
from .menu import MenuBook

log = logging.getLogger(__name__)

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
ENTRY_FIELDS = {"status": 1, "rating": 1, "breaches": 1, "opath": 1, "v": 1, **{t: 1 for t in TIME_FIELD.values()}}
ROLLUP_DEPTH = 1  # the center and the institutes; a station's or courtyard's days are counted directly
ROLLUP_BATCH = 5000  # pending entries one pass of the job takes per district


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


def _reached(entry: dict, stage: str) -> bool:
    if stage == "rated":  # orders rated before rated_at was kept have only their rating
        return entry.get("rating", 0) > 0
    return entry.get(TIME_FIELD[stage]) is not None


def tally(entry: dict) -> Counter:
    """What one order adds to its day: the counts of the day's bucket, its SLA breaches, and per
    funnel stage whether it got there and how long that took since the previous stage."""
    counts = Counter(placed=1, dispatched=int(_reached(entry, "dispatched")),
                     completed=int(_reached(entry, "completed")), rated=int(_reached(entry, "rated")),
                     cancelled=int(entry["status"] in ENDED_UNSERVED), breaches=entry.get("breaches", 0))
    previous = entry["placed_at"]
    for stage, _, time_field in FUNNEL:
        if not _reached(entry, stage):
            break
        counts[f"{stage}_orders"] += 1
        at = entry.get(time_field)
        if at is not None and previous is not None and stage != "placed":
            counts[f"{stage}_seconds"] += max(0.0, (as_utc(at) - as_utc(previous)).total_seconds())
            counts[f"{stage}_timed"] += 1
        previous = at
    return counts


class OrderTrends:
    def __init__(self, menu: MenuBook, index: OrderIndex):
        self.menu = menu
        self.index = index
        self.rollups = index.db["order_trends"]        # _id district|unit|day: one unit's day
        self.rolled = index.db["order_trend_days"]     # _id district|day: the day's roll-ups are stored

    def ensure_indexes(self) -> None:
        self.rollups.create_index([("district_id", ASCENDING), ("day", ASCENDING)])

    # ---- reads ----

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
        for day, counts in self.by_day(principal.district_id, path, since or first, until).items():
            start = _floor(day_start(day), granularity)
            index = (start - first).days if granularity == G.TREND_GRANULARITY_DAY else \
                (start.year - first.year) * 12 + start.month - first.month
            bucket = buckets[index]
            for name in ("placed", "dispatched", "completed", "rated", "cancelled"):
                setattr(bucket, name, getattr(bucket, name) + counts[name])
            for stage in funnel:
                stage.orders += counts[f"{stage.stage}_orders"]
                stage.seconds += counts[f"{stage.stage}_seconds"]
                stage.timed += counts[f"{stage.stage}_timed"]
        return Trends(buckets, funnel)

    def sum_breaches(self, district_id: str, path: list[str], since: dt.datetime, until: dt.datetime) -> int:
        return sum(counts["breaches"] for counts in self.by_day(district_id, path, since, until).values())

    def by_day(self, district_id: str, path: list[str], since: dt.datetime, until: dt.datetime) -> dict[int, Counter]:
        """China day -> the sums of the orders placed in [since, until) in the subtree of
        path[-1], for the days that hold any."""
        depth, unit = len(path) - 1, path[-1]
        days = list(range(china_day(since), china_day(until - dt.timedelta(microseconds=1)) + 1))
        whole = {d for d in days if day_start(d) >= since and day_start(d + 1) <= until}
        totals: dict[int, Counter] = {}
        rolled: set[int] = set()
        if depth <= ROLLUP_DEPTH and whole:
            rolled = self._rolled_days(district_id, unit, sorted(whole))
            for doc in self._find_ids(self.rollups, [key(district_id, unit, d) for d in sorted(rolled)]):
                totals[doc["day"]] = Counter({k: v for k, v in doc.items() if isinstance(v, (int, float))
                                              and k not in ("day", "v")})
        live = [d for d in days if d not in rolled]
        keys = [key(district_id, unit, d) for d in live]
        for at in range(0, len(keys), MAX_WINDOW):
            for entry in self.index.entries.find({f"og{depth}": {"$in": keys[at:at + MAX_WINDOW]}}, ENTRY_FIELDS):
                if since <= as_utc(entry["placed_at"]) < until:
                    totals.setdefault(china_day(entry["placed_at"]), Counter()).update(tally(entry))
        return totals

    def _rolled_days(self, district_id: str, unit: str, days: list[int]) -> set[int]:
        """The days whose stored roll-ups are current for `unit`: rolled, and holding no entry of
        its subtree still pending."""
        marked = {doc["day"] for doc in self._find_ids(self.rolled, [key(district_id, d) for d in days])}
        pending = {china_day(e["placed_at"]) for e in self.index.entries.find({"rp": district_id},
                                                                            {"placed_at": 1, "opath": 1})
                   if unit in e["opath"]}
        return marked - pending

    @staticmethod
    def _find_ids(collection, ids: list[str]) -> list[dict]:
        return [doc for at in range(0, len(ids), MAX_WINDOW) for doc in collection.find({"_id": {"$in": ids[at:at + MAX_WINDOW]}})]

    # ---- the roll-up job ----

    def roll_up(self) -> int:
        """One pass over every district's pending entries; the number of entries counted in."""
        done = 0
        for district_id in self.index.bounds.districts(ORDERS):
            pending = list(self.index.entries.find({"rp": district_id}, {"placed_at": 1, "opath": 1, "v": 1})
                           .limit(ROLLUP_BATCH))
            days = sorted({(china_day(e["placed_at"]), e["opath"][0]) for e in pending})
            for day, center in days:
                self._roll_day(district_id, center, day)
            for entry in pending:
                cleared = self.index.entries.update_one({"_id": entry["_id"], "v": entry["v"], "rp": district_id},
                                                        {"$unset": {"rp": ""}})
                done += cleared.modified_count
        return done

    def _roll_day(self, district_id: str, center: str, day: int) -> None:
        sums: dict[str, Counter] = {}
        for entry in self.index.entries.find({"og0": key(district_id, center, day)}, ENTRY_FIELDS):
            counts = tally(entry)
            for unit in entry["opath"][:ROLLUP_DEPTH + 1]:
                sums.setdefault(unit, Counter()).update(counts)
        # an order never leaves the day and the units it was placed under: roll-ups only grow in number
        for unit, counts in sums.items():
            self.rollups.replace_one({"_id": key(district_id, unit, day)},
                                     {"district_id": district_id, "unit": unit, "day": day, **counts}, upsert=True)
        self.rolled.replace_one({"_id": key(district_id, day)}, {"district_id": district_id, "day": day,
                                                                  "at": clock.now()}, upsert=True)
