"""The monthly statistics report's rules (月报, docs/reporting.md), with no database: which month may
be asked for, which row of the report a record falls in, and how the records of a month add up.
Points reports a district's units with them, the roll-up (docs/rollup.md) a region's districts: one
set of rules, so a district's row in its region is what the district reports of itself.

Every record is counted in exactly one unit row — the child of the report's unit on the record's
path, or 本级 when the path ends at the unit itself — so the rows add up to the total, figure by
figure. What decides a record's place: a volunteer's first service unit inside the subtree (as the
hours export files them), a team's unit, an activity's organizing unit, an order's courtyard (the
resident's), and service hours the unit that recorded them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from services.common.clock import CHINA, as_utc
from services.common.validation import Validator
from google.protobuf.timestamp_pb2 import Timestamp

from wenming.ordering.v1 import events_pb2 as ordering
from wenming.ordering.v1 import ordering_pb2 as ordering_api
from wenming.ordering.v1 import types_pb2 as ordering_types
from wenming.points.v1 import points_pb2 as points

MONTH = re.compile(r"^(\d{4})-(\d{2})$")
OWN = ""  # the row key of the unit's own records (本级)
SATISFIED_FROM = 4  # stars: a rating of 4 or 5 counts as satisfied (满意)
HOURS_BOOKS = (points.BOOK_VERIFIED_MINUTES, points.BOOK_MANUAL_MINUTES)  # the ledger's books of service minutes


def validate_month(v: Validator, field_name: str, text: str, now: dt.datetime) -> tuple[int, int]:
    """(year, month) of `text` (YYYY-MM); refused unless it is this month (China time) or an earlier
    one from 2000 on. (0, 0) when refused."""
    found = MONTH.match(text.strip())
    if not found:
        v.fail(field_name, "应为 YYYY-MM 格式的月份，如 2026-11")
        return 0, 0
    year, month = int(found[1]), int(found[2])
    today = now.astimezone(CHINA)
    if not 1 <= month <= 12:
        v.fail(field_name, "月份应在 01 到 12 之间")
    elif year < 2000:
        v.fail(field_name, "月份不能早于 2000-01")
    elif (year, month) > (today.year, today.month):
        v.fail(field_name, "不能统计尚未开始的月份")
    else:
        return year, month
    return 0, 0


def month_bounds(year: int, month: int) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the China month in UTC."""
    start = dt.datetime(year, month, 1, tzinfo=CHINA)
    end = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=CHINA)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def row_of(path: Sequence[str], root_id: str) -> str | None:
    """The row a record with this unit path falls in: the child of the root on it, OWN when the path
    ends at the root, None outside the subtree."""
    if root_id not in path:
        return None
    at = list(path).index(root_id)
    return path[at + 1] if at + 1 < len(path) else OWN


@dataclass
class Figures:
    """A month's figures of a part of the subtree; `rating_points` (the stars summed) makes the
    average of merged parts exact."""

    volunteers_registered: int = 0
    volunteers_new: int = 0
    volunteers_active: int = 0
    teams: int = 0
    activities_held: int = 0
    activity_participants: int = 0
    orders_placed: int = 0
    orders_completed: int = 0
    service_minutes: int = 0
    ratings: int = 0
    satisfied_ratings: int = 0
    rating_points: int = 0

    @property
    def satisfaction_centi(self) -> int:
        """The average rating × 100 (450 for 4.5 stars), 0 with no rating."""
        return self.rating_points * 100 // self.ratings if self.ratings else 0

    def add(self, other: Figures) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(frozen=True)
class Volunteer:
    path: Sequence[str]  # of their first service unit inside the subtree
    registered_at: dt.datetime | None  # None: registered before the read model kept the date
    service_minutes: int  # net in the month, wherever they served


@dataclass(frozen=True)
class Team:
    path: Sequence[str]
    created_at: dt.datetime | None  # None: created before the read model kept the date


@dataclass(frozen=True)
class Activity:
    path: Sequence[str]
    category: int
    participants: int


@dataclass(frozen=True)
class Order:
    path: Sequence[str]
    category: int
    completed: bool
    rating: int  # 0 unrated


@dataclass(frozen=True)
class Hours:
    path: Sequence[str]  # of the unit that recorded them
    category: int
    minutes: int
    volunteer_id: str


@dataclass
class Tally:
    """The report's figures: per unit row (child unit id, or OWN), per service category, the whole."""

    units: dict[str, Figures] = field(default_factory=dict)
    categories: dict[int, Figures] = field(default_factory=dict)
    total: Figures = field(default_factory=Figures)

    def count(self, path: Sequence[str], root_id: str, figures: Figures, category: int | None = None) -> None:
        row = row_of(path, root_id)
        if row is None:
            return
        self.units.setdefault(row, Figures()).add(figures)
        if category is not None:
            self.categories.setdefault(category, Figures()).add(figures)
        self.total.add(figures)


