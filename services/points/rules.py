"""Point rules per district, and the arithmetic they drive (pure functions, unit-tested).

Defaults follow the national practice: stars at 100/300/600/1000/1500 verified hours; points
are minutes × base × category percent; points earned in a year stay valid through the end of
the following year (points_validity_years = 2).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from services.common.clock import CHINA
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.points.v1 import points_pb2 as pb

from . import grading_rules

STAR_LEVELS = 5


@dataclass(frozen=True)
class Thresholds:
    min_activity_coverage_percent: int
    max_avg_ack_minutes: int
    max_avg_completion_hours: int
    min_completion_rate_percent: int
    min_satisfaction_centi: int


@dataclass(frozen=True)
class Rules:
    base_points_per_hour: int = 10
    category_percent: dict[int, int] = field(default_factory=lambda: {
        common_pb2.SERVICE_CATEGORY_CARE_FOR_OTHERS: 120})
    attendance_points: int = 5
    rating_given_points: int = 2
    rating_received_points: tuple[int, ...] = (0, 0, 1, 3, 5)
    training_points_per_hour: int = 5
    points_validity_years: int = 2
    star_threshold_hours: tuple[int, ...] = (100, 300, 600, 1000, 1500)
    stars_count_manual_hours: bool = False
    stars_count_training_hours: bool = False
    exemplary: Thresholds = Thresholds(100, 120, 72, 95, 450)   # 示范级
    standard: Thresholds = Thresholds(80, 24 * 60, 168, 85, 400)  # 达标级
    grading: grading_rules.Scheme = grading_rules.DEFAULT_SCHEME  # 三级创建 赋分
    version: int = 0
    updated_at: dt.datetime | None = None
    updated_by: str = ""

    # ---- arithmetic ----

    def service_points(self, category: int, minutes: int) -> int:
        """Points for `minutes` of service in `category` (rounded down)."""
        percent = self.category_percent.get(category, 100)
        return max(0, minutes) * self.base_points_per_hour * percent // (60 * 100)

    def training_points(self, minutes: int) -> int:
        return max(0, minutes) * self.training_points_per_hour // 60

    def rating_points(self, rating: int) -> int:
        return self.rating_received_points[rating - 1]

    def points_expiry(self, earned_at: dt.datetime) -> dt.datetime | None:
        """Points earned at `earned_at` stay valid through 31 December of year + validity - 1
        (China time); None when the district lets points never expire."""
        if self.points_validity_years <= 0:
            return None
        year = earned_at.astimezone(CHINA).year + self.points_validity_years
        return dt.datetime(year, 1, 1, tzinfo=CHINA).astimezone(dt.UTC)

    def counted_minutes(self, verified: int, manual: int, training: int) -> int:
        """The minutes that count for stars under this district's rules."""
        return verified + (manual if self.stars_count_manual_hours else 0) + \
            (training if self.stars_count_training_hours else 0)

    def star_level(self, counted_minutes: int) -> int:
        return sum(1 for hours in self.star_threshold_hours if counted_minutes >= hours * 60)


DEFAULT_RULES = Rules()

SCORECARD_FIELDS = ("min_activity_coverage_percent", "max_avg_ack_minutes", "max_avg_completion_hours",
                    "min_completion_rate_percent", "min_satisfaction_centi")


# ---- storage and API shapes ----

def to_document(rules: Rules) -> dict:
    return {
        "base_points_per_hour": rules.base_points_per_hour,
        "category_percent": [{"category": c, "percent": p} for c, p in sorted(rules.category_percent.items())],
        "attendance_points": rules.attendance_points,
        "rating_given_points": rules.rating_given_points,
        "rating_received_points": list(rules.rating_received_points),
        "training_points_per_hour": rules.training_points_per_hour,
        "points_validity_years": rules.points_validity_years,
        "star_threshold_hours": list(rules.star_threshold_hours),
        "stars_count_manual_hours": rules.stars_count_manual_hours,
        "stars_count_training_hours": rules.stars_count_training_hours,
        "exemplary": {f: getattr(rules.exemplary, f) for f in SCORECARD_FIELDS},
        "standard": {f: getattr(rules.standard, f) for f in SCORECARD_FIELDS},
        "grading": grading_rules.to_document(rules.grading),
    }


