"""Training records: completions, hours, certifications and rotation standing per volunteer.

Completions are a projection of training's own CourseCompleted events (consumed like any other
service would): each one is stored once under its completion id, the volunteer's summary keeps
the latest completion per rotation plan (`$max`, so a replay changes nothing), and a session
completion of a course that grants a certification grants it. Historical completions (补录)
enter the same way: an admin records one with a reason, its document carries the event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role, require_role
from services.common.clock import as_utc, clock
from services.common.consumer import ConsumedEvent, Outcome
from services.common.errors import InvalidArgument
from services.common.events import EventSource, to_timestamp
from services.common.ids import new_id
from services.common.validation import Validator
from services.common.readmodels import unit_ref_msg
from wenming.training.v1 import events_pb2, training_pb2 as pb

from . import metrics
from .dates import parse_date, start_of_day
from .catalog import CourseCatalog
from .certifications import CertificationRegistry
from .directory import Directory
from .models import Certification, Completion, HistoricalCompletion, TrainingSummary
from .rotation import CORE_LEVELS, Rotation, Standing

EARLIEST_HISTORY = dt.date(1990, 1, 1)


@dataclass
class RecordView:
    volunteer: dict
    core: bool
    core_basis: str
    completions: list[dict]  # newest first
    certifications: list[Certification]
    standings: list[Standing]
    outstanding_course_ids: list[str]


class TrainingRecords:
    def __init__(self, directory: Directory, catalog: CourseCatalog, certifications: CertificationRegistry,
                 rotation: Rotation, events: EventSource):
        self.directory = directory
        self.catalog = catalog
        self.certifications = certifications
        self.rotation = rotation
        self.events = events

    # ---- the projection ----

    def handlers(self) -> dict:
        return {events_pb2.CourseCompleted.DESCRIPTOR.full_name: self._completed}

    def _completed(self, event: ConsumedEvent) -> Outcome:
        completed = event.payload_as(events_pb2.CourseCompleted)
        district_id = event.envelope.district_id
        completed_at = completed.completed_at.ToDatetime(tzinfo=dt.UTC)
        ref = completed.recorded_by
        stored = True
        try:
            Completion._get_collection().insert_one({
                "_id": completed.completion_id, "district_id": district_id, "volunteer_id": completed.volunteer_id,
                "course_id": completed.course_id, "course_revision": completed.course_revision,
                "course_title": completed.course_title, "level": completed.level, "minutes": completed.minutes,
                "score": completed.score, "completed_at": completed_at, "session_id": completed.session_id,
                "recorded_by": {"unit_id": ref.unit_id, "level": ref.level, "name": ref.name, "path": list(ref.path)},
                "historical": completed.historical, "reason": completed.reason})
        except DuplicateKeyError:
            stored = False
        # each effect below is idempotent on its own, so a replay after a crash finishes the rest
        latest = {"last_completed_at": completed_at}
        if completed.level in CORE_LEVELS:
            latest["last_core_completed_at"] = completed_at
        TrainingSummary._get_collection().update_one(
            {"_id": completed.volunteer_id}, {"$max": latest, "$setOnInsert": {"district_id": district_id}},
            upsert=True)
        granted = False
        if completed.HasField("certification") and not completed.historical:
            granted = self.certifications.grant_for(event)
        return Outcome.APPLIED if stored or granted else Outcome.DUPLICATE

    # ---- historical completions (补录) ----

    def record_historical(self, principal: Principal, req: pb.RecordHistoricalCompletionRequest) -> dict:
        v = Validator()
        volunteer_id = v.ident("volunteer_id", req.volunteer_id)
        course_id = v.ident("course_id", req.course_id)
        day = parse_date(v, "completed_on", req.completed_on)
        if day is not None and not EARLIEST_HISTORY <= day < clock.now().date():
            v.fail("completed_on", f"must be a past day, {EARLIEST_HISTORY} or later")
        reason = v.text("reason", req.reason, max_len=200)
        v.check()
        assert day is not None  # parse_date recorded why it had none, and check() refused that
        require_role(principal, Role.ROLE_UNIT_ADMIN)
        volunteer = self.directory.volunteer(principal.district_id, volunteer_id)
        self.directory.require_admin_of_volunteer(principal, volunteer)
        course = self.catalog.load(principal.district_id, course_id)
        completed_at = start_of_day(day)
        # the revision in force that day (the first one for training from before the catalog)
        content = next((r for r in reversed(course.revisions) if as_utc(r["revised_at"]) <= completed_at), course.revisions[0])
        recorded_by = {"unit_id": principal.unit_id, "level": principal.unit_level, "name": principal.unit_name,
                       "path": list(principal.unit_path)}
        record = HistoricalCompletion(
            id=new_id("hcp"), district_id=principal.district_id, volunteer_id=volunteer_id, course_id=course.id,
            course_revision=content["revision"], completed_at=completed_at, reason=reason, recorded_by=recorded_by,
            recorded_by_principal=principal.subject, created_at=clock.now())
        completed = events_pb2.CourseCompleted(
            completion_id=record.id, volunteer_id=volunteer_id, course_id=course.id,
            course_revision=content["revision"], course_title=content["title"], level=content["level"],
            minutes=content["minutes"], completed_at=to_timestamp(completed_at), recorded_by=unit_ref_msg(recorded_by),
            historical=True, reason=reason)
        record.insert([self.events.new(completed, district_id=principal.district_id,
                                       aggregate_type="historical_completion", aggregate_id=record.id, version=1,
                                       actor_id=principal.subject, occurred_at=clock.now())])
        metrics.COMPLETIONS.labels("historical").inc()
        return {"_id": record.id, "volunteer_id": volunteer_id, "course_id": course.id,
                "course_revision": content["revision"], "course_title": content["title"], "level": content["level"],
                "minutes": content["minutes"], "score": 0, "completed_at": completed_at, "session_id": "",
                "recorded_by": recorded_by, "historical": True, "reason": reason}

    # ---- a volunteer's record ----

    def get(self, principal: Principal, volunteer_id: str) -> RecordView:
        v = Validator()
        volunteer_id = v.ident("volunteer_id", volunteer_id, required=False)
        v.check()
        if not volunteer_id:
            if principal.role != Role.ROLE_VOLUNTEER:
                raise InvalidArgument.field("volunteer_id", "must not be empty")
            volunteer_id = principal.subject
        volunteer = self.directory.volunteer(principal.district_id, volunteer_id)
        self.directory.require_self_or_admin(principal, volunteer)
        district_id = principal.district_id
        completions = list(Completion._get_collection().find({"district_id": district_id,
                                                                "volunteer_id": volunteer_id})
                           .sort("completed_at", -1))
        core, basis = self.rotation.core_basis(district_id, volunteer_id)
        policy = self.rotation.policy(district_id)
        standings = self.rotation.standings_of(policy, volunteer_id, core, clock.now()) if policy else []
        done = {c["course_id"] for c in completions}
        outstanding = [c.id for c in self.catalog.required_for(district_id, core, list(volunteer.get("skills", ())))
                       if c.id not in done]
        return RecordView(volunteer, core, basis, completions,
                          self.certifications.of_volunteer(district_id, volunteer_id), standings, outstanding)

