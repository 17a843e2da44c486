"""Training sessions: scheduled by a unit for the volunteers serving in its subtree.

The roster lives inside the session document (`trainees`: volunteer id -> entry, plus the
ordered `waitlist` and the `seats_left` counter), so every rule about seats is one conditional
single-document update: a seat is taken only while `seats_left > 0`, the waitlist is joined only
while it is 0, and a cancelled seat goes to the head of the waitlist in the same write.

Each trainee entry has its own version `v`; events about one trainee (aggregate "enrollment",
id "<session id>/<volunteer id>") carry it, and every write about a trainee is guarded by it, so
concurrent writes about different trainees never need to retry against each other.

Time rules (the controllable clock): enrollment until the start; attendance from 30 minutes
before the start (check-in until the end, organizer records until the close); quiz attempts
until the close; an organizer closes a session once it started, the service closes it at
`closes_at` (end + the quiz window) otherwise.
"""

from __future__ import annotations

import builtins
import datetime as dt
import re
from collections.abc import Callable

from services.common.auth import Principal, Role
from services.common.clock import as_utc, clock
from services.common.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.common.events import EventSource, to_timestamp
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.outbox import update_with_events
from services.common.retry import LOST_RACE, Retry, until_written
from services.common.validation import Validator
from services.common.readmodels import stored_unit_ref, unit_ref_msg
from wenming.training.v1 import events_pb2, training_pb2 as pb, types_pb2

from . import metrics
from .catalog import ACTIVE as COURSE_ACTIVE, CourseCatalog, certification_spec, latest
from .directory import Directory
from .models import Session
from .trainers import TrainerPool

T = types_pb2.TraineeState
SCHEDULED, CLOSED, CANCELLED = pb.SESSION_STATUS_SCHEDULED, pb.SESSION_STATUS_CLOSED, pb.SESSION_STATUS_CANCELLED
# states that hold a place on the session: enrolling again is refused while in one
HOLDING = (T.TRAINEE_STATE_WAITLISTED, T.TRAINEE_STATE_ENROLLED, T.TRAINEE_STATE_ATTENDED, T.TRAINEE_STATE_PASSED,
           T.TRAINEE_STATE_FAILED)
ATTENDEES = (T.TRAINEE_STATE_ATTENDED, T.TRAINEE_STATE_PASSED, T.TRAINEE_STATE_FAILED)
CHECKIN_OPENS_BEFORE = dt.timedelta(minutes=30)
MAX_LENGTH = dt.timedelta(days=7)
MAX_CAPACITY = 5000
HTTPS_URL = re.compile(r"^https://[^\s]{4,290}$")
CONFLICTS = Retry(max_attempts=64, backoff=LOST_RACE)  # concurrent cancellations all promote the same head: one wins per round


class SessionDoc:
    """A stored session as read: the raw document with attribute access. The roster inside can
    hold thousands of trainees, which mongoengine would convert field by field on every read."""

    __slots__ = ("raw",)
    EMPTY = {"trainees": dict, "waitlist": list, "roster": list}  # may be absent until the first trainee

    def __init__(self, raw: dict):
        self.raw = raw

    def __getattr__(self, name: str):
        if name in self.EMPTY:
            return self.raw.get(name) or self.EMPTY[name]()
        return self.raw.get("_id" if name == "id" else name)


def state_name(state: int) -> str:
    return T.Name(state).removeprefix("TRAINEE_STATE_")


def has_quiz(session: SessionDoc) -> bool:
    return bool(session.course["quiz"]["questions"])


def enrollment_key(session_id: str, volunteer_id: str) -> str:
    """The aggregate id of one trainee's events (and their Kafka key)."""
    return f"{session_id}/{volunteer_id}"


def completion_id(session_id: str, volunteer_id: str) -> str:
    return f"{session_id}:{volunteer_id}"


def session_snapshot(session: SessionDoc) -> events_pb2.SessionSnapshot:
    course = session.course
    return events_pb2.SessionSnapshot(
        session_id=session.id, course_id=session.course_id, course_revision=course["revision"],
        course_title=course["title"], level=course["level"], minutes=course["minutes"],
        unit=unit_ref_msg(session.unit), trainer_id=session.trainer_id, mode=session.mode,
        starts_at=to_timestamp(session.starts_at), ends_at=to_timestamp(session.ends_at), capacity=session.capacity)


def trainee_guard(session: SessionDoc, volunteer_id: str, *states: int) -> dict:
    """Filter terms that hold only while the trainee is exactly as read (version, and state)."""
    trainee = session.trainees.get(volunteer_id)
    if trainee is None:
        return {f"trainees.{volunteer_id}": {"$exists": False}}
    guard = {f"trainees.{volunteer_id}.v": trainee["v"]}
    if states:
        guard[f"trainees.{volunteer_id}.state"] = states[0] if len(states) == 1 else {"$in": list(states)}
    return guard


