"""The activity's state machine (planned → published (公示) → completed, or cancelled) and its
participants' moves (sign-up, check-in, attendance at the desk, rating) as plain functions of
(activity, principal, now, …): each returns the ActivityMove a legal change makes, None when
there is nothing to change, or raises the error that refuses it.

Nothing here reads the database, talks to the broker or sees a gRPC request: ActivityBoard
(activities.py) validates, loads, calls a rule and commits its move as one guarded write;
tests/unit/test_activity_rules.py runs every transition in memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from google.protobuf import message

from services.common.auth import Principal, Role, require_manages, require_role
from services.common.checkin import CheckinCodes
from services.common.clock import as_utc
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.common.events import to_timestamp
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import types_pb2
from wenming.registration.v1 import registration_pb2 as reg

from . import hours as hours_rules
from . import metrics
from .models import Activity, ParticipantDoc
from .translate import unit_ref_msg

A = types_pb2.ActivityStatus
P = types_pb2.ParticipantRole
CHECKIN_PURPOSE = "activity"
PASS_PURPOSE = "activity-pass"
CHECKIN_OPENS_BEFORE = dt.timedelta(minutes=30)


@dataclass
class ActivityMove:
    event: type[message.Message]
    fields: dict = field(default_factory=dict)
    participant: tuple[str, dict] | None = None  # (participant id, its new entry)
    event_fields: dict = field(default_factory=dict)
    after: Callable[[], None] | None = None  # metrics once the move is stored


class Residents(Protocol):
    def resident(self, district_id: str, resident_id: str) -> dict | None: ...


def role_label(role: int) -> str:
    return P.Name(role).removeprefix("PARTICIPANT_ROLE_").lower()


def require_organizer(principal: Principal, activity: Activity) -> None:
    require_role(principal, Role.ROLE_UNIT_ADMIN)
    require_manages(principal, activity.district_id, activity.unit.path, "activity")


def require_status(activity: Activity, allowed: tuple[int, ...], what: str) -> None:
    if activity.status not in allowed:
        raise FailedPrecondition(f"an activity that is {A.Name(activity.status)} cannot be {what}")


def require_checkin_window(activity: Activity, now: dt.datetime) -> None:
    if not as_utc(activity.starts_at) - CHECKIN_OPENS_BEFORE <= now <= as_utc(activity.ends_at):
        raise FailedPrecondition("check-in is open from 30 minutes before the start until the end")


def participation(principal: Principal, activity: Activity) -> ParticipantDoc:
    entry = activity.participants.get(principal.subject)
    if entry is None:
        raise PermissionDenied("you have not signed up for this activity")
    return entry


# ---- the organizer ----

def publish(activity: Activity, principal: Principal, now: dt.datetime) -> ActivityMove:
    require_organizer(principal, activity)
    require_status(activity, (A.ACTIVITY_STATUS_PLANNED,), "published")
    if as_utc(activity.starts_at) <= now:
        raise FailedPrecondition("the activity has already started; plan a new one")
    return ActivityMove(ev.ActivityPublished, fields={"status": A.ACTIVITY_STATUS_PUBLISHED})


def cancel(activity: Activity, principal: Principal, now: dt.datetime, reason: str) -> ActivityMove:
    require_organizer(principal, activity)
    require_status(activity, (A.ACTIVITY_STATUS_PLANNED, A.ACTIVITY_STATUS_PUBLISHED), "cancelled")
    return ActivityMove(ev.ActivityCancelled, fields={"status": A.ACTIVITY_STATUS_CANCELLED, "cancel_reason": reason},
                        event_fields={"reason": reason})


def may_show_code(activity: Activity, principal: Principal, now: dt.datetime) -> None:
    """The organizer shows the rotating check-in code while check-in is open."""
    require_organizer(principal, activity)
    require_desk_open(activity, now, "checked in to")


def complete(activity: Activity, principal: Principal, now: dt.datetime, manual: dict[str, int],
             tolerance_minutes: int) -> ActivityMove:
    """Records the volunteers' hours: the planned time for those who checked in, or the manual
    hours (荣誉时数) the organizer enters for the volunteers it names."""
    require_organizer(principal, activity)
    require_status(activity, (A.ACTIVITY_STATUS_PUBLISHED,), "completed")
    if now < as_utc(activity.ends_at):
        raise FailedPrecondition("the activity can be completed once it has ended")
    planned = int((as_utc(activity.ends_at) - as_utc(activity.starts_at)).total_seconds() // 60)

    def served(pid: str) -> bool:
        p = activity.participants.get(pid)
        return p is not None and p.role == P.PARTICIPANT_ROLE_VOLUNTEER

    hours_rules.check_manual(manual, served, "did not sign up to serve at this activity", planned, tolerance_minutes)
    hours = []
    for pid, p in sorted(activity.participants.items()):
        if p.role != P.PARTICIPANT_ROLE_VOLUNTEER:
            continue
        if pid in manual:
            hours.append(hours_rules.entry(pid, manual[pid], manual=True))
        elif p.attended_at is not None:  # attendance proven by the QR code: the planned time counts
            hours.append(hours_rules.entry(pid, planned, manual=False))
    residents = sum(1 for p in activity.participants.values()
                    if p.role == P.PARTICIPANT_ROLE_RESIDENT and p.attended_at is not None)
    return ActivityMove(ev.ActivityCompleted, fields={"status": A.ACTIVITY_STATUS_COMPLETED, "hours": hours},
                        event_fields={"hours": [common_pb2.VolunteerHours(**h) for h in hours],
                                      "recorded_by": unit_ref_msg(activity.unit), "residents_attended": residents})


# ---- participants ----

def participant_role(principal: Principal, volunteer: dict | None) -> int:
    """The role the caller signs up in; `volunteer` is their profile (for a volunteer)."""
    if principal.role == Role.ROLE_VOLUNTEER:
        if volunteer is None:
            raise FailedPrecondition("your volunteer profile has not reached the ordering service yet; "
                                     "try again in a moment")
        if volunteer["status"] != reg.VOLUNTEER_STATUS_ACTIVE:
            raise FailedPrecondition("only active volunteers may sign up to serve")
        return P.PARTICIPANT_ROLE_VOLUNTEER
    if principal.role == Role.ROLE_RESIDENT:
        return P.PARTICIPANT_ROLE_RESIDENT
    raise PermissionDenied("volunteers and residents sign up for activities")


def sign_up(activity: Activity, principal: Principal, now: dt.datetime, role: int, reach: list[str]) -> ActivityMove:
    """`reach`: the units whose activities the caller may join."""
    if activity.unit.unit_id not in reach:
        raise PermissionDenied("that activity is organized outside your units")
    require_status(activity, (A.ACTIVITY_STATUS_PUBLISHED,), "signed up for")
    if now >= as_utc(activity.starts_at):
        raise FailedPrecondition("sign-up has closed: the activity has started")
    if principal.subject in activity.participants:
        raise FailedPrecondition("you have already signed up for this activity")
    return seat(activity, principal.subject, role, now)


def seat(activity: Activity, participant_id: str, role: int, now: dt.datetime) -> ActivityMove:
    """A place for the participant; the count is checked in the same guarded write, so no burst
    overbooks."""
    volunteers = role == P.PARTICIPANT_ROLE_VOLUNTEER
    count, capacity = ((activity.volunteer_count, activity.volunteer_capacity) if volunteers else
                       (activity.resident_count, activity.resident_capacity))
    if count >= capacity:
        raise FailedPrecondition(f"the activity is full: all {capacity} {role_label(role)} places are taken")
    counter = "volunteer_count" if volunteers else "resident_count"
    return ActivityMove(ev.ActivitySignedUp, fields={counter: count + 1},
                        participant=(participant_id, {"role": role, "signed_up_at": now, "rating": 0, "comment": ""}),
                        event_fields={"participant_id": participant_id, "role": role},
                        after=metrics.ACTIVITY_SIGNUPS.labels(role_label(role), "accepted").inc)


def check_in(activity: Activity, principal: Principal, now: dt.datetime, code: str,
             codes: CheckinCodes) -> ActivityMove:
    """By the unit's rotating QR code."""
    entry = participation(principal, activity)
    require_status(activity, (A.ACTIVITY_STATUS_PUBLISHED,), "checked in to")
    if entry.attended_at is not None:
        raise FailedPrecondition("you have already checked in")
    require_checkin_window(activity, now)
    if not codes.verify(CHECKIN_PURPOSE, activity.id, code):
        raise InvalidArgument.field("code", "is expired or is not a check-in code of this activity; scan "
                                            "the current QR code")
    return _attendance(principal.subject, entry, now)


