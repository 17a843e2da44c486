"""The volunteer service project's lifecycle (申报 → 评审 → 立项 → 孵化 → 品牌 / 结项, or 驳回;
docs/projects.md has the table), its progress reports and linked work, its outcome, and the
project competition (项目大赛), as plain functions of (aggregate, principal, now, …): each returns
the move a legal change makes, None when there is nothing to change, or raises the error that
refuses it. Messages are in Chinese: unit heads read them in the app as they are.

Nothing here reads the database, talks to the broker or sees a gRPC request: ProjectDesk and
CompetitionDesk (projects.py) validate, load, call a rule and commit its move as one guarded
write; tests/unit/test_project_rules.py runs every transition in memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf import message

from services.common.auth import Principal, Role, require_manages
from services.common.clock import CHINA, as_utc
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import types_pb2

from . import metrics
from .models import Competition, Project

P = types_pb2.ProjectStatus
C = types_pb2.CompetitionStatus
L = common_pb2.UnitLevel
S = types_pb2.OrderStatus

# from each status, where a decision of a unit above may take the project
NEXT = {
    P.PROJECT_STATUS_DECLARED: (P.PROJECT_STATUS_UNDER_REVIEW, P.PROJECT_STATUS_REJECTED),
    P.PROJECT_STATUS_UNDER_REVIEW: (P.PROJECT_STATUS_APPROVED, P.PROJECT_STATUS_REJECTED),
    P.PROJECT_STATUS_APPROVED: (P.PROJECT_STATUS_INCUBATING, P.PROJECT_STATUS_CONCLUDED),
    P.PROJECT_STATUS_INCUBATING: (P.PROJECT_STATUS_BRANDED, P.PROJECT_STATUS_CONCLUDED),
    P.PROJECT_STATUS_BRANDED: (P.PROJECT_STATUS_CONCLUDED,),
}
# under way: progress is reported and work is linked
RUNNING = (P.PROJECT_STATUS_APPROVED, P.PROJECT_STATUS_INCUBATING, P.PROJECT_STATUS_BRANDED)
# approved at some point: such projects may enter a competition
ESTABLISHED = RUNNING + (P.PROJECT_STATUS_CONCLUDED,)
# 一所一品、一站一特色: brands are the institutes' and stations'
BRAND_LEVELS = (L.UNIT_LEVEL_INSTITUTE, L.UNIT_LEVEL_STATION)
STATUS_NAMES: dict[int, str] = {
    P.PROJECT_STATUS_DECLARED: "申报", P.PROJECT_STATUS_UNDER_REVIEW: "评审", P.PROJECT_STATUS_APPROVED: "立项",
    P.PROJECT_STATUS_INCUBATING: "孵化", P.PROJECT_STATUS_BRANDED: "品牌", P.PROJECT_STATUS_CONCLUDED: "结项",
    P.PROJECT_STATUS_REJECTED: "驳回",
}
# an order's service counts once its hours are confirmed (时长审核), whatever came after
SERVED_ORDER = (S.ORDER_STATUS_HOURS_CONFIRMED, S.ORDER_STATUS_RATED, S.ORDER_STATUS_CLOSED)
MIN_SCORE, MAX_SCORE = 0, 100


@dataclass
class ProjectMove:
    """A change of a project or competition: its event, the fields it sets and what it appends."""

    event: Callable[..., message.Message]  # the event's message class
    fields: dict = field(default_factory=dict)
    appended: dict = field(default_factory=dict)  # list field -> entries appended ($push $each)
    event_fields: dict = field(default_factory=dict)
    after: Callable[[], None] | None = None  # metrics once the move is stored


# ---- who may act ----

def require_admin_in(principal: Principal, district_id: str, path: list[str]) -> None:
    if principal.role != Role.ROLE_UNIT_ADMIN:
        raise PermissionDenied("只有单位管理员可以办理志愿服务项目")
    require_manages(principal, district_id, path, "project")


def require_reviewer(project: Project, principal: Principal) -> None:
    """Reviewed upward: an admin of a unit above the project's, and never its proposer (who may
    be one, having proposed for a unit below their own)."""
    if principal.role != Role.ROLE_UNIT_ADMIN or principal.district_id != project.district_id \
            or principal.unit_id not in project.unit.path[:-1]:
        raise PermissionDenied("项目须由上级单位管理员评审")
    if principal.subject == project.proposed_by:
        raise PermissionDenied("申报人不能评审自己申报的项目")


def require_running(project: Project, what: str) -> None:
    if project.status not in RUNNING:
        raise FailedPrecondition(f"项目处于「{STATUS_NAMES[project.status]}」阶段，立项后才能{what}")


# ---- the lifecycle ----

def move(project: Project, principal: Principal, now: dt.datetime, to: int, comment: str,
         brand_holder: str | None, reviewer_unit: dict) -> ProjectMove:
    """A reviewer's decision. `brand_holder`: the id of the project that holds the unit's brand
    now (None: no other project does); `reviewer_unit`: the reviewer's unit as stored."""
    require_reviewer(project, principal)
    if to not in NEXT.get(project.status, ()):
        raise FailedPrecondition(f"项目处于「{STATUS_NAMES[project.status]}」阶段，不能转为「{STATUS_NAMES[to]}」")
    if to == P.PROJECT_STATUS_REJECTED and not comment:
        raise InvalidArgument.field("comment", "驳回须写明理由")
    if to == P.PROJECT_STATUS_BRANDED:
        if project.unit.level not in BRAND_LEVELS:
            raise FailedPrecondition("品牌项目只在实践所、实践站评定（一所一品、一站一特色）")
        if brand_holder not in (None, project.id):
            raise brand_taken(project)
    review = {"from_status": project.status, "to_status": to, "reviewer_id": principal.subject,
              "reviewer_unit": reviewer_unit, "comment": comment, "at": now}
    return ProjectMove(ev.ProjectMoved, fields={"status": to}, appended={"reviews": [review]},
                       event_fields={"from_status": project.status, "comment": comment,
                                     "reviewer_unit": common_pb2.UnitRef(**reviewer_unit)},
                       after=metrics.PROJECTS.labels(metrics.project_status_name(to)).inc)


