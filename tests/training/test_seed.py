"""The `make run` seed fills training through its public API (run here on a small district)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import seed_demo  # infra/local is on the path (tests.support.stack)
import seed_training
from tests.training.support import eventually
from wenming.common.v1 import common_pb2 as c
from wenming.training.v1 import training_pb2 as pb
from wenming.training.v1 import training_pb2_grpc


def test_the_demo_seed_builds_catalog_trainers_sessions_and_enrollments(district, training, capsys):
    tree = district.small_tree()
    skills = [c.SKILL_ELDERLY_CARE, c.SKILL_LEGAL_AID, c.SKILL_EMERGENCY_RESCUE]
    with ThreadPoolExecutor(4) as pool:
        volunteers = list(pool.map(lambda n: district.volunteer(tree.courtyards[n % 4].unit_id, skills=[skills[n % 3]],
                                                                name=f"种子志愿者{n}"), range(8)))
    ctx = seed_demo.SeedContext(targets={"training": training.grpc_target}, center_admin=district.as_center(),
                                center_id=district.center_id, institutes=[tree.institute], stations=tree.stations,
                                courtyards=tree.courtyards, volunteers=volunteers)
    seed_training.seed(ctx)
    summary = capsys.readouterr().out
    assert "training: 8 courses, 6 trainers, 7 sessions" in summary

    channel = grpc.insecure_channel(training.grpc_target)
    stub = training_pb2_grpc.TrainingServiceStub(channel)
    courses = stub.ListCourses(pb.ListCoursesRequest(page=c.PageRequest(page_size=50)), metadata=district.as_center(),
                               timeout=5).courses
    titles = {course.content.title: course for course in courses}
    assert {"理论宣讲入门", "应急救护", "法律服务基础", "心理疏导技能", "垃圾分类指导", "助老服务规范"} <= set(titles)
    assert titles["应急救护"].content.certification.code == "first_aid"
    assert titles["法律服务基础"].content.certification.code == "legal_basic"
    sessions = stub.ListSessions(pb.ListSessionsRequest(page=c.PageRequest(page_size=50)),
                                 metadata=district.as_center(), timeout=5).sessions
    assert len(sessions) == 7 and sum(s.enrolled_count for s in sessions) > 0
    report = eventually(lambda: stub.GetRotationReport(pb.GetRotationReportRequest(), metadata=district.as_center(),
                                                       timeout=5))
    assert report.counts[0].volunteers == len(volunteers)
    channel.close()