class SessionBook:
    def __init__(self, directory: Directory, catalog: CourseCatalog, trainers: TrainerPool, events: EventSource,
                 quiz_window: dt.timedelta):
        self.directory = directory
        self.catalog = catalog
        self.trainers = trainers
        self.events = events
        self.quiz_window = quiz_window

    # ---- shared by enrollment, attendance and quiz ----

    def load(self, district_id: str, session_id: str) -> SessionDoc:
        return SessionDoc(Session.raw_in_district(district_id, session_id, "session"))

    def load_checked(self, principal: Principal, session_id: str) -> SessionDoc:
        v = Validator()
        session_id = v.ident("session_id", session_id)
        v.check()
        return self.load(principal.district_id, session_id)

    def is_organizer(self, principal: Principal, session: SessionDoc) -> bool:
        return principal.role in (Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE) and principal.manages(session.unit_path)

    def require_organizer(self, principal: Principal, session: SessionDoc) -> None:
        """Organizers are the admins of the session's unit and the units above it."""
        if not self.is_organizer(principal, session):
            raise PermissionDenied("only admins of the organizing unit may do this")

    def require_viewer(self, principal: Principal, session: SessionDoc) -> None:
        if self.is_organizer(principal, session):
            return
        if principal.role == Role.ROLE_VOLUNTEER:
            if principal.subject in session.trainees:
                return
            volunteer = self.directory.models.volunteer(principal.district_id, principal.subject)
            if volunteer is not None and session.unit_id in volunteer.get("scope", ()):
                return
        raise PermissionDenied("this session is organized for another unit's volunteers")

    def session_event(self, payload, session: SessionDoc, version: int, actor: str) -> dict:
        return self.events.new(payload, district_id=session.district_id, aggregate_type="session",
                               aggregate_id=session.id, version=version, actor_id=actor, occurred_at=clock.now())

    def trainee_event(self, payload, session: SessionDoc, volunteer_id: str, version: int, actor: str) -> dict:
        return self.events.new(payload, district_id=session.district_id, aggregate_type="enrollment",
                               aggregate_id=enrollment_key(session.id, volunteer_id), version=version,
                               actor_id=actor, occurred_at=clock.now())

    def completion_event(self, session: SessionDoc, volunteer_id: str, version: int, score: int, at: dt.datetime,
                         actor: str) -> dict:
        course = session.course
        return self.trainee_event(events_pb2.CourseCompleted(
            completion_id=completion_id(session.id, volunteer_id), volunteer_id=volunteer_id,
            course_id=session.course_id, course_revision=course["revision"], course_title=course["title"],
            level=course["level"], minutes=course["minutes"], score=score, completed_at=to_timestamp(at),
            session_id=session.id, recorded_by=unit_ref_msg(session.unit),
            certification=certification_spec(course)), session, volunteer_id, version, actor)

    def write(self, session: SessionDoc, guard: dict, update: dict, events: list[dict]) -> SessionDoc | None:
        """One conditional update of the session carrying its events (the kit's outbox write, as
        Aggregate.change does, kept raw); None when the guard no longer holds."""
        raw = update_with_events(Session.collection(), {"_id": session.id, **guard}, update, events)
        return None if raw is None else SessionDoc(raw)

    def retrying(self, session: SessionDoc, attempt: Callable[[SessionDoc], SessionDoc | None]) -> SessionDoc:
        """Runs `attempt` (which checks the rules on the session it gets, then writes guarded by
        what it read) until its guard holds, re-reading the session between tries."""
        current = [session]  # the first try checks the session the caller read

        def once() -> SessionDoc | None:
            read = current.pop() if current else self.load(session.district_id, session.id)
            return attempt(read)

        return until_written(CONFLICTS, once, "the session is changing quickly right now; retry")

    @staticmethod
    def require_open(session: SessionDoc) -> None:
        if session.status != SCHEDULED:
            raise FailedPrecondition(f"the session is {pb.SessionStatus.Name(session.status).removeprefix('SESSION_STATUS_')}")

    # ---- schedule ----

    def schedule(self, principal: Principal, req: pb.ScheduleSessionRequest) -> SessionDoc:
        v = Validator()
        course_id = v.ident("course_id", req.course_id)
        unit_id = v.unit_or_own("unit_id", req.unit_id, principal.unit_id)
        trainer_id = v.ident("trainer_id", req.trainer_id)
        v.enum("mode", req.mode, types_pb2.SessionMode)
        offline = req.mode == types_pb2.SESSION_MODE_OFFLINE
        location = v.text("location", req.location, max_len=100, required=offline)
        online_url = v.regex("online_url", req.online_url, HTTPS_URL, "must be an https:// address",
                             required=req.mode == types_pb2.SESSION_MODE_ONLINE)
        starts_at, ends_at = v.timestamp("starts_at", req), v.timestamp("ends_at", req)
        now = clock.now()
        if starts_at and starts_at <= now:
            v.fail("starts_at", "must be in the future")
        if starts_at and ends_at and not starts_at < ends_at <= starts_at + MAX_LENGTH:
            v.fail("ends_at", "must be after starts_at and at most 7 days later")
        v.int_range("capacity", req.capacity, 1, MAX_CAPACITY)
        v.check()
        assert starts_at is not None and ends_at is not None  # check() refused a missing one
        unit = self.directory.unit(principal.district_id, unit_id)
        self.directory.require_admin_of_unit(principal, unit)
        course = self.catalog.load(principal.district_id, course_id)
        if course.status != COURSE_ACTIVE:
            raise FailedPrecondition("the course is retired; no new sessions")
        trainer = self.trainers.for_session(principal.district_id, trainer_id, unit)
        content = latest(course)
        session = Session(
            id=new_id("ses"), district_id=principal.district_id, course_id=course.id,
            course={key: content[key] for key in ("revision", "title", "level", "category", "minutes", "quiz",
                                                  "certification")},
            unit=stored_unit_ref(unit), unit_id=unit["_id"], unit_path=list(unit["path"]), trainer_id=trainer.id,
            trainer_name=trainer.name, mode=req.mode, location=location if offline else "",
            online_url="" if offline else online_url, starts_at=starts_at, ends_at=ends_at,
            closes_at=ends_at + self.quiz_window, capacity=req.capacity, seats_left=req.capacity, waitlist=[],
            waitlist_count=0, trainees={}, roster=[], status=SCHEDULED, created_by=principal.subject, created_at=now)
        scheduled = SessionDoc(session.to_mongo().to_dict())
        session.insert([self.session_event(events_pb2.SessionScheduled(session=session_snapshot(scheduled)), scheduled,
                                           1, principal.subject)])
        metrics.SESSIONS.labels("scheduled").inc()
        return SessionDoc({**scheduled.raw, "version": 1})

    # ---- reads ----

    def get(self, principal: Principal, session_id: str) -> SessionDoc:
        session = self.load_checked(principal, session_id)
        self.require_viewer(principal, session)
        return session

    def list(self, principal: Principal, req: pb.ListSessionsRequest) -> tuple[list[SessionDoc], str]:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        course_id = v.ident("course_id", req.course_id, required=False)
        v.enum("status", req.status, pb.SessionStatus, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        query: dict = {"district_id": principal.district_id}
        if principal.role == Role.ROLE_VOLUNTEER:
            volunteer = self.directory.caller_volunteer(principal)
            query["$or"] = [{"unit_id": {"$in": list(volunteer.get("scope", ()))}}, {"roster": volunteer["_id"]}]
            if unit_id:
                query["unit_path"] = unit_id
        else:
            if not (unit_id or principal.unit_id):
                raise InvalidArgument.field("unit_id", "must be set (your token names no unit)")
            unit = self.directory.unit(principal.district_id, unit_id or principal.unit_id)
            self.directory.require_admin_of_unit(principal, unit)
            query["unit_path"] = unit["_id"]
        if course_id:
            query["course_id"] = course_id
        if req.status:
            query["status"] = req.status
        if after:
            query["_id"] = {"$gt": after}
        raw = Session.collection().find(query, {"outbox": 0, "trainees": 0, "roster": 0, "waitlist": 0})
        found = [SessionDoc(r) for r in raw.sort("_id", 1).limit(size + 1)]
        token = encode_page_token(found[size - 1].id) if len(found) > size else ""
        return found[:size], token

    def roster(self, principal: Principal, req: pb.ListRosterRequest) -> tuple[SessionDoc, builtins.list[str], str]:
        """The session and one page of its trainees' volunteer ids, ordered by id."""
        v = Validator()
        session_id = v.ident("session_id", req.session_id)
        v.enum("state", req.state, types_pb2.TraineeState, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        session = self.load(principal.district_id, session_id)
        self.require_organizer(principal, session)
        ids = sorted(vid for vid, t in session.trainees.items()
                     if (not req.state or t["state"] == req.state) and (after is None or vid > after))
        token = encode_page_token(ids[size - 1]) if len(ids) > size else ""
        return session, ids[:size], token

    # ---- cancel and close ----

    def cancel(self, principal: Principal, session_id: str, reason: str) -> SessionDoc:
        v = Validator()
        session_id = v.ident("session_id", session_id)
        reason = v.text("reason", reason, max_len=200)
        v.check()
        session = self.load(principal.district_id, session_id)
        self.require_organizer(principal, session)

        def attempt(s: SessionDoc) -> SessionDoc | None:
            self.require_open(s)
            if s.attended_count:
                raise FailedPrecondition("attendance was recorded already; close the session instead")
            update: dict = {"$set": {"status": CANCELLED, "cancel_reason": reason, "waitlist": [],
                                     "waitlist_count": 0, "seats_left": s.capacity}, "$inc": {}}
            events = [self.session_event(events_pb2.SessionCancelled(session=session_snapshot(s), reason=reason), s,
                                         s.version + 1, principal.subject)]
            for vid, trainee in s.trainees.items():
                if trainee["state"] in (T.TRAINEE_STATE_ENROLLED, T.TRAINEE_STATE_WAITLISTED):
                    update["$set"][f"trainees.{vid}.state"] = T.TRAINEE_STATE_CANCELLED
                    update["$set"][f"trainees.{vid}.cancel_reason"] = reason
                    update["$inc"][f"trainees.{vid}.v"] = 1
                    events.append(self.trainee_event(events_pb2.EnrollmentCancelled(
                        session_id=s.id, volunteer_id=vid, reason=reason, by_organizer=True), s, vid,
                        trainee["v"] + 1, principal.subject))
            return self.write(s, {"version": s.version, "status": SCHEDULED, "attended_count": 0}, update, events)

        cancelled = self.retrying(session, attempt)
        metrics.SESSIONS.labels("cancelled").inc()
        return cancelled

    def close(self, principal: Principal, session_id: str) -> SessionDoc:
        session = self.load_checked(principal, session_id)
        self.require_organizer(principal, session)
        if clock.now() < as_utc(session.starts_at):
            raise FailedPrecondition("the session has not started yet; cancel it instead")
        return self._close(session, principal.subject, automatic=False)

    def _close(self, session: SessionDoc, actor: str, automatic: bool) -> SessionDoc:
        outcome: dict[str, list[str]] = {}

        def attempt(s: SessionDoc) -> SessionDoc | None:
            self.require_open(s)
            now = clock.now()
            update: dict = {"$set": {"status": CLOSED, "closed_at": now}, "$inc": {}}
            hours, absent, failed, attended = [], [], [], 0
            minutes = s.course["minutes"]
            for vid, trainee in sorted(s.trainees.items()):
                state = trainee["state"]
                final = {T.TRAINEE_STATE_ENROLLED: T.TRAINEE_STATE_ABSENT,
                         T.TRAINEE_STATE_ATTENDED: T.TRAINEE_STATE_FAILED}.get(state, state)
                if final != state:
                    update["$set"][f"trainees.{vid}.state"] = final
                if final == T.TRAINEE_STATE_ABSENT:
                    absent.append(vid)
                elif final == T.TRAINEE_STATE_FAILED:
                    failed.append(vid)
                if state in ATTENDEES:
                    attended += 1
                    hours.append(self.trainee_event(events_pb2.TrainingHoursCredited(
                        session_id=s.id, course_id=s.course_id, volunteer_id=vid, minutes=minutes,
                        recorded_by=unit_ref_msg(s.unit)), s, vid, trainee["v"] + 1, actor))
                if final != state or state in ATTENDEES:
                    update["$inc"][f"trainees.{vid}.v"] = 1
            closed = events_pb2.SessionClosed(
                session=session_snapshot(s), enrolled=s.capacity - s.seats_left, attended=attended,
                passed=s.passed_count, absent_volunteer_ids=absent, failed_volunteer_ids=failed, automatic=automatic)
            outcome.update(absent=absent, failed=failed, hours=[e["id"] for e in hours])
            return self.write(s, {"version": s.version, "status": SCHEDULED}, update,
                              [self.session_event(closed, s, s.version + 1, actor), *hours])

        closed = self.retrying(session, attempt)
        metrics.SESSIONS.labels("closed").inc()
        metrics.TRAINEES_FINISHED.labels("passed").inc(closed.passed_count)
        metrics.TRAINEES_FINISHED.labels("failed").inc(len(outcome["failed"]))
        metrics.TRAINEES_FINISHED.labels("absent").inc(len(outcome["absent"]))
        metrics.TIME_CREDITED.inc(len(outcome["hours"]) * closed.course["minutes"] * 60)
        return closed

    def close_due(self, batch: int = 100) -> int:
        """The auto-close job: sessions whose quiz window ran out. Safe to run twice at once
        (each close is guarded by the session's version and status)."""
        closed = 0
        due = Session.collection().find({"status": SCHEDULED, "closes_at": {"$lte": clock.now()}}, {"_id": 1,
                                                                                                  "district_id": 1})
        for raw in list(due.limit(batch)):
            try:
                self._close(self.load(raw["district_id"], raw["_id"]), "", automatic=True)
                closed += 1
            except (FailedPrecondition, NotFound, Aborted):
                continue  # closed or cancelled by someone else meanwhile
        return closed

