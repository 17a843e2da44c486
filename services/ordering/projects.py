"""Volunteer service projects (志愿服务项目库) and project competitions (项目大赛): each request is
validated, its aggregate loaded, a rule of project_rules.py applied, and the move it makes
committed as one update guarded by the aggregate's version, carrying its event.

Ordering owns them because a project's outcome is made of ordering's own records — the
activities and orders linked to it — read here directly, not copied from events.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from google.protobuf.message import Message
from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal
from services.common.clock import as_utc, clock
from services.common.documents import Aggregate
from services.common.errors import Aborted, AlreadyExists, InvalidArgument
from services.common.events import EventSource
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.listing import key
from services.common.retry import LOST_RACE, Retry, until_written
from services.common.validation import Validator, valid_id
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

from . import metrics
from . import project_rules as rules
from .menu import MenuBook
from .models import Activity, BrandSlot, Competition, Order, Project
from .project_rules import ProjectMove
from .readmodels import Registry
from .translate import project_snapshot, unit_ref_msg

P = types_pb2.ProjectStatus
CONFLICTS = Retry(max_attempts=10, backoff=LOST_RACE)  # writers of one project or one brand slot
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
MAX_LINKS_PER_REQUEST = 50
# a brand slot whose project is not branded is one a designation claimed and then did not
# finish (the process died in between); after this long it is free again
BRAND_CLAIM_GRACE = dt.timedelta(minutes=1)


def apply(model: type[Aggregate], principal: Principal, ident: str, what: str, events: EventSource,
          plan: Callable[[Aggregate, dt.datetime], ProjectMove | None],
          payload: Callable[[dict, ProjectMove], Message]) -> Aggregate:
    """Loads `ident`, applies `plan`'s move and commits it with the event `payload(the stored
    document after the move, the move)`; a lost race re-reads and plans again, a plan that finds
    nothing to change (None) writes nothing."""
    def attempt() -> Aggregate | None:
        raw = model.raw_in_district(principal.district_id, ident, what)
        now = clock.now()
        move = plan(model.from_raw(raw), now)
        if move is None:
            return model.from_raw(raw)
        version = raw["version"] + 1
        after = {**raw, **move.fields, "version": version,
                 **{name: [*raw.get(name, ()), *added] for name, added in move.appended.items()}}
        event = events.new(payload(after, move), district_id=raw["district_id"], aggregate_type=what,
                           aggregate_id=ident, version=version, actor_id=principal.subject, occurred_at=now)
        update: dict = {"$set": move.fields} if move.fields else {}
        if move.appended:
            update["$push"] = {name: {"$each": added} for name, added in move.appended.items() if added}
        changed = model.change({"_id": ident, "version": raw["version"]}, update, [event])
        if changed is not None and move.after:
            move.after()
        return changed

    return until_written(CONFLICTS, attempt, f"the {what} kept changing while this request was applied; retry")


def subtree_keys(district_id: str, path: list[str]) -> dict:
    """`in<depth>` of every unit on the path: a unit's subtree is then one indexed key."""
    return {f"in{depth}": key(district_id, unit_id) for depth, unit_id in enumerate(path)}


class BrandSlots:
    """At most one brand project per unit: the unit's slot document, whose `_id` is unique, names
    the project holding it. Claimed before the project's own write, released after it concludes."""

    def __init__(self):
        self.collection = BrandSlot._get_collection()

    def _held(self, slot: dict, now: dt.datetime) -> bool:
        """A slot holds while its project is branded, or a designation just claimed it; a claim
        whose project never became branded (the process died in between) lapses."""
        held = Project.collection().find_one({"_id": slot["project_id"]}, {"status": 1})
        return (held is not None and held["status"] == P.PROJECT_STATUS_BRANDED) \
            or now - as_utc(slot["claimed_at"]) < BRAND_CLAIM_GRACE

    def holder(self, project: Project, now: dt.datetime) -> str | None:
        """The project holding the unit's brand (None: nobody)."""
        slot = self.collection.find_one({"_id": key(project.district_id, project.unit.unit_id)})
        if slot is None or (slot["project_id"] != project.id and not self._held(slot, now)):
            return None
        return slot["project_id"]

    def claim(self, project: Project, now: dt.datetime) -> str | None:
        """Takes the unit's slot for `project`; the project holding it instead, if another does."""
        slot_id = key(project.district_id, project.unit.unit_id)
        for _ in CONFLICTS.attempts():
            slot = self.collection.find_one({"_id": slot_id})
            if slot is not None and (slot["project_id"] == project.id or self._held(slot, now)):
                return None if slot["project_id"] == project.id else slot["project_id"]
            try:
                if slot is None:
                    self.collection.insert_one({"_id": slot_id, "project_id": project.id, "claimed_at": now})
                    return None
                # a lapsed claim: taken over only if nobody took it over meanwhile
                if self.collection.find_one_and_update(
                        {"_id": slot_id, "project_id": slot["project_id"], "claimed_at": slot["claimed_at"]},
                        {"$set": {"project_id": project.id, "claimed_at": now}}) is not None:
                    return None
            except DuplicateKeyError:
                pass
        raise Aborted("the unit's brand kept changing while this request was applied; retry")

    def release(self, project: Project) -> None:
        self.collection.delete_one({"_id": key(project.district_id, project.unit.unit_id), "project_id": project.id})


class ProjectDesk:
    def __init__(self, registry: Registry, menu: MenuBook, events: EventSource):
        self.registry = registry
        self.menu = menu
        self.events = events
        self.brands = BrandSlots()

    def _apply(self, principal: Principal, project_id: str,
               plan: Callable[[Project, dt.datetime], ProjectMove | None]) -> Project:
        def payload(after: dict, move: ProjectMove) -> Message:
            return move.event(project=project_snapshot(Project.from_raw(after)), **move.event_fields)
        return apply(Project, principal, project_id, "project", self.events, plan, payload)

    def propose(self, principal: Principal, req: pb.ProposeProjectRequest) -> Project:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        name = v.text("name", req.name, max_len=40)
        v.enum("category", req.category, common_pb2.ServiceCategory)
        target_group = v.text("target_group", req.target_group, max_len=100)
        plan = v.text("plan", req.plan, max_len=2000, multiline=True)
        team_id = v.ident("team_id", req.team_id, required=False)
        budget_source = v.text("budget_source", req.budget_source, max_len=100)
        v.check()
        district = principal.district_id
        path = self.menu.unit_path(principal, unit_id, "unit_id")
        rules.require_admin_in(principal, district, path)
        team = self.registry.team(district, team_id) if team_id else None
        if team_id and (team is None or path[-1] not in team.get("unit_path", ())):
            raise InvalidArgument.field("team_id", "不是本单位及下级的志愿服务队")
        now = clock.now()
        project = Project(id=new_id("prj"), district_id=district, name=name, name_key=key(district, path[-1], name),
                          category=req.category, target_group=target_group, plan=plan,
                          unit=self.registry.unit_ref(district, path), team_id=team_id,
                          team_name=(team or {}).get("name", ""), budget_source=budget_source,
                          status=P.PROJECT_STATUS_DECLARED, proposed_by=principal.subject, proposed_at=now,
                          **subtree_keys(district, path))
        event = self.events.new(ev.ProjectProposed(project=project_snapshot(project)), district_id=district,
                                aggregate_type="project", aggregate_id=project.id, version=1,
                                actor_id=principal.subject, occurred_at=now)
        try:
            project.insert([event])
        except DuplicateKeyError:
            raise AlreadyExists(f"本单位已有名为「{name}」的项目") from None
        metrics.PROJECTS.labels(metrics.project_status_name(project.status)).inc()
        return project

    def move(self, principal: Principal, req: pb.MoveProjectRequest) -> Project:
        v = Validator()
        project_id = v.ident("project_id", req.project_id)
        v.enum("to_status", req.to_status, P, allowed=[s for s in P.values() if s != P.PROJECT_STATUS_DECLARED])
        comment = v.text("comment", req.comment, max_len=500, required=False, multiline=True)
        v.check()
        reviewer_unit = self.registry.unit_ref(principal.district_id, list(principal.unit_path)) \
            if principal.unit_path else {}

        def plan(project: Project, now: dt.datetime) -> ProjectMove:
            branding = req.to_status == P.PROJECT_STATUS_BRANDED
            holder = self.brands.holder(project, now) if branding else None
            move = rules.move(project, principal, now, req.to_status, comment, holder, reviewer_unit)
            if branding and self.brands.claim(project, now) is not None:
                raise rules.brand_taken(project)  # another designation came first
            return move

        project = self._apply(principal, project_id, plan)
        if project.status == P.PROJECT_STATUS_CONCLUDED:
            self.brands.release(project)
        return project

    def report_progress(self, principal: Principal, req: pb.ReportProjectProgressRequest) -> Project:
        v = Validator()
        project_id = v.ident("project_id", req.project_id)
        period = v.regex("period", req.period, MONTH, "须为年月，例如 2026-05")
        summary = v.text("summary", req.summary, max_len=1000, multiline=True)
        v.check()
        return self._apply(principal, project_id,
                           lambda project, now: rules.report_progress(project, principal, now, period, summary))

    def link_work(self, principal: Principal, req: pb.LinkProjectWorkRequest) -> Project:
        v = Validator()
        project_id = v.ident("project_id", req.project_id)
        activity_ids = v.ids("activity_ids", req.activity_ids, max_count=MAX_LINKS_PER_REQUEST)
        order_ids = v.ids("order_ids", req.order_ids, max_count=MAX_LINKS_PER_REQUEST)
        if v.ok() and not activity_ids and not order_ids:
            v.fail("activity_ids", "须至少关联一个活动或点单")
        v.check()
        activities = _by_id(Activity, activity_ids, {"district_id": 1, "unit": 1})
        orders = _by_id(Order, order_ids, {"district_id": 1, "origin": 1})
        return self._apply(principal, project_id,
                           lambda project, now: rules.link_work(project, principal, activities, orders))

    def get(self, principal: Principal, project_id: str) -> tuple[Project, rules.Outcome]:
        project = Project.in_district(principal.district_id, valid_id("project_id", project_id), "project")
        rules.require_admin_in(principal, project.district_id, project.unit.path)
        activities = _by_id(Activity, list(project.activity_ids), {"status": 1, "participants": 1, "hours": 1})
        orders = _by_id(Order, list(project.order_ids), {"status": 1, "resident_id": 1, "hours": 1})
        return project, rules.outcome([a for a in activities.values() if a], [o for o in orders.values() if o])

    def list(self, principal: Principal, req: pb.ListProjectsRequest) -> tuple[list[Project], str]:
        """The subtree's projects, newest first: one indexed key reads them all (a district has
        hundreds, not the orders' hundred thousands), then a page of them is returned."""
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        statuses = set(v.enums("statuses", list(req.statuses), P, max_count=7))
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        path = self.menu.unit_path(principal, unit_id, "unit_id")
        rules.require_admin_in(principal, principal.district_id, path)
        found = Project.collection().find({f"in{len(path) - 1}": key(principal.district_id, path[-1])},
                                          {"outbox": 0, "plan": 0, "progress": 0, "reviews": 0})
        shown = sorted((raw for raw in found if (not statuses or raw["status"] in statuses)
                        and (not after or raw["_id"] < after)), key=lambda raw: raw["_id"], reverse=True)
        page = [Project.from_raw(raw) for raw in shown[:size]]
        return page, encode_page_token(page[-1].id) if len(shown) > size else ""


def _by_id(model: type[Aggregate], ids: list[str], projection: dict) -> dict[str, dict | None]:
    """{id: the stored document's projection, or None when there is none}, in the order asked."""
    found = {raw["_id"]: raw for raw in model.collection().find({"_id": {"$in": ids}},
                                                                 {**projection, "district_id": 1})} if ids else {}
    return {i: found.get(i) for i in ids}


class CompetitionDesk:
    def __init__(self, registry: Registry, menu: MenuBook, events: EventSource):
        self.registry = registry
        self.menu = menu
        self.events = events

    def _apply(self, principal: Principal, competition_id: str,
               plan: Callable[[Competition, dt.datetime], ProjectMove]) -> Competition:
        return apply(Competition, principal, competition_id, "competition", self.events, plan,
                     lambda after, move: move.event(competition_id=competition_id, **move.event_fields))

    def create(self, principal: Principal, req: pb.CreateCompetitionRequest) -> Competition:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        name = v.text("name", req.name, max_len=60)
        project_ids = v.ids("project_ids", req.project_ids, min_count=2, max_count=100)
        v.check()
        district = principal.district_id
        path = self.menu.unit_path(principal, unit_id, "unit_id")
        found = _by_id(Project, project_ids, {"name": 1, "unit": 1, "status": 1, "proposed_by": 1})
        rules.enter(principal, district, path, list(found.values()))
        now = clock.now()
        competition = Competition(
            id=new_id("cmp"), district_id=district, name=name, unit=self.registry.unit_ref(district, path),
            status=types_pb2.COMPETITION_STATUS_OPEN, created_by=principal.subject, created_at=now,
            entries=[{"project_id": p["_id"], "project_name": p["name"], "unit": p["unit"],
                      "proposed_by": p["proposed_by"]} for p in found.values() if p is not None])
        event = self.events.new(ev.CompetitionCreated(competition_id=competition.id, name=name,
                                                      unit=unit_ref_msg(competition.unit), project_ids=project_ids),
                                district_id=district, aggregate_type="competition", aggregate_id=competition.id,
                                version=1, actor_id=principal.subject, occurred_at=now)
        competition.insert([event])
        return competition

    def score(self, principal: Principal, req: pb.ScoreCompetitionProjectRequest) -> Competition:
        v = Validator()
        competition_id = v.ident("competition_id", req.competition_id)
        project_id = v.ident("project_id", req.project_id)
        v.int_range("score", req.score, rules.MIN_SCORE, rules.MAX_SCORE)
        comment = v.text("comment", req.comment, max_len=200, required=False)
        v.check()

        return self._apply(principal, competition_id,
                           lambda competition, now: rules.score(competition, principal, project_id, req.score, comment))

    def close(self, principal: Principal, competition_id: str) -> Competition:
        return self._apply(principal, valid_id("competition_id", competition_id),
                           lambda competition, now: rules.close(competition, principal))

    def get(self, principal: Principal, competition_id: str) -> Competition:
        competition = Competition.in_district(principal.district_id, valid_id("competition_id", competition_id),
                                              "competition")
        rules.require_admin_in(principal, competition.district_id, competition.unit.path)
        return competition
