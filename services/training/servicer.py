"""gRPC servicer: translates requests to the domain and results back. No rules live here."""

from __future__ import annotations

import datetime as dt

from services.common.auth import current_principal
from services.common.clock import clock
from services.common.events import to_timestamp
from wenming.common.v1 import common_pb2
from wenming.training.v1 import training_pb2 as pb
from wenming.training.v1 import training_pb2_grpc

from .app import Training
from .quiz import attempts_left
from .translate import (certification_record_msg, completion_msg, course_msg, policy_msg, quiz_status_msg,
                        record_msg, rotation_counts_msg, rotation_entry_msg, session_msg, trainee_msg, trainer_msg)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["TrainingService"].full_name


def _page(token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token)


class TrainingServicer(training_pb2_grpc.TrainingServiceServicer):
    def __init__(self, domain: Training):
        self.d = domain

    # ---- catalog ----

    def _course(self, principal, course, content=None):
        content = content or course.revisions[-1]
        return course_msg(course, content, self.d.catalog.shows_answers(principal, course))

    def CreateCourse(self, request, context):
        principal = current_principal()
        return pb.CreateCourseResponse(course=self._course(principal, self.d.catalog.create(principal, request)))

    def ReviseCourse(self, request, context):
        principal = current_principal()
        return pb.ReviseCourseResponse(course=self._course(principal, self.d.catalog.revise(principal, request)))

    def RetireCourse(self, request, context):
        principal = current_principal()
        course = self.d.catalog.retire(principal, request.course_id, request.reason)
        return pb.RetireCourseResponse(course=self._course(principal, course))

    def GetCourse(self, request, context):
        principal = current_principal()
        course, content = self.d.catalog.get(principal, request.course_id, request.revision)
        return pb.GetCourseResponse(course=self._course(principal, course, content))

    def ListCourses(self, request, context):
        principal = current_principal()
        courses, token = self.d.catalog.list(principal, request)
        return pb.ListCoursesResponse(courses=[course_msg(c, c.revisions[-1], False) for c in courses],
                                      page=_page(token))

    # ---- trainers ----

    def _trainer(self, trainer):
        return trainer_msg(trainer, self.d.trainers.ratings(trainer.district_id, [trainer.id]).get(trainer.id, (0, 0)))

    def RegisterTrainer(self, request, context):
        return pb.RegisterTrainerResponse(trainer=self._trainer(self.d.trainers.register(current_principal(),
                                                                                         request)))

    def UpdateTrainer(self, request, context):
        return pb.UpdateTrainerResponse(trainer=self._trainer(self.d.trainers.update(current_principal(), request)))

    def GetTrainer(self, request, context):
        return pb.GetTrainerResponse(trainer=self._trainer(self.d.trainers.get(current_principal(),
                                                                               request.trainer_id)))

    def ListTrainers(self, request, context):
        principal = current_principal()
        trainers, token = self.d.trainers.list(principal, request)
        ratings = self.d.trainers.ratings(principal.district_id, [t.id for t in trainers])
        return pb.ListTrainersResponse(trainers=[trainer_msg(t, ratings.get(t.id, (0, 0))) for t in trainers],
                                       page=_page(token))

    def RateTrainer(self, request, context):
        principal = current_principal()
        session = self.d.attendance.rate_trainer(principal, request.session_id, request.rating)
        trainer = self.d.trainers.load(session.district_id, session.trainer_id)
        return pb.RateTrainerResponse(trainer=self._trainer(trainer))

    # ---- sessions ----

    def ScheduleSession(self, request, context):
        return pb.ScheduleSessionResponse(session=session_msg(self.d.sessions.schedule(current_principal(), request)))

    def GetSession(self, request, context):
        principal = current_principal()
        session = self.d.sessions.get(principal, request.session_id)
        me = trainee_msg(session, principal.subject) if principal.subject in session.trainees else None
        return pb.GetSessionResponse(session=session_msg(session), me=me)

    def ListSessions(self, request, context):
        sessions, token = self.d.sessions.list(current_principal(), request)
        return pb.ListSessionsResponse(sessions=[session_msg(s) for s in sessions], page=_page(token))

    def CancelSession(self, request, context):
        session = self.d.sessions.cancel(current_principal(), request.session_id, request.reason)
        return pb.CancelSessionResponse(session=session_msg(session))

    def CloseSession(self, request, context):
        return pb.CloseSessionResponse(session=session_msg(self.d.sessions.close(current_principal(),
                                                                                 request.session_id)))

    def ListRoster(self, request, context):
        session, ids, token = self.d.sessions.roster(current_principal(), request)
        volunteers = self.d.sessions.directory.volunteers(session.district_id, ids)
        return pb.ListRosterResponse(trainees=[trainee_msg(session, vid, volunteers.get(vid)) for vid in ids],
                                     page=_page(token))

    # ---- enrollment ----

    def Enroll(self, request, context):
        principal = current_principal()
        session = self.d.enrollment.enroll(principal, request.session_id, request.volunteer_id)
        vid = request.volunteer_id or principal.subject
        return pb.EnrollResponse(trainee=trainee_msg(session, vid), session=session_msg(session))

    def CancelEnrollment(self, request, context):
        session, vid = self.d.enrollment.cancel(current_principal(), request.session_id, request.volunteer_id,
                                                request.reason)
        return pb.CancelEnrollmentResponse(trainee=trainee_msg(session, vid), session=session_msg(session))

    # ---- attendance ----

    def IssueCheckinCode(self, request, context):
        code, valid_until = self.d.attendance.issue_code(current_principal(), request.session_id)
        return pb.IssueCheckinCodeResponse(code=code, valid_until=to_timestamp(dt.datetime.fromtimestamp(valid_until,
                                                                                                         dt.UTC)))

    def CheckIn(self, request, context):
        principal = current_principal()
        session = self.d.attendance.check_in(principal, request.session_id, request.code)
        return pb.CheckInResponse(trainee=trainee_msg(session, principal.subject))

    def RecordAttendance(self, request, context):
        session = self.d.attendance.record(current_principal(), request.session_id, request.volunteer_ids)
        return pb.RecordAttendanceResponse(trainees=[trainee_msg(session, vid)
                                                     for vid in dict.fromkeys(request.volunteer_ids)])

    # ---- quiz ----

    def GetQuiz(self, request, context):
        session, trainee = self.d.quizzes.get(current_principal(), request.session_id)
        return quiz_status_msg(session, trainee)

    def SubmitQuiz(self, request, context):
        principal = current_principal()
        session, grade, passed = self.d.quizzes.submit(principal, request)
        return pb.SubmitQuizResponse(score=grade.score, passed=passed, correct=grade.correct,
                                     questions=grade.questions,
                                     attempts_left=attempts_left(session, session.trainees[principal.subject]),
                                     trainee=trainee_msg(session, principal.subject))

    # ---- records and certifications ----

    def GetTrainingRecord(self, request, context):
        view = self.d.records.get(current_principal(), request.volunteer_id)
        return pb.GetTrainingRecordResponse(record=record_msg(view, clock.now()))

    def RecordHistoricalCompletion(self, request, context):
        completion = self.d.records.record_historical(current_principal(), request)
        return pb.RecordHistoricalCompletionResponse(completion=completion_msg(completion))

    def GetCertification(self, request, context):
        cert = self.d.certifications.get(current_principal(), request.certification_id)
        return pb.GetCertificationResponse(certification=certification_record_msg(cert, clock.now()))

    def ListCertifications(self, request, context):
        certs, token = self.d.certifications.list(current_principal(), request)
        now = clock.now()
        return pb.ListCertificationsResponse(certifications=[certification_record_msg(c, now) for c in certs],
                                             page=_page(token))

    def RevokeCertification(self, request, context):
        cert = self.d.certifications.revoke(current_principal(), request.certification_id, request.reason)
        return pb.RevokeCertificationResponse(certification=certification_record_msg(cert, clock.now()))

    # ---- rotation ----

    def SetRotationPolicy(self, request, context):
        return pb.SetRotationPolicyResponse(policy=policy_msg(self.d.rotation.set_policy(current_principal(),
                                                                                         request)))

    def GetRotationPolicy(self, request, context):
        principal = current_principal()
        return pb.GetRotationPolicyResponse(policy=policy_msg(self.d.rotation.require_policy(principal.district_id)))

    def SetCoreVolunteer(self, request, context):
        core, basis = self.d.rotation.set_core(current_principal(), request)
        return pb.SetCoreVolunteerResponse(core=core, core_basis=basis)

    def GetRotationReport(self, request, context):
        counts, rows, token, policy, now = self.d.rotation.report(current_principal(), request)
        return pb.GetRotationReportResponse(
            counts=[rotation_counts_msg(plan, tally) for plan, tally in counts.items()],
            entries=[rotation_entry_msg(volunteer, standing) for volunteer, standing in rows],
            page=_page(token), policy=policy_msg(policy), as_of=to_timestamp(now))
