"""三级创建 as the seeds grade it, over the real stack: a station given a venue with a function room,
a team with active volunteers, a completed activity, a brand project and a rule document — all
through registration's, ordering's and points' real gRPC, reaching points as events — earns 示范级,
its sibling with nothing stays 创建级, and every line of both explanations is checked; the
refusals: a changed grade without evidence, the unit grading itself, another station's admin,
bad input by field."""

from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from services.common.clock import CHINA
from tests.points.support import ordering_world, own_clock, ts
from tests.support.grpc_helpers import expect_error
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as ord_pb
from wenming.ordering.v1 import types_pb2 as ord_types
from wenming.points.v1 import points_pb2 as pb
from wenming.registration.v1 import registration_pb2 as reg

C = pb.GradingCriterion
G = pb.ScorecardGrade
P = ord_types.ProjectStatus


@pytest.fixture(scope="module")
def clock(stack):
    with own_clock(stack, "grading") as clock:
        yield clock


@pytest.fixture(scope="module")
def world(stack, registration, points, clock, mongo_client):
    with ordering_world(stack, registration, clock, mongo_client, "grading") as world:
        yield world


def _this_month() -> pb.Period:
    now = dt.datetime.now(CHINA)
    return pb.Period(year=now.year, month=now.month)


def test_a_thriving_station_earns_exemplary_and_a_bare_one_stays_building(world, stub, clock):
    good, bare = world.stations
    institute = world.as_admin(world.institute)
    registration = world.district.stub

    # the district grades on its own lines: two active volunteers and one activity a month suffice
    center = world.as_center()
    rules = stub.GetPointRules(pb.GetPointRulesRequest(), metadata=center, timeout=5).rules
    for rule in rules.grading.criteria:
        if rule.criterion == C.GRADING_CRITERION_ACTIVE_VOLUNTEERS:
            rule.threshold = 2
        if rule.criterion == C.GRADING_CRITERION_ACTIVITIES:
            rule.threshold = 1
    stub.SetPointRules(pb.SetPointRulesRequest(rules=rules, expected_version=rules.version), metadata=center,
                       timeout=5)

    # 有场所: a venue with a function room
    venue = registration.CreateVenue(reg.CreateVenueRequest(
        unit_id=good.unit_id, name="幸福里文明实践站", kind=reg.VENUE_KIND_PRACTICE_STATION),
        metadata=world.as_admin(good), timeout=10).venue
    registration.CreateRoom(reg.CreateRoomRequest(
        venue_id=venue.venue_id, name="活动室", kind=reg.ROOM_KIND_ACTIVITY, capacity=40,
        opening_hours=[reg.OpeningPeriod(weekday=d, opens_minute=540, closes_minute=1080) for d in range(1, 6)]),
        metadata=world.as_admin(good), timeout=10)
    # 有队伍: a team led by one of two active volunteers, the other a member
    leader, member = world.volunteers(good, 2, name="红马甲")
    team = registration.CreateTeam(reg.CreateTeamRequest(unit_id=good.unit_id, name="红马甲服务队",
                                                         specialty=c.SKILL_HAIRCUT, leader_volunteer_id=leader.id),
                                   metadata=world.as_admin(good), timeout=10).team
    registration.AddTeamMember(reg.AddTeamMemberRequest(team_id=team.team_id, volunteer_id=member.id),
                               metadata=world.as_admin(good), timeout=10)
    # 有活动: an activity planned, published and completed once it ended (ordering's clock moved)
    starts = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    activity = world.stub.PlanActivity(ord_pb.PlanActivityRequest(
        title="邻里议事会", description="商量小区停车", category=c.SERVICE_CATEGORY_LECTURE_POLICY,
        location="活动室", starts_at=ts(starts), ends_at=ts(starts + dt.timedelta(minutes=30)),
        volunteer_capacity=2, resident_capacity=20), metadata=world.as_admin(good), timeout=10).activity
    world.stub.PublishActivity(ord_pb.PublishActivityRequest(activity_id=activity.activity_id),
                               metadata=world.as_admin(good), timeout=10)
    clock.set(3600)
    try:
        world.stub.CompleteActivity(ord_pb.CompleteActivityRequest(activity_id=activity.activity_id),
                                    metadata=world.as_admin(good), timeout=10)
    finally:
        clock.set(0)
    # 有项目: a project proposed by the station, taken on and made its brand by the institute
    project = world.stub.ProposeProject(ord_pb.ProposeProjectRequest(
        unit_id=good.unit_id, name="银龄互助", category=c.SERVICE_CATEGORY_CARE_FOR_OTHERS, target_group="独居老人",
        plan="每月两次入户探访", budget_source="街道专项经费"), metadata=world.as_admin(good), timeout=10).project
    for to in (P.PROJECT_STATUS_UNDER_REVIEW, P.PROJECT_STATUS_APPROVED, P.PROJECT_STATUS_INCUBATING,
               P.PROJECT_STATUS_BRANDED):
        world.stub.MoveProject(ord_pb.MoveProjectRequest(project_id=project.project_id, to_status=to, comment="同意"),
                               metadata=institute, timeout=10)
    # 有机制: a rule document only an admin can vouch for
    rule_document = stub.RecordGradeEvidence(pb.RecordGradeEvidenceRequest(
        unit_id=good.unit_id, criterion=C.GRADING_CRITERION_RULES, title="《志愿服务管理制度》",
        document_url="https://example.org/rules.pdf"), metadata=world.as_admin(good), timeout=5).evidence
    assert rule_document.recorded_by and rule_document.recorded_at.seconds

    def grade(unit) -> pb.GetUnitGradeResponse:
        return stub.GetUnitGrade(pb.GetUnitGradeRequest(unit_id=unit.unit_id, period=_this_month()),
                                 metadata=institute, timeout=5)

    # every record has reached points once the brand's bonus is in too (示范级 shows from 90 points)
    top = wait_until(lambda: (g := grade(good).grade).score == 105 and g, 60)
    assert top, grade(good).grade
    lines = {line.criterion: line for line in top.lines}
    expected = {  # criterion: (value, threshold, points, explanation, records)
        C.GRADING_CRITERION_VENUES: (1, 1, 15, "1处 ≥ 1处，得15分（满分15分）",
                                     [(venue.venue_id, "幸福里文明实践站（功能室1间）")]),
        C.GRADING_CRITERION_TEAMS: (1, 1, 10, "1支 ≥ 1支，得10分（满分10分）", [(team.team_id, "红马甲服务队")]),
        C.GRADING_CRITERION_ACTIVE_VOLUNTEERS: (2, 2, 10, "2人 ≥ 2人，得10分（满分10分）",
                                                sorted((v.id, f"志愿者编号 {v.number}") for v in (leader, member))),
        C.GRADING_CRITERION_ACTIVITIES: (1, 1, 15, "1场 ≥ 1场（每月1场×1个月），得15分（满分15分）",
                                         [(activity.activity_id, "邻里议事会")]),
        C.GRADING_CRITERION_PROJECTS: (1, 1, 10, "1个 ≥ 1个，得10分（满分10分）", [(project.project_id, "银龄互助")]),
        C.GRADING_CRITERION_BRAND_PROJECT: (1, 1, 5, "1个 ≥ 1个，得5分（满分5分）", [(project.project_id, "银龄互助")]),
        C.GRADING_CRITERION_RULES: (1, 1, 10, "1份 ≥ 1份，得10分（满分10分）", [rule_document.evidence_id]),
        C.GRADING_CRITERION_RESPONSE: (0, 1440, 10, "本期无点单可计，按达标计，得10分（满分10分）", []),
        C.GRADING_CRITERION_COMPLETION: (0, 85, 10, "本期无点单可计，按达标计，得10分（满分10分）", []),
        C.GRADING_CRITERION_SATISFACTION: (0, 400, 10, "本期无点单可计，按达标计，得10分（满分10分）", []),
    }
    assert set(lines) == set(expected)
    for criterion, (value, threshold, points, explanation, records) in expected.items():
        line = lines[criterion]
        assert (line.value, line.threshold, line.points, line.explanation) == (value, threshold, points, explanation), \
            C.Name(criterion)
        if criterion == C.GRADING_CRITERION_RULES:  # who recorded it and when, for the reviewer
            assert [r.record_id for r in line.records] == records
            assert line.records[0].label.startswith("《志愿服务管理制度》（") and "登记" in line.records[0].label
        else:
            assert [(r.record_id, r.label) for r in line.records] == records, C.Name(criterion)
    assert (top.score, top.grade_label) == (105, "示范级")

    low = grade(bare).grade
    assert (low.grade, low.grade_label, low.score) == (G.SCORECARD_GRADE_BUILDING, "创建级", 30)
    for line in low.lines:
        if line.criterion in (C.GRADING_CRITERION_RESPONSE, C.GRADING_CRITERION_COMPLETION,
                              C.GRADING_CRITERION_SATISFACTION):
            assert (line.applicable, line.points) == (False, 10)
        else:
            assert (line.value, line.met, line.points, list(line.records)) == (0, False, 0, []), C.Name(line.criterion)
            assert line.explanation.startswith("0") and f"得0分（满分{line.max_points}分）" in line.explanation

    # 评定: the institute records what the records give; a different grade needs evidence and a reason
    agreed = stub.AssessUnitGrade(pb.AssessUnitGradeRequest(unit_id=good.unit_id, period=_this_month(),
                                                            grade=G.SCORECARD_GRADE_EXEMPLARY),
                                  metadata=institute, timeout=5).assessment
    assert (agreed.grade, agreed.computed_grade, agreed.score) == (G.SCORECARD_GRADE_EXEMPLARY,
                                                                   G.SCORECARD_GRADE_EXEMPLARY, 105)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="须附证明材料"):
        stub.AssessUnitGrade(pb.AssessUnitGradeRequest(unit_id=bare.unit_id, period=_this_month(),
                                                       grade=G.SCORECARD_GRADE_STANDARD, reason="实地复核"),
                             metadata=institute, timeout=5)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="evidence_ids"):  # the other station's evidence
        stub.AssessUnitGrade(pb.AssessUnitGradeRequest(unit_id=bare.unit_id, period=_this_month(),
                                                       grade=G.SCORECARD_GRADE_STANDARD, reason="实地复核",
                                                       evidence_ids=[rule_document.evidence_id]),
                             metadata=institute, timeout=5)
    report = stub.RecordGradeEvidence(pb.RecordGradeEvidenceRequest(
        unit_id=bare.unit_id, criterion=C.GRADING_CRITERION_VENUES, title="实地复核报告：借用村委会议室开展活动",
        note="阵地在建，活动正常开展"), metadata=institute, timeout=5).evidence
    raised = stub.AssessUnitGrade(pb.AssessUnitGradeRequest(
        unit_id=bare.unit_id, period=_this_month(), grade=G.SCORECARD_GRADE_STANDARD, reason="实地复核",
        evidence_ids=[report.evidence_id]), metadata=institute, timeout=5).assessment
    assert (raised.grade, raised.computed_grade, list(raised.evidence_ids)) == (
        G.SCORECARD_GRADE_STANDARD, G.SCORECARD_GRADE_BUILDING, [report.evidence_id])
    assert [a.assessment_id for a in grade(bare).history] == [raised.assessment_id]
    assert grade(good).history[0].assessor_unit.unit_id == world.institute.unit_id

    # a quarter and the year are graded too (the activity threshold grows with the months begun)
    now = dt.datetime.now(CHINA)
    quarter = stub.GetUnitGrade(pb.GetUnitGradeRequest(unit_id=good.unit_id, period=pb.Period(
        year=now.year, quarter=(now.month - 1) // 3 + 1)), metadata=institute, timeout=5).grade
    assert {line.criterion: line.threshold for line in quarter.lines}[C.GRADING_CRITERION_ACTIVITIES] == \
        (now.month - 1) % 3 + 1


def test_a_unit_never_grades_itself_and_another_station_is_refused(world, stub):
    good, bare = world.stations
    own, other = world.as_admin(good), world.as_admin(bare)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED, contains="上级"):
        stub.AssessUnitGrade(pb.AssessUnitGradeRequest(unit_id=good.unit_id, period=_this_month(),
                                                       grade=G.SCORECARD_GRADE_BUILDING), metadata=own, timeout=5)
    for call in (
        lambda: stub.GetUnitGrade(pb.GetUnitGradeRequest(unit_id=good.unit_id), metadata=other, timeout=5),
        lambda: stub.RecordGradeEvidence(pb.RecordGradeEvidenceRequest(
            unit_id=good.unit_id, criterion=C.GRADING_CRITERION_RULES, title="《制度》"), metadata=other, timeout=5),
        lambda: stub.AssessUnitGrade(pb.AssessUnitGradeRequest(
            unit_id=good.unit_id, period=_this_month(), grade=G.SCORECARD_GRADE_BUILDING), metadata=other, timeout=5),
    ):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            call()
    volunteer = world.volunteer(good)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        stub.GetUnitGrade(pb.GetUnitGradeRequest(unit_id=good.unit_id), metadata=volunteer.token, timeout=5)


@pytest.mark.parametrize("request_, field", [
    (pb.RecordGradeEvidenceRequest(criterion=C.GRADING_CRITERION_RULES, title="《制度》"), "unit_id"),
    (pb.RecordGradeEvidenceRequest(criterion=C.GRADING_CRITERION_RULES, title="制"), "title"),
    (pb.RecordGradeEvidenceRequest(title="《制度》"), "criterion"),
    (pb.RecordGradeEvidenceRequest(criterion=C.GRADING_CRITERION_RULES, title="《制度》", document_url="ftp://x"),
     "document_url"),
])
def test_bad_evidence_is_refused_by_field(world, stub, request_, field):
    if request_.unit_id == "" and field != "unit_id":
        request_.unit_id = world.stations[0].unit_id
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field=field):
        stub.RecordGradeEvidence(request_, metadata=world.as_admin(world.stations[0]), timeout=5)


def test_a_bad_period_is_refused_by_field(world, stub):
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="period.quarter"):
        stub.GetUnitGrade(pb.GetUnitGradeRequest(unit_id=world.stations[0].unit_id,
                                                 period=pb.Period(year=2026, month=3, quarter=1)),
                          metadata=world.as_admin(world.institute), timeout=5)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="grade"):
        stub.AssessUnitGrade(pb.AssessUnitGradeRequest(unit_id=world.stations[0].unit_id),
                             metadata=world.as_admin(world.institute), timeout=5)


