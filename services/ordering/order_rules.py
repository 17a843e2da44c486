"""The order's state machine (点单 → 报单 → 派单 → 接单 → 评单; docs/ordering.md has the table) as
plain functions of (order, principal, now, …, lookups): each returns the Move a legal transition
makes, or raises the error that refuses it.

Nothing here reads the database, talks to the broker or sees a gRPC request: OrderDesk
(orders.py) validates the request, loads the order, calls a rule and commits its Move as one
guarded write; tests/unit/test_order_rules.py runs every transition in memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from google.protobuf import message

from services.common.auth import Principal, Role, require_role
from services.common.checkin import CheckinCodes
from services.common.clock import as_utc
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.common.events import to_timestamp
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import types_pb2

from . import hours as hours_rules
from . import metrics
from .metrics import status_name
from .models import Order, UnitRefDoc
from .policy import Policy
from .translate import unit_ref_msg

S = types_pb2.OrderStatus
L = common_pb2.UnitLevel
WAITING_ACK = (S.ORDER_STATUS_PLACED, S.ORDER_STATUS_ESCALATED)
# the holding unit has the order and has sent nobody yet: it may still pass it on (报单, 分单)
UNDISPATCHED = (*WAITING_ACK, S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_DECLINED)
BEFORE_SERVICE = (S.ORDER_STATUS_PLACED, S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_ESCALATED,
                  S.ORDER_STATUS_DISPATCHED, S.ORDER_STATUS_OPEN, S.ORDER_STATUS_ACCEPTED, S.ORDER_STATUS_DECLINED)
# the rating window runs on through the rating: what the unit has not closed by its end closes itself
AWAITING_CLOSE = (S.ORDER_STATUS_HOURS_CONFIRMED, S.ORDER_STATUS_RATED)
# a volunteer sees where to go and whom to call while serving, not before or after
SERVING = (S.ORDER_STATUS_ACCEPTED, S.ORDER_STATUS_IN_SERVICE)
CHECKIN_PURPOSE = "order"
WARN_WHEN_LEFT = 5  # remind a unit when a fifth of its acknowledgement time is left


@dataclass
class Move:
    """One transition: the new status, the event announcing it and the fields it changes."""

    to: int
    event: type[message.Message]
    fields: dict = field(default_factory=dict)
    event_fields: dict = field(default_factory=dict)
    reason: str = ""
    automatic: bool = False
    after: Callable[[Order], None] | None = None  # metrics once the move is stored
    step: bool = True  # a step of the trail; a reminder is not one


class Directory(Protocol):
    """What the rules read of registration's data (ordering's read models)."""

    def volunteer(self, district_id: str, volunteer_id: str) -> dict | None: ...

    def team(self, district_id: str, team_id: str) -> dict | None: ...

    def unit(self, district_id: str, unit_id: str) -> dict | None: ...

    def unit_ref(self, district_id: str, path: list[str]) -> dict: ...


class Eligibility(Protocol):
    """Who may serve an order (matching.Matcher)."""

    def require_eligible(self, order: Order, volunteer_id: str, *, check_scope: bool = True,
                         volunteer: dict | None = None) -> dict: ...

    def eligible_members(self, order: Order, member_ids: list[str]) -> list[str]: ...


@dataclass
class OrderLookups:
    """Everything the rules consult besides the order itself."""

    directory: Directory
    policy: Callable[[str], Policy]  # district id -> its order policy
    eligibility: Eligibility
    codes: CheckinCodes
    tolerance_minutes: int  # hours may exceed the planned time by this much


class ClaimLost(FailedPrecondition):
    """Someone else's claim (or the unit) came first: counted apart from other refusals."""


def ack_deadlines(now: dt.datetime, allowed: dt.timedelta) -> dict:
    """When the unit an order reaches must acknowledge it, and when it is reminded."""
    return {"ack_due_at": now + allowed, "warn_at": now + allowed - allowed / WARN_WHEN_LEFT}


# ---- who may act, and from which states ----

def require_status(order: Order, allowed: tuple[int, ...], what: str, hint: str = "") -> None:
    if order.status not in allowed:
        names = ", ".join(status_name(s) for s in allowed)
        raise FailedPrecondition(f"an order that is {status_name(order.status)} cannot be {what} (only "
                                 f"{names}){'; ' + hint if hint else ''}")


