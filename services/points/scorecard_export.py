"""The 三级创建 scorecard export (三级创建评分表, docs/points.md): a unit and each unit under it
with its grade for a month, quarter or year and every line's figures, through the kit's export jobs
(services/common/exports.py).

Each unit is graded by Grading.evaluate, the very computation GetUnitGrade answers with, so a row
of the file is what GetUnitGrade said of that unit when the page was read. The lines' records
(volunteer numbers, who recorded a document) stay out: the figures are the file, no personal data.

A page keeps one row per unit: the unit's cells, then LINE_CELLS cells per line of its grade;
`scorecard_sheets` spreads them into the summary (one row per unit, each criterion's points in a
column) and the lines (one row per unit and criterion). The file is an .xlsx of those sheets, or
(format PDF) a landscape A4 document of the same two tables.
"""

from __future__ import annotations

from services.common.auth import Principal
from services.common.exports import PDF_FILE, UNIT_LEVEL_NAMES, ExportJobs, FileFormat, Row, Sheet, WorkbookSource
from services.common.pdf import CjkFont, Document
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
FORMATS = {common_pb2.EXPORT_FORMAT_UNSPECIFIED: "xlsx", common_pb2.EXPORT_FORMAT_XLSX: "xlsx",
           common_pb2.EXPORT_FORMAT_PDF: "pdf"}
# relative widths of the PDF's columns after the unit id: the unit's name and the sentence get room
SUMMARY_WIDTHS = (3.0, 1.2, 1.0, 1.2, 1.4, 1.4)
CRITERION_WIDTH = 1.4
LINES_WIDTHS = (3.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 5.0)


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


def scorecard_pdf(font: CjkFont, title: str, sheets: list[Sheet]) -> bytes:
    """The sheets as tables of a landscape document, without the unit ids (a reader goes by the
    names; every figure is there)."""
    summary, lines = sheets
    doc = Document(font, title, landscape=True)
    doc.heading(title)
    for sheet, widths in ((summary, (*SUMMARY_WIDTHS, *[CRITERION_WIDTH] * (len(summary.headers) - UNIT_CELLS))),
                          (lines, LINES_WIDTHS)):
        doc.paragraph(sheet.title, size=14)
        doc.grid(sheet.headers[1:], [[str(cell) for cell in row[1:]] for row in sheet.rows], widths, size=9)
    return doc.content()


class ScorecardSource(WorkbookSource):
    kind = common_pb2.EXPORT_KIND_SCORECARDS
    title = "三级创建评分表"

    def __init__(self, directory: Directory, grading: Grading, font: CjkFont):
        self.directory = directory
        self.grading = grading
        self.font = font

    def file_format(self, params: dict) -> FileFormat:
        # jobs stored before the PDF variant hold no format: they were workbooks
        return PDF_FILE if params.get("format") == "pdf" else super().file_format(params)

    def render(self, job: dict, rows: list[Row]) -> bytes:
        if self.file_format(job["params"]) != PDF_FILE:
            return super().render(job, rows)
        return scorecard_pdf(self.font, f"{self.title} {job['unit_name']} {self._period(job)}", self.sheets(job, rows))

    @staticmethod
    def _period(job: dict) -> str:
        return period_label(pb.Period(**job["params"]["period"]))

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
        return scorecard_sheets(self._period(job), rows)


def start_scorecards(exports: ExportJobs, directory: Directory, principal: Principal,
                     req: pb.StartScorecardExportRequest) -> dict:
    """StartScorecardExport: unit admins, for a unit of their own subtree, as StartHoursExport."""
    v = Validator()
    unit_id = v.ident("unit_id", req.unit_id, required=False) or principal.unit_id
    period = validate_period(v, "period", req.period)
    if req.format not in FORMATS:
        v.fail("format", "应为 EXPORT_FORMAT_XLSX 或 EXPORT_FORMAT_PDF")
    v.check()
    unit = reported_unit(directory, principal, unit_id, ScorecardSource.title)
    return exports.start(principal, ScorecardSource.kind, unit, {
        "period": {"year": period.year, "month": period.month, "quarter": period.quarter},
        "format": FORMATS[req.format]})
