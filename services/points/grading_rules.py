"""三级创建 as the seeds grade it: a district's criteria with 赋分, and the grade a unit's measured
records earn, explained line by line. Plain functions of (measures, scheme), tested in
tests/unit/test_grading_rules.py; measuring lives in grading.py.

Each criterion gives its points when the measured value meets its threshold, nothing otherwise;
the total decides the grade (示范级 / 达标级 / 创建级). The loop's criteria (response, completion,
satisfaction) with nothing to measure count as met, as the loop's scorecard always counted them:
a station nobody ordered from is not failed for it. The deprecated GetUnitScorecard answers this
grade too, reshaped by `scorecard_of` — one grade, computed once.

必办项目: where the district's menu taxonomy (ordering) marks items mandatory for the unit's level,
one more line checks that each ran at least its monthly minimum × the months begun, counting the
completed activities of the unit's subtree that carry the item's code. It is worth the points the
scheme gives GRADING_CRITERION_MANDATORY_ITEMS, else MANDATORY_DEFAULT_POINTS; a district without
mandatory items for the level has no such line, so nothing changes for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.auth import Principal
from services.common.validation import Validator
from wenming.points.v1 import points_pb2 as pb

C = pb.GradingCriterion
G = pb.ScorecardGrade
GRADE_LABEL = {G.SCORECARD_GRADE_EXEMPLARY: "示范级", G.SCORECARD_GRADE_STANDARD: "达标级",
               G.SCORECARD_GRADE_BUILDING: "创建级"}
RECORDS_SHOWN = 20


@dataclass(frozen=True)
class Criterion:
    """How a criterion reads to people: its label, the measure's unit, and its direction."""

    label: str
    unit: str
    lower_is_better: bool = False
    loop: bool = False  # measured from orders: nothing to measure counts as met


CRITERIA = {
    C.GRADING_CRITERION_VENUES: Criterion("有场所：阵地（含在用功能室）", "处"),
    C.GRADING_CRITERION_TEAMS: Criterion("有队伍：志愿服务队", "支"),
    C.GRADING_CRITERION_ACTIVE_VOLUNTEERS: Criterion("有队伍：在册志愿者", "人"),
    C.GRADING_CRITERION_ACTIVITIES: Criterion("有活动：完成的活动", "场"),
    C.GRADING_CRITERION_PROJECTS: Criterion("有项目：立项的志愿服务项目", "个"),
    C.GRADING_CRITERION_BRAND_PROJECT: Criterion("有项目：品牌项目（加分）", "个"),
    C.GRADING_CRITERION_RULES: Criterion("有机制：制度文件", "份"),
    C.GRADING_CRITERION_RESPONSE: Criterion("点单响应：平均受理用时", "分钟", lower_is_better=True, loop=True),
    C.GRADING_CRITERION_COMPLETION: Criterion("办结率", "%", loop=True),
    C.GRADING_CRITERION_SATISFACTION: Criterion("群众满意度（平均评分×100）", "", loop=True),
    C.GRADING_CRITERION_MANDATORY_ITEMS: Criterion("必办项目：按月完成", "项"),
}
MANDATORY_DEFAULT_POINTS = 10


@dataclass(frozen=True)
class CriterionRule:
    criterion: int
    threshold: int
    points: int


@dataclass(frozen=True)
class Scheme:
    criteria: tuple[CriterionRule, ...]
    exemplary_min_score: int
    standard_min_score: int


# national defaults: the five 有 and the loop make 100 points, a brand project 5 more;
# 周有活动 is four activities a month
DEFAULT_SCHEME = Scheme(criteria=(
    CriterionRule(C.GRADING_CRITERION_VENUES, 1, 15),
    CriterionRule(C.GRADING_CRITERION_TEAMS, 1, 10),
    CriterionRule(C.GRADING_CRITERION_ACTIVE_VOLUNTEERS, 10, 10),
    CriterionRule(C.GRADING_CRITERION_ACTIVITIES, 4, 15),
    CriterionRule(C.GRADING_CRITERION_PROJECTS, 1, 10),
    CriterionRule(C.GRADING_CRITERION_BRAND_PROJECT, 1, 5),
    CriterionRule(C.GRADING_CRITERION_RULES, 1, 10),
    CriterionRule(C.GRADING_CRITERION_RESPONSE, 24 * 60, 10),
    CriterionRule(C.GRADING_CRITERION_COMPLETION, 85, 10),
    CriterionRule(C.GRADING_CRITERION_SATISFACTION, 400, 10),
), exemplary_min_score=90, standard_min_score=70)


