"""Building training scenarios over the real registration and training services."""

from __future__ import annotations

import datetime as dt
import time

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tests.support.grpc_helpers import bearer
from tests.support.registration import District, Tree, new_phone
from tests.support.stack import CATCH_UP_SECONDS
from wenming.common.v1 import common_pb2 as c
from wenming.training.v1 import training_pb2 as pb
from wenming.training.v1 import training_pb2_grpc
from wenming.training.v1 import types_pb2 as ty


def ts(moment: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def eventually(call, timeout: float = CATCH_UP_SECONDS, retry_on=(grpc.StatusCode.NOT_FOUND,)):
    """Calls until it stops failing with `retry_on`: registration's events still on their way, or a
    training process new to the topic still replaying what earlier packages of this worker published."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except grpc.RpcError as error:
            if error.code() not in retry_on or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def first_aid_content(**changes) -> pb.CourseContent:
    """应急救护: two questions, pass mark 50, grants first_aid for 24 months."""
    fields = dict(
        title="应急救护", description="心肺复苏、AED使用、止血包扎", category=ty.COURSE_CATEGORY_EMERGENCY,
        level=ty.COURSE_LEVEL_SPECIALIST, minutes=240, required_for_skills=[c.SKILL_EMERGENCY_RESCUE],
        materials=[pb.Material(asset_id="asset_cpr_video", title="心肺复苏教学视频")],
        quiz=pb.Quiz(questions=[
            pb.QuizQuestion(text="成人胸外按压的频率是每分钟多少次？", options=["60-80", "100-120", "140-160"],
                            correct_options=[1]),
            pb.QuizQuestion(text="以下哪些属于止血方法？", options=["指压止血", "加压包扎", "热敷"],
                            correct_options=[0, 1]),
        ], pass_mark=50, max_attempts=2),
        certification=ty.CertificationSpec(code="first_aid", name="应急救护证书", valid_months=24))
    fields.update(changes)
    return pb.CourseContent(**fields)


RIGHT_ANSWERS = [pb.QuizAnswer(question_id="q1", selected_options=[1]),
                 pb.QuizAnswer(question_id="q2", selected_options=[0, 1])]
WRONG_ANSWERS = [pb.QuizAnswer(question_id="q1", selected_options=[0]),
                 pb.QuizAnswer(question_id="q2", selected_options=[2])]


class Campus:
    """A district with the small tree, its training stub and helpers for courses, trainers,
    sessions and volunteers (with their tokens)."""

    def __init__(self, district: District, training_target: str):
        self.district = district
        self.tree: Tree = district.small_tree()
        self.channel = grpc.insecure_channel(training_target)
        self.stub = training_pb2_grpc.TrainingServiceStub(self.channel)
        self.center = district.as_center()
        self.phones: dict[str, str] = {}  # volunteer id -> login phone
        # training learns units from registration's events: wait until it knows the whole tree
        for unit in [self.tree.institute, *self.tree.stations, *self.tree.courtyards]:
            eventually(lambda u=unit: self.stub.ListTrainers(pb.ListTrainersRequest(unit_id=u.unit_id),
                                                             metadata=self.center, timeout=5))

    def admin(self, unit) -> list[tuple[str, str]]:
        return bearer(self.tree.admins[unit.unit_id])

    def volunteer(self, courtyard_index: int = 0, skills=(c.SKILL_ELDERLY_CARE,), name: str = "测试志愿者",
                  login: bool = True):
        """An ACTIVE volunteer known to training, and their token metadata (None without login)."""
        phone = new_phone()
        volunteer = self.district.volunteer(self.tree.courtyards[courtyard_index].unit_id, skills=skills, name=name,
                                            phone=phone)
        self.phones[volunteer.volunteer_id] = phone
        self.known(volunteer.volunteer_id)
        return volunteer, bearer(self.district.volunteer_token(phone)) if login else None

    def known(self, *volunteer_ids: str) -> None:
        for vid in volunteer_ids:
            eventually(lambda v=vid: self.stub.GetTrainingRecord(pb.GetTrainingRecordRequest(volunteer_id=v),
                                                                 metadata=self.center, timeout=5))

    def course(self, content: pb.CourseContent | None = None, owner=None) -> pb.Course:
        return self.stub.CreateCourse(pb.CreateCourseRequest(owner_unit_id=owner.unit_id if owner else "",
                                                             content=content or first_aid_content()),
                                      metadata=self.admin(owner) if owner else self.center, timeout=10).course

    def trainer(self, served=None, name: str = "张医生", **fields) -> pb.Trainer:
        served = served or [self.tree.center]
        return self.stub.RegisterTrainer(pb.RegisterTrainerRequest(
            name=name, title="主治医师", specialties=[c.SKILL_MEDICAL_HEALTH, c.SKILL_EMERGENCY_RESCUE],
            served_unit_ids=[u.unit_id for u in served], **fields), metadata=self.center, timeout=10).trainer

    def session(self, course: pb.Course, unit=None, trainer: pb.Trainer | None = None, capacity: int = 10,
                starts_in: dt.timedelta = dt.timedelta(minutes=20), hours: int = 2, now: dt.datetime | None = None,
                **fields) -> pb.Session:
        unit = unit or self.tree.stations[0]
        trainer = trainer or self.trainer()
        start = (now or dt.datetime.now(dt.UTC)) + starts_in
        request = pb.ScheduleSessionRequest(
            course_id=course.course_id, unit_id=unit.unit_id, trainer_id=trainer.trainer_id,
            mode=ty.SESSION_MODE_OFFLINE, location="实践站二楼培训室", starts_at=ts(start),
            ends_at=ts(start + dt.timedelta(hours=hours)), capacity=capacity)
        for name, value in fields.items():
            setattr(request, name, value)
        return self.stub.ScheduleSession(request, metadata=self.admin(unit), timeout=10).session

    def enroll(self, session: pb.Session, token) -> pb.EnrollResponse:
        return self.stub.Enroll(pb.EnrollRequest(session_id=session.session_id), metadata=token, timeout=10)

    def check_in(self, session: pb.Session, token, organizer=None) -> pb.CheckInResponse:
        code = self.stub.IssueCheckinCode(pb.IssueCheckinCodeRequest(session_id=session.session_id),
                                          metadata=organizer or self.admin(self.tree.stations[0]), timeout=5).code
        return self.stub.CheckIn(pb.CheckInRequest(session_id=session.session_id, code=code), metadata=token,
                                 timeout=5)

    def close(self) -> None:
        self.channel.close()
