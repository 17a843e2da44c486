"""Activity plans (年有计划、月有安排、周有活动): a unit's plan for a year, month or week, put out
for comments (征求意见) and then published on its subtree's calendar, as plain functions of
(plan, principal, now, …) tested in tests/unit/test_plan_rules.py; plans.py validates, loads,
applies them and commits one guarded write with the event.

A plan is a dict as stored (plans.py). Its way (`NEXT`):

    DRAFT ──edit (replace the entries)──▶ DRAFT
    DRAFT ──open (征求意见 until a deadline, at least one entry)──▶ CONSULTING
    CONSULTING ──comment (a resident or volunteer of the subtree, before the deadline)──▶ CONSULTING
    CONSULTING ──publish (the unit's admins, once the deadline has passed)──▶ PUBLISHED
    PUBLISHED ──revise (a new draft of the next revision)──▶ DRAFT
    any ──link (an entry names the activity it became)──▶ the same status

Publishing copies the entries to `published_entries`, which the calendar shows; a revision
drafts, consults and publishes again while the previous revision stays on the calendar. A
repeat of the move just made (a retry after a lost answer) changes nothing (`{}`) and answers
the plan as it is. `now` always comes from the caller's clock, never the wall clock.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass

from services.common.auth import Principal, Role
from services.common.clock import as_utc
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

S = types_pb2.ActivityPlanStatus
PERIOD = types_pb2.ActivityPlanPeriod
L = common_pb2.UnitLevel

EDIT, OPEN, COMMENT, PUBLISH, REVISE = "edit", "open", "comment", "publish", "revise"
MOVES = (EDIT, OPEN, COMMENT, PUBLISH, REVISE)
# from each status, the moves it allows and where they lead
NEXT: dict[int, dict[str, int]] = {
    S.ACTIVITY_PLAN_STATUS_DRAFT: {EDIT: S.ACTIVITY_PLAN_STATUS_DRAFT, OPEN: S.ACTIVITY_PLAN_STATUS_CONSULTING},
    S.ACTIVITY_PLAN_STATUS_CONSULTING: {COMMENT: S.ACTIVITY_PLAN_STATUS_CONSULTING,
                                        PUBLISH: S.ACTIVITY_PLAN_STATUS_PUBLISHED},
    S.ACTIVITY_PLAN_STATUS_PUBLISHED: {REVISE: S.ACTIVITY_PLAN_STATUS_DRAFT},
}
STATUS_NAMES = {S.ACTIVITY_PLAN_STATUS_DRAFT: "草拟", S.ACTIVITY_PLAN_STATUS_CONSULTING: "征求意见",
                S.ACTIVITY_PLAN_STATUS_PUBLISHED: "已发布"}
MOVE_NAMES = {EDIT: "修改安排", OPEN: "征求意见", COMMENT: "提意见", PUBLISH: "发布", REVISE: "修订"}
# the seeds' 实践站、实践所、中心 plan; a courtyard's activities are in its station's plan
PLANNING_LEVELS = (L.UNIT_LEVEL_CENTER, L.UNIT_LEVEL_INSTITUTE, L.UNIT_LEVEL_STATION)
# long enough for residents to read the draft at the courtyard's weekly gathering, short enough
# that a month's arrangements are still ahead when published
CONSULTATION_MIN = dt.timedelta(days=1)
CONSULTATION_MAX = dt.timedelta(days=30)
MAX_ENTRIES = 100
TITLE_CHARS = (2, 40)
COMMENT_CHARS = (2, 300)
NOTE_CHARS = 200

YEAR = re.compile(r"^(\d{4})$")
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
WEEK = re.compile(r"^(\d{4})-W(0[1-9]|[1-4]\d|5[0-3])$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PERIOD_FORMS: dict[int, str] = {PERIOD.ACTIVITY_PLAN_PERIOD_YEAR: "须为年份，例如 2026",
                PERIOD.ACTIVITY_PLAN_PERIOD_MONTH: "须为年月，例如 2026-05",
                PERIOD.ACTIVITY_PLAN_PERIOD_WEEK: "须为年和周次，例如 2026-W20"}
PERIOD_ORDER: dict[int, int] = {PERIOD.ACTIVITY_PLAN_PERIOD_YEAR: 0, PERIOD.ACTIVITY_PLAN_PERIOD_MONTH: 1,
                PERIOD.ACTIVITY_PLAN_PERIOD_WEEK: 2}


# ---- periods and dates ----

Span = tuple[dt.date, dt.date]  # first and last day, inclusive


def _month_span(year: int, month: int) -> Span:
    first = dt.date(year, month, 1)
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return first, following - dt.timedelta(days=1)


def _week_span(text: str) -> Span | None:
    match = WEEK.match(text)
    if not match:
        return None
    try:
        monday = dt.date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:  # week 53 of a year that has 52
        return None
    return monday, monday + dt.timedelta(days=6)


def period_span(period: int, period_key: str) -> Span | None:
    """The days a plan's period covers; None when the key is not of the period's form."""
    if period == PERIOD.ACTIVITY_PLAN_PERIOD_YEAR and (match := YEAR.match(period_key)):
        return dt.date(int(match[1]), 1, 1), dt.date(int(match[1]), 12, 31)
    if period == PERIOD.ACTIVITY_PLAN_PERIOD_MONTH and (match := MONTH.match(period_key)):
        return _month_span(int(match[1]), int(match[2]))
    if period == PERIOD.ACTIVITY_PLAN_PERIOD_WEEK:
        return _week_span(period_key)
    return None


def when_span(when: str) -> Span | None:
    """The days an entry's `when` names: a day, an ISO week or a month; None if it names none."""
    if DAY.match(when):
        try:
            day = dt.date.fromisoformat(when)
        except ValueError:
            return None
        return day, day
    if match := MONTH.match(when):
        return _month_span(int(match[1]), int(match[2]))
    return _week_span(when)


