"""Stored documents → API messages and event snapshots."""

from __future__ import annotations

import datetime as dt

from services.common.clock import as_utc, clock
from services.common.events import to_timestamp
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

from . import credit_rules
from .models import Activity, Competition, HoursEntry, MenuItem, Order, ParticipantDoc, Project, UnitRefDoc


def _times(**values: dt.datetime | None) -> dict:
    """Only the timestamps that are set (an unset one stays absent in the message)."""
    return {name: to_timestamp(value) for name, value in values.items() if value is not None}


def unit_ref_msg(unit: UnitRefDoc | None) -> common_pb2.UnitRef:
    if unit is None:
        return common_pb2.UnitRef()
    return common_pb2.UnitRef(unit_id=unit.unit_id, level=unit.level, name=unit.name, path=list(unit.path))


def hours_msg(entries: list[HoursEntry]) -> list[common_pb2.VolunteerHours]:
    return [common_pb2.VolunteerHours(volunteer_id=h.volunteer_id, minutes=h.minutes, source=h.source)
            for h in entries]


def menu_item_msg(item: MenuItem) -> pb.MenuItem:
    return pb.MenuItem(
        item_id=item.id, district_id=item.district_id, name=item.name, description=item.description,
        category=item.category, handling_level=item.handling_level, owner_unit=unit_ref_msg(item.owner),
        required_skills=list(item.required_skills), required_certifications=list(item.required_certifications),
        expected_minutes=item.expected_minutes, points_rule=item.points_rule, retired=item.retired,
        retired_reason=item.retired_reason, version=item.version, district_item_code=item.district_item_code,
        **_times(published_at=item.published_at, retired_at=item.retired_at))


# ---- orders ----

def order_snapshot(order: Order) -> types_pb2.OrderSnapshot:
    """The order as every order event carries it."""
    return types_pb2.OrderSnapshot(
        order_id=order.id, item_id=order.item_id, item_name=order.item_name, category=order.category,
        handling_level=order.handling_level, status=order.status, origin_courtyard=unit_ref_msg(order.origin),
        current_unit=unit_ref_msg(order.current), resident_id=order.resident_id,
        placed_on_behalf=order.placed_on_behalf, placed_by=order.placed_by, volunteer_ids=list(order.volunteer_ids),
        team_id=order.team_id, planned_minutes=order.planned_minutes, rating=order.rating,
        **_times(placed_at=order.placed_at, acknowledged_at=order.acknowledged_at,
                 dispatched_at=order.dispatched_at, accepted_at=order.accepted_at,
                 completed_at=order.completed_at, closed_at=order.closed_at))


def order_msg(order: Order, contact: tuple[str, str], with_trail: bool = False) -> pb.Order:
    """The order as the caller sees it; `contact` is (address, phone) as they may see them."""
    seconds_left = 0
    if order.ack_due_at is not None:
        seconds_left = int((as_utc(order.ack_due_at) - clock.now()).total_seconds())
    message = pb.Order(
        order_id=order.id, district_id=order.district_id, item_id=order.item_id, item_name=order.item_name,
        category=order.category, handling_level=order.handling_level, status=order.status,
        origin_courtyard=unit_ref_msg(order.origin), current_unit=unit_ref_msg(order.current),
        routed_past=[unit_ref_msg(u) for u in order.routed_past], resident_id=order.resident_id,
        placed_on_behalf=order.placed_on_behalf, placed_by=order.placed_by, note=order.note, urgent=order.urgent,
        planned_minutes=order.planned_minutes, sla_seconds_left=seconds_left, sla_breaches=order.sla_breaches,
        team_id=order.team_id, offered_volunteer_ids=list(order.offered_ids), volunteer_ids=list(order.volunteer_ids),
        sessions=[pb.ServiceSession(volunteer_id=vid, measured_minutes=s.measured_minutes,
                                    **_times(checked_in_at=s.checked_in_at, checked_out_at=s.checked_out_at))
                  for vid, s in sorted(order.sessions.items())],
        report=order.report, photo_asset_ids=list(order.photo_asset_ids), hours=hours_msg(order.hours),
        rating=order.rating, comment=order.comment, closing_reason=order.closing_reason, version=order.version,
        wish=order.wish, address=contact[0], contact_phone=contact[1],
        **_times(wanted_at=order.wanted_at, acknowledge_due_at=order.ack_due_at, placed_at=order.placed_at,
                 acknowledged_at=order.acknowledged_at, dispatched_at=order.dispatched_at,
                 accepted_at=order.accepted_at, completed_at=order.completed_at,
                 hours_confirmed_at=order.hours_confirmed_at, closed_at=order.closed_at))
    if with_trail:
        message.trail.extend(
            pb.OrderTransition(from_status=t.from_status, to_status=t.to_status, event_type=t.event_type,
                               actor_id=t.actor_id, actor_role=t.actor_role, unit_id=t.unit_id,
                               to_unit_id=t.to_unit_id or "", reason=t.reason, automatic=t.automatic, **_times(at=t.at))
            for t in order.trail)
    return message


