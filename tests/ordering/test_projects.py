"""Volunteer service projects (志愿服务项目库) and the project competition (项目大赛) over real gRPC
against the real broker and database: the lifecycle reviewed upward with its events, the outcome
from a served order, one brand per station, the refusals — review by the proposer, another
station's admin, bad input by field."""

from __future__ import annotations

import itertools

import grpc
import pytest

from tests.support.grpc_helpers import expect_error
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

P = types_pb2.ProjectStatus
DENIED, PRECONDITION, INVALID = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION,
                                 grpc.StatusCode.INVALID_ARGUMENT)
_names = itertools.count(1)


def propose(world, unit, token=None, **fields) -> pb.Project:
    request = pb.ProposeProjectRequest(unit_id=unit.unit_id, name=f"银龄互助{next(_names)}",
                                       category=c.SERVICE_CATEGORY_CARE_FOR_OTHERS, target_group="独居老人",
                                       plan="每月两次入户探访，结对帮扶", budget_source="街道专项经费")
    request.MergeFrom(pb.ProposeProjectRequest(**fields))
    return world.stub.ProposeProject(request, metadata=token or world.as_admin(unit), timeout=10).project


def move(world, project_id: str, to: int, token, comment: str = "同意") -> pb.Project:
    return world.stub.MoveProject(pb.MoveProjectRequest(project_id=project_id, to_status=to, comment=comment),
                                  metadata=token, timeout=10).project


def approved(world, unit, reviewer) -> pb.Project:
    project = propose(world, unit)
    for to in (P.PROJECT_STATUS_UNDER_REVIEW, P.PROJECT_STATUS_APPROVED):
        project = move(world, project.project_id, to, reviewer)
    return project


@pytest.fixture(scope="module")
def units(own_world):
    """The station whose projects are followed, its sibling, and the reviewers above."""
    return own_world.stations[0], own_world.stations[1], own_world.as_admin(own_world.institute)


def test_a_project_from_proposal_to_brand_with_its_outcome(own_world, units, shifted, ordering_events):
    world = own_world
    station, _, institute = units
    project = propose(world, station)
    assert project.status == P.PROJECT_STATUS_DECLARED and project.unit.unit_id == station.unit_id
    for to in (P.PROJECT_STATUS_UNDER_REVIEW, P.PROJECT_STATUS_APPROVED, P.PROJECT_STATUS_INCUBATING):
        project = move(world, project.project_id, to, institute)
    assert [(r.from_status, r.to_status) for r in project.reviews] == [
        (P.PROJECT_STATUS_DECLARED, P.PROJECT_STATUS_UNDER_REVIEW),
        (P.PROJECT_STATUS_UNDER_REVIEW, P.PROJECT_STATUS_APPROVED),
        (P.PROJECT_STATUS_APPROVED, P.PROJECT_STATUS_INCUBATING)]
    assert project.reviews[0].reviewer_unit.unit_id == world.institute.unit_id

    admin = world.as_admin(station)
    world.stub.ReportProjectProgress(pb.ReportProjectProgressRequest(
        project_id=project.project_id, period=f"{project.proposed_at.ToDatetime():%Y-%m}",
        summary="本月入户探访 12 户"), metadata=admin, timeout=10)
    with expect_error(PRECONDITION, contains="已经报告过"):
        world.stub.ReportProjectProgress(pb.ReportProjectProgressRequest(
            project_id=project.project_id, period=f"{project.proposed_at.ToDatetime():%Y-%m}", summary="再报一次"),
            metadata=admin, timeout=10)

    # an order served in one of the station's courtyards, its hours confirmed: the outcome follows
    yard = world.courtyards[0]
    volunteer = world.volunteer(yard)
    _, resident = world.resident(yard)
    order = world.served_order(resident, volunteer, shifted, minutes=45)
    world.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(order_id=order.order_id), metadata=world.holder(order),
                                 timeout=10)
    linked = world.stub.LinkProjectWork(pb.LinkProjectWorkRequest(project_id=project.project_id,
                                                                  order_ids=[order.order_id]),
                                        metadata=admin, timeout=10).project
    assert list(linked.order_ids) == [order.order_id]
    got = world.stub.GetProject(pb.GetProjectRequest(project_id=project.project_id), metadata=admin,
                                timeout=10).project
    assert (got.outcome.people_served, got.outcome.volunteer_minutes, got.outcome.volunteers,
            got.outcome.orders_served) == (1, 45, 1, 1)
    assert [p.summary for p in got.progress] == ["本月入户探访 12 户"]

    # 一站一特色: the station's brand, then no second one
    branded = move(world, project.project_id, P.PROJECT_STATUS_BRANDED, institute, "群众口碑好")
    assert branded.status == P.PROJECT_STATUS_BRANDED
    second = approved(world, station, institute)
    second = move(world, second.project_id, P.PROJECT_STATUS_INCUBATING, institute)
    with expect_error(PRECONDITION, contains="已有品牌项目"):
        move(world, second.project_id, P.PROJECT_STATUS_BRANDED, institute)
    # once the brand concludes, the station may designate another
    move(world, project.project_id, P.PROJECT_STATUS_CONCLUDED, institute, "三年周期结束")
    assert move(world, second.project_id, P.PROJECT_STATUS_BRANDED, institute).status == P.PROJECT_STATUS_BRANDED

    listed = world.stub.ListProjects(pb.ListProjectsRequest(unit_id=world.institute.unit_id,
                                                            statuses=[P.PROJECT_STATUS_BRANDED]),
                                     metadata=institute, timeout=10).projects
    assert [p.project_id for p in listed] == [second.project_id]

    types = [envelope.event_type.rsplit(".", 1)[1] for envelope, payload, _ in
             ordering_events.events(world.district.id, at_least=1, timeout=20, settle=2.0)
             if envelope.aggregate_type == "project" and envelope.aggregate_id == project.project_id]
    assert types == ["ProjectProposed", "ProjectMoved", "ProjectMoved", "ProjectMoved", "ProjectProgressReported",
                     "ProjectWorkLinked", "ProjectMoved", "ProjectMoved"]