def require_holding_admin(principal: Principal, order: Order) -> None:
    """Must-accept is the holding unit's duty: its own admin acts on the order."""
    if principal.role != Role.ROLE_UNIT_ADMIN or principal.unit_id != order.current.unit_id:
        raise PermissionDenied(f"only an admin of {order.current.name or order.current.unit_id}, the unit "
                               "holding the order, may do this")


def require_view(principal: Principal, order: Order, lookups: OrderLookups) -> None:
    role = principal.role
    if role == Role.ROLE_SERVICE:
        return
    if role == Role.ROLE_RESIDENT and principal.subject == order.resident_id:
        return
    if role == Role.ROLE_VOLUNTEER and (principal.subject in order.offered_ids
                                        or _claimable_by(principal, order, lookups)):
        return
    if role == Role.ROLE_UNIT_ADMIN and (principal.manages(order.current.path) or principal.manages(order.origin.path)):
        return
    raise PermissionDenied("that order is not yours to see")


def _claimable_by(principal: Principal, order: Order, lookups: OrderLookups) -> bool:
    if order.status != S.ORDER_STATUS_OPEN:
        return False
    volunteer = lookups.directory.volunteer(order.district_id, principal.subject)
    scope = volunteer.get("scope", ()) if volunteer else principal.unit_path
    return order.current.unit_id in scope


def _require_offered(principal: Principal, order: Order) -> None:
    if principal.role != Role.ROLE_VOLUNTEER or principal.subject not in order.offered_ids:
        raise PermissionDenied("that order was not dispatched to you")


def _require_serving(principal: Principal, order: Order) -> None:
    if principal.role != Role.ROLE_VOLUNTEER or principal.subject not in order.volunteer_ids:
        raise PermissionDenied("only a volunteer who accepted this order may check in or out")


def _require_code(order: Order, code: str, lookups: OrderLookups) -> None:
    if not lookups.codes.verify(CHECKIN_PURPOSE, order.id, code):
        raise InvalidArgument.field("code", "is expired or is not a check-in code of this order; scan the "
                                            "current QR code")


def volunteer_profile(principal: Principal, lookups: OrderLookups) -> dict:
    volunteer = lookups.directory.volunteer(principal.district_id, principal.subject)
    if volunteer is None:
        raise FailedPrecondition("your volunteer profile has not reached the ordering service yet; "
                                 "try again in a moment")
    return volunteer


def may_check_in(principal: Principal, order: Order) -> None:
    """The holding unit shows the check-in code while the service is on."""
    require_holding_admin(principal, order)
    require_status(order, SERVING, "checked in to")


# ---- 四必接: acknowledging and escalating ----

def acknowledge(order: Order, principal: Principal, now: dt.datetime) -> Move:
    require_holding_admin(principal, order)
    require_status(order, WAITING_ACK, "acknowledged")
    waited = int((now - as_utc(order.arrived_at)).total_seconds())
    level = metrics.level_name(order.current.level)
    return Move(S.ORDER_STATUS_ACKNOWLEDGED, ev.OrderAcknowledged, fields={"acknowledged_at": now},
                event_fields={"unit_id": order.current.unit_id, "seconds_to_acknowledge": waited},
                after=lambda _: metrics.TIME_TO_ACKNOWLEDGE.labels(level).observe(waited))


def escalate(order: Order, principal: Principal, now: dt.datetime, reason: str, lookups: OrderLookups) -> Move:
    require_holding_admin(principal, order)
    require_status(order, (S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_DECLINED), "escalated",
                   hint="acknowledge it first (四必接), then escalate")
    return _escalation(order, now, reason, automatic=False, lookups=lookups)


def _escalation(order: Order, now: dt.datetime, reason: str, *, automatic: bool, lookups: OrderLookups) -> Move:
    if order.current.level == L.UNIT_LEVEL_CENTER:
        raise FailedPrecondition("the center is the top of the district: it handles the order or rejects it")
    parent = lookups.directory.unit_ref(order.district_id, list(order.current.path[:-1]))
    fields = _arrival(order, parent, now, lookups)
    if automatic:
        fields["sla_breaches"] = order.sla_breaches + 1
    return Move(S.ORDER_STATUS_ESCALATED, ev.OrderEscalated, fields=fields, reason=reason, automatic=automatic,
                event_fields={"from_unit": unit_ref_msg(order.current), "to_unit": unit_ref_msg(UnitRefDoc(**parent)),
                              "reason": reason, "automatic": automatic})