# ---- activities ----

def activity_snapshot(activity: Activity) -> types_pb2.ActivitySnapshot:
    return types_pb2.ActivitySnapshot(
        activity_id=activity.id, title=activity.title, category=activity.category,
        unit=unit_ref_msg(activity.unit), volunteer_capacity=activity.volunteer_capacity,
        resident_capacity=activity.resident_capacity, status=activity.status,
        district_item_code=activity.district_item_code,
        **_times(starts_at=activity.starts_at, ends_at=activity.ends_at))


def participant_msg(participant_id: str, p: ParticipantDoc) -> pb.Participant:
    return pb.Participant(participant_id=participant_id, role=p.role, rating=p.rating,
                          **_times(signed_up_at=p.signed_up_at, attended_at=p.attended_at))


def activity_msg(activity: Activity, visible_participants: list[str] | None) -> pb.Activity:
    """`visible_participants`: None shows everyone (the organizer), else only those ids."""
    shown = sorted(activity.participants.items())
    if visible_participants is not None:
        shown = [(pid, p) for pid, p in shown if pid in visible_participants]
    return pb.Activity(
        activity_id=activity.id, district_id=activity.district_id, title=activity.title,
        description=activity.description, category=activity.category, unit=unit_ref_msg(activity.unit),
        location=activity.location, volunteer_capacity=activity.volunteer_capacity,
        resident_capacity=activity.resident_capacity, volunteers_signed_up=activity.volunteer_count,
        residents_signed_up=activity.resident_count, status=activity.status, cancel_reason=activity.cancel_reason,
        hours=hours_msg(activity.hours), version=activity.version, district_item_code=activity.district_item_code,
        participants=[participant_msg(pid, p) for pid, p in shown],
        **_times(starts_at=activity.starts_at, ends_at=activity.ends_at))


# ---- projects and competitions ----

def project_snapshot(project: Project) -> types_pb2.ProjectSnapshot:
    return types_pb2.ProjectSnapshot(project_id=project.id, name=project.name, category=project.category,
                                     unit=unit_ref_msg(project.unit), team_id=project.team_id, status=project.status,
                                     proposed_by=project.proposed_by)


def project_msg(project: Project, outcome=None) -> pb.Project:
    """`outcome`: project_rules.Outcome, computed for one project at a time (GetProject)."""
    return pb.Project(
        project_id=project.id, district_id=project.district_id, name=project.name, category=project.category,
        target_group=project.target_group, plan=project.plan, unit=unit_ref_msg(project.unit),
        team_id=project.team_id, team_name=project.team_name, budget_source=project.budget_source,
        status=project.status, proposed_by=project.proposed_by, proposed_at=to_timestamp(project.proposed_at),
        reviews=[pb.ProjectReview(from_status=r.from_status, to_status=r.to_status, reviewer_id=r.reviewer_id,
                                  reviewer_unit=unit_ref_msg(r.reviewer_unit), comment=r.comment,
                                  at=to_timestamp(r.at)) for r in project.reviews],
        progress=[pb.ProjectProgress(period=p.period, summary=p.summary, reported_by=p.reported_by,
                                     reported_at=to_timestamp(p.reported_at)) for p in project.progress],
        activity_ids=list(project.activity_ids), order_ids=list(project.order_ids), version=project.version,
        outcome=pb.ProjectOutcome(**vars(outcome)) if outcome is not None else None)


def competition_msg(competition: Competition, ranked) -> pb.Competition:
    """`ranked`: project_rules.ranking(competition)."""
    entries = {e.project_id: e for e in competition.entries}
    return pb.Competition(
        competition_id=competition.id, district_id=competition.district_id, name=competition.name,
        unit=unit_ref_msg(competition.unit), status=competition.status, created_by=competition.created_by,
        version=competition.version,
        entries=[pb.CompetitionEntry(project_id=r.project_id, project_name=entries[r.project_id].project_name,
                                     unit=unit_ref_msg(entries[r.project_id].unit), scores=r.scores,
                                     average_score=r.average, rank=r.rank) for r in ranked],
        scores=[pb.CompetitionScore(project_id=s.project_id, reviewer_id=s.reviewer_id, score=s.score,
                                    comment=s.comment) for _, s in sorted(competition.scores.items())])


