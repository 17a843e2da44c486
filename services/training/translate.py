"""Stored documents -> API messages. Quiz answers leave only for the course's keepers."""

from __future__ import annotations

import datetime as dt
from collections import Counter as Tally

from services.common.events import to_timestamp
from services.common.readmodels import unit_ref_msg
from wenming.common.v1 import common_pb2
from wenming.training.v1 import training_pb2 as pb, types_pb2

from .catalog import RETIRED
from .certifications import certification_msg, effective_status

from .models import Certification, Course, RotationPolicy, Trainer
from .quiz import attempts_left
from .records import RecordView
from .rotation import DONE, DUE, OVERDUE, Standing
from .sessions import SessionDoc, has_quiz


def _ts(value: dt.datetime | None):
    return to_timestamp(value) if value is not None else None


def quiz_msg(quiz: dict, show_answers: bool) -> pb.Quiz:
    return pb.Quiz(
        questions=[pb.QuizQuestion(question_id=q["question_id"], text=q["text"], options=q["options"],
                                   correct_options=q["correct_options"] if show_answers else [])
                   for q in quiz["questions"]],
        pass_mark=quiz["pass_mark"], max_attempts=quiz["max_attempts"])


def content_msg(content: dict, show_answers: bool) -> pb.CourseContent:
    cert = content.get("certification")
    return pb.CourseContent(
        title=content["title"], description=content["description"], category=content["category"],
        level=content["level"], minutes=content["minutes"], required_for_tiers=content["required_for_tiers"],
        required_for_skills=content["required_for_skills"],
        materials=[pb.Material(asset_id=m["asset_id"], title=m["title"]) for m in content["materials"]],
        quiz=quiz_msg(content["quiz"], show_answers),
        certification=types_pb2.CertificationSpec(**cert) if cert else None)


def course_msg(course: Course, content: dict, show_answers: bool) -> pb.Course:
    return pb.Course(
        course_id=course.id, district_id=course.district_id, owner_unit=unit_ref_msg(course.owner_unit),
        revision=content["revision"], latest_revision=course.latest_revision,
        content=content_msg(content, show_answers),
        status=RETIRED if course.status == RETIRED else pb.COURSE_STATUS_ACTIVE, retire_reason=course.retire_reason,
        version=course.version, created_at=to_timestamp(course.created_at),
        revised_at=to_timestamp(content["revised_at"]))


def trainer_msg(trainer: Trainer, rating: tuple[int, int]) -> pb.Trainer:
    total, count = rating
    return pb.Trainer(
        trainer_id=trainer.id, district_id=trainer.district_id, name=trainer.name, title=trainer.title,
        volunteer_id=trainer.volunteer_id, specialties=list(trainer.specialties),
        served_units=[unit_ref_msg(u) for u in trainer.served_units], owner_unit=unit_ref_msg(trainer.owner_unit),
        availability=common_pb2.Availability(weekdays=trainer.availability.get("weekdays", []),
                                             periods=trainer.availability.get("periods", [])),
        bio=trainer.bio, active=trainer.active, rating_count=count,
        rating_average=round(total / count, 2) if count else 0.0, version=trainer.version,
        created_at=to_timestamp(trainer.created_at))


def session_msg(session: SessionDoc) -> pb.Session:
    course = session.course
    cert = course.get("certification") or {}
    return pb.Session(
        session_id=session.id, district_id=session.district_id, course_id=session.course_id,
        course_revision=course["revision"], course_title=course["title"], level=course["level"],
        minutes=course["minutes"], has_quiz=has_quiz(session), certification_code=cert.get("code", ""),
        unit=unit_ref_msg(session.unit), trainer_id=session.trainer_id, trainer_name=session.trainer_name,
        mode=session.mode, location=session.location, online_url=session.online_url,
        starts_at=to_timestamp(session.starts_at), ends_at=to_timestamp(session.ends_at),
        closes_at=to_timestamp(session.closes_at), capacity=session.capacity,
        enrolled_count=session.capacity - session.seats_left, waitlist_count=session.waitlist_count,
        attended_count=session.attended_count, passed_count=session.passed_count, status=session.status,
        cancel_reason=session.cancel_reason, version=session.version, created_at=to_timestamp(session.created_at))