def _attendance(participant_id: str, entry: ParticipantDoc, now: dt.datetime) -> ActivityMove:
    updated = {**entry.to_mongo().to_dict(), "attended_at": now}
    return ActivityMove(ev.ActivityAttended, participant=(participant_id, updated),
                        event_fields={"participant_id": participant_id, "role": entry.role,
                                      "checked_in_at": to_timestamp(now)})


def rate(activity: Activity, principal: Principal, now: dt.datetime, rating: int, comment: str) -> ActivityMove:
    entry = participation(principal, activity)
    require_status(activity, (A.ACTIVITY_STATUS_PUBLISHED, A.ACTIVITY_STATUS_COMPLETED), "rated")
    if entry.attended_at is None:
        raise FailedPrecondition("only participants who checked in may rate the activity")
    if entry.rating:
        raise FailedPrecondition("you have already rated this activity (one rating per participant)")
    updated = {**entry.to_mongo().to_dict(), "rating": rating, "comment": comment}
    return ActivityMove(ev.ActivityRated, participant=(principal.subject, updated),
                        event_fields={"participant_id": principal.subject, "rating": rating})


# ---- the organizer's desk: passes and residents without a phone ----

def require_desk_open(activity: Activity, now: dt.datetime, what: str = "attended") -> None:
    require_status(activity, (A.ACTIVITY_STATUS_PUBLISHED,), what)
    require_checkin_window(activity, now)


