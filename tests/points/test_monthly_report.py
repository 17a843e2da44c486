"""The monthly statistics report (月报, docs/reporting.md) over the real stack: volunteers registered
and a team created through registration, an order placed, served, confirmed and rated and another
only placed, an activity held with a volunteer's hours — all through the real gRPC of registration
and ordering, reaching points as events — then GetMonthlyReport's figures for the station, row by
row and category by category; the workbook of StartMonthlyReportExport (and of the command line)
holds the same figures and totals; the refusals: another station, a courtyard asking for its
station, a volunteer, another admin fetching the file, bad and future months by field."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
from pathlib import Path

import grpc
import openpyxl
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.auth import TokenIssuer
from services.common.clock import CHINA
from tests.ordering.support import Clock, Ordering, World
from tests.support.exports import download, finished
from tests.support.grpc_helpers import expect_error
from tests.support.registration import District
from tests.support.stack import CATCH_UP_SECONDS
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as ord_pb
from wenming.points.v1 import points_pb2 as pb
from wenming.registration.v1 import registration_pb2 as reg

CARE, POLICY = c.SERVICE_CATEGORY_CARE_FOR_OTHERS, c.SERVICE_CATEGORY_LECTURE_POLICY
ACTIVITY_MINUTES = 30
# the columns of counts: volunteers, teams, activities, participants, orders, ratings (not hours or rates)
UNIT_COUNT_COLUMNS, CATEGORY_COUNT_COLUMNS = (2, 3, 4, 5, 6, 7, 8, 9, 11, 12), (1, 2, 3, 4, 6, 7)


@pytest.fixture(scope="module")
def clock(stack):
    clock = Clock(stack.data_dir / f"monthly-clock-{stack.run_id}")
    yield clock
    clock.path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def world(stack, registration, points, clock, mongo_client):
    """An ordering process of this module's own (its clock moves to serve orders and end
    activities) and a district built through registration."""
    proc = stack.service("ordering", port_offset=3, log_name="ordering-for-monthly",
                         extra_env={"CLOCK_OFFSET_FILE": str(clock.path)})
    proc.start()
    try:
        proc.wait_serving(90)
        ordering = Ordering(proc.grpc_target, mongo_client[f"{stack.db_prefix}ordering"])
        district = District(registration.grpc_target, registration.env)
        yield World(district, ordering, TokenIssuer(Path(stack.secrets["JWT_PRIVATE_KEY_FILE"]).read_text()))
        district.close()
        ordering.close()
    finally:
        proc.stop()


def _stamp(at: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def this_month() -> str:
    return dt.datetime.now(CHINA).strftime("%Y-%m")


def middle_of_last_month() -> dt.datetime:
    return dt.datetime.now(CHINA).replace(day=1, hour=12) - dt.timedelta(days=15)


@pytest.fixture(scope="module")
def month_of_records(world, clock):
    """Station 0's month: courtyard 0 has two volunteers, one of whom served an order its resident
    rated 5; courtyard 1 has a volunteer leading a team, who served 30 minutes at the courtyard's
    activity, and a resident's order nobody took yet (and another placed in the middle of last
    month). Returns the minutes the served order was confirmed with."""
    yard0, yard1 = world.courtyards[:2]
    server, _ = world.volunteers(yard0, 2, name="月报")
    helper = world.volunteer(yard1, name="月报队长")
    world.district.stub.CreateTeam(reg.CreateTeamRequest(unit_id=yard1.unit_id, name="月报服务队",
                                                         specialty=c.SKILL_HAIRCUT, leader_volunteer_id=helper.id),
                                   metadata=world.as_admin(yard1), timeout=10)
    resident0, resident1 = world.resident(yard0, "王大爷"), world.resident(yard1, "李奶奶")
    for resident_id, _ in (resident0, resident1):
        world.wait_resident_known(resident_id)
    try:
        served = world.served_order(resident0[1], server, clock)
        world.stub.ConfirmOrderHours(ord_pb.ConfirmOrderHoursRequest(order_id=served.order_id),
                                     metadata=world.holder(served), timeout=10)
        world.stub.RateOrder(ord_pb.RateOrderRequest(order_id=served.order_id, rating=5, comment="很好"),
                             metadata=resident0[1], timeout=10)
        world.place(resident1[1])
        clock.set((middle_of_last_month() - dt.datetime.now(CHINA)).total_seconds())
        world.place(resident1[1], "repair")  # last month's, by ordering's clock
        clock.set(0)  # the activity is planned to start soon by the real clock
        starts = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
        activity = world.stub.PlanActivity(ord_pb.PlanActivityRequest(
            title="政策宣讲会", description="讲讲新的养老政策", category=POLICY, location="小院活动室",
            starts_at=_stamp(starts), ends_at=_stamp(starts + dt.timedelta(minutes=ACTIVITY_MINUTES)),
            volunteer_capacity=2, resident_capacity=20), metadata=world.as_admin(yard1), timeout=10).activity
        world.stub.PublishActivity(ord_pb.PublishActivityRequest(activity_id=activity.activity_id),
                                   metadata=world.as_admin(yard1), timeout=10)
        world.stub.SignUpActivity(ord_pb.SignUpActivityRequest(activity_id=activity.activity_id),
                                  metadata=helper.token, timeout=10)
        clock.set(3600)
        world.stub.CompleteActivity(ord_pb.CompleteActivityRequest(
            activity_id=activity.activity_id, manual=[ord_pb.ManualHours(volunteer_id=helper.id,
                                                                         minutes=ACTIVITY_MINUTES)]),
            metadata=world.as_admin(yard1), timeout=10)
    finally:
        clock.set(0)
    return sum(h.minutes for h in world.get(served.order_id).hours)


def _report(stub, admin, unit, month: str | None = None) -> pb.MonthlyReport:
    return stub.GetMonthlyReport(pb.GetMonthlyReportRequest(unit_id=unit.unit_id, month=month or this_month()),
                                 metadata=admin, timeout=10).report


def _figures(**values: int) -> pb.MonthlyFigures:
    return pb.MonthlyFigures(**values)


def test_the_months_figures_by_unit_and_category(world, stub, month_of_records):
    order_minutes = month_of_records
    station, (yard0, yard1) = world.stations[0], world.courtyards[:2]
    admin = world.as_admin(station)
    assert order_minutes >= 44  # 45 minutes on site by ordering's clock

    report = wait_until(lambda: (r := _report(stub, admin, station)).total.service_minutes ==
                        order_minutes + ACTIVITY_MINUTES and r.total.ratings == 1 and r.total.activities_held == 1
                        and r.total.teams == 1 and r, CATCH_UP_SECONDS)
    assert report, _report(stub, admin, station)
    assert (report.unit.unit_id, report.month, report.district_name) == (station.unit_id, this_month(),
                                                                         world.center.name)
    rows = {row.unit.unit_id: row.figures for row in report.units}
    assert [row.unit.unit_id for row in report.units] == [yard0.unit_id, yard1.unit_id, ""]
    assert rows[yard0.unit_id] == _figures(
        volunteers_registered=2, volunteers_new=2, volunteers_active=1, orders_placed=1, orders_completed=1,
        service_minutes=order_minutes, ratings=1, satisfied_ratings=1, satisfaction_centi=500)
    assert rows[yard1.unit_id] == _figures(
        volunteers_registered=1, volunteers_new=1, volunteers_active=1, teams=1, activities_held=1,
        activity_participants=1, orders_placed=1, service_minutes=ACTIVITY_MINUTES)
    assert rows[""] == _figures()  # the station itself has nothing of its own this month
    assert report.total == _figures(
        volunteers_registered=3, volunteers_new=3, volunteers_active=2, teams=1, activities_held=1,
        activity_participants=1, orders_placed=2, orders_completed=1, service_minutes=order_minutes + ACTIVITY_MINUTES,
        ratings=1, satisfied_ratings=1, satisfaction_centi=500)

    categories = {row.category: row for row in report.categories}
    assert [row.category for row in report.categories][-1] == c.SERVICE_CATEGORY_UNSPECIFIED
    assert len(categories) == 11 and categories[CARE].label == "关爱他人"
    assert categories[CARE].figures == _figures(orders_placed=2, orders_completed=1, service_minutes=order_minutes,
                                                ratings=1, satisfied_ratings=1, satisfaction_centi=500)
    assert categories[POLICY].figures == _figures(activities_held=1, activity_participants=1,
                                                  service_minutes=ACTIVITY_MINUTES)
    assert all(row.figures == _figures() for category, row in categories.items() if category not in (CARE, POLICY))

    # the institute sees the same month with the station as one row
    above = _report(stub, world.as_admin(world.institute), world.institute)
    assert {row.unit.unit_id: row.figures for row in above.units}[station.unit_id] == report.total
    # last month holds only the order placed then: the volunteers and the team came after it
    last_month = middle_of_last_month().strftime("%Y-%m")
    before = wait_until(lambda: (r := _report(stub, admin, station, last_month)).total.orders_placed and r,
                        CATCH_UP_SECONDS)
    assert {row.unit.unit_id: row.figures for row in before.units}[yard1.unit_id] == _figures(orders_placed=1)
    assert before.total == _figures(orders_placed=1)
    assert {row.category: row.figures for row in before.categories}[CARE] == _figures(orders_placed=1)


def _workbook_rows(content: bytes) -> dict[str, list[list]]:
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    return {sheet.title: [list(r) for r in sheet.iter_rows(values_only=True)] for sheet in book.worksheets}


def _figure_cells(f: pb.MonthlyFigures) -> list:
    """What the sheets show of a row's figures after the volunteers and teams."""
    return [f.activities_held, f.activity_participants, f.orders_placed, f.orders_completed,
            round(f.service_minutes / 60, 1), f.ratings, f.satisfied_ratings,
            round(f.satisfied_ratings * 100 / f.ratings, 1) if f.ratings else 0, f.satisfaction_centi / 100]


