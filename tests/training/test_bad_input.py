"""Bad input is refused with INVALID_ARGUMENT naming the field, unknown ids with NOT_FOUND, and
nothing is written: no document, no event."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from tests.support.events import TopicTap
from tests.support.grpc_helpers import bad_request_fields, expect_error
from tests.training.conftest import TOPIC
from tests.training.support import first_aid_content, ts
from wenming.common.v1 import common_pb2 as c
from wenming.training.v1 import training_pb2 as pb
from wenming.training.v1 import types_pb2 as ty

COLLECTIONS = ("courses", "trainers", "sessions", "certifications", "historical_completions", "trainee_profiles",
               "rotation_policies")


def _content(**changes) -> pb.CourseContent:
    return first_aid_content(**changes)


def _quiz(**changes) -> pb.Quiz:
    quiz = first_aid_content().quiz
    for name, value in changes.items():
        setattr(quiz, name, value)
    return quiz


def _bad_answer_range() -> pb.Quiz:
    quiz = first_aid_content().quiz
    quiz.questions[0].correct_options[:] = [7]
    return quiz


def _schedule(w, **changes) -> pb.ScheduleSessionRequest:
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    request = pb.ScheduleSessionRequest(
        course_id=w["course"].course_id, unit_id=w["campus"].tree.stations[0].unit_id,
        trainer_id=w["trainer"].trainer_id, mode=ty.SESSION_MODE_OFFLINE, location="培训室", starts_at=ts(start),
        ends_at=ts(start + dt.timedelta(hours=2)), capacity=20)
    for name, value in changes.items():
        if name in ("starts_at", "ends_at"):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    return request


NOW = dt.datetime.now(dt.UTC)
INVALID = [
    ("CreateCourse", lambda w: pb.CreateCourseRequest(content=_content(title="")), "content.title"),
    ("CreateCourse", lambda w: pb.CreateCourseRequest(content=_content(minutes=5)), "content.minutes"),
    ("CreateCourse", lambda w: pb.CreateCourseRequest(content=_content(category=99)), "content.category"),
    ("CreateCourse", lambda w: pb.CreateCourseRequest(content=_content(quiz=_bad_answer_range())),
     "content.quiz.questions[0].correct_options[0]"),
    ("CreateCourse", lambda w: pb.CreateCourseRequest(content=_content(quiz=_quiz(pass_mark=0))),
     "content.quiz.pass_mark"),
    ("CreateCourse", lambda w: pb.CreateCourseRequest(content=_content(
        certification=ty.CertificationSpec(code="First Aid", name="证书"))), "content.certification.code"),
    ("CreateCourse", lambda w: pb.CreateCourseRequest(content=_content(
        materials=[pb.Material(asset_id="a b", title="资料")])), "content.materials[0].asset_id"),
    ("ReviseCourse", lambda w: pb.ReviseCourseRequest(course_id=w["course"].course_id, content=_content()),
     "expected_revision"),
    ("GetCourse", lambda w: pb.GetCourseRequest(course_id=w["course"].course_id, revision=-1), "revision"),
    ("ListCourses", lambda w: pb.ListCoursesRequest(page=c.PageRequest(page_size=500)), "page.page_size"),
    ("RegisterTrainer", lambda w: pb.RegisterTrainerRequest(name="讲师", served_unit_ids=[w["campus"].district.center_id]),
     "specialties"),
    ("RegisterTrainer", lambda w: pb.RegisterTrainerRequest(name="讲师", specialties=[c.SKILL_LEGAL_AID]),
     "served_unit_ids"),
    ("ScheduleSession", lambda w: _schedule(w, starts_at=ts(NOW - dt.timedelta(hours=1))), "starts_at"),
    ("ScheduleSession", lambda w: _schedule(w, ends_at=ts(NOW)), "ends_at"),
    ("ScheduleSession", lambda w: _schedule(w, capacity=0), "capacity"),
    ("ScheduleSession", lambda w: _schedule(w, location=""), "location"),
    ("ScheduleSession", lambda w: _schedule(w, mode=ty.SESSION_MODE_ONLINE, online_url="http://x.cn/live"),
     "online_url"),
    ("ScheduleSession", lambda w: _schedule(w, mode=0), "mode"),
    ("Enroll", lambda w: pb.EnrollRequest(session_id="bad id!"), "session_id"),
    ("SubmitQuiz", lambda w: pb.SubmitQuizRequest(session_id=w["session"].session_id, answers=[
        pb.QuizAnswer(question_id="q1", selected_options=[1]), pb.QuizAnswer(question_id="q1", selected_options=[0])]),
     "answers[1].question_id"),
    ("RecordAttendance", lambda w: pb.RecordAttendanceRequest(session_id=w["session"].session_id), "volunteer_ids"),
    ("RateTrainer", lambda w: pb.RateTrainerRequest(session_id=w["session"].session_id, rating=6), "rating"),
    ("RecordHistoricalCompletion", lambda w: pb.RecordHistoricalCompletionRequest(
        volunteer_id=w["volunteer"].volunteer_id, course_id=w["course"].course_id, completed_on="2023/01/01",
        reason="补录"), "completed_on"),
    ("RecordHistoricalCompletion", lambda w: pb.RecordHistoricalCompletionRequest(
        volunteer_id=w["volunteer"].volunteer_id, course_id=w["course"].course_id,
        completed_on=(NOW + dt.timedelta(days=2)).date().isoformat(), reason="补录"), "completed_on"),
    ("RecordHistoricalCompletion", lambda w: pb.RecordHistoricalCompletionRequest(
        volunteer_id=w["volunteer"].volunteer_id, course_id=w["course"].course_id, completed_on="2023-01-01"),
     "reason"),
    ("SetRotationPolicy", lambda w: pb.SetRotationPolicyRequest(core_cycle_years=3, effective_from="2024-01-01"),
     "general_cycle_years"),
    ("SetRotationPolicy", lambda w: pb.SetRotationPolicyRequest(general_cycle_years=5, core_cycle_years=3,
                                                                effective_from="2024-02-30"), "effective_from"),
    ("ListCertifications", lambda w: pb.ListCertificationsRequest(code="BAD CODE"), "code"),
    ("SetCoreVolunteer", lambda w: pb.SetCoreVolunteerRequest(volunteer_id=w["volunteer"].volunteer_id, core=True),
     "reason"),
]
UNKNOWN = [
    ("GetSession", lambda w: pb.GetSessionRequest(session_id="ses_unknown")),
    ("Enroll", lambda w: pb.EnrollRequest(session_id="ses_unknown", volunteer_id=w["volunteer"].volunteer_id)),
    ("GetCourse", lambda w: pb.GetCourseRequest(course_id="crs_unknown")),
    ("ScheduleSession", lambda w: _schedule(w, course_id="crs_unknown")),
    ("GetTrainer", lambda w: pb.GetTrainerRequest(trainer_id="trn_unknown")),
    ("GetCertification", lambda w: pb.GetCertificationRequest(certification_id="crt_unknown")),
    ("GetTrainingRecord", lambda w: pb.GetTrainingRecordRequest(volunteer_id="vol_unknown")),
]


@pytest.fixture(scope="module")
def world(module_campus):
    campus = module_campus
    course = campus.course()
    trainer = campus.trainer()
    return {"campus": campus, "course": course, "trainer": trainer, "volunteer": campus.volunteer()[0],
            "session": campus.session(course, trainer=trainer)}


def _snapshot(db, district_id: str) -> dict:
    return {name: sorted((d["_id"], d.get("version")) for d in db[name].find({"district_id": district_id}))
            for name in COLLECTIONS}


def test_bad_input_names_the_field_and_unknown_ids_are_not_found_with_nothing_written(world, stack, training_db):
    campus = world["campus"]
    tap = TopicTap(stack.kafka, TOPIC)
    before = _snapshot(training_db, campus.district.id)
    try:
        for rpc, build, field in INVALID:
            with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field=field):
                getattr(campus.stub, rpc)(build(world), metadata=campus.center, timeout=10)
        for rpc, build in UNKNOWN:
            with expect_error(grpc.StatusCode.NOT_FOUND):
                getattr(campus.stub, rpc)(build(world), metadata=campus.center, timeout=10)
        assert _snapshot(training_db, campus.district.id) == before
        assert tap.events(campus.district.id, timeout=1, settle=1.0) == []
    finally:
        tap.close()


def test_every_bad_field_is_reported_at_once(world):
    campus = world["campus"]
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT) as caught:
        campus.stub.CreateCourse(pb.CreateCourseRequest(content=_content(title="", minutes=0, level=0)),
                                 metadata=campus.center, timeout=10)
    assert {"content.title", "content.minutes", "content.level"} <= set(bad_request_fields(caught.value))
