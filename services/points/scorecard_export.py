"""The 三级创建 scorecard export (三级创建评分表, docs/points.md): a unit and each unit under it
with its grade for a month, quarter or year and every line's figures, through the kit's export jobs
(services/common/exports.py).

Each unit is graded by Grading.evaluate, the very computation GetUnitGrade answers with, so a row
of the file is what GetUnitGrade said of that unit when the page was read. The lines' records
(volunteer numbers, who recorded a document) stay out: the figures are the file, no personal data.

A page keeps one row per unit: the unit's cells, then LINE_CELLS cells per line of its grade;
`scorecard_sheets` spreads them into the summary (one row per unit, each criterion's points in a
column) and the lines (one row per unit and criterion).
"""

from __future__ import annotations

from services.common.auth import Principal
from services.common.exports import UNIT_LEVEL_NAMES, ExportJobs, Row, Sheet
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.points.v1 import points_pb2 as pb

from .directory import Directory
from .exports import reported_unit
from .grading import Grading
from .periods import validate_period

START_SCORECARD_EXPORT = f"/{pb.DESCRIPTOR.services_by_name['PointsService'].full_name}/StartScorecardExport"
# a unit's grade reads about ten small queries; twenty units keep a page well inside a runner's pass
PAGE_UNITS = 20
UNIT_HEADERS = ("单位编号", "单位", "层级", "得分", "等级", "示范级分数线", "达标级分数线")
LINE_HEADERS = ("指标", "实测值", "标准", "是否达标", "得分", "满分", "说明")
UNIT_CELLS, LINE_CELLS = len(UNIT_HEADERS), len(LINE_HEADERS)
LINES_TITLE = "评分明细"


def period_label(period: pb.Period) -> str:
    """2026年11月, 2026年第4季度 or 2026年: the period as a sheet's title names it."""
    if period.month:
        return f"{period.year}年{period.month}月"
    if period.quarter:
        return f"{period.year}年第{period.quarter}季度"
    return f"{period.year}年"


def unit_row(unit: dict, grade: pb.UnitGrade) -> Row:
    """The page row of one unit (read-model document) and its grade: the unit's cells, then each
    line's label, value, threshold, met, points, 赋分 and sentence."""
    row: Row = [unit["_id"], unit["name"], UNIT_LEVEL_NAMES[unit["level"]], grade.score, grade.grade_label,
                grade.exemplary_min_score, grade.standard_min_score]
    for line in grade.lines:
        row += [line.label, line.value, line.threshold, "是" if line.met else "否", line.points, line.max_points,
                line.explanation]
    return row


def _lines(row: Row) -> list[Row]:
    return [row[at:at + LINE_CELLS] for at in range(UNIT_CELLS, len(row), LINE_CELLS)]


def scorecard_sheets(period: str, rows: list[Row]) -> list[Sheet]:
    """The summary — per unit its cells and each criterion's points, a column per criterion in the
    order the scheme lists them (blank where a unit's grade has no such line) — then every line."""
    criteria = list(dict.fromkeys(line[0] for row in rows for line in _lines(row)))
    summary = []
    for row in rows:
        points = {line[0]: line[4] for line in _lines(row)}
        summary.append([*row[:UNIT_CELLS], *(points.get(label, "") for label in criteria)])
    lines = [[*row[:2], *line] for row in rows for line in _lines(row)]
    return [Sheet(f"三级创建 {period}", (*UNIT_HEADERS, *(f"{label} 得分" for label in criteria)), summary),
            Sheet(LINES_TITLE, (*UNIT_HEADERS[:2], *LINE_HEADERS), lines)]


class ScorecardSource:
    kind = common_pb2.EXPORT_KIND_SCORECARDS
    title = "三级创建评分表"

    def __init__(self, directory: Directory, grading: Grading):
        self.directory = directory
        self.grading = grading

    def _subtree(self, job: dict) -> dict:
        # a unit's path ends with the unit itself: the subtree's query holds its root
        return {"district_id": job["district_id"], "path": job["unit_id"]}

    def count(self, principal: Principal, job: dict) -> int:
        return self.directory.registry.units.count_documents(self._subtree(job))

    def page(self, principal: Principal, job: dict, cursor: str) -> tuple[list[Row], str]:
        # the starter must still run the unit: an admin moved elsewhere meanwhile gets no more pages
        self.directory.managed_unit(principal, job["unit_id"])
        query = self._subtree(job)
        if cursor:
            query["_id"] = {"$gt": cursor}
        units = list(self.directory.registry.units.find(query).sort("_id", 1).limit(PAGE_UNITS))
        period = pb.Period(**job["params"]["period"])
        rows = [unit_row(unit, self.grading.evaluate(job["district_id"], unit, period)) for unit in units]
        return rows, units[-1]["_id"] if len(units) == PAGE_UNITS else ""

    def sheets(self, job: dict, rows: list[Row]) -> list[Sheet]:
        return scorecard_sheets(period_label(pb.Period(**job["params"]["period"])), rows)


def start_scorecards(exports: ExportJobs, directory: Directory, principal: Principal,
                     req: pb.StartScorecardExportRequest) -> dict:
    """StartScorecardExport: unit admins, for a unit of their own subtree, as StartHoursExport."""
    v = Validator()
    unit_id = v.ident("unit_id", req.unit_id, required=False) or principal.unit_id
    period = validate_period(v, "period", req.period)
    v.check()
    unit = reported_unit(directory, principal, unit_id, ScorecardSource.title)
    return exports.start(principal, ScorecardSource.kind, unit, {
        "period": {"year": period.year, "month": period.month, "quarter": period.quarter}})
