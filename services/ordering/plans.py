"""Activity plans (年有计划、月有安排、周有活动): a station's, institute's or center's plan for a
year, month or week, put out for comments (征求意见) to the residents and volunteers of its
subtree, then published on their calendar. The rules are plan_rules.py; this desk validates,
loads, applies them and commits one write guarded by the plan's version, with its event.

Ordering owns plans because they plan ordering's own activities: an entry may name the
activity (PlanActivity) it became. Comments are documents of their own (a consultation may draw
hundreds), each inserted with its ActivityPlanCommented; their text never leaves ordering and
is screened with the kit's sensitive words (the district's own list lives in media).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message
from pymongo import DESCENDING
from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role
from services.common.clock import clock
from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.common.events import EventSource
from services.common.ids import decode_page_token, encode_page_token, keyed_id
from services.common.listing import key
from services.common.sensitive_words import DEFAULT_WORDS, find
from services.common.validation import Validator, valid_id
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

from . import metrics
from . import plan_rules as rules
from .activities import reach
from .menu import MenuBook
from .models import Activity, ActivityPlan, ActivityPlanComment
from .project_rules import ProjectMove
from .projects import apply, subtree_keys
from .readmodels import Registry
from .translate import plan_snapshot

S = types_pb2.ActivityPlanStatus
AGGREGATE = "activity_plan"


@dataclass(frozen=True)
class PlanView:
    """A plan as the caller may see it: the draft's entries or not, the comment count for admins."""

    plan: dict
    shows_draft: bool
    comment_count: int = 0


