"""The hours and points export (docs/reporting.md) on the real stack: the workbook's figures for
each volunteer equal their account (GetAccount) over a range holding all their history, an older
entry falls outside a shorter range, the unit totals add up, another station's is refused and a bad
date names its field. The 三级创建 scorecard export (docs/points.md): each unit's grade and figures in
the workbook equal GetUnitGrade's for that unit; another station's subtree is refused, bad input
named by field."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import grpc
import openpyxl
import pytest

from services.common.clock import CHINA
from tests.points.support import ref, run_points
from tests.support.exports import download, finished, sheet_rows
from tests.support.grpc_helpers import bearer, expect_error, or_not_found
from tests.support.stack import CATCH_UP_SECONDS
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import events_pb2 as ordering
from wenming.points.v1 import points_pb2 as pb

VERIFIED, MANUAL = c.HOURS_SOURCE_VERIFIED, c.HOURS_SOURCE_MANUAL
C = pb.GradingCriterion


@pytest.fixture(scope="module")
def points(stack, registration, feed, clock_file):
    """This module's points process runs on a clock the tests can move (a file's expiry)."""
    yield from run_points(stack, CLOCK_OFFSET_FILE=str(clock_file))


@pytest.fixture(scope="module")
def tree(module_district, points):
    return module_district.small_tree()


def _export(stub, admin, unit, first: dt.date, last: dt.date) -> tuple[list, list, str]:
    """(detail rows, unit rows, job id) of the workbook of a finished export."""
    started = stub.StartHoursExport(pb.StartHoursExportRequest(unit_id=unit.unit_id, from_date=first.isoformat(),
                                                               to_date=last.isoformat()), metadata=admin, timeout=10).job
    job = finished(stub, pb.GetExportJobRequest, started.job_id, admin)
    assert job.state == c.EXPORT_JOB_STATE_DONE, c.ExportJobState.Name(job.state)
    name, _, content = download(stub, pb.DownloadExportRequest, job.job_id, admin)
    assert name.startswith(f"时长积分统计-{unit.name}-")
    _, rows = sheet_rows(content, 0)
    _, units = sheet_rows(content, 1)
    return rows, units, job.job_id


def test_hours_workbook_equals_the_accounts_and_adds_up_per_unit(module_district, tree, stub, feed, registration_db):
    d, station = module_district.id, tree.stations[0]
    admin = bearer(tree.admins[station.unit_id])
    people = [module_district.volunteer(tree.courtyards[i].unit_id, name=f"统计{i}") for i in (0, 1, 1)]
    ids = [p.volunteer_id for p in people]
    today = dt.datetime.now(CHINA).date()
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    events = []
    for i, volunteer in enumerate(ids):
        order = feed.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=tree.courtyards[i % 2], handling=station)
        events.append(feed.hours_confirmed(d, order, [(volunteer, 60 * (i + 1), VERIFIED), (volunteer, 15, MANUAL)],
                                           station))
        events.append(feed.training_hours(d, f"ses_{uuid.uuid4().hex[:12]}", volunteer, 30 + i, station))
    old = feed.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=tree.courtyards[0], handling=station)
    events.append(feed.hours_confirmed(d, old, [(ids[0], 600, VERIFIED)], station, occurred_at=long_ago))
    feed.send(*events)

    def account(volunteer_id: str) -> pb.Account | None:  # None: the ledger has not opened it yet
        reply = or_not_found(lambda: stub.GetAccount(pb.GetAccountRequest(account_id=volunteer_id), metadata=admin,
                                                     timeout=5))
        return reply.account if reply else None

    def credited() -> list[pb.Account] | None:
        found = [account(v) for v in ids]
        return found if all(a and a.verified_minutes and a.training_minutes for a in found) else None

    accounts = wait_until(credited, CATCH_UP_SECONDS)
    assert accounts[0].verified_minutes == 660

    rows, units, job_id = _export(stub, admin, station, today - dt.timedelta(days=500), today)
    by_number = {r[0]: r for r in rows[:-1]}
    assert set(by_number) == {p.volunteer_number for p in people}
    for person, a in zip(people, accounts, strict=True):
        assert by_number[person.volunteer_number][1:] == [
            person.name, tree.courtyards[0 if person is people[0] else 1].name,
            a.verified_minutes, a.manual_minutes, a.training_minutes, a.points]
    totals = [sum(getattr(a, f) for a in accounts)
              for f in ("verified_minutes", "manual_minutes", "training_minutes", "points")]
    assert rows[-1][0] == "合计" and rows[-1][3:] == totals
    assert units[-1] == ["合计", 3, *totals]
    assert {u[0]: u[1] for u in units[:-1]} == {tree.courtyards[0].name: 1, tree.courtyards[1].name: 2}
    # points' record of the file reaches the district's audit record in registration
    record = wait_until(lambda: registration_db.audit_records.find_one({"object_ids": job_id, "rows": 3}), 30)
    assert record["service"] == "points" and record["method"].endswith("/StartHoursExport")

    recent, _, _ = _export(stub, admin, station, today - dt.timedelta(days=30), today)
    assert {r[0]: r[3] for r in recent[:-1]}[people[0].volunteer_number] == 60  # the 400-day-old 600 min are out


def test_another_stations_hours_are_refused_and_bad_dates_named(module_district, tree, stub):
    admin = bearer(tree.admins[tree.stations[0].unit_id])
    today = dt.date.today().isoformat()
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        stub.StartHoursExport(pb.StartHoursExportRequest(unit_id=tree.stations[1].unit_id, from_date=today,
                                                         to_date=today), metadata=admin, timeout=10)
    for first, last, field in (("2026/11/01", today, "from_date"), (today, "", "to_date"),
                               ("2026-11-02", "2026-11-01", "to_date"), ("2010-01-01", "2026-01-01", "to_date")):
        with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field=field):
            stub.StartHoursExport(pb.StartHoursExportRequest(from_date=first, to_date=last), metadata=admin,
                                  timeout=10)


def test_a_file_past_its_day_is_expired_and_no_longer_served(tree, stub, clock_file):
    admin = bearer(tree.admins[tree.stations[1].unit_id])
    today = dt.date.today().isoformat()
    started = stub.StartHoursExport(pb.StartHoursExportRequest(from_date=today, to_date=today), metadata=admin,
                                    timeout=10).job
    job = finished(stub, pb.GetExportJobRequest, started.job_id, admin)
    assert job.state == c.EXPORT_JOB_STATE_DONE
    assert job.expires_at.seconds - job.finished_at.seconds == 24 * 3600
    try:
        clock_file.write_text(str(24 * 3600 + 60))
        # the clock file is read again within a few seconds
        assert wait_until(lambda: stub.GetExportJob(pb.GetExportJobRequest(job_id=job.job_id), metadata=admin,
                                                  timeout=5).job.state == c.EXPORT_JOB_STATE_EXPIRED, 10)
        with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="过期"):
            download(stub, pb.DownloadExportRequest, job.job_id, admin)
    finally:
        clock_file.write_text("0")


def test_scorecard_workbook_equals_each_units_grade(module_district, tree, stub, feed, registration_db):
    """Station 1's subtree: two active volunteers in one courtyard, a completed activity in the
    other, a rule document on the station; the file's rows are GetUnitGrade's, unit by unit."""
    d, station, yards = module_district.id, tree.stations[1], tree.courtyards[2:]
    admin = bearer(tree.admins[station.unit_id])
    for i in range(2):
        module_district.volunteer(yards[0].unit_id, name=f"评分{i}")
    now = dt.datetime.now(dt.UTC)
    activity = feed.activity(f"act_{uuid.uuid4().hex[:10]}", yards[1], starts_at=now)
    feed.send(feed.activity_event(ordering.ActivityCompleted(activity=activity, recorded_by=ref(station),
                                                             residents_attended=5), d, 3))
    stub.RecordGradeEvidence(pb.RecordGradeEvidenceRequest(unit_id=station.unit_id, criterion=C.GRADING_CRITERION_RULES,
                                                           title="《志愿服务管理制度》"), metadata=admin, timeout=10)
    china = now.astimezone(CHINA)
    period = pb.Period(year=china.year, month=china.month)

    def grade(unit) -> pb.UnitGrade:
        return stub.GetUnitGrade(pb.GetUnitGradeRequest(unit_id=unit.unit_id, period=period), metadata=admin,
                                 timeout=10).grade

    def heard_of_everything() -> bool:
        values = {line.criterion: line.value for line in grade(station).lines}
        return values[C.GRADING_CRITERION_ACTIVE_VOLUNTEERS] == 2 and values[C.GRADING_CRITERION_ACTIVITIES] == 1

    assert wait_until(heard_of_everything, CATCH_UP_SECONDS)
    expected = {unit.unit_id: grade(unit) for unit in (station, *yards)}

    started = stub.StartScorecardExport(pb.StartScorecardExportRequest(unit_id=station.unit_id, period=period),
                                        metadata=admin, timeout=10).job
    assert started.kind == c.EXPORT_KIND_SCORECARDS and started.unit.unit_id == station.unit_id
    job = finished(stub, pb.GetExportJobRequest, started.job_id, admin)
    assert job.state == c.EXPORT_JOB_STATE_DONE, c.ExportJobState.Name(job.state)
    assert (job.total_rows, job.rows_done) == (3, 3)
    name, _, content = download(stub, pb.DownloadExportRequest, job.job_id, admin)
    assert name.startswith(f"三级创建评分表-{station.name}-")
    assert openpyxl.load_workbook(io.BytesIO(content), read_only=True).sheetnames == [
        f"三级创建 {china.year}年{china.month}月", "评分明细"]
    headers, summary = sheet_rows(content, 0)
    _, lines = sheet_rows(content, 1)

    assert {row[0] for row in summary} == set(expected)
    for row in summary:
        unit_grade = expected[row[0]]
        assert row[1:7] == [unit_grade.unit.name, "实践站" if row[0] == station.unit_id else "小院", unit_grade.score,
                            unit_grade.grade_label, unit_grade.exemplary_min_score, unit_grade.standard_min_score]
        assert headers[7:] == [f"{line.label} 得分" for line in unit_grade.lines]
        assert row[7:] == [line.points for line in unit_grade.lines]
    for unit_id, unit_grade in expected.items():
        assert [row[2:] for row in lines if row[0] == unit_id] == [
            [line.label, line.value, line.threshold, "是" if line.met else "否", line.points, line.max_points,
             line.explanation] for line in unit_grade.lines]
    measured = {line.criterion: line.value for line in expected[station.unit_id].lines if line.value}
    assert measured == {C.GRADING_CRITERION_ACTIVE_VOLUNTEERS: 2, C.GRADING_CRITERION_ACTIVITIES: 1,
                        C.GRADING_CRITERION_RULES: 1}

    # another station's admin may not fetch it; points' record of the file reaches the audit record
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        download(stub, pb.DownloadExportRequest, job.job_id, bearer(tree.admins[tree.stations[0].unit_id]))
    record = wait_until(lambda: registration_db.audit_records.find_one({"object_ids": job.job_id, "rows": 3}), 30)
    assert record["service"] == "points" and record["method"].endswith("/StartScorecardExport")


def test_another_stations_scorecards_are_refused_and_bad_input_named(tree, stub):
    admin = bearer(tree.admins[tree.stations[0].unit_id])
    for theirs in (tree.stations[1], tree.courtyards[2]):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            stub.StartScorecardExport(pb.StartScorecardExportRequest(unit_id=theirs.unit_id), metadata=admin,
                                      timeout=10)
    for request, field in ((pb.StartScorecardExportRequest(unit_id="not an id"), "unit_id"),
                           (pb.StartScorecardExportRequest(period=pb.Period(month=13)), "period.month"),
                           (pb.StartScorecardExportRequest(period=pb.Period(month=1, quarter=1)), "period.quarter")):
        with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field=field):
            stub.StartScorecardExport(request, metadata=admin, timeout=10)
