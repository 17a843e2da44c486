"""The 三级创建 scorecard export without a network: a unit's row carries its grade and every line's
figures as grading_rules gives them, the workbook spreads them into a summary and the lines, the
period names the sheet, and the command line builds each export's request."""

from __future__ import annotations

import io

import openpyxl

from services.common.export_cli import EXPORTS, parser
from services.common.exports import workbook
from services.points import grading_rules as rules
from services.points.grading_rules import C, GRADE_LABEL
from services.points.scorecard_export import LINE_HEADERS, UNIT_HEADERS, period_label, scorecard_sheets, unit_row
from tests.unit.test_grading_rules import BARE, THRIVING
from wenming.common.v1 import common_pb2 as c
from wenming.points.v1 import points_pb2 as pb
from wenming.registration.v1 import registration_pb2 as reg


def _graded(measures, scheme=rules.DEFAULT_SCHEME) -> pb.UnitGrade:
    """What Grading.evaluate answers for measures under a scheme, for one month."""
    result = rules.evaluate(measures, scheme, 1)
    return pb.UnitGrade(score=result.score, grade=result.grade, grade_label=GRADE_LABEL[result.grade],
                        exemplary_min_score=scheme.exemplary_min_score, standard_min_score=scheme.standard_min_score,
                        lines=result.lines)


STATION = {"_id": "unt_station", "name": "东关街道实践站", "level": c.UNIT_LEVEL_STATION}
COURTYARD = {"_id": "unt_courtyard", "name": "幸福小院", "level": c.UNIT_LEVEL_COURTYARD}


def test_period_label_names_a_month_a_quarter_or_a_year():
    assert period_label(pb.Period(year=2026, month=11)) == "2026年11月"
    assert period_label(pb.Period(year=2026, quarter=4)) == "2026年第4季度"
    assert period_label(pb.Period(year=2026)) == "2026年"


def test_a_units_row_holds_its_grade_and_each_lines_figures():
    grade = _graded(THRIVING)
    row = unit_row(STATION, grade)
    assert row[:len(UNIT_HEADERS)] == ["unt_station", "东关街道实践站", "实践站", 105, "示范级", 90, 70]
    first = grade.lines[0]
    assert row[len(UNIT_HEADERS):len(UNIT_HEADERS) + len(LINE_HEADERS)] == [
        first.label, 1, 1, "是", 15, 15, "1处 ≥ 1处，得15分（满分15分）"]
    assert len(row) == len(UNIT_HEADERS) + len(LINE_HEADERS) * len(rules.DEFAULT_SCHEME.criteria)


def test_the_workbook_has_a_summary_per_unit_and_every_line():
    thriving, bare = _graded(THRIVING), _graded(BARE)
    sheets = scorecard_sheets("2026年11月", [unit_row(STATION, thriving), unit_row(COURTYARD, bare)])
    book = openpyxl.load_workbook(io.BytesIO(workbook(sheets)))
    assert book.sheetnames == ["三级创建 2026年11月", "评分明细"]

    summary = [list(r) for r in book["三级创建 2026年11月"].iter_rows(values_only=True)]
    assert summary[0] == [*UNIT_HEADERS, *(f"{line.label} 得分" for line in thriving.lines)]
    assert summary[1] == ["unt_station", "东关街道实践站", "实践站", 105, "示范级", 90, 70,
                          *(line.points for line in thriving.lines)]
    assert summary[2][:5] == ["unt_courtyard", "幸福小院", "小院", bare.score, "创建级"]
    assert summary[2][len(UNIT_HEADERS):] == [line.points for line in bare.lines]

    lines = [list(r) for r in book["评分明细"].iter_rows(values_only=True)]
    assert lines[0] == ["单位编号", "单位", *LINE_HEADERS]
    assert len(lines) == 1 + len(thriving.lines) + len(bare.lines)
    satisfaction = bare.lines[-1]
    assert lines[-1] == ["unt_courtyard", "幸福小院", satisfaction.label, 0, 400, "是", 10, 10,
                         "本期无点单可计，按达标计，得10分（满分10分）"]


def test_a_criterion_missing_from_a_units_grade_is_blank_in_the_summary():
    without_brand = rules.Scheme(tuple(r for r in rules.DEFAULT_SCHEME.criteria
                                       if r.criterion != C.GRADING_CRITERION_BRAND_PROJECT), 90, 70)
    full, short = _graded(THRIVING), _graded(THRIVING, without_brand)
    summary, _ = scorecard_sheets("2026年", [unit_row(STATION, full), unit_row(COURTYARD, short)])
    brand = summary.headers.index(f"{rules.CRITERIA[C.GRADING_CRITERION_BRAND_PROJECT].label} 得分")
    assert summary.rows[0][brand] == 5 and summary.rows[1][brand] == ""


def test_the_command_line_builds_each_exports_request():
    def request(*argv: str):
        args = parser().parse_args(list(argv))
        return EXPORTS[args.command].request(args)

    assert request("scorecards", "--year", "2026", "--quarter", "4", "--unit", "unt_1") == \
        pb.StartScorecardExportRequest(unit_id="unt_1", period=pb.Period(year=2026, quarter=4))
    assert request("scorecards") == pb.StartScorecardExportRequest(period=pb.Period())
    assert request("hours", "--from", "2026-11-01", "--to", "2026-11-30") == \
        pb.StartHoursExportRequest(from_date="2026-11-01", to_date="2026-11-30")
    assert request("roster", "--status", "active") == \
        reg.StartRosterExportRequest(status=reg.VOLUNTEER_STATUS_ACTIVE)
