"""三级创建 as the seeds grade it, in memory: a unit that earns 示范级 from its records and one that
stays 创建级, every line of the explanation checked; the district's own scheme; who may record a
grade, and a changed grade refused without evidence."""

from __future__ import annotations

import pytest

from services.common.auth import Principal, Role
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.validation import Validator
from services.points import grading_rules as rules
from services.points.grading_rules import C, G, Measure
from wenming.points.v1 import points_pb2 as pb

THRIVING = {  # a station with a venue, a team, 12 volunteers, 5 activities, a brand project, a rule document
    C.GRADING_CRITERION_VENUES: Measure(1, records=(("ven_1", "文明实践站（功能室2间）"),)),
    C.GRADING_CRITERION_TEAMS: Measure(1, records=(("tem_1", "红马甲志愿服务队"),)),
    C.GRADING_CRITERION_ACTIVE_VOLUNTEERS: Measure(12, records=(("vol_1", "志愿者编号 1"),), records_total=12),
    C.GRADING_CRITERION_ACTIVITIES: Measure(5, records=tuple((f"act_{i}", f"活动{i}") for i in range(5))),
    C.GRADING_CRITERION_PROJECTS: Measure(1, records=(("prj_1", "银龄互助"),)),
    C.GRADING_CRITERION_BRAND_PROJECT: Measure(1, records=(("prj_1", "银龄互助"),)),
    C.GRADING_CRITERION_RULES: Measure(1, records=(("gev_1", "《志愿服务管理制度》"),)),
    C.GRADING_CRITERION_RESPONSE: Measure(10),
    C.GRADING_CRITERION_COMPLETION: Measure(100),
    C.GRADING_CRITERION_SATISFACTION: Measure(480),
}
BARE = {  # a station with nothing recorded but one late, unfinished order
    C.GRADING_CRITERION_VENUES: Measure(0), C.GRADING_CRITERION_TEAMS: Measure(0),
    C.GRADING_CRITERION_ACTIVE_VOLUNTEERS: Measure(0), C.GRADING_CRITERION_ACTIVITIES: Measure(0),
    C.GRADING_CRITERION_PROJECTS: Measure(0), C.GRADING_CRITERION_BRAND_PROJECT: Measure(0),
    C.GRADING_CRITERION_RULES: Measure(0), C.GRADING_CRITERION_RESPONSE: Measure(2880),
    C.GRADING_CRITERION_COMPLETION: Measure(0), C.GRADING_CRITERION_SATISFACTION: Measure(0, applicable=False),
}

# (criterion, measures, value, threshold, met, points, explanation)
LINES = [
    (C.GRADING_CRITERION_VENUES, THRIVING, 1, 1, True, 15, "1处 ≥ 1处，得15分（满分15分）"),
    (C.GRADING_CRITERION_TEAMS, THRIVING, 1, 1, True, 10, "1支 ≥ 1支，得10分（满分10分）"),
    (C.GRADING_CRITERION_ACTIVE_VOLUNTEERS, THRIVING, 12, 10, True, 10, "12人 ≥ 10人，得10分（满分10分）"),
    (C.GRADING_CRITERION_ACTIVITIES, THRIVING, 5, 4, True, 15, "5场 ≥ 4场（每月4场×1个月），得15分（满分15分）"),
    (C.GRADING_CRITERION_PROJECTS, THRIVING, 1, 1, True, 10, "1个 ≥ 1个，得10分（满分10分）"),
    (C.GRADING_CRITERION_BRAND_PROJECT, THRIVING, 1, 1, True, 5, "1个 ≥ 1个，得5分（满分5分）"),
    (C.GRADING_CRITERION_RULES, THRIVING, 1, 1, True, 10, "1份 ≥ 1份，得10分（满分10分）"),
    (C.GRADING_CRITERION_RESPONSE, THRIVING, 10, 1440, True, 10, "10分钟 ≤ 1440分钟，得10分（满分10分）"),
    (C.GRADING_CRITERION_COMPLETION, THRIVING, 100, 85, True, 10, "100% ≥ 85%，得10分（满分10分）"),
    (C.GRADING_CRITERION_SATISFACTION, THRIVING, 480, 400, True, 10, "480 ≥ 400，得10分（满分10分）"),
    (C.GRADING_CRITERION_VENUES, BARE, 0, 1, False, 0, "0处 ＜ 1处，得0分（满分15分）"),
    (C.GRADING_CRITERION_TEAMS, BARE, 0, 1, False, 0, "0支 ＜ 1支，得0分（满分10分）"),
    (C.GRADING_CRITERION_ACTIVE_VOLUNTEERS, BARE, 0, 10, False, 0, "0人 ＜ 10人，得0分（满分10分）"),
    (C.GRADING_CRITERION_ACTIVITIES, BARE, 0, 4, False, 0, "0场 ＜ 4场（每月4场×1个月），得0分（满分15分）"),
    (C.GRADING_CRITERION_PROJECTS, BARE, 0, 1, False, 0, "0个 ＜ 1个，得0分（满分10分）"),
    (C.GRADING_CRITERION_BRAND_PROJECT, BARE, 0, 1, False, 0, "0个 ＜ 1个，得0分（满分5分）"),
    (C.GRADING_CRITERION_RULES, BARE, 0, 1, False, 0, "0份 ＜ 1份，得0分（满分10分）"),
    (C.GRADING_CRITERION_RESPONSE, BARE, 2880, 1440, False, 0, "2880分钟 ＞ 1440分钟，得0分（满分10分）"),
    (C.GRADING_CRITERION_COMPLETION, BARE, 0, 85, False, 0, "0% ＜ 85%，得0分（满分10分）"),
    (C.GRADING_CRITERION_SATISFACTION, BARE, 0, 400, True, 10, "本期无点单可计，按达标计，得10分（满分10分）"),
]