def trainee_msg(session: SessionDoc, volunteer_id: str, volunteer: dict | None = None) -> pb.Trainee:
    t = session.trainees[volunteer_id]
    position = session.waitlist.index(volunteer_id) + 1 if volunteer_id in (session.waitlist or ()) else 0
    return pb.Trainee(
        volunteer_id=volunteer_id, volunteer_number=(volunteer or {}).get("number", ""),
        name=(volunteer or {}).get("name", ""), state=t["state"], waitlist_position=position,
        enrolled_at=_ts(t.get("enrolled_at")), attended_at=_ts(t.get("attended_at")),
        attendance_method=t.get("method", 0), quiz_attempts=t.get("attempts", 0), best_score=t.get("best_score", 0),
        passed_at=_ts(t.get("passed_at")), trainer_rating=t.get("rating", 0))


def quiz_status_msg(session: SessionDoc, trainee: dict) -> pb.GetQuizResponse:
    quiz = session.course["quiz"]
    return pb.GetQuizResponse(questions=quiz_msg(quiz, show_answers=False).questions, pass_mark=quiz["pass_mark"],
                              attempts_used=trainee["attempts"], attempts_left=attempts_left(session, trainee))


def certification_record_msg(cert: Certification, now: dt.datetime) -> pb.CertificationRecord:
    status = effective_status(cert, now)
    ended = cert.ended_at or (cert.expires_at if status != cert.status else None)
    return pb.CertificationRecord(certification=certification_msg(cert), status=status,
                                  revoke_reason=cert.revoke_reason, ended_at=_ts(ended), session_id=cert.session_id)


def completion_msg(doc: dict) -> pb.Completion:
    return pb.Completion(
        completion_id=doc["_id"], course_id=doc["course_id"], course_revision=doc["course_revision"],
        course_title=doc["course_title"], level=doc["level"], minutes=doc["minutes"], score=doc.get("score", 0),
        completed_at=to_timestamp(doc["completed_at"]), session_id=doc.get("session_id", ""),
        recorded_by=unit_ref_msg(doc.get("recorded_by")), historical=doc.get("historical", False),
        reason=doc.get("reason", ""))


def standing_msg(standing: Standing) -> pb.RotationStanding:
    return pb.RotationStanding(plan=standing.plan, status=standing.status,
                               last_completed_at=_ts(standing.last_completed_at), due_at=to_timestamp(standing.due_at))


def rotation_counts_msg(plan: pb.RotationPlan, tally: Tally[int]) -> pb.RotationCounts:
    return pb.RotationCounts(plan=plan, volunteers=sum(tally.values()), done=tally[DONE], due=tally[DUE],
                             overdue=tally[OVERDUE])


def rotation_entry_msg(volunteer: dict, standing: Standing) -> pb.RotationEntry:
    return pb.RotationEntry(volunteer_id=volunteer["_id"], volunteer_number=volunteer.get("number", ""),
                            name=volunteer.get("name", ""), standing=standing_msg(standing))


def policy_msg(policy: RotationPolicy) -> pb.RotationPolicy:
    return pb.RotationPolicy(
        district_id=policy.district_id, general_cycle_years=policy.general_cycle_years,
        core_cycle_years=policy.core_cycle_years, notice_days=policy.notice_days,
        effective_from=policy.effective_from, version=policy.version, updated_at=to_timestamp(policy.updated_at))


def record_msg(view: RecordView, now: dt.datetime) -> pb.TrainingRecord:
    volunteer = view.volunteer
    return pb.TrainingRecord(
        volunteer_id=volunteer["_id"], volunteer_number=volunteer.get("number", ""), name=volunteer.get("name", ""),
        core=view.core, core_basis=view.core_basis, total_minutes=sum(c["minutes"] for c in view.completions),
        completions=[completion_msg(c) for c in view.completions],
        certifications=[certification_record_msg(c, now) for c in view.certifications],
        rotation=[standing_msg(s) for s in view.standings], outstanding_course_ids=view.outstanding_course_ids)
