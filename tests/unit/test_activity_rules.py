"""The activity's state machine in memory (services/ordering/activity_rules.py): every move from
every status — the legal ones make the move the table says, every other one is refused with
FAILED_PRECONDITION — and the rules of sign-up, check-in, the desk and rating."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from services.common.auth import Principal, Role
from services.common.checkin import CheckinCodes
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.ordering import activity_rules as rules
from services.ordering.models import Activity
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import types_pb2
from wenming.registration.v1 import registration_pb2 as reg

A = types_pb2.ActivityStatus
P = types_pb2.ParticipantRole
L = common_pb2.UnitLevel
ALL_STATUSES = [s for s in A.values() if s != A.ACTIVITY_STATUS_UNSPECIFIED]
DISTRICT = "dst_1"
COURTYARD = ["unt_c", "unt_s", "unt_y"]
STARTS = dt.datetime(2026, 6, 1, 2, 0, tzinfo=dt.UTC)
ENDS = STARTS + dt.timedelta(hours=2)
BEFORE, DURING, AFTER = STARTS - dt.timedelta(days=1), STARTS + dt.timedelta(minutes=10), ENDS + dt.timedelta(hours=1)
CODES = CheckinCodes(b"k" * 32)

ORGANIZER = Principal(subject="acc_y", district_id=DISTRICT, role=Role.ROLE_UNIT_ADMIN, unit_id="unt_y",
                      unit_level=L.UNIT_LEVEL_COURTYARD, unit_path=tuple(COURTYARD))
RESIDENT = Principal(subject="res_1", district_id=DISTRICT, role=Role.ROLE_RESIDENT, unit_id="unt_y",
                     unit_path=tuple(COURTYARD))
NEWCOMER = Principal(subject="res_2", district_id=DISTRICT, role=Role.ROLE_RESIDENT, unit_id="unt_y",
                     unit_path=tuple(COURTYARD))


def activity(status: int, participants: dict | None = None, **fields) -> Activity:
    raw = {"_id": "act_1", "district_id": DISTRICT, "title": "小院讲堂", "category": 1, "status": status,
           "unit": {"unit_id": "unt_y", "level": L.UNIT_LEVEL_COURTYARD, "name": "一号小院", "path": COURTYARD},
           "starts_at": STARTS, "ends_at": ENDS, "volunteer_capacity": 5, "resident_capacity": 5,
           "volunteer_count": 0, "resident_count": 1, "version": 2,
           "participants": participants if participants is not None else {
               "res_1": {"role": P.PARTICIPANT_ROLE_RESIDENT, "signed_up_at": BEFORE, "rating": 0, "comment": ""}},
           **fields}
    return Activity.from_raw(raw)


ATTENDED = {"res_1": {"role": P.PARTICIPANT_ROLE_RESIDENT, "signed_up_at": BEFORE, "attended_at": DURING,
                      "rating": 0, "comment": ""}}


class Residents:
    def resident(self, district_id: str, resident_id: str) -> dict | None:
        return {"_id": resident_id, "courtyard": {"path": COURTYARD}} if resident_id.startswith("res_") else None


def checkin_code() -> str:
    return CODES.issue(rules.CHECKIN_PURPOSE, "act_1")[0]


@dataclass
class Action:
    name: str
    legal: tuple[int, ...]
    event: type
    make: Callable[[Activity], rules.ActivityMove | None]
    to: int | None = None  # the new status; None: the move changes participants only
    participants: dict | None = None


PUBLISHED = (A.ACTIVITY_STATUS_PUBLISHED,)
ACTIONS = [
    Action("publish", (A.ACTIVITY_STATUS_PLANNED,), ev.ActivityPublished,
           lambda a: rules.publish(a, ORGANIZER, BEFORE), to=A.ACTIVITY_STATUS_PUBLISHED),
    Action("cancel", (A.ACTIVITY_STATUS_PLANNED, A.ACTIVITY_STATUS_PUBLISHED), ev.ActivityCancelled,
           lambda a: rules.cancel(a, ORGANIZER, BEFORE, "天气原因"), to=A.ACTIVITY_STATUS_CANCELLED),
    Action("complete", PUBLISHED, ev.ActivityCompleted,
           lambda a: rules.complete(a, ORGANIZER, AFTER, {}, 30), to=A.ACTIVITY_STATUS_COMPLETED),
    Action("sign up", PUBLISHED, ev.ActivitySignedUp,
           lambda a: rules.sign_up(a, NEWCOMER, BEFORE, P.PARTICIPANT_ROLE_RESIDENT, COURTYARD)),
    Action("check in", PUBLISHED, ev.ActivityAttended,
           lambda a: rules.check_in(a, RESIDENT, DURING, checkin_code(), CODES)),
    Action("seat at the desk", PUBLISHED, ev.ActivitySignedUp,
           lambda a: rules.seat_at_desk(a, ORGANIZER, DURING, "res_2", Residents())),
    Action("attend at the desk", PUBLISHED, ev.ActivityAttended,
           lambda a: rules.attend_at_desk(a, ORGANIZER, DURING, "res_1")),
    Action("rate", (A.ACTIVITY_STATUS_PUBLISHED, A.ACTIVITY_STATUS_COMPLETED), ev.ActivityRated,
           lambda a: rules.rate(a, RESIDENT, AFTER, 5, "很好"), participants=ATTENDED),
]
TRANSITIONS = [pytest.param(action, status, id=f"{action.name}-from-{A.Name(status).removeprefix('ACTIVITY_STATUS_')}")
               for action in ACTIONS for status in ALL_STATUSES]


@pytest.mark.parametrize(("action", "status"), TRANSITIONS)
def test_every_move_from_every_status(action: Action, status: int):
    subject = activity(status, action.participants)
    if status not in action.legal:
        with pytest.raises(FailedPrecondition):
            action.make(subject)
        return
    move = action.make(subject)
    assert move is not None and move.event is action.event
    assert move.fields.get("status") == action.to


def test_the_organizer_alone_runs_the_activity():
    stranger = Principal(subject="acc_z", district_id=DISTRICT, role=Role.ROLE_UNIT_ADMIN, unit_id="unt_z",
                         unit_level=L.UNIT_LEVEL_COURTYARD, unit_path=("unt_c", "unt_s", "unt_z"))
    for intruder in (stranger, RESIDENT):
        for make in (lambda a, p: rules.publish(a, p, BEFORE), lambda a, p: rules.cancel(a, p, BEFORE, "x"),
                     lambda a, p: rules.complete(a, p, AFTER, {}, 30),
                     lambda a, p: rules.attend_at_desk(a, p, DURING, "res_1")):
            with pytest.raises(PermissionDenied):
                make(activity(A.ACTIVITY_STATUS_PLANNED), intruder)


def test_times_close_what_they_should():
    with pytest.raises(FailedPrecondition, match="already started"):
        rules.publish(activity(A.ACTIVITY_STATUS_PLANNED), ORGANIZER, STARTS)
    with pytest.raises(FailedPrecondition, match="once it has ended"):
        rules.complete(activity(A.ACTIVITY_STATUS_PUBLISHED), ORGANIZER, DURING, {}, 30)
    with pytest.raises(FailedPrecondition, match="sign-up has closed"):
        rules.sign_up(activity(A.ACTIVITY_STATUS_PUBLISHED), NEWCOMER, STARTS, P.PARTICIPANT_ROLE_RESIDENT, COURTYARD)
    for too_early_or_late in (STARTS - dt.timedelta(minutes=31), ENDS + dt.timedelta(seconds=1)):
        with pytest.raises(FailedPrecondition, match="check-in is open"):
            rules.check_in(activity(A.ACTIVITY_STATUS_PUBLISHED), RESIDENT, too_early_or_late, checkin_code(), CODES)


def test_sign_up_needs_reach_room_and_a_first_time():
    published = activity(A.ACTIVITY_STATUS_PUBLISHED)
    with pytest.raises(PermissionDenied):
        rules.sign_up(published, NEWCOMER, BEFORE, P.PARTICIPANT_ROLE_RESIDENT, ["unt_c", "unt_s", "unt_z"])
    with pytest.raises(FailedPrecondition, match="already signed up"):
        rules.sign_up(published, RESIDENT, BEFORE, P.PARTICIPANT_ROLE_RESIDENT, COURTYARD)
    with pytest.raises(FailedPrecondition, match="all 1 resident places"):
        rules.sign_up(activity(A.ACTIVITY_STATUS_PUBLISHED, resident_capacity=1), NEWCOMER, BEFORE,
                      P.PARTICIPANT_ROLE_RESIDENT, COURTYARD)
    move = rules.sign_up(published, NEWCOMER, BEFORE, P.PARTICIPANT_ROLE_RESIDENT, COURTYARD)
    assert move.fields == {"resident_count": 2} and move.participant[0] == "res_2"


def test_who_signs_up_in_which_role():
    volunteer = Principal(subject="vol_1", district_id=DISTRICT, role=Role.ROLE_VOLUNTEER)
    assert rules.participant_role(volunteer, {"status": reg.VOLUNTEER_STATUS_ACTIVE}) == P.PARTICIPANT_ROLE_VOLUNTEER
    assert rules.participant_role(RESIDENT, None) == P.PARTICIPANT_ROLE_RESIDENT
    with pytest.raises(FailedPrecondition, match="not reached"):
        rules.participant_role(volunteer, None)
    with pytest.raises(FailedPrecondition, match="only active"):
        rules.participant_role(volunteer, {"status": reg.VOLUNTEER_STATUS_SUSPENDED})
    with pytest.raises(PermissionDenied):
        rules.participant_role(ORGANIZER, None)


def test_check_in_and_rating_are_once_each_for_participants_only():
    published = activity(A.ACTIVITY_STATUS_PUBLISHED)
    with pytest.raises(PermissionDenied):
        rules.check_in(published, NEWCOMER, DURING, checkin_code(), CODES)
    with pytest.raises(InvalidArgument):
        rules.check_in(published, RESIDENT, DURING, "WRONG", CODES)
    with pytest.raises(FailedPrecondition, match="already checked in"):
        rules.check_in(activity(A.ACTIVITY_STATUS_PUBLISHED, ATTENDED), RESIDENT, DURING, checkin_code(), CODES)
    with pytest.raises(FailedPrecondition, match="who checked in"):
        rules.rate(published, RESIDENT, AFTER, 5, "")
    rated = {"res_1": {**ATTENDED["res_1"], "rating": 4}}
    with pytest.raises(FailedPrecondition, match="already rated"):
        rules.rate(activity(A.ACTIVITY_STATUS_COMPLETED, rated), RESIDENT, AFTER, 5, "")


def test_the_desk_records_once_and_only_its_own_residents():
    published = activity(A.ACTIVITY_STATUS_PUBLISHED, ATTENDED)
    assert rules.attend_at_desk(published, ORGANIZER, DURING, "res_1") is None
    assert rules.seat_at_desk(published, ORGANIZER, DURING, "res_1", Residents()) is None
    with pytest.raises(NotFound):
        rules.seat_at_desk(published, ORGANIZER, DURING, "nobody", Residents())
    holder = rules.pass_holder(published, CODES.pass_code(rules.PASS_PURPOSE, "act_1", "res_1"), CODES)
    assert holder == "res_1"
    with pytest.raises(InvalidArgument):
        rules.pass_holder(published, "AAAAAAAA", CODES)


def test_completing_credits_the_planned_time_to_volunteers_who_attended():
    people = {"vol_1": {"role": P.PARTICIPANT_ROLE_VOLUNTEER, "signed_up_at": BEFORE, "attended_at": DURING},
              "vol_2": {"role": P.PARTICIPANT_ROLE_VOLUNTEER, "signed_up_at": BEFORE},
              "vol_3": {"role": P.PARTICIPANT_ROLE_VOLUNTEER, "signed_up_at": BEFORE},
              **ATTENDED}
    move = rules.complete(activity(A.ACTIVITY_STATUS_PUBLISHED, people), ORGANIZER, AFTER, {"vol_3": 30}, 30)
    assert [(h["volunteer_id"], h["minutes"]) for h in move.fields["hours"]] == [("vol_1", 120), ("vol_3", 30)]
    assert move.event_fields["residents_attended"] == 1
    with pytest.raises(InvalidArgument):
        rules.complete(activity(A.ACTIVITY_STATUS_PUBLISHED, people), ORGANIZER, AFTER, {"res_1": 30}, 30)