def pass_holder(activity: Activity, pass_code: str, codes: CheckinCodes) -> str:
    """Whose pass (我的签到码) the organizer scanned."""
    holders = [pid for pid in activity.participants if codes.pass_code(PASS_PURPOSE, activity.id, pid) == pass_code]
    if not holders:
        raise InvalidArgument.field("pass_code", "is not the pass of anyone signed up for this activity")
    if len(holders) > 1:  # 8 characters of 31: practically never
        raise FailedPrecondition("this pass matches two participants; record the resident by id instead")
    return holders[0]


def seat_at_desk(activity: Activity, principal: Principal, now: dt.datetime, resident_id: str,
                 residents: Residents) -> ActivityMove | None:
    """问需台: a resident the organizer manages, living under the organizing unit, signed up when
    there is room (None: already signed up)."""
    require_organizer(principal, activity)
    resident = residents.resident(activity.district_id, resident_id)
    if resident is None:
        raise NotFound("resident", resident_id)
    path = resident["courtyard"]["path"]
    require_manages(principal, activity.district_id, path, "resident's courtyard")
    if activity.unit.unit_id not in path:
        raise FailedPrecondition("that resident lives outside the units this activity is organized for")
    if resident_id in activity.participants:
        return None
    require_desk_open(activity, now)
    return seat(activity, resident_id, P.PARTICIPANT_ROLE_RESIDENT, now)


def attend_at_desk(activity: Activity, principal: Principal, now: dt.datetime,
                   participant_id: str) -> ActivityMove | None:
    """The organizer records a participant as attending; recording twice changes nothing (None)."""
    require_organizer(principal, activity)
    entry = activity.participants[participant_id]
    if entry.attended_at is not None:
        return None  # recorded before (or checked in by code)
    require_desk_open(activity, now)
    return _attendance(participant_id, entry, now)
