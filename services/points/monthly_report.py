"""The monthly statistics report (月报, 数据上报, docs/reporting.md): a month's figures of a unit's
subtree — volunteers, teams, activities, orders, service hours, satisfaction — by child unit and
by service category, for GetMonthlyReport and, through the kit's export jobs, as a workbook a 市/省
文明办 takes (StartMonthlyReportExport).

Everything comes from what points already keeps from events: registration's volunteers and teams
(the kit's read models, with their registration and creation dates), ordering's order and activity
facts (scorecards.Facts), and the hours ledger. monthly_rules.tally adds them up; this module only
reads the month's records and translates.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from typing import cast

from prometheus_client import Histogram

from services.common import monthly_rules as rules
from services.common.auth import Principal
from services.common.clock import clock
from services.common.exports import UNIT_LEVEL_NAMES, ExportJobs, Row, Sheet, WorkbookSource
from services.common.validation import Validator
from services.common.readmodels import unit_ref_msg
from wenming.common.v1 import common_pb2
from wenming.points.v1 import points_pb2 as pb

from .certificates import CATEGORY_LABEL
from .directory import Directory
from .exports import reported_unit, first_unit_inside
from .models import LedgerEntry
from .scorecards import Facts

START_MONTHLY_REPORT_EXPORT = \
    f"/{pb.DESCRIPTOR.services_by_name['PointsService'].full_name}/StartMonthlyReportExport"
TITLE = "志愿服务统计月报"
UNCATEGORIZED = "其他（未分类）"
# every category has a row, zeros included (the layout a 文明办 expects), records without one last
CATEGORIES = (*CATEGORY_LABEL, common_pb2.SERVICE_CATEGORY_UNSPECIFIED)
FIGURE_HEADERS = ("活动场次", "活动参与人次", "点单数", "完成数", "服务时长（小时）", "评价数", "满意数",
                  "满意率（%）", "平均评分")
UNIT_HEADERS = ("单位", "层级", "注册志愿者（人）", "本月新注册（人）", "活跃志愿者（人）", "志愿服务队伍（支）",
                *FIGURE_HEADERS)
CATEGORY_HEADERS = ("服务类别", *FIGURE_HEADERS)
OWN_ROW, TOTAL_ROW = "本级", "合计"
UNIT_SHEET, CATEGORY_SHEET = "按单位", "按服务类别"

COMPUTE_SECONDS = Histogram("points_monthly_report_seconds", "Time to compute a monthly report (月报) of a subtree",
                            ["unit_level"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


def _category(value: int) -> common_pb2.ServiceCategory:
    # the tally keys categories as the stored ints; the messages' stubs want the enum's type
    return cast(common_pb2.ServiceCategory, value)


def category_label(category: int) -> str:
    return CATEGORY_LABEL.get(_category(category), UNCATEGORIZED)


def month_caption(district_name: str, unit_name: str, year: int, month: int) -> str:
    """The title row: 凉州区新时代文明实践中心 东关街道实践站 2026年11月 志愿服务统计月报."""
    where = unit_name if unit_name == district_name else f"{district_name} {unit_name}"
    return f"{where} {year}年{month}月 {TITLE}"


def figure_cells(f: pb.MonthlyFigures) -> Row:
    """The cells after the volunteers' and teams': hours rather than minutes, the share satisfied
    in per cent and the average rating, as a 文明办's form asks for them."""
    rate = round(f.satisfied_ratings * 100 / f.ratings, 1) if f.ratings else 0
    return [f.activities_held, f.activity_participants, f.orders_placed, f.orders_completed,
            round(f.service_minutes / 60, 1), f.ratings, f.satisfied_ratings, rate, f.satisfaction_centi / 100]


