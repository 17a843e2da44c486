"""Activities (活动, e.g. the monthly 小院讲堂): planned and published (公示) by a unit; volunteers
sign up to serve and residents register to attend, within capacity; attendance by the unit's
rotating QR code, or by the organizer scanning a participant's own pass (我的签到码) or recording
a resident by id at the desk (signing them up first when there is room); one rating per
participant; completion records the volunteers' hours.

Every change is one update of the activity document guarded by its version, carrying its event.
Sign-ups and check-ins come in bursts (a whole courtyard registering at once), so the requests of
one activity take turns inside a replica (a striped lock) instead of racing each other into the
version guard; the guard still decides between replicas, and capacity is part of every sign-up's
rules, so no burst can overbook.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf import message

from services.common.auth import Principal, Role, require_manages, require_role
from services.common.checkin import PASS_LENGTH, UNAMBIGUOUS, CheckinCodes
from services.common.clock import as_utc, china_day, clock
from services.common.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.common.documents import back_off
from services.common.events import EventSource, to_timestamp
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.listing import MAX_WINDOW, key, scan
from services.common.validation import Validator, valid_id
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2
from wenming.registration.v1 import registration_pb2 as reg

from . import hours as hours_rules
from . import metrics
from .index import ACTIVITIES, OrderIndex, today
from .menu import MenuBook
from .models import Activity
from .readmodels import Registry
from .translate import activity_snapshot, unit_ref_msg

A = types_pb2.ActivityStatus
P = types_pb2.ParticipantRole
CHECKIN_PURPOSE = "activity"
PASS_PURPOSE = "activity-pass"
PASS_CODE = re.compile(f"^[{UNAMBIGUOUS}]{{{PASS_LENGTH}}}$")
CHECKIN_OPENS_BEFORE = dt.timedelta(minutes=30)
MAX_DURATION = dt.timedelta(hours=12)
MAX_ATTEMPTS = 20  # conflicts here come only from other replicas; backing off settles them
PUBLIC_STATUSES = [A.ACTIVITY_STATUS_PUBLISHED, A.ACTIVITY_STATUS_COMPLETED, A.ACTIVITY_STATUS_CANCELLED]
LOCK_STRIPES = 64
MAX_CALENDAR_WINDOW = dt.timedelta(days=92)


@dataclass
class ActivityMove:
    event: type[message.Message]
    fields: dict = field(default_factory=dict)
    participant: tuple[str, dict] | None = None  # (participant id, its new entry)
    event_fields: dict = field(default_factory=dict)
    after: Callable[[], None] | None = None  # metrics once the move is stored


def _label(role: int) -> str:
    return P.Name(role).removeprefix("PARTICIPANT_ROLE_").lower()


def _start_of(sort_key: str) -> dt.datetime:
    """When the activity of a calendar sort key (index.activity_sort_key) starts."""
    return dt.datetime.strptime(sort_key[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)


class ActivityBoard:
    def __init__(self, registry: Registry, menu: MenuBook, codes: CheckinCodes, events: EventSource,
                 tolerance_minutes: int, index: OrderIndex):
        self.registry = registry
        self.index = index
        self.menu = menu
        self.codes = codes
        self.events = events
        self.tolerance = tolerance_minutes
        self._locks = [threading.Lock() for _ in range(LOCK_STRIPES)]

    # ---- loading, rules, committing ----

    @staticmethod
    def activity_id(value: str) -> str:
        return valid_id("activity_id", value)

    @staticmethod
    def load(district_id: str, activity_id: str) -> tuple[Activity, dict]:
        raw = Activity.raw_in_district(district_id, activity_id, "activity")
        return Activity.from_raw(raw), raw

    @staticmethod
    def require_organizer(principal: Principal, activity: Activity) -> None:
        require_role(principal, Role.ROLE_UNIT_ADMIN)
        require_manages(principal, activity.district_id, activity.unit.path, "activity")

    def _reach(self, principal: Principal) -> list[str]:
        """The units whose activities the caller may join: everything on their path(s)."""
        if principal.role == Role.ROLE_VOLUNTEER:
            volunteer = self.registry.volunteer(principal.district_id, principal.subject)
            if volunteer is not None:
                return list(volunteer.get("scope", ()))
        return list(principal.unit_path)

    def _commit(self, activity: Activity, raw: dict, move: ActivityMove, actor: Principal,
                now: dt.datetime) -> Activity | None:
        version = raw["version"] + 1
        sets = dict(move.fields)
        after_raw = {**raw, **sets, "version": version}
        if move.participant:
            pid, entry = move.participant
            sets[f"participants.{pid}"] = entry
            after_raw["participants"] = {**raw.get("participants", {}), pid: entry}
        after = Activity.from_raw(after_raw)
        payload = move.event(activity=activity_snapshot(after), **move.event_fields)
        event = self.events.new(payload, district_id=activity.district_id, aggregate_type="activity",
                                aggregate_id=activity.id, version=version, actor_id=actor.subject, occurred_at=now)
        changed = Activity.change({"_id": activity.id, "version": raw["version"]}, {"$set": sets}, [event])
        if changed is not None:
            self.index.record_activity(changed.to_mongo().to_dict())
        return changed

    def _run(self, principal: Principal, activity_id: str,
             plan: Callable[[Activity, dt.datetime], ActivityMove | None]) -> Activity:
        """Applies `plan`'s move; a plan that finds nothing to change (None) writes nothing."""
        with self._locks[zlib.crc32(activity_id.encode()) % LOCK_STRIPES]:
            for attempt in range(MAX_ATTEMPTS):
                activity, raw = self.load(principal.district_id, activity_id)
                now = clock.now()
                move = plan(activity, now)
                if move is None:
                    return activity
                changed = self._commit(activity, raw, move, principal, now)
                if changed is not None:
                    if move.after:
                        move.after()
                    return changed
                back_off(attempt)  # another replica won this round
        raise Aborted("the activity kept changing while this request was applied; retry")

    @staticmethod
    def _require_status(activity: Activity, allowed: tuple[int, ...], what: str) -> None:
        if activity.status not in allowed:
            raise FailedPrecondition(f"an activity that is {A.Name(activity.status)} cannot be {what}")

    # ---- the organizer ----

    def plan(self, principal: Principal, req: pb.PlanActivityRequest) -> Activity:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        title = v.text("title", req.title, max_len=60)
        description = v.text("description", req.description, max_len=2000, required=False, multiline=True)
        v.enum("category", req.category, common_pb2.ServiceCategory)
        location = v.text("location", req.location, max_len=100, required=False)
        now = clock.now()
        starts_at = v.timestamp("starts_at", req)
        ends_at = v.timestamp("ends_at", req)
        if starts_at is not None:
            starts_at = starts_at.replace(microsecond=0)  # whole seconds: the page key
            if starts_at <= now:
                v.fail("starts_at", "must be in the future")
        if starts_at is not None and ends_at is not None:
            ends_at = ends_at.replace(microsecond=0)
            if not starts_at < ends_at <= starts_at + MAX_DURATION:
                v.fail("ends_at", "must be after starts_at and at most 12 hours later")
        v.int_range("volunteer_capacity", req.volunteer_capacity, 0, 500)
        v.int_range("resident_capacity", req.resident_capacity, 0, 5000)
        if req.volunteer_capacity == 0 and req.resident_capacity == 0:
            v.fail("resident_capacity", "an activity needs room for volunteers or residents")
        v.check()
        require_role(principal, Role.ROLE_UNIT_ADMIN)
        path = self.menu.unit_path(principal, unit_id, "unit_id")
        require_manages(principal, principal.district_id, path)
        unit = self.registry.unit_ref(principal.district_id, path)
        if not unit["name"] and unit["unit_id"] == principal.unit_id:
            unit["name"] = principal.unit_name
        activity = Activity.from_raw({
            "_id": new_id("act"), "district_id": principal.district_id, "title": title, "description": description,
            "category": req.category, "unit": unit, "location": location, "starts_at": starts_at, "ends_at": ends_at,
            "volunteer_capacity": req.volunteer_capacity, "resident_capacity": req.resident_capacity,
            "volunteer_count": 0, "resident_count": 0, "participants": {}, "status": A.ACTIVITY_STATUS_PLANNED,
            "planned_by": principal.subject, "planned_at": now, "version": 0})
        event = self.events.new(ev.ActivityPlanned(activity=activity_snapshot(activity)),
                                district_id=activity.district_id, aggregate_type="activity",
                                aggregate_id=activity.id, version=1, actor_id=principal.subject, occurred_at=now)
        activity.insert([event])
        self.index.record_activity(activity.to_mongo().to_dict())
        return activity

    def publish(self, principal: Principal, activity_id: str) -> Activity:
        activity_id = self.activity_id(activity_id)

        def plan(activity: Activity, now: dt.datetime) -> ActivityMove:
            self.require_organizer(principal, activity)
            self._require_status(activity, (A.ACTIVITY_STATUS_PLANNED,), "published")
            if as_utc(activity.starts_at) <= now:
                raise FailedPrecondition("the activity has already started; plan a new one")
            return ActivityMove(ev.ActivityPublished, fields={"status": A.ACTIVITY_STATUS_PUBLISHED})

        return self._run(principal, activity_id, plan)

    def cancel(self, principal: Principal, activity_id: str, reason: str) -> Activity:
        v = Validator()
        activity_id = v.ident("activity_id", activity_id)
        reason = v.text("reason", reason, max_len=200)
        v.check()

        def plan(activity: Activity, now: dt.datetime) -> ActivityMove:
            self.require_organizer(principal, activity)
            self._require_status(activity, (A.ACTIVITY_STATUS_PLANNED, A.ACTIVITY_STATUS_PUBLISHED), "cancelled")
            return ActivityMove(ev.ActivityCancelled, fields={"status": A.ACTIVITY_STATUS_CANCELLED,
                                                              "cancel_reason": reason},
                                event_fields={"reason": reason})

        return self._run(principal, activity_id, plan)

    def issue_code(self, principal: Principal, activity_id: str) -> tuple[str, float]:
        activity_id = self.activity_id(activity_id)
        activity, _ = self.load(principal.district_id, activity_id)
        self.require_organizer(principal, activity)
        self._require_status(activity, (A.ACTIVITY_STATUS_PUBLISHED,), "checked in to")
        self._require_checkin_window(activity, clock.now())
        return self.codes.issue(CHECKIN_PURPOSE, activity.id)

    def complete(self, principal: Principal, req: pb.CompleteActivityRequest) -> Activity:
        v = Validator()
        activity_id = v.ident("activity_id", req.activity_id)
        manual = hours_rules.parse_manual(v, req.manual)
        v.check()

        def plan(activity: Activity, now: dt.datetime) -> ActivityMove:
            self.require_organizer(principal, activity)
            self._require_status(activity, (A.ACTIVITY_STATUS_PUBLISHED,), "completed")
            if now < as_utc(activity.ends_at):
                raise FailedPrecondition("the activity can be completed once it has ended")
            planned = int((as_utc(activity.ends_at) - as_utc(activity.starts_at)).total_seconds() // 60)

            def served(pid: str) -> bool:
                p = activity.participants.get(pid)
                return p is not None and p.role == P.PARTICIPANT_ROLE_VOLUNTEER

            hours_rules.check_manual(req.manual, served, "did not sign up to serve at this activity", planned,
                                     self.tolerance)
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
                                              "recorded_by": unit_ref_msg(activity.unit),
                                              "residents_attended": residents})

        return self._run(principal, activity_id, plan)

    # ---- participants ----

    def _participant_role(self, principal: Principal) -> int:
        if principal.role == Role.ROLE_VOLUNTEER:
            volunteer = self.registry.volunteer(principal.district_id, principal.subject)
            if volunteer is None:
                raise FailedPrecondition("your volunteer profile has not reached the ordering service yet; "
                                         "try again in a moment")
            if volunteer["status"] != reg.VOLUNTEER_STATUS_ACTIVE:
                raise FailedPrecondition("only active volunteers may sign up to serve")
            return P.PARTICIPANT_ROLE_VOLUNTEER
        if principal.role == Role.ROLE_RESIDENT:
            return P.PARTICIPANT_ROLE_RESIDENT
        raise PermissionDenied("volunteers and residents sign up for activities")

    def sign_up(self, principal: Principal, activity_id: str) -> Activity:
        activity_id = self.activity_id(activity_id)
        role = self._participant_role(principal)
        reach = self._reach(principal)

        def plan(activity: Activity, now: dt.datetime) -> ActivityMove:
            if activity.unit.unit_id not in reach:
                raise PermissionDenied("that activity is organized outside your units")
            self._require_status(activity, (A.ACTIVITY_STATUS_PUBLISHED,), "signed up for")
            if now >= as_utc(activity.starts_at):
                raise FailedPrecondition("sign-up has closed: the activity has started")
            if principal.subject in activity.participants:
                raise FailedPrecondition("you have already signed up for this activity")
            return self._seat(activity, principal.subject, role, now)

        return self._refusals_counted(role, lambda: self._run(principal, activity_id, plan))

    @staticmethod
    def _seat(activity: Activity, participant_id: str, role: int, now: dt.datetime) -> ActivityMove:
        """A place for the participant; the count is checked in the same guarded write, so no
        burst overbooks."""
        volunteers = role == P.PARTICIPANT_ROLE_VOLUNTEER
        count, capacity = ((activity.volunteer_count, activity.volunteer_capacity) if volunteers else
                           (activity.resident_count, activity.resident_capacity))
        if count >= capacity:
            raise FailedPrecondition(f"the activity is full: all {capacity} {_label(role)} places are taken")
        counter = "volunteer_count" if volunteers else "resident_count"
        return ActivityMove(ev.ActivitySignedUp, fields={counter: count + 1},
                            participant=(participant_id, {"role": role, "signed_up_at": now, "rating": 0,
                                                          "comment": ""}),
                            event_fields={"participant_id": participant_id, "role": role},
                            after=metrics.ACTIVITY_SIGNUPS.labels(_label(role), "accepted").inc)

    @staticmethod
    def _refusals_counted(role: int, run: Callable[[], Activity]) -> Activity:
        try:
            return run()
        except FailedPrecondition:
            metrics.ACTIVITY_SIGNUPS.labels(_label(role), "refused").inc()
            raise

    @staticmethod
    def _require_checkin_window(activity: Activity, now: dt.datetime) -> None:
        if not as_utc(activity.starts_at) - CHECKIN_OPENS_BEFORE <= now <= as_utc(activity.ends_at):
            raise FailedPrecondition("check-in is open from 30 minutes before the start until the end")

    def check_in(self, principal: Principal, activity_id: str, code: str) -> Activity:
        v = Validator()
        activity_id = v.ident("activity_id", activity_id)
        code = v.text("code", code, max_len=64)
        v.check()

        def plan(activity: Activity, now: dt.datetime) -> ActivityMove:
            entry = self._participation(principal, activity)
            self._require_status(activity, (A.ACTIVITY_STATUS_PUBLISHED,), "checked in to")
            if entry.attended_at is not None:
                raise FailedPrecondition("you have already checked in")
            self._require_checkin_window(activity, now)
            if not self.codes.verify(CHECKIN_PURPOSE, activity.id, code):
                raise InvalidArgument.field("code", "is expired or is not a check-in code of this activity; scan "
                                                    "the current QR code")
            return self._attendance(principal.subject, entry, now)

        return self._run(principal, activity_id, plan)

    @staticmethod
    def _attendance(participant_id: str, entry, now: dt.datetime) -> ActivityMove:
        updated = {**entry.to_mongo().to_dict(), "attended_at": now}
        return ActivityMove(ev.ActivityAttended, participant=(participant_id, updated),
                            event_fields={"participant_id": participant_id, "role": entry.role,
                                          "checked_in_at": to_timestamp(now)})

    # ---- passes and the organizer's desk ----

    def get_pass(self, principal: Principal, activity_id: str) -> tuple[Activity, str]:
        """The caller's own pass (我的签到码) for an activity they signed up for."""
        activity, _ = self.load(principal.district_id, self.activity_id(activity_id))
        self._participation(principal, activity)
        return activity, self.codes.pass_code(PASS_PURPOSE, activity.id, principal.subject)

    def record_attendance(self, principal: Principal, req: pb.RecordActivityAttendanceRequest) -> tuple[Activity, str]:
        """The organizer records a participant as attending: by the pass they show, or a resident
        by id (问需台: no phone), signed up first when there is room. Recording twice changes
        nothing. Returns the activity and the participant's id."""
        v = Validator()
        activity_id = v.ident("activity_id", req.activity_id)
        pass_code = (req.pass_code or "").strip().upper()
        resident_id = v.ident("resident_id", req.resident_id, required=False)
        if bool(pass_code) == bool(resident_id):
            v.fail("pass_code", "give exactly one: the participant's pass, or a resident_id")
        elif pass_code and not PASS_CODE.match(pass_code):
            v.fail("pass_code", f"must be the {PASS_LENGTH}-character pass the participant shows")
        v.check()
        if pass_code:
            # participants are never removed, so whom the pass names does not change meanwhile
            activity, _ = self.load(principal.district_id, activity_id)
            self.require_organizer(principal, activity)
            participant_id = self._pass_holder(activity, pass_code)
        else:
            participant_id = resident_id

            def seat(activity: Activity, now: dt.datetime) -> ActivityMove | None:
                self.require_organizer(principal, activity)
                self._require_desk_resident(principal, activity, resident_id)
                if resident_id in activity.participants:
                    return None
                self._require_desk_open(activity, now)
                return self._seat(activity, resident_id, P.PARTICIPANT_ROLE_RESIDENT, now)

            self._refusals_counted(P.PARTICIPANT_ROLE_RESIDENT, lambda: self._run(principal, activity_id, seat))

        def attend(activity: Activity, now: dt.datetime) -> ActivityMove | None:
            self.require_organizer(principal, activity)
            entry = activity.participants[participant_id]
            if entry.attended_at is not None:
                return None  # recorded before (or checked in by code)
            self._require_desk_open(activity, now)
            return self._attendance(participant_id, entry, now)

        return self._run(principal, activity_id, attend), participant_id

    def _require_desk_open(self, activity: Activity, now: dt.datetime) -> None:
        self._require_status(activity, (A.ACTIVITY_STATUS_PUBLISHED,), "attended")
        self._require_checkin_window(activity, now)

    def _pass_holder(self, activity: Activity, pass_code: str) -> str:
        holders = [pid for pid in activity.participants
                   if self.codes.pass_code(PASS_PURPOSE, activity.id, pid) == pass_code]
        if not holders:
            raise InvalidArgument.field("pass_code", "is not the pass of anyone signed up for this activity")
        if len(holders) > 1:  # 8 characters of 31: practically never
            raise FailedPrecondition("this pass matches two participants; record the resident by id instead")
        return holders[0]

    def _require_desk_resident(self, principal: Principal, activity: Activity, resident_id: str) -> None:
        """A resident the organizer manages, living under the organizing unit."""
        resident = self.registry.resident(activity.district_id, resident_id)
        if resident is None:
            raise NotFound("resident", resident_id)
        path = resident["courtyard"]["path"]
        require_manages(principal, activity.district_id, path, "resident's courtyard")
        if activity.unit.unit_id not in path:
            raise FailedPrecondition("that resident lives outside the units this activity is organized for")

    def rate(self, principal: Principal, req: pb.RateActivityRequest) -> Activity:
        v = Validator()
        activity_id = v.ident("activity_id", req.activity_id)
        v.int_range("rating", req.rating, 1, 5)
        comment = v.text("comment", req.comment, max_len=500, required=False, multiline=True)
        v.check()

        def plan(activity: Activity, now: dt.datetime) -> ActivityMove:
            entry = self._participation(principal, activity)
            self._require_status(activity, (A.ACTIVITY_STATUS_PUBLISHED, A.ACTIVITY_STATUS_COMPLETED), "rated")
            if entry.attended_at is None:
                raise FailedPrecondition("only participants who checked in may rate the activity")
            if entry.rating:
                raise FailedPrecondition("you have already rated this activity (one rating per participant)")
            updated = {**entry.to_mongo().to_dict(), "rating": req.rating, "comment": comment}
            return ActivityMove(ev.ActivityRated, participant=(principal.subject, updated),
                                event_fields={"participant_id": principal.subject, "rating": req.rating})

        return self._run(principal, activity_id, plan)

    @staticmethod
    def _participation(principal: Principal, activity: Activity):
        entry = activity.participants.get(principal.subject)
        if entry is None:
            raise PermissionDenied("you have not signed up for this activity")
        return entry

    # ---- reads ----

    def get(self, principal: Principal, activity_id: str) -> tuple[Activity, list[str] | None]:
        """The activity and whose participation the caller may see (None: everyone's)."""
        activity_id = self.activity_id(activity_id)
        activity, _ = self.load(principal.district_id, activity_id)
        if principal.role == Role.ROLE_SERVICE or principal.manages(activity.unit.path):
            return activity, None
        joined = principal.subject in activity.participants
        if joined or (activity.status != A.ACTIVITY_STATUS_PLANNED and activity.unit.unit_id in self._reach(principal)):
            return activity, [principal.subject]
        raise PermissionDenied("that activity is not yours to see")

    def list(self, principal: Principal, req: pb.ListActivitiesRequest) -> tuple[list[Activity], str]:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        statuses = v.enums("statuses", list(req.statuses), types_pb2.ActivityStatus, max_count=4)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        window = self._calendar_window(v, req)
        v.check()
        path = self.menu.unit_path(principal, unit_id, "unit_id")
        district = principal.district_id
        if req.subtree:
            require_role(principal, Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE)
            require_manages(principal, district, path)
            field, units, wanted = f"in{len(path) - 1}", [path[-1]], set(statuses)
        else:
            # what is only planned is the organizers' business until it is published (公示)
            field, units = "own", list(path)
            wanted = {s for s in statuses or PUBLIC_STATUSES if s in PUBLIC_STATUSES}
            if not wanted:
                return [], ""
        if after:
            try:
                _start_of(after)
            except ValueError:
                raise InvalidArgument.field("page.page_token", "is not a token returned by this API") from None
        days = range(china_day(window[0]), china_day(window[1] - dt.timedelta(microseconds=1)) + 1) if window else \
            self.index.bounds.days(district, ACTIVITIES, today())

        def fetch(chunk: list[int]) -> list[dict]:
            keys = [key(district, unit, day) for unit in units for day in chunk]
            return [e for at in range(0, len(keys), MAX_WINDOW)
                    for e in self.index.activities.find({field: {"$in": keys[at:at + MAX_WINDOW]}},
                                                        {"status": 1, "sk": 1, "unit": 1})]

        def shown(entry: dict) -> bool:
            return (not wanted or entry["status"] in wanted) and (
                window is None or window[0] <= _start_of(entry["sk"]) < window[1])

        page = scan(fetch, list(days), sort_key=lambda e: e["sk"], bucket_of=lambda sk: china_day(_start_of(sk)),
                    size=size, after=after, accept=shown, window=7)
        ids = [e["_id"] for e in page.entries]
        found = {raw["_id"]: raw for raw in Activity.collection().find({"_id": {"$in": ids}}, {"outbox": 0})}
        activities = [Activity.from_raw(found[i]) for i in ids if i in found and found[i]["district_id"] == district
                      and (not wanted or found[i]["status"] in wanted)
                      and (found[i]["unit"]["unit_id"] in units if not req.subtree else
                           path[-1] in found[i]["unit"]["path"])]
        return activities, encode_page_token(page.entries[-1]["sk"]) if page.more else ""

    @staticmethod
    def _calendar_window(v: Validator, req: pb.ListActivitiesRequest) -> tuple[dt.datetime, dt.datetime] | None:
        """[starts_from, starts_before) of at most 92 days; one bound alone reaches 92 days from it."""
        since = v.timestamp("starts_from", req, required=False)
        before = v.timestamp("starts_before", req, required=False)
        if since is None and before is None:
            return None
        since = since or before - MAX_CALENDAR_WINDOW
        before = before or since + MAX_CALENDAR_WINDOW
        if before <= since:
            v.fail("starts_before", "must be after starts_from")
        elif before - since > MAX_CALENDAR_WINDOW:
            v.fail("starts_before", "the window may span at most 92 days")
        return since, before
