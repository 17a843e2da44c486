"""Rotation plans: 五年轮训 (every volunteer trains at least once per general cycle, 5 years by
default) and 三年提升 (core volunteers complete a CORE or SPECIALIST course once per core cycle,
3 years by default). Cycles, the notice period and the plan's start are set per district.

For one volunteer and plan, with `last` the latest qualifying completion:
- trained within the cycle: due one cycle after `last`; DONE, or DUE within the notice period;
- otherwise: due one cycle after the plan's start (or after `last`, whichever is later); DUE
  until then, OVERDUE after.

Core volunteers (骨干志愿者) are the leaders of registration's teams, plus volunteers an admin
designated core in training, minus those an admin marked not core.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter as Tally
from dataclasses import dataclass

from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role
from services.common.cache import ReadCache
from services.common.clock import as_utc, clock
from services.common.errors import Aborted, FailedPrecondition, PermissionDenied
from services.common.events import EventSource
from services.common.ids import decode_page_token, encode_page_token
from services.common.validation import Validator
from wenming.training.v1 import events_pb2, training_pb2 as pb, types_pb2

from . import metrics
from .dates import add_years, parse_date, start_of_day
from .directory import ACTIVE_VOLUNTEER, Directory
from .models import RotationPolicy, TraineeProfile, TrainingSummary

GENERAL, CORE = pb.ROTATION_PLAN_GENERAL, pb.ROTATION_PLAN_CORE
DONE, DUE, OVERDUE = pb.ROTATION_STATUS_DONE, pb.ROTATION_STATUS_DUE, pb.ROTATION_STATUS_OVERDUE
CORE_LEVELS = (types_pb2.COURSE_LEVEL_CORE, types_pb2.COURSE_LEVEL_SPECIALIST)
SUMMARY_FIELD = {GENERAL: "last_completed_at", CORE: "last_core_completed_at"}
TEAM_LEADER, DESIGNATED = "team_leader", "designated"
EARLIEST_START = dt.date(2000, 1, 1)
LOOKUP_CHUNK = 1000


@dataclass(frozen=True)
class Standing:
    plan: pb.RotationPlan
    status: pb.RotationStatus
    last_completed_at: dt.datetime | None
    due_at: dt.datetime


def evaluate(cycle_years: int, notice_days: int, effective_from: dt.date, last: dt.datetime | None,
             now: dt.datetime) -> tuple[pb.RotationStatus, dt.datetime]:
    """(status, due_at) of one plan for one volunteer (see the module docstring)."""
    if last is not None and add_years(last, cycle_years) > now:
        due = add_years(last, cycle_years)
        return (DUE if due - now <= dt.timedelta(days=notice_days) else DONE), due
    due = add_years(start_of_day(effective_from), cycle_years)
    if last is not None:
        due = max(due, add_years(last, cycle_years))
    return (OVERDUE if due <= now else DUE), due


def standing(policy: RotationPolicy, plan: pb.RotationPlan, summary: dict | None, now: dt.datetime) -> Standing:
    last = (summary or {}).get(SUMMARY_FIELD[plan])
    last = as_utc(last) if last is not None else None
    cycle = policy.general_cycle_years if plan == GENERAL else policy.core_cycle_years
    status, due = evaluate(cycle, policy.notice_days, dt.date.fromisoformat(policy.effective_from), last, now)
    return Standing(plan, status, last, due)


class Rotation:
    def __init__(self, directory: Directory, events: EventSource):
        self.directory = directory
        self.events = events
        # the policy as last read, until its event (RotationPolicySet) says otherwise
        self.policies = ReadCache("rotation-policies", self._required, max_age_seconds=60.0,
                                  aggregate_type="rotation_policy")

    # ---- policy ----

    def policy(self, district_id: str) -> RotationPolicy | None:
        return RotationPolicy.objects(id=district_id).exclude("outbox").first()

    def require_policy(self, district_id: str) -> RotationPolicy:
        return self.policies.get(district_id)

    def _required(self, district_id: str) -> RotationPolicy:
        policy = self.policy(district_id)
        if policy is None:  # not kept: the center may set one a moment later
            raise FailedPrecondition("this district has no rotation policy yet; an admin of the center sets it "
                                     "(SetRotationPolicy)")
        return policy

    def set_policy(self, principal: Principal, req: pb.SetRotationPolicyRequest) -> RotationPolicy:
        v = Validator()
        v.int_range("general_cycle_years", req.general_cycle_years, 1, 10)
        v.int_range("core_cycle_years", req.core_cycle_years, 1, 10)
        v.int_range("notice_days", req.notice_days, 0, 365)
        start = parse_date(v, "effective_from", req.effective_from)
        if start is not None and start < EARLIEST_START:
            v.fail("effective_from", f"must be {EARLIEST_START} or later")
        if req.expected_version < 0:
            v.fail("expected_version", "must not be negative")
        v.check()
        assert start is not None  # parse_date recorded why it had none, and check() refused that
        if not (principal.is_center_admin or principal.role == Role.ROLE_SERVICE):
            raise PermissionDenied("only an admin of the district's center may set its rotation policy")
        district_id = principal.district_id
        terms = {"general_cycle_years": req.general_cycle_years, "core_cycle_years": req.core_cycle_years,
                 "notice_days": req.notice_days, "effective_from": start.isoformat()}
        current = self.policy(district_id)
        version = (current.version if current else 0) + 1
        if req.expected_version and (current is None or req.expected_version != current.version):
            raise FailedPrecondition("the rotation policy changed since you read it; reload and retry")
        event = self.events.new(events_pb2.RotationPolicySet(
            general_cycle_years=req.general_cycle_years, core_cycle_years=req.core_cycle_years,
            notice_days=req.notice_days, effective_from=start.isoformat()), district_id=district_id,
                                aggregate_type="rotation_policy", aggregate_id=district_id, version=version,
                                actor_id=principal.subject, occurred_at=clock.now())
        fields = {**terms, "updated_at": clock.now(), "updated_by": principal.subject}
        if current is None:
            policy = RotationPolicy(id=district_id, district_id=district_id, **fields)
            try:
                policy.insert([event])
            except DuplicateKeyError:
                raise FailedPrecondition("the rotation policy was set meanwhile; reload and retry") from None
            self.policies.forget(district_id)
            return policy
        changed = RotationPolicy.change({"_id": district_id, "version": current.version}, {"$set": fields}, [event])
        if changed is None:
            raise FailedPrecondition("the rotation policy changed since you read it; reload and retry")
        self.policies.forget(district_id)
        return changed

    # ---- core volunteers ----

    def core_ids(self, district_id: str) -> set[str]:
        marked = {p["_id"]: p["core"] for p in TraineeProfile.collection().find({"district_id": district_id},
                                                                                 {"core": 1})}
        leaders = self.directory.team_leader_ids(district_id)
        return {vid for vid in leaders if marked.get(vid, True)} | {vid for vid, core in marked.items() if core}

    def core_basis(self, district_id: str, volunteer_id: str) -> tuple[bool, str]:
        profile = TraineeProfile.objects(id=volunteer_id, district_id=district_id).only("core").first()
        if profile is not None:
            return profile.core, DESIGNATED if profile.core else ""
        if self.directory.leads_a_team(district_id, volunteer_id):
            return True, TEAM_LEADER
        return False, ""

    def set_core(self, principal: Principal, req: pb.SetCoreVolunteerRequest) -> tuple[bool, str]:
        v = Validator()
        volunteer_id = v.ident("volunteer_id", req.volunteer_id)
        reason = v.text("reason", req.reason, max_len=200)
        v.check()
        volunteer = self.directory.volunteer(principal.district_id, volunteer_id)
        self.directory.require_admin_of_volunteer(principal, volunteer)
        profile = TraineeProfile.objects(id=volunteer_id, district_id=principal.district_id).exclude("outbox").first()
        version = (profile.version if profile else 0) + 1
        event = self.events.new(events_pb2.CoreVolunteerChanged(volunteer_id=volunteer_id, core=req.core,
                                                                reason=reason),
                                district_id=principal.district_id, aggregate_type="trainee",
                                aggregate_id=volunteer_id, version=version, actor_id=principal.subject,
                                occurred_at=clock.now())
        fields = {"core": req.core, "reason": reason, "changed_by": principal.subject, "changed_at": clock.now()}
        if profile is None:
            try:
                TraineeProfile(id=volunteer_id, district_id=principal.district_id, **fields).insert([event])
            except DuplicateKeyError:
                raise Aborted("the volunteer's core flag was changed at the same moment; retry") from None
        elif TraineeProfile.change({"_id": volunteer_id, "version": profile.version}, {"$set": fields},
                                   [event]) is None:
            raise Aborted("the volunteer's core flag was changed at the same moment; retry")
        return self.core_basis(principal.district_id, volunteer_id)

    # ---- standings ----

    @staticmethod
    def summaries(volunteer_ids: list[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for start in range(0, len(volunteer_ids), LOOKUP_CHUNK):
            chunk = volunteer_ids[start:start + LOOKUP_CHUNK]
            found.update({s["_id"]: s for s in TrainingSummary._get_collection().find({"_id": {"$in": chunk}})})
        return found

    def standings_of(self, policy: RotationPolicy, volunteer_id: str, core: bool,
                     now: dt.datetime) -> list[Standing]:
        summary = self.summaries([volunteer_id]).get(volunteer_id)
        return [standing(policy, plan, summary, now) for plan in ((GENERAL, CORE) if core else (GENERAL,))]

    def _evaluate(self, district_id: str, policy: RotationPolicy, volunteers: list[dict],
                  now: dt.datetime) -> tuple[dict[int, Tally], list[tuple[dict, Standing]]]:
        summaries = self.summaries([v["_id"] for v in volunteers])
        core = self.core_ids(district_id)
        counts: dict[int, Tally] = {GENERAL: Tally(), CORE: Tally()}
        rows = []
        for volunteer in volunteers:
            for plan in (GENERAL, CORE) if volunteer["_id"] in core else (GENERAL,):
                result = standing(policy, plan, summaries.get(volunteer["_id"]), now)
                counts[plan][result.status] += 1
                rows.append((volunteer, result))
        return counts, rows

    def report(self, principal: Principal, req: pb.GetRotationReportRequest):
        v = Validator()
        unit_id = v.unit_or_own("unit_id", req.unit_id, principal.unit_id)
        v.enum("plan", req.plan, pb.RotationPlan, required=False)
        v.enum("status", req.status, pb.RotationStatus, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        unit = self.directory.unit(principal.district_id, unit_id)
        self.directory.require_admin_of_unit(principal, unit)
        policy = self.require_policy(principal.district_id)
        now = clock.now()
        counts, rows = self._evaluate(principal.district_id, policy,
                                      self.directory.active_volunteers_in(principal.district_id, unit), now)
        plan = req.plan or GENERAL
        chosen = [(vol, s) for vol, s in rows if s.plan == plan and (not req.status or s.status == req.status)
                  and (after is None or vol["_id"] > after)]
        token = encode_page_token(chosen[size - 1][0]["_id"]) if len(chosen) > size else ""
        return counts, chosen[:size], token, policy, now

    def publish_metrics(self) -> int:
        """The rotation-metrics job: district-wide counts into training_rotation_volunteers."""
        districts = 0
        for policy in RotationPolicy.objects().exclude("outbox"):
            volunteers = list(self.directory.models.volunteers.find(
                {"district_id": policy.district_id, "status": ACTIVE_VOLUNTEER}, {"_id": 1}))
            counts, _ = self._evaluate(policy.district_id, policy, volunteers, clock.now())
            for plan, tally in counts.items():
                for status in (DONE, DUE, OVERDUE):
                    metrics.ROTATION.labels(policy.district_id, pb.RotationPlan.Name(plan).split("_")[-1].lower(),
                                            pb.RotationStatus.Name(status).split("_")[-1].lower()).set(tally[status])
            districts += 1
        return districts
