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

from services.common.auth import Principal, Role, require_manages, require_role
from services.common.checkin import PASS_LENGTH, UNAMBIGUOUS, CheckinCodes
from services.common.clock import china_day, clock
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.events import EventSource
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.listing import MAX_WINDOW, key, scan
from services.common.retry import LOST_RACE, Retry, until_written
from services.common.validation import Validator, valid_id
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

from . import activity_rules as rules
from . import hours as hours_rules
from . import metrics
from .index import ACTIVITIES, OrderIndex, today
from .menu import CODE, CODE_RULE, MenuBook
from .models import Activity
from .activity_rules import ActivityMove
from .readmodels import Registry
from .taxonomy_rules import resolve
from .translate import activity_snapshot

A = types_pb2.ActivityStatus
P = types_pb2.ParticipantRole
PASS_CODE = re.compile(f"^[{UNAMBIGUOUS}]{{{PASS_LENGTH}}}$")
MAX_DURATION = dt.timedelta(hours=12)
CONFLICTS = Retry(max_attempts=20, backoff=LOST_RACE)  # conflicts here come only from other replicas; backing off settles them
PUBLIC_STATUSES = [A.ACTIVITY_STATUS_PUBLISHED, A.ACTIVITY_STATUS_COMPLETED, A.ACTIVITY_STATUS_CANCELLED]
LOCK_STRIPES = 64
MAX_CALENDAR_WINDOW = dt.timedelta(days=92)


def _start_of(sort_key: str) -> dt.datetime:
    """When the activity of a calendar sort key (index.activity_sort_key) starts."""
    return dt.datetime.strptime(sort_key[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)


def reach(registry: Registry, principal: Principal) -> list[str]:
    """The units a resident or volunteer belongs to, whose activities (and activity plans) are
    theirs: everything on their path(s)."""
    if principal.role == Role.ROLE_VOLUNTEER:
        volunteer = registry.volunteer(principal.district_id, principal.subject)
        if volunteer is not None:
            return list(volunteer.get("scope", ()))
    return list(principal.unit_path)


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

    def _reach(self, principal: Principal) -> list[str]:
        return reach(self.registry, principal)

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
        def attempt() -> Activity | None:
            activity, raw = self.load(principal.district_id, activity_id)
            now = clock.now()
            move = plan(activity, now)
            if move is None:
                return activity
            changed = self._commit(activity, raw, move, principal, now)
            if changed is not None and move.after:
                move.after()
            return changed

        with self._locks[zlib.crc32(activity_id.encode()) % LOCK_STRIPES]:  # another replica may still win a round
            return until_written(CONFLICTS, attempt, "the activity kept changing while this request was applied; retry")

    # ---- the organizer ----

    def plan(self, principal: Principal, req: pb.PlanActivityRequest) -> Activity:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        title = v.text("title", req.title, max_len=60)
        description = v.text("description", req.description, max_len=2000, required=False, multiline=True)
        item_code = v.regex("district_item_code", req.district_item_code, CODE, CODE_RULE, required=False)
        v.enum("category", req.category, common_pb2.ServiceCategory, required=not item_code)
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
        category = resolve(self.menu.taxonomies.get(principal.district_id), item_code, req.category)
        unit = self.registry.unit_ref(principal.district_id, path)
        if not unit["name"] and unit["unit_id"] == principal.unit_id:
            unit["name"] = principal.unit_name
        activity = Activity.from_raw({
            "_id": new_id("act"), "district_id": principal.district_id, "title": title, "description": description,
            "category": category, "district_item_code": item_code, "unit": unit, "location": location, "starts_at": starts_at, "ends_at": ends_at,
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
        return self._run(principal, self.activity_id(activity_id),
                         lambda activity, now: rules.publish(activity, principal, now))

    def cancel(self, principal: Principal, activity_id: str, reason: str) -> Activity:
        v = Validator()
        activity_id = v.ident("activity_id", activity_id)
        reason = v.text("reason", reason, max_len=200)
        v.check()
        return self._run(principal, activity_id, lambda activity, now: rules.cancel(activity, principal, now, reason))

    def issue_code(self, principal: Principal, activity_id: str) -> tuple[str, float]:
        activity, _ = self.load(principal.district_id, self.activity_id(activity_id))
        rules.may_show_code(activity, principal, clock.now())
        return self.codes.issue(rules.CHECKIN_PURPOSE, activity.id)

    def complete(self, principal: Principal, req: pb.CompleteActivityRequest) -> Activity:
        v = Validator()
        activity_id = v.ident("activity_id", req.activity_id)
        manual = hours_rules.parse_manual(v, req.manual)
        v.check()
        return self._run(principal, activity_id,
                         lambda activity, now: rules.complete(activity, principal, now, manual, self.tolerance))

    # ---- participants ----

    def sign_up(self, principal: Principal, activity_id: str) -> Activity:
        activity_id = self.activity_id(activity_id)
        volunteer = self.registry.volunteer(principal.district_id, principal.subject) \
            if principal.role == Role.ROLE_VOLUNTEER else None
        role = rules.participant_role(principal, volunteer)
        reach = self._reach(principal)
        return self._refusals_counted(role, lambda: self._run(
            principal, activity_id, lambda activity, now: rules.sign_up(activity, principal, now, role, reach)))

    @staticmethod
    def _refusals_counted(role: int, run: Callable[[], Activity]) -> Activity:
        try:
            return run()
        except FailedPrecondition:
            metrics.ACTIVITY_SIGNUPS.labels(rules.role_label(role), "refused").inc()
            raise

    def check_in(self, principal: Principal, activity_id: str, code: str) -> Activity:
        v = Validator()
        activity_id = v.ident("activity_id", activity_id)
        code = v.text("code", code, max_len=64)
        v.check()
        return self._run(principal, activity_id,
                         lambda activity, now: rules.check_in(activity, principal, now, code, self.codes))

    def rate(self, principal: Principal, req: pb.RateActivityRequest) -> Activity:
        v = Validator()
        activity_id = v.ident("activity_id", req.activity_id)
        comment = v.rating(req.rating, req.comment)
        v.check()
        return self._run(principal, activity_id,
                         lambda activity, now: rules.rate(activity, principal, now, req.rating, comment))

    # ---- passes and the organizer's desk ----

    def get_pass(self, principal: Principal, activity_id: str) -> tuple[Activity, str]:
        """The caller's own pass (我的签到码) for an activity they signed up for."""
        activity, _ = self.load(principal.district_id, self.activity_id(activity_id))
        rules.participation(principal, activity)
        return activity, self.codes.pass_code(rules.PASS_PURPOSE, activity.id, principal.subject)

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
            rules.require_organizer(principal, activity)
            participant_id = rules.pass_holder(activity, pass_code, self.codes)
        else:
            participant_id = resident_id
            self._refusals_counted(P.PARTICIPANT_ROLE_RESIDENT, lambda: self._run(
                principal, activity_id,
                lambda activity, now: rules.seat_at_desk(activity, principal, now, resident_id, self.registry)))
        attended = self._run(principal, activity_id,
                             lambda activity, now: rules.attend_at_desk(activity, principal, now, participant_id))
        return attended, participant_id

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