def when_fits(period: int, period_key: str, when: str) -> str:
    """"" when an entry's `when` is of a form the plan takes and inside its period; else why not."""
    span, plan = when_span(when), period_span(period, period_key)
    if span is None:
        return "须为日期（2026-05-12）、周次（2026-W20）或月份（2026-05）"
    if period == PERIOD.ACTIVITY_PLAN_PERIOD_WEEK and span[0] != span[1]:
        return "周计划的安排须写具体日期"
    if period == PERIOD.ACTIVITY_PLAN_PERIOD_MONTH and MONTH.match(when):
        return "月计划的安排须写日期或周次"
    assert plan is not None
    if span[0] > plan[1] or span[1] < plan[0]:
        return f"不在计划的时段（{period_key}）内"
    return ""


def keys_covering(month: str) -> list[tuple[int, str]]:
    """The (period, key) of every plan that covers part of `month` ("2026-05"): its year, the
    month itself and every ISO week with a day in it."""
    match = MONTH.match(month)
    if not match:
        raise ValueError(month)
    first, last = _month_span(int(match[1]), int(match[2]))
    weeks = []
    day = first - dt.timedelta(days=first.weekday())
    while day <= last:
        year, week, _ = day.isocalendar()
        weeks.append((PERIOD.ACTIVITY_PLAN_PERIOD_WEEK, f"{year}-W{week:02d}"))
        day += dt.timedelta(days=7)
    return [(PERIOD.ACTIVITY_PLAN_PERIOD_YEAR, match[1]), (PERIOD.ACTIVITY_PLAN_PERIOD_MONTH, month), *weeks]


# ---- what a request asks, validated ----

@dataclass(frozen=True)
class EntryInput:
    title: str
    when: str
    category: int
    unit_id: str  # "" : the plan's unit
    activity_id: str
    note: str


def validate_entries(v: Validator, field: str, entries, period: int, period_key: str) -> list[EntryInput]:
    if len(entries) > MAX_ENTRIES:
        v.fail(field, f"allows at most {MAX_ENTRIES} items (got {len(entries)})")
        return []
    checked_period = period_span(period, period_key) is not None
    out = []
    for i, entry in enumerate(entries):
        at = f"{field}[{i}]"
        title = v.text(f"{at}.title", entry.title, min_len=TITLE_CHARS[0], max_len=TITLE_CHARS[1])
        when = (entry.when or "").strip()
        if not when:
            v.fail(f"{at}.when", "must not be empty")
        elif checked_period and (why := when_fits(period, period_key, when)):
            v.fail(f"{at}.when", why)
        v.enum(f"{at}.category", entry.category, common_pb2.ServiceCategory)
        unit_id = v.ident(f"{at}.unit.unit_id", entry.unit.unit_id, required=False)
        activity_id = v.ident(f"{at}.activity_id", entry.activity_id, required=False)
        note = v.text(f"{at}.note", entry.note, max_len=NOTE_CHARS, required=False)
        out.append(EntryInput(title, when, entry.category, unit_id, activity_id, note))
    return out


