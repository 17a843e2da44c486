"""Enrollment (报名): a seat while one is left, else the waitlist (候补); a cancelled seat goes to
the head of the waitlist in the same write. Never overbooked under any concurrency: every
change is one conditional update of the session document (see sessions.py).
"""

from __future__ import annotations

from services.common.auth import Principal, Role
from services.common.clock import as_utc, clock
from services.common.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied
from services.common.validation import Validator
from wenming.training.v1 import events_pb2

from . import metrics
from .directory import ACTIVE_VOLUNTEER, Directory
from .sessions import HOLDING, SCHEDULED, T, SessionBook, SessionDoc, state_name, trainee_guard


class Enrollment:
    def __init__(self, sessions: SessionBook, directory: Directory):
        self.sessions = sessions
        self.directory = directory

    def _trainee_for(self, principal: Principal, session: SessionDoc, volunteer_id: str) -> dict:
        """The volunteer being enrolled: the caller, or one an organizer enrolls on their behalf."""
        if principal.role == Role.ROLE_VOLUNTEER:
            if volunteer_id and volunteer_id != principal.subject:
                raise PermissionDenied("volunteers enroll themselves only")
            return self.directory.caller_volunteer(principal)
        self.sessions.require_organizer(principal, session)
        volunteer = self.directory.volunteer(principal.district_id, volunteer_id)
        self.directory.require_admin_of_volunteer(principal, volunteer)
        return volunteer

    @staticmethod
    def _require_enrollment_open(session: SessionDoc) -> None:
        SessionBook.require_open(session)
        if clock.now() >= as_utc(session.starts_at):
            raise FailedPrecondition("enrollment closed when the session started: places no longer change")

    def enroll(self, principal: Principal, session_id: str, volunteer_id: str) -> SessionDoc:
        v = Validator()
        session_id = v.ident("session_id", session_id)
        # admins enroll a named volunteer of their subtree
        volunteer_id = v.ident("volunteer_id", volunteer_id, required=principal.role != Role.ROLE_VOLUNTEER)
        v.check()
        session = self.sessions.load(principal.district_id, session_id)
        volunteer = self._trainee_for(principal, session, volunteer_id)
        vid = volunteer["_id"]
        if volunteer["status"] != ACTIVE_VOLUNTEER:
            raise FailedPrecondition("only ACTIVE volunteers may enroll")
        if session.unit_id not in volunteer.get("scope", ()):
            raise FailedPrecondition(f"this session is for volunteers serving under {session.unit['name']}")

        def attempt(s: SessionDoc) -> SessionDoc | None:
            self._require_enrollment_open(s)
            current = s.trainees.get(vid)
            if current is not None and current["state"] in HOLDING:
                raise AlreadyExists(f"already on this session ({state_name(current['state'])})")
            version = (current["v"] if current else 0) + 1
            entry = {"state": T.TRAINEE_STATE_ENROLLED, "v": version, "enrolled_at": clock.now(),
                     "enrolled_by": principal.subject, "attempts": 0, "best_score": 0}
            guard = {"status": SCHEDULED, **trainee_guard(s, vid)}

            def created(on_waitlist: bool) -> list[dict]:
                return [self.sessions.trainee_event(events_pb2.EnrollmentCreated(
                    session_id=s.id, course_id=s.course_id, volunteer_id=vid, waitlisted=on_waitlist,
                    enrolled_by=principal.subject), s, vid, version, principal.subject)]

            seated = self.sessions.write(s, {**guard, "seats_left": {"$gt": 0}},
                                         {"$set": {f"trainees.{vid}": entry}, "$inc": {"seats_left": -1},
                                          "$addToSet": {"roster": vid}}, created(False))
            if seated is not None:
                return seated
            return self.sessions.write(
                s, {**guard, "seats_left": 0},
                {"$set": {f"trainees.{vid}": {**entry, "state": T.TRAINEE_STATE_WAITLISTED}},
                 "$push": {"waitlist": vid}, "$inc": {"waitlist_count": 1}, "$addToSet": {"roster": vid}},
                created(True))

        enrolled = self.sessions.retrying(session, attempt)
        waitlisted = enrolled.trainees[vid]["state"] == T.TRAINEE_STATE_WAITLISTED
        metrics.ENROLLMENTS.labels("waitlisted" if waitlisted else "enrolled").inc()
        return enrolled

    # over 60 lines: most of it is `attempt`, the guarded move with the waitlist's promotion, which reads
    # the validated request from this closure
    def cancel(self, principal: Principal, session_id: str, volunteer_id: str, reason: str) -> tuple[SessionDoc, str]:
        """Gives the place back; returns the session and the cancelled volunteer's id."""
        by_organizer = principal.role != Role.ROLE_VOLUNTEER
        v = Validator()
        session_id = v.ident("session_id", session_id)
        volunteer_id = v.ident("volunteer_id", volunteer_id, required=by_organizer)
        reason = v.text("reason", reason, max_len=200, required=by_organizer)
        v.check()
        session = self.sessions.load(principal.district_id, session_id)
        if by_organizer:
            self.sessions.require_organizer(principal, session)
        elif volunteer_id and volunteer_id != principal.subject:
            raise PermissionDenied("volunteers cancel their own enrollment only")
        vid = volunteer_id or principal.subject
        promoted: list[str] = []  # the waitlisted trainee the cancellation moved up, if any

        def attempt(s: SessionDoc) -> SessionDoc | None:
            self._require_enrollment_open(s)
            trainee = s.trainees.get(vid)
            if trainee is None:
                raise NotFound("enrollment", f"{s.id}/{vid}")
            state = trainee["state"]
            if state not in (T.TRAINEE_STATE_ENROLLED, T.TRAINEE_STATE_WAITLISTED):
                raise FailedPrecondition(f"the enrollment is {state_name(state)}; only enrolled or waitlisted "
                                         "trainees can cancel")
            update: dict = {"$set": {f"trainees.{vid}.state": T.TRAINEE_STATE_CANCELLED,
                                     f"trainees.{vid}.cancelled_at": clock.now(),
                                     f"trainees.{vid}.cancel_reason": reason},
                            "$inc": {f"trainees.{vid}.v": 1}}
            guard = {"status": SCHEDULED, **trainee_guard(s, vid, state)}
            events = [self.sessions.trainee_event(events_pb2.EnrollmentCancelled(
                session_id=s.id, volunteer_id=vid, reason=reason, by_organizer=by_organizer), s, vid,
                trainee["v"] + 1, principal.subject)]
            promoted.clear()
            if state == T.TRAINEE_STATE_WAITLISTED:
                update["$pullAll"] = {"waitlist": [vid]}
                update["$inc"]["waitlist_count"] = -1
            elif s.waitlist:
                # the seat goes to the head of the waitlist in this same write
                head = s.waitlist[0]
                head_version = s.trainees[head]["v"] + 1
                update["$set"][f"trainees.{head}.state"] = T.TRAINEE_STATE_ENROLLED
                update["$set"][f"trainees.{head}.promoted_at"] = clock.now()
                update["$inc"][f"trainees.{head}.v"] = 1
                update["$inc"]["waitlist_count"] = -1
                update["$pullAll"] = {"waitlist": [head]}
                guard.update(trainee_guard(s, head, T.TRAINEE_STATE_WAITLISTED))
                events.append(self.sessions.trainee_event(events_pb2.EnrollmentPromoted(
                    session_id=s.id, volunteer_id=head), s, head, head_version, principal.subject))
                promoted.append(head)
            else:
                # freeing the seat is right only while nobody waits: joining the waitlist and
                # freeing a seat exclude each other through waitlist_count
                guard["waitlist_count"] = 0
                update["$inc"]["seats_left"] = 1
            return self.sessions.write(s, guard, update, events)

        cancelled = self.sessions.retrying(session, attempt)
        metrics.ENROLLMENTS.labels("cancelled").inc()
        if promoted:
            metrics.ENROLLMENTS.labels("promoted").inc()
        return cancelled, vid