def from_document(doc: dict | None) -> Rules:
    if not doc:
        return DEFAULT_RULES
    return Rules(
        base_points_per_hour=doc["base_points_per_hour"],
        category_percent={cp["category"]: cp["percent"] for cp in doc["category_percent"]},
        attendance_points=doc["attendance_points"],
        rating_given_points=doc["rating_given_points"],
        rating_received_points=tuple(doc["rating_received_points"]),
        training_points_per_hour=doc["training_points_per_hour"],
        points_validity_years=doc["points_validity_years"],
        star_threshold_hours=tuple(doc["star_threshold_hours"]),
        stars_count_manual_hours=doc["stars_count_manual_hours"],
        stars_count_training_hours=doc["stars_count_training_hours"],
        exemplary=Thresholds(**doc["exemplary"]),
        standard=Thresholds(**doc["standard"]),
        grading=grading_rules.from_document(doc.get("grading")),  # districts that set rules before 赋分 existed
        version=doc.get("version", 0),
        updated_at=doc.get("updated_at"),
        updated_by=doc.get("updated_by", ""),
    )


def thresholds_msg(t: Thresholds) -> pb.ScorecardThresholds:
    return pb.ScorecardThresholds(**{f: getattr(t, f) for f in SCORECARD_FIELDS})


def validate(v: Validator, msg: pb.PointRules) -> Rules:
    """Rules from an API message, every bad field reported under `rules.`."""
    v.int_range("rules.base_points_per_hour", msg.base_points_per_hour, 0, 1000)
    percents: dict[int, int] = {}
    for i, cc in enumerate(msg.category_coefficients):
        v.enum(f"rules.category_coefficients[{i}].category", cc.category, common_pb2.ServiceCategory)
        v.int_range(f"rules.category_coefficients[{i}].percent", cc.percent, 0, 1000)
        if cc.category in percents:
            v.fail(f"rules.category_coefficients[{i}].category", "is listed twice")
        percents[cc.category] = cc.percent
    v.int_range("rules.attendance_points", msg.attendance_points, 0, 1000)
    v.int_range("rules.rating_given_points", msg.rating_given_points, 0, 1000)
    if len(msg.rating_received_points) != 5:
        v.fail("rules.rating_received_points", "needs exactly 5 values, for ratings 1 to 5")
    for i, points in enumerate(msg.rating_received_points):
        v.int_range(f"rules.rating_received_points[{i}]", points, 0, 1000)
    v.int_range("rules.training_points_per_hour", msg.training_points_per_hour, 0, 1000)
    v.int_range("rules.points_validity_years", msg.points_validity_years, 0, 10)
    stars = list(msg.star_threshold_hours)
    if len(stars) != STAR_LEVELS:
        v.fail("rules.star_threshold_hours", f"needs exactly {STAR_LEVELS} thresholds (1★ to 5★)")
    elif any(h <= 0 for h in stars) or any(b <= a for a, b in zip(stars, stars[1:], strict=False)):
        v.fail("rules.star_threshold_hours", "must be positive and strictly ascending")
    grades = {}
    for name in ("exemplary", "standard"):
        t = getattr(msg, name)
        v.int_range(f"rules.{name}.min_activity_coverage_percent", t.min_activity_coverage_percent, 0, 100)
        v.int_range(f"rules.{name}.max_avg_ack_minutes", t.max_avg_ack_minutes, 1, 30 * 24 * 60)
        v.int_range(f"rules.{name}.max_avg_completion_hours", t.max_avg_completion_hours, 1, 90 * 24)
        v.int_range(f"rules.{name}.min_completion_rate_percent", t.min_completion_rate_percent, 0, 100)
        v.int_range(f"rules.{name}.min_satisfaction_centi", t.min_satisfaction_centi, 100, 500)
        grades[name] = Thresholds(**{f: getattr(t, f) for f in SCORECARD_FIELDS})
    if v.ok():
        ex, st = grades["exemplary"], grades["standard"]
        if (ex.min_activity_coverage_percent < st.min_activity_coverage_percent
                or ex.max_avg_ack_minutes > st.max_avg_ack_minutes
                or ex.max_avg_completion_hours > st.max_avg_completion_hours
                or ex.min_completion_rate_percent < st.min_completion_rate_percent
                or ex.min_satisfaction_centi < st.min_satisfaction_centi):
            v.fail("rules.exemplary", "must be at least as strict as rules.standard in every criterion")
    scheme = grading_rules.validate(v, "rules.grading", msg.grading)
    if not v.ok():
        return DEFAULT_RULES
    return replace(DEFAULT_RULES, base_points_per_hour=msg.base_points_per_hour, category_percent=percents,
                   attendance_points=msg.attendance_points, rating_given_points=msg.rating_given_points,
                   rating_received_points=tuple(msg.rating_received_points),
                   training_points_per_hour=msg.training_points_per_hour,
                   points_validity_years=msg.points_validity_years, star_threshold_hours=tuple(stars),
                   stars_count_manual_hours=msg.stars_count_manual_hours,
                   stars_count_training_hours=msg.stars_count_training_hours,
                   exemplary=grades["exemplary"], standard=grades["standard"], grading=scheme)