def brand_taken(project: Project) -> FailedPrecondition:
    return FailedPrecondition(f"{project.unit.name or '该单位'}已有品牌项目，每个单位只评定一个")


def report_progress(project: Project, principal: Principal, now: dt.datetime, period: str,
                    summary: str) -> ProjectMove:
    """The project's unit (or one above) reports a month's progress, once per month."""
    require_admin_in(principal, project.district_id, project.unit.path)
    require_running(project, "报告进展")
    if period > f"{as_utc(now).astimezone(CHINA):%Y-%m}":
        raise InvalidArgument.field("period", "不能报告未来月份的进展")
    if any(p.period == period for p in project.progress):
        raise FailedPrecondition(f"{period} 的进展已经报告过")
    report = {"period": period, "summary": summary, "reported_by": principal.subject, "reported_at": now}
    return ProjectMove(ev.ProjectProgressReported, appended={"progress": [report]}, event_fields={"period": period})


def link_work(project: Project, principal: Principal, activities: dict[str, dict | None],
              orders: dict[str, dict | None]) -> ProjectMove | None:
    """Activities organized and orders placed in the project's subtree, by id (None: no such
    one); what is linked already is skipped, and nothing new changes nothing (None)."""
    require_admin_in(principal, project.district_id, project.unit.path)
    require_running(project, "关联活动和点单")
    unit_id = project.unit.unit_id
    for name, found, path_of in (("activity_ids", activities, lambda a: a["unit"]["path"]),
                                 ("order_ids", orders, lambda o: o["origin"]["path"])):
        for i, doc in enumerate(found.values()):
            if doc is None or doc["district_id"] != project.district_id or unit_id not in path_of(doc):
                raise InvalidArgument.field(f"{name}[{i}]", "不是本项目单位及下级的活动或点单")
    new_activities = [a for a in activities if a not in project.activity_ids]
    new_orders = [o for o in orders if o not in project.order_ids]
    if not new_activities and not new_orders:
        return None
    return ProjectMove(ev.ProjectWorkLinked, appended={"activity_ids": new_activities, "order_ids": new_orders},
                       event_fields={"activity_ids": new_activities, "order_ids": new_orders})


@dataclass(frozen=True)
class Outcome:
    people_served: int
    volunteer_minutes: int
    volunteers: int
    activities_completed: int
    orders_served: int