def _arrival(order: Order, unit: dict, now: dt.datetime, lookups: OrderLookups) -> dict:
    """The fields of an order reaching `unit` (报单 or 分单): it becomes the holder, its level's
    acknowledgement deadline starts now, and nobody is offered the order any more."""
    allowed = lookups.policy(order.district_id).acknowledge_within(unit["level"])
    return {"current": unit, "arrived_at": now, **ack_deadlines(now, allowed), "overdue_flagged": False,
            "team_id": "", "offered_ids": [], "volunteer_ids": []}


def hand_over(order: Order, principal: Principal, now: dt.datetime, to_unit_id: str, reason: str,
              lookups: OrderLookups) -> Move:
    """分单: the holding unit passes an order it has not sent anyone to down its subtree (any unit
    below it) or sideways (a sibling: the same parent, never the sibling's own units, which
    are the sibling's to hand down). The new holder acknowledges it like any arrival."""
    require_holding_admin(principal, order)
    target = lookups.directory.unit(order.district_id, to_unit_id)
    if target is None:
        raise NotFound("unit", to_unit_id)
    holder, path = list(order.current.path), list(target["path"])
    below = order.current.unit_id in path[:-1]
    sibling = len(holder) > 1 and path[:-1] == holder[:-1] and path != holder
    if not (below or sibling):
        raise PermissionDenied(f"{order.current.name or order.current.unit_id} may hand an order only to a unit "
                               "below it or to a sibling under the same parent")
    require_status(order, UNDISPATCHED, "handed over")
    to = lookups.directory.unit_ref(order.district_id, path)
    return Move(S.ORDER_STATUS_PLACED, ev.OrderHandedOver, fields=_arrival(order, to, now, lookups), reason=reason,
                event_fields={"from_unit": unit_ref_msg(order.current), "to_unit": unit_ref_msg(UnitRefDoc(**to)),
                              "reason": reason})


def overdue(order: Order, now: dt.datetime, lookups: OrderLookups) -> Move | None:
    """四必接 by the scheduler: an order whose unit let the acknowledgement deadline pass moves up;
    at the center (nothing above) the breach is counted once and the order stays overdue."""
    if order.status not in WAITING_ACK:
        return None
    # the deadline this order was given when it reached the unit, not today's policy
    minutes = round((as_utc(order.ack_due_at) - as_utc(order.arrived_at)).total_seconds() / 60)
    if order.current.level == L.UNIT_LEVEL_CENTER:
        return Move(order.status, ev.OrderOverdue, fields={"overdue_flagged": True, "warn_at": None,
                                                           "sla_breaches": order.sla_breaches + 1},
                    reason=f"{order.current.name or '中心'}未在{minutes}分钟内受理，已超时", automatic=True,
                    event_fields={"unit": unit_ref_msg(order.current), "allowed_minutes": minutes})
    reason = f"{order.current.name or '本级'}未在{minutes}分钟内受理，按四必接自动上报"
    return _escalation(order, now, reason, automatic=True, lookups=lookups)


def deadline_reminder(order: Order, now: dt.datetime) -> Move | None:
    """Once per unit an order waits at, when its deadline is near; an order already overdue is
    left to `overdue`, which sets the next unit's reminder."""
    if order.status not in WAITING_ACK or order.ack_due_at is None or as_utc(order.ack_due_at) <= now:
        return None
    return Move(order.status, ev.OrderDeadlineApproaching, fields={"warn_at": None}, step=False,
                event_fields={"unit": unit_ref_msg(order.current), "due_at": to_timestamp(order.ack_due_at)})


# ---- 派单: dispatching, the claim list, claiming ----

