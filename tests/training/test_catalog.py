"""The catalog keeps every revision (sessions keep theirs) and hides quiz answers from trainees;
the trainer pool serves units above and below; retired courses and unfit trainers schedule nothing."""

from __future__ import annotations

import grpc

from tests.support.grpc_helpers import expect_error
from tests.training.support import first_aid_content
from wenming.common.v1 import common_pb2 as c
from wenming.training.v1 import training_pb2 as pb
from wenming.training.v1 import types_pb2 as ty


def test_courses_keep_every_revision_and_hide_answers_from_trainees(module_campus):
    campus = module_campus
    course = campus.course()
    assert course.revision == course.latest_revision == 1
    assert list(course.content.quiz.questions[1].correct_options) == [0, 1]  # the keepers see the answers
    volunteer, token = campus.volunteer()
    seen = campus.stub.GetCourse(pb.GetCourseRequest(course_id=course.course_id), metadata=token, timeout=5).course
    assert seen.content.title == "应急救护" and all(not q.correct_options for q in seen.content.quiz.questions)
    session = campus.session(course)

    revised = campus.stub.ReviseCourse(pb.ReviseCourseRequest(
        course_id=course.course_id, expected_revision=1, content=first_aid_content(minutes=300)),
        metadata=campus.center, timeout=5).course
    assert (revised.revision, revised.content.minutes) == (2, 300)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="revised meanwhile"):
        campus.stub.ReviseCourse(pb.ReviseCourseRequest(course_id=course.course_id, expected_revision=1,
                                                        content=first_aid_content(minutes=360)),
                                 metadata=campus.center, timeout=5)
    first = campus.stub.GetCourse(pb.GetCourseRequest(course_id=course.course_id, revision=1),
                                  metadata=campus.center, timeout=5).course
    assert (first.revision, first.latest_revision, first.content.minutes) == (1, 2, 240)
    with expect_error(grpc.StatusCode.NOT_FOUND):
        campus.stub.GetCourse(pb.GetCourseRequest(course_id=course.course_id, revision=3), metadata=campus.center,
                              timeout=5)
    kept = campus.stub.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=token,
                                  timeout=5).session
    assert (kept.course_revision, kept.minutes) == (1, 240)  # history stays true

    retired = campus.stub.RetireCourse(pb.RetireCourseRequest(course_id=course.course_id, reason="并入新版课程"),
                                       metadata=campus.center, timeout=5).course
    assert retired.status == pb.COURSE_STATUS_RETIRED
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="retired"):
        campus.session(course)
    listed = campus.stub.ListCourses(pb.ListCoursesRequest(level=ty.COURSE_LEVEL_SPECIALIST), metadata=token,
                                     timeout=5).courses
    assert course.course_id not in [x.course_id for x in listed]
    everything = campus.stub.ListCourses(pb.ListCoursesRequest(include_retired=True), metadata=token,
                                         timeout=5).courses
    assert course.course_id in [x.course_id for x in everything]


def test_the_trainer_pool_serves_units_above_and_below(module_campus):
    campus = module_campus
    tree = campus.tree
    district_wide = campus.trainer(name="区级讲师")
    station_admin = campus.admin(tree.stations[0])
    local = campus.stub.RegisterTrainer(pb.RegisterTrainerRequest(
        owner_unit_id=tree.stations[0].unit_id, name="站点讲师", specialties=[c.SKILL_LEGAL_AID],
        served_unit_ids=[tree.stations[0].unit_id]), metadata=station_admin, timeout=5).trainer
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        campus.stub.RegisterTrainer(pb.RegisterTrainerRequest(
            owner_unit_id=tree.stations[0].unit_id, name="越权讲师", specialties=[c.SKILL_LEGAL_AID],
            served_unit_ids=[tree.stations[1].unit_id]), metadata=station_admin, timeout=5)

    def pool(unit, **filters) -> set[str]:
        found = campus.stub.ListTrainers(pb.ListTrainersRequest(unit_id=unit.unit_id, **filters),
                                         metadata=campus.center, timeout=5).trainers
        return {t.trainer_id for t in found} & {district_wide.trainer_id, local.trainer_id}

    assert pool(tree.courtyards[0]) == {district_wide.trainer_id, local.trainer_id}  # both serve above it
    assert pool(tree.stations[1]) == {district_wide.trainer_id}
    assert pool(tree.institute) == {district_wide.trainer_id, local.trainer_id}  # the local one serves below it
    assert pool(tree.courtyards[0], specialty=c.SKILL_LEGAL_AID) == {local.trainer_id}

    volunteer, token = campus.volunteer()
    as_trainer = campus.trainer(name="志愿者讲师", volunteer_id=volunteer.volunteer_id)
    assert campus.stub.GetTrainer(pb.GetTrainerRequest(trainer_id=as_trainer.trainer_id), metadata=token,
                                  timeout=5).trainer.volunteer_id == volunteer.volunteer_id
    with expect_error(grpc.StatusCode.ALREADY_EXISTS):
        campus.trainer(name="志愿者讲师", volunteer_id=volunteer.volunteer_id)

    course = campus.course()
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="does not serve"):
        campus.session(course, unit=tree.stations[1], trainer=local)
    paused = campus.stub.UpdateTrainer(pb.UpdateTrainerRequest(trainer_id=local.trainer_id, update_fields=["active"],
                                                               active=False), metadata=station_admin,
                                       timeout=5).trainer
    assert not paused.active and paused.version == 2
    assert pool(tree.courtyards[0]) == {district_wide.trainer_id}
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="inactive"):
        campus.session(course, trainer=local)
