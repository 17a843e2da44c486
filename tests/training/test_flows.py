"""Training end to end over real gRPC, Kafka and the database: enroll → attend → quiz → pass →
certification on the topic; attendance without a quiz; closing credits hours."""

from __future__ import annotations

import urllib.request

import grpc
import pytest
from bson import BSON

from services.training.dates import add_months
from tests.support.grpc_helpers import expect_error
from tests.training.support import RIGHT_ANSWERS, WRONG_ANSWERS, first_aid_content
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.training.v1 import events_pb2 as ev
from wenming.training.v1 import training_pb2 as pb
from wenming.training.v1 import types_pb2 as ty


def _of(events, kind, **match):
    return [(e, p) for e, p, _ in events if isinstance(p, kind) and all(getattr(p, k) == v for k, v in match.items())]


@pytest.fixture
def campus(module_campus):
    """One district for the module: every test makes its own courses, sessions and volunteers."""
    return module_campus


def _session_doc(db, session_id: str) -> dict:
    return db.sessions.find_one({"_id": session_id}, {"outbox": 0, "outbox_pending": 0})


def test_enroll_attend_pass_grants_the_certification_and_closing_credits_hours(campus, training, training_events,
                                                                               training_db, clock):
    course = campus.course()
    session = campus.session(course, capacity=5)
    assert session.has_quiz and session.certification_code == "first_aid" and session.minutes == 240
    volunteer, token = campus.volunteer(skills=[c.SKILL_EMERGENCY_RESCUE], name="赵应急")
    vid = volunteer.volunteer_id

    enrolled = campus.enroll(session, token)
    assert enrolled.trainee.state == ty.TRAINEE_STATE_ENROLLED and enrolled.session.enrolled_count == 1
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="check in"):
        campus.stub.GetQuiz(pb.GetQuizRequest(session_id=session.session_id), metadata=token, timeout=5)

    checked = campus.check_in(session, token)
    assert checked.trainee.state == ty.TRAINEE_STATE_ATTENDED
    assert checked.trainee.attendance_method == ty.ATTENDANCE_METHOD_QR_CODE

    quiz = campus.stub.GetQuiz(pb.GetQuizRequest(session_id=session.session_id), metadata=token, timeout=5)
    assert [q.question_id for q in quiz.questions] == ["q1", "q2"] and quiz.attempts_left == 2
    assert all(not q.correct_options for q in quiz.questions)  # answers stay with the course's keepers

    first = campus.stub.SubmitQuiz(pb.SubmitQuizRequest(session_id=session.session_id, answers=WRONG_ANSWERS),
                                   metadata=token, timeout=5)
    assert (first.score, first.passed, first.attempts_left) == (0, False, 1)
    second = campus.stub.SubmitQuiz(pb.SubmitQuizRequest(session_id=session.session_id, answers=RIGHT_ANSWERS),
                                    metadata=token, timeout=5)
    assert (second.score, second.passed, second.correct) == (100, True, 2)
    assert second.trainee.state == ty.TRAINEE_STATE_PASSED and second.trainee.best_score == 100
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="passed"):
        campus.stub.SubmitQuiz(pb.SubmitQuizRequest(session_id=session.session_id, answers=RIGHT_ANSWERS),
                               metadata=token, timeout=5)

    # the certification reaches the topic with its code and expiry (what ordering's matching keeps)
    events = training_events.events(campus.district.id, at_least=9, timeout=30)
    granted = _of(events, ev.CertificationGranted)  # (the module's other tests grant none)
    assert len(granted) == 1
    envelope, payload = granted[0]
    cert = payload.certification
    assert (cert.volunteer_id, cert.code, cert.name, cert.course_id) == (vid, "first_aid", "应急救护证书",
                                                                         course.course_id)
    assert cert.granted_by.unit_id == campus.tree.stations[0].unit_id
    assert cert.expires_at.ToDatetime() == add_months(cert.granted_at.ToDatetime(), 24)
    assert envelope.aggregate_type == "certification" and envelope.aggregate_id == cert.certification_id

    completed = _of(events, ev.CourseCompleted, volunteer_id=vid)
    assert len(completed) == 1 and completed[0][1].score == 100 and completed[0][1].minutes == 240
    attempts = _of(events, ev.QuizAttempted, volunteer_id=vid)
    assert [(p.score, p.passed) for _, p in attempts] == [(0, False), (100, True)]
    # the trainee's events carry the trainee's own version, in order
    trainee_events = [e for e, p, _ in events if e.aggregate_id.startswith(f"{session.session_id}/")]
    assert {e.aggregate_id for e in trainee_events} == {f"{session.session_id}/{vid}"}
    assert [e.aggregate_version for e in trainee_events] == [1, 2, 3, 4, 4]

    record = wait_until(lambda: (r := campus.stub.GetTrainingRecord(pb.GetTrainingRecordRequest(), metadata=token,
                                                                  timeout=5).record).certifications and r)
    assert record.certifications[0].status == pb.CERTIFICATION_STATUS_ACTIVE
    assert [(x.course_id, x.minutes, x.historical) for x in record.completions] == [(course.course_id, 240, False)]
    assert course.course_id not in record.outstanding_course_ids  # required for emergency-rescue volunteers: done

    # closing needs the session to have started; then attendance is final and hours are credited
    organizer = campus.admin(campus.tree.stations[0])
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="not started"):
        campus.stub.CloseSession(pb.CloseSessionRequest(session_id=session.session_id), metadata=organizer, timeout=5)
    clock.advance(25 * 60)
    closed = campus.stub.CloseSession(pb.CloseSessionRequest(session_id=session.session_id), metadata=organizer,
                                      timeout=5).session
    assert closed.status == pb.SESSION_STATUS_CLOSED and closed.passed_count == 1
    events = training_events.events(campus.district.id, at_least=len(events) + 2, timeout=20)
    hours = _of(events, ev.TrainingHoursCredited, volunteer_id=vid)
    assert len(hours) == 1 and hours[0][1].minutes == 240
    assert hours[0][1].recorded_by.unit_id == campus.tree.stations[0].unit_id
    assert len(_of(events, ev.SessionClosed)) == 1

    # the service's own metrics count what happened
    with urllib.request.urlopen(f"{training.http_base}/metrics", timeout=5) as reply:
        metrics = reply.read().decode()
    for sample in ('training_enrollments_total{outcome="enrolled"}', 'training_attendance_total{method="qr_code"}',
                   'training_quiz_attempts_total{outcome="passed"}', 'training_quiz_attempts_total{outcome="failed"}',
                   'training_trainees_finished_total{outcome="passed"}', 'training_certifications_total{change="granted"}',
                   'training_time_credited_seconds_total'):
        assert sample in metrics, sample
    assert any(line.startswith("grpc_server_handled_total") and 'grpc_method="SubmitQuiz"' in line
               for line in metrics.splitlines())

    # personal data: the volunteer's phone is nowhere in training's database, topic or log
    phone = campus.phones[vid].encode()
    for name in training_db.list_collection_names():
        for doc in training_db[name].find({}):
            assert phone not in BSON.encode(doc), f"phone stored in {name}"
    assert all(phone not in value for value in training_events.raw_values())
    assert campus.phones[vid] not in training.log_path.read_text(encoding="utf-8", errors="replace")