def test_the_proposer_never_reviews_their_own_project(own_world, units):
    world = own_world
    station, _, institute = units
    # the institute's admin proposes for the station below: an admin above it, and still refused
    project = propose(world, station, institute)
    with expect_error(DENIED, contains="申报人不能评审"):
        move(world, project.project_id, P.PROJECT_STATUS_UNDER_REVIEW, institute)
    # the station's own admin is no reviewer either; the center is
    with expect_error(DENIED, contains="上级"):
        move(world, project.project_id, P.PROJECT_STATUS_UNDER_REVIEW, world.as_admin(station))
    reviewed = move(world, project.project_id, P.PROJECT_STATUS_UNDER_REVIEW, world.as_center())
    assert reviewed.status == P.PROJECT_STATUS_UNDER_REVIEW
    with expect_error(INVALID, field="comment"):
        move(world, project.project_id, P.PROJECT_STATUS_REJECTED, world.as_center(), comment="")
    rejected = move(world, project.project_id, P.PROJECT_STATUS_REJECTED, world.as_center(), "方案不具体")
    assert rejected.status == P.PROJECT_STATUS_REJECTED and rejected.reviews[-1].comment == "方案不具体"


def test_another_stations_admin_is_refused_every_project_rpc(own_world, units):
    world = own_world
    station, sibling, institute = units
    project, runner_up = approved(world, station, institute), approved(world, station, institute)
    pid, ids = project.project_id, [project.project_id, runner_up.project_id]
    contest = world.stub.CreateCompetition(pb.CreateCompetitionRequest(unit_id=station.unit_id, name="站内评比",
                                                                       project_ids=ids),
                                           metadata=world.as_admin(station), timeout=10).competition.competition_id
    other = world.as_admin(sibling)
    calls = {
        "GetProject": lambda: world.stub.GetProject(pb.GetProjectRequest(project_id=pid), metadata=other, timeout=10),
        "ListProjects": lambda: world.stub.ListProjects(pb.ListProjectsRequest(unit_id=station.unit_id),
                                                        metadata=other, timeout=10),
        "ProposeProject": lambda: propose(world, station, other),
        "MoveProject": lambda: move(world, pid, P.PROJECT_STATUS_INCUBATING, other),
        "ReportProjectProgress": lambda: world.stub.ReportProjectProgress(pb.ReportProjectProgressRequest(
            project_id=pid, period="2026-01", summary="x"), metadata=other, timeout=10),
        "LinkProjectWork": lambda: world.stub.LinkProjectWork(pb.LinkProjectWorkRequest(
            project_id=pid, order_ids=["ord_01JD3Q8Y6P4M2T5R7W9X0Z1B3C"]), metadata=other, timeout=10),
        "CreateCompetition": lambda: world.stub.CreateCompetition(pb.CreateCompetitionRequest(
            unit_id=station.unit_id, name="越界评比", project_ids=ids), metadata=other, timeout=10),
        "ScoreCompetitionProject": lambda: world.stub.ScoreCompetitionProject(pb.ScoreCompetitionProjectRequest(
            competition_id=contest, project_id=pid, score=60), metadata=other, timeout=10),
        "CloseCompetition": lambda: world.stub.CloseCompetition(pb.CloseCompetitionRequest(competition_id=contest),
                                                                metadata=other, timeout=10),
        "GetCompetition": lambda: world.stub.GetCompetition(pb.GetCompetitionRequest(competition_id=contest),
                                                            metadata=other, timeout=10),
    }
    assert set(calls) == {m.name for m in pb.DESCRIPTOR.services_by_name["OrderingService"].methods
                          if m.name.endswith(("Project", "Projects", "ProjectProgress", "ProjectWork", "Competition",
                                              "CompetitionProject"))}
    for call in calls.values():
        with expect_error(DENIED):
            call()
    # the sibling's own list does not show it
    mine = world.stub.ListProjects(pb.ListProjectsRequest(), metadata=other, timeout=10).projects
    assert pid not in [p.project_id for p in mine]