def _check_workbook(content: bytes, report: pb.MonthlyReport, station, yards) -> None:
    sheets = _workbook_rows(content)
    assert list(sheets) == ["按单位", "按服务类别"]
    caption = f"{report.district_name} {station.name} {report.month[:4]}年{int(report.month[5:])}月 志愿服务统计月报"
    units, categories = sheets["按单位"], sheets["按服务类别"]
    assert units[0][0] == caption and categories[0][0] == caption
    assert units[1][:6] == ["单位", "层级", "注册志愿者（人）", "本月新注册（人）", "活跃志愿者（人）", "志愿服务队伍（支）"]
    assert [row[0] for row in units[2:]] == [yards[0].name, yards[1].name, "本级", "合计"]
    for row, expected in zip(units[2:], [*(r.figures for r in report.units), report.total], strict=True):
        assert row[2:] == [expected.volunteers_registered, expected.volunteers_new, expected.volunteers_active,
                           expected.teams, *_figure_cells(expected)]
    assert [row[0] for row in categories[2:]] == [*(r.label for r in report.categories), "合计"]
    for row, expected in zip(categories[2:], [*(r.figures for r in report.categories), report.total], strict=True):
        assert row[1:] == _figure_cells(expected)
    # every count's 合计 is the sum of the rows above it (hours are rounded per row, so not summed here)
    for sheet, columns in ((units, UNIT_COUNT_COLUMNS), (categories, CATEGORY_COUNT_COLUMNS)):
        for column in columns:
            assert sheet[-1][column] == sum(row[column] for row in sheet[2:-1]), sheet[1][column]