def dispatch(order: Order, principal: Principal, now: dt.datetime, team_id: str, volunteer_ids: list[str],
             lookups: OrderLookups) -> Move:
    """To a team (its eligible members) or to named volunteers (each must be eligible)."""
    require_holding_admin(principal, order)
    require_status(order, (S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_DECLINED, S.ORDER_STATUS_OPEN),
                   "dispatched", hint="acknowledge it first (四必接)")
    offered = _team_offer(order, team_id, lookups) if team_id else \
        [lookups.eligibility.require_eligible(order, vid)["_id"] for vid in volunteer_ids]
    return Move(S.ORDER_STATUS_DISPATCHED, ev.OrderDispatched,
                fields={"team_id": team_id, "offered_ids": offered, "volunteer_ids": [],
                        "dispatched_at": order.dispatched_at or now},
                event_fields={"team_id": team_id, "volunteer_ids": offered},
                after=_dispatch_metrics(order, now))


def _team_offer(order: Order, team_id: str, lookups: OrderLookups) -> list[str]:
    team = lookups.directory.team(order.district_id, team_id)
    if team is None:
        raise NotFound("team", team_id)
    # a team of the holding unit, of a unit above it (e.g. the center's 法律服务队), or below it
    if team["unit_id"] not in order.current.path and order.current.unit_id not in team["unit_path"]:
        raise FailedPrecondition(f"team {team['name']!r} belongs to a unit outside this order's line")
    offered = lookups.eligibility.eligible_members(order, list(team["member_ids"]))
    if not offered:
        raise FailedPrecondition(f"no member of team {team['name']!r} is active with the skills and "
                                 "certifications this order needs")
    return offered


def _dispatch_metrics(order: Order, now: dt.datetime) -> Callable[[Order], None] | None:
    if order.dispatched_at is not None:
        return None  # re-dispatch: the first one was counted
    waited = (now - as_utc(order.placed_at)).total_seconds()
    level = metrics.level_name(order.current.level)
    return lambda _: metrics.TIME_TO_DISPATCH.labels(level).observe(waited)


def open_for_claims(order: Order, principal: Principal, now: dt.datetime) -> Move:
    require_holding_admin(principal, order)
    require_status(order, (S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_DECLINED),
                   "put on the claim list", hint="acknowledge it first (四必接)")
    return Move(S.ORDER_STATUS_OPEN, ev.OrderOpened,
                fields={"team_id": "", "offered_ids": [], "volunteer_ids": [],
                        "dispatched_at": order.dispatched_at or now},
                after=_dispatch_metrics(order, now))


def claim(order: Order, principal: Principal, now: dt.datetime, lookups: OrderLookups) -> Move:
    require_role(principal, Role.ROLE_VOLUNTEER)
    volunteer = volunteer_profile(principal, lookups)
    if order.current.unit_id not in volunteer.get("scope", ()):
        raise PermissionDenied("that order is not open to you: it is handled outside the units you serve")
    if order.status != S.ORDER_STATUS_OPEN:
        raise ClaimLost(f"the order is no longer open for claiming (it is {status_name(order.status)})")
    lookups.eligibility.require_eligible(order, principal.subject, volunteer=volunteer)
    return Move(S.ORDER_STATUS_ACCEPTED, ev.OrderClaimed,
                fields={"offered_ids": [principal.subject], "volunteer_ids": [principal.subject],
                        "accepted_at": now},
                event_fields={"volunteer_id": principal.subject},
                after=_accept_metrics(order, now))


def _accept_metrics(order: Order, now: dt.datetime) -> Callable[[Order], None] | None:
    if order.accepted_at is not None or order.dispatched_at is None:
        return None
    waited = (now - as_utc(order.dispatched_at)).total_seconds()
    level = metrics.level_name(order.current.level)
    return lambda _: metrics.TIME_TO_ACCEPT.labels(level).observe(waited)


# ---- 接单: accepting and declining ----

def accept(order: Order, principal: Principal, now: dt.datetime, lookups: OrderLookups) -> Move:
    _require_offered(principal, order)
    require_status(order, (S.ORDER_STATUS_DISPATCHED, S.ORDER_STATUS_ACCEPTED), "accepted")
    if principal.subject in order.volunteer_ids:
        raise FailedPrecondition("you have already accepted this order")
    lookups.eligibility.require_eligible(order, principal.subject, volunteer=volunteer_profile(principal, lookups),
                                         check_scope=False)
    return Move(S.ORDER_STATUS_ACCEPTED, ev.OrderAccepted,
                fields={"volunteer_ids": [*order.volunteer_ids, principal.subject],
                        "accepted_at": order.accepted_at or now},
                event_fields={"volunteer_id": principal.subject}, after=_accept_metrics(order, now))