def test_bad_input_is_refused_by_field(own_world, units):
    world = own_world
    station, _, institute = units
    admin = world.as_admin(station)
    for fields, field in [({"name": " "}, "name"), ({"category": 0}, "category"), ({"target_group": ""}, "target_group"),
                          ({"team_id": "tem_01JD3Q8Y6P4M2T5R7W9X0Z1B3C"}, "team_id"), ({"budget_source": "x" * 101},
                                                                                     "budget_source")]:
        request = pb.ProposeProjectRequest(unit_id=station.unit_id, name="好项目", category=c.SERVICE_CATEGORY_CARE_FOR_OTHERS,
                                           target_group="独居老人", plan="入户", budget_source="自筹")
        for name, value in fields.items():
            setattr(request, name, value)
        with expect_error(INVALID, field=field):
            world.stub.ProposeProject(request, metadata=admin, timeout=10)
    project = approved(world, station, institute)
    with expect_error(INVALID, field="to_status"):
        move(world, project.project_id, P.PROJECT_STATUS_DECLARED, institute)
    with expect_error(INVALID, field="period"):
        world.stub.ReportProjectProgress(pb.ReportProjectProgressRequest(project_id=project.project_id,
                                                                         period="2026-13", summary="x"),
                                         metadata=admin, timeout=10)
    with expect_error(INVALID, field="activity_ids"):
        world.stub.LinkProjectWork(pb.LinkProjectWorkRequest(project_id=project.project_id), metadata=admin,
                                   timeout=10)
    name = propose(world, station).name
    with expect_error(grpc.StatusCode.ALREADY_EXISTS):
        propose(world, station, name=name)


def test_a_competition_scored_once_per_reviewer_and_ranked(own_world, units, ordering_events):
    world = own_world
    station, sibling, institute = units
    first, second = approved(world, station, institute), approved(world, sibling, institute)
    competition = world.stub.CreateCompetition(pb.CreateCompetitionRequest(
        unit_id=world.institute.unit_id, name="首届志愿服务项目大赛", project_ids=[first.project_id, second.project_id]),
        metadata=institute, timeout=10).competition
    cid = competition.competition_id

    def score(project: pb.Project, points: int, token):
        return world.stub.ScoreCompetitionProject(pb.ScoreCompetitionProjectRequest(
            competition_id=cid, project_id=project.project_id, score=points), metadata=token, timeout=10).competition

    with expect_error(INVALID, field="score"):
        score(first, 101, institute)
    score(first, 80, institute)
    score(first, 90, world.as_center())
    score(second, 95, institute)
    with expect_error(PRECONDITION, contains="打过分"):
        score(first, 99, institute)
    with expect_error(DENIED):  # a station is no reviewer of the institute's competition
        score(second, 99, world.as_admin(station))
    with expect_error(INVALID, field="project_ids[0]"):  # only approved projects enter
        world.stub.CreateCompetition(pb.CreateCompetitionRequest(
            name="未立项", project_ids=[propose(world, station).project_id, first.project_id]),
            metadata=institute, timeout=10)

    closed = world.stub.CloseCompetition(pb.CloseCompetitionRequest(competition_id=cid), metadata=institute,
                                         timeout=10).competition
    assert closed.status == types_pb2.COMPETITION_STATUS_CLOSED
    assert [(e.project_id, e.scores, e.average_score, e.rank) for e in closed.entries] == [
        (second.project_id, 1, 95.0, 1), (first.project_id, 2, 85.0, 2)]
    with expect_error(PRECONDITION, contains="已结束"):
        score(second, 90, world.as_center())
    types = [envelope.event_type.rsplit(".", 1)[1] for envelope, _, _ in
             ordering_events.events(world.district.id, at_least=1, timeout=20, settle=2.0)
             if envelope.aggregate_id == cid]
    assert types == ["CompetitionCreated"] + ["CompetitionScored"] * 3 + ["CompetitionClosed"]