@pytest.mark.parametrize("criterion, measures, value, threshold, met, points, explanation", LINES)
def test_each_line_explains_value_threshold_and_points(criterion, measures, value, threshold, met, points,
                                                       explanation):
    lines = {line.criterion: line for line in rules.evaluate(measures, rules.DEFAULT_SCHEME, months=1).lines}
    line = lines[criterion]
    assert (line.value, line.threshold, line.met, line.points, line.explanation) == (
        value, threshold, met, points, explanation)
    assert line.label == rules.CRITERIA[criterion].label
    assert [(r.record_id, r.label) for r in line.records] == list(measures[criterion].records)


def test_the_thriving_station_earns_exemplary_and_the_bare_one_stays_building():
    thriving = rules.evaluate(THRIVING, rules.DEFAULT_SCHEME, months=1)
    assert (thriving.score, thriving.grade) == (105, G.SCORECARD_GRADE_EXEMPLARY)
    volunteers = next(line for line in thriving.lines if line.criterion == C.GRADING_CRITERION_ACTIVE_VOLUNTEERS)
    assert volunteers.records_total == 12 and len(volunteers.records) == 1  # only the first ones travel
    bare = rules.evaluate(BARE, rules.DEFAULT_SCHEME, months=1)
    assert (bare.score, bare.grade) == (10, G.SCORECARD_GRADE_BUILDING)


# the loop's figures (Boards.measure_loop) → (criterion, value, applicable, records_total)
LOOPS = [
    (pb.UnitScorecard(acknowledgements=2, avg_ack_seconds=601, orders=3, orders_cancelled=1, orders_completed=2,
                      ratings=2, satisfaction_centi=450),
     [(C.GRADING_CRITERION_RESPONSE, 11, True, 2), (C.GRADING_CRITERION_COMPLETION, 100, True, 2),
      (C.GRADING_CRITERION_SATISFACTION, 450, True, 2)]),
    (pb.UnitScorecard(acknowledgements=1, avg_ack_seconds=2 * 86400, orders=1),  # late and never done
     [(C.GRADING_CRITERION_RESPONSE, 2880, True, 1), (C.GRADING_CRITERION_COMPLETION, 0, True, 1),
      (C.GRADING_CRITERION_SATISFACTION, 0, False, 0)]),
    (pb.UnitScorecard(orders=1, orders_cancelled=1),  # nothing left to measure: counted as met
     [(C.GRADING_CRITERION_RESPONSE, 0, False, 0), (C.GRADING_CRITERION_COMPLETION, 0, False, 0),
      (C.GRADING_CRITERION_SATISFACTION, 0, False, 0)]),
]


@pytest.mark.parametrize("card, expected", LOOPS)
def test_the_loop_lines_measure_the_loops_figures_and_count_what_they_measured(card, expected):
    measures = rules.loop_measures(card)
    lines = {line.criterion: line for line in rules.evaluate({**BARE, **measures}, rules.DEFAULT_SCHEME, 1).lines}
    assert [(c, lines[c].value, lines[c].applicable, lines[c].records_total) for c, *_ in expected] == expected
    assert all(not lines[c].records for c, *_ in expected)  # counted, not listed


