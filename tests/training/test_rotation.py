"""Rotation plans (五年轮训 / 三年提升): a district of volunteers with backdated training (recorded as
historical completions) gives the right done / due / overdue counts per subtree."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
import urllib.request

import grpc
import pytest

from services.training.dates import add_months
from tests.support.grpc_helpers import expect_error
from tests.training.support import first_aid_content
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import registration_pb2 as reg
from wenming.training.v1 import training_pb2 as pb
from wenming.training.v1 import types_pb2 as ty

GENERAL, CORE = pb.ROTATION_PLAN_GENERAL, pb.ROTATION_PLAN_CORE


def _day(months_ago: int) -> str:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return add_months(today, -months_ago).date().isoformat()


def _counts(report) -> dict:
    return {c.plan: (c.volunteers, c.done, c.due, c.overdue) for c in report.counts}


@pytest.fixture
def campus(module_campus):
    """One district for the module."""
    return module_campus

def test_rotation_counts_from_backdated_training(campus, training):
    station, other_station = campus.tree.stations
    admin = campus.admin(station)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="no rotation policy"):
        campus.stub.GetRotationReport(pb.GetRotationReportRequest(unit_id=station.unit_id), metadata=admin, timeout=5)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED, contains="center"):
        campus.stub.SetRotationPolicy(pb.SetRotationPolicyRequest(
            general_cycle_years=5, core_cycle_years=3, notice_days=90, effective_from=_day(72)), metadata=admin,
            timeout=5)
    policy = campus.stub.SetRotationPolicy(pb.SetRotationPolicyRequest(
        general_cycle_years=5, core_cycle_years=3, notice_days=90, effective_from=_day(72)),
        metadata=campus.center, timeout=5).policy
    assert policy.version == 1 and policy.general_cycle_years == 5

    general = campus.course(first_aid_content(title="志愿服务通识", level=ty.COURSE_LEVEL_GENERAL,
                                              category=ty.COURSE_CATEGORY_BASICS, minutes=120, quiz=pb.Quiz(),
                                              required_for_tiers=[ty.VOLUNTEER_TIER_ALL], required_for_skills=[]))
    core_course = campus.course(first_aid_content(title="骨干志愿者能力提升", level=ty.COURSE_LEVEL_CORE,
                                                  category=ty.COURSE_CATEGORY_MANAGEMENT, minutes=480,
                                                  quiz=pb.Quiz(), required_for_skills=[]))
    # station 0: a..g; station 1: h
    where = {name: i % 2 for i, name in enumerate("abcdefg")} | {"h": 2}
    with ThreadPoolExecutor(4) as pool:
        people = dict(zip(where, pool.map(lambda n: campus.volunteer(where[n], name=f"志愿者{n}", login=False)[0],
                                          where), strict=True))

    def history(who: str, course, months_ago: int) -> None:
        campus.stub.RecordHistoricalCompletion(pb.RecordHistoricalCompletionRequest(
            volunteer_id=people[who].volunteer_id, course_id=course.course_id, completed_on=_day(months_ago),
            reason="2019年起线下培训台账补录"), metadata=admin if who != "h" else campus.admin(other_station),
            timeout=5)

    history("a", general, 12)           # general DONE
    history("b", general, 59)           # due within the 90-day notice: DUE
    history("c", general, 78)           # lapsed: OVERDUE
    #        d                            never trained; the plan started 6 years ago: OVERDUE
    history("e", core_course, 24)       # team leader: core DONE (and general DONE)
    history("f", core_course, 48)       # designated core: core OVERDUE, general DONE
    #        g                            team leader marked not core; never trained: general OVERDUE
    history("h", general, 24)           # the other station: general DONE
    for leader, team in (("e", "助老小队"), ("g", "环保小队")):
        campus.district.stub.CreateTeam(reg.CreateTeamRequest(unit_id=station.unit_id, name=team,
                                                              leader_volunteer_id=people[leader].volunteer_id),
                                        metadata=campus.center, timeout=5)
    campus.stub.SetCoreVolunteer(pb.SetCoreVolunteerRequest(volunteer_id=people["f"].volunteer_id, core=True,
                                                            reason="社区志愿服务骨干"), metadata=admin, timeout=5)
    not_core = campus.stub.SetCoreVolunteer(pb.SetCoreVolunteerRequest(
        volunteer_id=people["g"].volunteer_id, core=False, reason="已调离骨干岗位"), metadata=admin, timeout=5)
    assert not not_core.core

    def record(who: str):
        return campus.stub.GetTrainingRecord(pb.GetTrainingRecordRequest(volunteer_id=people[who].volunteer_id),
                                             metadata=campus.center, timeout=5).record

    # the completions and team leaders arrive as events: wait until training has them all
    assert wait_until(lambda: all(record(w).completions for w in "abcefh") and record("e").core_basis == "team_leader")
    b = record("b")
    assert b.completions[0].historical and b.completions[0].reason == "2019年起线下培训台账补录"
    assert [(s.plan, s.status) for s in b.rotation] == [(GENERAL, pb.ROTATION_STATUS_DUE)]
    assert general.course_id not in b.outstanding_course_ids
    assert general.course_id in record("d").outstanding_course_ids  # required for all volunteers
    f = record("f")
    assert (f.core, f.core_basis) == (True, "designated")
    assert {s.plan: s.status for s in f.rotation} == {GENERAL: pb.ROTATION_STATUS_DONE,
                                                       CORE: pb.ROTATION_STATUS_OVERDUE}

    report = campus.stub.GetRotationReport(pb.GetRotationReportRequest(unit_id=station.unit_id), metadata=admin,
                                           timeout=5)
    #                                  volunteers, done, due, overdue
    assert _counts(report) == {GENERAL: (7, 3, 1, 3), CORE: (2, 1, 0, 1)}
    whole = campus.stub.GetRotationReport(pb.GetRotationReportRequest(), metadata=campus.center, timeout=5)
    assert _counts(whole) == {GENERAL: (8, 4, 1, 3), CORE: (2, 1, 0, 1)}

    overdue, token = [], ""
    while True:
        page = campus.stub.GetRotationReport(pb.GetRotationReportRequest(
            unit_id=station.unit_id, plan=GENERAL, status=pb.ROTATION_STATUS_OVERDUE,
            page=c.PageRequest(page_size=2, page_token=token)), metadata=admin, timeout=5)
        overdue += [e.volunteer_id for e in page.entries]
        token = page.page.next_page_token
        if not token:
            break
    assert sorted(overdue) == sorted(people[w].volunteer_id for w in "cdg")
    core_due = campus.stub.GetRotationReport(pb.GetRotationReportRequest(unit_id=station.unit_id, plan=CORE),
                                             metadata=admin, timeout=5).entries
    assert {e.volunteer_id: e.standing.status for e in core_due} == {
        people["e"].volunteer_id: pb.ROTATION_STATUS_DONE, people["f"].volunteer_id: pb.ROTATION_STATUS_OVERDUE}

    # the district's numbers reach Prometheus
    label = f'training_rotation_volunteers{{district_id="{campus.district.id}",plan="general",status="overdue"}} 3.0'

    def scraped() -> bool:
        with urllib.request.urlopen(f"{training.http_base}/metrics", timeout=5) as reply:
            return label in reply.read().decode()

    assert wait_until(scraped, timeout=15)

    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        campus.stub.GetRotationReport(pb.GetRotationReportRequest(unit_id=station.unit_id),
                                      metadata=campus.admin(other_station), timeout=5)
