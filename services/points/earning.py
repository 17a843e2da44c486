"""What each consumed event earns, by the district's rules: the ledger entries it causes.

Every entry's key is derived from its cause, so applying an event twice inserts nothing new.
Hours confirmations and activity completions are keyed by the order/activity id (the contract
promises one per aggregate); ratings, attendance and training by what they are about. An event
that breaks the contract raises ValueError (it goes to the DLQ with that message).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from services.common.consumer import ConsumedEvent
from services.common.validation import ID_PATTERN
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import events_pb2 as ordering
from wenming.ordering.v1 import types_pb2 as ordering_types
from wenming.points.v1 import points_pb2 as pb
from wenming.training.v1 import events_pb2 as training

from .rules import Rules

K, B, E = pb.AccountKind, pb.Book, pb.EntryKind
MAX_MINUTES = 24 * 60  # one confirmation never credits more than a day to one person
BOOK_FOR_SOURCE = {common_pb2.HOURS_SOURCE_VERIFIED: B.BOOK_VERIFIED_MINUTES,
                   common_pb2.HOURS_SOURCE_MANUAL: B.BOOK_MANUAL_MINUTES}


@dataclass(frozen=True)
class Cause:
    type: str
    id: str
    event_id: str
    title: str
    category: int
    occurred_at: dt.datetime

    def as_document(self) -> dict:
        return {"type": self.type, "id": self.id, "event_id": self.event_id, "title": self.title,
                "category": self.category}


@dataclass(frozen=True)
class EntrySpec:
    key: str
    account_id: str
    account_kind: int
    book: int
    kind: int
    amount: int
    cause: Cause
    recorded_by_unit_id: str
    unit_path: tuple[str, ...]
    expires_at: dt.datetime | None = None
    earning: bool = True


def _ident(value: str, what: str) -> str:
    if not ID_PATTERN.match(value or ""):
        raise ValueError(f"{what} {value!r} is not a valid id")
    return value


def _unit(ref: common_pb2.UnitRef, what: str) -> tuple[str, tuple[str, ...]]:
    _ident(ref.unit_id, f"{what}.unit_id")
    if not ref.path or ref.path[-1] != ref.unit_id:
        raise ValueError(f"{what}.path must end with its unit_id")
    return ref.unit_id, tuple(ref.path)


def _cause(event: ConsumedEvent, aggregate_id: str, title: str, category: int) -> Cause:
    occurred = event.envelope.occurred_at.ToDatetime(dt.UTC) if event.envelope.occurred_at.seconds else None
    if occurred is None:
        raise ValueError("envelope.occurred_at is not set")
    return Cause(event.envelope.event_type, _ident(aggregate_id, "aggregate id"), event.event_id, title, category,
                 occurred)


def _points(key: str, account_id: str, kind: int, amount: int, cause: Cause, unit_id: str,
            path: tuple[str, ...], rules: Rules) -> list[EntrySpec]:
    if amount <= 0:
        return []
    return [EntrySpec(key, account_id, kind, B.BOOK_POINTS, E.ENTRY_KIND_EARNED, amount, cause, unit_id, path,
                      rules.points_expiry(cause.occurred_at))]


def _service_hours(prefix: str, hours, recorded_by: common_pb2.UnitRef, cause: Cause, rules: Rules) -> list[EntrySpec]:
    """Confirmed hours (verified and manual kept apart) and the points they earn by category."""
    unit_id, path = _unit(recorded_by, "recorded_by")
    minutes: dict[tuple[str, int], int] = defaultdict(int)
    for i, h in enumerate(hours):
        _ident(h.volunteer_id, f"hours[{i}].volunteer_id")
        if h.source not in BOOK_FOR_SOURCE:
            raise ValueError(f"hours[{i}].source must be VERIFIED or MANUAL")
        if not 0 < h.minutes <= MAX_MINUTES:
            raise ValueError(f"hours[{i}].minutes must be between 1 and {MAX_MINUTES} (got {h.minutes})")
        minutes[(h.volunteer_id, BOOK_FOR_SOURCE[h.source])] += h.minutes
    specs, served = [], defaultdict(int)
    for (volunteer_id, book), total in minutes.items():
        if total > MAX_MINUTES:
            raise ValueError(f"volunteer {volunteer_id} is credited {total} minutes, more than a day")
        specs.append(EntrySpec(f"{prefix}:hours:{volunteer_id}:{book}", volunteer_id, K.ACCOUNT_KIND_VOLUNTEER, book,
                               E.ENTRY_KIND_EARNED, total, cause, unit_id, path))
        served[volunteer_id] += total
    for volunteer_id, total in served.items():
        specs += _points(f"{prefix}:points:{volunteer_id}", volunteer_id, K.ACCOUNT_KIND_VOLUNTEER,
                         rules.service_points(cause.category, total), cause, unit_id, path, rules)
    return specs


def order_hours_confirmed(event: ConsumedEvent, rules: Rules) -> list[EntrySpec]:
    p: ordering.OrderHoursConfirmed = event.payload
    cause = _cause(event, p.order.order_id, p.order.item_name, p.order.category)
    return _service_hours(f"ord:{cause.id}", p.hours, p.recorded_by, cause, rules)


def activity_completed(event: ConsumedEvent, rules: Rules) -> list[EntrySpec]:
    p: ordering.ActivityCompleted = event.payload
    cause = _cause(event, p.activity.activity_id, p.activity.title, p.activity.category)
    return _service_hours(f"act:{cause.id}", p.hours, p.recorded_by, cause, rules)


def _rating(value: int) -> int:
    if not 1 <= value <= 5:
        raise ValueError(f"rating must be between 1 and 5 (got {value})")
    return value


def order_rated(event: ConsumedEvent, rules: Rules) -> list[EntrySpec]:
    """The resident earns points for rating; the volunteers who served for the rating received."""
    p: ordering.OrderRated = event.payload
    order = p.order
    rating = _rating(p.rating)
    cause = _cause(event, order.order_id, order.item_name, order.category)
    specs = []
    if order.resident_id:
        unit_id, path = _unit(order.origin_courtyard, "order.origin_courtyard")
        specs += _points(f"ord:{cause.id}:rated-by:{_ident(order.resident_id, 'order.resident_id')}",
                         order.resident_id, K.ACCOUNT_KIND_RESIDENT, rules.rating_given_points, cause, unit_id, path,
                         rules)
    if order.volunteer_ids:
        unit_id, path = _unit(order.current_unit, "order.current_unit")
        for volunteer_id in dict.fromkeys(order.volunteer_ids):
            specs += _points(f"ord:{cause.id}:rating:{_ident(volunteer_id, 'order.volunteer_ids')}", volunteer_id,
                             K.ACCOUNT_KIND_VOLUNTEER, rules.rating_points(rating), cause, unit_id, path, rules)
    return specs


def activity_attended(event: ConsumedEvent, rules: Rules) -> list[EntrySpec]:
    """Residents attending earn civilization points; volunteers earn hours at completion."""
    p: ordering.ActivityAttended = event.payload
    if p.role != ordering_types.PARTICIPANT_ROLE_RESIDENT:
        return []
    cause = _cause(event, p.activity.activity_id, p.activity.title, p.activity.category)
    unit_id, path = _unit(p.activity.unit, "activity.unit")
    return _points(f"act:{cause.id}:attend:{_ident(p.participant_id, 'participant_id')}", p.participant_id,
                   K.ACCOUNT_KIND_RESIDENT, rules.attendance_points, cause, unit_id, path, rules)


def activity_rated(event: ConsumedEvent, rules: Rules) -> list[EntrySpec]:
    """Activities are rated by the residents who attended (一次活动一个评价)."""
    p: ordering.ActivityRated = event.payload
    _rating(p.rating)
    cause = _cause(event, p.activity.activity_id, p.activity.title, p.activity.category)
    unit_id, path = _unit(p.activity.unit, "activity.unit")
    return _points(f"act:{cause.id}:rated-by:{_ident(p.participant_id, 'participant_id')}", p.participant_id,
                   K.ACCOUNT_KIND_RESIDENT, rules.rating_given_points, cause, unit_id, path, rules)


def training_hours_credited(event: ConsumedEvent, rules: Rules) -> list[EntrySpec]:
    p: training.TrainingHoursCredited = event.payload
    volunteer_id = _ident(p.volunteer_id, "volunteer_id")
    if not 0 < p.minutes <= MAX_MINUTES:
        raise ValueError(f"minutes must be between 1 and {MAX_MINUTES} (got {p.minutes})")
    cause = _cause(event, p.session_id, p.course_id, common_pb2.SERVICE_CATEGORY_UNSPECIFIED)
    unit_id, path = _unit(p.recorded_by, "recorded_by")
    prefix = f"trn:{cause.id}:{volunteer_id}"
    return [EntrySpec(f"{prefix}:hours", volunteer_id, K.ACCOUNT_KIND_VOLUNTEER, B.BOOK_TRAINING_MINUTES,
                      E.ENTRY_KIND_EARNED, p.minutes, cause, unit_id, path)] + \
        _points(f"{prefix}:points", volunteer_id, K.ACCOUNT_KIND_VOLUNTEER, rules.training_points(p.minutes), cause,
                unit_id, path, rules)


BUILDERS: dict[str, Callable[[ConsumedEvent, Rules], list[EntrySpec]]] = {
    ordering.OrderHoursConfirmed.DESCRIPTOR.full_name: order_hours_confirmed,
    ordering.ActivityCompleted.DESCRIPTOR.full_name: activity_completed,
    ordering.OrderRated.DESCRIPTOR.full_name: order_rated,
    ordering.ActivityAttended.DESCRIPTOR.full_name: activity_attended,
    ordering.ActivityRated.DESCRIPTOR.full_name: activity_rated,
    training.TrainingHoursCredited.DESCRIPTOR.full_name: training_hours_credited,
}