def report_rows(report: pb.MonthlyReport) -> list[Row]:
    """The workbook's rows, each led by its sheet's title: 按单位 — each child unit, 本级, 合计;
    按服务类别 — each category, 合计 (volunteers and teams have no category: that sheet leaves them out)."""
    units = [[name, level, f.volunteers_registered, f.volunteers_new, f.volunteers_active, f.teams, *figure_cells(f)]
             for name, level, f in [*((row.unit.name or OWN_ROW, UNIT_LEVEL_NAMES.get(row.unit.level, ""),
                                       row.figures) for row in report.units), (TOTAL_ROW, "", report.total)]]
    categories = [[row.label, *figure_cells(row.figures)] for row in report.categories]
    categories.append([TOTAL_ROW, *figure_cells(report.total)])
    return [[UNIT_SHEET, *row] for row in units] + [[CATEGORY_SHEET, *row] for row in categories]


def report_sheets(caption: str, rows: list[Row]) -> list[Sheet]:
    """The rows of report_rows spread into their sheets, each under the report's title row."""
    return [Sheet(title, headers, [row[1:] for row in rows if row[0] == title], caption=caption)
            for title, headers in ((UNIT_SHEET, UNIT_HEADERS), (CATEGORY_SHEET, CATEGORY_HEADERS))]


class MonthlyReports:
    def __init__(self, directory: Directory, facts: Facts):
        self.directory = directory
        self.facts = facts
        self.entries = LedgerEntry._get_collection()

    def get(self, principal: Principal, req: pb.GetMonthlyReportRequest) -> pb.MonthlyReport:
        """GetMonthlyReport: unit admins, for their unit or one below it."""
        unit, (year, month) = self.validated(principal, req.unit_id, req.month)
        return self.compute(principal.district_id, unit, year, month)

    def validated(self, principal: Principal, unit_id: str, month_text: str) -> tuple[dict, tuple[int, int]]:
        """The unit (authorized) and the month a request asks for."""
        v = Validator()
        unit_id = v.ident("unit_id", unit_id, required=False) or principal.unit_id
        month = rules.validate_month(v, "month", month_text, clock.now())
        v.check()
        return reported_unit(self.directory, principal, unit_id, TITLE, verb="查看"), month

    def district_name(self, district: str, unit: dict) -> str:
        """The name of the center at the top of the unit's path (凉州区新时代文明实践中心)."""
        center = self.directory.registry.unit(district, unit["path"][0])
        return str((center or unit)["name"])

    def compute(self, district: str, unit: dict, year: int, month: int) -> pb.MonthlyReport:
        """The report of the unit's subtree for the month, as GetMonthlyReport answers and the file holds."""
        started = time.perf_counter()
        span = rules.month_bounds(year, month)
        children = list(self.directory.registry.units.find({"district_id": district, "parent_id": unit["_id"]})
                        .sort("_id", 1))
        hours = self._hours(district, unit, span)
        result = rules.tally(unit["_id"], [c["_id"] for c in children], span, CATEGORIES,
                             volunteers=self._volunteers(district, unit, hours), teams=self._teams(district, unit),
                             activities=self._activities(district, unit, span), orders=self._orders(district, unit, span),
                             hours=hours)
        report = pb.MonthlyReport(
            unit=unit_ref_msg(unit), month=f"{year:04d}-{month:02d}", district_name=self.district_name(district, unit),
            units=[pb.MonthlyUnitRow(unit=unit_ref_msg(c), figures=rules.figures_msg(result.units[c["_id"]]))
                   for c in children] + [pb.MonthlyUnitRow(figures=rules.figures_msg(result.units[rules.OWN]))],
            categories=[pb.MonthlyCategoryRow(category=_category(c), label=category_label(c),
                                              figures=rules.figures_msg(f)) for c, f in result.categories.items()],
            total=rules.figures_msg(result.total))
        COMPUTE_SECONDS.labels(common_pb2.UnitLevel.Name(unit["level"])).observe(time.perf_counter() - started)
        return report

    # ---- the month's records of the subtree ----

    def _hours(self, district: str, unit: dict, span: tuple[dt.datetime, dt.datetime]) -> list[rules.Hours]:
        """Service minutes (verified and manual, reversals included) recorded inside the subtree."""
        found = self.entries.find(
            {"district_id": district, "book": {"$in": list(rules.HOURS_BOOKS)}, "unit_path": unit["_id"],
             "occurred_at": {"$gte": span[0], "$lt": span[1]}},
            {"account_id": 1, "amount": 1, "unit_path": 1, "cause": 1})
        return [rules.Hours(e["unit_path"], e.get("cause", {}).get("category", 0), e["amount"], e["account_id"])
                for e in found]

    def _volunteers(self, district: str, unit: dict, hours: list[rules.Hours]) -> list[rules.Volunteer]:
        minutes: dict[str, int] = defaultdict(int)
        for h in hours:
            minutes[h.volunteer_id] += h.minutes
        volunteers = []
        for v in self.directory.registry.volunteers.find({"district_id": district, "scope": unit["_id"]},
                                                         {"units": 1, "registered_at": 1}):
            home = first_unit_inside(v, unit["_id"])
            volunteers.append(rules.Volunteer(home["path"] if home else [], v.get("registered_at"), minutes[v["_id"]]))
        return volunteers

    def _teams(self, district: str, unit: dict) -> list[rules.Team]:
        return [rules.Team(t["unit_path"], t.get("created_at")) for t in self.directory.registry.teams.find(
            {"district_id": district, "unit_path": unit["_id"]}, {"unit_path": 1, "created_at": 1})]

    def _activities(self, district: str, unit: dict, span: tuple[dt.datetime, dt.datetime]) -> list[rules.Activity]:
        # facts kept before categories and participants were have neither (docs/reporting.md)
        return [rules.Activity(a["unit_path"], a.get("category", 0), a.get("participants", 0))
                for a in self.facts.activities.find(
                    {"district_id": district, "unit_path": unit["_id"], "completed": 1,
                     "starts_at": {"$gte": span[0], "$lt": span[1]}}, {"unit_path": 1, "category": 1, "participants": 1})]

    def _orders(self, district: str, unit: dict, span: tuple[dt.datetime, dt.datetime]) -> list[rules.Order]:
        return [rules.Order(o["origin_path"], o.get("category", 0), bool(o["completed"]), o["rating"])
                for o in self.facts.orders.find(
                    {"district_id": district, "origin_path": unit["_id"], "placed_at": {"$gte": span[0], "$lt": span[1]}},
                    {"origin_path": 1, "category": 1, "completed": 1, "rating": 1})]