def test_attending_a_course_without_quiz_completes_it_and_duplicate_attendance_writes_nothing(
        campus, training_events, training_db):
    content = first_aid_content(title="垃圾分类指导", category=ty.COURSE_CATEGORY_ENVIRONMENT,
                                level=ty.COURSE_LEVEL_GENERAL, minutes=90, quiz=pb.Quiz(), required_for_skills=[])
    content.ClearField("certification")
    course = campus.course(content)
    session = campus.session(course)
    assert not session.has_quiz and not session.certification_code
    organizer = campus.admin(campus.tree.stations[0])
    (first, first_token), (second, _) = campus.volunteer(0), campus.volunteer(1)
    for volunteer in (first, second):  # the station head enrolls them (代报名)
        campus.stub.Enroll(pb.EnrollRequest(session_id=session.session_id, volunteer_id=volunteer.volunteer_id),
                           metadata=organizer, timeout=5)

    recorded = campus.stub.RecordAttendance(pb.RecordAttendanceRequest(session_id=session.session_id,
                                                                       volunteer_ids=[first.volunteer_id]),
                                            metadata=organizer, timeout=5).trainees
    assert recorded[0].state == ty.TRAINEE_STATE_PASSED
    assert recorded[0].attendance_method == ty.ATTENDANCE_METHOD_ORGANIZER

    seen = len(training_events.events(campus.district.id, at_least=7, timeout=20))
    before = _session_doc(training_db, session.session_id)
    with expect_error(grpc.StatusCode.ALREADY_EXISTS, contains="already attended"):
        campus.stub.RecordAttendance(pb.RecordAttendanceRequest(
            session_id=session.session_id, volunteer_ids=[second.volunteer_id, first.volunteer_id]),
            metadata=organizer, timeout=5)
    with expect_error(grpc.StatusCode.ALREADY_EXISTS):
        campus.check_in(session, first_token)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="no quiz"):
        campus.stub.GetQuiz(pb.GetQuizRequest(session_id=session.session_id), metadata=first_token, timeout=5)
    after = _session_doc(training_db, session.session_id)
    assert after == before  # nothing half-written: the second trainee is still only enrolled
    assert after["trainees"][second.volunteer_id]["state"] == ty.TRAINEE_STATE_ENROLLED
    assert len(training_events.events(campus.district.id, timeout=1, settle=1.0)) == seen

    record = wait_until(lambda: (r := campus.stub.GetTrainingRecord(pb.GetTrainingRecordRequest(), metadata=first_token,
                                                                  timeout=5).record).completions and r)
    assert record.completions[0].minutes == 90 and record.total_minutes == 90 and not record.certifications