@dataclass(frozen=True)
class Measure:
    """What the records show for one criterion: the value, whether there was anything to measure,
    and the records that counted as (id, label)."""

    value: int
    applicable: bool = True
    records: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    records_total: int | None = None  # when `records` holds only the first ones, or none (the loop's)


@dataclass(frozen=True)
class MandatoryItem:
    """A mandatory item of the unit's level and how many completed activities carried it."""

    code: str
    name: str
    min_per_month: int
    done: int


@dataclass(frozen=True)
class Evaluation:
    lines: tuple[pb.GradeLine, ...]
    score: int
    grade: int


def evaluate(measures: dict[int, Measure], scheme: Scheme, months: int,
             mandatory: tuple[MandatoryItem, ...] = ()) -> Evaluation:
    """The grade the measures earn under the scheme; `months` is how many months of the period
    have begun (the activities' and mandatory items' thresholds are per month); `mandatory`: the
    district's mandatory items for the unit's level, if any."""
    months = max(months, 1)
    lines = tuple(_line(rule, measures[rule.criterion], months) for rule in scheme.criteria
                  if rule.criterion != C.GRADING_CRITERION_MANDATORY_ITEMS)
    if mandatory:
        points = next((r.points for r in scheme.criteria if r.criterion == C.GRADING_CRITERION_MANDATORY_ITEMS),
                      MANDATORY_DEFAULT_POINTS)
        lines += (mandatory_line(mandatory, points, months),)
    score = sum(line.points for line in lines)
    if score >= scheme.exemplary_min_score:
        grade = G.SCORECARD_GRADE_EXEMPLARY
    elif score >= scheme.standard_min_score:
        grade = G.SCORECARD_GRADE_STANDARD
    else:
        grade = G.SCORECARD_GRADE_BUILDING
    return Evaluation(lines, score, grade)


def loop_measures(card: pb.UnitScorecard) -> dict[int, Measure]:
    """The loop's three criteria from its figures (Boards.measure_loop), each counting what it
    measured (acknowledgements, orders not cancelled, rated orders) without listing them."""
    live_orders = card.orders - card.orders_cancelled
    return {
        C.GRADING_CRITERION_RESPONSE: Measure(math.ceil(card.avg_ack_seconds / 60), card.acknowledgements > 0,
                                              records_total=card.acknowledgements),
        C.GRADING_CRITERION_COMPLETION: Measure(card.orders_completed * 100 // live_orders if live_orders else 0,
                                                live_orders > 0, records_total=live_orders),
        C.GRADING_CRITERION_SATISFACTION: Measure(card.satisfaction_centi, card.ratings > 0,
                                                  records_total=card.ratings),
    }


def scorecard_of(grade: pb.UnitGrade, loop: pb.UnitScorecard) -> pb.UnitScorecard:
    """The deprecated GetUnitScorecard's answer: `grade` (GetUnitGrade's) in the old shape, with the
    loop's figures measured for it and one check per line. A 赋分 scheme has one threshold per
    criterion, so both of a check's thresholds are the line's, and both "meets" say it is met."""
    card = pb.UnitScorecard()
    card.CopyFrom(loop)
    card.grade, card.grade_label = grade.grade, grade.grade_label
    card.checks.extend(pb.GradeCheck(
        criterion=C.Name(line.criterion).removeprefix("GRADING_CRITERION_").lower(), label=line.label,
        value=line.value, applicable=line.applicable, exemplary_threshold=line.threshold,
        standard_threshold=line.threshold, meets_exemplary=line.met, meets_standard=line.met) for line in grade.lines)
    return card


def _line(rule: CriterionRule, measure: Measure, months: int) -> pb.GradeLine:
    about = CRITERIA[rule.criterion]
    threshold = rule.threshold * months if rule.criterion == C.GRADING_CRITERION_ACTIVITIES else rule.threshold
    if not measure.applicable:
        met, words = True, "本期无点单可计，按达标计"
    else:
        met = measure.value <= threshold if about.lower_is_better else measure.value >= threshold
        sign = ("≤" if about.lower_is_better else "≥") if met else ("＞" if about.lower_is_better else "＜")
        words = f"{measure.value}{about.unit} {sign} {threshold}{about.unit}"
        if rule.criterion == C.GRADING_CRITERION_ACTIVITIES:
            words += f"（每月{rule.threshold}场×{months}个月）"
    points = rule.points if met else 0
    return pb.GradeLine(
        criterion=rule.criterion, label=about.label, value=measure.value, threshold=threshold,
        lower_is_better=about.lower_is_better, applicable=measure.applicable, met=met, points=points,
        max_points=rule.points, explanation=f"{words}，得{points}分（满分{rule.points}分）",
        records=[pb.GradeLineRecord(record_id=i, label=label) for i, label in measure.records[:RECORDS_SHOWN]],
        records_total=len(measure.records) if measure.records_total is None else measure.records_total)