class MonthlyReportSource(WorkbookSource):
    """The report as an export: one page, computed whole as GetMonthlyReport computes it."""

    kind = common_pb2.EXPORT_KIND_MONTHLY_REPORT
    title = TITLE

    def __init__(self, reports: MonthlyReports):
        self.reports = reports

    def count(self, principal: Principal, job: dict) -> int:
        # each child, 本级 and 合计 by unit; each category and 合计 by category
        children = self.reports.directory.registry.units.count_documents(
            {"district_id": job["district_id"], "parent_id": job["unit_id"]})
        return children + 2 + len(CATEGORIES) + 1

    def page(self, principal: Principal, job: dict, cursor: str) -> tuple[list[Row], str]:
        # the starter must still run the unit: an admin moved elsewhere meanwhile gets no file
        unit = reported_unit(self.reports.directory, principal, job["unit_id"], TITLE)
        params = job["params"]
        return report_rows(self.reports.compute(job["district_id"], unit, params["year"], params["month"])), ""

    def sheets(self, job: dict, rows: list[Row]) -> list[Sheet]:
        return report_sheets(job["params"]["caption"], rows)


def start_monthly_report(exports: ExportJobs, reports: MonthlyReports, principal: Principal,
                         req: pb.StartMonthlyReportExportRequest) -> dict:
    """StartMonthlyReportExport: the same admins and month as GetMonthlyReport."""
    unit, (year, month) = reports.validated(principal, req.unit_id, req.month)
    caption = month_caption(reports.district_name(principal.district_id, unit), unit["name"], year, month)
    return exports.start(principal, MonthlyReportSource.kind, unit, {"year": year, "month": month, "caption": caption})