class ActivityPlans:
    def __init__(self, registry: Registry, menu: MenuBook, events: EventSource):
        self.registry = registry
        self.menu = menu
        self.events = events
        self.comments = ActivityPlanComment.collection()

    # ---- drafting ----

    def _entries(self, district_id: str, plan_path: list[str], entries: list[rules.EntryInput],
                 field: str) -> list[dict]:
        """The entries as stored, each held by the plan's unit or one below it, each linked
        activity one of the subtree's."""
        unit_ids = {e.unit_id for e in entries if e.unit_id}
        units = {u["_id"]: u for u in self.registry.units.find({"_id": {"$in": sorted(unit_ids)},
                                                                  "district_id": district_id})} if unit_ids else {}
        activity_ids = sorted({e.activity_id for e in entries if e.activity_id})
        activities = {a["_id"]: a for a in Activity.collection().find(
            {"_id": {"$in": activity_ids}}, {"district_id": 1, "unit": 1})} if activity_ids else {}
        rules.require_entry_units(
            plan_path,
            {f"{field}[{i}].unit.unit_id": units.get(e.unit_id) for i, e in enumerate(entries) if e.unit_id},
            {f"{field}[{i}].activity_id": activities.get(e.activity_id) for i, e in enumerate(entries)
             if e.activity_id},
            district_id)
        refs = {unit_id: self.registry.unit_ref(district_id, list(unit["path"])) for unit_id, unit in units.items()}
        own = self.registry.unit_ref(district_id, plan_path)
        return [rules.entry_doc(i, e, refs[e.unit_id] if e.unit_id else own) for i, e in enumerate(entries)]

    def create(self, principal: Principal, req: pb.CreateActivityPlanRequest) -> PlanView:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        period_key, title, entries, idempotency_key = rules.validate_create(v, req)
        v.check()
        district = principal.district_id
        path = self.menu.unit_path(principal, unit_id, "unit_id")
        unit = self.registry.unit_ref(district, path)
        rules.require_planner(principal, district, path, unit["level"])
        plan_id = keyed_id("apl", key(district, principal.subject, idempotency_key))
        existing = ActivityPlan.collection().find_one({"_id": plan_id}, {"outbox": 0})
        if existing is not None:
            return self._replayed(existing, principal, path[-1], req.period, period_key, title)
        now = clock.now_as_stored()  # the answer to a retry, read back, must be the same
        stored_entries = self._entries(district, path, entries, "entries")
        plan = ActivityPlan(id=plan_id, district_id=district, plan_key=key(district, path[-1], period_key), unit=unit,
                            period=req.period, period_key=period_key, title=title,
                            status=S.ACTIVITY_PLAN_STATUS_DRAFT, revision=1, entries=stored_entries,
                            created_by=principal.subject, created_at=now, **subtree_keys(district, path))
        raw = {**plan.to_mongo().to_dict(), "version": 1}
        event = self.events.new(ev.ActivityPlanDrafted(plan=plan_snapshot(raw)), district_id=district,
                                aggregate_type=AGGREGATE, aggregate_id=plan_id, version=1,
                                actor_id=principal.subject, occurred_at=now)
        try:
            plan.insert([event])
        except DuplicateKeyError:
            existing = ActivityPlan.collection().find_one({"_id": plan_id}, {"outbox": 0})
            if existing is not None:  # a concurrent retry with the key won
                return self._replayed(existing, principal, path[-1], req.period, period_key, title)
            raise AlreadyExists(f"本单位已有{period_key}的活动计划") from None
        metrics.ACTIVITY_PLANS.labels(metrics.plan_period_name(req.period), "drafted").inc()
        return PlanView(raw, shows_draft=True)

    def _replayed(self, existing: dict, principal: Principal, unit_id: str, period: int, period_key: str,
                  title: str) -> PlanView:
        if not rules.same_request(existing, unit_id, period, period_key, title):
            raise InvalidArgument.field("idempotency_key", "was already used for a different request")
        return self._view(existing, principal)

    # ---- the moves ----

    def _apply(self, principal: Principal, plan_id: str, plan: Callable[[dict, dt.datetime], dict],
               event: Callable[..., Message], counted: str = "") -> PlanView:
        """`counted`: the move's name in ordering_activity_plans_total, once it is stored."""
        def move(current: ActivityPlan, now: dt.datetime) -> ProjectMove | None:
            changes = plan(current.to_mongo().to_dict(), now)
            after = (lambda: metrics.ACTIVITY_PLANS.labels(metrics.plan_period_name(current.period), counted).inc()) \
                if counted else None
            return ProjectMove(event=event, fields=changes, after=after) if changes else None

        changed = apply(ActivityPlan, principal, valid_id("plan_id", plan_id), AGGREGATE, self.events, move,
                        lambda after, move: move.event(plan=plan_snapshot(after)))
        return self._view(changed.to_mongo().to_dict(), principal)

    def set_entries(self, principal: Principal, req: pb.SetActivityPlanEntriesRequest) -> PlanView:
        plan_id = valid_id("plan_id", req.plan_id)
        current = ActivityPlan.raw_in_district(principal.district_id, plan_id, AGGREGATE)
        rules.require_admin(principal, current["district_id"], current["unit"]["path"])
        v = Validator()
        entries = rules.validate_entries(v, "entries", req.entries, current["period"], current["period_key"])
        v.check()
        stored = self._entries(principal.district_id, current["unit"]["path"], entries, "entries")
        return self._apply(principal, plan_id, lambda plan, now: rules.set_entries(plan, principal, stored),
                           ev.ActivityPlanEntriesChanged)

    def open_consultation(self, principal: Principal, req: pb.OpenActivityPlanConsultationRequest) -> PlanView:
        v = Validator()
        v.ident("plan_id", req.plan_id)
        deadline = v.timestamp("deadline", req)
        v.check()
        assert deadline is not None
        deadline = deadline.replace(microsecond=0)  # as stored, so that a retry finds it the same
        return self._apply(principal, req.plan_id,
                           lambda plan, now: rules.open_consultation(plan, principal, now, deadline),
                           ev.ActivityPlanConsultationOpened, "consulting")

    def publish(self, principal: Principal, plan_id: str) -> PlanView:
        return self._apply(principal, plan_id, lambda plan, now: rules.publish(plan, principal, now),
                           ev.ActivityPlanPublished, "published")

    def revise(self, principal: Principal, plan_id: str) -> PlanView:
        return self._apply(principal, plan_id, lambda plan, now: rules.revise(plan, principal),
                           ev.ActivityPlanRevised, "revised")

    def link_entry(self, principal: Principal, req: pb.LinkActivityPlanEntryRequest) -> PlanView:
        v = Validator()
        plan_id = v.ident("plan_id", req.plan_id)
        entry_id = v.ident("entry_id", req.entry_id)
        activity_id = v.ident("activity_id", req.activity_id, required=False)
        v.check()
        if activity_id:
            current = ActivityPlan.raw_in_district(principal.district_id, plan_id, AGGREGATE)
            rules.require_admin(principal, current["district_id"], current["unit"]["path"])
            activity = Activity.collection().find_one({"_id": activity_id}, {"district_id": 1, "unit": 1})
            rules.require_entry_units(current["unit"]["path"], {}, {"activity_id": activity}, principal.district_id)
        return self._apply(principal, plan_id,
                           lambda plan, now: rules.link_entry(plan, principal, entry_id, activity_id),
                           ev.ActivityPlanEntryLinked)

    # ---- comments (征求意见) ----

    def comment(self, principal: Principal, req: pb.CommentOnActivityPlanRequest) -> dict:
        v = Validator()
        plan_id = v.ident("plan_id", req.plan_id)
        text = v.text("text", req.text, min_len=rules.COMMENT_CHARS[0], max_len=rules.COMMENT_CHARS[1],
                      multiline=True)
        idempotency_key = v.idempotency_key(req.idempotency_key)
        v.check()
        district = principal.district_id
        comment_id = keyed_id("apc", key(district, principal.subject, idempotency_key))
        existing = self.comments.find_one({"_id": comment_id}, {"outbox": 0})
        if existing is not None:
            return _replayed_comment(existing, plan_id, text)
        plan = ActivityPlan.raw_in_district(district, plan_id, AGGREGATE)
        now = clock.now_as_stored()  # the answer to a retry, read back, must be the same
        rules.require_commenter(plan, principal, reach(self.registry, principal), now)
        found = find(DEFAULT_WORDS, text)
        if found:
            metrics.PLAN_COMMENTS.labels("sensitive_words").inc()
            raise FailedPrecondition(f"内容含有敏感词：{'、'.join(found)}。请修改后再提交")
        comment = ActivityPlanComment(id=comment_id, district_id=district, plan_id=plan_id,
                                      revision=plan["revision"], text=text, author_id=principal.subject,
                                      author_role=principal.role, author_unit_name=principal.unit_name,
                                      created_at=now)
        event = self.events.new(ev.ActivityPlanCommented(plan_id=plan_id, comment_id=comment_id,
                                                         unit=plan_snapshot(plan).unit,
                                                         author_role=Role.Name(principal.role),
                                                         revision=plan["revision"]),
                                district_id=district, aggregate_type="activity_plan_comment",
                                aggregate_id=comment_id, version=1, actor_id=principal.subject, occurred_at=now)
        try:
            comment.insert([event])
        except DuplicateKeyError:  # a concurrent retry with the key won
            existing = self.comments.find_one({"_id": comment_id}, {"outbox": 0})
            if existing is None:
                raise
            return _replayed_comment(existing, plan_id, text)
        metrics.PLAN_COMMENTS.labels("accepted").inc()
        return comment.to_mongo().to_dict()

    def list_comments(self, principal: Principal, req: pb.ListActivityPlanCommentsRequest) -> tuple[list[dict], str]:
        """Newest first; a consultation draws hundreds at most, so a page is an offset into them."""
        v = Validator()
        plan_id = v.ident("plan_id", req.plan_id)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        offset = int(after) if after and after.isdigit() else 0
        v.check()
        plan = ActivityPlan.raw_in_district(principal.district_id, plan_id, AGGREGATE)
        rules.require_admin(principal, plan["district_id"], plan["unit"]["path"])
        found = list(self.comments.find({"plan_id": plan_id}, {"outbox": 0})
                     .sort([("created_at", DESCENDING), ("_id", DESCENDING)]).skip(offset).limit(size + 1))
        token = encode_page_token(str(offset + size)) if len(found) > size else ""
        return found[:size], token

    # ---- reads ----

    def _view(self, plan: dict, principal: Principal, *, counted: bool = True) -> PlanView:
        """`counted`: with the comment count for admins (one plan's, not a list's: a query each)."""
        count = self.comments.count_documents({"plan_id": plan["_id"]}) \
            if counted and principal.manages(plan["unit"]["path"]) else 0
        return PlanView(plan, shows_draft=rules.sees_draft(plan, principal), comment_count=count)

    def get(self, principal: Principal, plan_id: str) -> PlanView:
        plan = ActivityPlan.raw_in_district(principal.district_id, valid_id("plan_id", plan_id), AGGREGATE)
        if not rules.visible(plan, principal, reach(self.registry, principal)):
            if principal.role == Role.ROLE_UNIT_ADMIN:
                raise PermissionDenied("该活动计划不属于本单位及下级单位")
            raise NotFound(AGGREGATE, plan_id)  # a draft, or another subtree's: as absent as a missing one
        return self._view(plan, principal)

    def list(self, principal: Principal, req: pb.ListActivityPlansRequest) -> tuple[list[PlanView], str]:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        admin = principal.role == Role.ROLE_UNIT_ADMIN
        month = v.regex("month", req.month, rules.MONTH, "须为年月，例如 2026-05", required=not admin)
        statuses = v.enums("statuses", list(req.statuses), S, max_count=3)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        district = principal.district_id
        covering = rules.keys_covering(month) if month else []
        units: list[str] = []
        if admin:
            path = self.menu.unit_path(principal, unit_id, "unit_id")
            rules.require_admin(principal, district, path)
            query: dict = {f"in{len(path) - 1}": key(district, path[-1])}
            if covering:
                query["period_key"] = {"$in": [k for _, k in covering]}
            if statuses:
                query["status"] = {"$in": statuses}
        elif principal.role in (Role.ROLE_RESIDENT, Role.ROLE_VOLUNTEER):
            if unit_id or statuses:
                raise PermissionDenied("居民和志愿者查看所在单位已公开的活动计划")
            units = reach(self.registry, principal)
            # one unique key per unit and period: a handful of units, the month's few periods
            query = {"plan_key": {"$in": [key(district, u, k) for u in units for _, k in covering]}}
        else:
            raise PermissionDenied("活动计划由单位管理员制定，辖区居民和志愿者查看")
        if after:
            query["_id"] = {"$gt": after}
        found = list(ActivityPlan.collection().find(query, {"outbox": 0}).sort("_id", 1).limit(size + 1))
        shown = [p for p in found[:size] if rules.visible(p, principal, [] if admin else units)]
        token = encode_page_token(found[size - 1]["_id"]) if len(found) > size else ""
        shown.sort(key=lambda p: (rules.PERIOD_ORDER.get(p["period"], 9), p["period_key"], len(p["unit"]["path"])))
        return [self._view(p, principal, counted=False) for p in shown], token


def _replayed_comment(existing: dict, plan_id: str, text: str) -> dict:
    if existing["plan_id"] != plan_id or existing["text"] != text:
        raise InvalidArgument.field("idempotency_key", "was already used for a different request")
    return existing