def test_the_workbook_holds_the_reports_figures_and_totals(world, stub, month_of_records, registration_db):
    station, yards = world.stations[0], world.courtyards[:2]
    admin = world.as_admin(station)
    report = wait_until(lambda: (r := _report(stub, admin, station)).total.ratings == 1 and r, CATCH_UP_SECONDS)
    started = stub.StartMonthlyReportExport(pb.StartMonthlyReportExportRequest(month=this_month()),
                                            metadata=admin, timeout=10).job
    assert started.kind == c.EXPORT_KIND_MONTHLY_REPORT and started.unit.unit_id == station.unit_id
    job = finished(stub, pb.GetExportJobRequest, started.job_id, admin)
    assert job.state == c.EXPORT_JOB_STATE_DONE, c.ExportJobState.Name(job.state)
    assert (job.total_rows, job.rows_done) == (2 + 2 + 11 + 1, 2 + 2 + 11 + 1)
    name, _, content = download(stub, pb.DownloadExportRequest, job.job_id, admin)
    assert name.startswith(f"志愿服务统计月报-{station.name}-")
    _check_workbook(content, report, station, yards)

    # another admin's token may not fetch it; points' record of the file reaches the audit record
    for other in (world.as_admin(world.stations[1]), world.as_admin(yards[0])):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            download(stub, pb.DownloadExportRequest, job.job_id, other)
    record = wait_until(lambda: registration_db.audit_records.find_one({"object_ids": job.job_id, "rows": 16}), 30)
    assert record["service"] == "points" and record["method"].endswith("/StartMonthlyReportExport")