def test_the_deprecated_scorecard_is_the_grade_in_the_old_shape():
    loop = pb.UnitScorecard(stations=2, station_months=2, station_months_with_activity=1,
                            orders=3, orders_completed=2, acknowledgements=2, avg_ack_seconds=600,
                            avg_completion_seconds=7200, ratings=2, satisfaction_centi=500)
    result = rules.evaluate({**THRIVING, **rules.loop_measures(loop)}, rules.DEFAULT_SCHEME, months=1)
    grade = pb.UnitGrade(score=result.score, grade=result.grade, grade_label=rules.GRADE_LABEL[result.grade],
                         lines=result.lines)
    card = rules.scorecard_of(grade, loop)
    assert (card.grade, card.grade_label) == (G.SCORECARD_GRADE_EXEMPLARY, "示范级") == (grade.grade, grade.grade_label)
    assert (card.stations, card.station_months_with_activity, card.orders, card.avg_completion_seconds) == (2, 1, 3, 7200)
    assert [(ch.criterion, ch.label, ch.value, ch.applicable, ch.exemplary_threshold, ch.standard_threshold,
             ch.meets_exemplary, ch.meets_standard) for ch in card.checks] == [
        (C.Name(line.criterion).removeprefix("GRADING_CRITERION_").lower(), line.label, line.value, line.applicable,
         line.threshold, line.threshold, line.met, line.met) for line in grade.lines]
    assert [ch.criterion for ch in card.checks][-3:] == ["response", "completion", "satisfaction"]
    assert not loop.checks  # the loop's figures are not changed


def test_a_quarter_asks_the_monthly_activities_for_each_month_begun():
    line = next(line for line in rules.evaluate(THRIVING, rules.DEFAULT_SCHEME, months=3).lines
                if line.criterion == C.GRADING_CRITERION_ACTIVITIES)
    assert (line.threshold, line.met, line.points) == (12, False, 0)
    # 15 points short, but the brand project's bonus keeps the station on the 示范级 line
    quarter = rules.evaluate(THRIVING, rules.DEFAULT_SCHEME, months=3)
    assert (quarter.score, quarter.grade) == (90, G.SCORECARD_GRADE_EXEMPLARY)


def test_a_district_sets_its_own_weights_and_score_lines():
    msg = pb.GradingScheme(criteria=[pb.GradingCriterionRule(criterion=C.GRADING_CRITERION_ACTIVITIES, threshold=1,
                                                             points=60),
                                     pb.GradingCriterionRule(criterion=C.GRADING_CRITERION_RULES, threshold=2,
                                                             points=40)],
                           exemplary_min_score=100, standard_min_score=60)
    v = Validator()
    scheme = rules.validate(v, "rules.grading", msg)
    assert v.ok()
    result = rules.evaluate(THRIVING, scheme, months=1)
    assert [(line.criterion, line.points) for line in result.lines] == [
        (C.GRADING_CRITERION_ACTIVITIES, 60), (C.GRADING_CRITERION_RULES, 0)]
    assert (result.score, result.grade) == (60, G.SCORECARD_GRADE_STANDARD)
    assert rules.from_document(rules.to_document(scheme)) == scheme
    assert rules.validate(Validator(), "rules.grading", pb.GradingScheme()) == rules.DEFAULT_SCHEME


@pytest.mark.parametrize("msg, field", [
    (pb.GradingScheme(criteria=[pb.GradingCriterionRule(criterion=C.GRADING_CRITERION_RULES, threshold=1, points=10)] * 2,
                      exemplary_min_score=90, standard_min_score=70), "rules.grading.criteria[1].criterion"),
    (pb.GradingScheme(criteria=[pb.GradingCriterionRule(criterion=C.GRADING_CRITERION_RULES, threshold=1, points=101)],
                      exemplary_min_score=90, standard_min_score=70), "rules.grading.criteria[0].points"),
    (pb.GradingScheme(criteria=[pb.GradingCriterionRule(criterion=C.GRADING_CRITERION_RULES, threshold=1, points=10)],
                      exemplary_min_score=70, standard_min_score=70), "rules.grading.exemplary_min_score"),
])
def test_a_bad_scheme_is_refused_by_field(msg, field):
    v = Validator()
    rules.validate(v, "rules.grading", msg)
    with pytest.raises(InvalidArgument) as refused:
        v.check()
    assert [f for f, _ in refused.value.violations] == [field]


def test_a_changed_grade_stands_only_on_evidence_and_a_reason():
    rules.require_evidence_for_change(G.SCORECARD_GRADE_STANDARD, G.SCORECARD_GRADE_STANDARD, "", [])
    with pytest.raises(FailedPrecondition, match="须附证明材料"):
        rules.require_evidence_for_change(G.SCORECARD_GRADE_STANDARD, G.SCORECARD_GRADE_EXEMPLARY, "实地复核", [])
    with pytest.raises(InvalidArgument):
        rules.require_evidence_for_change(G.SCORECARD_GRADE_STANDARD, G.SCORECARD_GRADE_EXEMPLARY, "", ["gev_1"])
    rules.require_evidence_for_change(G.SCORECARD_GRADE_STANDARD, G.SCORECARD_GRADE_EXEMPLARY, "实地复核", ["gev_1"])


