"""志愿者信用: volunteers' no-shows (爽约) and complaints (投诉) with their appeal (申诉).

Ordering keeps them because every incident is about ordering's own records — an order a
volunteer accepted, an activity they signed up to, a resident's rating of a service — and the
admins who decide appeals are the ones dispatching those orders. The rules are credit_rules.py;
this desk validates, loads, applies them and commits one write per incident with its event:

- the loop's own incidents come from ordering's events (consumer group `ordering-credit`):
  OrderHoursConfirmed (accepted, no hours: 爽约), OrderRated (1–2 stars: 投诉 for those who
  served), ActivityCompleted (signed up to serve, not checked in, no hours: 爽约). Each finding's
  `dedup_key` is unique, so a redelivered event records nothing twice;
- an admin records one (RecordCreditIncident) with an idempotency key in the same `dedup_key`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from google.protobuf.message import Message
from pymongo import DESCENDING
from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role
from services.common.clock import clock
from services.common.consumer import ConsumedEvent, Outcome
from services.common.errors import Aborted, InvalidArgument, NotFound, PermissionDenied
from services.common.events import EventSource
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.listing import key
from services.common.outbox import insert_once_with_events, insert_with_events
from services.common.readmodels import unit_ref_doc
from services.common.validation import Validator
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

from . import credit_rules as rules
from . import metrics
from .menu import MenuBook
from .models import Activity, CreditIncident, Order
from .readmodels import Registry
from .translate import credit_snapshot

S = types_pb2.CreditIncidentStatus
P = types_pb2.ParticipantRole
AGGREGATE = "credit_incident"


def volunteer_key(district_id: str, volunteer_id: str) -> str:
    return key(district_id, "credit", volunteer_id)


class CreditBook:
    def __init__(self, registry: Registry, menu: MenuBook, events: EventSource):
        self.registry = registry
        self.menu = menu
        self.events = events
        self.collection = CreditIncident.collection()

    # ---- recording ----

    def _new_incident(self, district_id: str, volunteer_id: str, kind: int, reason: str, dedup_key: str, *,
                      unit: dict, order_id: str, activity_id: str, occurred_at: dt.datetime,
                      recorded_by: str) -> tuple[dict, list[dict]]:
        """One new incident (STANDING) in its stored form, with its CreditIncidentRecorded."""
        volunteer = self.registry.volunteer(district_id, volunteer_id) or {}
        scope = {*unit["path"], *(u for served in volunteer.get("units", ()) for u in served["path"])}
        stored = CreditIncident.stored_form({
            "_id": new_id("cri"), "district_id": district_id, "dedup_key": dedup_key,
            "volunteer_key": volunteer_key(district_id, volunteer_id), "volunteer_id": volunteer_id,
            "kind": kind, "status": S.CREDIT_INCIDENT_STATUS_STANDING, "reason": reason,
            "automatic": not recorded_by, "order_id": order_id, "activity_id": activity_id, "unit": unit,
            "scope": sorted(scope), "recorded_by": recorded_by, "occurred_at": occurred_at,
            "recorded_at": clock.now_as_stored(),
        })
        event = self.events.new(ev.CreditIncidentRecorded(incident=credit_snapshot(stored)), district_id=district_id,
                                aggregate_type=AGGREGATE, aggregate_id=stored["_id"], version=1,
                                actor_id=recorded_by, occurred_at=stored["recorded_at"])
        return stored, [event]

    @staticmethod
    def _counted(incident: dict) -> dict:
        metrics.CREDIT_INCIDENTS.labels(metrics.credit_kind_name(incident["kind"]),
                                        "automatic" if incident["automatic"] else "manual").inc()
        return incident

    def record(self, principal: Principal, req: pb.RecordCreditIncidentRequest) -> dict:
        v = Validator()
        asked, idempotency_key = rules.validate_record(v, req)
        v.check()
        if principal.role != Role.ROLE_UNIT_ADMIN:
            raise PermissionDenied("信用记录由发生单位（或其上级）的管理员登记")
        district = principal.district_id
        if asked.order_id:
            order = Order.raw_in_district(district, asked.order_id, "order")
            unit = order["current"]
            involved = {*order.get("offered_ids", ()), *order.get("volunteer_ids", ())}
        else:
            activity = Activity.raw_in_district(district, asked.activity_id, "activity")
            unit = activity["unit"]
            involved = {pid for pid, p in activity.get("participants", {}).items()
                        if p["role"] == P.PARTICIPANT_ROLE_VOLUNTEER}
        rules.require_recorder(principal, unit["path"], involved, asked.volunteer_id)
        dedup_key = key(district, "manual", principal.subject, idempotency_key)
        unit_doc = {name: unit[name] for name in ("unit_id", "level", "name", "path")}
        stored, inserted = insert_once_with_events(self.collection, {"dedup_key": dedup_key}, lambda: self._new_incident(
            district, asked.volunteer_id, asked.kind, asked.reason, dedup_key, unit=unit_doc, order_id=asked.order_id,
            activity_id=asked.activity_id, occurred_at=clock.now_as_stored(), recorded_by=principal.subject))
        return self._counted(stored) if inserted else _replayed(stored, asked)

    # ---- appeal and decision ----

    def _change(self, principal: Principal, incident_id: str, plan: Callable[[dict, dt.datetime], dict],
                payload: Callable[[dict], Message]) -> tuple[dict, bool]:
        """Applies `plan`'s `$set` to the incident with the event `payload(the incident after it)`,
        in one write guarded by the version the plan saw: the incident after it, and whether it
        changed (not when the plan repeats what was done: the incident as it is)."""
        current = CreditIncident.raw_in_district(principal.district_id, incident_id, "credit incident")
        changes = plan(current, clock.now_as_stored())
        if not changes:
            return current, False
        after = {**current, **changes, "version": current["version"] + 1}
        event = self.events.new(payload(after), district_id=principal.district_id, aggregate_type=AGGREGATE,
                                aggregate_id=incident_id, version=after["version"], actor_id=principal.subject)
        if CreditIncident.change({"_id": incident_id, "version": current["version"]}, {"$set": changes},
                                 [event]) is None:
            raise Aborted("该信用记录刚被修改，请刷新后重试")
        return after, True

    def appeal(self, principal: Principal, req: pb.AppealCreditIncidentRequest) -> dict:
        v = Validator()
        incident_id, reason = rules.validate_appeal(v, req)
        v.check()
        after, changed = self._change(
            principal, incident_id, lambda current, now: rules.appeal(current, principal, now, reason),
            lambda after: ev.CreditIncidentAppealed(incident=credit_snapshot(after)))
        if changed:
            metrics.CREDIT_APPEALS.labels("appealed").inc()
        return after

    def decide(self, principal: Principal, req: pb.DecideCreditAppealRequest) -> dict:
        v = Validator()
        incident_id, outcome, reason = rules.validate_decision(v, req)
        v.check()
        upheld = outcome == rules.OUTCOME.CREDIT_APPEAL_OUTCOME_UPHELD
        after, changed = self._change(
            principal, incident_id, lambda current, now: rules.decide(current, principal, now, outcome, reason),
            lambda after: ev.CreditAppealDecided(incident=credit_snapshot(after), upheld=upheld))
        if changed:
            metrics.CREDIT_APPEALS.labels("upheld" if upheld else "rejected").inc()
        return after

    # ---- reads ----

    def list_for(self, principal: Principal, req: pb.ListCreditIncidentsRequest) -> tuple[list[dict], str,
                                                                                      rules.Standing | None]:
        """Newest first, keyset-paged by id (ids sort by creation time): a volunteer's own, or an
        admin's subtree's (optionally one volunteer's). The standing when the list is one volunteer's."""
        v = Validator()
        volunteer_id = v.ident("volunteer_id", req.volunteer_id, required=False)
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        statuses = v.enums("statuses", list(req.statuses), S, max_count=4)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        district = principal.district_id
        if principal.role == Role.ROLE_VOLUNTEER:
            if volunteer_id not in ("", principal.subject) or unit_id:
                raise PermissionDenied("志愿者只能查看自己的信用记录")
            volunteer_id = principal.subject
            query: dict = {"volunteer_key": volunteer_key(district, volunteer_id)}
        elif principal.role == Role.ROLE_UNIT_ADMIN:
            path = self.menu.unit_path(principal, unit_id, "unit_id")
            if not principal.manages(path):
                raise PermissionDenied("该单位不在本单位及下级单位")
            query = {"district_id": district, "scope": path[-1]}
            if volunteer_id:
                # the standing counts all of the volunteer's incidents: only for their own admins
                volunteer = self.registry.volunteer(district, volunteer_id)
                if volunteer is None or path[-1] not in volunteer.get("scope", ()):
                    raise PermissionDenied("该志愿者不在本单位及下级单位")
                query["volunteer_key"] = volunteer_key(district, volunteer_id)
        else:
            raise PermissionDenied("信用记录仅志愿者本人和所在单位的管理员可以查看")
        if statuses:
            query["status"] = {"$in": statuses}
        if after is not None:
            query["_id"] = {"$lt": after}
        found = list(self.collection.find(query, {"outbox": 0}).sort("_id", DESCENDING).limit(size + 1))
        token = encode_page_token(found[size - 1]["_id"]) if len(found) > size else ""
        standing = rules.standing(self.of_volunteer(district, volunteer_id), clock.now()) if volunteer_id else None
        return found[:size], token, standing

    def of_volunteer(self, district_id: str, volunteer_id: str) -> list[dict]:
        """Every incident of a volunteer (a handful: one indexed key)."""
        return list(self.collection.find({"volunteer_key": volunteer_key(district_id, volunteer_id)},
                                         {"kind": 1, "status": 1, "occurred_at": 1}))

    def standings(self, district_id: str, volunteer_ids: list[str]) -> dict[str, rules.Standing]:
        """Each volunteer's standing now, for the dispatcher (one query for all of them)."""
        found: dict[str, list[dict]] = {vid: [] for vid in volunteer_ids}
        keys = [volunteer_key(district_id, vid) for vid in volunteer_ids]
        for incident in self.collection.find({"volunteer_key": {"$in": keys}},
                                             {"volunteer_id": 1, "kind": 1, "status": 1, "occurred_at": 1}):
            found[incident["volunteer_id"]].append(incident)
        now = clock.now()
        return {vid: rules.standing(incidents, now) for vid, incidents in found.items()}

    def names(self, district_id: str, incidents: list[dict]) -> dict[str, str]:
        """Volunteer id -> name as ordering knows them, for admins' lists."""
        ids = sorted({i["volunteer_id"] for i in incidents})
        return {v["_id"]: v.get("name", "") for v in self.registry.volunteers.find(
            {"_id": {"$in": ids}, "district_id": district_id}, {"name": 1})} if ids else {}

    # ---- the loop's own incidents, from ordering's events ----

    def handlers(self) -> dict:
        return {
            ev.OrderHoursConfirmed.DESCRIPTOR.full_name: self._on_hours_confirmed,
            ev.OrderRated.DESCRIPTOR.full_name: self._on_rated,
            ev.ActivityCompleted.DESCRIPTOR.full_name: self._on_activity_completed,
        }

    def _record_findings(self, event: ConsumedEvent, findings: list[rules.Finding], unit: dict, *,
                         order_id: str = "", activity_id: str = "") -> Outcome:
        if not findings:
            return Outcome.SKIPPED
        district = event.envelope.district_id
        occurred_at = event.envelope.occurred_at.ToDatetime(dt.UTC)
        if rules.too_old_to_record(occurred_at, clock.now()):
            return Outcome.SKIPPED
        recorded = 0
        for finding in findings:
            document, events = self._new_incident(
                district, finding.volunteer_id, finding.kind, finding.reason,
                key(district, finding.source, finding.volunteer_id), unit=unit, order_id=order_id,
                activity_id=activity_id, occurred_at=occurred_at, recorded_by="")
            try:
                self._counted(insert_with_events(self.collection, document, events))
                recorded += 1
            except DuplicateKeyError:  # recorded by an earlier delivery of this event
                pass
        return Outcome.APPLIED if recorded else Outcome.DUPLICATE

    def _on_hours_confirmed(self, event: ConsumedEvent) -> Outcome:
        confirmed = event.payload_as(ev.OrderHoursConfirmed)
        order = confirmed.order
        findings = rules.order_no_shows(order.order_id, order.item_name, order.volunteer_ids,
                                        {h.volunteer_id for h in confirmed.hours})
        return self._record_findings(event, findings, unit_ref_doc(order.current_unit), order_id=order.order_id)

    def _on_rated(self, event: ConsumedEvent) -> Outcome:
        rated = event.payload_as(ev.OrderRated)
        order = rated.order
        if not 1 <= rated.rating <= rules.COMPLAINT_RATING:  # most ratings: no complaint, no read
            return Outcome.SKIPPED
        stored = Order.collection().find_one({"_id": order.order_id}, {"hours": 1}) or {}
        served = [h["volunteer_id"] for h in stored.get("hours", ())]
        findings = rules.rating_complaints(order.order_id, order.item_name, rated.rating, served)
        return self._record_findings(event, findings, unit_ref_doc(order.current_unit), order_id=order.order_id)

    def _on_activity_completed(self, event: ConsumedEvent) -> Outcome:
        completed = event.payload_as(ev.ActivityCompleted)
        snapshot = completed.activity
        # a completed activity's participants no longer change: its document is the record
        stored = Activity.collection().find_one({"_id": snapshot.activity_id}, {"participants": 1})
        if stored is None:
            raise NotFound("activity", snapshot.activity_id)
        participants = stored.get("participants", {})
        volunteers = [pid for pid, p in participants.items() if p["role"] == P.PARTICIPANT_ROLE_VOLUNTEER]
        attended = {pid for pid in volunteers if participants[pid].get("attended_at") is not None}
        findings = rules.activity_no_shows(snapshot.activity_id, snapshot.title, volunteers, attended,
                                           {h.volunteer_id for h in completed.hours})
        return self._record_findings(event, findings, unit_ref_doc(snapshot.unit), activity_id=snapshot.activity_id)


def _replayed(existing: dict, asked: rules.IncidentInput) -> dict:
    if not rules.same_request(existing, asked):
        raise InvalidArgument.field("idempotency_key", "was already used for a different request")
    return existing