def test_the_command_line_saves_the_same_workbook(world, stub, points, month_of_records, tmp_path):
    station, yards = world.stations[0], world.courtyards[:2]
    token = world.tree.admins[station.unit_id]
    report = wait_until(lambda: (r := _report(stub, world.as_admin(station), station)).total.ratings == 1 and r,
                        CATCH_UP_SECONDS)
    done = subprocess.run([sys.executable, "-m", "services.common.export_cli", "monthly", "--month", this_month()],
                          env={**points.env, "WENMING_TOKEN": token, "POINTS_GRPC_TARGET": points.grpc_target},
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    [saved] = tmp_path.glob(f"志愿服务统计月报-{station.name}-*.xlsx")
    _check_workbook(saved.read_bytes(), report, station, yards)


def test_other_units_and_people_are_refused(world, stub):
    station = world.stations[0]
    month = this_month()
    volunteer = world.volunteer(station, name="月报旁观")
    refused = ((world.as_admin(world.stations[1]), station), (world.as_admin(world.courtyards[0]), station),
               (world.as_admin(world.stations[1]), world.courtyards[0]), (volunteer.token, station))
    for token, unit in refused:
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            stub.GetMonthlyReport(pb.GetMonthlyReportRequest(unit_id=unit.unit_id, month=month), metadata=token,
                                  timeout=10)
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            stub.StartMonthlyReportExport(pb.StartMonthlyReportExportRequest(unit_id=unit.unit_id, month=month),
                                          metadata=token, timeout=10)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED, contains="只能查看本单位及下级单位"):
        stub.GetMonthlyReport(pb.GetMonthlyReportRequest(unit_id=station.unit_id, month=month),
                              metadata=world.as_admin(world.stations[1]), timeout=10)


@pytest.mark.parametrize("unit_id, month, field, reason", [
    ("", "2026/11", "month", "YYYY-MM"), ("", "", "month", "YYYY-MM"), ("", "2026-13", "month", "01 到 12"),
    ("", "2999-01", "month", "尚未开始"), ("not an id", "2026-01", "unit_id", ""),
])
def test_bad_input_is_refused_naming_the_field(world, stub, unit_id, month, field, reason):
    admin = world.as_admin(world.stations[0])
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field=field, contains=reason):
        stub.GetMonthlyReport(pb.GetMonthlyReportRequest(unit_id=unit_id, month=month), metadata=admin, timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field=field, contains=reason):
        stub.StartMonthlyReportExport(pb.StartMonthlyReportExportRequest(unit_id=unit_id, month=month),
                                      metadata=admin, timeout=10)