def validate_period(v: Validator, period: int, period_key: str) -> str:
    v.enum("period", period, PERIOD)
    key = (period_key or "").strip()
    if not key:
        v.fail("period_key", "must not be empty")
    elif period in PERIOD_FORMS and period_span(period, key) is None:
        v.fail("period_key", PERIOD_FORMS[period])
    return key


def validate_create(v: Validator, req: pb.CreateActivityPlanRequest) -> tuple[str, str, list[EntryInput], str]:
    period_key = validate_period(v, req.period, req.period_key)
    title = v.text("title", req.title, min_len=TITLE_CHARS[0], max_len=TITLE_CHARS[1])
    entries = validate_entries(v, "entries", req.entries, req.period, period_key)
    idempotency_key = v.idempotency_key(req.idempotency_key)
    return period_key, title, entries, idempotency_key


def entry_doc(position: int, entry: EntryInput, unit: dict) -> dict:
    return {"entry_id": f"e{position + 1}", "title": entry.title, "when": entry.when, "category": entry.category,
            "unit": unit, "activity_id": entry.activity_id, "note": entry.note}


def same_request(stored: dict, unit_id: str, period: int, period_key: str, title: str) -> bool:
    """A retry with a used idempotency key is the same request when it drafts the same plan (its
    entries may have been edited since)."""
    return (stored["unit"]["unit_id"], stored["period"], stored["period_key"], stored["title"]) == (
        unit_id, period, period_key, title)


# ---- who may act ----

def require_admin(principal: Principal, district_id: str, path: list[str]) -> None:
    """The unit's admins, and those of the units above it."""
    if principal.role != Role.ROLE_UNIT_ADMIN:
        raise PermissionDenied("只有单位管理员可以制定活动计划")
    if principal.district_id != district_id or not principal.manages(path):
        raise PermissionDenied("该活动计划不属于本单位及下级单位")


def require_planner(principal: Principal, district_id: str, path: list[str], level: int) -> None:
    require_admin(principal, district_id, path)
    if level not in PLANNING_LEVELS:
        raise InvalidArgument.field("unit_id", "活动计划由实践站、实践所或中心制定（小院的活动列入所属实践站的计划）")


def require_entry_units(plan_path: list[str], entry_units: dict[str, dict | None],
                        activities: dict[str, dict | None], district_id: str) -> None:
    """Every entry's holding unit and linked activity lie in the plan's unit's subtree.
    `entry_units`/`activities`: id → the stored unit/activity (None: unknown), by entry field path."""
    unit_id = plan_path[-1]
    for field, unit in entry_units.items():
        if unit is None or unit_id not in unit.get("path", ()):
            raise InvalidArgument.field(field, "须为计划所属单位或其下级单位")
    for field, activity in activities.items():
        if activity is None or activity.get("district_id") != district_id \
                or unit_id not in activity["unit"]["path"]:
            raise InvalidArgument.field(field, "须为本单位及下级单位的活动")


def reaches(plan: dict, reach: Collection[str]) -> bool:
    """Whether someone belonging to the units `reach` (their path or paths) is in the plan's subtree."""
    return plan["unit"]["unit_id"] in reach


# ---- the moves ----

def _check(plan: dict, move: str) -> int:
    """Where `move` takes the plan from its status, or FAILED_PRECONDITION saying why not."""
    status = plan["status"]
    to = NEXT.get(status, {}).get(move)
    if to is None:
        raise FailedPrecondition(f"活动计划处于「{STATUS_NAMES.get(status, '未知')}」阶段，不能{MOVE_NAMES[move]}")
    return to


def set_entries(plan: dict, principal: Principal, entries: list[dict]) -> dict:
    """The `$set` replacing the draft's entries; `{}` when they are the entries it has."""
    require_admin(principal, plan["district_id"], plan["unit"]["path"])
    if plan["status"] == S.ACTIVITY_PLAN_STATUS_DRAFT and plan.get("entries", []) == entries:
        return {}
    _check(plan, EDIT)
    return {"entries": entries}