def tally(root_id: str, children: Iterable[str], month: tuple[dt.datetime, dt.datetime], categories: Iterable[int],
          volunteers: Iterable[Volunteer], teams: Iterable[Team], activities: Iterable[Activity],
          orders: Iterable[Order], hours: Iterable[Hours]) -> Tally:
    """The month [start, end) of the subtree of `root_id`: every child has a row and every category
    one (zeros included), then OWN; the records are the month's (activities, orders, hours) or all
    there are (volunteers and teams, whose dates decide here)."""
    start, end = month
    result = Tally(units={child: Figures() for child in children}, categories={c: Figures() for c in categories})
    result.units[OWN] = Figures()

    def before_end(at: dt.datetime | None) -> bool:
        return at is None or as_utc(at) < end

    for v in volunteers:
        if before_end(v.registered_at):
            new = v.registered_at is not None and as_utc(v.registered_at) >= start
            result.count(v.path, root_id, Figures(volunteers_registered=1, volunteers_new=int(new),
                                                  volunteers_active=int(v.service_minutes > 0)))
    for t in teams:
        if before_end(t.created_at):
            result.count(t.path, root_id, Figures(teams=1))
    for a in activities:
        result.count(a.path, root_id, Figures(activities_held=1, activity_participants=a.participants), a.category)
    for o in orders:
        rated = o.rating > 0
        result.count(o.path, root_id, Figures(orders_placed=1, orders_completed=int(o.completed), ratings=int(rated),
                                              satisfied_ratings=int(o.rating >= SATISFIED_FROM),
                                              rating_points=o.rating), o.category)
    for h in hours:
        result.count(h.path, root_id, Figures(service_minutes=h.minutes), h.category)
    return result


def figures_msg(f: Figures) -> points.MonthlyFigures:
    return points.MonthlyFigures(
        volunteers_registered=f.volunteers_registered, volunteers_new=f.volunteers_new,
        volunteers_active=f.volunteers_active, teams=f.teams, activities_held=f.activities_held,
        activity_participants=f.activity_participants, orders_placed=f.orders_placed,
        orders_completed=f.orders_completed, service_minutes=f.service_minutes, ratings=f.ratings,
        satisfied_ratings=f.satisfied_ratings, satisfaction_centi=f.satisfaction_centi)


# ---- what the report takes from ordering's events (each consumer keeps it beside its own fields) ----

# the events carrying an order's or an activity's whole snapshot
ORDER_EVENTS = (ordering.OrderPlaced, ordering.OrderAcknowledged, ordering.OrderEscalated, ordering.OrderHandedOver,
                ordering.OrderDispatched, ordering.OrderOpened, ordering.OrderClaimed, ordering.OrderAccepted,
                ordering.OrderDeclined, ordering.OrderCheckedIn, ordering.OrderCompleted, ordering.OrderHoursConfirmed,
                ordering.OrderRated, ordering.OrderClosed, ordering.OrderCancelled, ordering.OrderRejected)
ACTIVITY_EVENTS = (ordering.ActivityPlanned, ordering.ActivityPublished, ordering.ActivityCancelled,
                   ordering.ActivitySignedUp, ordering.ActivityAttended, ordering.ActivityRated,
                   ordering.ActivityCompleted)
ActivityEvent = (ordering.ActivityPlanned | ordering.ActivityPublished | ordering.ActivityCancelled
                 | ordering.ActivitySignedUp | ordering.ActivityAttended | ordering.ActivityRated
                 | ordering.ActivityCompleted)


def _at(ts: Timestamp) -> dt.datetime | None:
    return ts.ToDatetime(dt.UTC) if ts.seconds else None


def order_facts(o: ordering_api.Order) -> dict[str, Any]:
    """An order snapshot's figures: when it was placed, its category, served (签退) or not, its rating."""
    return {"placed_at": _at(o.placed_at), "category": o.category, "completed": int(_at(o.completed_at) is not None),
            "rating": o.rating}


def activity_facts(payload: ActivityEvent) -> dict[str, Any]:
    """An activity event's figures: when it starts, its category, held or not, and — known once, at
    completion — who took part: its volunteers with hours and the residents who came."""
    a = payload.activity
    completed = isinstance(payload, ordering.ActivityCompleted) or a.status == ordering_types.ACTIVITY_STATUS_COMPLETED
    took_part = {"participants": len({h.volunteer_id for h in payload.hours}) + payload.residents_attended} \
        if isinstance(payload, ordering.ActivityCompleted) else {}
    return {"starts_at": _at(a.starts_at), "category": a.category, "completed": int(completed), **took_part}
