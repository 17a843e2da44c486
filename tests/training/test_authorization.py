"""Who may do what (OWASP API1): for every RPC that takes an object id, another user's token is
refused. Trainees see their own records, organizers only their sessions, admins their subtree."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import grpc
import pytest

from tests.support.grpc_helpers import bearer, expect_error
from tests.support.registration import District
from tests.training.support import RIGHT_ANSWERS, first_aid_content, ts
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.training.v1 import training_pb2 as pb
from wenming.training.v1 import types_pb2 as ty

DENIED, NOT_FOUND = grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND


@pytest.fixture(scope="module")
def world(module_campus, registration):
    campus = module_campus
    tree = campus.tree
    trainer = campus.trainer()
    course = campus.course()
    certifying = first_aid_content(title="法律服务基础", quiz=pb.Quiz(),
                                   certification=ty.CertificationSpec(code="legal_basic", name="法律证书"))
    session = campus.session(course, trainer=trainer)
    cert_session = campus.session(campus.course(certifying), trainer=trainer)
    a, a_token = campus.volunteer(0)  # station 0, the sessions' unit
    b, b_token = campus.volunteer(2)  # station 1
    campus.enroll(session, a_token)
    campus.enroll(cert_session, a_token)
    campus.check_in(session, a_token)
    campus.stub.RecordAttendance(pb.RecordAttendanceRequest(session_id=cert_session.session_id,
                                                            volunteer_ids=[a.volunteer_id]),
                                 metadata=campus.admin(tree.stations[0]), timeout=5)
    cert = wait_until(lambda: campus.stub.ListCertifications(pb.ListCertificationsRequest(), metadata=a_token,
                                                           timeout=5).certifications)[0]
    elsewhere = District(registration.grpc_target, registration.env)
    yield SimpleNamespace(
        campus=campus, course=course, trainer=trainer, session=session, a=a, b=b, cert=cert,
        tokens={"a": a_token, "b": b_token, "owner_admin": campus.admin(tree.stations[0]),
                "outsider_admin": campus.admin(tree.stations[1]), "other_district": elsewhere.as_center()})
    elsewhere.close()


def _future():
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    return ts(start), ts(start + dt.timedelta(hours=2))


CASES = [
    ("GetCourse", lambda w: pb.GetCourseRequest(course_id=w.course.course_id), "other_district", NOT_FOUND),
    ("ReviseCourse", lambda w: pb.ReviseCourseRequest(course_id=w.course.course_id, expected_revision=1,
                                                      content=first_aid_content()), "outsider_admin", DENIED),
    ("RetireCourse", lambda w: pb.RetireCourseRequest(course_id=w.course.course_id, reason="越权"), "owner_admin",
     DENIED),
    ("CreateCourse", lambda w: pb.CreateCourseRequest(owner_unit_id=w.campus.tree.stations[0].unit_id,
                                                      content=first_aid_content()), "outsider_admin", DENIED),
    ("GetTrainer", lambda w: pb.GetTrainerRequest(trainer_id=w.trainer.trainer_id), "b", DENIED),
    ("UpdateTrainer", lambda w: pb.UpdateTrainerRequest(trainer_id=w.trainer.trainer_id, update_fields=["bio"],
                                                        bio="x"), "outsider_admin", DENIED),
    ("RegisterTrainer", lambda w: pb.RegisterTrainerRequest(
        owner_unit_id=w.campus.tree.stations[0].unit_id, name="越权", specialties=[c.SKILL_LEGAL_AID],
        served_unit_ids=[w.campus.tree.stations[0].unit_id]), "outsider_admin", DENIED),
    ("ListTrainers", lambda w: pb.ListTrainersRequest(unit_id=w.campus.tree.stations[0].unit_id), "a", DENIED),
    ("RateTrainer", lambda w: pb.RateTrainerRequest(session_id=w.session.session_id, rating=5), "b", DENIED),
    ("ScheduleSession", lambda w: pb.ScheduleSessionRequest(
        course_id=w.course.course_id, unit_id=w.campus.tree.stations[0].unit_id, trainer_id=w.trainer.trainer_id,
        mode=ty.SESSION_MODE_OFFLINE, location="培训室", starts_at=_future()[0], ends_at=_future()[1], capacity=5),
     "outsider_admin", DENIED),
    ("GetSession", lambda w: pb.GetSessionRequest(session_id=w.session.session_id), "b", DENIED),
    ("GetSession", lambda w: pb.GetSessionRequest(session_id=w.session.session_id), "outsider_admin", DENIED),
    ("GetSession", lambda w: pb.GetSessionRequest(session_id=w.session.session_id), "other_district", NOT_FOUND),
    ("ListSessions", lambda w: pb.ListSessionsRequest(unit_id=w.campus.tree.stations[0].unit_id), "outsider_admin",
     DENIED),
    ("CancelSession", lambda w: pb.CancelSessionRequest(session_id=w.session.session_id, reason="越权"),
     "outsider_admin", DENIED),
    ("CancelSession", lambda w: pb.CancelSessionRequest(session_id=w.session.session_id, reason="越权"), "a", DENIED),
    ("CloseSession", lambda w: pb.CloseSessionRequest(session_id=w.session.session_id), "outsider_admin", DENIED),
    ("ListRoster", lambda w: pb.ListRosterRequest(session_id=w.session.session_id), "outsider_admin", DENIED),
    ("ListRoster", lambda w: pb.ListRosterRequest(session_id=w.session.session_id), "a", DENIED),
    ("Enroll", lambda w: pb.EnrollRequest(session_id=w.session.session_id, volunteer_id=w.b.volunteer_id), "a",
     DENIED),
    ("Enroll", lambda w: pb.EnrollRequest(session_id=w.session.session_id, volunteer_id=w.a.volunteer_id),
     "outsider_admin", DENIED),
    ("CancelEnrollment", lambda w: pb.CancelEnrollmentRequest(session_id=w.session.session_id,
                                                              volunteer_id=w.a.volunteer_id), "b", DENIED),
    ("CancelEnrollment", lambda w: pb.CancelEnrollmentRequest(session_id=w.session.session_id,
                                                              volunteer_id=w.a.volunteer_id, reason="越权"),
     "outsider_admin", DENIED),
    ("IssueCheckinCode", lambda w: pb.IssueCheckinCodeRequest(session_id=w.session.session_id), "a", DENIED),
    ("IssueCheckinCode", lambda w: pb.IssueCheckinCodeRequest(session_id=w.session.session_id), "outsider_admin",
     DENIED),
    ("CheckIn", lambda w: pb.CheckInRequest(session_id=w.session.session_id, code="ABCDEFGH"), "b", DENIED),
    ("RecordAttendance", lambda w: pb.RecordAttendanceRequest(session_id=w.session.session_id,
                                                              volunteer_ids=[w.a.volunteer_id]), "outsider_admin",
     DENIED),
    ("GetQuiz", lambda w: pb.GetQuizRequest(session_id=w.session.session_id), "b", DENIED),
    ("SubmitQuiz", lambda w: pb.SubmitQuizRequest(session_id=w.session.session_id, answers=RIGHT_ANSWERS), "b",
     DENIED),
    ("GetTrainingRecord", lambda w: pb.GetTrainingRecordRequest(volunteer_id=w.a.volunteer_id), "b", DENIED),
    ("GetTrainingRecord", lambda w: pb.GetTrainingRecordRequest(volunteer_id=w.a.volunteer_id), "outsider_admin",
     DENIED),
    ("RecordHistoricalCompletion", lambda w: pb.RecordHistoricalCompletionRequest(
        volunteer_id=w.a.volunteer_id, course_id=w.course.course_id, completed_on="2023-05-01", reason="越权"),
     "outsider_admin", DENIED),
    ("RecordHistoricalCompletion", lambda w: pb.RecordHistoricalCompletionRequest(
        volunteer_id=w.a.volunteer_id, course_id=w.course.course_id, completed_on="2023-05-01", reason="自己补录"),
     "a", DENIED),
    ("GetCertification", lambda w: pb.GetCertificationRequest(
        certification_id=w.cert.certification.certification_id), "b", DENIED),
    ("GetCertification", lambda w: pb.GetCertificationRequest(
        certification_id=w.cert.certification.certification_id), "outsider_admin", DENIED),
    ("ListCertifications", lambda w: pb.ListCertificationsRequest(volunteer_id=w.a.volunteer_id), "b", DENIED),
    ("ListCertifications", lambda w: pb.ListCertificationsRequest(unit_id=w.campus.tree.stations[0].unit_id),
     "outsider_admin", DENIED),
    ("RevokeCertification", lambda w: pb.RevokeCertificationRequest(
        certification_id=w.cert.certification.certification_id, reason="越权"), "outsider_admin", DENIED),
    ("RevokeCertification", lambda w: pb.RevokeCertificationRequest(
        certification_id=w.cert.certification.certification_id, reason="越权"), "a", DENIED),
    ("SetCoreVolunteer", lambda w: pb.SetCoreVolunteerRequest(volunteer_id=w.a.volunteer_id, core=True,
                                                              reason="越权"), "outsider_admin", DENIED),
    ("GetRotationReport", lambda w: pb.GetRotationReportRequest(unit_id=w.campus.tree.stations[0].unit_id),
     "outsider_admin", DENIED),
    ("GetRotationReport", lambda w: pb.GetRotationReportRequest(unit_id=w.campus.tree.stations[0].unit_id), "a",
     DENIED),
    ("SetRotationPolicy", lambda w: pb.SetRotationPolicyRequest(general_cycle_years=5, core_cycle_years=3,
                                                                notice_days=90, effective_from="2024-01-01"),
     "owner_admin", DENIED),
]


@pytest.mark.parametrize("rpc, build, who, code", CASES, ids=[f"{rpc}-by-{who}" for rpc, _, who, _ in CASES])
def test_another_users_token_is_refused(world, rpc, build, who, code):
    with expect_error(code):
        getattr(world.campus.stub, rpc)(build(world), metadata=world.tokens[who], timeout=10)


def test_the_rightful_callers_are_served(world):
    campus, a_token, owner = world.campus, world.tokens["a"], world.tokens["owner_admin"]
    record = campus.stub.GetTrainingRecord(pb.GetTrainingRecordRequest(), metadata=a_token, timeout=5).record
    assert record.volunteer_id == world.a.volunteer_id and record.certifications
    roster = campus.stub.ListRoster(pb.ListRosterRequest(session_id=world.session.session_id), metadata=owner,
                                    timeout=5).trainees
    assert [t.volunteer_id for t in roster] == [world.a.volunteer_id] and roster[0].name == "测试志愿者"
    cert_id = world.cert.certification.certification_id
    for token in (a_token, owner, campus.center):
        campus.stub.GetCertification(pb.GetCertificationRequest(certification_id=cert_id), metadata=token, timeout=5)
    mine = campus.stub.ListSessions(pb.ListSessionsRequest(), metadata=a_token, timeout=5).sessions
    assert world.session.session_id in [s.session_id for s in mine]
    theirs = campus.stub.ListSessions(pb.ListSessionsRequest(), metadata=world.tokens["b"], timeout=5).sessions
    assert world.session.session_id not in [s.session_id for s in theirs]  # organized for another station


def test_no_token_is_unauthenticated(world):
    with expect_error(grpc.StatusCode.UNAUTHENTICATED, contains="needs a token"):
        world.campus.stub.GetSession(pb.GetSessionRequest(session_id=world.session.session_id), timeout=5)
    with expect_error(grpc.StatusCode.UNAUTHENTICATED):
        world.campus.stub.ListCourses(pb.ListCoursesRequest(), metadata=bearer("not-a-token"), timeout=5)