def open_consultation(plan: dict, principal: Principal, now: dt.datetime, deadline: dt.datetime) -> dict:
    """征求意见 until `deadline`: the draft needs an entry, the deadline CONSULTATION_MIN..MAX ahead."""
    require_admin(principal, plan["district_id"], plan["unit"]["path"])
    if plan["status"] == S.ACTIVITY_PLAN_STATUS_CONSULTING and plan.get("consultation_deadline") is not None \
            and as_utc(plan["consultation_deadline"]) == deadline:
        return {}
    to = _check(plan, OPEN)
    if not plan.get("entries"):
        raise FailedPrecondition("计划还没有任何活动安排，请先添加再征求意见")
    if not now + CONSULTATION_MIN <= deadline <= now + CONSULTATION_MAX:
        raise InvalidArgument.field("deadline", f"征求意见须至少{CONSULTATION_MIN.days}天、"
                                                f"至多{CONSULTATION_MAX.days}天")
    return {"status": to, "consultation_deadline": deadline, "consultation_opened_at": now}


def require_commenter(plan: dict, principal: Principal, reach: Collection[str], now: dt.datetime) -> None:
    """A resident or volunteer of the plan's subtree, while it is open and before its deadline."""
    if principal.role not in (Role.ROLE_RESIDENT, Role.ROLE_VOLUNTEER):
        raise PermissionDenied("征求意见面向本辖区的居民和志愿者")
    if principal.district_id != plan["district_id"] or not reaches(plan, reach):
        raise PermissionDenied("只有该单位辖区内的居民和志愿者可以对这份计划提意见")
    _check(plan, COMMENT)
    if now > as_utc(plan["consultation_deadline"]):
        raise FailedPrecondition("征求意见已截止")


def publish(plan: dict, principal: Principal, now: dt.datetime) -> dict:
    """On the calendar, once the consultation's deadline has passed: the residents had their say."""
    require_admin(principal, plan["district_id"], plan["unit"]["path"])
    if plan["status"] == S.ACTIVITY_PLAN_STATUS_PUBLISHED and plan.get("published_revision") == plan["revision"]:
        return {}
    to = _check(plan, PUBLISH)
    if now <= as_utc(plan["consultation_deadline"]):
        raise FailedPrecondition("征求意见尚未截止，截止后才能发布")
    return {"status": to, "published_revision": plan["revision"], "published_entries": plan.get("entries", []),
            "published_at": now}


def revise(plan: dict, principal: Principal) -> dict:
    """A new draft of the next revision, from the published entries; the calendar keeps showing
    the published revision meanwhile."""
    require_admin(principal, plan["district_id"], plan["unit"]["path"])
    if plan["status"] == S.ACTIVITY_PLAN_STATUS_DRAFT and plan.get("published_revision", 0) \
            and plan["revision"] == plan["published_revision"] + 1:
        return {}
    to = _check(plan, REVISE)
    return {"status": to, "revision": plan["revision"] + 1, "consultation_deadline": None,
            "consultation_opened_at": None}


def link_entry(plan: dict, principal: Principal, entry_id: str, activity_id: str) -> dict:
    """The `$set` naming the activity an entry became (or none, `activity_id` ""), in any status:
    the activity usually exists only after the plan is published. It changes the entries of the
    current revision, and the calendar's too while they are the same (PUBLISHED); under
    revision the link reaches the calendar with the revision. `{}` when already so."""
    require_admin(principal, plan["district_id"], plan["unit"]["path"])
    entries = plan.get("entries", [])
    if not any(e["entry_id"] == entry_id for e in entries):
        raise InvalidArgument.field("entry_id", "计划的当前版本中没有这一项安排")
    if all(e.get("activity_id", "") == activity_id for e in entries if e["entry_id"] == entry_id):
        return {}
    linked = [{**e, "activity_id": activity_id} if e["entry_id"] == entry_id else e for e in entries]
    if plan["status"] == S.ACTIVITY_PLAN_STATUS_PUBLISHED:
        return {"entries": linked, "published_entries": linked}
    return {"entries": linked}


# ---- who reads what ----

def sees_draft(plan: dict, principal: Principal) -> bool:
    """The entries being drafted or consulted on: the admins always, others while open for comments."""
    return principal.manages(plan["unit"]["path"]) or plan["status"] == S.ACTIVITY_PLAN_STATUS_CONSULTING


def visible(plan: dict, principal: Principal, reach: Collection[str]) -> bool:
    """The unit's admins (and those above) see every plan; the subtree's residents and volunteers
    those open for comments or published."""
    if principal.district_id != plan["district_id"]:
        return False
    if principal.role == Role.ROLE_UNIT_ADMIN or principal.role == Role.ROLE_SERVICE:
        return principal.manages(plan["unit"]["path"])
    return reaches(plan, reach) and (plan["status"] == S.ACTIVITY_PLAN_STATUS_CONSULTING
                                     or plan.get("published_revision", 0) > 0)