def mandatory_line(items: tuple[MandatoryItem, ...], points: int, months: int) -> pb.GradeLine:
    """必办项目: met when every item ran at least its minimum × the months begun."""
    about = CRITERIA[C.GRADING_CRITERION_MANDATORY_ITEMS]
    records = []
    met_items = 0
    for item in items:
        needed = item.min_per_month * months
        ok = item.done >= needed
        met_items += ok
        records.append(pb.GradeLineRecord(record_id=item.code, label=(
            f"{item.name}：{item.done}场 {'≥' if ok else '＜'} {needed}场（每月{item.min_per_month}场×{months}个月）")))
    met = met_items == len(items)
    earned = points if met else 0
    return pb.GradeLine(
        criterion=C.GRADING_CRITERION_MANDATORY_ITEMS, label=about.label, value=met_items, threshold=len(items),
        applicable=True, met=met, points=earned, max_points=points,
        explanation=f"{met_items}{about.unit} {'≥' if met else '＜'} {len(items)}{about.unit}，得{earned}分（满分{points}分）",
        records=records[:RECORDS_SHOWN], records_total=len(records))


# ---- who may do what, and the evidence a changed grade needs ----

def require_reviewer(principal: Principal, unit_path: list[str]) -> None:
    """评定 is for admins of a unit above the unit (or services), never the unit's own."""
    if not principal.manages(unit_path):
        raise PermissionDenied("该单位不在您的管辖范围内")
    if principal.unit_id == unit_path[-1]:
        raise PermissionDenied("等级须由上级单位评定")


def require_evidence_for_change(computed: int, asked: int, reason: str, evidence_ids: list[str]) -> None:
    """A grade other than the one the records give stands only on evidence and a reason (the
    desk has checked that the evidence named is the unit's)."""
    if asked == computed:
        return
    if not evidence_ids:
        raise FailedPrecondition(f"评定为{GRADE_LABEL[asked]}与记录得出的{GRADE_LABEL[computed]}不同，须附证明材料")
    if not reason:
        raise InvalidArgument.field("reason", "调整评定须说明理由")


# ---- storage and API shapes ----

def same_evidence(stored: dict, unit_id: str, asked: dict) -> bool:
    """A retry with a used idempotency key is the same request when it records the same evidence
    for the same unit (`asked`: criterion, title, document_url, note)."""
    return stored["unit"]["unit_id"] == unit_id and all(stored.get(name) == value for name, value in asked.items())


def to_document(scheme: Scheme) -> dict:
    return {"criteria": [{"criterion": c.criterion, "threshold": c.threshold, "points": c.points}
                         for c in scheme.criteria],
            "exemplary_min_score": scheme.exemplary_min_score, "standard_min_score": scheme.standard_min_score}


def from_document(doc: dict | None) -> Scheme:
    if not doc:
        return DEFAULT_SCHEME
    return Scheme(tuple(CriterionRule(c["criterion"], c["threshold"], c["points"]) for c in doc["criteria"]),
                  doc["exemplary_min_score"], doc["standard_min_score"])


def scheme_msg(scheme: Scheme) -> pb.GradingScheme:
    return pb.GradingScheme(
        criteria=[pb.GradingCriterionRule(criterion=c.criterion, threshold=c.threshold, points=c.points)
                  for c in scheme.criteria],
        exemplary_min_score=scheme.exemplary_min_score, standard_min_score=scheme.standard_min_score)


def validate(v: Validator, field_name: str, msg: pb.GradingScheme) -> Scheme:
    """The scheme of an API message; one without criteria means the national defaults."""
    if not msg.criteria:
        return DEFAULT_SCHEME
    seen: set[int] = set()
    for i, rule in enumerate(msg.criteria):
        v.enum(f"{field_name}.criteria[{i}].criterion", rule.criterion, pb.GradingCriterion)
        if rule.criterion in seen:
            v.fail(f"{field_name}.criteria[{i}].criterion", "同一指标只能出现一次")
        seen.add(rule.criterion)
        v.int_range(f"{field_name}.criteria[{i}].threshold", rule.threshold, 0, 100_000)
        v.int_range(f"{field_name}.criteria[{i}].points", rule.points, 0, 100)
    v.int_range(f"{field_name}.standard_min_score", msg.standard_min_score, 1, 1000)
    if msg.exemplary_min_score <= msg.standard_min_score:
        v.fail(f"{field_name}.exemplary_min_score", "须高于达标级分数线")
    return Scheme(tuple(CriterionRule(r.criterion, r.threshold, r.points) for r in msg.criteria),
                  msg.exemplary_min_score, msg.standard_min_score)