def test_evidence_retried_with_its_key_is_recorded_once(world, stub, points_db):
    admin = world.as_admin(world.stations[0])
    asked = pb.RecordGradeEvidenceRequest(unit_id=world.stations[0].unit_id, criterion=C.GRADING_CRITERION_RULES,
                                          title=f"《台账{uuid.uuid4().hex[:6]}》", idempotency_key=f"gev-{uuid.uuid4().hex}")
    first = stub.RecordGradeEvidence(asked, metadata=admin, timeout=5).evidence
    assert stub.RecordGradeEvidence(asked, metadata=admin, timeout=5).evidence == first
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="idempotency_key"):
        stub.RecordGradeEvidence(pb.RecordGradeEvidenceRequest(
            unit_id=asked.unit_id, criterion=asked.criterion, title="《另一份制度》", idempotency_key=asked.idempotency_key),
            metadata=admin, timeout=5)
    assert points_db.grade_evidence.count_documents({"title": asked.title}) == 1

    raced = pb.RecordGradeEvidenceRequest(unit_id=asked.unit_id, criterion=asked.criterion,
                                          title=f"《台账{uuid.uuid4().hex[:6]}》", idempotency_key=f"gev-{uuid.uuid4().hex}")
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: stub.RecordGradeEvidence(raced, metadata=admin, timeout=10).evidence,
                                range(2)))
    assert answers[0] == answers[1]
    assert points_db.grade_evidence.count_documents({"title": raced.title}) == 1

    unkeyed = pb.RecordGradeEvidenceRequest(unit_id=asked.unit_id, criterion=asked.criterion,
                                            title=f"《台账{uuid.uuid4().hex[:6]}》")
    ids = {stub.RecordGradeEvidence(unkeyed, metadata=admin, timeout=5).evidence.evidence_id for _ in range(2)}
    assert len(ids) == 2  # without a key, each call records (as before keys)
