"""The monthly statistics report (月报) without a network: which months may be asked for, which row a
record falls in, how a month's records add up (every unit row and category to the total), and the
workbook's title row and sheets; the command line builds its request."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest

from services.common.clock import CHINA
from services.common.errors import InvalidArgument
from services.common.export_cli import EXPORTS, parser
from services.common.exports import workbook
from services.common.validation import Validator
from services.common import monthly_rules as rules
from services.points.monthly_report import (
    CATEGORY_HEADERS, UNIT_HEADERS, month_caption, report_rows, report_sheets,
)
from services.common.monthly_rules import OWN, Activity, Figures, Hours, Order, Team, Volunteer, figures_msg
from wenming.common.v1 import common_pb2 as c
from wenming.points.v1 import points_pb2 as pb

NOW = dt.datetime(2026, 11, 30, 17, 0, tzinfo=dt.UTC)  # 1 December, 01:00 in China
NOVEMBER = rules.month_bounds(2026, 11)
# the station S with courtyards A and B
S, A, B = ["cen", "ins", "S"], ["cen", "ins", "S", "A"], ["cen", "ins", "S", "B"]
THEORY, CARE = c.SERVICE_CATEGORY_LECTURE_THEORY, c.SERVICE_CATEGORY_CARE_FOR_OTHERS


def at(day: int, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, 12, tzinfo=CHINA)


def month(text: str) -> tuple[int, int]:
    v = Validator()
    found = rules.validate_month(v, "month", text, NOW)
    v.check()
    return found


def test_a_month_is_yyyy_mm_this_month_in_china_or_earlier():
    assert month("2026-12") == (2026, 12)  # already December in China
    assert month(" 2026-01 ") == (2026, 1)
    assert month("2000-01") == (2000, 1)


@pytest.mark.parametrize("text, reason", [("2026-1", "YYYY-MM"), ("2026/11", "YYYY-MM"), ("", "YYYY-MM"),
                                          ("2026-13", "01 到 12"), ("2026-00", "01 到 12"),
                                          ("1999-12", "2000-01"), ("2027-01", "尚未开始")])
def test_a_bad_or_future_month_is_refused_naming_the_field_in_chinese(text, reason):
    with pytest.raises(InvalidArgument) as refused:
        month(text)
    assert [field for field, _ in refused.value.violations] == ["month"]
    assert reason in refused.value.violations[0][1]


def test_a_month_is_its_china_days():
    start, end = NOVEMBER
    assert start == dt.datetime(2026, 10, 31, 16, tzinfo=dt.UTC) and end == dt.datetime(2026, 11, 30, 16, tzinfo=dt.UTC)
    assert rules.month_bounds(2026, 12)[1] == dt.datetime(2026, 12, 31, 16, tzinfo=dt.UTC)


def test_a_record_falls_in_the_row_of_the_child_on_its_path():
    assert rules.row_of(A, "S") == "A"
    assert rules.row_of(A + ["deeper"], "S") == "A"
    assert rules.row_of(S, "S") == OWN
    assert rules.row_of(["cen", "other"], "S") is None


def _tally() -> rules.Tally:
    return rules.tally("S", ["A", "B"], NOVEMBER, [THEORY, CARE, c.SERVICE_CATEGORY_UNSPECIFIED],
                       volunteers=[Volunteer(A, at(3), 90),          # new in November, served
                                   Volunteer(A, at(3, 10), 0),       # registered in October
                                   Volunteer(B, None, 30),           # registered before dates were kept
                                   Volunteer(B, at(1, 12), 60),      # registered after the month
                                   Volunteer(S, at(30), 0)],         # the station's own, new
                       teams=[Team(A, at(2, 9)), Team(S, None), Team(B, at(2, 12))],
                       activities=[Activity(A, THEORY, 12), Activity(S, CARE, 5)],
                       orders=[Order(A, THEORY, True, 5), Order(A, CARE, True, 3), Order(B, CARE, False, 0)],
                       hours=[Hours(A, THEORY, 90, "v1"), Hours(B, CARE, 45, "v3"), Hours(B, CARE, -15, "v3"),
                              Hours(S, c.SERVICE_CATEGORY_UNSPECIFIED, 30, "v4")])


def test_each_record_is_counted_once_in_its_row_and_in_the_total():
    result = _tally()
    assert list(result.units) == ["A", "B", OWN]
    assert result.units["A"] == Figures(volunteers_registered=2, volunteers_new=1, volunteers_active=1, teams=1,
                                        activities_held=1, activity_participants=12, orders_placed=2,
                                        orders_completed=2, service_minutes=90, ratings=2, satisfied_ratings=1,
                                        rating_points=8)
    assert result.units["B"] == Figures(volunteers_registered=1, volunteers_active=1, orders_placed=1,
                                        service_minutes=30)
    assert result.units[OWN] == Figures(volunteers_registered=1, volunteers_new=1, teams=1, activities_held=1,
                                        activity_participants=5, service_minutes=30)
    added = Figures()
    for figures in result.units.values():
        added.add(figures)
    assert added == result.total
    assert result.total.satisfaction_centi == 400 and Figures().satisfaction_centi == 0


def test_categories_hold_activities_orders_and_hours_and_add_up_to_them():
    result = _tally()
    assert list(result.categories) == [THEORY, CARE, c.SERVICE_CATEGORY_UNSPECIFIED]
    assert result.categories[THEORY] == Figures(activities_held=1, activity_participants=12, orders_placed=1,
                                                orders_completed=1, service_minutes=90, ratings=1,
                                                satisfied_ratings=1, rating_points=5)
    assert result.categories[CARE].service_minutes == 30  # a reversal nets out
    assert result.categories[c.SERVICE_CATEGORY_UNSPECIFIED] == Figures(service_minutes=30)
    added = Figures()
    for figures in result.categories.values():
        added.add(figures)
    # volunteers and teams have no category: everything else adds up to the total
    assert added == Figures(**{**vars(result.total), "volunteers_registered": 0, "volunteers_new": 0,
                               "volunteers_active": 0, "teams": 0})


def _report() -> pb.MonthlyReport:
    result = _tally()
    return pb.MonthlyReport(
        unit=c.UnitRef(unit_id="S", name="东关街道实践站", level=c.UNIT_LEVEL_STATION), month="2026-11",
        district_name="凉州区新时代文明实践中心",
        units=[pb.MonthlyUnitRow(unit=c.UnitRef(unit_id="A", name="幸福小院", level=c.UNIT_LEVEL_COURTYARD),
                                 figures=figures_msg(result.units["A"])),
               pb.MonthlyUnitRow(unit=c.UnitRef(unit_id="B", name="和谐小院", level=c.UNIT_LEVEL_COURTYARD),
                                 figures=figures_msg(result.units["B"])),
               pb.MonthlyUnitRow(figures=figures_msg(result.units[OWN]))],
        categories=[pb.MonthlyCategoryRow(category=THEORY, label="讲理论", figures=figures_msg(result.categories[THEORY])),
                    pb.MonthlyCategoryRow(category=CARE, label="关爱他人", figures=figures_msg(result.categories[CARE]))],
        total=figures_msg(result.total))


def test_the_title_row_names_the_district_the_unit_and_the_month():
    assert month_caption("凉州区新时代文明实践中心", "东关街道实践站", 2026, 11) == \
        "凉州区新时代文明实践中心 东关街道实践站 2026年11月 志愿服务统计月报"
    assert month_caption("凉州区新时代文明实践中心", "凉州区新时代文明实践中心", 2026, 1) == \
        "凉州区新时代文明实践中心 2026年1月 志愿服务统计月报"


def test_the_workbook_has_a_sheet_by_unit_and_one_by_category_under_the_title_row():
    caption = "凉州区新时代文明实践中心 东关街道实践站 2026年11月 志愿服务统计月报"
    book = openpyxl.load_workbook(io.BytesIO(workbook(report_sheets(caption, report_rows(_report())))))
    assert book.sheetnames == ["按单位", "按服务类别"]

    units = [list(r) for r in book["按单位"].iter_rows(values_only=True)]
    assert units[0][0] == caption and units[1] == list(UNIT_HEADERS)
    assert [row[:2] for row in units[2:]] == [["幸福小院", "小院"], ["和谐小院", "小院"], ["本级", None], ["合计", None]]
    assert units[2][2:] == [2, 1, 1, 1, 1, 12, 2, 2, 1.5, 2, 1, 50, 4]
    assert units[-1][2:] == [4, 2, 2, 2, 2, 17, 3, 2, 2.5, 2, 1, 50, 4]

    categories = [list(r) for r in book["按服务类别"].iter_rows(values_only=True)]
    assert categories[0][0] == caption and categories[1] == list(CATEGORY_HEADERS)
    assert categories[2] == ["讲理论", 1, 12, 1, 1, 1.5, 1, 1, 100, 5]
    assert categories[-1] == ["合计", 2, 17, 3, 2, 2.5, 2, 1, 50, 4]


def test_the_command_line_builds_the_monthly_reports_request():
    args = parser().parse_args(["monthly", "--month", "2026-11", "--unit", "unt_1"])
    assert EXPORTS[args.command].request(args) == pb.StartMonthlyReportExportRequest(unit_id="unt_1", month="2026-11")