# ---- volunteer credit (志愿者信用) ----

def _unit_ref_raw(unit: dict) -> common_pb2.UnitRef:
    return common_pb2.UnitRef(unit_id=unit["unit_id"], level=unit["level"], name=unit.get("name", ""),
                              path=list(unit["path"]))


def credit_snapshot(incident: dict) -> types_pb2.CreditIncidentSnapshot:
    """The incident as its events carry it: no free text anyone wrote."""
    return types_pb2.CreditIncidentSnapshot(
        incident_id=incident["_id"], volunteer_id=incident["volunteer_id"], kind=incident["kind"],
        status=incident["status"], automatic=incident["automatic"], order_id=incident["order_id"],
        activity_id=incident["activity_id"], unit=_unit_ref_raw(incident["unit"]),
        **_times(occurred_at=incident["occurred_at"]))


def credit_incident_msg(incident: dict, volunteer_name: str = "") -> pb.CreditIncident:
    return pb.CreditIncident(
        incident_id=incident["_id"], district_id=incident["district_id"], volunteer_id=incident["volunteer_id"],
        volunteer_name=volunteer_name, kind=incident["kind"], status=incident["status"], reason=incident["reason"],
        automatic=incident["automatic"], order_id=incident["order_id"], activity_id=incident["activity_id"],
        unit=_unit_ref_raw(incident["unit"]), recorded_by=incident["recorded_by"],
        appeal_reason=incident.get("appeal_reason", ""), decided_by=incident.get("decided_by", ""),
        decision_reason=incident.get("decision_reason", ""), version=incident["version"],
        **_times(occurred_at=incident["occurred_at"], recorded_at=incident["recorded_at"],
                 appeal_until=credit_rules.appeal_until(incident), appealed_at=incident.get("appealed_at"),
                 decided_at=incident.get("decided_at")))


def credit_standing_msg(standing: credit_rules.Standing | None) -> pb.CreditStanding | None:
    if standing is None:
        return None
    return pb.CreditStanding(window_days=standing.window_days, no_shows=standing.no_shows,
                             complaints=standing.complaints, appeals_pending=standing.appeals_pending,
                             summary=standing.summary)


# ---- activity plans (stored dicts: plans.py) ----

def _unit_ref(unit: dict) -> common_pb2.UnitRef:
    return common_pb2.UnitRef(unit_id=unit["unit_id"], level=unit["level"], name=unit.get("name", ""),
                              path=list(unit["path"]))


def plan_snapshot(plan: dict) -> types_pb2.ActivityPlanSnapshot:
    return types_pb2.ActivityPlanSnapshot(
        plan_id=plan["_id"], unit=_unit_ref(plan["unit"]), period=plan["period"], period_key=plan["period_key"],
        status=plan["status"], revision=plan.get("revision", 1), published_revision=plan.get("published_revision", 0),
        entry_count=len(plan.get("entries", ())), **_times(consultation_deadline=plan.get("consultation_deadline")))


def plan_entry_msg(entry: dict) -> pb.ActivityPlanEntry:
    return pb.ActivityPlanEntry(entry_id=entry["entry_id"], title=entry["title"], when=entry["when"],
                                category=entry["category"], unit=_unit_ref(entry["unit"]),
                                activity_id=entry.get("activity_id", ""), note=entry.get("note", ""))


def plan_msg(view) -> pb.ActivityPlan:
    """`view`: a plans.PlanView — the draft's entries only for those who may see them."""
    plan = view.plan
    return pb.ActivityPlan(
        plan_id=plan["_id"], district_id=plan["district_id"], unit=_unit_ref(plan["unit"]), period=plan["period"],
        period_key=plan["period_key"], title=plan["title"], status=plan["status"], revision=plan.get("revision", 1),
        entries=[plan_entry_msg(e) for e in plan.get("entries", ())] if view.shows_draft else [],
        published_revision=plan.get("published_revision", 0),
        published_entries=[plan_entry_msg(e) for e in plan.get("published_entries", ())],
        comment_count=view.comment_count, version=plan.get("version", 1),
        **_times(consultation_deadline=plan.get("consultation_deadline"), published_at=plan.get("published_at"),
                 created_at=plan.get("created_at")))


def plan_comment_msg(comment: dict) -> pb.ActivityPlanComment:
    return pb.ActivityPlanComment(
        comment_id=comment["_id"], plan_id=comment["plan_id"], revision=comment["revision"], text=comment["text"],
        author_role=comment["author_role"], author_unit_name=comment.get("author_unit_name", ""),
        **_times(created_at=comment.get("created_at")))