def decline(order: Order, principal: Principal, now: dt.datetime, reason: str) -> Move:
    _require_offered(principal, order)
    require_status(order, (S.ORDER_STATUS_DISPATCHED, S.ORDER_STATUS_ACCEPTED), "given back",
                   hint="after check-in the service is under way")
    offered = [i for i in order.offered_ids if i != principal.subject]
    accepted = [i for i in order.volunteer_ids if i != principal.subject]
    # others who accepted carry on; others still offered may accept; nobody left: re-dispatch
    to = S.ORDER_STATUS_ACCEPTED if accepted else S.ORDER_STATUS_DISPATCHED if offered else \
        S.ORDER_STATUS_DECLINED
    fields: dict = {"offered_ids": offered, "volunteer_ids": accepted}
    if to == S.ORDER_STATUS_DECLINED:
        fields["team_id"] = ""
    return Move(to, ev.OrderDeclined, fields=fields, reason=reason,
                event_fields={"volunteer_id": principal.subject, "reason": reason})


# ---- 签到/签退: service on site ----

def check_in(order: Order, principal: Principal, now: dt.datetime, code: str, lookups: OrderLookups) -> Move:
    _require_serving(principal, order)
    require_status(order, SERVING, "checked in to")
    if principal.subject in order.sessions:
        raise FailedPrecondition("you have already checked in to this order")
    _require_code(order, code, lookups)
    sessions = {vid: s.to_mongo().to_dict() for vid, s in order.sessions.items()}
    sessions[principal.subject] = {"checked_in_at": now, "measured_minutes": 0}
    return Move(S.ORDER_STATUS_IN_SERVICE, ev.OrderCheckedIn, fields={"sessions": sessions},
                event_fields={"volunteer_id": principal.subject, "at": to_timestamp(now)})