def test_answers_outside_the_quiz_and_attempts_after_the_close_are_refused_with_nothing_written(
        campus, training_db, training_events, clock):
    session = campus.session(campus.course())
    volunteer, token = campus.volunteer()
    absent, absent_token = campus.volunteer(1)
    campus.enroll(session, token)
    campus.enroll(session, absent_token)
    campus.check_in(session, token)
    seen = len(training_events.events(campus.district.id, at_least=6, timeout=20))
    before = _session_doc(training_db, session.session_id)
    bad = [
        ([pb.QuizAnswer(question_id="q9", selected_options=[0])], "answers[0].question_id"),
        ([pb.QuizAnswer(question_id="q1", selected_options=[5])], "answers[0].selected_options[0]"),
        ([pb.QuizAnswer(question_id="q1", selected_options=[])], "answers[0].selected_options"),
        ([pb.QuizAnswer(question_id="q2", selected_options=[0, 0])], "answers[0].selected_options"),
    ]
    for answers, field in bad:
        with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field=field):
            campus.stub.SubmitQuiz(pb.SubmitQuizRequest(session_id=session.session_id, answers=answers),
                                   metadata=token, timeout=5)
    assert _session_doc(training_db, session.session_id) == before

    clock.advance(25 * 60)
    closed = campus.stub.CloseSession(pb.CloseSessionRequest(session_id=session.session_id),
                                      metadata=campus.admin(campus.tree.stations[0]), timeout=5).session
    assert closed.status == pb.SESSION_STATUS_CLOSED
    after_close = _session_doc(training_db, session.session_id)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="closed"):
        campus.stub.SubmitQuiz(pb.SubmitQuizRequest(session_id=session.session_id, answers=RIGHT_ANSWERS),
                               metadata=token, timeout=5)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="CLOSED"):
        campus.stub.CloseSession(pb.CloseSessionRequest(session_id=session.session_id),
                                 metadata=campus.admin(campus.tree.stations[0]), timeout=5)
    assert _session_doc(training_db, session.session_id) == after_close
    states = {vid: t["state"] for vid, t in after_close["trainees"].items()}
    assert states == {volunteer.volunteer_id: ty.TRAINEE_STATE_FAILED, absent.volunteer_id: ty.TRAINEE_STATE_ABSENT}

    events = training_events.events(campus.district.id, at_least=seen + 2, timeout=20, settle=1.0)
    new = sorted((p for _, p, _ in events[seen:]), key=lambda p: type(p).__name__)  # partitions interleave
    assert [type(p).__name__ for p in new] == ["SessionClosed", "TrainingHoursCredited"]
    assert list(new[0].absent_volunteer_ids) == [absent.volunteer_id]
    assert list(new[0].failed_volunteer_ids) == [volunteer.volunteer_id]
    assert new[1].volunteer_id == volunteer.volunteer_id  # only attendees are credited


def test_trainees_rate_the_trainer_once_after_attending(campus):
    trainer = campus.trainer(name="李讲师")
    session = campus.session(campus.course(), trainer=trainer)
    volunteer, token = campus.volunteer()
    campus.enroll(session, token)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="attended"):
        campus.stub.RateTrainer(pb.RateTrainerRequest(session_id=session.session_id, rating=5), metadata=token,
                                timeout=5)
    campus.check_in(session, token)
    rated = campus.stub.RateTrainer(pb.RateTrainerRequest(session_id=session.session_id, rating=4), metadata=token,
                                    timeout=5).trainer
    assert (rated.trainer_id, rated.rating_count, rated.rating_average) == (trainer.trainer_id, 1, 4.0)
    with expect_error(grpc.StatusCode.ALREADY_EXISTS):
        campus.stub.RateTrainer(pb.RateTrainerRequest(session_id=session.session_id, rating=1), metadata=token,
                                timeout=5)