def _admin(unit_path: tuple[str, ...]) -> Principal:
    return Principal(subject="acc_1", district_id="dst_1", role=Role.ROLE_UNIT_ADMIN, unit_id=unit_path[-1],
                     unit_path=unit_path)


def test_only_an_admin_above_records_a_grade():
    station = ["unt_c", "unt_i", "unt_s1"]
    rules.require_reviewer(_admin(("unt_c", "unt_i")), station)
    with pytest.raises(PermissionDenied, match="上级"):
        rules.require_reviewer(_admin(("unt_c", "unt_i", "unt_s1")), station)
    with pytest.raises(PermissionDenied):
        rules.require_reviewer(_admin(("unt_c", "unt_i", "unt_s2")), station)


def test_a_retried_evidence_is_the_same_request_only_with_the_same_unit_and_fields():
    stored = {"unit": {"unit_id": "unit_1"}, "criterion": C.GRADING_CRITERION_RULES, "title": "《制度》",
              "document_url": "", "note": "", "recorded_by": "adm_1"}
    asked = {"criterion": C.GRADING_CRITERION_RULES, "title": "《制度》", "document_url": "", "note": ""}
    assert rules.same_evidence(stored, "unit_1", asked)
    assert not rules.same_evidence(stored, "unit_2", asked)
    assert not rules.same_evidence(stored, "unit_1", {**asked, "note": "补充"})



# ---- 必办项目: the district's mandatory items for the unit's level ----

TALKS = rules.MandatoryItem("neighbours_talk", "身边人讲身边事", 1, 0)

# (items, months, value, threshold, met, points, explanation, record labels)
MANDATORY = [
    ((TALKS,), 1, 0, 1, False, 0, "0项 ＜ 1项，得0分（满分10分）", ["身边人讲身边事：0场 ＜ 1场（每月1场×1个月）"]),
    ((rules.MandatoryItem("neighbours_talk", "身边人讲身边事", 1, 1),), 1, 1, 1, True, 10,
     "1项 ≥ 1项，得10分（满分10分）", ["身边人讲身边事：1场 ≥ 1场（每月1场×1个月）"]),
    ((rules.MandatoryItem("neighbours_talk", "身边人讲身边事", 1, 3), rules.MandatoryItem("theory", "小院讲堂", 2, 5)),
     3, 1, 2, False, 0, "1项 ＜ 2项，得0分（满分10分）",
     ["身边人讲身边事：3场 ≥ 3场（每月1场×3个月）", "小院讲堂：5场 ＜ 6场（每月2场×3个月）"]),
]


@pytest.mark.parametrize("items, months, value, threshold, met, points, explanation, labels", MANDATORY)
def test_the_mandatory_line_asks_each_item_its_monthly_minimum(items, months, value, threshold, met, points,
                                                               explanation, labels):
    result = rules.evaluate(THRIVING, rules.DEFAULT_SCHEME, months, items)
    line = result.lines[-1]
    assert line.criterion == C.GRADING_CRITERION_MANDATORY_ITEMS and line.label == "必办项目：按月完成"
    assert (line.value, line.threshold, line.met, line.points, line.explanation) == (
        value, threshold, met, points, explanation)
    assert [r.label for r in line.records] == labels and line.records_total == len(items)
    assert result.score == sum(line.points for line in result.lines)


def test_no_mandatory_items_no_line_and_the_scheme_sets_its_points():
    plain = rules.evaluate(THRIVING, rules.DEFAULT_SCHEME, 1)
    assert C.GRADING_CRITERION_MANDATORY_ITEMS not in {line.criterion for line in plain.lines}
    weighted = rules.Scheme(rules.DEFAULT_SCHEME.criteria + (
        rules.CriterionRule(C.GRADING_CRITERION_MANDATORY_ITEMS, 0, 20),), 90, 70)
    met = rules.evaluate(THRIVING, weighted, 1, (rules.MandatoryItem("neighbours_talk", "身边人讲身边事", 1, 1),))
    assert (met.lines[-1].points, met.lines[-1].max_points, met.score) == (20, 20, plain.score + 20)
    # a scheme naming the criterion shows no line where the district has no mandatory item
    assert len(rules.evaluate(THRIVING, weighted, 1).lines) == len(plain.lines)