def check_out(order: Order, principal: Principal, now: dt.datetime, code: str, report: str, photos: list[str],
              lookups: OrderLookups) -> Move:
    _require_serving(principal, order)
    require_status(order, (S.ORDER_STATUS_IN_SERVICE,), "checked out of")
    if principal.subject not in order.sessions:
        raise FailedPrecondition("check in first: you have no check-in on this order")
    _require_code(order, code, lookups)
    # the report closes the service for everyone on site: the volunteers served together
    cap = order.planned_minutes + lookups.tolerance_minutes
    sessions, measured = {}, []
    for vid, session in sorted(order.sessions.items()):
        raw = session.to_mongo().to_dict()
        if session.checked_out_at is None:
            on_site = int((now - as_utc(session.checked_in_at)).total_seconds() // 60)
            raw.update(checked_out_at=now, measured_minutes=max(0, min(cap, on_site)))
        sessions[vid] = raw
        measured.append(common_pb2.VolunteerHours(volunteer_id=vid, minutes=raw["measured_minutes"],
                                                  source=common_pb2.HOURS_SOURCE_VERIFIED))
    return Move(S.ORDER_STATUS_COMPLETED, ev.OrderCompleted,
                fields={"sessions": sessions, "report": report, "photo_asset_ids": photos, "completed_at": now},
                event_fields={"report": report, "photo_asset_ids": photos, "measured": measured})


# ---- 时长审核, 评单, closing ----

def confirm_hours(order: Order, principal: Principal, now: dt.datetime, manual: dict[str, int],
                  lookups: OrderLookups) -> Move:
    """`manual`: volunteer id -> minutes the unit enters itself (荣誉时数), replacing the measured ones."""
    require_holding_admin(principal, order)
    require_status(order, (S.ORDER_STATUS_COMPLETED,), "given confirmed hours")
    hours_rules.check_manual(manual, lambda vid: vid in order.volunteer_ids, "did not serve this order",
                             order.planned_minutes, lookups.tolerance_minutes)
    # a visit shorter than a minute measures 0: confirming would credit nothing without a
    # word, so the unit enters those hours itself (docs/ordering.md, 时长审核)
    unmeasured = sorted(vid for vid in order.volunteer_ids if vid not in manual and vid in order.sessions
                        and order.sessions[vid].measured_minutes == 0)
    if unmeasured:
        raise FailedPrecondition(f"check-in and check-out measured less than a minute for {', '.join(unmeasured)}: "
                                 "enter their hours as manual hours (manual[].minutes) to confirm")
    hours = []
    for vid in order.volunteer_ids:
        if vid in manual:
            hours.append(hours_rules.entry(vid, manual[vid], manual=True))
        elif vid in order.sessions:
            hours.append(hours_rules.entry(vid, order.sessions[vid].measured_minutes, manual=False))
    window = lookups.policy(order.district_id).rating_window
    return Move(S.ORDER_STATUS_HOURS_CONFIRMED, ev.OrderHoursConfirmed,
                fields={"hours": hours, "hours_recorded_by": order.current.to_mongo().to_dict(),
                        "hours_confirmed_at": now, "close_due_at": now + window},
                event_fields={"hours": [common_pb2.VolunteerHours(**h) for h in hours],
                              "recorded_by": unit_ref_msg(order.current)})


def rate(order: Order, principal: Principal, now: dt.datetime, rating: int, comment: str) -> Move:
    if principal.role != Role.ROLE_RESIDENT or principal.subject != order.resident_id:
        raise PermissionDenied("only the resident who ordered the service may rate it")
    if order.status == S.ORDER_STATUS_RATED or order.rating:
        raise FailedPrecondition("this order has already been rated (one rating per order)")
    require_status(order, (S.ORDER_STATUS_HOURS_CONFIRMED,), "rated",
                   hint="it can be rated once the unit has confirmed the service")
    if order.close_due_at is not None and now >= as_utc(order.close_due_at):
        raise FailedPrecondition("the rating window of this order has ended (评价期已过)")
    return Move(S.ORDER_STATUS_RATED, ev.OrderRated, fields={"rating": rating, "comment": comment, "rated_at": now},
                event_fields={"rating": rating, "comment": comment})


def close(order: Order, principal: Principal, now: dt.datetime) -> Move:
    require_holding_admin(principal, order)
    require_status(order, (S.ORDER_STATUS_RATED,), "closed",
                   hint="an unrated order closes by itself when its rating window ends")
    return Move(S.ORDER_STATUS_CLOSED, ev.OrderClosed, fields={"closed_at": now}, event_fields={"automatic": False})


def close_expired(order: Order, now: dt.datetime) -> Move | None:
    """By the scheduler once the rating window has passed: unrated orders, and rated ones the
    unit has not closed."""
    if order.status not in AWAITING_CLOSE:
        return None
    reason = "已评价，评价期满自动办结" if order.status == S.ORDER_STATUS_RATED else "评价期内未评价，自动办结"
    return Move(S.ORDER_STATUS_CLOSED, ev.OrderClosed, fields={"closed_at": now},
                reason=reason, automatic=True, event_fields={"automatic": True})


# ---- ends before service ----

def cancel(order: Order, principal: Principal, now: dt.datetime, reason: str) -> Move:
    own = principal.role == Role.ROLE_RESIDENT and principal.subject == order.resident_id
    if not own and principal.subject != order.placed_by:
        raise PermissionDenied("only the resident (or the staff member who placed it for them) may cancel")
    require_status(order, BEFORE_SERVICE, "cancelled", hint="the service has already started")
    return Move(S.ORDER_STATUS_CANCELLED, ev.OrderCancelled, fields={"closing_reason": reason, "closed_at": now},
                reason=reason, event_fields={"reason": reason})


def require_center_admin(principal: Principal) -> None:
    if not principal.is_center_admin:
        raise PermissionDenied("only the center may reject an order")


def reject(order: Order, principal: Principal, now: dt.datetime, reason: str, lookups: OrderLookups) -> Move:
    require_center_admin(principal)
    if order.current.level != L.UNIT_LEVEL_CENTER:
        require_view(principal, order, lookups)
        raise FailedPrecondition("only an order that has reached the center can be rejected "
                                 f"(it is at {order.current.name or order.current.unit_id})")
    require_holding_admin(principal, order)
    require_status(order, UNDISPATCHED, "rejected")
    return Move(S.ORDER_STATUS_REJECTED, ev.OrderRejected, fields={"closing_reason": reason, "closed_at": now},
                reason=reason, event_fields={"reason": reason})
