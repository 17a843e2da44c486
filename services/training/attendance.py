"""Attendance (签到) and the trainees' rating of the trainer.

The organizer shows the session's rotating code as a QR code (services.common.checkin, like
ordering's service check-in); an enrolled trainee checks in with it during the session. The
organizer may instead record attendance from a sign-in sheet, for many trainees at once: all of
them or none. Attending a course without a quiz completes it.
"""

from __future__ import annotations

from services.common.auth import Principal, Role, require_role
from services.common.checkin import CheckinCodes
from services.common.clock import as_utc, clock
from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.events import to_timestamp
from services.common.validation import Validator
from wenming.training.v1 import events_pb2, types_pb2

from . import metrics
from .sessions import (ATTENDEES, CHECKIN_OPENS_BEFORE, SCHEDULED, T, SessionBook, SessionDoc, has_quiz, state_name,
                       trainee_guard)

CHECKIN_PURPOSE = "training-session"
MAX_RECORDED_AT_ONCE = 500
METHOD_LABEL = {types_pb2.ATTENDANCE_METHOD_QR_CODE: "qr_code", types_pb2.ATTENDANCE_METHOD_ORGANIZER: "organizer"}


class Attendance:
    def __init__(self, sessions: SessionBook, codes: CheckinCodes):
        self.sessions = sessions
        self.codes = codes

    def issue_code(self, principal: Principal, session_id: str) -> tuple[str, float]:
        session = self.sessions.load_checked(principal, session_id)
        self.sessions.require_organizer(principal, session)
        SessionBook.require_open(session)
        return self.codes.issue(CHECKIN_PURPOSE, session.id)

    @staticmethod
    def _require_attendance_open(session: SessionDoc) -> None:
        opens = as_utc(session.starts_at) - CHECKIN_OPENS_BEFORE
        if clock.now() < opens:
            raise FailedPrecondition(f"attendance opens 30 minutes before the start ({opens:%Y-%m-%d %H:%M} UTC)")

    def check_in(self, principal: Principal, session_id: str, code: str) -> SessionDoc:
        v = Validator()
        session_id = v.ident("session_id", session_id)
        code = v.text("code", code, max_len=32)
        v.check()
        require_role(principal, Role.ROLE_VOLUNTEER)
        session = self.sessions.load(principal.district_id, session_id)
        if principal.subject not in session.trainees:
            raise PermissionDenied("you are not on this session's roster")
        self._require_attendance_open(session)
        if clock.now() > as_utc(session.ends_at):
            raise FailedPrecondition("check-in closed when the session ended; the organizer can record attendance")
        if not self.codes.verify(CHECKIN_PURPOSE, session.id, code):
            raise InvalidArgument.field("code", "is not this session's current check-in code (it changes every "
                                                "minute: scan again)")
        return self._attend(principal, session, [principal.subject], types_pb2.ATTENDANCE_METHOD_QR_CODE)

    def record(self, principal: Principal, session_id: str, volunteer_ids) -> SessionDoc:
        v = Validator()
        session_id = v.ident("session_id", session_id)
        volunteer_ids = v.ids("volunteer_ids", list(volunteer_ids), min_count=1, max_count=MAX_RECORDED_AT_ONCE)
        v.check()
        session = self.sessions.load(principal.district_id, session_id)
        self.sessions.require_organizer(principal, session)
        self._require_attendance_open(session)
        return self._attend(principal, session, volunteer_ids, types_pb2.ATTENDANCE_METHOD_ORGANIZER)

    def _attend(self, principal: Principal, session: SessionDoc, volunteer_ids: list[str],
               method: types_pb2.AttendanceMethod) -> SessionDoc:
        def attempt(s: SessionDoc) -> SessionDoc | None:
            SessionBook.require_open(s)
            for vid in volunteer_ids:
                trainee = s.trainees.get(vid)
                if trainee is None:
                    raise FailedPrecondition(f"volunteer {vid} is not on this session's roster")
                if trainee["state"] in ATTENDEES:
                    raise AlreadyExists(f"volunteer {vid} already attended (recorded at "
                                        f"{as_utc(trainee['attended_at']):%Y-%m-%d %H:%M} UTC); nothing was recorded")
                if trainee["state"] != T.TRAINEE_STATE_ENROLLED:
                    raise FailedPrecondition(f"volunteer {vid} is {state_name(trainee['state'])}; only enrolled "
                                             "trainees attend")
            now = clock.now()
            completes = not has_quiz(s)  # attending a course without a quiz completes it
            update: dict = {"$set": {}, "$inc": {"attended_count": len(volunteer_ids)}}
            guard: dict = {"status": SCHEDULED}
            events = []
            for vid in volunteer_ids:
                version = s.trainees[vid]["v"] + 1
                guard.update(trainee_guard(s, vid, T.TRAINEE_STATE_ENROLLED))
                update["$set"].update({f"trainees.{vid}.state": T.TRAINEE_STATE_PASSED if completes
                                       else T.TRAINEE_STATE_ATTENDED,
                                       f"trainees.{vid}.attended_at": now, f"trainees.{vid}.method": method})
                update["$inc"][f"trainees.{vid}.v"] = 1
                events.append(self.sessions.trainee_event(events_pb2.AttendanceRecorded(
                    session_id=s.id, course_id=s.course_id, volunteer_id=vid, method=method,
                    attended_at=to_timestamp(now)), s, vid, version, principal.subject))
                if completes:
                    update["$set"][f"trainees.{vid}.passed_at"] = now
                    events.append(self.sessions.completion_event(s, vid, version, 0, now, principal.subject))
            if completes:
                update["$inc"]["passed_count"] = len(volunteer_ids)
            return self.sessions.write(s, guard, update, events)

        attended = self.sessions.retrying(session, attempt)
        metrics.ATTENDANCE.labels(METHOD_LABEL[method]).inc(len(volunteer_ids))
        if not has_quiz(attended):
            metrics.COMPLETIONS.labels("session").inc(len(volunteer_ids))
        return attended

    def rate_trainer(self, principal: Principal, session_id: str, rating: int) -> SessionDoc:
        v = Validator()
        session_id = v.ident("session_id", session_id)
        v.rating(rating)
        v.check()
        require_role(principal, Role.ROLE_VOLUNTEER)
        session = self.sessions.load(principal.district_id, session_id)
        vid = principal.subject

        def attempt(s: SessionDoc) -> SessionDoc | None:
            trainee = s.trainees.get(vid)
            if trainee is None:
                raise PermissionDenied("you are not on this session's roster")
            if trainee["state"] not in ATTENDEES:
                raise FailedPrecondition("only trainees who attended the session may rate its trainer")
            if "rating" in trainee:
                raise AlreadyExists("you already rated this session's trainer")
            event = self.sessions.trainee_event(events_pb2.TrainerRated(
                session_id=s.id, trainer_id=s.trainer_id, volunteer_id=vid, rating=rating), s, vid,
                trainee["v"] + 1, principal.subject)
            return self.sessions.write(
                s, {**trainee_guard(s, vid), f"trainees.{vid}.rating": {"$exists": False}},
                {"$set": {f"trainees.{vid}.rating": rating},
                 "$inc": {f"trainees.{vid}.v": 1, "rating_sum": rating, "rating_count": 1}}, [event])

        return self.sessions.retrying(session, attempt)