def outcome(activities: list[dict], orders: list[dict]) -> Outcome:
    """From the loop's own records: residents who attended a completed activity or whose order
    was served, and the confirmed hours of both (an activity's or order's `hours` entries)."""
    completed = [a for a in activities if a["status"] == types_pb2.ACTIVITY_STATUS_COMPLETED]
    served = [o for o in orders if o["status"] in SERVED_ORDER]
    residents = {pid for a in completed for pid, p in a.get("participants", {}).items()
                 if p["role"] == types_pb2.PARTICIPANT_ROLE_RESIDENT and p.get("attended_at") is not None}
    residents |= {o["resident_id"] for o in served}
    hours = [h for record in completed + served for h in record.get("hours", [])]
    return Outcome(people_served=len(residents), volunteer_minutes=sum(h["minutes"] for h in hours),
                   volunteers=len({h["volunteer_id"] for h in hours}), activities_completed=len(completed),
                   orders_served=len(served))


# ---- the competition (项目大赛) ----

def enter(principal: Principal, district_id: str, unit_path: list[str], projects: list[dict | None]) -> None:
    """A competition of the organizing unit's subtree: its admins (or those above) hold it, and
    every entry is one of its projects approved (立项) at some point."""
    require_admin_in(principal, district_id, unit_path)
    for i, project in enumerate(projects):
        if project is None or project["district_id"] != district_id or unit_path[-1] not in project["unit"]["path"]:
            raise InvalidArgument.field(f"project_ids[{i}]", "不是本单位及下级的项目")
        if project["status"] not in ESTABLISHED:
            raise InvalidArgument.field(f"project_ids[{i}]", f"「{project['name']}」尚未立项，不能参赛")


def score_key(reviewer_id: str, project_id: str) -> str:
    return f"{reviewer_id}:{project_id}"


def score(competition: Competition, principal: Principal, project_id: str, points: int, comment: str) -> ProjectMove:
    """A reviewer — an admin of the organizing unit or above — scores an entry once; never their
    own project."""
    require_admin_in(principal, competition.district_id, competition.unit.path)
    if competition.status != C.COMPETITION_STATUS_OPEN:
        raise FailedPrecondition("大赛已结束，不能再打分")
    entry = next((e for e in competition.entries if e.project_id == project_id), None)
    if entry is None:
        raise InvalidArgument.field("project_id", "不是本次大赛的参赛项目")
    if entry.proposed_by == principal.subject:
        raise PermissionDenied("申报人不能为自己申报的项目打分")
    key = score_key(principal.subject, project_id)
    if key in competition.scores:
        raise FailedPrecondition("你已为该项目打过分（每位评委每个项目一次）")
    scored = {"project_id": project_id, "reviewer_id": principal.subject, "score": points, "comment": comment}
    return ProjectMove(ev.CompetitionScored, fields={f"scores.{key}": scored},
                       event_fields={"project_id": project_id, "reviewer_id": principal.subject, "score": points},
                       after=metrics.COMPETITION_SCORES.inc)


def close(competition: Competition, principal: Principal) -> ProjectMove:
    require_admin_in(principal, competition.district_id, competition.unit.path)
    if competition.status != C.COMPETITION_STATUS_OPEN:
        raise FailedPrecondition("大赛已经结束")
    return ProjectMove(ev.CompetitionClosed, fields={"status": C.COMPETITION_STATUS_CLOSED},
                       event_fields={"ranking": [r.project_id for r in ranking(competition)]})


@dataclass(frozen=True)
class Ranked:
    project_id: str
    scores: int
    average: float
    rank: int


def ranking(competition: Competition) -> list[Ranked]:
    """Entries by average score, best first; equal averages share a rank (1, 1, 3), the
    unscored last."""
    by_project: dict[str, list[int]] = {e.project_id: [] for e in competition.entries}
    for s in competition.scores.values():
        by_project[s.project_id].append(s.score)
    averages = {pid: (sum(v) / len(v) if v else 0.0) for pid, v in by_project.items()}
    order = sorted(by_project, key=lambda pid: (-bool(by_project[pid]), -averages[pid]))
    ranked: list[Ranked] = []
    for position, pid in enumerate(order, start=1):
        rank = position
        if ranked and ranked[-1].average == averages[pid] and bool(by_project[pid]) == bool(ranked[-1].scores):
            rank = ranked[-1].rank  # equal averages share a place
        ranked.append(Ranked(pid, len(by_project[pid]), averages[pid], rank))
    return ranked
